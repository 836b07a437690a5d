#include "hpcml/io/dataset.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <utility>

#include "hdf5_util.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/io/hdf5.hpp"
#include "hpcml/mpi/agree.hpp"
#include "hpcml/mpi/check.hpp"
#include "mapped.hpp"

namespace hpcml::io {

namespace fs = std::filesystem;

struct ShardHandle {
  std::string path;
  std::size_t first = 0;
  std::size_t samples = 0;
  // Direct path: both datasets are contiguous and unfiltered, so row r of
  // features is the byte range features_offset + r*F*4 of the file.
  bool direct = false;
  std::uint64_t features_offset = 0;
  std::uint64_t labels_offset = 0;
  // End of the last contiguous dataset's bytes (0 if unknown). HDF5's sec2
  // driver zero-fills reads past the end of a file, so a shard cut short after
  // it was opened would silently read as zeros; the hyperslab path compares the
  // file size with this before reading.
  std::uint64_t data_end = 0;
  // All labels of the shard (direct path, when small enough): saves one
  // pread per run; labels are 1/(F+1) of the data.
  std::vector<std::int32_t> labels_cache;
  int fd = -1;  // owned by `file` (HDF5's sec2 driver), valid while it is open
  // Direct path: the bytes [min(features_offset, labels_offset), data_end)
  // mapped read-only (empty when mmap failed: rows are then pread()).
  detail::FileMap map;
  File file;
  DataSet features;
  DataSet labels;
  DataSpace features_space;
  DataSpace labels_space;
};

struct DatasetState {
  std::string dir;
  std::string split;
  Manifest manifest;
  SplitInfo info;
  std::vector<std::size_t> firsts;  // first global index of each shard
  std::vector<ShardHandle> shards;
  // A single-file split opened with a communicator: shards[0] is the file,
  // opened with the MPI-IO driver, and every read is collective over `comm`
  // (a duplicate of the caller's, owned here). MPI_COMM_NULL otherwise.
  MPI_Comm comm = MPI_COMM_NULL;
  // The same file opened by MPI-IO itself (ReadMethod::kAuto): features are one
  // contiguous, unfiltered byte range at `mpi_features_offset` and the labels
  // are cached, so a read is one MPI_File_read_at_all over a view of the rows,
  // without HDF5's per-read selection overhead. MPI_FILE_NULL otherwise.
  MPI_File mpi_file = MPI_FILE_NULL;
  std::uint64_t mpi_features_offset = 0;

  DatasetState() = default;
  DatasetState(const DatasetState&) = delete;
  DatasetState& operator=(const DatasetState&) = delete;
  ~DatasetState() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (mpi_file != MPI_FILE_NULL && !finalized) MPI_File_close(&mpi_file);
    shards.clear();  // closes the files (collective for an MPI-IO file) before the communicator
    if (comm != MPI_COMM_NULL && !finalized) MPI_Comm_free(&comm);
  }

  std::size_t shard_of(std::size_t index) const {
    return static_cast<std::size_t>(std::upper_bound(firsts.begin(), firsts.end(), index) -
                                    firsts.begin()) -
           1;
  }
};

namespace {

std::string type_name(hid_t type) {
  const H5T_class_t cls = H5Tget_class(type);
  const std::size_t bits = H5Tget_size(type) * 8;
  const bool be = H5Tget_order(type) == H5T_ORDER_BE;
  std::string s;
  switch (cls) {
    case H5T_FLOAT:
      s = "float" + std::to_string(bits);
      break;
    case H5T_INTEGER:
      s = std::string(H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
      break;
    case H5T_STRING:
      return "string";
    default:
      return "non-numeric type (class " + std::to_string(static_cast<int>(cls)) + ")";
  }
  return be ? s + " big-endian" : s;
}

std::string dims_text(const std::vector<hsize_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

// Opens `name` in `file` and checks it is an array of `want_type` with `want_dims`.
DataSet open_checked(hid_t file, const char* name, hid_t want_type, const char* want_type_name,
                     const std::vector<hsize_t>& want_dims, const std::string& path) {
  const std::string ctx = path + ": dataset '" + name + "'";
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
    HPCML_THROW(DataError, path + ": has no dataset '" + std::string(name) + "'");
  DataSet ds(HPCML_CHECK_HDF5(H5Dopen2(file, name, H5P_DEFAULT), ctx + ": cannot open"));
  DataType type(HPCML_CHECK_HDF5(H5Dget_type(ds.get()), ctx));
  if (HPCML_CHECK_HDF5(H5Tequal(type.get(), want_type), ctx) <= 0) {
    const std::string have = type_name(type.get());
    HPCML_THROW(DataError, ctx + " has dtype " + have +
                               (have == want_type_name
                                    ? " with a non-standard layout (offset, precision or padding)"
                                    : "") +
                               " but the manifest says " + want_type_name);
  }
  DataSpace space(HPCML_CHECK_HDF5(H5Dget_space(ds.get()), ctx));
  const int rank = HPCML_CHECK_HDF5(H5Sget_simple_extent_ndims(space.get()), ctx);
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  if (rank > 0) HPCML_CHECK_HDF5(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), ctx);
  if (dims != want_dims)
    HPCML_THROW(DataError, ctx + " has shape " + dims_text(dims) + " but the manifest says " +
                               dims_text(want_dims));
  // A contiguous dataset records where its bytes live; a file cut short holds
  // fewer bytes than that (HDF5 itself does not always notice at open).
  const haddr_t offset = H5Dget_offset(ds.get());
  const hsize_t storage = H5Dget_storage_size(ds.get());
  struct stat st {};
  if (offset != HADDR_UNDEF && ::stat(path.c_str(), &st) == 0 &&
      static_cast<std::uint64_t>(st.st_size) < offset + storage)
    HPCML_THROW(DataError, path + ": file is truncated: " + std::to_string(st.st_size) +
                               " bytes, dataset '" + name + "' ends at byte " +
                               std::to_string(offset + storage));
  return ds;
}

// Storage that was never written reads as fill values (zeros): a small file
// declaring a chunked dataset of 2^36 rows with one chunk written would pass as
// a huge shard and make the trainer allocate for it. Data in other files
// (external storage, virtual datasets) is refused too: a shard is one file.
void check_storage(hid_t ds, const char* name, const std::vector<hsize_t>& dims,
                   const std::string& path) {
  const std::string ctx = path + ": dataset '" + name + "'";
  PropList dcpl(HPCML_CHECK_HDF5(H5Dget_create_plist(ds), ctx));
  const H5D_layout_t layout = H5Pget_layout(dcpl.get());
  if (layout == H5D_VIRTUAL)
    HPCML_THROW(DataError, ctx + " is a virtual dataset (data in other files); not supported");
  if (HPCML_CHECK_HDF5(H5Pget_external_count(dcpl.get()), ctx) > 0)
    HPCML_THROW(DataError, ctx + " keeps its data in external files; not supported");
  if (layout == H5D_CHUNKED) {
    std::vector<hsize_t> chunk(dims.size());
    if (H5Pget_chunk(dcpl.get(), static_cast<int>(dims.size()), chunk.data()) !=
        static_cast<int>(dims.size()))
      HPCML_THROW(DataError, ctx + " has a chunk shape of the wrong rank");
    hsize_t expected = 1;
    for (std::size_t i = 0; i < dims.size(); ++i) {
      if (chunk[i] == 0) HPCML_THROW(DataError, ctx + " has a zero chunk dimension");
      expected *= (dims[i] + chunk[i] - 1) / chunk[i];
    }
    hsize_t written = 0;
    DataSpace space(HPCML_CHECK_HDF5(H5Dget_space(ds), ctx));
    HPCML_CHECK_HDF5(H5Dget_num_chunks(ds, space.get(), &written), ctx);
    if (written < expected)
      HPCML_THROW(DataError, ctx + " has " + std::to_string(written) + " of its " +
                                 std::to_string(expected) +
                                 " chunks written (the rest would read as fill values)");
  } else if (H5Dget_storage_size(ds) == 0) {
    HPCML_THROW(DataError, ctx + " holds no data (its storage was never written)");
  }
}

// Shards up to this many rows keep their labels in memory (16 MiB per shard).
std::atomic<std::size_t> label_cache_max_rows{std::size_t{4} << 20};

// The file offset of a dataset's bytes when they are one plain byte range of
// exactly `bytes` bytes (contiguous layout, no filters); nullopt otherwise.
std::optional<std::uint64_t> contiguous_offset(hid_t ds, hsize_t bytes, const std::string& path) {
  PropList dcpl(HPCML_CHECK_HDF5(H5Dget_create_plist(ds), path));
  if (H5Pget_layout(dcpl.get()) != H5D_CONTIGUOUS || H5Pget_nfilters(dcpl.get()) != 0)
    return std::nullopt;
  const haddr_t offset = H5Dget_offset(ds);
  if (offset == HADDR_UNDEF || H5Dget_storage_size(ds) != bytes) return std::nullopt;
  return static_cast<std::uint64_t>(offset);
}

void check_attribute(hid_t root, const char* name, std::int64_t want, const std::string& path) {
  const auto v = read_int_attribute(root, name, path);
  if (v.size() != 1 || v[0] != want)
    HPCML_THROW(DataError, path + ": attribute '" + name + "' is " + std::to_string(v[0]) +
                               " but the manifest implies " + std::to_string(want));
}

ShardHandle open_shard(const DatasetState& st, std::size_t index) {
  const ShardInfo& info = st.info.shards[index];
  ShardHandle h;
  h.path = (fs::path(st.dir) / info.file).string();
  h.first = info.first_index;
  h.samples = info.samples;
  std::error_code ec;
  const auto status = fs::status(h.path, ec);
  if (fs::is_directory(status))
    HPCML_THROW(DataError, h.path + ": shard listed in the manifest is a directory, not a file");
  if (!fs::is_regular_file(status))
    HPCML_THROW(DataError, h.path + ": shard file listed in the manifest is missing");
  if (fs::file_size(h.path, ec) == 0 && !ec)
    HPCML_THROW(DataError, h.path + ": not an HDF5 file: the shard is empty (0 bytes)");
  Hdf5Lock lock;
  const htri_t is_hdf5 = H5Fis_hdf5(h.path.c_str());
  if (is_hdf5 <= 0) HPCML_THROW(DataError, h.path + ": not an HDF5 file (corrupt or overwritten?)");
  // HDF5's data sieve (64 KiB by default) turns every small random row read
  // into a 64 KiB read; rows are already contiguous byte ranges, so read them
  // directly instead.
  PropList fapl(HPCML_CHECK_HDF5(H5Pcreate(H5P_FILE_ACCESS), h.path));
  HPCML_CHECK_HDF5(H5Pset_sieve_buf_size(fapl.get(), 0), h.path);
  // sec2 explicitly: the direct path uses its POSIX descriptor (H5Fget_vfd_handle).
  HPCML_CHECK_HDF5(H5Pset_fapl_sec2(fapl.get()), h.path);
  h.file = File(H5Fopen(h.path.c_str(), H5F_ACC_RDONLY, fapl.get()));
  if (!h.file)
    HPCML_THROW(DataError, h.path + ": cannot open as HDF5 (truncated or corrupt file?)" +
                               hdf5_error_detail());
  const hsize_t n = info.samples, f = st.manifest.features;
  h.features = open_checked(h.file.get(), "features", H5T_IEEE_F32LE, "float32", {n, f}, h.path);
  h.labels = open_checked(h.file.get(), "labels", H5T_STD_I32LE, "int32", {n}, h.path);
  check_storage(h.features.get(), "features", {n, f}, h.path);
  check_storage(h.labels.get(), "labels", {n}, h.path);
  const auto fo = contiguous_offset(h.features.get(), n * f * 4, h.path);
  const auto lo = contiguous_offset(h.labels.get(), n * 4, h.path);
  if (fo) h.data_end = std::max<std::uint64_t>(h.data_end, *fo + n * f * 4);
  if (lo) h.data_end = std::max<std::uint64_t>(h.data_end, *lo + n * 4);
  void* vfd = nullptr;
  if (fo && lo && H5Fget_vfd_handle(h.file.get(), H5P_DEFAULT, &vfd) >= 0 && vfd) {
    // The sec2 driver's own descriptor: pread() does not move its offset, so
    // sharing it with HDF5 is safe and costs no extra descriptor per shard.
    h.fd = *static_cast<int*>(vfd);
    h.direct = true;
    h.features_offset = *fo;
    h.labels_offset = *lo;
    const std::uint64_t map_begin = std::min(*fo, *lo);
    h.map = detail::FileMap::map(h.fd, map_begin, h.data_end - map_begin);
    if (n <= label_cache_max_rows.load()) {
      h.labels_cache.resize(n);
      HPCML_CHECK_HDF5(H5Dread(h.labels.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                               h.labels_cache.data()),
                       h.path + ": cannot read 'labels'");
    }
  }
  h.features_space = DataSpace(HPCML_CHECK_HDF5(H5Dget_space(h.features.get()), h.path));
  h.labels_space = DataSpace(HPCML_CHECK_HDF5(H5Dget_space(h.labels.get()), h.path));
  const hid_t root = h.file.get();
  check_attribute(root, "format_version", kShardFormatVersion, h.path);
  check_attribute(root, "shard_index", static_cast<std::int64_t>(index), h.path);
  check_attribute(root, "shard_count", static_cast<std::int64_t>(st.info.shards.size()), h.path);
  check_attribute(root, "first_index", static_cast<std::int64_t>(info.first_index), h.path);
  return h;
}

// Selects the sorted unique rows `rows` of a [N, width] (width 0: [N]) file
// space as a union of one hyperslab block per run of consecutive rows, or
// nothing when `rows` is empty (a rank with no rows still joins the read).
DataSpace select_rows(hid_t file_space, const std::vector<hsize_t>& rows, std::size_t width,
                      const std::string& path) {
  DataSpace fs(HPCML_CHECK_HDF5(H5Scopy(file_space), path));
  if (rows.empty()) {
    HPCML_CHECK_HDF5(H5Sselect_none(fs.get()), path);
    return fs;
  }
  std::size_t i = 0;
  bool first = true;
  while (i < rows.size()) {
    std::size_t j = i + 1;
    while (j < rows.size() && rows[j] == rows[j - 1] + 1) ++j;
    const H5S_seloper_t op = first ? H5S_SELECT_SET : H5S_SELECT_OR;
    first = false;
    const hsize_t start[2] = {rows[i], 0}, count[2] = {j - i, width};
    HPCML_CHECK_HDF5(H5Sselect_hyperslab(fs.get(), op, start, nullptr, count, nullptr), path);
    i = j;
  }
  return fs;
}

// A [max(n,1), width] (width 0: [max(n,1)]) memory space, nothing selected if n == 0.
DataSpace memory_rows(std::size_t n, std::size_t width, const std::string& path) {
  const hsize_t dims[2] = {std::max<std::size_t>(n, 1), width};
  DataSpace ms(HPCML_CHECK_HDF5(H5Screate_simple(width ? 2 : 1, dims, nullptr), path));
  if (n == 0) HPCML_CHECK_HDF5(H5Sselect_none(ms.get()), path);
  return ms;
}

// Reads rows `rows` (sorted, unique, shard-local) of one shard into x (rows x F)
// and y, with one hyperslab block per run of consecutive rows (select_rows).
void read_shard_rows(const ShardHandle& h, std::size_t features, const std::vector<hsize_t>& rows,
                     float* x, std::int32_t* y) {
  struct stat st {};
  if (h.data_end > 0 &&
      (::stat(h.path.c_str(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) < h.data_end))
    HPCML_THROW(DataError, h.path + ": file is truncated (" + std::to_string(st.st_size) +
                               " bytes, data ends at byte " + std::to_string(h.data_end) +
                               "); it changed after it was opened");
  Hdf5Lock lock;
  const DataSpace fx = select_rows(h.features_space.get(), rows, features, h.path);
  const DataSpace fy = select_rows(h.labels_space.get(), rows, 0, h.path);
  const DataSpace mx = memory_rows(rows.size(), features, h.path);
  const DataSpace my = memory_rows(rows.size(), 0, h.path);
  HPCML_CHECK_HDF5(H5Dread(h.features.get(), H5T_NATIVE_FLOAT, mx.get(), fx.get(), H5P_DEFAULT, x),
                   h.path + ": cannot read 'features'");
  HPCML_CHECK_HDF5(H5Dread(h.labels.get(), H5T_NATIVE_INT32, my.get(), fy.get(), H5P_DEFAULT, y),
                   h.path + ": cannot read 'labels'");
}

void pread_exact(const ShardHandle& h, void* dst, std::size_t bytes, std::uint64_t offset) {
  auto* p = static_cast<char*>(dst);
  while (bytes > 0) {
    const ssize_t got = ::pread(h.fd, p, bytes, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      HPCML_THROW(DataError, h.path + ": read failed at byte " + std::to_string(offset) + ": " +
                                 std::strerror(errno));
    if (got == 0)
      HPCML_THROW(DataError, h.path + ": file ends at byte " + std::to_string(offset) +
                                 " inside the data (truncated after it was opened?)");
    p += got;
    bytes -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
}

// A batch's rows sorted by sample: (global index, position in the batch).
using RowOrder = std::vector<std::pair<std::size_t, std::size_t>>;

// The direct paths' walk over the sorted (index, position) pairs [k0, k1) of
// one shard: copy(row, count, pos) for each maximal stretch whose indices AND
// batch positions both increase by one (random batches: one per row; in-order
// evaluation reads: one per shard), `row` shard-local. A repeated index copies
// the earlier row of the batch instead. Allocates nothing and throws only what
// `copy` throws (the mapped path runs it under run_guarded()).
template <class Copy>
void for_each_run(const ShardHandle& h, std::size_t f, const RowOrder::value_type* order,
                  std::size_t k0, std::size_t k1, Batch& out, const Copy& copy) {
  float* x = out.x.data();
  std::int32_t* y = out.y.data();
  std::size_t k = k0;
  while (k < k1) {
    const std::size_t index = order[k].first, pos = order[k].second;
    if (k > k0 && order[k - 1].first == index) {
      const std::size_t prev = order[k - 1].second;
      std::memcpy(x + pos * f, x + prev * f, f * sizeof(float));
      y[pos] = y[prev];
      ++k;
      continue;
    }
    std::size_t m = k + 1;
    while (m < k1 && order[m].first == order[m - 1].first + 1 &&
           order[m].second == order[m - 1].second + 1)
      ++m;
    copy(index - h.first, m - k, pos);
    k = m;
  }
}

// Direct path without a mapping (ReadMethod::kPread, or mmap failed): one
// pread() per run, straight into the batch.
void read_shard_rows_pread(const ShardHandle& h, std::size_t f, const RowOrder& order,
                           std::size_t k0, std::size_t k1, Batch& out) {
  const std::size_t row_bytes = f * sizeof(float);
  for_each_run(h, f, order.data(), k0, k1, out,
               [&](std::size_t row, std::size_t count, std::size_t pos) {
                 pread_exact(h, out.x.data() + pos * f, count * row_bytes,
                             h.features_offset + row * row_bytes);
                 if (!h.labels_cache.empty())
                   std::copy_n(h.labels_cache.data() + row, count, out.y.data() + pos);
                 else
                   pread_exact(h, out.y.data() + pos, count * sizeof(std::int32_t),
                               h.labels_offset + row * sizeof(std::int32_t));
               });
}

struct MappedCopy {
  const ShardHandle* h;
  std::size_t f;
  const RowOrder::value_type* order;
  std::size_t k0, k1;
  Batch* out;
};

// Runs under detail::run_guarded(): only memcpy from the mapping.
void copy_mapped_runs(void* arg) {
  const MappedCopy& c = *static_cast<const MappedCopy*>(arg);
  const ShardHandle& h = *c.h;
  const std::size_t f = c.f, row_bytes = f * sizeof(float);
  float* x = c.out->x.data();
  std::int32_t* y = c.out->y.data();
  for_each_run(
      h, f, c.order, c.k0, c.k1, *c.out, [&](std::size_t row, std::size_t count, std::size_t pos) {
        std::memcpy(x + pos * f, h.map.at(h.features_offset + row * row_bytes), count * row_bytes);
        const void* labels =
            h.labels_cache.empty()
                ? static_cast<const void*>(h.map.at(h.labels_offset + row * sizeof(std::int32_t)))
                : h.labels_cache.data() + row;
        std::memcpy(y + pos, labels, count * sizeof(std::int32_t));
      });
}

std::atomic<bool> mapped_size_check{true};

// Direct path with the shard's data mapped (ReadMethod::kAuto): the runs are
// memcpy'd from the mapping, no system call per row. The file must still hold
// the highest row asked for (one fstat per shard and batch): a page only partly
// past a new end of file would read as zeros, a page wholly past it raises
// SIGBUS. A truncation racing with the copy is caught by the SIGBUS guard.
void read_shard_rows_mapped(const ShardHandle& h, std::size_t f, const RowOrder& order,
                            std::size_t k0, std::size_t k1, Batch& out) {
  const std::uint64_t last = order[k1 - 1].first - h.first;  // sorted: the highest row
  std::uint64_t need = h.features_offset + (last + 1) * f * sizeof(float);
  if (h.labels_cache.empty())
    need = std::max<std::uint64_t>(need, h.labels_offset + (last + 1) * sizeof(std::int32_t));
  if (mapped_size_check.load(std::memory_order_relaxed)) {
    struct stat st {};
    if (::fstat(h.fd, &st) != 0)
      HPCML_THROW(DataError, h.path + ": cannot stat the open file: " + std::strerror(errno));
    if (static_cast<std::uint64_t>(st.st_size) < need)
      HPCML_THROW(DataError, h.path + ": file ends at byte " + std::to_string(st.st_size) +
                                 " inside the data (truncated after it was opened?)");
  }
  MappedCopy c{&h, f, order.data(), k0, k1, &out};
  if (!detail::run_guarded(copy_mapped_runs, &c))
    HPCML_THROW(DataError, h.path +
                               ": file shrank while rows were copied from it (SIGBUS on its "
                               "mapped data): truncated after it was opened?");
}

// True when none of the n floats is NaN or infinite (exponent bits all ones).
// On the bits, branch-free: it vectorizes (std::isfinite in a loop does not),
// and it runs over every row of every batch.
bool all_finite(const float* values, std::size_t n) {
  std::int32_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::int32_t bits;
    std::memcpy(&bits, values + i, sizeof bits);
    bad |= static_cast<std::int32_t>((bits & 0x7fffffff) > 0x7f7fffff);
  }
  return bad == 0;
}

// Per-batch sanity checks; `global` maps a row of the batch to its sample index.
// `only` names the shard when the rows all come from one shard that may not be
// in st.shards (check_shard_file opens a single shard).
void check_rows(const DatasetState& st, const Batch& b, std::span<const std::size_t> global,
                const ShardHandle* only = nullptr) {
  const std::size_t f = b.cols;
  for (std::size_t r = 0; r < b.rows; ++r) {
    const std::int32_t label = b.y[r];
    const float* row = b.x.data() + r * f;
    const bool finite = all_finite(row, f);
    if (label >= 0 && label < st.manifest.classes && finite) continue;
    const std::size_t g = global[r];
    const ShardHandle& h = only ? *only : st.shards[st.shard_of(g)];
    if (!finite) {
      std::size_t c = 0;
      while (std::isfinite(row[c])) ++c;
      HPCML_THROW(DataError, h.path + ": feature " + std::to_string(c) + " of sample " +
                                 std::to_string(g) + " (row " + std::to_string(g - h.first) +
                                 ") is " + (std::isnan(row[c]) ? "NaN" : "infinite"));
    }
    HPCML_THROW(DataError, h.path + ": label " + std::to_string(label) + " of sample " +
                               std::to_string(g) + " (row " + std::to_string(g - h.first) +
                               ") is outside [0, " + std::to_string(st.manifest.classes) + ")");
  }
}

// Reads one opened shard fully and checks crc32, finite features and labels.
ShardCheck check_opened_shard(const DatasetState& st, std::size_t shard, const ShardHandle& h) {
  const ShardInfo& info = st.info.shards[shard];
  ShardCheck c;
  c.shard = shard;
  c.file = h.path;
  c.samples = h.samples;
  try {
    const std::size_t f = st.manifest.features;
    Batch b;
    b.rows = h.samples;
    b.cols = f;
    b.x.resize(b.rows * f);
    b.y.resize(b.rows);
    {
      Hdf5Lock lock;
      HPCML_CHECK_HDF5(
          H5Dread(h.features.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, b.x.data()),
          h.path + ": cannot read 'features'");
      HPCML_CHECK_HDF5(
          H5Dread(h.labels.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, b.y.data()),
          h.path + ": cannot read 'labels'");
    }
    const std::uint32_t crc =
        crc32_update(crc32_update(0, b.x.data(), b.x.size() * 4), b.y.data(), b.y.size() * 4);
    if (crc != info.crc32)
      HPCML_THROW(DataError, h.path + ": checksum mismatch: data has " + checksum_string(crc) +
                                 ", manifest says " + checksum_string(info.crc32) +
                                 " (corrupted shard)");
    std::vector<std::size_t> global(b.rows);
    for (std::size_t i = 0; i < b.rows; ++i) global[i] = h.first + i;
    check_rows(st, b, global, &h);
    c.ok = true;
  } catch (const std::bad_alloc&) {
    c.problem = h.path + ": not enough memory to read the whole shard for verification";
  } catch (const std::exception& e) {
    c.problem = e.what();
  }
  return c;
}

struct Scratch {
  RowOrder order;
  std::vector<hsize_t> rows;
  std::vector<std::size_t> row_of;  // position in `order` -> row in the shard read buffer
  std::vector<float> x;
  std::vector<std::int32_t> y;
};

void read_rows_impl(const DatasetState& st, std::span<const std::size_t> indices, Batch& out,
                    Scratch& s, ReadMethod method) {
  const std::size_t f = st.manifest.features, n = indices.size();
  for (std::size_t i = 0; i < n; ++i)
    if (indices[i] >= st.info.samples)
      HPCML_THROW(DataError, st.dir + ": sample index " + std::to_string(indices[i]) +
                                 " is out of range for split '" + st.split + "' with " +
                                 std::to_string(st.info.samples) + " samples");
  out.rows = n;
  out.cols = f;
  out.x.resize(n * f);
  out.y.resize(n);
  s.order.resize(n);
  for (std::size_t i = 0; i < n; ++i) s.order[i] = {indices[i], i};
  std::sort(s.order.begin(), s.order.end());
  std::size_t g0 = 0;
  while (g0 < n) {
    const std::size_t shard = st.shard_of(s.order[g0].first);
    const ShardHandle& h = st.shards[shard];
    const std::size_t end_index = h.first + h.samples;
    std::size_t g1 = g0;
    if (h.direct && method != ReadMethod::kHyperslab) {
      while (g1 < n && s.order[g1].first < end_index) ++g1;
      if (h.map && method == ReadMethod::kAuto)
        read_shard_rows_mapped(h, f, s.order, g0, g1, out);
      else
        read_shard_rows_pread(h, f, s.order, g0, g1, out);
      g0 = g1;
      continue;
    }
    s.rows.clear();
    s.row_of.resize(n);
    while (g1 < n && s.order[g1].first < end_index) {
      const hsize_t local = s.order[g1].first - h.first;
      if (s.rows.empty() || s.rows.back() != local) s.rows.push_back(local);
      s.row_of[g1] = s.rows.size() - 1;
      ++g1;
    }
    s.x.resize(s.rows.size() * f);
    s.y.resize(s.rows.size());
    read_shard_rows(h, f, s.rows, s.x.data(), s.y.data());
    for (std::size_t k = g0; k < g1; ++k) {
      const std::size_t pos = s.order[k].second, r = s.row_of[k];
      std::memcpy(out.x.data() + pos * f, s.x.data() + r * f, f * sizeof(float));
      out.y[pos] = s.y[r];
    }
    g0 = g1;
  }
  check_rows(st, out, indices);
}

// ---- single-file splits, collective MPI-IO reads ------------------------------

// The data transfer property list of every collective read.
PropList collective_dxpl(const std::string& path) {
  PropList dxpl(HPCML_CHECK_HDF5(H5Pcreate(H5P_DATASET_XFER), path));
  HPCML_CHECK_HDF5(H5Pset_dxpl_mpio(dxpl.get(), H5FD_MPIO_COLLECTIVE), path);
  return dxpl;
}

// Replaces the (validated) sec2 handles of a single-file split by the same file
// opened with the MPI-IO driver over `comm`. Collective over `comm`. All sec2
// objects are closed first: HDF5 would otherwise hand back the still-open
// sec2 file for the second open and ignore the MPI-IO access list.
void reopen_collective(DatasetState& st) {
  ShardHandle& h = st.shards[0];
  const MPI_Comm comm = st.comm;
  const bool contiguous = h.direct;  // contiguous, unfiltered datasets at known offsets
  const std::uint64_t features_offset = h.features_offset;
  h.features_space.reset();
  h.labels_space.reset();
  h.features.reset();
  h.labels.reset();
  h.file.reset();
  h.direct = false;
  h.fd = -1;
  h.map.reset();
  h.labels_cache.clear();
  std::exception_ptr error;
  try {
    Hdf5Lock lock;
    PropList fapl(HPCML_CHECK_HDF5(H5Pcreate(H5P_FILE_ACCESS), h.path));
    // A training batch is a few rows scattered over the whole file. ROMIO's
    // defaults serve a collective read of those by reading every byte between
    // the first and the last row (two-phase collective buffering and data
    // sieving, both over the whole extent): ~100x slower here. Without them the
    // collective call reads each run of rows once, on the rank that wants it.
    // (ROMIO_HINTS=<file> still lets an expert set other hints.)
    MPI_Info info = MPI_INFO_NULL;
    HPCML_CHECK_MPI(MPI_Info_create(&info));
    MPI_Info_set(info, "romio_cb_read", "disable");
    MPI_Info_set(info, "romio_ds_read", "disable");
    const herr_t set = H5Pset_fapl_mpio(fapl.get(), comm, info);
    if (set >= 0 && contiguous) {
      const int rc = MPI_File_open(comm, h.path.c_str(), MPI_MODE_RDONLY, info, &st.mpi_file);
      if (rc != MPI_SUCCESS) st.mpi_file = MPI_FILE_NULL;  // HDF5's reads remain
      st.mpi_features_offset = features_offset;
    }
    MPI_Info_free(&info);
    HPCML_CHECK_HDF5(set, h.path);
    h.file = File(H5Fopen(h.path.c_str(), H5F_ACC_RDONLY, fapl.get()));
    if (!h.file)
      HPCML_THROW(DataError, h.path + ": cannot open with the MPI-IO driver" + hdf5_error_detail());
    h.features = DataSet(
        HPCML_CHECK_HDF5(H5Dopen2(h.file.get(), "features", H5P_DEFAULT), h.path + ": features"));
    h.labels = DataSet(
        HPCML_CHECK_HDF5(H5Dopen2(h.file.get(), "labels", H5P_DEFAULT), h.path + ": labels"));
    h.features_space = DataSpace(HPCML_CHECK_HDF5(H5Dget_space(h.features.get()), h.path));
    h.labels_space = DataSpace(HPCML_CHECK_HDF5(H5Dget_space(h.labels.get()), h.path));
  } catch (...) {
    error = std::current_exception();
  }
  mpi::agree(comm, error);
  // Labels are 1/(F+1) of the data: small splits keep them all in memory (one
  // collective read of the whole dataset now instead of one per batch).
  if (h.samples <= label_cache_max_rows.load()) {
    try {
      h.labels_cache.resize(h.samples);
      Hdf5Lock lock;
      const PropList dxpl = collective_dxpl(h.path);
      HPCML_CHECK_HDF5(H5Dread(h.labels.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, dxpl.get(),
                               h.labels_cache.data()),
                       h.path + ": cannot read 'labels'");
    } catch (...) {
      error = std::current_exception();
    }
    mpi::agree(comm, error);
  }
}

// One collective read of this rank's rows `indices` (any order, repeats
// allowed, may be empty) of a single-file split. Every rank of st.comm must
// call it the same number of times; the indices are already range-checked.
// Reads the sorted unique rows s.rows of the features into x (rows x F) with one
// MPI_File_read_at_all over a file view of one block per run of rows.
void mpi_read_rows(const DatasetState& st, const std::vector<hsize_t>& rows, float* x) {
  const ShardHandle& h = st.shards[0];
  const std::size_t row_bytes = st.manifest.features * sizeof(float);
  MPI_Datatype row_type = MPI_DATATYPE_NULL, file_type = MPI_DATATYPE_NULL;
  HPCML_CHECK_MPI(MPI_Type_contiguous(static_cast<int>(row_bytes), MPI_BYTE, &row_type));
  HPCML_CHECK_MPI(MPI_Type_commit(&row_type));
  std::vector<int> lengths;
  std::vector<MPI_Aint> displacements;
  for (std::size_t i = 0; i < rows.size();) {
    std::size_t j = i + 1;
    while (j < rows.size() && rows[j] == rows[j - 1] + 1) ++j;
    lengths.push_back(static_cast<int>(j - i));
    displacements.push_back(static_cast<MPI_Aint>(st.mpi_features_offset + rows[i] * row_bytes));
    i = j;
  }
  int rc = MPI_SUCCESS;
  if (rows.empty()) {
    // Nothing to read, but the rank joins both collective calls.
    rc = MPI_File_set_view(st.mpi_file, 0, MPI_BYTE, MPI_BYTE, "native", MPI_INFO_NULL);
    if (rc == MPI_SUCCESS)
      rc = MPI_File_read_at_all(st.mpi_file, 0, nullptr, 0, row_type, MPI_STATUS_IGNORE);
  } else {
    HPCML_CHECK_MPI(MPI_Type_create_hindexed(static_cast<int>(lengths.size()), lengths.data(),
                                             displacements.data(), row_type, &file_type));
    HPCML_CHECK_MPI(MPI_Type_commit(&file_type));
    rc = MPI_File_set_view(st.mpi_file, 0, MPI_BYTE, file_type, "native", MPI_INFO_NULL);
    MPI_Status status;
    if (rc == MPI_SUCCESS)
      rc =
          MPI_File_read_at_all(st.mpi_file, 0, x, static_cast<int>(rows.size()), row_type, &status);
    int got = 0;
    if (rc == MPI_SUCCESS) MPI_Get_count(&status, row_type, &got);
    MPI_Type_free(&file_type);
    if (rc == MPI_SUCCESS && got != static_cast<int>(rows.size())) {
      MPI_Type_free(&row_type);
      HPCML_THROW(DataError, h.path + ": read " + std::to_string(got) + " of " +
                                 std::to_string(rows.size()) +
                                 " rows (the file ends inside the data: truncated?)");
    }
  }
  MPI_Type_free(&row_type);
  if (rc != MPI_SUCCESS)
    HPCML_THROW(DataError, h.path + ": collective MPI-IO read failed: " + mpi::error_string(rc));
}

void collective_read_rows(const DatasetState& st, std::span<const std::size_t> indices, Batch& out,
                          Scratch& s, ReadMethod method) {
  const ShardHandle& h = st.shards[0];
  const std::size_t f = st.manifest.features, n = indices.size();
  out.rows = n;
  out.cols = f;
  out.x.resize(n * f);
  out.y.resize(n);
  s.order.resize(n);
  for (std::size_t i = 0; i < n; ++i) s.order[i] = {indices[i], i};
  std::sort(s.order.begin(), s.order.end());
  s.rows.clear();
  s.row_of.resize(n);
  bool in_place = true;  // rows already sorted and unique: read straight into the batch
  for (std::size_t k = 0; k < n; ++k) {
    const hsize_t row = s.order[k].first;
    if (s.rows.empty() || s.rows.back() != row) s.rows.push_back(row);
    s.row_of[k] = s.rows.size() - 1;
    in_place = in_place && s.order[k].second == k && s.row_of[k] == k;
  }
  float* x = out.x.data();
  std::int32_t* y = out.y.data();
  if (!in_place) {
    s.x.resize(s.rows.size() * f);
    s.y.resize(s.rows.size());
    x = s.x.data();
    y = s.y.data();
  }
  float dummy_x = 0;
  std::int32_t dummy_y = 0;
  if (method != ReadMethod::kHyperslab && st.mpi_file != MPI_FILE_NULL && !h.labels_cache.empty()) {
    mpi_read_rows(st, s.rows, x);
    for (std::size_t r = 0; r < s.rows.size(); ++r) y[r] = h.labels_cache[s.rows[r]];
  } else {
    Hdf5Lock lock;
    const PropList dxpl = collective_dxpl(h.path);
    const DataSpace fx = select_rows(h.features_space.get(), s.rows, f, h.path);
    const DataSpace mx = memory_rows(s.rows.size(), f, h.path);
    HPCML_CHECK_HDF5(H5Dread(h.features.get(), H5T_NATIVE_FLOAT, mx.get(), fx.get(), dxpl.get(),
                             s.rows.empty() ? &dummy_x : x),
                     h.path + ": cannot read 'features'");
    if (h.labels_cache.empty()) {
      const DataSpace fy = select_rows(h.labels_space.get(), s.rows, 0, h.path);
      const DataSpace my = memory_rows(s.rows.size(), 0, h.path);
      HPCML_CHECK_HDF5(H5Dread(h.labels.get(), H5T_NATIVE_INT32, my.get(), fy.get(), dxpl.get(),
                               s.rows.empty() ? &dummy_y : y),
                       h.path + ": cannot read 'labels'");
    } else {
      for (std::size_t r = 0; r < s.rows.size(); ++r) y[r] = h.labels_cache[s.rows[r]];
    }
  }
  if (!in_place) {
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t pos = s.order[k].second, r = s.row_of[k];
      std::memcpy(out.x.data() + pos * f, s.x.data() + r * f, f * sizeof(float));
      out.y[pos] = s.y[r];
    }
  }
  check_rows(st, out, indices);
}

// HDF5's MPI-IO driver reads past the end of a file as zeros, like sec2: a
// file cut short after it was opened is refused before the read. Every rank
// sees the same file, so they agree without talking.
void check_not_truncated(const ShardHandle& h) {
  struct stat st {};
  if (h.data_end > 0 &&
      (::stat(h.path.c_str(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) < h.data_end))
    HPCML_THROW(DataError, h.path + ": file is truncated (" + std::to_string(st.st_size) +
                               " bytes, data ends at byte " + std::to_string(h.data_end) +
                               "); it changed after it was opened");
}

// Reads a pass over a single-file split collectively, on the caller's thread
// (a reader thread would need MPI_THREAD_MULTIPLE and an agreement on how far
// every rank has read ahead before it may stop). Constructed collectively.
// Batches are read in groups: one collective read fetches the rows of up to
// `group` consecutive batches (about kGroupRows rows), and next() hands them out
// one by one; a collective call costs a synchronisation of all ranks, far
// more than reading one batch of a few hundred KB. Every rank makes the same
// number of group reads: ranks with fewer batches (uneven evaluation blocks,
// or no rows at all) join the remaining ones with empty selections inside the
// next() that returns false.
class CollectiveReader final : public BatchReader {
 public:
  // HDF5 1.10 builds a union of hyperslab blocks in time that grows
  // quadratically beyond a few hundred blocks (measured: 256 random rows
  // 0.4 ms, 512 rows 7-10 ms), so a group holds about kGroupRows rows.
  static constexpr std::size_t kGroupRows = 256;

  CollectiveReader(std::shared_ptr<const DatasetState> state, std::vector<std::size_t> indices,
                   std::size_t batch_rows, ReadMethod method)
      : state_(std::move(state)),
        indices_(std::move(indices)),
        batch_rows_(batch_rows),
        method_(method) {
    group_ = std::max<std::size_t>(1, kGroupRows / batch_rows_);  // the same on every rank
    const std::size_t mine = (indices_.size() + batch_rows_ - 1) / batch_rows_;
    unsigned long long most = (mine + group_ - 1) / group_;
    HPCML_CHECK_MPI(
        MPI_Allreduce(MPI_IN_PLACE, &most, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, state_->comm));
    total_groups_ = static_cast<std::size_t>(most);
  }

  bool next(Batch& batch) override {
    const std::size_t f = state_->manifest.features;
    if (pos_ >= buffered_.rows) {
      // The next group: rows [g * group * batch_rows, ...) of this rank's indices.
      const std::size_t begin = std::min(indices_.size(), groups_done_ * group_ * batch_rows_);
      const std::size_t end = std::min(indices_.size(), begin + group_ * batch_rows_);
      if (begin == end) {
        finish();
        return false;
      }
      ++groups_done_;
      check_not_truncated(state_->shards[0]);
      collective_read_rows(*state_, std::span(indices_).subspan(begin, end - begin), buffered_,
                           scratch_, method_);
      pos_ = 0;
    }
    const std::size_t rows = std::min(batch_rows_, buffered_.rows - pos_);
    batch.rows = rows;
    batch.cols = f;
    batch.x.assign(buffered_.x.begin() + static_cast<std::ptrdiff_t>(pos_ * f),
                   buffered_.x.begin() + static_cast<std::ptrdiff_t>((pos_ + rows) * f));
    batch.y.assign(buffered_.y.begin() + static_cast<std::ptrdiff_t>(pos_),
                   buffered_.y.begin() + static_cast<std::ptrdiff_t>(pos_ + rows));
    pos_ += rows;
    return true;
  }

 private:
  // Joins the group reads this rank has no rows for.
  void finish() {
    Batch empty;
    while (groups_done_ < total_groups_) {
      ++groups_done_;
      collective_read_rows(*state_, {}, empty, scratch_, method_);
    }
  }

  std::shared_ptr<const DatasetState> state_;
  std::vector<std::size_t> indices_;
  std::size_t batch_rows_;
  ReadMethod method_;
  std::size_t group_ = 1;  // batches per collective read
  std::size_t total_groups_ = 0, groups_done_ = 0;
  Batch buffered_;       // the rows of the current group
  std::size_t pos_ = 0;  // next row of buffered_ to hand out
  Scratch scratch_;
};

// Background reader: a producer thread fills a bounded queue of batches.
class PrefetchReader final : public BatchReader {
 public:
  PrefetchReader(std::shared_ptr<const DatasetState> state, std::vector<std::size_t> indices,
                 std::size_t batch_rows, std::size_t depth, ReadMethod method)
      : state_(std::move(state)),
        indices_(std::move(indices)),
        batch_rows_(batch_rows),
        depth_(depth),
        method_(method) {
    thread_ = std::thread([this] { produce(); });
  }
  ~PrefetchReader() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  bool next(Batch& batch) override {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return !queue_.empty() || error_ || finished_; });
    if (!queue_.empty()) {
      Batch old = std::move(batch);
      batch = std::move(queue_.front());
      queue_.pop_front();
      // The caller's previous buffers go back to the producer for reuse.
      if (old.x.capacity() > 0 && free_.size() < depth_) free_.push_back(std::move(old));
      cv_.notify_all();
      return true;
    }
    if (error_) {
      std::exception_ptr e = std::exchange(error_, nullptr);
      finished_ = true;
      std::rethrow_exception(e);
    }
    return false;
  }

 private:
  void produce() {
    try {
      Scratch scratch;
      for (std::size_t begin = 0; begin < indices_.size(); begin += batch_rows_) {
        Batch b;
        {
          std::unique_lock<std::mutex> lock(mutex_);
          cv_.wait(lock, [&] { return stop_ || queue_.size() < depth_; });
          if (stop_) return;
          if (!free_.empty()) {
            b = std::move(free_.back());
            free_.pop_back();
          }
        }
        const std::size_t end = std::min(indices_.size(), begin + batch_rows_);
        read_rows_impl(*state_, std::span(indices_).subspan(begin, end - begin), b, scratch,
                       method_);
        {
          std::lock_guard<std::mutex> lock(mutex_);
          if (stop_) return;
          queue_.push_back(std::move(b));
        }
        cv_.notify_all();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      finished_ = true;
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
    }
    cv_.notify_all();
  }

  std::shared_ptr<const DatasetState> state_;
  std::vector<std::size_t> indices_;
  std::size_t batch_rows_;
  std::size_t depth_;
  ReadMethod method_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  std::vector<Batch> free_;
  std::exception_ptr error_;
  bool finished_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: started after every other member exists
};

// Depth 0: each batch is read on the caller's thread inside next(). With one
// core per rank a reader thread only time-slices with training, at moments
// that differ from rank to rank; reading in place keeps the ranks in step.
class SyncReader final : public BatchReader {
 public:
  SyncReader(std::shared_ptr<const DatasetState> state, std::vector<std::size_t> indices,
             std::size_t batch_rows, ReadMethod method)
      : state_(std::move(state)),
        indices_(std::move(indices)),
        batch_rows_(batch_rows),
        method_(method) {}

  bool next(Batch& batch) override {
    if (begin_ >= indices_.size()) return false;
    const std::size_t end = std::min(indices_.size(), begin_ + batch_rows_);
    read_rows_impl(*state_, std::span(indices_).subspan(begin_, end - begin_), batch, scratch_,
                   method_);
    begin_ = end;
    return true;
  }

 private:
  std::shared_ptr<const DatasetState> state_;
  std::vector<std::size_t> indices_;
  std::size_t batch_rows_;
  ReadMethod method_;
  Scratch scratch_;
  std::size_t begin_ = 0;
};

}  // namespace

// ---- ShardDataset -------------------------------------------------------------

ShardDataset::ShardDataset(std::shared_ptr<const DatasetState> state) : state_(std::move(state)) {}
ShardDataset::~ShardDataset() = default;

std::size_t ShardDataset::samples() const { return state_->info.samples; }
std::size_t ShardDataset::features() const { return state_->manifest.features; }
int ShardDataset::classes() const { return state_->manifest.classes; }
std::size_t ShardDataset::shard_count() const { return state_->shards.size(); }
const Manifest& ShardDataset::manifest() const { return state_->manifest; }
const std::string& ShardDataset::split() const { return state_->split; }
const std::string& ShardDataset::directory() const { return state_->dir; }
const std::vector<std::size_t>& ShardDataset::feature_shape() const {
  return state_->manifest.feature_shape;
}

bool ShardDataset::collective() const { return state_->comm != MPI_COMM_NULL; }

Layout ShardDataset::layout() const { return state_->info.layout; }

std::string ShardDataset::describe() const {
  const std::string where = layout() == Layout::kSingleFile
                                ? std::string(" in one file, ") +
                                      (collective() ? "collective MPI-IO reads" : "per-rank reads")
                                : " in " + std::to_string(shard_count()) + " shards";
  return state_->manifest.dataset + "/" + state_->split + ": " + std::to_string(samples()) + " x " +
         std::to_string(features()) + where + " (" + state_->dir + ")";
}

void ShardDataset::set_prefetch_depth(std::size_t depth) { prefetch_depth_ = depth; }

std::unique_ptr<BatchReader> ShardDataset::read(std::vector<std::size_t> indices,
                                                std::size_t batch_rows) {
  auto check = [&] {
    if (batch_rows == 0) HPCML_THROW(ConfigError, describe() + ": batch size must be >= 1");
    for (std::size_t i : indices)
      if (i >= samples())
        HPCML_THROW(DataError, state_->dir + ": sample index " + std::to_string(i) +
                                   " is out of range for split '" + state_->split + "' with " +
                                   std::to_string(samples()) + " samples");
  };
  if (collective()) {
    mpi::agree(state_->comm, check);
    return std::make_unique<CollectiveReader>(state_, std::move(indices), batch_rows, method_);
  }
  check();
  if (prefetch_depth_ == 0)
    return std::make_unique<SyncReader>(state_, std::move(indices), batch_rows, method_);
  return std::make_unique<PrefetchReader>(state_, std::move(indices), batch_rows, prefetch_depth_,
                                          method_);
}

void ShardDataset::read_rows(std::span<const std::size_t> indices, Batch& out) const {
  Scratch scratch;
  if (collective()) {
    mpi::agree(state_->comm, [&] {
      for (std::size_t i : indices)
        if (i >= samples())
          HPCML_THROW(DataError, state_->dir + ": sample index " + std::to_string(i) +
                                     " is out of range for split '" + state_->split + "' with " +
                                     std::to_string(samples()) + " samples");
      check_not_truncated(state_->shards[0]);
    });
    collective_read_rows(*state_, indices, out, scratch, method_);
    return;
  }
  read_rows_impl(*state_, indices, out, scratch, method_);
}

Batch ShardDataset::read_all() const {
  Batch b;
  const std::size_t f = features();
  b.rows = samples();
  b.cols = f;
  b.x.resize(b.rows * f);
  b.y.resize(b.rows);
  for (const ShardHandle& h : state_->shards) {
    Hdf5Lock lock;
    HPCML_CHECK_HDF5(H5Dread(h.features.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                             b.x.data() + h.first * f),
                     h.path + ": cannot read 'features'");
    HPCML_CHECK_HDF5(H5Dread(h.labels.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                             b.y.data() + h.first),
                     h.path + ": cannot read 'labels'");
  }
  std::vector<std::size_t> all(b.rows);
  for (std::size_t i = 0; i < b.rows; ++i) all[i] = i;
  check_rows(*state_, b, all);
  return b;
}

ShardCheck ShardDataset::check_shard(std::size_t shard) const {
  if (shard >= shard_count()) {
    ShardCheck c;
    c.shard = shard;
    c.problem = state_->dir + ": shard " + std::to_string(shard) + " does not exist in split '" +
                state_->split + "' (" + std::to_string(shard_count()) + " shards)";
    return c;
  }
  const auto start = std::chrono::steady_clock::now();
  ShardCheck c = check_opened_shard(*state_, shard, state_->shards[shard]);
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return c;
}

void ShardDataset::verify(std::span<const std::size_t> shard_ids) const {
  for (std::size_t id : shard_ids) {
    ShardCheck c = check_shard(id);
    if (!c.ok) HPCML_THROW(DataError, c.problem);
  }
}

namespace detail {
void set_label_cache_max_rows(std::size_t rows) { label_cache_max_rows = rows; }
void set_mapped_size_check(bool on) { mapped_size_check = on; }
}  // namespace detail

ShardCheck check_shard_file(const std::string& dir, const Manifest& manifest,
                            const std::string& split, std::size_t shard) {
  const auto start = std::chrono::steady_clock::now();
  DatasetState st;
  st.dir = dir;
  st.split = split;
  st.manifest = manifest;
  ShardCheck c;
  c.shard = shard;
  auto it = manifest.splits.find(split);
  if (it == manifest.splits.end() || shard >= it->second.shards.size()) {
    c.problem = dir + ": split '" + split + "' has no shard " + std::to_string(shard);
    return c;
  }
  st.info = it->second;
  for (const auto& sh : st.info.shards) st.firsts.push_back(sh.first_index);
  c.file = (fs::path(dir) / st.info.shards[shard].file).string();
  c.samples = st.info.shards[shard].samples;
  try {
    const ShardHandle h = open_shard(st, shard);
    c = check_opened_shard(st, shard, h);
  } catch (const std::exception& e) {
    c.problem = e.what();
  }
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return c;
}

namespace {
std::shared_ptr<DatasetState> open_state(const std::string& dir, const std::string& split) {
  auto st = std::make_shared<DatasetState>();
  st->dir = dir;
  st->split = split;
  st->manifest = read_manifest(dir);
  auto it = st->manifest.splits.find(split);
  if (it == st->manifest.splits.end()) {
    std::string have;
    for (const auto& [name, s] : st->manifest.splits) have += (have.empty() ? "" : ", ") + name;
    HPCML_THROW(DataError, (fs::path(dir) / kManifestName).string() + ": has no split '" + split +
                               "' (splits: " + (have.empty() ? "none" : have) + ")");
  }
  st->info = it->second;
  for (std::size_t i = 0; i < st->info.shards.size(); ++i) {
    st->firsts.push_back(st->info.shards[i].first_index);
    st->shards.push_back(open_shard(*st, i));
  }
  return st;
}
}  // namespace

std::unique_ptr<ShardDataset> open_dataset(const std::string& dir, const std::string& split) {
  return std::make_unique<ShardDataset>(open_state(dir, split));
}

std::unique_ptr<ShardDataset> open_dataset(const std::string& dir, const std::string& split,
                                           MPI_Comm comm) {
  std::shared_ptr<DatasetState> st;
  mpi::agree(comm, [&] { st = open_state(dir, split); });
  if (st->info.layout == Layout::kSingleFile) {
    HPCML_CHECK_MPI(MPI_Comm_dup(comm, &st->comm));
    reopen_collective(*st);
  }
  return std::make_unique<ShardDataset>(std::move(st));
}

}  // namespace hpcml::io

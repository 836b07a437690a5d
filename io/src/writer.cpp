#include "hpcml/io/writer.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <vector>

#include "hdf5_util.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/io/hdf5.hpp"
#include "hpcml/mpi/agree.hpp"
#include "hpcml/mpi/check.hpp"

namespace hpcml::io {

namespace fs = std::filesystem;

namespace {

std::string shape_text(const std::vector<std::size_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Checks everything that can be checked before writing a byte and returns the
// manifest to extend (the existing one, or a fresh one).
Manifest prepare(const LabeledData& data, const ShardWriteOptions& o) {
  check_split_name(o.split);
  if (o.dataset.empty()) HPCML_THROW(DataError, o.out_dir + ": dataset name must not be empty");
  if (o.shards < 1) HPCML_THROW(DataError, o.out_dir + ": shard count must be >= 1");
  if (o.shards > 99999)
    HPCML_THROW(DataError, o.out_dir + ": shard count " + std::to_string(o.shards) +
                               " exceeds the file-name limit of 99999");
  if (data.samples == 0) HPCML_THROW(DataError, data.features_source + ": contains no samples");
  if (o.shards > data.samples)
    HPCML_THROW(DataError, data.features_source + ": cannot split " + std::to_string(data.samples) +
                               " samples into " + std::to_string(o.shards) +
                               " shards (every shard needs at least one sample)");
  if (o.classes > kMaxClasses)
    HPCML_THROW(DataError, o.out_dir + ": class count " + std::to_string(o.classes) +
                               " is more than the " + std::to_string(kMaxClasses) +
                               " hpcml supports");
  if (data.features == 0)
    HPCML_THROW(DataError, data.features_source + ": samples have 0 features");
  if (data.features > kMaxFeatures)
    HPCML_THROW(DataError, data.features_source + ": " + std::to_string(data.features) +
                               " features per sample is more than the " +
                               std::to_string(kMaxFeatures) + " hpcml supports");
  validate(data, o.classes);

  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (!fs::is_directory(o.out_dir, ec))
    HPCML_THROW(DataError, o.out_dir + ": cannot create output directory");

  Manifest m;
  if (fs::exists(fs::path(o.out_dir) / kManifestName, ec)) {
    m = read_manifest(o.out_dir);
    const std::string path = (fs::path(o.out_dir) / kManifestName).string();
    auto mismatch = [&](const std::string& what, const std::string& have, const std::string& want) {
      HPCML_THROW(DataError, path + ": cannot add split '" + o.split + "': existing " + what +
                                 " is " + have + " but the new data has " + want);
    };
    if (m.dataset != o.dataset) mismatch("dataset name", m.dataset, o.dataset);
    if (m.features != data.features)
      mismatch("feature count", std::to_string(m.features), std::to_string(data.features));
    if (m.feature_shape != data.feature_shape)
      mismatch("feature_shape", shape_text(m.feature_shape), shape_text(data.feature_shape));
    if (m.classes != o.classes)
      mismatch("class count", std::to_string(m.classes), std::to_string(o.classes));
  } else {
    m.dataset = o.dataset;
    m.features = data.features;
    m.feature_shape = data.feature_shape;
    m.classes = o.classes;
  }
  return m;
}

ShardInfo write_shard(const LabeledData& data, const ShardWriteOptions& o, std::size_t index) {
  const auto start = std::chrono::steady_clock::now();
  const auto [begin, end] = shard_rows(data.samples, o.shards, index);
  const std::size_t n = end - begin, f = data.features;
  ShardInfo info;
  info.file = o.layout == Layout::kSingleFile ? single_file_name(o.split)
                                              : shard_file_name(o.split, index, o.shards);
  info.samples = n;
  info.first_index = begin;
  info.bytes = n * (4 * f + 4);
  const float* x = data.x.data() + begin * f;
  const std::int32_t* y = data.y.data() + begin;
  info.crc32 = crc32_update(crc32_update(0, x, n * f * sizeof(float)), y, n * sizeof(std::int32_t));

  const fs::path final_path = fs::path(o.out_dir) / info.file;
  const std::string tmp =
      final_path.string() + ".tmp-" + std::to_string(static_cast<long>(::getpid()));
  const std::string& ctx = tmp;
  try {
    Hdf5Lock lock;
    File file(HPCML_CHECK_HDF5(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                               ctx + ": cannot create"));
    PropList dcpl(HPCML_CHECK_HDF5(H5Pcreate(H5P_DATASET_CREATE), ctx));
    // Contiguous, unfiltered storage: a row is one plain byte range in the file,
    // so random row reads cost one small read each.
    HPCML_CHECK_HDF5(H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS), ctx);
    HPCML_CHECK_HDF5(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), ctx);
    {
      const hsize_t dims[2] = {n, f};
      DataSpace space(HPCML_CHECK_HDF5(H5Screate_simple(2, dims, nullptr), ctx));
      DataSet ds(HPCML_CHECK_HDF5(H5Dcreate2(file.get(), "features", H5T_IEEE_F32LE, space.get(),
                                             H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                                  ctx + ": cannot create dataset 'features'"));
      HPCML_CHECK_HDF5(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x),
                       ctx + ": cannot write 'features'");
    }
    {
      const hsize_t dims[1] = {n};
      DataSpace space(HPCML_CHECK_HDF5(H5Screate_simple(1, dims, nullptr), ctx));
      DataSet ds(HPCML_CHECK_HDF5(H5Dcreate2(file.get(), "labels", H5T_STD_I32LE, space.get(),
                                             H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                                  ctx + ": cannot create dataset 'labels'"));
      HPCML_CHECK_HDF5(H5Dwrite(ds.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, y),
                       ctx + ": cannot write 'labels'");
    }
    const hid_t root = file.get();
    write_int_attribute(root, "format_version", kShardFormatVersion, ctx);
    write_string_attribute(root, "dataset", o.dataset, ctx);
    write_string_attribute(root, "split", o.split, ctx);
    write_int_attribute(root, "shard_index", static_cast<std::int64_t>(index), ctx);
    write_int_attribute(root, "shard_count", static_cast<std::int64_t>(o.shards), ctx);
    write_int_attribute(root, "first_index", static_cast<std::int64_t>(begin), ctx);
    std::vector<std::int64_t> shape(data.feature_shape.begin(), data.feature_shape.end());
    write_int_array_attribute(root, "feature_shape", shape, ctx);
    HPCML_CHECK_HDF5(H5Fclose(file.release()), ctx + ": cannot close (disk full?)");
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, final_path, ec);
  if (ec)
    HPCML_THROW(DataError,
                final_path.string() + ": cannot rename from " + tmp + ": " + ec.message());
  if (o.progress) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char buf[256];
    std::snprintf(buf, sizeof buf, "wrote %s: %zu samples, %.1f MB, %.2f s", final_path.c_str(), n,
                  static_cast<double>(info.bytes) / 1e6, s);
    o.progress(buf);
  }
  return info;
}

// Replaces the split's entry and writes the manifest, then deletes the old
// shard files of that split that the new entry does not use. A file is deleted
// only if the old manifest listed it for this split, its name has the exact
// shard form "<split>-ddddd-of-ddddd.h5" (so manifest.json, a user's file or
// another split's shard never match), no other split lists it, and it is a
// regular file (not a directory or a symlink's target).
void finish(Manifest m, SplitInfo split, const ShardWriteOptions& o) {
  std::set<std::string> stale;
  if (auto it = m.splits.find(o.split); it != m.splits.end())
    for (const auto& sh : it->second.shards)
      if (is_shard_file_name(sh.file, o.split) || sh.file == single_file_name(o.split))
        stale.insert(sh.file);
  for (const auto& sh : split.shards) stale.erase(sh.file);
  m.splits[o.split] = std::move(split);
  for (const auto& [name, other] : m.splits)
    if (name != o.split)
      for (const auto& sh : other.shards) stale.erase(sh.file);
  write_manifest(o.out_dir, m);
  for (const auto& file : stale) {
    const fs::path p = fs::path(o.out_dir) / file;
    std::error_code ec;
    if (fs::is_regular_file(fs::symlink_status(p, ec))) fs::remove(p, ec);
  }
  if (o.progress)
    o.progress("wrote " + (fs::path(o.out_dir) / kManifestName).string() + ": split '" + o.split +
               "' with " + std::to_string(m.splits[o.split].samples) + " samples in " +
               (o.layout == Layout::kSingleFile ? std::string("one file (single-file layout)")
                                                : std::to_string(o.shards) + " shards"));
}

ShardWriteOptions normalized(ShardWriteOptions o) {
  if (o.layout == Layout::kSingleFile) o.shards = 1;
  return o;
}

}  // namespace

SplitInfo write_split(const LabeledData& data, const ShardWriteOptions& in) {
  const ShardWriteOptions options = normalized(in);
  Manifest m = prepare(data, options);
  SplitInfo split;
  split.samples = data.samples;
  split.layout = options.layout;
  for (std::size_t i = 0; i < options.shards; ++i)
    split.shards.push_back(write_shard(data, options, i));
  finish(std::move(m), split, options);
  return split;
}

SplitInfo write_split(const LabeledData& data, const ShardWriteOptions& in, MPI_Comm comm) {
  const ShardWriteOptions options = normalized(in);
  int rank = 0, size = 1;
  HPCML_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  HPCML_CHECK_MPI(MPI_Comm_size(comm, &size));
  Manifest m;
  std::exception_ptr error;
  try {
    m = prepare(data, options);
  } catch (...) {
    error = std::current_exception();
  }
  mpi::agree(comm, error);

  // One row of 4 numbers per shard; ranks fill only their own rows, the sum
  // over ranks is the full table.
  std::vector<std::uint64_t> table(options.shards * 4, 0);
  try {
    for (std::size_t i = static_cast<std::size_t>(rank); i < options.shards;
         i += static_cast<std::size_t>(size)) {
      const ShardInfo info = write_shard(data, options, i);
      table[4 * i + 0] = info.samples;
      table[4 * i + 1] = info.first_index;
      table[4 * i + 2] = info.crc32;
      table[4 * i + 3] = info.bytes;
    }
  } catch (...) {
    error = std::current_exception();
  }
  mpi::agree(comm, error);
  HPCML_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, table.data(), static_cast<int>(table.size()),
                                MPI_UINT64_T, MPI_SUM, comm));
  SplitInfo split;
  split.samples = data.samples;
  split.layout = options.layout;
  for (std::size_t i = 0; i < options.shards; ++i) {
    ShardInfo info;
    info.file = options.layout == Layout::kSingleFile
                    ? single_file_name(options.split)
                    : shard_file_name(options.split, i, options.shards);
    info.samples = table[4 * i + 0];
    info.first_index = table[4 * i + 1];
    info.crc32 = static_cast<std::uint32_t>(table[4 * i + 2]);
    info.bytes = table[4 * i + 3];
    split.shards.push_back(std::move(info));
  }
  try {
    if (rank == 0) finish(std::move(m), split, options);
  } catch (...) {
    error = std::current_exception();
  }
  mpi::agree(comm, error);
  return split;
}

}  // namespace hpcml::io

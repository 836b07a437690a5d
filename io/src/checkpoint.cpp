#include "hpcml/io/checkpoint.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <regex>
#include <thread>

#include "hpcml/config.hpp"
#include "hpcml/core/digest.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/optimizer.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/io/hdf5.hpp"
#include "hpcml/mpi/agree.hpp"
#include "hpcml/mpi/check.hpp"

namespace hpcml::io {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

// ---- attributes (callers hold Hdf5Lock) ------------------------------------

void put_attribute(hid_t obj, const char* name, hid_t file_type, hid_t mem_type, hid_t space,
                   const void* data, const std::string& ctx) {
  const std::string what = ctx + ": cannot write attribute '" + name + "'";
  Attribute attr(
      HPCML_CHECK_HDF5(H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT), what));
  HPCML_CHECK_HDF5(H5Awrite(attr.get(), mem_type, data), what);
}

void put_ints(hid_t obj, const char* name, const std::vector<std::int64_t>& values,
              const std::string& ctx) {
  const hsize_t dims[1] = {values.size()};
  DataSpace space(HPCML_CHECK_HDF5(H5Screate_simple(1, dims, nullptr), ctx));
  put_attribute(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), values.data(), ctx);
}

void put_int(hid_t obj, const char* name, std::int64_t value, const std::string& ctx) {
  DataSpace space(HPCML_CHECK_HDF5(H5Screate(H5S_SCALAR), ctx));
  put_attribute(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), &value, ctx);
}

void put_double(hid_t obj, const char* name, double value, const std::string& ctx) {
  DataSpace space(HPCML_CHECK_HDF5(H5Screate(H5S_SCALAR), ctx));
  put_attribute(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(), &value, ctx);
}

// Fixed-length strings, stored inside the (checksummed) attribute message:
// variable-length ones live in a global heap that has no checksum, and HDF5
// crashes while converting a corrupt heap reference.
void put_string(hid_t obj, const char* name, const std::string& value, const std::string& ctx) {
  DataType type(HPCML_CHECK_HDF5(H5Tcopy(H5T_C_S1), ctx));
  HPCML_CHECK_HDF5(H5Tset_size(type.get(), std::max<std::size_t>(value.size(), 1)), ctx);
  HPCML_CHECK_HDF5(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), ctx);
  HPCML_CHECK_HDF5(H5Tset_cset(type.get(), H5T_CSET_UTF8), ctx);
  DataSpace space(HPCML_CHECK_HDF5(H5Screate(H5S_SCALAR), ctx));
  std::string padded = value;
  padded.resize(std::max<std::size_t>(value.size(), 1), '\0');
  put_attribute(obj, name, type.get(), type.get(), space.get(), padded.data(), ctx);
}

Attribute open_attribute(hid_t obj, const char* name, const std::string& ctx) {
  const std::string what = ctx + ": attribute '" + name + "'";
  if (HPCML_CHECK_HDF5(H5Aexists(obj, name), what) == 0)
    HPCML_THROW(DataError, what + " is missing");
  return Attribute(HPCML_CHECK_HDF5(H5Aopen(obj, name, H5P_DEFAULT), what));
}

std::vector<std::int64_t> get_ints(hid_t obj, const char* name, const std::string& ctx,
                                   hssize_t max_elements = 1) {
  const std::string what = ctx + ": attribute '" + name + "'";
  Attribute attr = open_attribute(obj, name, ctx);
  DataType type(HPCML_CHECK_HDF5(H5Aget_type(attr.get()), what));
  if (H5Tget_class(type.get()) != H5T_INTEGER) HPCML_THROW(DataError, what + " is not an integer");
  DataSpace space(HPCML_CHECK_HDF5(H5Aget_space(attr.get()), what));
  const hssize_t n = HPCML_CHECK_HDF5(H5Sget_simple_extent_npoints(space.get()), what);
  if (n < 1 || n > max_elements)
    HPCML_THROW(DataError, what + " has " + std::to_string(n) + " elements");
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  HPCML_CHECK_HDF5(H5Aread(attr.get(), H5T_NATIVE_INT64, out.data()), what);
  return out;
}

std::int64_t get_int(hid_t obj, const char* name, const std::string& ctx, std::int64_t min = 0) {
  const std::int64_t v = get_ints(obj, name, ctx).front();
  if (v < min)
    HPCML_THROW(DataError, ctx + ": attribute '" + name + "' is " + std::to_string(v) +
                               ", expected >= " + std::to_string(min));
  return v;
}

double get_double(hid_t obj, const char* name, const std::string& ctx) {
  const std::string what = ctx + ": attribute '" + name + "'";
  Attribute attr = open_attribute(obj, name, ctx);
  DataType type(HPCML_CHECK_HDF5(H5Aget_type(attr.get()), what));
  if (H5Tget_class(type.get()) != H5T_FLOAT) HPCML_THROW(DataError, what + " is not a float");
  DataSpace space(HPCML_CHECK_HDF5(H5Aget_space(attr.get()), what));
  if (HPCML_CHECK_HDF5(H5Sget_simple_extent_npoints(space.get()), what) != 1)
    HPCML_THROW(DataError, what + " is not a scalar");
  double v = 0;
  HPCML_CHECK_HDF5(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v), what);
  return v;
}

std::string get_string(hid_t obj, const char* name, const std::string& ctx) {
  const std::string what = ctx + ": attribute '" + name + "'";
  Attribute attr = open_attribute(obj, name, ctx);
  DataType type(HPCML_CHECK_HDF5(H5Aget_type(attr.get()), what));
  if (H5Tget_class(type.get()) != H5T_STRING ||
      HPCML_CHECK_HDF5(H5Tis_variable_str(type.get()), what) != 0)
    HPCML_THROW(DataError, what + " is not a fixed-length string");
  DataSpace space(HPCML_CHECK_HDF5(H5Aget_space(attr.get()), what));
  if (HPCML_CHECK_HDF5(H5Sget_simple_extent_npoints(space.get()), what) != 1)
    HPCML_THROW(DataError, what + " is not a scalar");
  const std::size_t size = H5Tget_size(type.get());
  if (size == 0 || size > 65536)
    HPCML_THROW(DataError, what + " has an implausible length " + std::to_string(size));
  std::string out(size, '\0');
  HPCML_CHECK_HDF5(H5Aread(attr.get(), type.get(), out.data()), what);
  out.resize(strnlen(out.data(), out.size()));
  return out;
}

// ---- datasets ---------------------------------------------------------------

void write_floats(hid_t file, const char* name, std::span<const float> values,
                  const std::string& ctx) {
  const std::string what = ctx + ": dataset '" + name + "'";
  const hsize_t dims[1] = {values.size()};
  DataSpace space(HPCML_CHECK_HDF5(H5Screate_simple(1, dims, nullptr), what));
  PropList dcpl(HPCML_CHECK_HDF5(H5Pcreate(H5P_DATASET_CREATE), what));
  // Chunks of at most 1 Mi floats (4 MB), each with its own Fletcher32 checksum.
  const hsize_t chunk[1] = {std::clamp<hsize_t>(values.size(), 1, hsize_t{1} << 20)};
  HPCML_CHECK_HDF5(H5Pset_chunk(dcpl.get(), 1, chunk), what);
  HPCML_CHECK_HDF5(H5Pset_fletcher32(dcpl.get()), what);
  DataSet ds(HPCML_CHECK_HDF5(
      H5Dcreate2(file, name, H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
      what));
  if (!values.empty()) {
    HPCML_CHECK_HDF5(
        H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), what);
  }
}

std::vector<float> read_floats(hid_t file, const char* name, const std::string& ctx) {
  const std::string what = ctx + ": dataset '" + name + "'";
  if (HPCML_CHECK_HDF5(H5Lexists(file, name, H5P_DEFAULT), what) <= 0)
    HPCML_THROW(DataError, what + " is missing");
  DataSet ds(HPCML_CHECK_HDF5(H5Dopen2(file, name, H5P_DEFAULT), what));
  DataType type(HPCML_CHECK_HDF5(H5Dget_type(ds.get()), what));
  if (H5Tget_class(type.get()) != H5T_FLOAT || H5Tget_size(type.get()) != 4)
    HPCML_THROW(DataError, what + " is not float32");
  DataSpace space(HPCML_CHECK_HDF5(H5Dget_space(ds.get()), what));
  if (H5Sget_simple_extent_ndims(space.get()) != 1)
    HPCML_THROW(DataError, what + " is not one-dimensional");
  hsize_t n = 0;
  HPCML_CHECK_HDF5(H5Sget_simple_extent_dims(space.get(), &n, nullptr), what);
  // The file's size bounds what it can hold; a corrupt header must not make us
  // allocate more (4 bytes per value, Fletcher32 adds 4 per chunk).
  hsize_t file_size = 0;
  HPCML_CHECK_HDF5(H5Fget_filesize(file, &file_size), what);
  if (n > file_size / 4)
    HPCML_THROW(DataError, what + " declares " + std::to_string(n) +
                               " values, more than the file's " + std::to_string(file_size) +
                               " bytes can hold");
  std::vector<float> out(static_cast<std::size_t>(n));
  if (n > 0) {
    if (H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
      HPCML_THROW(DataError, what + ": cannot read it" + hdf5_error_detail());
  }
  return out;
}

// ---- files ------------------------------------------------------------------

[[noreturn]] void fail_errno(const std::string& path, const char* step, int err) {
  HPCML_THROW(Error, path + ": " + step + " failed: " + std::strerror(err));
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) fail_errno(path, "open for fsync", errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some file systems refuse fsync on directories (EINVAL): nothing more to do there.
  if (rc != 0 && !(directory && err == EINVAL)) fail_errno(path, "fsync", err);
}

std::size_t parameter_count(const std::vector<std::int64_t>& layers) {
  std::size_t n = 0;
  for (std::size_t i = 0; i + 1 < layers.size(); ++i) {
    n += static_cast<std::size_t>(layers[i]) * static_cast<std::size_t>(layers[i + 1]) +
         static_cast<std::size_t>(layers[i + 1]);
  }
  return n;
}

std::string layers_text(const std::vector<std::int64_t>& layers) {
  std::string s;
  for (auto l : layers) s += (s.empty() ? "" : "-") + std::to_string(l);
  return s;
}

}  // namespace

std::string checkpoint_file_name(std::size_t global_step) {
  char name[48];
  std::snprintf(name, sizeof name, "ckpt-%012zu.h5", global_step);
  return name;
}

std::string manifest_digest(const std::string& dir, const std::string& split) {
  const std::string path = (fs::path(dir) / "manifest.json").string();
  std::ifstream in(path, std::ios::binary);
  HPCML_REQUIRE(in.good(), DataError, path + ": cannot open");
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  HPCML_REQUIRE(!in.bad(), DataError, path + ": read failed");
  const std::string key = "\n" + split;
  return digest_string(fnv1a64(key.data(), key.size(), fnv1a64(bytes.data(), bytes.size())));
}

CheckpointWrite write_checkpoint(const std::string& path, const TrainState& state,
                                 std::span<const float> momentum, CheckpointInfo info) {
  const auto t0 = now_s();
  HPCML_REQUIRE(momentum.size() == optimizer_slots(info.optimizer) * state.parameters.size(), Error,
                path + ": the " + info.optimizer + " optimizer's state has " +
                    std::to_string(momentum.size()) + " values, " +
                    std::to_string(state.parameters.size()) + " parameters");
  const std::string tmp = path + ".tmp";
  struct RemoveUnlessDone {
    std::string path;
    bool done = false;
    ~RemoveUnlessDone() {
      if (!done) ::unlink(path.c_str());
    }
  } guard{tmp};
  info.hpcml_version = HPCML_VERSION;
  // A full disk is refused before HDF5 starts: when one of its writes fails,
  // H5Fflush and H5Fclose fail too and leave a half-closed file that can crash
  // HDF5's own cleanup in MPI_Finalize. (Space taken by others during the
  // write can still make it fail; the error names the file either way.)
  {
    fs::path dir = fs::path(tmp).parent_path();
    struct statvfs st {};
    if (::statvfs(dir.empty() ? "." : dir.c_str(), &st) == 0) {
      const std::uint64_t free = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
      const std::uint64_t need = 2 * 4 * static_cast<std::uint64_t>(momentum.size()) + (64u << 10);
      if (free < need)
        HPCML_THROW(Error, tmp + ": not enough space for a checkpoint (" + std::to_string(free) +
                               " bytes free, about " + std::to_string(need) +
                               " needed): No space left on device");
    }
  }
  {
    Hdf5Lock lock;
    // The 1.10 format: checksummed superblock and object headers, so a flipped
    // metadata byte fails to open rather than reading as something else.
    PropList fapl(HPCML_CHECK_HDF5(H5Pcreate(H5P_FILE_ACCESS), tmp));
    HPCML_CHECK_HDF5(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_V110), tmp);
    HPCML_CHECK_HDF5(H5Pset_fapl_sec2(fapl.get()), tmp);
    File file(HPCML_CHECK_HDF5(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()),
                               tmp + ": cannot create"));
    const hid_t f = file.get();
    write_floats(f, "parameters", state.parameters, tmp);
    write_floats(f, "momentum", momentum, tmp);
    put_string(f, "format", kCheckpointFormat, tmp);
    put_int(f, "format_version", info.format_version, tmp);
    put_string(f, "hpcml_version", info.hpcml_version, tmp);
    put_int(f, "global_step", static_cast<std::int64_t>(state.global_step), tmp);
    put_int(f, "epoch", state.epoch, tmp);
    put_int(f, "step_in_epoch", static_cast<std::int64_t>(state.step_in_epoch), tmp);
    put_int(f, "seed", static_cast<std::int64_t>(state.seed), tmp);
    put_int(f, "ranks", state.ranks, tmp);
    put_int(f, "local_batch", static_cast<std::int64_t>(state.local_batch), tmp);
    put_int(f, "global_batch",
            static_cast<std::int64_t>(state.local_batch * static_cast<std::size_t>(state.ranks)),
            tmp);
    put_int(f, "steps_per_epoch", static_cast<std::int64_t>(state.steps_per_epoch), tmp);
    put_int(f, "total_steps", static_cast<std::int64_t>(state.total_steps), tmp);
    put_int(f, "warmup_steps", static_cast<std::int64_t>(state.warmup_steps), tmp);
    // fp16's dynamic loss scale (train.precision = "fp16"): absent otherwise.
    if (state.loss_scale > 0) {
      put_double(f, "loss_scale", state.loss_scale, tmp);
      put_int(f, "loss_scale_good_steps", static_cast<std::int64_t>(state.loss_scale_good_steps),
              tmp);
      put_int(f, "skipped_steps", static_cast<std::int64_t>(state.skipped_steps), tmp);
    }
    put_ints(f, "layers", info.layers, tmp);
    put_string(f, "dataset_digest", info.dataset_digest, tmp);
    put_string(f, "config_hash", info.config_hash, tmp);
    put_int(f, "restarts", info.restarts, tmp);
    put_string(f, "run_dir", info.run_dir, tmp);
    put_string(f, "optimizer", info.optimizer, tmp);
    put_string(f, "model", info.model, tmp);
    // A layer-list model's parameter count does not follow from 'layers': record it.
    if (info.layer_list)
      put_int(f, "parameters", static_cast<std::int64_t>(state.parameters.size()), tmp);
    put_string(f, "params_digest", digest_of(state.parameters), tmp);
    put_string(f, "momentum_digest", digest_of(momentum), tmp);
    HPCML_CHECK_HDF5(H5Fflush(f, H5F_SCOPE_GLOBAL), tmp + ": flush");
    HPCML_CHECK_HDF5(H5Fclose(file.release()), tmp + ": close");
  }
  fsync_path(tmp, false);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail_errno(path, "rename", errno);
  guard.done = true;
  fs::path dir = fs::path(path).parent_path();
  fsync_path(dir.empty() ? "." : dir.string(), true);
  CheckpointWrite w;
  std::error_code ec;
  w.bytes = static_cast<std::size_t>(fs::file_size(path, ec));
  w.seconds = now_s() - t0;
  return w;
}

LoadedCheckpoint read_checkpoint(const std::string& path) {
  LoadedCheckpoint c;
  c.path = path;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    HPCML_THROW(DataError, path + ": checkpoint file is missing or not a regular file");
  const std::string ctx = path;
  std::vector<float> params, momentum;
  std::size_t recorded_parameters = 0;
  TrainState& s = c.state.state;
  {
    Hdf5Lock lock;
    File file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!file) {
      HPCML_THROW(DataError, path + ": not a readable HDF5 checkpoint (truncated or corrupt" +
                                 hdf5_error_detail() + ")");
    }
    const hid_t f = file.get();
    const std::string format = get_string(f, "format", ctx);
    if (format != kCheckpointFormat)
      HPCML_THROW(DataError, ctx + ": attribute 'format' is '" + format.substr(0, 40) +
                                 "', not an hpcml checkpoint");
    c.info.format_version = static_cast<int>(get_int(f, "format_version", ctx, 1));
    if (c.info.format_version > kCheckpointFormatVersion)
      HPCML_THROW(DataError, ctx + ": format version " + std::to_string(c.info.format_version) +
                                 " was written by a newer hpcml (this one reads up to " +
                                 std::to_string(kCheckpointFormatVersion) + ")");
    c.info.hpcml_version = get_string(f, "hpcml_version", ctx);
    s.global_step = static_cast<std::size_t>(get_int(f, "global_step", ctx));
    s.epoch = static_cast<int>(get_int(f, "epoch", ctx));
    s.step_in_epoch = static_cast<std::size_t>(get_int(f, "step_in_epoch", ctx));
    s.seed = static_cast<std::uint64_t>(get_int(f, "seed", ctx));
    s.ranks = static_cast<int>(get_int(f, "ranks", ctx, 1));
    s.local_batch = static_cast<std::size_t>(get_int(f, "local_batch", ctx, 1));
    const auto global_batch = static_cast<std::size_t>(get_int(f, "global_batch", ctx, 1));
    s.steps_per_epoch = static_cast<std::size_t>(get_int(f, "steps_per_epoch", ctx, 1));
    s.total_steps = static_cast<std::size_t>(get_int(f, "total_steps", ctx));
    s.warmup_steps = static_cast<std::size_t>(get_int(f, "warmup_steps", ctx));
    if (H5Aexists(f, "loss_scale") > 0) {
      s.loss_scale = get_double(f, "loss_scale", ctx);
      if (!std::isfinite(s.loss_scale) || s.loss_scale <= 0)
        HPCML_THROW(DataError, ctx + ": attribute 'loss_scale' is " + std::to_string(s.loss_scale) +
                                   ", not a positive number");
      s.loss_scale_good_steps = static_cast<std::size_t>(get_int(f, "loss_scale_good_steps", ctx));
      s.skipped_steps = static_cast<std::size_t>(get_int(f, "skipped_steps", ctx));
    }
    c.info.layers = get_ints(f, "layers", ctx, 1024);
    c.info.dataset_digest = get_string(f, "dataset_digest", ctx);
    c.info.config_hash = get_string(f, "config_hash", ctx);
    c.info.restarts = static_cast<int>(get_int(f, "restarts", ctx));
    c.info.run_dir = get_string(f, "run_dir", ctx);
    // Absent in checkpoints written before optimizers other than SGD existed.
    c.info.optimizer = H5Aexists(f, "optimizer") > 0 ? get_string(f, "optimizer", ctx) : "sgd";
    c.info.model = H5Aexists(f, "model") > 0 ? get_string(f, "model", ctx) : "";
    // Layer-list models record their parameter count; an MLP's follows from 'layers'.
    if (H5Aexists(f, "parameters") > 0) {
      const auto p = get_ints(f, "parameters", ctx);
      if (p.size() != 1 || p[0] < 1 || p[0] > (std::int64_t{1} << 40))
        HPCML_THROW(DataError, ctx + ": attribute 'parameters' is not a parameter count");
      recorded_parameters = static_cast<std::size_t>(p[0]);
    }
    if (!is_optimizer_name(c.info.optimizer))
      HPCML_THROW(DataError, ctx + ": attribute 'optimizer' (" + printable(c.info.optimizer) +
                                 ") is not an optimizer");
    c.params_digest = get_string(f, "params_digest", ctx);
    c.momentum_digest = get_string(f, "momentum_digest", ctx);
    if (global_batch != s.local_batch * static_cast<std::size_t>(s.ranks))
      HPCML_THROW(DataError, ctx + ": global_batch " + std::to_string(global_batch) + " is not " +
                                 std::to_string(s.ranks) + " ranks x local_batch " +
                                 std::to_string(s.local_batch));
    if (c.info.layers.size() < 2 ||
        std::any_of(c.info.layers.begin(), c.info.layers.end(),
                    [](std::int64_t l) { return l < 1 || l > (std::int64_t{1} << 30); }))
      HPCML_THROW(DataError, ctx + ": attribute 'layers' (" + layers_text(c.info.layers) +
                                 ") is not a model shape");
    params = read_floats(f, "parameters", ctx);
    momentum = read_floats(f, "momentum", ctx);
  }
  const std::size_t want =
      recorded_parameters > 0 ? recorded_parameters : parameter_count(c.info.layers);
  const std::size_t slots = optimizer_slots(c.info.optimizer);
  if (params.size() != want || momentum.size() != slots * want)
    HPCML_THROW(DataError, ctx + ": datasets hold " + std::to_string(params.size()) +
                               " parameters and " + std::to_string(momentum.size()) +
                               " optimizer state values, the model " + layers_text(c.info.layers) +
                               " has " + std::to_string(want) + " parameters and " +
                               c.info.optimizer + " keeps " + std::to_string(slots) +
                               " per parameter");
  if (const std::string d = digest_of(params); d != c.params_digest)
    HPCML_THROW(DataError, ctx + ": parameters digest " + d + " differs from the recorded " +
                               c.params_digest.substr(0, 40) + " (corrupt checkpoint)");
  if (const std::string d = digest_of(momentum); d != c.momentum_digest)
    HPCML_THROW(DataError, ctx + ": momentum digest " + d + " differs from the recorded " +
                               c.momentum_digest.substr(0, 40) + " (corrupt checkpoint)");
  if (s.step_in_epoch > s.steps_per_epoch ||
      s.global_step != static_cast<std::size_t>(s.epoch) * s.steps_per_epoch + s.step_in_epoch)
    HPCML_THROW(DataError, ctx + ": inconsistent position (step " + std::to_string(s.global_step) +
                               ", epoch " + std::to_string(s.epoch) + ", step in epoch " +
                               std::to_string(s.step_in_epoch) + ")");
  c.state.parameters_data = std::move(params);
  c.state.momentum_data = std::move(momentum);
  s.parameters = c.state.parameters_data;
  s.momentum = c.state.momentum_data;
  s.momentum_ranges.clear();
  return c;
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  static const std::regex name("ckpt-([0-9]{1,19})\\.h5");
  std::vector<std::pair<unsigned long long, std::string>> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file = it->path().filename().string();
    std::smatch m;
    if (!std::regex_match(file, m, name)) continue;
    found.emplace_back(std::stoull(m[1].str()), it->path().string());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a > b; });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

std::optional<LoadedCheckpoint> newest_valid_checkpoint(const std::string& dir,
                                                        std::vector<std::string>& skipped) {
  for (const auto& path : list_checkpoints(dir)) {
    try {
      return read_checkpoint(path);
    } catch (const Error& e) {
      skipped.push_back(e.what());
    }
  }
  return std::nullopt;
}

std::vector<float> gather_momentum(MPI_Comm comm, const TrainState& state) {
  int rank = 0, size = 1;
  HPCML_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  HPCML_CHECK_MPI(MPI_Comm_size(comm, &size));
  const std::size_t n = state.momentum.size();
  // This rank's ranges as (lo, hi) pairs and their values, packed.
  std::vector<std::uint64_t> ranges;
  std::vector<float> values;
  for (auto [lo, hi] : state.momentum_ranges) {
    HPCML_REQUIRE(lo <= hi && hi <= n, Error,
                  "gather_momentum: range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                      ") outside the momentum vector of " + std::to_string(n));
    ranges.push_back(lo);
    ranges.push_back(hi);
    values.insert(values.end(), state.momentum.begin() + static_cast<std::ptrdiff_t>(lo),
                  state.momentum.begin() + static_cast<std::ptrdiff_t>(hi));
  }
  HPCML_REQUIRE(values.size() <= static_cast<std::size_t>(INT_MAX), Error,
                "gather_momentum: more than 2^31 values on one rank");
  const int counts[2] = {static_cast<int>(ranges.size()), static_cast<int>(values.size())};
  std::vector<int> all_counts(rank == 0 ? 2 * static_cast<std::size_t>(size) : 0);
  HPCML_CHECK_MPI(MPI_Gather(counts, 2, MPI_INT, all_counts.data(), 2, MPI_INT, 0, comm));
  std::vector<int> range_counts, range_displs, value_counts, value_displs;
  std::vector<std::uint64_t> all_ranges;
  std::vector<float> all_values;
  if (rank == 0) {
    long long r_total = 0, v_total = 0;
    for (int r = 0; r < size; ++r) {
      range_counts.push_back(all_counts[2 * static_cast<std::size_t>(r)]);
      value_counts.push_back(all_counts[2 * static_cast<std::size_t>(r) + 1]);
      range_displs.push_back(static_cast<int>(r_total));
      value_displs.push_back(static_cast<int>(v_total));
      r_total += range_counts.back();
      v_total += value_counts.back();
      HPCML_REQUIRE(v_total <= INT_MAX, Error, "gather_momentum: more than 2^31 values");
    }
    all_ranges.resize(static_cast<std::size_t>(r_total));
    all_values.resize(static_cast<std::size_t>(v_total));
  }
  HPCML_CHECK_MPI(MPI_Gatherv(ranges.data(), counts[0], MPI_UINT64_T, all_ranges.data(),
                              range_counts.data(), range_displs.data(), MPI_UINT64_T, 0, comm));
  HPCML_CHECK_MPI(MPI_Gatherv(values.data(), counts[1], MPI_FLOAT, all_values.data(),
                              value_counts.data(), value_displs.data(), MPI_FLOAT, 0, comm));
  if (rank != 0) return {};
  std::vector<float> full(state.momentum.begin(), state.momentum.end());
  if (all_ranges.empty()) return full;  // not sharded: rank 0's vector is current
  std::vector<char> covered(n, 0);
  std::size_t v = 0;
  for (std::size_t i = 0; i + 1 < all_ranges.size(); i += 2) {
    const std::size_t lo = all_ranges[i], hi = all_ranges[i + 1];
    std::copy(all_values.begin() + static_cast<std::ptrdiff_t>(v),
              all_values.begin() + static_cast<std::ptrdiff_t>(v + hi - lo),
              full.begin() + static_cast<std::ptrdiff_t>(lo));
    std::fill(covered.begin() + static_cast<std::ptrdiff_t>(lo),
              covered.begin() + static_cast<std::ptrdiff_t>(hi), 1);
    v += hi - lo;
  }
  const auto gap = std::find(covered.begin(), covered.end(), 0);
  HPCML_REQUIRE(gap == covered.end(), Error,
                "gather_momentum: no rank owns momentum element " +
                    std::to_string(gap - covered.begin()) + " of the sharded update");
  return full;
}

// The state copied at a step boundary for one write; rank 0 keeps one and
// reuses its buffers (no allocation after the first save).
struct Checkpointer::Snapshot {
  std::vector<float> parameters, momentum;
  TrainState state;  // position and meaning; spans into the two vectors
  std::string path;
  CheckpointMetrics metrics;
};

namespace {

// Keep the newest `keep`; leftovers of interrupted writes go too.
void prune(const std::string& dir, int keep) {
  std::error_code ec;
  const auto all = list_checkpoints(dir);
  for (std::size_t i = static_cast<std::size_t>(keep); i < all.size(); ++i) fs::remove(all[i], ec);
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("ckpt-", 0) == 0 && name.size() > 7 &&
        name.compare(name.size() - 7, 7, ".h5.tmp") == 0) {
      std::error_code rm;
      fs::remove(it->path(), rm);
    }
  }
}

}  // namespace

Checkpointer::Checkpointer(MPI_Comm comm, CheckpointOptions options, CheckpointInfo info,
                           std::function<void(const CheckpointMetrics&)> on_written)
    : comm_(comm),
      options_(std::move(options)),
      info_(std::move(info)),
      on_written_(std::move(on_written)),
      last_save_s_(now_s()) {
  HPCML_CHECK_MPI(MPI_Comm_rank(comm_, &rank_));
}

Checkpointer::~Checkpointer() {
  if (writer_.joinable()) writer_.join();
}

double Checkpointer::join_writer() {
  if (!writer_.joinable()) return 0;
  const double t0 = now_s();
  writer_.join();
  pending_report_ = true;
  return now_s() - t0;
}

void Checkpointer::collect_written() {
  if (writer_.joinable() && writer_done_.load(std::memory_order_acquire)) join_writer();
  if (write_error_) {
    auto e = write_error_;
    write_error_ = nullptr;
    pending_report_ = false;
    std::rethrow_exception(e);
  }
  if (report_error_) {
    auto e = report_error_;
    report_error_ = nullptr;
    std::rethrow_exception(e);
  }
  if (pending_report_) {
    pending_report_ = false;
    if (on_written_) on_written_(snapshot_->metrics);
  }
}

void Checkpointer::after_step(const TrainState& state) {
  // Rank 0 passes a finished background write on (no collective). A failure,
  // of the write or of reporting it, waits for the next agreement (request()).
  if (rank_ == 0 && !report_error_) {
    if (writer_.joinable() && writer_done_.load(std::memory_order_acquire)) join_writer();
    if (pending_report_ && !write_error_) {
      try {
        collect_written();
      } catch (...) {
        report_error_ = std::current_exception();
      }
    }
  }
  if (options_.every_steps > 0 && state.global_step % options_.every_steps == 0)
    save(state, "steps");
}

bool Checkpointer::needs_tensors(const TrainState& state) {
  return options_.every_steps > 0 && state.global_step % options_.every_steps == 0;
}

bool Checkpointer::request(const TrainState& /*state*/) {
  // Only rank 0's clock decides; the trainer's agreement carries the answer to
  // all. A failed background write asks too, so that every rank hears of it.
  if (rank_ != 0) return false;
  if (writer_.joinable() && writer_done_.load(std::memory_order_acquire)) join_writer();
  if (write_error_ || report_error_) return true;
  return options_.every_minutes > 0 && now_s() - last_save_s_ >= 60.0 * options_.every_minutes;
}

void Checkpointer::on_request(const TrainState& state) {
  // Raises a failed background write on every rank (the agreement asked for it).
  mpi::agree(comm_, [&] {
    if (rank_ == 0 && (write_error_ || report_error_)) collect_written();
  });
  if (options_.every_minutes > 0) save(state, "minutes");
}

void Checkpointer::after_training(const TrainState& state, const TrainSummary& summary) {
  save_impl(state, summary.stopped_by_signal ? "signal" : "end", false);
  finish_writes();
}

void Checkpointer::finish_writes() {
  mpi::agree(comm_, [&] {
    if (rank_ != 0) return;
    join_writer();
    collect_written();
  });
}

void Checkpointer::save(const TrainState& state, const std::string& reason) {
  save_impl(state, reason, options_.async);
}

void Checkpointer::save_impl(const TrainState& state, const std::string& reason, bool background) {
  if (saved_any_ && last_step_ == state.global_step) return;
  const double t0 = now_s();
  std::vector<float> momentum = gather_momentum(comm_, state);
  const std::string path =
      (fs::path(options_.dir) / checkpoint_file_name(state.global_step)).string();
  const std::size_t steps_since = saved_any_ ? state.global_step - last_step_ : state.global_step;
  mpi::agree(comm_, [&] {
    if (rank_ != 0) return;
    // At most one write in flight: wait for it, report it (or raise its failure).
    const double waited = join_writer();
    collect_written();
    std::error_code ec;
    fs::create_directories(options_.dir, ec);
    if (ec)
      HPCML_THROW(
          Error, "checkpoint.dir '" + options_.dir + "': cannot create directory: " + ec.message());
    if (!snapshot_) snapshot_ = std::make_unique<Snapshot>();
    Snapshot& snap = *snapshot_;
    snap.parameters.assign(state.parameters.begin(), state.parameters.end());
    snap.momentum = std::move(momentum);
    snap.state = state;
    snap.state.parameters = snap.parameters;
    snap.state.momentum = snap.momentum;
    snap.state.momentum_ranges.clear();
    snap.path = path;
    CheckpointMetrics& m = snap.metrics;
    m = CheckpointMetrics{};
    m.global_step = state.global_step;
    m.epoch = state.epoch + (state.step_in_epoch == 0 && state.global_step > 0 ? 0 : 1);
    m.path = path;
    m.reason = reason;
    m.async = background;
    m.waited_s = waited;
    const double t_snap = now_s();
    m.snapshot_s = t_snap - t0 - waited;
    const double per_step = 1.0 / static_cast<double>(std::max<std::size_t>(steps_since, 1));
    auto write = [this, &snap, per_step] {
      const double t_write = now_s();
      const CheckpointWrite w = write_checkpoint(snap.path, snap.state, snap.momentum, info_);
      prune(options_.dir, options_.keep);
      snap.metrics.bytes = w.bytes;
      snap.metrics.seconds = now_s() - t_write;
      snap.metrics.step_cost_s = (snap.metrics.snapshot_s + snap.metrics.waited_s) * per_step;
    };
    if (background) {
      writer_done_.store(false, std::memory_order_relaxed);
      write_error_ = nullptr;
      writer_ = std::thread([this, write] {
        try {
          write();
        } catch (...) {
          write_error_ = std::current_exception();
        }
        writer_done_.store(true, std::memory_order_release);
      });
    } else {
      write();
      m.seconds = now_s() - t0 - waited;  // with the gather, as before the async write
      m.step_cost_s = (m.seconds + waited) * per_step;
      pending_report_ = true;
      collect_written();
    }
  });
  saved_any_ = true;
  last_step_ = state.global_step;
  last_path_ = path;
  last_save_s_ = now_s();
}

}  // namespace hpcml::io

// Checkpoint files without MPI: what is written is read back bit for bit; a
// flipped byte, a truncated file, a missing attribute, a digest that does not
// match and leftovers of an interrupted write are each rejected or ignored,
// with one line naming the file.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>

#include "hpcml/core/digest.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/io/checkpoint.hpp"

namespace hpcml::io {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/hpcml-ckpt-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

// A 5-4-3 model (39 parameters) at step 13 of 10 steps per epoch.
OwnedTrainState sample_state(std::size_t step = 13) {
  OwnedTrainState o;
  const std::size_t n = 5 * 4 + 4 + 4 * 3 + 3;
  for (std::size_t i = 0; i < n; ++i) {
    o.parameters_data.push_back(0.25f * static_cast<float>(i) - 3.0f);
    o.momentum_data.push_back(1e-3f * static_cast<float>(i * i));
  }
  TrainState& s = o.state;
  s.parameters = o.parameters_data;
  s.momentum = o.momentum_data;
  s.global_step = step;
  s.epoch = static_cast<int>(step / 10);
  s.step_in_epoch = step % 10;
  s.seed = 42;
  s.ranks = 2;
  s.local_batch = 8;
  s.steps_per_epoch = 10;
  s.total_steps = 30;
  s.warmup_steps = 5;
  return o;
}

CheckpointInfo sample_info() {
  CheckpointInfo i;
  i.layers = {5, 4, 3};
  i.dataset_digest = "fnv1a64:00000000000000aa";
  i.config_hash = "fnv1a64:00000000000000bb";
  i.restarts = 1;
  i.run_dir = "/runs/x";
  return i;
}

std::string write_sample(const fs::path& dir, std::size_t step = 13) {
  const auto o = sample_state(step);
  const std::string path = (dir / checkpoint_file_name(step)).string();
  write_checkpoint(path, o.view(), o.view().momentum, sample_info());
  return path;
}

// The one-line error of read_checkpoint(path), "" if it was accepted.
std::string rejection(const std::string& path) {
  try {
    read_checkpoint(path);
    return "";
  } catch (const DataError& e) {
    return e.what();
  }
}

void flip_byte(const std::string& path, std::uintmax_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

// File offset of the first chunk of a dataset.
std::uintmax_t chunk_offset(const std::string& path, const char* dataset) {
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(file, dataset, H5P_DEFAULT);
  hsize_t coord[1] = {0};
  haddr_t addr = HADDR_UNDEF;
  hsize_t size = 0;
  unsigned mask = 0;
  H5Dget_chunk_info_by_coord(ds, coord, &mask, &addr, &size);
  H5Dclose(ds);
  H5Fclose(file);
  return addr;
}

TEST(Checkpoint, FileNameIsZeroPaddedSoNamesSortByStep) {
  EXPECT_EQ(checkpoint_file_name(42), "ckpt-000000000042.h5");
}

TEST(Checkpoint, WriteThenReadGivesTheSameState) {
  TempDir t;
  const std::string path = write_sample(t.path);
  const auto o = sample_state();
  const auto c = read_checkpoint(path);
  EXPECT_EQ(c.path, path);
  EXPECT_EQ(c.state.parameters_data, o.parameters_data);
  EXPECT_EQ(c.state.momentum_data, o.momentum_data);
  const TrainState& s = c.state.view();
  EXPECT_EQ(s.parameters.data(), c.state.parameters_data.data());
  EXPECT_EQ(s.global_step, 13u);
  EXPECT_EQ(s.epoch, 1);
  EXPECT_EQ(s.step_in_epoch, 3u);
  EXPECT_EQ(s.seed, 42u);
  EXPECT_EQ(s.ranks, 2);
  EXPECT_EQ(s.local_batch, 8u);
  EXPECT_EQ(s.steps_per_epoch, 10u);
  EXPECT_EQ(s.total_steps, 30u);
  EXPECT_EQ(s.warmup_steps, 5u);
  EXPECT_EQ(c.info.layers, (std::vector<std::int64_t>{5, 4, 3}));
  EXPECT_EQ(c.info.dataset_digest, "fnv1a64:00000000000000aa");
  EXPECT_EQ(c.info.restarts, 1);
  EXPECT_EQ(c.info.run_dir, "/runs/x");
  EXPECT_FALSE(c.info.hpcml_version.empty());
  EXPECT_EQ(c.params_digest, digest_of(o.parameters_data));
  EXPECT_EQ(c.momentum_digest, digest_of(o.momentum_data));
  // Nothing else left in the directory (the temporary was renamed).
  EXPECT_EQ(std::distance(fs::directory_iterator(t.path), fs::directory_iterator()), 1);
}

TEST(Checkpoint, TheFp16LossScaleStateIsKeptAndAbsentOtherwise) {
  TempDir t;
  const auto plain = read_checkpoint(write_sample(t.path));
  EXPECT_EQ(plain.state.view().loss_scale, 0.0);
  auto o = sample_state(14);
  o.state.loss_scale = 8192;
  o.state.loss_scale_good_steps = 17;
  o.state.skipped_steps = 3;
  const std::string path = (t.path / checkpoint_file_name(14)).string();
  write_checkpoint(path, o.view(), o.view().momentum, sample_info());
  const auto c = read_checkpoint(path);
  const TrainState& s = c.state.view();
  EXPECT_EQ(s.loss_scale, 8192.0);
  EXPECT_EQ(s.loss_scale_good_steps, 17u);
  EXPECT_EQ(s.skipped_steps, 3u);
}

TEST(Checkpoint, DatasetsAreChunkedWithFletcher32) {
  TempDir t;
  const std::string path = write_sample(t.path);
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  for (const char* name : {"parameters", "momentum"}) {
    hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(ds);
    EXPECT_EQ(H5Pget_layout(dcpl), H5D_CHUNKED) << name;
    ASSERT_EQ(H5Pget_nfilters(dcpl), 1) << name;
    unsigned flags = 0;
    std::size_t n = 0;
    EXPECT_EQ(H5Pget_filter2(dcpl, 0, &flags, &n, nullptr, 0, nullptr, nullptr),
              H5Z_FILTER_FLETCHER32);
    H5Pclose(dcpl);
    H5Dclose(ds);
  }
  H5Fclose(file);
}

TEST(Checkpoint, AFlippedDataByteIsRejectedNamingTheFile) {
  TempDir t;
  for (const char* dataset : {"parameters", "momentum"}) {
    const std::string path = write_sample(t.path);
    const auto at = chunk_offset(path, dataset);
    ASSERT_NE(at, HADDR_UNDEF);
    flip_byte(path, at + 17);
    const std::string why = rejection(path);
    EXPECT_EQ(why.rfind(path + ": ", 0), 0u) << why;
    EXPECT_NE(why.find(dataset), std::string::npos) << why;
    EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  }
}

// A flip anywhere in the file: rejected (the format's metadata is checksummed),
// or, where the byte is unused, read back exactly. Never a crash.
TEST(Checkpoint, AFlippedByteAnywhereIsRejectedOrHarmless) {
  TempDir t;
  const auto o = sample_state();
  const std::string good = write_sample(t.path);
  const auto size = fs::file_size(good);
  int rejected = 0;
  for (std::uintmax_t at = 0; at < size; at += 7) {
    const std::string path = (t.path / "flip.h5").string();
    fs::copy_file(good, path, fs::copy_options::overwrite_existing);
    flip_byte(path, at);
    try {
      const auto c = read_checkpoint(path);
      EXPECT_EQ(c.state.parameters_data, o.parameters_data) << "flip at " << at;
      EXPECT_EQ(c.state.momentum_data, o.momentum_data) << "flip at " << at;
    } catch (const DataError& e) {
      ++rejected;
      EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
    }
  }
  EXPECT_GT(rejected, 0);
}

TEST(Checkpoint, ATruncatedFileIsRejected) {
  TempDir t;
  const std::string path = write_sample(t.path);
  for (auto size :
       {fs::file_size(path) - 1, fs::file_size(path) / 2, std::uintmax_t{100}, std::uintmax_t{0}}) {
    fs::resize_file(path, size);
    const std::string why = rejection(path);
    EXPECT_EQ(why.rfind(path + ": ", 0), 0u) << size << ": " << why;
  }
  EXPECT_NE(rejection((t.path / "absent.h5").string()).find("missing"), std::string::npos);
  EXPECT_NE(rejection(t.path.string()).find("not a regular file"), std::string::npos);
}

TEST(Checkpoint, AMissingAttributeOrAWrongDigestIsRejected) {
  TempDir t;
  const std::string path = write_sample(t.path);
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Adelete(file, "steps_per_epoch");
  H5Fclose(file);
  EXPECT_NE(rejection(path).find("attribute 'steps_per_epoch' is missing"), std::string::npos)
      << rejection(path);

  // Other parameters under a digest that does not match them.
  auto o = sample_state();
  o.parameters_data[3] += 1.0f;
  const std::string other = (t.path / "other.h5").string();
  write_checkpoint(other, o.view(), o.view().momentum, sample_info());
  file = H5Fopen(other.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Adelete(file, "params_digest");
  const std::string d = digest_of(sample_state().parameters_data);
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, d.size());
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate2(file, "params_digest", type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(attr, type, d.data());
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
  H5Fclose(file);
  EXPECT_NE(rejection(other).find("parameters digest"), std::string::npos) << rejection(other);
}

TEST(Checkpoint, AModelShapeThatDoesNotFitTheDatasetsIsRejected) {
  TempDir t;
  const auto o = sample_state();
  auto info = sample_info();
  info.layers = {5, 4, 4};
  const std::string path = (t.path / "shape.h5").string();
  write_checkpoint(path, o.view(), o.view().momentum, info);
  EXPECT_NE(rejection(path).find("the model 5-4-4 has"), std::string::npos) << rejection(path);
}

TEST(Checkpoint, ListingIsNewestFirstAndIgnoresTemporaries) {
  TempDir t;
  EXPECT_TRUE(list_checkpoints((t.path / "none").string()).empty());
  const std::string a = write_sample(t.path, 9), b = write_sample(t.path, 20),
                    c = write_sample(t.path, 13);
  std::ofstream(t.path / "ckpt-000000000030.h5.tmp") << "half a file";
  std::ofstream(t.path / "notes.txt") << "x";
  EXPECT_EQ(list_checkpoints(t.path.string()), (std::vector<std::string>{b, c, a}));
}

TEST(Checkpoint, NewestValidSkipsCorruptOnesWithAReason) {
  TempDir t;
  write_sample(t.path, 9);
  const std::string mid = write_sample(t.path, 13), newest = write_sample(t.path, 20);
  fs::resize_file(newest, fs::file_size(newest) / 2);
  std::vector<std::string> skipped;
  auto found = newest_valid_checkpoint(t.path.string(), skipped);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->path, mid);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].rfind(newest + ": ", 0), 0u) << skipped[0];
  for (const auto& p : list_checkpoints(t.path.string())) fs::resize_file(p, 10);
  skipped.clear();
  EXPECT_FALSE(newest_valid_checkpoint(t.path.string(), skipped).has_value());
  EXPECT_EQ(skipped.size(), 3u);
}

TEST(Checkpoint, AFailedWriteLeavesNoTemporaryAndThePreviousFile) {
  TempDir t;
  const std::string path = write_sample(t.path);
  auto o = sample_state();
  o.momentum_data.pop_back();  // refused before anything is written
  o.state.momentum = o.momentum_data;
  EXPECT_THROW(write_checkpoint(path, o.view(), o.view().momentum, sample_info()), Error);
  // An unwritable place: the error names it.
  const auto good = sample_state();
  try {
    write_checkpoint((t.path / "no" / "dir.h5").string(), good.view(), good.view().momentum,
                     sample_info());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dir.h5.tmp"), std::string::npos) << e.what();
  }
  EXPECT_EQ(list_checkpoints(t.path.string()), std::vector<std::string>{path});
  EXPECT_EQ(rejection(path), "");
  EXPECT_EQ(std::distance(fs::directory_iterator(t.path), fs::directory_iterator()), 1);
}

TEST(Checkpoint, ManifestDigestDependsOnTheBytesAndTheSplit) {
  TempDir t;
  std::ofstream(t.path / "manifest.json") << R"({"a": 1})";
  const auto a = manifest_digest(t.path.string(), "train");
  EXPECT_NE(a, manifest_digest(t.path.string(), "test"));
  EXPECT_EQ(a, manifest_digest(t.path.string(), "train"));
  std::ofstream(t.path / "manifest.json") << R"({"a": 2})";
  EXPECT_NE(a, manifest_digest(t.path.string(), "train"));
  EXPECT_THROW(manifest_digest((t.path / "none").string(), "train"), DataError);
}

}  // namespace
}  // namespace hpcml::io

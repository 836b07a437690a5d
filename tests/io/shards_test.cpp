// Shard writer + reader: round trips, read order, prefetch, and every kind of
// broken shard directory giving a one-line DataError that names the file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <thread>

#include "hpcml/io/dataset.hpp"
#include "hpcml/io/format.hpp"
#include "hpcml/io/hdf5.hpp"
#include "hpcml/io/writer.hpp"
#include "io_test_util.hpp"

namespace hpcml::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::synthetic;
using test::TempDir;

ShardWriteOptions options(const TempDir& dir, std::size_t shards,
                          const std::string& split = "train", int classes = 5) {
  ShardWriteOptions o;
  o.out_dir = dir.str();
  o.dataset = "synthetic";
  o.split = split;
  o.shards = shards;
  o.classes = classes;
  return o;
}

void expect_rows(const Batch& b, const LabeledData& d, const std::vector<std::size_t>& idx) {
  ASSERT_EQ(b.rows, idx.size());
  ASSERT_EQ(b.cols, d.features);
  for (std::size_t r = 0; r < idx.size(); ++r) {
    for (std::size_t c = 0; c < d.features; ++c)
      ASSERT_EQ(b.x[r * d.features + c], d.x[idx[r] * d.features + c]) << "row " << r;
    ASSERT_EQ(b.y[r], d.y[idx[r]]) << "row " << r;
  }
}

TEST(IoShards, RoundTripForManyShardCounts) {
  const LabeledData d = synthetic(23);
  for (std::size_t shards : {1u, 2u, 3u, 7u, 23u}) {
    TempDir dir;
    const SplitInfo info = write_split(d, options(dir, shards));
    ASSERT_EQ(info.shards.size(), shards);
    std::size_t min_n = d.samples, max_n = 0, total = 0;
    for (std::size_t i = 0; i < shards; ++i) {
      EXPECT_EQ(info.shards[i].file, shard_file_name("train", i, shards));
      EXPECT_TRUE(fs::exists(dir / info.shards[i].file));
      EXPECT_EQ(info.shards[i].first_index, total);
      total += info.shards[i].samples;
      min_n = std::min(min_n, info.shards[i].samples);
      max_n = std::max(max_n, info.shards[i].samples);
    }
    EXPECT_EQ(total, d.samples);
    EXPECT_LE(max_n - min_n, 1u);

    auto ds = open_dataset(dir.str(), "train");
    EXPECT_EQ(ds->samples(), 23u);
    EXPECT_EQ(ds->features(), 6u);
    EXPECT_EQ(ds->classes(), 5);
    EXPECT_EQ(ds->shard_count(), shards);
    EXPECT_EQ(ds->feature_shape(), (std::vector<std::size_t>{3, 2}));
    std::vector<std::size_t> all(23);
    std::iota(all.begin(), all.end(), 0);
    expect_rows(ds->read_all(), d, all);
    std::vector<std::size_t> ids(shards);
    std::iota(ids.begin(), ids.end(), 0);
    EXPECT_NO_THROW(ds->verify(ids));
  }
}

// Every read path: the direct paths (copies from the mapping, and pread; each
// with and without the label cache) and HDF5 hyperslabs must give the same rows
// in the requested order.
enum class Path { kDirect, kDirectNoLabelCache, kPread, kPreadNoLabelCache, kHyperslab };

class IoReadPaths : public ::testing::TestWithParam<Path> {
 protected:
  std::unique_ptr<ShardDataset> open(const TempDir& dir) {
    const Path p = GetParam();
    const bool no_cache = p == Path::kDirectNoLabelCache || p == Path::kPreadNoLabelCache;
    detail::set_label_cache_max_rows(no_cache ? 0 : 4u << 20);
    auto ds = open_dataset(dir.str(), "train");
    detail::set_label_cache_max_rows(4u << 20);
    ds->set_read_method(p == Path::kHyperslab ? ReadMethod::kHyperslab
                        : p == Path::kPread || p == Path::kPreadNoLabelCache ? ReadMethod::kPread
                                                                             : ReadMethod::kAuto);
    return ds;
  }
};

TEST_P(IoReadPaths, HonoursOrderRepeatsAndBatching) {
  TempDir dir;
  const LabeledData d = synthetic(101, 4, 5);
  write_split(d, options(dir, 4));
  auto ds = open(dir);
  std::vector<std::size_t> idx(101);
  std::iota(idx.begin(), idx.end(), 0);
  std::mt19937 rng(42);
  std::shuffle(idx.begin(), idx.end(), rng);
  // Repeats, neighbours (merged runs), shard-crossing runs and an in-order stretch.
  idx.insert(idx.end(), {5, 5, 24, 25, 26, 27, 100, 0, 26, 40, 41, 42, 43, 44});
  for (std::size_t depth : {0u, 1u, 2u, 5u}) {  // 0: no thread, read inside next()
    ds->set_prefetch_depth(depth);
    for (std::size_t batch_rows : {1u, 7u, 32u, 500u}) {
      auto reader = ds->read(idx, batch_rows);
      Batch b;
      std::size_t pos = 0;
      while (reader->next(b)) {
        const std::size_t n = std::min(batch_rows, idx.size() - pos);
        expect_rows(b, d, std::vector<std::size_t>(idx.begin() + pos, idx.begin() + pos + n));
        pos += n;
      }
      EXPECT_EQ(pos, idx.size());
      EXPECT_FALSE(reader->next(b));
    }
  }
  // Whole split in order (evaluation-style contiguous reads).
  std::vector<std::size_t> all(101);
  std::iota(all.begin(), all.end(), 0);
  Batch b;
  ds->read_rows(all, b);
  expect_rows(b, d, all);

  auto empty = ds->read({}, 4);
  EXPECT_FALSE(empty->next(b));
  EXPECT_DATA_ERROR(ds->read({3, 101}, 4), "sample index 101", "out of range");
  EXPECT_THROW(ds->read({1}, 0), ConfigError);
}

TEST_P(IoReadPaths, ChunkedShardsFromOtherToolsReadTheSame) {
  // A shard rewritten with chunked + compressed storage (as another tool
  // might) has no single byte range: kAuto must fall back to hyperslabs.
  TempDir dir;
  const LabeledData d = synthetic(30, 2, 3);
  write_split(d, options(dir, 2));
  {
    Hdf5Lock lock;
    const std::string path = dir / shard_file_name("train", 1, 2);
    File f(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    ASSERT_GE(H5Ldelete(f.get(), "features", H5P_DEFAULT), 0);
    const hsize_t dims[2] = {15, 6}, chunk[2] = {4, 6};
    DataSpace s(H5Screate_simple(2, dims, nullptr));
    PropList dcpl(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_chunk(dcpl.get(), 2, chunk);
    H5Pset_deflate(dcpl.get(), 4);
    DataSet ds(H5Dcreate2(f.get(), "features", H5T_IEEE_F32LE, s.get(), H5P_DEFAULT, dcpl.get(),
                          H5P_DEFAULT));
    ASSERT_GE(
        H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, d.x.data() + 15 * 6),
        0);
  }
  auto ds = open(dir);
  const std::vector<std::size_t> idx = {29, 3, 15, 16, 17, 14, 0, 22, 22};
  Batch b;
  ds->read_rows(idx, b);
  expect_rows(b, d, idx);
  EXPECT_NO_THROW(ds->verify(std::vector<std::size_t>{0, 1}));
}

INSTANTIATE_TEST_SUITE_P(Paths, IoReadPaths,
                         ::testing::Values(Path::kDirect, Path::kDirectNoLabelCache, Path::kPread,
                                           Path::kPreadNoLabelCache, Path::kHyperslab));

// A shard cut short while a job reads it: rows past the new end give a
// DataError naming the file on both direct paths, never zeros or a crash. With
// the size check off, the mapped path's SIGBUS guard alone must give it (the
// race between the check and the copy that the check cannot close).
TEST(IoShards, TruncatedUnderARunningReaderIsADataErrorNotACrash) {
  TempDir dir;
  const LabeledData d = synthetic(2000, 16, 16);  // 1 KiB rows, ~2 MB: hundreds of pages
  write_split(d, options(dir, 1));
  const std::string path = dir / shard_file_name("train", 0, 1);
  const std::string file = shard_file_name("train", 0, 1);
  haddr_t offset = 0;
  {
    Hdf5Lock lock;
    File f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    DataSet feats(H5Dopen2(f.get(), "features", H5P_DEFAULT));
    offset = H5Dget_offset(feats.get());
    ASSERT_NE(offset, HADDR_UNDEF);
  }
  auto ds = open_dataset(dir.str(), "train");
  Batch b;
  const std::vector<std::size_t> far = {1999, 3, 1500};
  ds->read_rows(far, b);  // touches pages that the truncation then takes away
  expect_rows(b, d, far);
  fs::resize_file(path, offset + 8 * 1024);  // rows 0..7 remain
  for (ReadMethod m : {ReadMethod::kAuto, ReadMethod::kPread}) {
    ds->set_read_method(m);
    EXPECT_DATA_ERROR(ds->read_rows(std::vector<std::size_t>{2, 1500}, b), file,
                      "truncated after it was opened");
    const std::vector<std::size_t> kept = {7, 0, 7};
    EXPECT_NO_THROW(ds->read_rows(kept, b));
    expect_rows(b, d, kept);
  }
  ds->set_read_method(ReadMethod::kAuto);
  detail::set_mapped_size_check(false);
  EXPECT_DATA_ERROR(ds->read_rows(std::vector<std::size_t>{2, 1500}, b), file, "SIGBUS",
                    "truncated after it was opened");
  EXPECT_DATA_ERROR(ds->read_rows(std::vector<std::size_t>{1999}, b), file, "SIGBUS");
  // On the prefetch thread too, after the good batch.
  ds->set_prefetch_depth(2);
  auto reader = ds->read({1, 1700, 3}, 1);
  ASSERT_TRUE(reader->next(b));
  EXPECT_DATA_ERROR(reader->next(b), file, "SIGBUS");
  detail::set_mapped_size_check(true);
  const std::vector<std::size_t> kept = {5, 6};
  EXPECT_NO_THROW(ds->read_rows(kept, b));
  expect_rows(b, d, kept);
}

// The SIGBUS handler the reader installs turns only a fault inside its own
// copies into an error: any other SIGBUS still ends the process.
TEST(IoShardsDeathTest, OtherSigbusStillEndsTheProcess) {
  TempDir dir;
  const LabeledData d = synthetic(40, 16, 16);
  write_split(d, options(dir, 1));
  auto ds = open_dataset(dir.str(), "train");
  Batch b;
  ds->read_rows(std::vector<std::size_t>{3}, b);  // installs the handler
  // Ended by the signal (or, under ASan, by its report of it): anything but
  // carrying on (exit 0) or a failed setup (exit 3).
  const auto signalled = [](int status) {
    return !(WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3));
  };
  EXPECT_EXIT(
      {
        std::raise(SIGBUS);
        std::exit(0);
      },
      signalled, "");
  // A real fault outside the reader: a mapping of a file truncated under it.
  const std::string victim = dir / "victim.bin";
  test::write_text(victim, std::string(3 * 4096, 'x'));
  EXPECT_EXIT(
      {
        const int fd = ::open(victim.c_str(), O_RDWR);
        void* p = ::mmap(nullptr, 3 * 4096, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED || ::ftruncate(fd, 0) != 0) std::exit(3);
        volatile char c = static_cast<const char*>(p)[2 * 4096];
        (void)c;
        std::exit(0);
      },
      signalled, "");
}

TEST(IoShards, ReaderOutlivesDatasetAndStopsMidPass) {
  TempDir dir;
  const LabeledData d = synthetic(2000, 8, 8);
  write_split(d, options(dir, 3));
  std::vector<std::size_t> idx(200000);
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = (i * 7919) % 2000;
  std::unique_ptr<BatchReader> reader;
  {
    auto ds = open_dataset(dir.str(), "train");
    reader = ds->read(idx, 16);
  }
  Batch b;
  ASSERT_TRUE(reader->next(b));
  expect_rows(b, d, std::vector<std::size_t>(idx.begin(), idx.begin() + 16));
  ASSERT_TRUE(reader->next(b));
  // Destroying the reader with most of the pass left must stop the thread
  // (a hang here fails the test by its CTest timeout).
  reader.reset();
  // And destroying one that never delivered anything.
  auto ds = open_dataset(dir.str(), "train");
  auto unused = ds->read(idx, 3);
  unused.reset();
  SUCCEED();
}

TEST(IoShards, WriterRejectsBadInputs) {
  TempDir dir;
  LabeledData d = synthetic(3);
  EXPECT_DATA_ERROR(write_split(d, options(dir, 5)), "synthetic-x", "3 samples into 5 shards");
  EXPECT_DATA_ERROR(write_split(d, options(dir, 2, "bad/name")), "split name 'bad/name'");
  d.y[1] = 5;
  EXPECT_DATA_ERROR(write_split(d, options(dir, 1)), "synthetic-y", "label 5 of sample 1",
                    "[0, 5)");
  d = synthetic(3);
  d.x[2 * 6 + 3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_DATA_ERROR(write_split(d, options(dir, 1)), "synthetic-x", "sample 2", "NaN");
  d.x[2 * 6 + 3] = -std::numeric_limits<float>::infinity();
  EXPECT_DATA_ERROR(write_split(d, options(dir, 1)), "synthetic-x", "sample 2", "infinite");
  EXPECT_FALSE(fs::exists(dir / kManifestName));
}

TEST(IoShards, AddsSplitsAndRewritesOneWithoutLeftovers) {
  TempDir dir;
  const LabeledData train = synthetic(40), test_data = synthetic(11);
  write_split(train, options(dir, 4, "train"));
  write_split(test_data, options(dir, 2, "test"));
  Manifest m = read_manifest(dir.str());
  ASSERT_EQ(m.splits.size(), 2u);
  EXPECT_EQ(m.splits.at("train").samples, 40u);
  EXPECT_EQ(m.splits.at("test").samples, 11u);
  expect_rows(open_dataset(dir.str(), "test")->read_all(), test_data, [] {
    std::vector<std::size_t> v(11);
    std::iota(v.begin(), v.end(), 0);
    return v;
  }());
  // Rewrite train with fewer shards: the old 4 files go away, test stays.
  write_split(train, options(dir, 2, "train"));
  EXPECT_FALSE(fs::exists(dir / shard_file_name("train", 3, 4)));
  EXPECT_TRUE(fs::exists(dir / shard_file_name("train", 1, 2)));
  EXPECT_TRUE(fs::exists(dir / shard_file_name("test", 1, 2)));
  EXPECT_EQ(open_dataset(dir.str(), "train")->shard_count(), 2u);
  // Mismatching additions are refused before anything is written.
  EXPECT_DATA_ERROR(write_split(synthetic(10, 2, 2), options(dir, 1, "val")), "manifest.json",
                    "feature count is 6", "has 4");
  EXPECT_DATA_ERROR(write_split(synthetic(10), options(dir, 1, "val", 7)), "manifest.json",
                    "class count is 5");
  EXPECT_FALSE(fs::exists(dir / shard_file_name("val", 0, 1)));
  EXPECT_DATA_ERROR(open_dataset(dir.str(), "val"), "manifest.json", "no split 'val'",
                    "test, train");
  for (const auto& entry : fs::directory_iterator(dir.str()))
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
}

// Sharding into a directory whose manifest lists files that are not this
// split's shards (hand-edited or hostile): only old shards of the split, named
// exactly "<split>-ddddd-of-ddddd.h5", are removed; manifest.json, user files and
// files of the shard form that the manifest never listed stay.
TEST(IoShards, RewriteDeletesOnlyItsOwnOldShards) {
  TempDir dir;
  const LabeledData train = synthetic(40), test_data = synthetic(11);
  write_split(train, options(dir, 4, "train"));
  write_split(test_data, options(dir, 2, "test"));
  test::write_text(dir / "notes.txt", "keep me");
  test::write_text(dir / "train-00009-of-00010.h5", "not listed: keep me");
  // The manifest now says train's shard 3 is notes.txt.
  json j;
  {
    std::ifstream in(dir / kManifestName);
    j = json::parse(in);
  }
  fs::rename(dir / shard_file_name("train", 3, 4), dir / "notes-backup.h5");
  j["splits"]["train"]["shards"][3]["file"] = "notes.txt";
  test::write_text(dir / kManifestName, j.dump());
  write_split(train, options(dir, 2, "train"));
  EXPECT_TRUE(fs::exists(dir / kManifestName));
  EXPECT_TRUE(fs::exists(dir / "notes.txt"));
  EXPECT_TRUE(fs::exists(dir / "notes-backup.h5"));
  EXPECT_TRUE(fs::exists(dir / "train-00009-of-00010.h5"));
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_FALSE(fs::exists(dir / shard_file_name("train", i, 4))) << i;
  EXPECT_TRUE(fs::exists(dir / shard_file_name("test", 0, 2)));
  EXPECT_TRUE(fs::exists(dir / shard_file_name("test", 1, 2)));
  EXPECT_EQ(open_dataset(dir.str(), "train")->shard_count(), 2u);
  EXPECT_EQ(open_dataset(dir.str(), "test")->shard_count(), 2u);

  // A manifest listing itself (or a path outside the directory) as a shard is
  // refused before anything is written or deleted.
  {
    std::ifstream in(dir / kManifestName);
    j = json::parse(in);
  }
  j["splits"]["train"]["shards"][1]["file"] = "manifest.json";
  test::write_text(dir / kManifestName, j.dump());
  EXPECT_DATA_ERROR(write_split(train, options(dir, 3, "train")), "manifest.json",
                    "field 'splits.train.shards[1].file'", "names the manifest itself");
  EXPECT_TRUE(fs::exists(dir / kManifestName));
  EXPECT_TRUE(fs::exists(dir / shard_file_name("train", 0, 2)));
  EXPECT_FALSE(fs::exists(dir / shard_file_name("train", 0, 3)));
}

TEST(IoShards, ShardFileNameRules) {
  EXPECT_TRUE(is_shard_file_name("train-00001-of-00004.h5", "train"));
  EXPECT_FALSE(is_shard_file_name("train-00001-of-00004.h5", "test"));
  EXPECT_FALSE(is_shard_file_name("train-0001-of-00004.h5", "train"));
  EXPECT_FALSE(is_shard_file_name("train-00001-of-00004.h5x", "train"));
  EXPECT_FALSE(is_shard_file_name("manifest.json", "train"));
  EXPECT_FALSE(is_shard_file_name("a-00001-00000-of-00001.h5", "a"));
  EXPECT_TRUE(shard_file_name_problem("train-00001-of-00004.h5").empty());
  EXPECT_TRUE(shard_file_name_problem("notes.txt").empty());
  for (const std::string& bad : std::vector<std::string>{
           "", ".", "..", "../x.h5", "/etc/passwd", "a/b", "a\\b", std::string("a\0b", 3), "a\nb",
           "manifest.json", std::string(256, 'x')})
    EXPECT_FALSE(shard_file_name_problem(bad).empty()) << printable(bad);
  EXPECT_EQ(printable(std::string("a\0\n\x1b\\z", 6)), "a\\x00\\n\\x1b\\z");
  EXPECT_EQ(printable(std::string(100, 'y'), 4), "yyyy… (100 bytes)");
}

TEST(IoShards, WriterRejectsAbsurdClassAndFeatureCounts) {
  TempDir dir;
  LabeledData d = synthetic(3);
  EXPECT_DATA_ERROR(write_split(d, options(dir, 1, "train", 2147483647)), "class count 2147483647",
                    "more than the 1048576");
  LabeledData empty;
  empty.samples = 3;
  empty.features_source = "zero-x";
  empty.labels_source = "zero-y";
  empty.y = {0, 1, 2};
  empty.feature_shape = {0};
  EXPECT_DATA_ERROR(write_split(empty, options(dir, 1)), "zero-x", "0 features");
  EXPECT_FALSE(fs::exists(dir / kManifestName));
}

// ---- broken shard directories ---------------------------------------------------

class IoBrokenShards : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = synthetic(30);
    write_split(data_, options(dir_, 3));
  }
  std::string shard(std::size_t i) const { return dir_ / shard_file_name("train", i, 3); }
  json manifest() const {
    std::ifstream in(dir_ / kManifestName);
    return json::parse(in);
  }
  void set_manifest(const json& j) const { test::write_text(dir_ / kManifestName, j.dump()); }
  // Byte offset of shard i's features data in its file.
  haddr_t features_offset(std::size_t i) const {
    Hdf5Lock lock;
    File f(H5Fopen(shard(i).c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    DataSet d(H5Dopen2(f.get(), "features", H5P_DEFAULT));
    const haddr_t offset = H5Dget_offset(d.get());
    EXPECT_NE(offset, HADDR_UNDEF);
    return offset;
  }
  // Replaces dataset `name` of shard 1 by one of another type/shape.
  void rewrite_dataset(const char* name, hid_t type, std::vector<hsize_t> dims) const {
    Hdf5Lock lock;
    File f(H5Fopen(shard(1).c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    ASSERT_TRUE(f);
    ASSERT_GE(H5Ldelete(f.get(), name, H5P_DEFAULT), 0);
    DataSpace s(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    DataSet d(H5Dcreate2(f.get(), name, type, s.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    ASSERT_TRUE(d);
  }

  TempDir dir_;
  LabeledData data_;
};

TEST_F(IoBrokenShards, MissingPaths) {
  EXPECT_DATA_ERROR(open_dataset(dir_ / "nope", "train"), "nope", "no such dataset directory");
  fs::remove(shard(2));
  EXPECT_DATA_ERROR(open_dataset(dir_.str(), "train"), shard_file_name("train", 2, 3), "missing");
  fs::remove(dir_ / kManifestName);
  EXPECT_DATA_ERROR(open_dataset(dir_.str(), "train"), "manifest.json", "missing");
}

TEST_F(IoBrokenShards, TruncatedShard) {
  fs::resize_file(shard(1), fs::file_size(shard(1)) - 100);
  EXPECT_DATA_ERROR(open_dataset(dir_.str(), "train"), shard_file_name("train", 1, 3));
  fs::resize_file(shard(1), 1000);
  EXPECT_DATA_ERROR(open_dataset(dir_.str(), "train"), shard_file_name("train", 1, 3));
  fs::resize_file(shard(1), 0);
  EXPECT_DATA_ERROR(open_dataset(dir_.str(), "train"), shard_file_name("train", 1, 3),
                    "not an HDF5 file");
  test::write_text(shard(1), "this is not HDF5");
  EXPECT_DATA_ERROR(open_dataset(dir_.str(), "train"), shard_file_name("train", 1, 3),
                    "not an HDF5 file");
}

TEST_F(IoBrokenShards, CorruptedBytesFailVerifyOnly) {
  // Flip bytes inside the features data (its offset comes from HDF5).
  const haddr_t offset = features_offset(1);
  {
    std::fstream io(shard(1), std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(offset + 17));
    const char junk[3] = {0x11, 0x22, 0x33};
    io.write(junk, 3);
  }
  auto ds = open_dataset(dir_.str(), "train");  // structure is fine
  const std::size_t ok_ids[] = {0, 2};
  EXPECT_NO_THROW(ds->verify(ok_ids));
  const std::size_t bad[] = {1};
  EXPECT_DATA_ERROR(ds->verify(bad), shard_file_name("train", 1, 3), "checksum mismatch");
  const ShardCheck c = ds->check_shard(1);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(check_shard_file(dir_.str(), read_manifest(dir_.str()), "train", 1).problem, c.problem);
  EXPECT_TRUE(check_shard_file(dir_.str(), read_manifest(dir_.str()), "train", 0).ok);
}

TEST_F(IoBrokenShards, ShapeOrDtypeDisagreesWithManifest) {
  rewrite_dataset("features", H5T_IEEE_F32LE, {10, 7});
  EXPECT_DATA_ERROR(open_dataset(dir_.str(), "train"), shard_file_name("train", 1, 3),
                    "'features' has shape [10,7]", "[10,6]");
  rewrite_dataset("features", H5T_IEEE_F64LE, {10, 6});
  EXPECT_DATA_ERROR(open_dataset(dir_.str(), "train"), shard_file_name("train", 1, 3),
                    "dtype float64", "float32");
  rewrite_dataset("features", H5T_IEEE_F32LE, {10, 6});
  rewrite_dataset("labels", H5T_STD_U8LE, {10});
  EXPECT_DATA_ERROR(open_dataset(dir_.str(), "train"), shard_file_name("train", 1, 3),
                    "'labels' has dtype uint8", "int32");
  rewrite_dataset("labels", H5T_STD_I32LE, {11});
  EXPECT_DATA_ERROR(open_dataset(dir_.str(), "train"), shard_file_name("train", 1, 3),
                    "'labels' has shape [11]");
}

TEST_F(IoBrokenShards, TruncatedAfterOpen) {
  const haddr_t offset = features_offset(2);
  auto ds = open_dataset(dir_.str(), "train");
  // Keep rows 0..2 of shard 2 (global 20..22) and cut the file after them.
  ASSERT_LT(offset + 3 * 24, fs::file_size(shard(2)));
  fs::resize_file(shard(2), offset + 3 * 24);
  Batch b;
  EXPECT_DATA_ERROR(ds->read_rows(std::vector<std::size_t>{1, 28}, b),
                    shard_file_name("train", 2, 3));
  ds->set_read_method(ReadMethod::kHyperslab);
  EXPECT_DATA_ERROR(ds->read_rows(std::vector<std::size_t>{28}, b), shard_file_name("train", 2, 3));
  EXPECT_NO_THROW(ds->read_rows(std::vector<std::size_t>{1, 15}, b));
  ds->set_read_method(ReadMethod::kAuto);
  EXPECT_NO_THROW(ds->read_rows(std::vector<std::size_t>{20, 22, 1}, b));
  const ShardCheck c = check_shard_file(dir_.str(), read_manifest(dir_.str()), "train", 2);
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.problem.find(shard_file_name("train", 2, 3)), std::string::npos) << c.problem;
}

TEST_F(IoBrokenShards, BadLabelsAndNonFiniteValuesInsideShards) {
  // Overwrite rows of shard 1 (global 10..19) in place: the structure stays
  // valid, so open succeeds; the per-batch checks and verify must catch it.
  {
    Hdf5Lock lock;
    File f(H5Fopen(shard(1).c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    DataSet labels(H5Dopen2(f.get(), "labels", H5P_DEFAULT));
    std::vector<std::int32_t> y(data_.y.begin() + 10, data_.y.begin() + 20);
    y[4] = 9;  // global sample 14
    ASSERT_GE(H5Dwrite(labels.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, y.data()), 0);
    DataSet feats(H5Dopen2(f.get(), "features", H5P_DEFAULT));
    std::vector<float> x(data_.x.begin() + 60, data_.x.begin() + 120);
    x[6 * 7 + 2] = std::numeric_limits<float>::quiet_NaN();  // global sample 17
    ASSERT_GE(H5Dwrite(feats.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x.data()), 0);
  }
  auto ds = open_dataset(dir_.str(), "train");
  const std::string file = shard_file_name("train", 1, 3);
  EXPECT_DATA_ERROR(ds->verify(std::vector<std::size_t>{1}), file, "checksum mismatch");
  Batch b;
  EXPECT_DATA_ERROR(ds->read_rows(std::vector<std::size_t>{3, 14}, b), file, "label 9 of sample 14",
                    "[0, 5)");
  EXPECT_DATA_ERROR(ds->read_rows(std::vector<std::size_t>{17}, b), file, "sample 17", "NaN");
  EXPECT_NO_THROW(ds->read_rows(std::vector<std::size_t>{3, 13, 15, 29}, b));
  // From the prefetch thread the error surfaces in next(), after the good batches.
  auto reader = ds->read({0, 1, 2, 3, 14, 5}, 2);
  ASSERT_TRUE(reader->next(b));
  ASSERT_TRUE(reader->next(b));
  EXPECT_DATA_ERROR(reader->next(b), file, "label 9 of sample 14");
  // Without a thread the same error comes from the same next() call.
  ds->set_prefetch_depth(0);
  auto sync = ds->read({0, 1, 2, 3, 14, 5}, 2);
  ASSERT_TRUE(sync->next(b));
  ASSERT_TRUE(sync->next(b));
  EXPECT_DATA_ERROR(sync->next(b), file, "label 9 of sample 14");
}

TEST_F(IoBrokenShards, MalformedManifestFields) {
  const json good = manifest();
  struct Case {
    std::function<void(json&)> mutate;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {[](json& j) { j.erase("format"); }, {"field 'format'", "missing"}},
      {[](json& j) { j["format"] = "other"; }, {"field 'format'", "hpcml-shards"}},
      {[](json& j) { j["format_version"] = 2; }, {"field 'format_version'", "newer hpcml"}},
      {[](json& j) { j["format_version"] = "1"; }, {"field 'format_version'", "integer"}},
      {[](json& j) { j["dataset"] = 3; }, {"field 'dataset'", "string"}},
      {[](json& j) { j["features"] = -6; }, {"field 'features'", "non-negative integer"}},
      {[](json& j) {
         j["feature_shape"] = {3, 3};
       },
       {"field 'feature_shape'", "multiplies out to 9"}},
      {[](json& j) { j["classes"] = 0; }, {"field 'classes'", ">= 1"}},
      {[](json& j) { j["feature_dtype"] = "float64"; }, {"field 'feature_dtype'", "float32"}},
      {[](json& j) { j["label_dtype"] = "int64"; }, {"field 'label_dtype'", "int32"}},
      {[](json& j) { j["splits"] = json::array(); }, {"field 'splits'"}},
      {[](json& j) { j["splits"]["train"]["samples"] = 31; },
       {"field 'splits.train.samples'", "shards hold 30"}},
      {[](json& j) { j["splits"]["train"]["shards"] = json::array(); },
       {"field 'splits.train.shards'", "non-empty"}},
      {[](json& j) { j["splits"]["train"]["shards"][1]["file"] = "../x.h5"; },
       {"field 'splits.train.shards[1].file'", "plain file name"}},
      {[](json& j) { j["splits"]["train"]["shards"][2]["first_index"] = 21; },
       {"field 'splits.train.shards[2].first_index'", "expected 20"}},
      {[](json& j) { j["splits"]["train"]["shards"][0]["checksum"] = "md5:abc"; },
       {"field 'splits.train.shards[0].checksum'", "crc32:"}},
      {[](json& j) { j["splits"]["train"]["shards"][0]["bytes"] = 12; },
       {"field 'splits.train.shards[0].bytes'", "expected 280"}},
      {[](json& j) { j["splits"]["train"]["shards"][0].erase("samples"); },
       {"field 'splits.train.shards[0].samples'", "missing"}},
      {[](json& j) { j["classes"] = 2147483647; }, {"field 'classes'", "more than the 1048576"}},
      {[](json& j) {
         j["features"] = std::uint64_t{1} << 40;
         j["feature_shape"] = {std::uint64_t{1} << 40};
       },
       {"field 'features'", "more than"}},
      {[](json& j) {
         j["feature_shape"] = {std::uint64_t{1} << 32, std::uint64_t{1} << 32, 2};
       },
       {"field 'feature_shape'", "more than 2^64"}},
      {[](json& j) {
         j["splits"]["train"]["shards"][0]["file"] = std::string("train-00000-of-00003.h5\0x", 25);
       },
       {"field 'splits.train.shards[0].file'", "NUL byte", "\\x00x"}},
      {[](json& j) { j["splits"]["train"]["shards"][0]["file"] = "/etc/passwd"; },
       {"field 'splits.train.shards[0].file'", "absolute path"}},
      {[](json& j) { j["splits"]["train"]["shards"][2]["file"] = ".."; },
       {"field 'splits.train.shards[2].file'", "names a directory"}},
      {[](json& j) { j["splits"]["train"]["shards"][2]["file"] = "manifest.json"; },
       {"field 'splits.train.shards[2].file'", "names the manifest itself"}},
      {[](json& j) {
         j["splits"]["train"]["shards"][1]["file"] = j["splits"]["train"]["shards"][0]["file"];
       },
       {"field 'splits.train.shards[1].file'", "listed more than once"}},
      {[](json& j) { j["splits"]["train"]["shards"][0]["samples"] = std::uint64_t{1} << 61; },
       {"field 'splits.train.shards[0].samples'", "do not fit"}},
  };
  for (const Case& c : cases) {
    json j = good;
    c.mutate(j);
    set_manifest(j);
    std::vector<std::string> parts = c.expect;
    parts.push_back(dir_ / kManifestName);
    try {
      open_dataset(dir_.str(), "train");
      ADD_FAILURE() << "accepted: " << j.dump();
    } catch (const DataError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.find('\n'), std::string::npos);
      for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
    }
  }
  test::write_text(dir_ / kManifestName, "{\"format\": \"hpcml-shards\", ");
  EXPECT_DATA_ERROR(open_dataset(dir_.str(), "train"), "manifest.json", "not valid JSON");
  set_manifest(good);
  EXPECT_NO_THROW(open_dataset(dir_.str(), "train"));
}

}  // namespace
}  // namespace hpcml::io

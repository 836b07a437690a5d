// Collective reads of the single-file layout against per-rank reads of the
// sharded layout of the same data: the same batches (feature and label bytes),
// step by step and epoch by epoch, including short last batches, ranks with
// different batch counts and ranks with no rows at all.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <numeric>

#include "hpcml/core/data.hpp"
#include "hpcml/io/dataset.hpp"
#include "hpcml/io/writer.hpp"
#include "io_test_util.hpp"
#include "mpi_test_util.hpp"

namespace hpcml::io {
namespace {

using hpcml::testing::shared_dir;
using hpcml::testing::world_rank;
using hpcml::testing::world_size;

namespace fs = std::filesystem;

bool same_bytes(const Batch& a, const Batch& b) {
  return a.rows == b.rows && a.cols == b.cols && a.x.size() == b.x.size() &&
         a.y.size() == b.y.size() &&
         std::memcmp(a.x.data(), b.x.data(), a.x.size() * sizeof(float)) == 0 &&
         std::memcmp(a.y.data(), b.y.data(), a.y.size() * sizeof(std::int32_t)) == 0;
}

class Collective : public ::testing::Test {
 protected:
  static constexpr std::size_t kSamples = 263;  // prime: no batch size divides it
  static constexpr int kClasses = 7;

  void SetUp() override {
    dir_ = shared_dir("layouts");
    data_ = test::synthetic(kSamples, 4, 3, kClasses);
    ShardWriteOptions o;
    o.dataset = "synthetic";
    o.split = "train";
    o.classes = kClasses;
    o.out_dir = dir_ + "/shards";
    o.shards = 5;
    write_split(data_, o, MPI_COMM_WORLD);
    o.out_dir = dir_ + "/single";
    o.layout = Layout::kSingleFile;
    o.shards = 4;  // ignored for one file
    write_split(data_, o, MPI_COMM_WORLD);
    shards_ = open_dataset(dir_ + "/shards", "train");
    single_ = open_dataset(dir_ + "/single", "train", MPI_COMM_WORLD);
  }

  void TearDown() override {
    shards_.reset();
    single_.reset();  // collective close
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank() == 0) fs::remove_all(dir_);
  }

  // Reads `indices` in batches of `rows` from both layouts; every batch must
  // match. Returns the number of batches this rank got.
  std::size_t compare(const std::vector<std::size_t>& indices, std::size_t rows,
                      const std::string& what) {
    auto a = shards_->read(indices, rows);
    auto b = single_->read(indices, rows);
    Batch ba, bb;
    std::size_t n = 0;
    for (;;) {
      const bool ga = a->next(ba);
      const bool gb = b->next(bb);
      EXPECT_EQ(ga, gb) << what << " batch " << n;
      if (!ga || !gb) break;
      EXPECT_TRUE(same_bytes(ba, bb))
          << what << " batch " << n << " differs (rank " << world_rank() << ")";
      ++n;
    }
    // Further calls stay at the end and make no collective call.
    EXPECT_FALSE(b->next(bb));
    return n;
  }

  std::string dir_;
  LabeledData data_;
  std::unique_ptr<ShardDataset> shards_, single_;
};

TEST_F(Collective, ManifestMarksTheLayoutAndTheFileVerifies) {
  const Manifest m = read_manifest(dir_ + "/single");
  const SplitInfo& s = m.splits.at("train");
  EXPECT_EQ(s.layout, Layout::kSingleFile);
  ASSERT_EQ(s.shards.size(), 1u);
  EXPECT_EQ(s.shards[0].file, "train.h5");
  EXPECT_EQ(read_manifest(dir_ + "/shards").splits.at("train").layout, Layout::kShards);
  EXPECT_TRUE(single_->collective());
  EXPECT_FALSE(shards_->collective());
  EXPECT_NE(single_->describe().find("collective MPI-IO"), std::string::npos);
  const ShardCheck c = check_shard_file(dir_ + "/single", m, "train", 0);
  EXPECT_TRUE(c.ok) << c.problem;
  // Without a communicator the same file is read per rank, like one shard.
  auto per_rank = open_dataset(dir_ + "/single", "train");
  EXPECT_FALSE(per_rank->collective());
  const Batch all = per_rank->read_all();
  EXPECT_EQ(all.x, data_.x);
  EXPECT_EQ(all.y, data_.y);
}

TEST_F(Collective, TrainingBatchesMatchStepByStepEpochByEpoch) {
  for (std::size_t local_batch : {std::size_t{8}, std::size_t{5}, std::size_t{64}}) {
    // kAuto: MPI_File_read_at_all at the dataset's offset; kHyperslab: HDF5's
    // collective H5Dread on a hyperslab union.
    single_->set_read_method(local_batch == 5 ? ReadMethod::kHyperslab : ReadMethod::kAuto);
    std::size_t steps = 0;
    for (int epoch = 0; epoch < 3; ++epoch) {
      const auto idx = epoch_indices(kSamples, 42, epoch, world_rank(), world_size(), local_batch);
      steps = compare(idx, local_batch,
                      "batch " + std::to_string(local_batch) + " epoch " + std::to_string(epoch));
    }
    EXPECT_EQ(steps, steps_per_epoch(kSamples, world_size(), local_batch));
  }
}

class CollectiveMethods : public Collective, public ::testing::WithParamInterface<ReadMethod> {};

TEST_P(CollectiveMethods, ShortLastBatchesAndUnevenRanks) {
  single_->set_read_method(GetParam());
  // Evaluation blocks with a short last batch.
  auto [begin, end] = block_range(kSamples, world_rank(), world_size());
  std::vector<std::size_t> block(end - begin);
  std::iota(block.begin(), block.end(), begin);
  EXPECT_EQ(compare(block, 16, "eval block"), (block.size() + 15) / 16);
  // Ranks with very different batch counts, repeated and unsorted indices.
  std::vector<std::size_t> mine;
  for (std::size_t i = 0; i < static_cast<std::size_t>(world_rank()) * 13 + 5; ++i)
    mine.push_back((i * 37 + static_cast<std::size_t>(world_rank())) % kSamples);
  mine.push_back(mine.front());
  EXPECT_EQ(compare(mine, 8, "uneven"), (mine.size() + 7) / 8);
  // The last rank has no rows: it still joins every collective read.
  std::vector<std::size_t> some;
  if (world_rank() != world_size() - 1)
    for (std::size_t i = 0; i < 21; ++i) some.push_back(kSamples - 1 - 3 * i);
  EXPECT_EQ(compare(some, 4, "empty rank"), world_rank() == world_size() - 1 ? 0u : 6u);
}

INSTANTIATE_TEST_SUITE_P(Methods, CollectiveMethods,
                         ::testing::Values(ReadMethod::kAuto, ReadMethod::kHyperslab));

TEST_F(Collective, ReadRowsIsOneCollectiveRead) {
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < 10 * static_cast<std::size_t>(world_rank()); ++i)
    idx.push_back((i * 11) % kSamples);
  Batch a, b;
  shards_->read_rows(idx, a);
  single_->read_rows(idx, b);
  EXPECT_TRUE(same_bytes(a, b));
  // A bad index on one rank is one agreed error, not a hang.
  std::vector<std::size_t> bad = idx;
  if (world_rank() == 0) bad.push_back(kSamples);
  try {
    single_->read_rows(bad, b);
    ADD_FAILURE() << "out-of-range index accepted";
  } catch (const DataError& e) {
    EXPECT_TRUE(e.collective());
    EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
  }
}

TEST_F(Collective, RewritingASplitAsShardsRemovesTheOldSingleFile) {
  MPI_Barrier(MPI_COMM_WORLD);
  single_.reset();
  ShardWriteOptions o;
  o.dataset = "synthetic";
  o.split = "train";
  o.classes = kClasses;
  o.out_dir = dir_ + "/single";
  o.shards = 3;
  write_split(data_, o, MPI_COMM_WORLD);
  EXPECT_FALSE(fs::exists(dir_ + "/single/train.h5"));
  EXPECT_EQ(read_manifest(dir_ + "/single").splits.at("train").layout, Layout::kShards);
  single_ = open_dataset(dir_ + "/single", "train", MPI_COMM_WORLD);
  EXPECT_FALSE(single_->collective());
}

}  // namespace
}  // namespace hpcml::io

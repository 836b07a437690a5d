// Shard writing under mpiexec: rank r writes shards r, r+R, ...; rank 0 writes
// the manifest; errors on any rank surface on every rank as one collective error.
#include <gtest/gtest.h>
#include <mpi.h>

#include <filesystem>
#include <numeric>

#include "hpcml/io/dataset.hpp"
#include "hpcml/io/writer.hpp"
#include "hpcml/mpi/agree.hpp"
#include "io_test_util.hpp"
#include "mpi_test_util.hpp"

namespace hpcml::io {
namespace {

using hpcml::testing::shared_dir;
using hpcml::testing::world_rank;
using hpcml::testing::world_size;

namespace fs = std::filesystem;

void remove_shared(const std::string& dir) {
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) fs::remove_all(dir);
}

TEST(IoParallel, RanksWriteInterleavedShardsAndRank0TheManifest) {
  const std::string dir = shared_dir("write");
  const LabeledData d = test::synthetic(53, 4, 3, 7);
  ShardWriteOptions o;
  o.out_dir = dir;
  o.dataset = "synthetic";
  o.split = "train";
  o.shards = 5;
  o.classes = 7;
  std::vector<std::string> written;
  o.progress = [&](const std::string& line) { written.push_back(line); };
  const SplitInfo info = write_split(d, o, MPI_COMM_WORLD);
  ASSERT_EQ(info.shards.size(), 5u);
  // This rank reported exactly its own shards (plus the manifest on rank 0).
  std::size_t mine = 0;
  for (int i = world_rank(); i < 5; i += world_size()) {
    ++mine;
    bool found = false;
    for (const auto& l : written)
      found = found ||
              l.find(shard_file_name("train", static_cast<std::size_t>(i), 5)) != std::string::npos;
    EXPECT_TRUE(found) << "rank " << world_rank() << " did not write shard " << i;
  }
  EXPECT_EQ(written.size(), mine + (world_rank() == 0 ? 1 : 0));

  // Every rank sees the same complete, checksummed dataset.
  auto ds = open_dataset(dir, "train");
  std::vector<std::size_t> ids(5);
  std::iota(ids.begin(), ids.end(), 0);
  EXPECT_NO_THROW(ds->verify(ids));
  const Batch all = ds->read_all();
  EXPECT_EQ(all.x, d.x);
  EXPECT_EQ(all.y, d.y);

  // A second split from another "file" joins the same manifest.
  o.split = "test";
  o.shards = 2;
  write_split(test::synthetic(9, 4, 3, 7), o, MPI_COMM_WORLD);
  EXPECT_EQ(read_manifest(dir).splits.size(), 2u);
  remove_shared(dir);
}

TEST(IoParallel, ErrorsAreAgreedOnByEveryRank) {
  const std::string dir = shared_dir("errors");
  ShardWriteOptions o;
  o.out_dir = dir;
  o.dataset = "synthetic";
  o.split = "train";
  o.shards = 9;
  o.classes = 7;
  try {
    write_split(test::synthetic(4, 2, 2, 7), o, MPI_COMM_WORLD);
    ADD_FAILURE() << "more shards than samples accepted";
  } catch (const DataError& e) {
    EXPECT_TRUE(e.collective());
    EXPECT_NE(std::string(e.what()).find("4 samples into 9 shards"), std::string::npos);
  }
  // Only the last rank fails: everyone gets its message, prefixed by its rank.
  const int last = world_size() - 1;
  std::exception_ptr local;
  if (world_rank() == last) local = std::make_exception_ptr(DataError("shard-x.h5: broken"));
  try {
    mpi::agree(MPI_COMM_WORLD, local);
    ADD_FAILURE() << "agree() returned although rank " << last << " failed";
  } catch (const DataError& e) {
    EXPECT_TRUE(e.collective());
    EXPECT_EQ(std::string(e.what()), "rank " + std::to_string(last) + ": shard-x.h5: broken");
  }
  // Every rank fails: rank 0's message, no prefix, the error type kept.
  try {
    mpi::agree(MPI_COMM_WORLD,
               std::make_exception_ptr(ConfigError("rank-" + std::to_string(world_rank()))));
    ADD_FAILURE() << "agree() returned although every rank failed";
  } catch (const ConfigError& e) {
    EXPECT_TRUE(e.collective());
    EXPECT_EQ(std::string(e.what()), "rank-0");
  }
  EXPECT_NO_THROW(mpi::agree(MPI_COMM_WORLD, nullptr));
  remove_shared(dir);
}

}  // namespace
}  // namespace hpcml::io

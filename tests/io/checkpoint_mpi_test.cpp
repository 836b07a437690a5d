// The collective side of checkpoints under mpiexec: the momentum of a sharded
// update gathered from its owners, saves on every rank with one writer, the
// newest `keep` kept, and a write failure raised on every rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "hpcml/core/error.hpp"
#include "hpcml/io/checkpoint.hpp"
#include "mpi_test_util.hpp"

namespace hpcml::io {
namespace {

using hpcml::testing::shared_dir;
using hpcml::testing::world_rank;
using hpcml::testing::world_size;

namespace fs = std::filesystem;

// A 5-4-3 model's worth of values (39) where this rank's momentum is right only
// in its owned ranges (two pieces per rank, as a sharded update may own).
struct Sharded {
  std::vector<float> params, momentum, truth;
  TrainState state;
  explicit Sharded(bool ranges) {
    const std::size_t n = 39;
    for (std::size_t i = 0; i < n; ++i) {
      params.push_back(static_cast<float>(i));
      truth.push_back(0.5f * static_cast<float>(i) + 1.0f);
      momentum.push_back(ranges ? -100.0f * static_cast<float>(world_rank() + 1) : truth.back());
    }
    const auto r = static_cast<std::size_t>(world_rank()),
               s = static_cast<std::size_t>(world_size());
    const std::size_t lo = r * n / s, hi = (r + 1) * n / s, mid = (lo + hi) / 2;
    if (ranges) {
      state.momentum_ranges = {{lo, mid}, {mid, hi}};
      for (std::size_t i = lo; i < hi; ++i) momentum[i] = truth[i];
    }
    state.parameters = params;
    state.momentum = momentum;
    state.seed = 1;
    state.ranks = world_size();
    state.local_batch = 2;
    state.steps_per_epoch = 10;
    state.total_steps = 100;
  }
  void at_step(std::size_t step) {
    state.global_step = step;
    state.epoch = static_cast<int>(step / 10);
    state.step_in_epoch = step % 10;
  }
};

CheckpointInfo info() {
  CheckpointInfo i;
  i.layers = {5, 4, 3};
  return i;
}

TEST(CheckpointMpi, MomentumOfASharedUpdateIsGatheredFromItsOwners) {
  Sharded s(true);
  const auto full = gather_momentum(MPI_COMM_WORLD, s.state);
  if (world_rank() == 0) {
    EXPECT_EQ(full, s.truth);
  } else {
    EXPECT_TRUE(full.empty());
  }
}

TEST(CheckpointMpi, WithoutRangesRankZerosMomentumIsTaken) {
  Sharded s(false);
  const auto full = gather_momentum(MPI_COMM_WORLD, s.state);
  if (world_rank() == 0) {
    EXPECT_EQ(full, s.truth);
  }
}

TEST(CheckpointMpi, SavesEveryNStepsKeepsTheNewestAndReportsOnRankZero) {
  const std::string dir = shared_dir("keep");
  if (world_rank() == 0) std::ofstream(fs::path(dir) / "ckpt-000000000001.h5.tmp") << "left over";
  MPI_Barrier(MPI_COMM_WORLD);
  Sharded s(true);
  std::vector<CheckpointMetrics> written;
  Checkpointer c(MPI_COMM_WORLD, {3, 0, 2, dir}, info(),
                 [&](const CheckpointMetrics& m) { written.push_back(m); });
  for (std::size_t step = 1; step <= 10; ++step) {
    s.at_step(step);
    c.after_step(s.state);
  }
  TrainSummary summary;
  c.after_training(s.state, summary);  // step 10: a new one, "end"
  c.after_training(s.state, summary);  // the same step again: no second write
  EXPECT_EQ(c.last_path(), (fs::path(dir) / checkpoint_file_name(10)).string());
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) {
    ASSERT_EQ(written.size(), 4u);  // steps 3, 6, 9, 10
    EXPECT_EQ(written[0].reason, "steps");
    EXPECT_EQ(written[3].reason, "end");
    EXPECT_EQ(written[3].global_step, 10u);
    EXPECT_EQ(written[3].epoch, 1);  // step 10 ends the first epoch
    EXPECT_EQ(written[2].epoch, 1);
    EXPECT_GT(written[3].bytes, 0u);
    EXPECT_EQ(list_checkpoints(dir),
              (std::vector<std::string>{(fs::path(dir) / checkpoint_file_name(10)).string(),
                                        (fs::path(dir) / checkpoint_file_name(9)).string()}));
    EXPECT_FALSE(fs::exists(fs::path(dir) / "ckpt-000000000001.h5.tmp"));
    const auto loaded = read_checkpoint(c.last_path());
    EXPECT_EQ(loaded.state.momentum_data, s.truth);
    EXPECT_EQ(loaded.state.view().ranks, world_size());
  } else {
    EXPECT_TRUE(written.empty());
  }
}

TEST(CheckpointMpi, AWriteFailureIsRaisedOnEveryRank) {
  const std::string dir = shared_dir("fail");
  const std::string blocked = (fs::path(dir) / "file").string();
  if (world_rank() == 0) std::ofstream(blocked) << "not a directory";
  MPI_Barrier(MPI_COMM_WORLD);
  Sharded s(false);
  s.at_step(4);
  Checkpointer c(MPI_COMM_WORLD, {0, 0, 2, blocked + "/ckpts"}, info(), {});
  try {
    c.save(s.state, "steps");
    FAIL() << "expected an error on every rank";
  } catch (const Error& e) {
    EXPECT_TRUE(e.collective());
    EXPECT_NE(std::string(e.what()).find("checkpoint.dir"), std::string::npos) << e.what();
  }
}

// Asynchronous saves write what synchronous ones write: the same files, with
// the same data, position and digests. The state is changed right after each
// async save returns: the background write must use the snapshot, not the
// live buffers.
TEST(CheckpointMpi, AsyncSavesWriteWhatSyncSavesWrite) {
  const std::string sync_dir = shared_dir("sync"), async_dir = shared_dir("async");
  Sharded s(true);
  std::vector<CheckpointMetrics> sync_written, async_written;
  Checkpointer sync(MPI_COMM_WORLD, {2, 0, 100, sync_dir, false}, info(),
                    [&](const CheckpointMetrics& m) { sync_written.push_back(m); });
  Checkpointer async(MPI_COMM_WORLD, {2, 0, 100, async_dir, true}, info(),
                     [&](const CheckpointMetrics& m) { async_written.push_back(m); });
  for (std::size_t step = 1; step <= 9; ++step) {
    s.at_step(step);
    sync.after_step(s.state);
    async.after_step(s.state);
    for (auto& p : s.params) p += 0.25f;  // the next step's update, while the write runs
    for (auto& m : s.momentum) m -= 0.5f;
    for (auto& t : s.truth) t -= 0.5f;
  }
  TrainSummary summary;
  sync.after_training(s.state, summary);  // step 9: "end"
  async.after_training(s.state, summary);
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() != 0) {
    EXPECT_TRUE(async_written.empty());
    return;
  }
  ASSERT_EQ(sync_written.size(), 5u);  // steps 2, 4, 6, 8, 9
  ASSERT_EQ(async_written.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_FALSE(sync_written[i].async);
    EXPECT_EQ(async_written[i].async, i < 4) << i;  // the last save is synchronous
    EXPECT_EQ(async_written[i].global_step, sync_written[i].global_step);
    EXPECT_EQ(async_written[i].reason, sync_written[i].reason);
    EXPECT_GT(async_written[i].bytes, 0u);
    EXPECT_GE(async_written[i].snapshot_s, 0.0);
  }
  const auto a = list_checkpoints(async_dir), b = list_checkpoints(sync_dir);
  ASSERT_EQ(a.size(), 5u);
  ASSERT_EQ(b.size(), 5u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(fs::path(a[i]).filename(), fs::path(b[i]).filename());
    const auto x = read_checkpoint(a[i]), y = read_checkpoint(b[i]);
    EXPECT_EQ(x.state.parameters_data, y.state.parameters_data) << a[i];
    EXPECT_EQ(x.state.momentum_data, y.state.momentum_data) << a[i];
    EXPECT_EQ(x.params_digest, y.params_digest);
    EXPECT_EQ(x.momentum_digest, y.momentum_digest);
    EXPECT_EQ(x.state.view().global_step, y.state.view().global_step);
  }
  // Step 8's file holds the parameters of step 8, not the ones changed after it.
  EXPECT_EQ(read_checkpoint(a[1]).state.parameters_data[0], 7 * 0.25f);
}

// A background write that fails (here a directory sits where its temporary
// file must go) is raised on every rank at the next agreement, naming the file.
TEST(CheckpointMpi, AnAsyncWriteFailureIsRaisedOnEveryRankAtTheNextAgreement) {
  const std::string dir = shared_dir("async-fail");
  const std::string tmp = (fs::path(dir) / (checkpoint_file_name(4) + ".tmp")).string();
  if (world_rank() == 0) {
    fs::create_directories(tmp);
    std::ofstream(fs::path(tmp) / "in-the-way") << "x";
  }
  MPI_Barrier(MPI_COMM_WORLD);
  Sharded s(false);
  s.at_step(4);
  Checkpointer c(MPI_COMM_WORLD, {0, 0, 2, dir, true}, info(), {});
  c.save(s.state, "steps");  // returns at once: the write runs in the background
  // The trainer's agreement: rank 0 asks once its writer has failed.
  int asked = 0;
  if (world_rank() == 0) {
    for (int i = 0; i < 3000 && !asked; ++i) {
      asked = c.request(s.state) ? 1 : 0;
      if (!asked) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } else {
    EXPECT_FALSE(c.request(s.state));
  }
  MPI_Allreduce(MPI_IN_PLACE, &asked, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  ASSERT_EQ(asked, 1);
  try {
    c.on_request(s.state);
    FAIL() << "expected an error on every rank";
  } catch (const Error& e) {
    EXPECT_TRUE(e.collective());
    EXPECT_NE(std::string(e.what()).find(tmp), std::string::npos) << e.what();
  }
}

// checkpoint.every_minutes: only rank 0's clock asks.
TEST(CheckpointMpi, OnlyRankZeroAsksForATimedSave) {
  Sharded s(false);
  Checkpointer c(MPI_COMM_WORLD, {0, 1e-9, 2, shared_dir("timed")}, info(), {});
  EXPECT_EQ(c.request(s.state), world_rank() == 0);
  Checkpointer off(MPI_COMM_WORLD, {0, 0, 2, "unused"}, info(), {});
  EXPECT_FALSE(off.request(s.state));
}

}  // namespace
}  // namespace hpcml::io

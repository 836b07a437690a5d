// The collective side of checkpoints under mpiexec: the momentum of a sharded
// update gathered from its owners, saves on every rank with one writer, the
// newest `keep` kept, and a write failure raised on every rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include <filesystem>
#include <fstream>

#include "hpcml/core/error.hpp"
#include "hpcml/io/checkpoint.hpp"

namespace hpcml::io {
namespace {

namespace fs = std::filesystem;

int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

// One directory for the whole job (rank 0 names it).
std::string shared_dir(const std::string& name) {
  std::string dir = (fs::temp_directory_path() / ("hpcml-ckpt-mpi-" + name)).string();
  if (rank() == 0) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return dir;
}

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
      momentum.push_back(ranges ? -100.0f * static_cast<float>(rank() + 1) : truth.back());
    }
    const auto r = static_cast<std::size_t>(rank()), s = static_cast<std::size_t>(size());
    const std::size_t lo = r * n / s, hi = (r + 1) * n / s, mid = (lo + hi) / 2;
    if (ranges) {
      state.momentum_ranges = {{lo, mid}, {mid, hi}};
      for (std::size_t i = lo; i < hi; ++i) momentum[i] = truth[i];
    }
    state.parameters = params;
    state.momentum = momentum;
    state.seed = 1;
    state.ranks = size();
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
  if (rank() == 0) {
    EXPECT_EQ(full, s.truth);
  } else {
    EXPECT_TRUE(full.empty());
  }
}

TEST(CheckpointMpi, WithoutRangesRankZerosMomentumIsTaken) {
  Sharded s(false);
  const auto full = gather_momentum(MPI_COMM_WORLD, s.state);
  if (rank() == 0) {
    EXPECT_EQ(full, s.truth);
  }
}

TEST(CheckpointMpi, SavesEveryNStepsKeepsTheNewestAndReportsOnRankZero) {
  const std::string dir = shared_dir("keep");
  if (rank() == 0) std::ofstream(fs::path(dir) / "ckpt-000000000001.h5.tmp") << "left over";
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
  if (rank() == 0) {
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
    EXPECT_EQ(loaded.state.view().ranks, size());
  } else {
    EXPECT_TRUE(written.empty());
  }
}

TEST(CheckpointMpi, AWriteFailureIsRaisedOnEveryRank) {
  const std::string dir = shared_dir("fail");
  const std::string blocked = (fs::path(dir) / "file").string();
  if (rank() == 0) std::ofstream(blocked) << "not a directory";
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

// checkpoint.every_minutes: only rank 0's clock asks.
TEST(CheckpointMpi, OnlyRankZeroAsksForATimedSave) {
  Sharded s(false);
  Checkpointer c(MPI_COMM_WORLD, {0, 1e-9, 2, shared_dir("timed")}, info(), {});
  EXPECT_EQ(c.request(s.state), rank() == 0);
  Checkpointer off(MPI_COMM_WORLD, {0, 0, 2, "unused"}, info(), {});
  EXPECT_FALSE(off.request(s.state));
}

}  // namespace
}  // namespace hpcml::io

// Data-parallel invariants under real MPI.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <optional>

#include "hpcml/comm/mpi.hpp"
#include "hpcml/core/trainer.hpp"
#include "hpcml/kernels/factory.hpp"
#include "memory_dataset.hpp"

using hpcml::testing::MemoryDataset;
using hpcml::testing::SelfCollectives;

namespace {

hpcml::TrainConfig config(int batch) {
  hpcml::TrainConfig c;
  c.model.hidden = {24, 12};
  c.train.epochs = 2;
  c.train.batch_size = batch;
  c.optimizer.lr = 0.05;
  c.run.progress = "never";
  return c;
}

// The two trainers end with the same weights up to float rounding: only the
// summation order of the gradient differs, amplified a little over 2 epochs.
void expect_same_weights(const hpcml::Trainer& x, const hpcml::Trainer& y) {
  auto a = x.model().parameters();
  auto b = y.model().parameters();
  ASSERT_EQ(a.size(), b.size());
  double max_diff = 0, max_abs = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(a[i] - b[i])));
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(b[i])));
  }
  EXPECT_LT(max_diff, 1e-4 * std::max(1.0, max_abs)) << "max |diff| " << max_diff;
}

}  // namespace

TEST(DataParallel, WeightsAreBitIdenticalOnEveryRank) {
  auto world = hpcml::comm::Communicator::world();
  auto train = MemoryDataset::blobs(1200, 16, 5, 7);
  auto test = MemoryDataset::blobs(300, 16, 5, 7);
  auto be = hpcml::kernels::make_backend("omp", 1);
  auto cfg = config(8);
  hpcml::Trainer t(cfg, *be, world, *train, test.get(), "", nullptr);
  auto s = t.run();
  EXPECT_GT(s.steps, 0u);
  auto p = t.model().parameters();
  std::vector<float> root(p.begin(), p.end());
  MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
  EXPECT_EQ(std::memcmp(root.data(), p.data(), p.size_bytes()), 0)
      << "rank " << world.rank() << " weights differ from rank 0";
}

// R ranks with batch b per rank must take the same steps as 1 rank with batch
// R*b: the global batches are the same samples and gradients are averaged.
TEST(DataParallel, RRanksTimesBatchEqualsOneRankTimesRB) {
  auto world = hpcml::comm::Communicator::world();
  const int ranks = world.size();
  auto train = MemoryDataset::blobs(960, 16, 5, 3);
  auto be = hpcml::kernels::make_backend("reference", 1);

  auto cfg_par = config(10);
  hpcml::Trainer par(cfg_par, *be, world, *train, nullptr, "", nullptr);
  par.run();

  SelfCollectives self;
  auto cfg_one = config(10 * ranks);
  hpcml::Trainer one(cfg_one, *be, self, *train, nullptr, "", nullptr);
  one.run();

  expect_same_weights(par, one);
}

// Gradient accumulation: R ranks x batch 5 x 2 micro-batches take the steps of
// 1 rank x batch 10R, with one all-reduce per step.
TEST(DataParallel, AccumulatedMicroBatchesEqualOneLargeBatch) {
  auto world = hpcml::comm::Communicator::world();
  const int ranks = world.size();
  auto train = MemoryDataset::blobs(960, 16, 5, 3);
  auto be = hpcml::kernels::make_backend("reference", 1);

  auto cfg_acc = config(5);
  cfg_acc.train.accumulate = 2;
  hpcml::Trainer acc(cfg_acc, *be, world, *train, nullptr, "", nullptr);
  const auto s_acc = acc.run();

  SelfCollectives self;
  auto cfg_one = config(10 * ranks);
  hpcml::Trainer one(cfg_one, *be, self, *train, nullptr, "", nullptr);
  const auto s_one = one.run();
  EXPECT_EQ(s_acc.steps, s_one.steps);
  EXPECT_EQ(acc.state().local_batch * static_cast<std::size_t>(ranks), one.state().local_batch);
  expect_same_weights(acc, one);
}

namespace {

// Copies the state once `at` steps are taken.
class Snapshot final : public hpcml::StepHook {
 public:
  explicit Snapshot(std::size_t at) : at_(at) {}
  void after_step(const hpcml::TrainState& s) override {
    if (s.global_step == at_) copy.emplace(s);
  }
  std::optional<hpcml::OwnedTrainState> copy;

 private:
  std::size_t at_;
};

class LossRecorder final : public hpcml::MetricsSink {
 public:
  explicit LossRecorder(std::vector<double>& losses) : losses_(losses) {}
  void step(const hpcml::StepMetrics& m) override { losses_.push_back(m.phases.loss); }

 private:
  std::vector<double>& losses_;
};

}  // namespace

// Every rank restores the state it took mid-epoch; the resumed run ends with
// the same weights on every rank as the uninterrupted one, and rank 0 sees
// the same combined losses.
TEST(DataParallel, RestoredStateContinuesBitIdentically) {
  auto world = hpcml::comm::Communicator::world();
  auto train = MemoryDataset::blobs(1200, 16, 5, 7);
  auto be = hpcml::kernels::make_backend("omp", 1);
  auto cfg = config(8);
  const std::size_t at = 1200 / (8 * static_cast<std::size_t>(world.size())) + 5;

  std::vector<double> full_losses, resumed_losses;
  Snapshot snap(at);
  hpcml::Trainer full(cfg, *be, world, *train, nullptr);
  full.add_sink(std::make_unique<LossRecorder>(full_losses));
  full.add_hook(snap);
  full.run();
  ASSERT_TRUE(snap.copy.has_value());

  hpcml::Trainer resumed(cfg, *be, world, *train, nullptr);
  resumed.add_sink(std::make_unique<LossRecorder>(resumed_losses));
  resumed.restore(snap.copy->view());
  resumed.run();

  auto a = full.model().parameters();
  auto b = resumed.model().parameters();
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size_bytes()), 0)
      << "rank " << world.rank() << ": resumed weights differ";
  if (world.rank() == 0) {
    ASSERT_EQ(resumed_losses.size(), full_losses.size() - at);
    EXPECT_TRUE(std::equal(resumed_losses.begin(), resumed_losses.end(),
                           full_losses.begin() + static_cast<std::ptrdiff_t>(at)));
  } else {
    EXPECT_TRUE(full_losses.empty());  // sinks are called on rank 0 only
  }
}

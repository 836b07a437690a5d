// The trainer on a device backend (tests/common/guarded_backend.hpp: the
// reference kernels on memory host code cannot touch), under real MPI (1 and
// 2 ranks): the same bits as on the reference backend, with accumulation, a
// convolutional model and dropout; resume from a saved state bit-exact; and
// fp16 dynamic loss scaling (skip and halve on inf/NaN gradients after the
// all-reduce, grow after the window, logged per step, resumed exactly).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <set>
#include <vector>

#include "guarded_backend.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/core/digest.hpp"
#include "hpcml/core/signals.hpp"
#include "hpcml/core/trainer.hpp"
#include "hpcml/kernels/factory.hpp"
#include "memory_dataset.hpp"

using hpcml::testing::GuardedBackend;
using hpcml::testing::MemoryDataset;

namespace {

hpcml::TrainConfig mlp_config() {
  hpcml::TrainConfig c;
  c.model.hidden = {16, 8};
  c.train.epochs = 2;
  c.train.batch_size = 16;
  c.optimizer.lr = 0.05;
  c.run.progress = "never";
  return c;
}

// 8x8x1 images: conv, relu, maxpool, flatten, dropout, dense.
hpcml::TrainConfig cnn_config() {
  hpcml::TrainConfig c = mlp_config();
  c.model.input_shape = {8, 8, 1};
  auto layer = [](const char* type) {
    hpcml::LayerSpec s;
    s.type = type;
    return s;
  };
  hpcml::LayerSpec conv = layer("conv2d");
  conv.filters = 4;
  conv.kernel = 3;
  conv.padding = 1;
  hpcml::LayerSpec drop = layer("dropout");
  drop.rate = 0.25;
  hpcml::LayerSpec dense = layer("dense");
  dense.units = 12;
  c.model.layers = {conv, layer("relu"), layer("maxpool2d"), layer("flatten"),
                    drop, dense,         layer("relu")};
  c.train.epochs = 1;
  return c;
}

// Every step's combined metrics (rank 0).
struct StepLog final : hpcml::MetricsSink {
  std::vector<hpcml::StepMetrics>* out;
  explicit StepLog(std::vector<hpcml::StepMetrics>* o) : out(o) {}
  void step(const hpcml::StepMetrics& m) override { out->push_back(m); }
};

struct Outcome {
  hpcml::TrainSummary summary;
  std::vector<float> parameters, momentum;
  std::vector<hpcml::StepMetrics> steps;  // rank 0
  hpcml::TrainState state;                // position and loss-scale fields
};

Outcome train(const hpcml::TrainConfig& cfg, hpcml::Backend& be, hpcml::Dataset& data,
              const hpcml::TrainState* from = nullptr, bool stop_at_8 = false) {
  auto world = hpcml::comm::Communicator::world();
  hpcml::Trainer t(cfg, be, world, data, nullptr);
  Outcome o;
  t.add_sink(std::make_unique<StepLog>(&o.steps));
  if (from) t.restore(*from);
  if (stop_at_8) hpcml::set_stop_requested(true, 10);
  o.summary = t.run();
  hpcml::set_stop_requested(false);
  o.parameters.assign(t.state().parameters.begin(), t.state().parameters.end());
  o.momentum.assign(t.state().momentum.begin(), t.state().momentum.end());
  o.state = t.state();
  o.state.parameters = {};
  o.state.momentum = {};
  return o;
}

void expect_same(const Outcome& a, const Outcome& b, const char* what) {
  EXPECT_EQ(a.summary.params_digest, b.summary.params_digest) << what;
  EXPECT_EQ(a.parameters, b.parameters) << what;
  EXPECT_EQ(a.momentum, b.momentum) << what;
  EXPECT_EQ(a.summary.final_train_loss, b.summary.final_train_loss) << what;
  ASSERT_EQ(a.steps.size(), b.steps.size()) << what;
  for (std::size_t i = 0; i < a.steps.size(); ++i)
    EXPECT_EQ(a.steps[i].phases.loss, b.steps[i].phases.loss) << what << " step " << i + 1;
}

// The guarded backend, with the loss gradient of chosen training steps
// (1-based, counted per softmax_xent call with a gradient) set to inf on the
// last rank only: the average over ranks is then inf/NaN on every rank.
class OverflowBackend final : public GuardedBackend {
 public:
  OverflowBackend(std::set<std::size_t> steps, bool this_rank)
      : steps_(std::move(steps)), this_rank_(this_rank) {}

 protected:
  void after_loss_gradient(float* dlogits, std::size_t n) override {
    ++calls_;
    if (this_rank_ && n > 0 && steps_.count(calls_)) dlogits[0] = INFINITY;
  }

 private:
  std::set<std::size_t> steps_;
  bool this_rank_;
  std::size_t calls_ = 0;
};

bool last_rank() {
  auto world = hpcml::comm::Communicator::world();
  return world.rank() == world.size() - 1;
}

}  // namespace

TEST(DeviceMemory, MlpOnTheGuardedBackendMatchesTheReference) {
  auto data = MemoryDataset::blobs(640, 12, 3, 5);
  auto ref = hpcml::kernels::make_backend("reference", 1);
  GuardedBackend guarded;
  const auto cfg = mlp_config();
  const Outcome a = train(cfg, *ref, *data);
  const Outcome b = train(cfg, guarded, *data);
  EXPECT_GT(a.summary.steps, 0u);
  expect_same(a, b, "mlp");
  if (hpcml::comm::Communicator::world().rank() == 0) {
    EXPECT_FALSE(b.steps.empty());
  }
}

TEST(DeviceMemory, CnnWithDropoutOnTheGuardedBackendMatchesTheReference) {
  auto data = MemoryDataset::blobs(320, 64, 4, 9);
  auto ref = hpcml::kernels::make_backend("reference", 1);
  GuardedBackend guarded;
  const auto cfg = cnn_config();
  expect_same(train(cfg, *ref, *data), train(cfg, guarded, *data), "cnn");
}

TEST(DeviceMemory, AccumulationAndAdamOnTheGuardedBackendMatchTheReference) {
  auto data = MemoryDataset::blobs(640, 12, 3, 5);
  auto cfg = mlp_config();
  cfg.train.accumulate = 3;
  cfg.train.batch_size = 5;
  cfg.optimizer.name = "adam";
  cfg.optimizer.lr = 0.01;
  auto ref = hpcml::kernels::make_backend("reference", 1);
  GuardedBackend guarded;
  expect_same(train(cfg, *ref, *data), train(cfg, guarded, *data), "accumulate 3, adam");
  cfg.optimizer.name = "lamb";  // layer-wise norms through sum_squares
  expect_same(train(cfg, *ref, *data), train(cfg, guarded, *data), "accumulate 3, lamb");
}

TEST(DeviceMemory, ResumeFromASavedStateIsBitExact) {
  auto data = MemoryDataset::blobs(640, 12, 3, 5);
  auto cfg = mlp_config();
  cfg.optimizer.name = "adamw";
  cfg.optimizer.lr = 0.01;
  GuardedBackend be;
  const Outcome full = train(cfg, be, *data);
  GuardedBackend be2;
  // A stop signal ends the run after step 8 (the agreement runs every 8 steps).
  auto world = hpcml::comm::Communicator::world();
  hpcml::Trainer stopped(cfg, be2, world, *data, nullptr);
  hpcml::set_stop_requested(true, 10);
  stopped.run();
  hpcml::set_stop_requested(false);
  ASSERT_EQ(stopped.state().global_step, 8u);
  const hpcml::OwnedTrainState saved(stopped.state());  // host mirrors
  GuardedBackend be3;
  const Outcome resumed = train(cfg, be3, *data, &saved.view());
  EXPECT_EQ(resumed.summary.params_digest, full.summary.params_digest);
  EXPECT_EQ(resumed.parameters, full.parameters);
  EXPECT_EQ(resumed.momentum, full.momentum);
}

// With no overflow, fp16 loss scaling changes no bit: the scale is a power of
// two, so scaling the loss gradient and unscaling the averaged gradients is
// exact in float arithmetic.
TEST(LossScaling, WithoutOverflowTheBitsAreThoseOfFp32) {
  auto data = MemoryDataset::blobs(640, 12, 3, 5);
  auto cfg = mlp_config();
  GuardedBackend a, b;
  const Outcome fp32 = train(cfg, a, *data);
  cfg.train.precision = "fp16";
  const Outcome fp16 = train(cfg, b, *data);
  EXPECT_EQ(fp16.summary.params_digest, fp32.summary.params_digest);
  EXPECT_EQ(fp16.state.skipped_steps, 0u);
  EXPECT_EQ(fp16.state.loss_scale, 65536.0);  // fewer good steps than the window
  EXPECT_EQ(fp32.state.loss_scale, 0.0);      // no loss scaling
  for (const auto& m : fp32.steps) EXPECT_EQ(m.loss_scale, 0.0);
}

TEST(LossScaling, OverflowSkipsTheStepHalvesTheScaleAndTheWindowGrowsIt) {
  auto data = MemoryDataset::blobs(640, 12, 3, 5);
  auto cfg = mlp_config();
  cfg.train.precision = "fp16";
  cfg.train.loss_scale = 1024;
  cfg.train.loss_scale_window = 4;
  cfg.train.max_steps = 16;
  const std::set<std::size_t> overflow{3, 4, 10};
  OverflowBackend be(overflow, last_rank());

  // Parameters after each step, to see that a skipped step changes nothing.
  struct Record final : hpcml::StepHook {
    std::vector<std::vector<float>> params, momentum;
    void after_step(const hpcml::TrainState& s) override {
      params.emplace_back(s.parameters.begin(), s.parameters.end());
      momentum.emplace_back(s.momentum.begin(), s.momentum.end());
    }
  } rec;
  auto world = hpcml::comm::Communicator::world();
  hpcml::Trainer t(cfg, be, world, *data, nullptr);
  std::vector<hpcml::StepMetrics> steps;
  t.add_sink(std::make_unique<StepLog>(&steps));
  t.add_hook(rec);
  const auto s = t.run();
  ASSERT_EQ(s.steps, 16u);
  ASSERT_EQ(rec.params.size(), 16u);

  // The rules, step by step.
  double scale = 1024;
  std::size_t good = 0, skipped = 0;
  std::vector<double> used;
  std::vector<std::size_t> skipped_after;
  for (std::size_t step = 1; step <= 16; ++step) {
    used.push_back(scale);
    if (overflow.count(step)) {
      ++skipped;
      scale /= 2;
      good = 0;
    } else if (++good == 4) {
      scale *= 2;
      good = 0;
    }
    skipped_after.push_back(skipped);
  }
  EXPECT_EQ(t.state().skipped_steps, 3u);
  EXPECT_EQ(t.state().loss_scale, scale);
  EXPECT_EQ(t.state().loss_scale_good_steps, good);
  for (std::size_t i = 1; i < 16; ++i) {
    if (overflow.count(i + 1)) {
      EXPECT_EQ(rec.params[i], rec.params[i - 1]) << "skipped step " << i + 1 << " changed weights";
      EXPECT_EQ(rec.momentum[i], rec.momentum[i - 1]) << "step " << i + 1;
    } else {
      EXPECT_NE(rec.params[i], rec.params[i - 1]) << "step " << i + 1 << " was not applied";
    }
  }
  for (const auto& p : rec.params.back()) ASSERT_TRUE(std::isfinite(p));
  if (world.rank() == 0) {
    ASSERT_EQ(steps.size(), 16u);
    for (std::size_t i = 0; i < 16; ++i) {
      EXPECT_EQ(steps[i].loss_scale, used[i]) << "step " << i + 1;
      EXPECT_EQ(steps[i].skipped_steps, skipped_after[i]) << "step " << i + 1;
    }
    EXPECT_EQ(used[3], 512.0);  // halved after step 3, again after 4
    EXPECT_EQ(used[4], 256.0);
    EXPECT_EQ(used[8], 512.0);  // grown after steps 5-8
  }
}

TEST(LossScaling, ResumeKeepsTheScaleState) {
  auto data = MemoryDataset::blobs(640, 12, 3, 5);
  auto cfg = mlp_config();
  cfg.train.precision = "fp16";
  cfg.train.loss_scale = 4096;
  cfg.train.loss_scale_window = 3;
  const std::set<std::size_t> overflow{2, 7, 12};
  OverflowBackend full_be(overflow, last_rank());
  const Outcome full = train(cfg, full_be, *data);

  auto world = hpcml::comm::Communicator::world();
  OverflowBackend first_be(overflow, last_rank());
  hpcml::Trainer first(cfg, first_be, world, *data, nullptr);
  hpcml::set_stop_requested(true, 10);
  first.run();
  hpcml::set_stop_requested(false);
  ASSERT_EQ(first.state().global_step, 8u);
  EXPECT_EQ(first.state().skipped_steps, 2u);
  const hpcml::OwnedTrainState saved(first.state());
  // The resumed backend counts steps from 9.
  std::set<std::size_t> later;
  for (auto st : overflow)
    if (st > 8) later.insert(st - 8);
  OverflowBackend resumed_be(later, last_rank());
  const Outcome resumed = train(cfg, resumed_be, *data, &saved.view());
  EXPECT_EQ(resumed.summary.params_digest, full.summary.params_digest);
  EXPECT_EQ(resumed.state.loss_scale, full.state.loss_scale);
  EXPECT_EQ(resumed.state.skipped_steps, full.state.skipped_steps);
  EXPECT_EQ(resumed.state.loss_scale_good_steps, full.state.loss_scale_good_steps);
  EXPECT_EQ(full.state.skipped_steps, 3u);
}

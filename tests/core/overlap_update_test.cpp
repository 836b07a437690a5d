// parallel.overlap_update under real MPI with the MPI gradient reducer: the
// trainer updates each fusion bucket's tensors as soon as its means are final
// (Collectives::finish_gradients_each, Optimizer::step_tensors). That must give
// the bits of waiting for every bucket and taking one whole optimizer step
// (overlap_update = false), for every optimizer, with and without codecs (top-k
// with its error feedback), with accumulation, on a host backend and on the
// guarded device backend (host-staged gradients, copied back per bucket). Loss
// scaling keeps the whole update.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstring>
#include <string>
#include <vector>

#include "guarded_backend.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/comm/reducer.hpp"
#include "hpcml/core/trainer.hpp"
#include "hpcml/kernels/factory.hpp"
#include "memory_dataset.hpp"

using hpcml::comm::Codec;
using hpcml::comm::Communicator;
using hpcml::comm::GradientReducer;
using hpcml::comm::ReducerOptions;
using hpcml::testing::GuardedBackend;
using hpcml::testing::MemoryDataset;

namespace {

// Forwards everything to `inner` and counts how the trainer finishes steps.
class Counting final : public hpcml::Collectives {
 public:
  explicit Counting(hpcml::Collectives& inner) : in_(inner) {}
  int rank() const override { return in_.rank(); }
  int size() const override { return in_.size(); }
  bool accepts_device_memory() const override { return in_.accepts_device_memory(); }
  void average(const std::vector<std::span<float>>& b) override { in_.average(b); }
  void sum(std::span<double> v) override { in_.sum(v); }
  void max(std::span<double> v) override { in_.max(v); }
  void broadcast(std::span<float> v, int root) override { in_.broadcast(v, root); }
  std::vector<double> gather(std::span<const double> l) override { return in_.gather(l); }
  void begin_gradients(const std::vector<std::span<float>>& b) override {
    buffers = b.size();
    in_.begin_gradients(b);
  }
  void gradient_ready(std::size_t i) override { in_.gradient_ready(i); }
  void finish_gradients() override {
    ++whole;
    in_.finish_gradients();
  }
  void finish_gradients_each(const BuffersReady& ready) override {
    ++each;
    std::vector<int> named(buffers, 0);
    in_.finish_gradients_each([&](std::span<const std::size_t> indices) {
      ++groups;
      for (std::size_t i : indices) ++named[i];
      ready(indices);
    });
    for (int k : named) once = once && k == 1;
  }
  std::span<float> gradient_storage(std::size_t n) override { return in_.gradient_storage(n); }
  std::span<float> parameter_storage(std::size_t n) override { return in_.parameter_storage(n); }
  bool finish_gradients_sharded(const RangeUpdate& u) override {
    const bool done = in_.finish_gradients_sharded(u);
    sharded += done;
    return done;
  }
  hpcml::GradientCommStats last_gradient_stats() const override {
    return in_.last_gradient_stats();
  }

  std::size_t buffers = 0, whole = 0, each = 0, groups = 0, sharded = 0;
  bool once = true;  // every finish_gradients_each named every buffer exactly once

 private:
  hpcml::Collectives& in_;
};

hpcml::TrainConfig config(const std::string& optimizer, int accumulate) {
  hpcml::TrainConfig c;
  c.model.hidden = {32, 16};
  c.train.epochs = 1;
  c.train.batch_size = 6;
  c.train.accumulate = accumulate;
  c.train.max_steps = 7;
  c.optimizer.name = optimizer == "nesterov" ? "sgd" : optimizer;
  c.optimizer.nesterov = optimizer == "nesterov";
  c.optimizer.lr = optimizer == "adam" || optimizer == "lamb" ? 0.01 : 0.05;
  c.run.progress = "never";
  return c;
}

struct Outcome {
  std::string digest;
  std::vector<float> momentum;
  std::size_t whole = 0, each = 0, groups = 0, steps = 0;
  bool once = true;
};

Outcome train(hpcml::TrainConfig cfg, hpcml::Backend& be, Codec codec, bool overlap) {
  auto data = MemoryDataset::blobs(480, 16, 5, 11);
  Communicator world = Communicator::world();
  ReducerOptions o;
  o.fusion_mb = 0.001;  // ~260 floats a bucket: several buckets per step
  o.compression = codec;
  o.topk_ratio = 0.1;
  o.sharded_update = false;  // the bucketed all-reduce, as for lars/lamb and device backends
  GradientReducer reducer(world, o);
  Counting counting(reducer);
  cfg.parallel.overlap_update = overlap;
  hpcml::Trainer t(cfg, be, counting, *data, nullptr);
  const auto s = t.run();
  Outcome out;
  out.digest = s.params_digest;
  out.momentum.assign(t.state().momentum.begin(), t.state().momentum.end());
  out.whole = counting.whole;
  out.each = counting.each;
  out.groups = counting.groups;
  out.steps = s.steps;
  out.once = counting.once;
  return out;
}

const char* name(Codec c) {
  return c == Codec::kNone ? "none" : c == Codec::kFp16 ? "fp16" : "topk";
}

// The per-bucket run took the per-bucket path, with several buckets per step,
// and ended with the bits of the whole-step run.
void expect_same(const Outcome& per_bucket, const Outcome& whole, const std::string& what) {
  EXPECT_GT(per_bucket.steps, 0u) << what;
  EXPECT_EQ(per_bucket.each, per_bucket.steps) << what;
  EXPECT_EQ(per_bucket.whole, 0u) << what;
  EXPECT_GE(per_bucket.groups, 3 * per_bucket.steps) << what;
  EXPECT_TRUE(per_bucket.once) << what;
  EXPECT_EQ(whole.each, 0u) << what;
  EXPECT_EQ(whole.whole, whole.steps) << what;
  EXPECT_EQ(per_bucket.digest, whole.digest) << what;
  EXPECT_TRUE(per_bucket.momentum == whole.momentum) << what << ": optimizer state differs";
}

}  // namespace

TEST(OverlapUpdate, PerBucketEqualsWholeStepForEveryOptimizerAndCodec) {
  auto be = hpcml::kernels::make_backend("omp", 1);
  for (const char* opt : {"sgd", "nesterov", "adam", "lars", "lamb"}) {
    for (Codec codec : {Codec::kNone, Codec::kFp16, Codec::kTopk}) {
      for (int accumulate : {1, 2}) {
        const std::string what = std::string(opt) + " codec " + name(codec) + " accumulate " +
                                 std::to_string(accumulate);
        const auto cfg = config(opt, accumulate);
        expect_same(train(cfg, *be, codec, true), train(cfg, *be, codec, false), what);
      }
    }
  }
}

// The device path: gradients staged through host buffers, each bucket's
// averages copied back into the device buffers right before its update. The
// guarded backend faults on any host access to its memory.
TEST(OverlapUpdate, PerBucketOnTheGuardedDeviceBackend) {
  auto ref = hpcml::kernels::make_backend("reference", 1);
  for (const char* opt : {"sgd", "adam", "lamb"}) {
    for (Codec codec : {Codec::kNone, Codec::kTopk}) {
      for (int accumulate : {1, 3}) {
        const std::string what = std::string("guarded ") + opt + " codec " + name(codec) +
                                 " accumulate " + std::to_string(accumulate);
        const auto cfg = config(opt, accumulate);
        GuardedBackend a, b;
        const Outcome per_bucket = train(cfg, a, codec, true);
        expect_same(per_bucket, train(cfg, b, codec, false), what);
        EXPECT_EQ(per_bucket.digest, train(cfg, *ref, codec, true).digest) << what << " vs host";
      }
    }
  }
}

// fp16 loss scaling decides on all gradients before any update: the whole
// update, even with overlap_update on.
TEST(OverlapUpdate, LossScalingKeepsTheWholeUpdate) {
  GuardedBackend be;
  auto cfg = config("sgd", 1);
  cfg.train.precision = "fp16";
  const Outcome o = train(cfg, be, Codec::kNone, true);
  EXPECT_GT(o.steps, 0u);
  EXPECT_EQ(o.each, 0u);
  EXPECT_EQ(o.whole, o.steps);
}

// The sharded update, where it applies, still replaces both.
TEST(OverlapUpdate, ShardedUpdateStillWins) {
  Communicator world = Communicator::world();
  auto be = hpcml::kernels::make_backend("omp", 1);
  auto data = MemoryDataset::blobs(480, 16, 5, 11);
  ReducerOptions o;
  GradientReducer reducer(world, o);
  Counting counting(reducer);
  auto cfg = config("sgd", 1);
  cfg.model.hidden = {64, 32};  // enough parameters for node-shared storage
  hpcml::Trainer t(cfg, *be, counting, *data, nullptr);
  const auto s = t.run();
  if (!reducer.sharded()) GTEST_SKIP() << "no sharded update with " << world.size() << " rank(s)";
  EXPECT_EQ(counting.sharded, s.steps);
  EXPECT_EQ(counting.each + counting.whole, 0u);
}

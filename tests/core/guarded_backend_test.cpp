// The guarded "device" backend itself (tests/common/guarded_backend.hpp), and
// what a model, an optimizer and the trainer do on it in one process: which
// copies a step makes, what is refused.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "guarded_backend.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/optimizer.hpp"
#include "hpcml/core/trainer.hpp"
#include "hpcml/kernels/factory.hpp"
#include "memory_dataset.hpp"

using hpcml::testing::GuardedBackend;
using hpcml::testing::MemoryDataset;
using hpcml::testing::SelfCollectives;

namespace {

// A group of one whose transport takes device memory (as NCCL would).
class DeviceSelfCollectives final : public hpcml::Collectives {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  bool accepts_device_memory() const override { return true; }
  void average(const std::vector<std::span<float>>&) override {}
  void sum(std::span<double>) override {}
  void max(std::span<double>) override {}
  void broadcast(std::span<float>, int) override {}
  std::vector<double> gather(std::span<const double> local) override {
    return {local.begin(), local.end()};
  }
};

// Records the backend's host-copy count after every step; reads no tensors.
struct CopyCounter final : hpcml::StepHook {
  const GuardedBackend* be;
  std::vector<std::size_t> copies;
  explicit CopyCounter(const GuardedBackend* b) : be(b) {}
  bool needs_tensors(const hpcml::TrainState&) override { return false; }
  void after_step(const hpcml::TrainState&) override { copies.push_back(be->host_copies()); }
};

hpcml::TrainConfig config() {
  hpcml::TrainConfig c;
  c.model.hidden = {16, 8};
  c.train.epochs = 1;
  c.train.batch_size = 16;
  c.train.max_steps = 6;
  c.run.progress = "never";
  return c;
}

}  // namespace

TEST(GuardedBackend, HostCodeTouchingItsMemoryDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        GuardedBackend be;
        auto* p = static_cast<float*>(be.allocate(64));
        p[3] = 1.0f;  // host code writing device memory
      },
      "guarded backend: SIGSEGV");
}

TEST(GuardedBackend, CopiesAndKernelsWorkOnItsMemory) {
  GuardedBackend be;
  hpcml::BackendArray<float> a(be, 4), b(be, 4);
  const float in[4] = {1, -2, 3, -4};
  be.copy_from_host(a.data(), in, sizeof in);
  be.relu(a.data(), 4);
  be.copy(b.data(), a.data(), sizeof in);
  be.scale(b.data(), 4, 2.0f);
  float out[4];
  be.copy_to_host(out, b.data(), sizeof out);
  EXPECT_EQ(out[0], 2.0f);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_EQ(out[2], 6.0f);
  EXPECT_EQ(be.sum_squares(a.data(), 4), 10.0);
  EXPECT_EQ(be.live_allocations(), 2u);
}

TEST(GuardedBackend, KernelsRefuseHostPointersAndShortBuffersNamingTheKernel) {
  GuardedBackend be;
  hpcml::BackendArray<float> a(be, 4);
  std::vector<float> host(4);
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const hpcml::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { be.relu(host.data(), 4); }).find("relu was given a pointer outside"),
            std::string::npos);
  EXPECT_NE(message([&] {
              be.axpy(a.data(), a.data(), 5, 1.0f);
            }).find("axpy was given a buffer too small"),
            std::string::npos);
  EXPECT_NE(message([&] { be.copy_from_host(host.data(), a.data(), 16); }).find("copy_from_host"),
            std::string::npos);
}

TEST(GuardedBackend, ModelBuffersMoveToTheBackendOnBind) {
  GuardedBackend be;  // outlives the model bound to it
  hpcml::Model m(6, {5}, 3);
  m.init(7);
  std::vector<float> before(m.parameters().begin(), m.parameters().end());
  m.bind(be);
  EXPECT_EQ(&m.memory(), &be);
  EXPECT_TRUE(be.owns(m.parameters().data(), m.parameters().size_bytes()));
  EXPECT_TRUE(be.owns(m.gradients().data(), m.gradients().size_bytes()));
  std::vector<float> after(before.size());
  m.copy_parameters_to_host(after);
  EXPECT_EQ(after, before);
  // Node-shared host storage cannot hold a device model's gradients.
  std::vector<float> storage(before.size());
  EXPECT_THROW(m.use_gradient_storage(storage), hpcml::Error);
}

TEST(GuardedBackend, AnOptimizerMadeBeforeBindIsRefused) {
  GuardedBackend be;
  hpcml::Model m(6, {5}, 3);
  hpcml::TrainConfig::Optimizer o;
  auto opt = hpcml::make_optimizer(o, m);  // state in host memory
  m.bind(be);
  EXPECT_THROW(opt->step(be, 0.1, 1), hpcml::Error);
  auto good = hpcml::make_optimizer(o, m);
  EXPECT_TRUE(be.owns(good->state().data(), good->state().size_bytes()));
  good->step(be, 0.1, 1);
}

// The only copies of a step are the batch going in (x and y) when the comm
// layer takes device memory; with one that does not, each tensor's gradient
// goes out to the host and the averages come back in one copy.
TEST(GuardedBackend, AStepCopiesOnlyTheBatchInWhenTheCommTakesDeviceMemory) {
  auto data = MemoryDataset::blobs(400, 12, 3, 5);
  const auto cfg = config();
  {
    GuardedBackend be;
    DeviceSelfCollectives comm;
    hpcml::Trainer t(cfg, be, comm, *data, nullptr);
    CopyCounter counter(&be);
    t.add_hook(counter);
    t.run();
    ASSERT_EQ(counter.copies.size(), 6u);
    for (std::size_t i = 1; i < 6; ++i) EXPECT_EQ(counter.copies[i] - counter.copies[i - 1], 2u);
  }
  {
    GuardedBackend be;
    SelfCollectives comm;
    hpcml::Trainer t(cfg, be, comm, *data, nullptr);
    CopyCounter counter(&be);
    t.add_hook(counter);
    t.run();
    const std::size_t tensors = t.model().tensors().size();
    ASSERT_EQ(counter.copies.size(), 6u);
    for (std::size_t i = 1; i < 6; ++i)
      EXPECT_EQ(counter.copies[i] - counter.copies[i - 1], 2u + tensors + 1);
  }
}

// A hook that reads tensors gets current host mirrors after every step.
TEST(GuardedBackend, HooksSeeCurrentHostMirrors) {
  auto data = MemoryDataset::blobs(400, 12, 3, 5);
  auto ref = hpcml::kernels::make_backend("reference", 1);
  GuardedBackend be;
  struct Digests final : hpcml::StepHook {
    std::vector<std::vector<float>> params;
    void after_step(const hpcml::TrainState& s) override {
      params.emplace_back(s.parameters.begin(), s.parameters.end());
    }
  } a, b;
  SelfCollectives c1, c2;
  hpcml::Trainer ta(config(), *ref, c1, *data, nullptr);
  hpcml::Trainer tb(config(), be, c2, *data, nullptr);
  ta.add_hook(a);
  tb.add_hook(b);
  ta.run();
  tb.run();
  EXPECT_EQ(a.params, b.params);
  EXPECT_EQ(a.params.size(), 6u);
}

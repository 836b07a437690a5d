// core's Model and Trainer on the cuda backend (label gpu): the whole
// training path the job takes, on one process without MPI (SelfCollectives),
// against the reference backend. Skips without a CUDA device; fails instead
// under HPCML_REQUIRE_GPU=1 (scripts/device-check.sh on a GPU machine).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "hpcml/core/train_config.hpp"
#include "hpcml/core/trainer.hpp"
#include "hpcml/kernels/cuda.hpp"
#include "hpcml/kernels/factory.hpp"
#include "memory_dataset.hpp"

namespace {

using hpcml::testing::MemoryDataset;
using hpcml::testing::SelfCollectives;

bool gpu_required() {
  const char* v = std::getenv("HPCML_REQUIRE_GPU");
  return v != nullptr && std::string(v) == "1";
}

#define HPCML_SKIP_WITHOUT_GPU()                                                        \
  do {                                                                                  \
    const auto info_ = hpcml::kernels::cuda_info();                                     \
    const std::string why_ =                                                            \
        !info_.compiled ? std::string("cuda backend not compiled in") : info_.error;    \
    if (info_.devices.empty()) {                                                        \
      if (gpu_required()) FAIL() << "HPCML_REQUIRE_GPU=1 but no CUDA device: " << why_; \
      GTEST_SKIP() << "no CUDA device: " << why_;                                       \
    }                                                                                   \
  } while (0)

hpcml::TrainConfig mlp_config() {
  hpcml::TrainConfig c;
  c.model.hidden = {64, 32};
  c.train.epochs = 3;
  c.train.batch_size = 64;
  c.optimizer.lr = 0.05;
  c.run.progress = "never";
  return c;
}

struct Outcome {
  hpcml::TrainSummary summary;
  std::vector<float> parameters;
};

Outcome train(const hpcml::TrainConfig& cfg, hpcml::Backend& be, hpcml::Dataset& data,
              hpcml::Dataset* test) {
  be.set_gemm_precision(hpcml::gemm_precision(cfg.train));
  SelfCollectives comm;
  hpcml::Trainer t(cfg, be, comm, data, test);
  Outcome o;
  o.summary = t.run();
  o.parameters.assign(t.state().parameters.begin(), t.state().parameters.end());
  return o;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i)
    m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

TEST(CudaTrainer, Fp32TrainingFollowsTheReferenceAndPrefetchesBatches) {
  HPCML_SKIP_WITHOUT_GPU();
  auto data = MemoryDataset::blobs(4096, 32, 5, 3);
  auto test = MemoryDataset::blobs(1024, 32, 5, 3);
  auto ref = hpcml::kernels::make_backend("reference", 1);
  auto cuda = hpcml::kernels::make_backend("cuda", 1);
  const auto cfg = mlp_config();
  const Outcome a = train(cfg, *ref, *data, test.get());
  const Outcome b = train(cfg, *cuda, *data, test.get());
  ASSERT_EQ(a.parameters.size(), b.parameters.size());
  // Another GEMM summation order: the weights drift apart by rounding only.
  EXPECT_LT(max_abs_diff(a.parameters, b.parameters), 1e-3);
  EXPECT_NEAR(a.summary.final_train_loss, b.summary.final_train_loss,
              1e-3 * std::max(1.0, a.summary.final_train_loss));
  EXPECT_NEAR(a.summary.final_test_acc, b.summary.final_test_acc, 0.005);
  // The trainer reads one batch ahead on a device backend: every step after
  // an epoch's first finds its batch already on its way.
  EXPECT_GT(hpcml::kernels::cuda_prefetch_hits(*cuda), 0u);
}

TEST(CudaTrainer, TheSameSeedGivesTheSameBitsTwice) {
  HPCML_SKIP_WITHOUT_GPU();
  auto data = MemoryDataset::blobs(2048, 32, 5, 4);
  auto cuda = hpcml::kernels::make_backend("cuda", 1);
  const auto cfg = mlp_config();
  const Outcome a = train(cfg, *cuda, *data, nullptr);
  const Outcome b = train(cfg, *cuda, *data, nullptr);
  EXPECT_EQ(a.summary.params_digest, b.summary.params_digest);
  EXPECT_EQ(a.parameters, b.parameters);
}

TEST(CudaTrainer, Bf16AndFp16EndWithinHalfAPointOfFp32) {
  HPCML_SKIP_WITHOUT_GPU();
  auto data = MemoryDataset::blobs(4096, 32, 5, 5);
  auto test = MemoryDataset::blobs(1024, 32, 5, 5);
  auto cuda = hpcml::kernels::make_backend("cuda", 1);
  auto cfg = mlp_config();
  const Outcome fp32 = train(cfg, *cuda, *data, test.get());
  for (const char* p : {"bf16", "fp16"}) {
    cfg.train.precision = p;
    const Outcome low = train(cfg, *cuda, *data, test.get());
    EXPECT_NEAR(low.summary.final_test_acc, fp32.summary.final_test_acc, 0.005) << p;
    EXPECT_TRUE(std::isfinite(low.summary.final_train_loss)) << p;
  }
}

}  // namespace

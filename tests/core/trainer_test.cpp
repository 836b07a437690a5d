#include <gtest/gtest.h>

#include <cstring>

#include "hpcml/core/error.hpp"
#include "hpcml/core/trainer.hpp"
#include "hpcml/kernels/factory.hpp"
#include "memory_dataset.hpp"

using hpcml::testing::MemoryDataset;
using hpcml::testing::SelfCollectives;

namespace {

hpcml::TrainConfig small_config() {
  hpcml::TrainConfig c;
  c.model.hidden = {16};
  c.train.epochs = 4;
  c.train.batch_size = 32;
  c.optimizer.lr = 0.05;
  c.run.progress = "never";
  return c;
}

}  // namespace

TEST(Trainer, LearnsASeparableProblem) {
  auto train = MemoryDataset::blobs(2000, 20, 4, 11);
  auto test = MemoryDataset::blobs(500, 20, 4, 11);  // same centres (same seed)
  auto be = hpcml::kernels::make_backend("omp", 1);
  SelfCollectives comm;
  auto cfg = small_config();
  hpcml::Trainer t(cfg, *be, comm, *train, test.get(), "", nullptr);
  auto s = t.run();
  EXPECT_EQ(s.steps, 4u * (2000 / 32));
  EXPECT_EQ(s.epochs_completed, 4);
  EXPECT_GT(s.final_test_acc, 0.9);
  EXPECT_LT(s.final_train_loss, 0.4);
}

TEST(Trainer, BitIdenticalRunToRun) {
  auto train = MemoryDataset::blobs(1000, 12, 3, 2);
  for (const char* backend : {"reference", "omp"}) {
    std::vector<float> first;
    for (int run = 0; run < 2; ++run) {
      auto be = hpcml::kernels::make_backend(backend, 2);
      SelfCollectives comm;
      auto cfg = small_config();
      cfg.train.epochs = 2;
      hpcml::Trainer t(cfg, *be, comm, *train, nullptr, "", nullptr);
      t.run();
      auto p = t.model().parameters();
      if (run == 0) {
        first.assign(p.begin(), p.end());
      } else {
        ASSERT_EQ(std::memcmp(first.data(), p.data(), p.size_bytes()), 0) << backend;
      }
    }
  }
}

TEST(Trainer, MaxStepsStopsEarly) {
  auto train = MemoryDataset::blobs(1000, 12, 3, 2);
  auto be = hpcml::kernels::make_backend("reference", 1);
  SelfCollectives comm;
  auto cfg = small_config();
  cfg.train.max_steps = 5;
  hpcml::Trainer t(cfg, *be, comm, *train, nullptr, "", nullptr);
  EXPECT_EQ(t.run().steps, 5u);
}

TEST(Trainer, BatchLargerThanDatasetIsAConfigError) {
  auto train = MemoryDataset::blobs(10, 4, 2, 2);
  auto be = hpcml::kernels::make_backend("reference", 1);
  SelfCollectives comm;
  auto cfg = small_config();
  cfg.train.batch_size = 11;
  hpcml::Trainer t(cfg, *be, comm, *train, nullptr, "", nullptr);
  try {
    t.run();
    FAIL() << "expected ConfigError";
  } catch (const hpcml::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "train.batch_size: 11 per rank x 1 ranks = 11 exceeds the 10 samples"),
              std::string::npos)
        << e.what();
  }
}

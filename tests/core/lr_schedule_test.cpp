// The learning-rate rules: scaling to the global batch, warmup in epochs or
// steps, constant / cosine / step / polynomial decay, and the config keys.
#include "hpcml/core/lr_schedule.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/train_config.hpp"

namespace hpcml {
namespace {

TrainConfig::Optimizer opt(const std::string& schedule, double lr = 0.1) {
  TrainConfig::Optimizer o;
  o.schedule = schedule;
  o.lr = lr;
  return o;
}

TEST(LrSchedule, WarmupThenCosine) {
  // 10 steps an epoch, warmup 1 epoch, 110 steps in all.
  auto o = opt("cosine");
  o.warmup_epochs = 1;
  LrSchedule s(o, 256, 10, 110);
  EXPECT_EQ(s.warmup_steps(), 10u);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.01);
  EXPECT_DOUBLE_EQ(s.lr(9), 0.1);
  EXPECT_DOUBLE_EQ(s.lr(10), 0.1);
  EXPECT_NEAR(s.lr(60), 0.05, 1e-12);
  EXPECT_NEAR(s.lr(110), 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(LrSchedule(opt("constant"), 256, 10, 100).lr(50), 0.1);
}

TEST(LrSchedule, WarmupInSteps) {
  auto o = opt("constant");
  o.warmup_steps = 4;
  LrSchedule s(o, 256, 1000, 5000);
  EXPECT_EQ(s.warmup_steps(), 4u);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.025);
  EXPECT_DOUBLE_EQ(s.lr(3), 0.1);
  EXPECT_DOUBLE_EQ(s.lr(4), 0.1);
}

TEST(LrSchedule, LinearAndSqrtScalingRules) {
  auto o = opt("constant");
  o.base_batch = 256;
  o.scale_rule = "linear";
  EXPECT_DOUBLE_EQ(LrSchedule(o, 2048, 10, 100).peak_lr(), 0.8);
  EXPECT_DOUBLE_EQ(LrSchedule(o, 128, 10, 100).peak_lr(), 0.05);
  o.scale_rule = "sqrt";
  EXPECT_DOUBLE_EQ(LrSchedule(o, 1024, 10, 100).peak_lr(), 0.2);
  o.scale_rule = "none";
  EXPECT_DOUBLE_EQ(LrSchedule(o, 8192, 10, 100).peak_lr(), 0.1);
  EXPECT_THROW(scaled_learning_rate("cubic", 0.1, 8, 4), ConfigError);
}

TEST(LrSchedule, WarmupRisesToTheScaledPeak) {
  // Goyal et al.: the scaled rate is reached at the end of warmup.
  auto o = opt("cosine");
  o.scale_rule = "linear";
  o.base_batch = 128;
  o.warmup_epochs = 0.5;
  LrSchedule s(o, 1024, 20, 200);  // k = 8, warmup 10 steps
  EXPECT_DOUBLE_EQ(s.peak_lr(), 0.8);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.08);
  EXPECT_DOUBLE_EQ(s.lr(9), 0.8);
  EXPECT_NE(s.describe().find("0.1 x 8 (linear: global batch 1024 / base 128) = 0.8"),
            std::string::npos)
      << s.describe();
}

TEST(LrSchedule, StepDecayAtMilestoneEpochs) {
  auto o = opt("step");
  o.decay_epochs = {3, 6};
  o.decay_factor = 0.5;
  LrSchedule s(o, 256, 10, 100);
  ASSERT_EQ(s.milestones().size(), 2u);
  EXPECT_EQ(s.milestones()[0], 30u);
  EXPECT_DOUBLE_EQ(s.lr(29), 0.1);
  EXPECT_DOUBLE_EQ(s.lr(30), 0.05);
  EXPECT_DOUBLE_EQ(s.lr(59), 0.05);
  EXPECT_DOUBLE_EQ(s.lr(60), 0.025);
  EXPECT_DOUBLE_EQ(s.lr(99), 0.025);
}

TEST(LrSchedule, PolynomialDecay) {
  auto o = opt("poly");
  o.power = 2;
  LrSchedule s(o, 256, 10, 100);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.1);
  EXPECT_NEAR(s.lr(50), 0.1 * 0.25, 1e-12);
  EXPECT_NEAR(s.lr(100), 0.0, 1e-12);
  o.power = 1;
  EXPECT_NEAR(LrSchedule(o, 256, 10, 100).lr(75), 0.025, 1e-12);
}

TrainConfig read(const std::string& toml) {
  ConfigDoc doc = ConfigDoc::parse(toml, "test.toml");
  return read_train_config(doc);
}

void expect_config_error(const std::string& toml, const std::string& key) {
  try {
    read(toml);
    ADD_FAILURE() << "accepted: " << toml;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
  }
}

TEST(LrSchedule, ConfigKeys) {
  const TrainConfig c = read(
      "[optimizer]\nscale_rule = \"linear\"\nbase_batch = 512\nschedule = \"step\"\n"
      "decay_epochs = [30, 60]\ndecay_factor = 0.2\nwarmup_steps = 100\n");
  EXPECT_EQ(c.optimizer.scale_rule, "linear");
  EXPECT_EQ(c.optimizer.base_batch, 512);
  EXPECT_EQ(c.optimizer.decay_epochs.size(), 2u);
  EXPECT_DOUBLE_EQ(c.optimizer.decay_factor, 0.2);
  EXPECT_EQ(c.optimizer.warmup_steps, 100);
  expect_config_error("[optimizer]\nwarmup_steps = 5\nwarmup_epochs = 1.0\n",
                      "optimizer.warmup_steps");
  expect_config_error("[optimizer]\nschedule = \"step\"\n", "optimizer.decay_epochs");
  expect_config_error("[optimizer]\nschedule = \"step\"\ndecay_epochs = [5, 5]\n",
                      "optimizer.decay_epochs");
  expect_config_error("[optimizer]\nscale_rule = \"cubic\"\n", "optimizer.scale_rule");
  expect_config_error("[optimizer]\nbase_batch = 0\n", "optimizer.base_batch");
  expect_config_error("[optimizer]\ndecay_factor = 0.0\n", "optimizer.decay_factor");
}

}  // namespace
}  // namespace hpcml

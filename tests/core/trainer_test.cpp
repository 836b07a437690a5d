#include <gtest/gtest.h>

#include <cstring>
#include <optional>

#include "hpcml/core/digest.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/signals.hpp"
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

namespace {

// Every step's loss and global step, as rank 0 reports them to the sinks.
class StepRecorder final : public hpcml::MetricsSink {
 public:
  StepRecorder(std::vector<double>& losses, std::vector<std::size_t>& steps)
      : losses_(losses), steps_(steps) {}
  void step(const hpcml::StepMetrics& m) override {
    losses_.push_back(m.phases.loss);
    steps_.push_back(m.global_step);
  }

 private:
  std::vector<double>& losses_;
  std::vector<std::size_t>& steps_;
};

// Copies the state once `at` steps are taken, and counts the hook calls.
class Snapshot final : public hpcml::StepHook {
 public:
  explicit Snapshot(std::size_t at) : at_(at) {}
  void after_step(const hpcml::TrainState& s) override {
    ++steps;
    if (s.global_step == at_) copy.emplace(s);
  }
  void after_epoch(const hpcml::TrainState& s) override {
    ++epochs;
    EXPECT_EQ(s.step_in_epoch, 0u);
  }
  void after_training(const hpcml::TrainState&, const hpcml::TrainSummary& s) override {
    ++ends;
    signal = s.stopped_by_signal;
  }
  std::optional<hpcml::OwnedTrainState> copy;
  int steps = 0, epochs = 0, ends = 0;
  bool signal = false;

 private:
  std::size_t at_;
};

hpcml::TrainConfig resume_config() {
  auto c = small_config();
  c.train.epochs = 3;
  c.optimizer.warmup_epochs = 0.5;  // the schedule's warmup and its cosine both matter
  return c;
}

struct RunRecord {
  std::vector<double> losses;
  std::vector<std::size_t> steps;
  std::vector<float> parameters, momentum;
  hpcml::TrainSummary summary;
};

// Trains (from `from` when given) and records what the run did.
RunRecord train_run(const hpcml::TrainConfig& cfg, const char* backend, hpcml::Dataset& data,
                    const hpcml::TrainState* from = nullptr, hpcml::StepHook* hook = nullptr) {
  auto be = hpcml::kernels::make_backend(backend, 2);
  SelfCollectives comm;
  hpcml::Trainer t(cfg, *be, comm, data, nullptr);
  RunRecord r;
  t.add_sink(std::make_unique<StepRecorder>(r.losses, r.steps));
  if (hook) t.add_hook(*hook);
  if (from) t.restore(*from);
  r.summary = t.run();
  r.parameters.assign(t.state().parameters.begin(), t.state().parameters.end());
  r.momentum.assign(t.state().momentum.begin(), t.state().momentum.end());
  return r;
}

}  // namespace

// A TrainState taken mid-run and restored into a fresh trainer continues with
// the same bits: every later step's loss, the final parameters and momentum.
TEST(TrainState, RestoredStateContinuesBitIdentically) {
  auto train = MemoryDataset::blobs(1000, 12, 3, 2);
  const auto cfg = resume_config();
  const std::size_t spe = 1000 / 32;
  for (const char* backend : {"reference", "omp"}) {
    // Inside the second epoch, and right after the last step of the first.
    for (std::size_t at : {spe + 9, spe}) {
      Snapshot snap(at);
      const RunRecord full = train_run(cfg, backend, *train, nullptr, &snap);
      ASSERT_EQ(full.losses.size(), 3 * spe);
      EXPECT_EQ(snap.steps, static_cast<int>(3 * spe));
      EXPECT_EQ(snap.epochs, 3);
      EXPECT_EQ(snap.ends, 1);
      ASSERT_TRUE(snap.copy.has_value());
      EXPECT_EQ(snap.copy->view().epoch, at == spe ? 0 : 1);  // the hook sees the step's epoch
      EXPECT_EQ(snap.copy->view().step_in_epoch, at == spe ? spe : 9u);

      const RunRecord resumed = train_run(cfg, backend, *train, &snap.copy->view());
      ASSERT_EQ(resumed.losses.size(), 3 * spe - at) << backend << " at " << at;
      EXPECT_TRUE(std::equal(resumed.losses.begin(), resumed.losses.end(),
                             full.losses.begin() + static_cast<std::ptrdiff_t>(at)))
          << backend << " at " << at;
      EXPECT_EQ(resumed.steps.front(), at + 1);
      EXPECT_EQ(resumed.parameters, full.parameters) << backend << " at " << at;
      EXPECT_EQ(resumed.momentum, full.momentum) << backend << " at " << at;
      EXPECT_EQ(resumed.summary.steps, full.summary.steps);
      EXPECT_EQ(resumed.summary.epochs_completed, 3);
    }
  }
}

// The preemption path: a stop signal ends the run after step 8 (the first
// poll); the state it leaves resumes to the same end as an uninterrupted run.
TEST(TrainState, StopOnSignalThenResume) {
  auto train = MemoryDataset::blobs(1000, 12, 3, 2);
  const auto cfg = resume_config();
  const RunRecord full = train_run(cfg, "reference", *train);

  auto be = hpcml::kernels::make_backend("reference", 2);
  SelfCollectives comm;
  hpcml::Trainer stopped(cfg, *be, comm, *train, nullptr);
  Snapshot hook(0);
  stopped.add_hook(hook);
  hpcml::set_stop_requested(true, 10);
  const auto s = stopped.run();
  hpcml::set_stop_requested(false);
  EXPECT_TRUE(s.stopped_by_signal);
  EXPECT_TRUE(hook.signal);
  EXPECT_EQ(s.steps, 8u);
  EXPECT_EQ(s.epochs_completed, 0);
  EXPECT_EQ(stopped.state().global_step, 8u);
  EXPECT_EQ(stopped.state().step_in_epoch, 8u);

  const hpcml::OwnedTrainState saved(stopped.state());
  const RunRecord resumed = train_run(cfg, "reference", *train, &saved.view());
  ASSERT_EQ(resumed.losses.size(), full.losses.size() - 8);
  EXPECT_TRUE(std::equal(resumed.losses.begin(), resumed.losses.end(), full.losses.begin() + 8));
  EXPECT_EQ(resumed.parameters, full.parameters);
}

TEST(TrainState, RestoreRefusesAStateOfAnotherRun) {
  auto train = MemoryDataset::blobs(1000, 12, 3, 2);
  auto be = hpcml::kernels::make_backend("reference", 1);
  SelfCollectives comm;
  const auto cfg = resume_config();
  hpcml::Trainer t(cfg, *be, comm, *train, nullptr);
  const hpcml::OwnedTrainState good(t.state());

  auto expect_refused = [&](hpcml::OwnedTrainState bad, const std::string& what) {
    try {
      t.restore(bad.view());
      FAIL() << "expected a refusal naming " << what;
    } catch (const hpcml::Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  auto seed = good;
  seed.state.seed = 7;
  expect_refused(seed, "train.seed 7, this run has 42");
  auto batch = good;
  batch.state.local_batch = 16;
  expect_refused(batch, "train.batch_size 16");
  auto schedule = good;
  schedule.state.total_steps = 5;
  expect_refused(schedule, "total steps 5");
  auto position = good;
  position.state.global_step = 3;  // epoch 0, step 0
  expect_refused(position, "inconsistent position");
  auto tensors = good;
  tensors.parameters_data.pop_back();
  tensors.state.parameters = tensors.parameters_data;
  expect_refused(tensors, "parameters");
  EXPECT_NO_THROW(t.restore(good.view()));
}

namespace {

// One rank that takes the sharded-update path: the update runs in two ranges,
// as two owners would run it.
class ShardedSelf final : public hpcml::Collectives {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void average(const std::vector<std::span<float>>&) override {}
  void sum(std::span<double>) override {}
  void max(std::span<double>) override {}
  void broadcast(std::span<float>, int) override {}
  std::vector<double> gather(std::span<const double> local) override {
    return {local.begin(), local.end()};
  }
  bool finish_gradients_sharded(const RangeUpdate& update) override {
    // The buffers are views of the model's one flat gradient array.
    const float* flat = pending_.front().data();
    std::size_t n = 0;
    for (const auto& b : pending_) n += b.size();
    update(0, n / 3, flat);
    update(n / 3, n, flat + n / 3);
    return true;
  }
};

}  // namespace

// The sharded path takes the same steps as the plain one, and the state says
// which momentum ranges this rank keeps.
TEST(TrainState, ShardedUpdateRecordsTheOwnedMomentumRanges) {
  auto train = MemoryDataset::blobs(1000, 12, 3, 2);
  const auto cfg = resume_config();
  const RunRecord plain = train_run(cfg, "reference", *train);

  auto be = hpcml::kernels::make_backend("reference", 2);
  ShardedSelf comm;
  hpcml::Trainer t(cfg, *be, comm, *train, nullptr);
  EXPECT_TRUE(t.state().momentum_ranges.empty());
  t.run();
  const std::size_t n = t.state().parameters.size();
  EXPECT_EQ(t.state().momentum_ranges,
            (std::vector<std::pair<std::size_t, std::size_t>>{{0, n / 3}, {n / 3, n}}));
  EXPECT_TRUE(
      std::equal(plain.parameters.begin(), plain.parameters.end(), t.state().parameters.begin()));
  EXPECT_TRUE(std::equal(plain.momentum.begin(), plain.momentum.end(), t.state().momentum.begin()));
}

namespace {

// Asks for a collective action at step `ask` (seen at the next agreement).
class Requester final : public hpcml::StepHook {
 public:
  explicit Requester(std::size_t ask) : ask_(ask) {}
  bool request(const hpcml::TrainState& s) override {
    ++polls;
    return s.global_step >= ask_ && granted.empty();
  }
  void on_request(const hpcml::TrainState& s) override { granted.push_back(s.global_step); }
  int polls = 0;
  std::vector<std::size_t> granted;

 private:
  std::size_t ask_;
};

}  // namespace

// A hook's request travels with the stop agreement (every 8 steps) and comes
// back at that step; the signal number is agreed and reported in the summary.
TEST(TrainState, HookRequestsAndTheStopSignalAreAgreedEvery8Steps) {
  auto train = MemoryDataset::blobs(1000, 12, 3, 2);
  auto cfg = resume_config();
  cfg.train.max_steps = 40;
  auto be = hpcml::kernels::make_backend("reference", 1);
  SelfCollectives comm;
  hpcml::Trainer t(cfg, *be, comm, *train, nullptr);
  Requester r(13);
  t.add_hook(r);
  const auto s = t.run();
  EXPECT_EQ(r.polls, 5);  // steps 8, 16, 24, 32, 40
  EXPECT_EQ(r.granted, std::vector<std::size_t>{16});
  EXPECT_FALSE(s.stopped_by_signal);
  EXPECT_EQ(s.stop_signal, 0);
  EXPECT_EQ(s.params_digest, hpcml::digest_of(t.state().parameters));

  hpcml::Trainer stopped(cfg, *be, comm, *train, nullptr);
  hpcml::set_stop_requested(true, 15);
  const auto s2 = stopped.run();
  hpcml::set_stop_requested(false);
  EXPECT_TRUE(s2.stopped_by_signal);
  EXPECT_EQ(s2.stop_signal, 15);
}

// The options of a resume: the same global batch on another rank count, and
// another schedule length, are accepted only when asked for.
TEST(TrainState, RestoreOptionsAllowRankAndScheduleChanges) {
  auto train = MemoryDataset::blobs(1000, 12, 3, 2);
  auto be = hpcml::kernels::make_backend("reference", 1);
  SelfCollectives comm;
  const auto cfg = resume_config();
  hpcml::Trainer t(cfg, *be, comm, *train, nullptr);
  hpcml::OwnedTrainState two_ranks(t.state());
  two_ranks.state.ranks = 2;
  two_ranks.state.local_batch = 16;  // 2 x 16 = the global batch of 32 here
  EXPECT_THROW(t.restore(two_ranks.view()), hpcml::ConfigError);
  EXPECT_NO_THROW(t.restore(two_ranks.view(), {.allow_rank_change = true}));
  EXPECT_EQ(t.state().ranks, 1);
  EXPECT_EQ(t.state().local_batch, 32u);
  two_ranks.state.local_batch = 8;  // another global batch: refused
  EXPECT_THROW(t.restore(two_ranks.view(), {.allow_rank_change = true}), hpcml::ConfigError);

  hpcml::OwnedTrainState longer(t.state());
  longer.state.total_steps += 100;
  EXPECT_THROW(t.restore(longer.view()), hpcml::ConfigError);
  EXPECT_NO_THROW(t.restore(longer.view(), {.allow_schedule_change = true}));
  EXPECT_EQ(t.state().total_steps, longer.state.total_steps - 100);  // this run's schedule
}

// Gradient accumulation on one rank: 4 micro-batches of 8 take the steps of one
// batch of 32 (same samples, gradients summed before the update), and the
// accumulated run is bit-reproducible.
TEST(Trainer, AccumulationEqualsTheLargeBatch) {
  auto train = MemoryDataset::blobs(1000, 12, 3, 2);
  auto big = small_config();
  big.train.epochs = 2;
  auto acc = big;
  acc.train.batch_size = 8;
  acc.train.accumulate = 4;
  const RunRecord a = train_run(acc, "omp", *train);
  const RunRecord b = train_run(big, "omp", *train);
  EXPECT_EQ(a.summary.steps, b.summary.steps);
  ASSERT_EQ(a.losses.size(), b.losses.size());
  for (std::size_t i = 0; i < a.losses.size(); ++i)
    ASSERT_NEAR(a.losses[i], b.losses[i], 1e-4) << "step " << i;
  ASSERT_EQ(a.parameters.size(), b.parameters.size());
  for (std::size_t i = 0; i < a.parameters.size(); ++i)
    ASSERT_NEAR(a.parameters[i], b.parameters[i], 1e-4) << "parameter " << i;
  EXPECT_EQ(train_run(acc, "omp", *train).parameters, a.parameters);
  // The batch layout counts the micro-batches: 40 x 25 rows per step > 1000 samples.
  acc.train.batch_size = 40;
  acc.train.accumulate = 26;
  SelfCollectives comm;
  try {
    hpcml::check_batch_layout(acc, *train, 1);
    ADD_FAILURE() << "accepted 1040 rows per step of 1000 samples";
  } catch (const hpcml::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("x 26 accumulated micro-batches"), std::string::npos)
        << e.what();
  }
}

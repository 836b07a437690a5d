#include "hpcml/core/metrics_sink.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "hpcml/core/error.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/hpcml-metrics-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<json> read_lines(const fs::path& p) {
  std::ifstream f(p);
  std::vector<json> out;
  for (std::string line; std::getline(f, line);) out.push_back(json::parse(line));
  return out;
}

std::set<std::string> keys(const json& j) {
  std::set<std::string> k;
  for (auto it = j.begin(); it != j.end(); ++it) k.insert(it.key());
  return k;
}

hpcml::StepMetrics step(std::size_t n, double loss) {
  hpcml::StepMetrics m;
  m.epoch = 1;
  m.step = n;
  m.global_step = n;
  m.phases.step_s = 0.5;
  m.phases.compute_s = 0.25;
  m.phases.comm_s = 0.125;
  m.phases.io_s = 0.0625;
  m.phases.idle_s = 0.0625;
  m.phases.loss = loss;
  m.lr = 0.03125;
  return m;
}

hpcml::EpochMetrics epoch(bool evaluated) {
  hpcml::EpochMetrics m;
  m.epoch = 1;
  m.epochs = 2;
  m.steps = 2;
  m.train_loss = 0.5;
  m.train_acc = 0.8125;
  m.evaluated = evaluated;
  m.test_loss = 0.625;
  m.test_acc = 0.75;
  m.samples_per_s = 1000;
  m.epoch_s = 2.5;
  m.phases.step_s = 2.0;
  m.phases.compute_s = 1.0;
  m.phases.comm_s = 0.5;
  m.phases.io_s = 0.2;
  m.phases.idle_s = 0.3;
  return m;
}

const std::set<std::string> kStepKeys{
    "type",   "epoch",     "step",   "global_step",       "loss", "lr",
    "step_s", "compute_s", "comm_s", "comm_overlapped_s", "io_s", "idle_s"};
const std::set<std::string> kEpochKeys{
    "type",    "epoch",     "steps",  "train_loss",        "train_acc", "samples_per_s",
    "epoch_s", "compute_s", "comm_s", "comm_overlapped_s", "io_s",      "idle_s"};
// docs/run-directory.md, summary.json.
const std::set<std::string> kSummaryKeys{"hpcml_version",
                                         "ranks",
                                         "threads_per_rank",
                                         "nodes",
                                         "oversubscribed",
                                         "hostname",
                                         "backend",
                                         "local_batch",
                                         "global_batch",
                                         "samples",
                                         "steps_per_epoch",
                                         "steps",
                                         "epochs_completed",
                                         "stopped_by_signal",
                                         "stop_signal",
                                         "params_digest",
                                         "restarts",
                                         "resumed_from",
                                         "samples_per_s",
                                         "train_flops_per_sample",
                                         "parameters",
                                         "grad_bytes",
                                         "step_s_median",
                                         "compute_s_per_step",
                                         "comm_s_per_step",
                                         "comm_exposed_s_per_step",
                                         "comm_overlapped_s_per_step",
                                         "io_s_per_step",
                                         "idle_s_per_step",
                                         "final_train_loss",
                                         "final_train_acc",
                                         "wall_s"};

}  // namespace

TEST(RunDirSink, WritesStepEpochAndSummaryLines) {
  TempDir t;
  hpcml::LaunchFacts facts{4, 2, true, "node7"};
  {
    hpcml::RunDirSink sink(t.path.string(), facts);
    sink.step(step(1, 2.25));
    sink.step(step(2, std::nan("")));  // not finite: written as 0
    sink.epoch(epoch(true));
    hpcml::RunInfo info;
    info.ranks = 2;
    info.backend = "reference";
    info.local_batch = 8;
    info.global_batch = 16;
    info.samples = 100;
    info.steps_per_epoch = 6;
    info.train_flops_per_sample = 1234;
    info.parameters = 50;
    hpcml::TrainSummary s;
    s.steps = 2;
    s.epochs_completed = 0;
    s.final_train_loss = 0.5;
    s.final_test_acc = 0.75;
    s.final_test_loss = 0.625;
    s.comm_s_per_step = 0.125;
    sink.finish(info, s);
  }
  const auto lines = read_lines(t.path / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(keys(lines[0]), kStepKeys);
  EXPECT_EQ(lines[0]["type"], "step");
  EXPECT_EQ(lines[0]["step"], 1);
  EXPECT_EQ(lines[0]["loss"], 2.25);
  EXPECT_EQ(lines[0]["lr"], 0.03125);
  EXPECT_EQ(lines[0]["compute_s"], 0.25);
  EXPECT_EQ(lines[1]["global_step"], 2);
  EXPECT_EQ(lines[1]["loss"], 0.0);
  auto epoch_keys = kEpochKeys;
  epoch_keys.insert({"test_loss", "test_acc"});
  EXPECT_EQ(keys(lines[2]), epoch_keys);
  EXPECT_EQ(lines[2]["type"], "epoch");
  EXPECT_EQ(lines[2]["test_acc"], 0.75);
  EXPECT_EQ(lines[2]["idle_s"], 0.3);

  std::ifstream f(t.path / "summary.json");
  const json s = json::parse(f);
  auto summary_keys = kSummaryKeys;
  summary_keys.insert({"final_test_loss", "final_test_acc"});
  EXPECT_EQ(keys(s), summary_keys);
  EXPECT_EQ(s["threads_per_rank"], 4);
  EXPECT_EQ(s["hostname"], "node7");
  EXPECT_EQ(s["grad_bytes"], 200);
  EXPECT_EQ(s["comm_exposed_s_per_step"], 0.125);
  EXPECT_EQ(s["final_test_acc"], 0.75);
  EXPECT_EQ(s["restarts"], 0);
  EXPECT_TRUE(s["resumed_from"].is_null());
  // Nothing but the two files (no temporaries left behind).
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(t.path)) names.insert(e.path().filename());
  EXPECT_EQ(names, (std::set<std::string>{"metrics.jsonl", "summary.json"}));
}

// fp16 loss scaling adds the scale and the skipped steps to each step line
// (and only then: fp32 lines keep kStepKeys).
TEST(RunDirSink, StepLinesCarryTheLossScaleWhenScaling) {
  TempDir t;
  {
    hpcml::RunDirSink sink(t.path.string(), {});
    auto m = step(1, 1.5);
    m.loss_scale = 32768;
    m.skipped_steps = 3;
    sink.step(m);
    sink.step(step(2, 1.25));
  }
  const auto lines = read_lines(t.path / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  auto with = kStepKeys;
  with.insert({"loss_scale", "skipped_steps"});
  EXPECT_EQ(keys(lines[0]), with);
  EXPECT_EQ(lines[0]["loss_scale"], 32768.0);
  EXPECT_EQ(lines[0]["skipped_steps"], 3);
  EXPECT_EQ(keys(lines[1]), kStepKeys);
}

TEST(RunDirSink, NoTestKeysWithoutEvaluation) {
  TempDir t;
  {
    hpcml::RunDirSink sink(t.path.string(), {});
    sink.epoch(epoch(false));
    sink.finish({}, {});  // final_test_acc -1: not evaluated
  }
  EXPECT_EQ(keys(read_lines(t.path / "metrics.jsonl").at(0)), kEpochKeys);
  std::ifstream f(t.path / "summary.json");
  EXPECT_EQ(keys(json::parse(f)), kSummaryKeys);
}

// A resumed run appends to metrics.jsonl and says where it came from; a
// checkpoint line is flushed at once.
TEST(RunDirSink, ResumedRunAppendsAndRecordsTheCheckpoint) {
  TempDir t;
  {
    hpcml::RunDirSink sink(t.path.string(), {});
    sink.step(step(1, 1.0));
    sink.epoch(epoch(false));
  }
  hpcml::RunDirSink sink(t.path.string(), {}, {"/x/ckpt-000000000001.h5", 2});
  hpcml::CheckpointMetrics c;
  c.global_step = 1;
  c.epoch = 1;
  c.path = "/x/ckpt-000000000001.h5";
  c.bytes = 2000000;
  c.seconds = 0.5;
  c.reason = "signal";
  sink.checkpoint(c);
  c.async = true;  // a background write: the training thread's share is separate
  c.snapshot_s = 0.25;
  c.waited_s = 0.5;
  c.step_cost_s = 0.125;
  sink.checkpoint(c);
  const auto lines = read_lines(t.path / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[2]["type"], "checkpoint");
  EXPECT_EQ(lines[2]["mb_per_s"], 4.0);
  EXPECT_EQ(lines[2]["reason"], "signal");
  EXPECT_EQ(lines[2]["async"], false);
  EXPECT_EQ(lines[3]["async"], true);
  EXPECT_EQ(lines[3]["mb_per_s"], 4.0);
  EXPECT_EQ(lines[3]["snapshot_s"], 0.25);
  EXPECT_EQ(lines[3]["waited_s"], 0.5);
  EXPECT_EQ(lines[3]["step_cost_s"], 0.125);
  hpcml::TrainSummary s;
  s.params_digest = "fnv1a64:0123456789abcdef";
  s.stopped_by_signal = true;
  s.stop_signal = 15;
  sink.finish({}, s);
  std::ifstream f(t.path / "summary.json");
  const json j = json::parse(f);
  EXPECT_EQ(j["resumed_from"], "/x/ckpt-000000000001.h5");
  EXPECT_EQ(j["restarts"], 2);
  EXPECT_EQ(j["stop_signal"], 15);
  EXPECT_EQ(j["params_digest"], "fnv1a64:0123456789abcdef");
}

TEST(RunDirSink, EpochLinesAreFlushed) {
  TempDir t;
  hpcml::RunDirSink sink(t.path.string(), {});
  sink.step(step(1, 1.0));
  sink.epoch(epoch(false));
  EXPECT_EQ(read_lines(t.path / "metrics.jsonl").size(), 2u);  // readable before finish()
}

TEST(RunDirSink, MissingRunDirectoryIsNamed) {
  TempDir t;
  const std::string dir = (t.path / "gone").string();
  try {
    hpcml::RunDirSink sink(dir, {});
    FAIL() << "expected Error";
  } catch (const hpcml::Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/metrics.jsonl"), std::string::npos) << e.what();
  }
}

TEST(RunDirSink, FailedMetricsWriteIsNamed) {
  TempDir t;
  // Every write to /dev/full fails with ENOSPC once the stream flushes.
  fs::create_symlink("/dev/full", t.path / "metrics.jsonl");
  hpcml::RunDirSink sink(t.path.string(), {});
  try {
    sink.step(step(1, 1.0));
    sink.epoch(epoch(false));  // flushes
    FAIL() << "expected Error";
  } catch (const hpcml::Error& e) {
    EXPECT_NE(std::string(e.what()).find((t.path / "metrics.jsonl").string() + ": write failed"),
              std::string::npos)
        << e.what();
  }
}

TEST(RunDirSink, SummaryIntoARemovedRunDirectoryIsNamed) {
  for (bool replaced_by_file : {false, true}) {
    TempDir t;
    const fs::path dir = t.path / "run";
    fs::create_directory(dir);
    hpcml::RunDirSink sink(dir.string(), {});
    sink.epoch(epoch(false));
    fs::remove_all(dir);
    if (replaced_by_file) std::ofstream(dir) << "not a directory\n";
    try {
      sink.finish({}, {});
      FAIL() << "expected Error";
    } catch (const hpcml::Error& e) {
      EXPECT_NE(std::string(e.what()).find((dir / "summary.json").string()), std::string::npos)
          << e.what();
    }
  }
}

TEST(ProgressPrinter, EpochLineFormat) {
  std::ostringstream plain, live;
  hpcml::ProgressPrinter(plain, false).epoch(epoch(true));
  EXPECT_EQ(plain.str(),
            "epoch   1/2  loss 0.5000  train acc  81.25%  test acc  75.00%      1000 samples/s  "
            "compute  50% comm  25% io  10% idle  15%  2.5 s\n");
  hpcml::ProgressPrinter(live, true).epoch(epoch(false));
  EXPECT_EQ(live.str(),
            "\r\033[Kepoch   1/2  loss 0.5000  train acc  81.25%      1000 samples/s  "
            "compute  50% comm  25% io  10% idle  15%  2.5 s\n");
}

TEST(ProgressPrinter, CheckpointLines) {
  hpcml::CheckpointMetrics c;
  c.global_step = 40;
  c.path = "r/ckpt.h5";
  c.bytes = 2000000;
  c.seconds = 0.5;
  std::ostringstream sync, async;
  hpcml::ProgressPrinter(sync, false).checkpoint(c);
  EXPECT_EQ(sync.str(), "checkpoint at step 40: 2.00 MB in 0.500 s (4.0 MB/s)  r/ckpt.h5\n");
  c.async = true;
  c.snapshot_s = 0.002;
  c.waited_s = 0.25;
  hpcml::ProgressPrinter(async, false).checkpoint(c);
  EXPECT_EQ(async.str(),
            "checkpoint at step 40: 2.00 MB in 0.500 s (4.0 MB/s) in the background; training "
            "paused 0.252 s (snapshot, waited 0.250 s for the previous write)  r/ckpt.h5\n");
}

TEST(ProgressPrinter, InEpochLineAtMostEveryQuarterSecond) {
  const hpcml::StepProgress p{1, 2, 3, 10, 0.5};
  std::ostringstream off;
  hpcml::ProgressPrinter quiet(off, false);
  quiet.begin_epoch(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  quiet.step_progress(p);
  EXPECT_EQ(off.str(), "");

  std::ostringstream on;
  hpcml::ProgressPrinter printer(on, true);
  printer.begin_epoch(1);
  printer.step_progress(p);  // too soon after the epoch started
  EXPECT_EQ(on.str(), "");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  printer.step_progress(p);
  EXPECT_EQ(on.str(), "\r  epoch 1/2  step 3/10  loss 0.5000 ");
}

#include "hpcml/core/metrics_sink.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>

#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/run_dir.hpp"

namespace hpcml {

namespace {

// JSON has no NaN or Inf; a diverged loss is written as 0 (the run fails
// right after with a message saying so).
double finite_or_zero(double x) { return std::isfinite(x) ? x : 0.0; }

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

RunDirSink::RunDirSink(std::string run_dir, LaunchFacts facts, ResumeFacts resume)
    : run_dir_(std::move(run_dir)),
      metrics_path_(run_dir_ + "/metrics.jsonl"),
      facts_(std::move(facts)),
      resume_(std::move(resume)) {
  metrics_.open(metrics_path_, resume_.resumed_from.empty() ? std::ios::out : std::ios::app);
  HPCML_REQUIRE(metrics_.good(), Error, metrics_path_ + ": cannot open for writing");
}

void RunDirSink::write_line(const std::string& line, bool flush) {
  metrics_ << line << '\n';
  HPCML_REQUIRE(metrics_.good(), Error, metrics_path_ + ": write failed");
  if (flush) {
    metrics_.flush();
    HPCML_REQUIRE(metrics_.good(), Error, metrics_path_ + ": write failed (flush)");
  }
}

void RunDirSink::step(const StepMetrics& m) {
  const StepPhases& p = m.phases;
  nlohmann::json j = {{"type", "step"},
                      {"epoch", m.epoch},
                      {"step", m.step},
                      {"global_step", m.global_step},
                      {"loss", finite_or_zero(p.loss)},
                      {"lr", m.lr},
                      {"step_s", p.step_s},
                      {"compute_s", p.compute_s},
                      {"comm_s", p.comm_s},
                      {"comm_overlapped_s", p.comm_overlapped_s},
                      {"io_s", p.io_s},
                      {"idle_s", p.idle_s}};
  if (m.loss_scale > 0) {  // fp16 loss scaling
    j["loss_scale"] = m.loss_scale;
    j["skipped_steps"] = m.skipped_steps;
  }
  write_line(j.dump(), false);
}

void RunDirSink::epoch(const EpochMetrics& m) {
  const PhaseTotals& p = m.phases;
  nlohmann::json j = {{"type", "epoch"},          {"epoch", m.epoch},
                      {"steps", m.steps},         {"train_loss", finite_or_zero(m.train_loss)},
                      {"train_acc", m.train_acc}, {"samples_per_s", m.samples_per_s},
                      {"epoch_s", m.epoch_s},     {"compute_s", p.compute_s},
                      {"comm_s", p.comm_s},       {"comm_overlapped_s", p.comm_overlapped_s},
                      {"io_s", p.io_s},           {"idle_s", p.idle_s}};
  if (m.evaluated) {
    j["test_loss"] = finite_or_zero(m.test_loss);
    j["test_acc"] = m.test_acc;
  }
  write_line(j.dump(), true);
}

void RunDirSink::checkpoint(const CheckpointMetrics& m) {
  const double mb = static_cast<double>(m.bytes) / 1e6;
  nlohmann::json j = {{"type", "checkpoint"},
                      {"global_step", m.global_step},
                      {"epoch", m.epoch},
                      {"path", m.path},
                      {"bytes", m.bytes},
                      {"seconds", m.seconds},
                      {"mb_per_s", m.seconds > 0 ? mb / m.seconds : 0.0},
                      {"reason", m.reason},
                      {"async", m.async},
                      {"snapshot_s", m.snapshot_s},
                      {"waited_s", m.waited_s},
                      {"step_cost_s", m.step_cost_s}};
  write_line(j.dump(), true);
}

void RunDirSink::finish(const RunInfo& info, const TrainSummary& s) {
  metrics_.close();
  HPCML_REQUIRE(!metrics_.fail(), Error, metrics_path_ + ": write failed (close)");
  nlohmann::json j = {
      {"hpcml_version", HPCML_VERSION},
      {"ranks", info.ranks},
      {"threads_per_rank", facts_.threads_per_rank},
      {"nodes", facts_.nodes},
      {"oversubscribed", facts_.oversubscribed},
      {"hostname", facts_.hostname},
      {"backend", info.backend},
      {"local_batch", info.local_batch},
      {"global_batch", info.global_batch},
      {"samples", info.samples},
      {"steps_per_epoch", info.steps_per_epoch},
      {"steps", s.steps},
      {"epochs_completed", s.epochs_completed},
      {"stopped_by_signal", s.stopped_by_signal},
      {"stop_signal", s.stop_signal},
      {"params_digest", s.params_digest},
      {"restarts", resume_.restarts},
      {"resumed_from", resume_.resumed_from.empty() ? nlohmann::json(nullptr)
                                                    : nlohmann::json(resume_.resumed_from)},
      {"samples_per_s", s.samples_per_s},
      {"train_flops_per_sample", info.train_flops_per_sample},
      {"parameters", info.parameters},
      {"grad_bytes", info.parameters * sizeof(float)},
      {"step_s_median", s.step_s_median},
      {"compute_s_per_step", s.compute_s_per_step},
      {"comm_s_per_step", s.comm_s_per_step},
      {"comm_exposed_s_per_step", s.comm_s_per_step},
      {"comm_overlapped_s_per_step", s.comm_overlapped_s_per_step},
      {"io_s_per_step", s.io_s_per_step},
      {"idle_s_per_step", s.idle_s_per_step},
      {"final_train_loss", finite_or_zero(s.final_train_loss)},
      {"final_train_acc", s.final_train_acc},
      {"wall_s", s.wall_s},
  };
  if (s.final_test_acc >= 0) {
    j["final_test_loss"] = finite_or_zero(s.final_test_loss);
    j["final_test_acc"] = s.final_test_acc;
  }
  write_file_atomic(run_dir_ + "/summary.json", j.dump(2) + "\n");
}

ProgressPrinter::ProgressPrinter(std::ostream& out, bool in_epoch)
    : out_(out), in_epoch_(in_epoch) {}

void ProgressPrinter::begin_epoch(int /*epoch*/) { last_progress_ = steady_seconds(); }

void ProgressPrinter::step_progress(const StepProgress& p) {
  if (!in_epoch_ || steady_seconds() - last_progress_ <= 0.25) return;
  last_progress_ = steady_seconds();
  char line[160];
  std::snprintf(line, sizeof line, "\r  epoch %d/%d  step %zu/%zu  loss %.4f ", p.epoch, p.epochs,
                p.step, p.steps_per_epoch, p.loss);
  out_ << line << std::flush;
}

void ProgressPrinter::epoch(const EpochMetrics& m) {
  const PhaseTotals& p = m.phases;
  const double denom = p.step_s > 0 ? p.step_s : 1;
  char line[400];
  char test_part[64] = "";
  if (m.evaluated)
    std::snprintf(test_part, sizeof test_part, "  test acc %6.2f%%", 100 * m.test_acc);
  std::snprintf(line, sizeof line,
                "%sepoch %3d/%d  loss %.4f  train acc %6.2f%%%s  %8.0f samples/s  "
                "compute %3.0f%% comm %3.0f%% io %3.0f%% idle %3.0f%%  %.1f s\n",
                in_epoch_ ? "\r\033[K" : "", m.epoch, m.epochs, m.train_loss, 100 * m.train_acc,
                test_part, m.samples_per_s, 100 * p.compute_s / denom, 100 * p.comm_s / denom,
                100 * p.io_s / denom, 100 * p.idle_s / denom, m.epoch_s);
  out_ << line << std::flush;
}

void ProgressPrinter::checkpoint(const CheckpointMetrics& m) {
  const double mb = static_cast<double>(m.bytes) / 1e6;
  char line[300];
  if (m.async) {
    char waited[80] = "";
    if (m.waited_s > 0.0005)
      std::snprintf(waited, sizeof waited, ", waited %.3f s for the previous write", m.waited_s);
    std::snprintf(line, sizeof line,
                  "%scheckpoint at step %zu: %.2f MB in %.3f s (%.1f MB/s) in the background; "
                  "training paused %.3f s (snapshot%s)  ",
                  in_epoch_ ? "\r\033[K" : "", m.global_step, mb, m.seconds,
                  m.seconds > 0 ? mb / m.seconds : 0.0, m.snapshot_s + m.waited_s, waited);
  } else {
    std::snprintf(line, sizeof line, "%scheckpoint at step %zu: %.2f MB in %.3f s (%.1f MB/s)  ",
                  in_epoch_ ? "\r\033[K" : "", m.global_step, mb, m.seconds,
                  m.seconds > 0 ? mb / m.seconds : 0.0);
  }
  out_ << line << m.path << "\n" << std::flush;
}

bool progress_enabled(const std::string& mode) {
  return mode == "always" || (mode == "auto" && isatty(STDOUT_FILENO));
}

}  // namespace hpcml

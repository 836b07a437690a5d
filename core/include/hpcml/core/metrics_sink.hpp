// Where the trainer's metrics go: an interface and its two implementations,
// the run directory (metrics.jsonl, summary.json; docs/run-directory.md) and
// the human progress lines on a terminal.
//
// Sinks are called on rank 0 only, after rank 0 has combined the ranks'
// records (per-step figures arrive once per epoch, after the epoch's gather),
// except step_progress(), which carries rank 0's own view of each step as it
// happens. A sink that fails throws hpcml::Error; the trainer does not catch it.
#pragma once

#include <cstddef>
#include <fstream>
#include <iosfwd>
#include <string>

#include "hpcml/core/phase_timing.hpp"

namespace hpcml {

/// Facts about the launch recorded in summary.json (they do not change training).
struct LaunchFacts {
  int threads_per_rank = 1;
  int nodes = 1;
  bool oversubscribed = false;
  std::string hostname;
};

/// A resumed run (hpcml train --resume), for summary.json: the checkpoint it
/// continued from ("" = a fresh run) and how many times the run has been
/// resumed in all (0 for a fresh run).
struct ResumeFacts {
  std::string resumed_from;
  int restarts = 0;
};

/// What Trainer::run() returns on every rank. The figures combined over ranks
/// (losses, accuracies, phase times, the median) are set on rank 0 only; steps,
/// epochs, wall_s, samples_per_s and stopped_by_signal on every rank.
struct TrainSummary {
  std::size_t steps = 0;  // optimizer steps taken (counting those before a restore)
  int epochs_completed = 0;
  bool stopped_by_signal = false;
  int stop_signal = 0;  // the signal that stopped the job: the largest number any rank received
  std::string params_digest;  // digest_of() the final parameters (digest.hpp), every rank
  double final_train_loss = 0, final_train_acc = 0;
  double final_test_loss = 0, final_test_acc = -1;  // -1: not evaluated
  double samples_per_s = 0;  // global samples per second of training (evaluation excluded)
  double wall_s = 0;
  double step_s_median = 0;
  double compute_s_per_step = 0, comm_s_per_step = 0, io_s_per_step = 0, idle_s_per_step = 0;
  double comm_overlapped_s_per_step = 0;
};

/// The run's shape, for summary.json.
struct RunInfo {
  int ranks = 1;
  std::string backend;  // Backend::name()
  std::size_t local_batch = 0, global_batch = 0;
  std::size_t samples = 0;  // training samples
  std::size_t steps_per_epoch = 0;
  double train_flops_per_sample = 0;
  std::size_t parameters = 0;
};

/// Rank 0's own step, as it finishes (not combined over ranks).
struct StepProgress {
  int epoch = 0, epochs = 0;                  // 1-based epoch of `epochs`
  std::size_t step = 0, steps_per_epoch = 0;  // 1-based step within the epoch
  double loss = 0;                            // rank 0's mean batch loss
};

/// One step combined over ranks (a "step" line of metrics.jsonl).
struct StepMetrics {
  int epoch = 0;                // 1-based
  std::size_t step = 0;         // 1-based within the epoch
  std::size_t global_step = 0;  // 1-based over the run
  StepPhases phases;
  double lr = 0;  // the learning rate this step's update used
  // fp16 loss scaling (train.precision = "fp16"; 0 otherwise, and then not
  // written): the scale this step's loss gradient was multiplied by, and the
  // steps skipped for inf/NaN gradients so far in the run, this one included.
  double loss_scale = 0;
  std::size_t skipped_steps = 0;
};

/// One epoch combined over ranks (an "epoch" line of metrics.jsonl).
struct EpochMetrics {
  int epoch = 0, epochs = 0;  // 1-based epoch of `epochs`
  std::size_t steps = 0;      // steps taken in this epoch (since a restore, for the first)
  double train_loss = 0, train_acc = 0;  // over the epoch's training batches
  bool evaluated = false;
  double test_loss = 0, test_acc = 0;  // set when evaluated
  double samples_per_s = 0;            // global training samples per second
  double epoch_s = 0;                  // training wall time of the epoch
  PhaseTotals phases;                  // sums of the steps' combined times
};

/// A checkpoint was written (a "checkpoint" line of metrics.jsonl).
struct CheckpointMetrics {
  std::size_t global_step = 0;  // steps the checkpoint holds
  int epoch = 0;                // 1-based epoch of its last step
  std::string path;
  std::size_t bytes = 0;  // file size
  double seconds = 0;     // the write: synchronous, gather + write + fsync + rename + prune;
                          // asynchronous, write + fsync + rename + prune on the background thread
  std::string reason;     // "steps", "minutes", "end", "signal"
  bool async = false;     // written on the background thread
  double snapshot_s = 0;  // async: the training thread's part (gather + copy of the state)
  double waited_s = 0;    // async: the training thread waited this long for the previous write
  // The training thread's cost per step since the previous save: (snapshot_s
  // + waited_s) / steps when async, seconds / steps when not.
  double step_cost_s = 0;
};

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  /// An epoch (1-based) starts.
  virtual void begin_epoch(int /*epoch*/) {}
  /// Rank 0 finished a step; called every step, a sink throttles itself.
  virtual void step_progress(const StepProgress& /*progress*/) {}
  /// Each step of the epoch that just ended, in order, then the epoch.
  virtual void step(const StepMetrics& /*metrics*/) {}
  virtual void epoch(const EpochMetrics& /*metrics*/) {}
  /// A checkpoint was written (Trainer::record_checkpoint).
  virtual void checkpoint(const CheckpointMetrics& /*metrics*/) {}
  /// Training ended (normally, at train.max_steps or on a stop signal).
  virtual void finish(const RunInfo& /*info*/, const TrainSummary& /*summary*/) {}
};

/// Writes <run_dir>/metrics.jsonl (one line per step and per epoch, flushed
/// at the end of every epoch; one per checkpoint, flushed at once) and, in
/// finish(), <run_dir>/summary.json (atomically, through write_file_atomic).
/// The constructor creates metrics.jsonl, or appends to it when the run is
/// resumed (resume.resumed_from set). Every write and flush is checked: a
/// failure throws Error naming the file.
class RunDirSink final : public MetricsSink {
 public:
  RunDirSink(std::string run_dir, LaunchFacts facts, ResumeFacts resume = {});
  void step(const StepMetrics& m) override;
  void epoch(const EpochMetrics& m) override;
  void checkpoint(const CheckpointMetrics& m) override;
  void finish(const RunInfo& info, const TrainSummary& s) override;

 private:
  void write_line(const std::string& line, bool flush);

  std::string run_dir_, metrics_path_;
  LaunchFacts facts_;
  ResumeFacts resume_;
  std::ofstream metrics_;
};

/// The human-readable lines on `out`: one per epoch and, when `in_epoch` is
/// set, a progress line rewritten in place ("\r") at most every 0.25 s.
class ProgressPrinter final : public MetricsSink {
 public:
  ProgressPrinter(std::ostream& out, bool in_epoch);
  void begin_epoch(int epoch) override;
  void step_progress(const StepProgress& p) override;
  void epoch(const EpochMetrics& m) override;
  void checkpoint(const CheckpointMetrics& m) override;

 private:
  std::ostream& out_;
  bool in_epoch_;
  double last_progress_ = 0;  // steady-clock seconds of the last progress line
};

/// Whether the in-epoch progress line is shown for run.progress = `mode`
/// ("always", "never", or "auto": only when stdout is a terminal).
bool progress_enabled(const std::string& mode);

}  // namespace hpcml

// The synchronous data-parallel training loop.
//
// Every rank runs the same loop on its own slice of each global batch
// (epoch_indices), averages gradients through Collectives each step, and
// applies the same update, so weights stay bit-identical on all ranks.
//
// The loop is one of four parts:
// - Trainer (this file): the step loop, evaluation and the run's position;
// - PhaseTimer / combine_ranks (phase_timing.hpp): where step time went;
// - MetricsSink (metrics_sink.hpp): metrics.jsonl, summary.json and the
//   progress lines, on rank 0 (see docs/run-directory.md);
// - TrainState and StepHook (train_state.hpp): what a resume needs, and the
//   step/epoch boundaries where checkpointing plugs in.
//
// Memory: the model (Model) keeps parameters, gradients and activations, and
// the optimizer its state, in the backend's memory (Backend::allocate). One
// code path for every backend; what differs with a device backend
// (memory_space() == device):
// - host backends: the comm layer may place parameters and gradients itself
//   (Collectives::gradient_storage / parameter_storage, the sharded update),
//   TrainState's spans view the live buffers, nothing is copied;
// - device backends: no node-shared storage and no sharded update (the full
//   update on every rank). A comm layer that does not accept_device_memory()
//   gets the gradients staged through pinned host buffers (each tensor copied
//   out in its ready() callback, the averages copied back per fusion bucket
//   before its update, or in one copy after finish_gradients()); the initial
//   broadcast goes through a host copy too.
//   TrainState's spans are host mirrors filled at hook boundaries only (see
//   train_state.hpp), and the digest at the end of run() reads them.
// The update (not sharded, no loss scaling, parallel.overlap_update = true):
// Collectives::finish_gradients_each() names each fusion bucket's tensors as
// soon as their means are final and the trainer updates those tensors
// (Optimizer::step_tensors) while later buckets are still reduced; same bits
// as the whole update after finish_gradients() (overlap_update = false).
// Mixed precision: with train.precision = "fp16" the trainer does dynamic
// loss scaling (docs/config-reference.md, train.loss_scale): the loss gradient is multiplied by the
// scale; after the reduction, inf/NaN gradients (sum_squares not finite) skip the update and halve
// the scale, finite ones are unscaled (Backend::scale) and applied, and train.loss_scale_window
// good steps double it. The decision is taken on the averaged gradients, identical on every rank:
// no extra collective.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hpcml/core/backend.hpp"
#include "hpcml/core/collectives.hpp"
#include "hpcml/core/data.hpp"
#include "hpcml/core/lr_schedule.hpp"
#include "hpcml/core/metrics_sink.hpp"
#include "hpcml/core/model.hpp"
#include "hpcml/core/optimizer.hpp"
#include "hpcml/core/phase_timing.hpp"
#include "hpcml/core/train_config.hpp"
#include "hpcml/core/train_state.hpp"

namespace hpcml {

/// Throws ConfigError if one global batch (batch_size x ranks) does not fit in
/// the training split. Deterministic: every rank reaches the same verdict.
void check_batch_layout(const TrainConfig& config, const Dataset& train, int ranks);

/// What Trainer::restore() lets differ between the saved run and this one.
struct RestoreOptions {
  /// Another rank count with the same global batch (ranks x local batch):
  /// the sample order per step is the same (epoch_indices), the sums of the
  /// gradient average are not, so the continuation is not bit-identical.
  bool allow_rank_change = false;
  /// Another LR schedule length (train.epochs or train.max_steps changed).
  bool allow_schedule_change = false;
};

class Trainer {
 public:
  /// `test` may be null (no evaluation). Collective (broadcasts the initial
  /// parameters). The references must outlive the trainer.
  Trainer(const TrainConfig& config, Backend& backend, Collectives& comm, Dataset& train,
          Dataset* test);
  /// The same, with the usual sinks on rank 0: a RunDirSink on `run_dir`
  /// ("" = write nothing) and a ProgressPrinter on `out` (nullptr = none;
  /// pass nullptr on other ranks). metrics.jsonl is created by run().
  Trainer(const TrainConfig& config, Backend& backend, Collectives& comm, Dataset& train,
          Dataset* test, std::string run_dir, std::ostream* out, LaunchFacts facts = {});

  /// Adds a metrics sink; sinks are called on rank 0 only, in the order added.
  void add_sink(std::unique_ptr<MetricsSink> sink);
  /// Adds a hook (not owned; must outlive run()), called on every rank.
  void add_hook(StepHook& hook);
  /// For summary.json and metrics.jsonl (appended to) of a resumed run; call before run().
  void set_resume_facts(ResumeFacts resume) { resume_ = std::move(resume); }

  /// Trains from the current position (the start, or a restored state) to the
  /// end of the configured epochs, train.max_steps or a stop signal.
  /// Collective.
  TrainSummary run();

  /// The live state (spans view the model's and optimizer's buffers; with a
  /// device backend host mirrors, current at hook boundaries and after run()
  /// and restore()).
  const TrainState& state() const { return state_; }
  /// The learning rate of every step (scaling rule, warmup, decay).
  const LrSchedule& lr_schedule() const { return *lr_schedule_; }
  /// Continues from `state` (taken from a run with the same configuration,
  /// rank count and data): copies parameters and momentum in and takes its
  /// position. Throws ConfigError when the seed, rank count, batch, steps per
  /// epoch or LR schedule differ (`options` lets the rank count, with the same
  /// global batch, and the schedule's length differ; this run's then apply),
  /// Error when the tensor sizes do. Call on every rank with the same state,
  /// before run(); not collective.
  void restore(const TrainState& state, RestoreOptions options = {});

  /// Passes `metrics` to the sinks (rank 0; other ranks ignore it). For a
  /// checkpoint hook, which has no access to the sinks.
  void record_checkpoint(const CheckpointMetrics& metrics);

  Model& model() { return model_; }
  const Model& model() const { return model_; }

 private:
  struct Evaluation {
    double loss = 0, accuracy = 0;
  };
  // Per-rank sums of one epoch's training batches.
  struct EpochTotals {
    double loss_sum = 0, correct = 0, seen = 0;
  };
  struct EpochOutcome {
    std::size_t steps = 0;  // steps taken in this epoch by this run
    bool stop = false;      // train.max_steps or a stop signal ended training
    bool signal = false;    // a stop signal did
    int signal_number = 0;  // the largest signal number any rank received
  };
  struct Agreement {
    bool stop = false;
    int signal = 0;        // the largest signal number any rank received
    bool request = false;  // a hook on some rank asked (StepHook::request)
  };

  EpochOutcome train_epoch(EpochTotals& totals, std::vector<double>& records);
  /// One optimizer step on `batch`, read from `reader` first unless
  /// `have_batch` (it was read ahead). With `ahead` (device backends), the next
  /// step's batch is read into it and its copy to the device started, so it
  /// overlaps this step; `*ahead_read` says whether that happened.
  StepRecord train_step(BatchReader& reader, Batch& batch, BatchResult& result,
                        bool have_batch = false, Batch* ahead = nullptr,
                        bool* ahead_read = nullptr);
  Agreement agree_at_step();
  // The optimizer update of a step whose gradients are averaged; with fp16
  // loss scaling the finiteness check, unscaling and scale update.
  void apply_update(double lr);
  // stage_: the averaged host gradients of these tensors back into the device
  // buffers.
  void copy_back(std::span<const std::size_t> tensors);
  // Device backends: fills TrainState's host mirrors (host backends: nothing).
  void sync_state_to_host();
  void finish_epoch(const EpochOutcome& outcome, const EpochTotals& totals,
                    const std::vector<double>& records, double epoch_s, TrainSummary& s);
  Evaluation evaluate();
  RunInfo run_info() const;

  const TrainConfig config_;  // a copy: a caller may pass a temporary
  Backend& backend_;
  Collectives& comm_;
  Dataset& train_;
  Dataset* test_;
  Model model_;
  std::unique_ptr<Optimizer> optimizer_;
  TrainState state_;
  std::optional<LrSchedule> lr_schedule_;  // built once the step counts are known
  PhaseTimer timer_;
  RunTiming timing_;
  std::vector<std::unique_ptr<MetricsSink>> sinks_;
  std::vector<StepHook*> hooks_;
  std::vector<std::span<float>> grads_;       // the model's gradient buffers (backend memory)
  std::vector<std::span<float>> comm_grads_;  // what the comm layer reduces: grads_ or host_grads_
  bool device_ = false;                       // the backend's memory is device memory
  bool stage_ = false;           // device_ and a comm layer that takes host memory only
  bool loss_scaling_ = false;    // train.precision = "fp16"
  HostArray<float> host_grads_;  // stage_: the gradients, staged
  std::vector<float> host_params_, host_momentum_;  // device_: TrainState's mirrors
  // Per step of the current epoch (loss scaling): the scale used, skipped steps so far.
  std::vector<std::pair<double, std::size_t>> scale_records_;
  std::uint64_t dropout_seed(std::size_t micro_batch) const;
  BackendArray<float> accumulated_;  // train.accumulate > 1: the earlier micro-batches' gradients
  Batch micro_;                      // the micro-batch being computed
  std::vector<std::pair<std::size_t, std::size_t>> owned_ranges_;  // of the step in progress
  // The usual sinks, created at the start of run() (see the second constructor).
  std::string run_dir_;
  std::ostream* out_ = nullptr;
  LaunchFacts facts_;
  ResumeFacts resume_;
};

}  // namespace hpcml

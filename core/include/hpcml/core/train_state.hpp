// Everything a resumed run needs to continue exactly where a run stopped, and
// the hooks through which checkpointing (and anything else that acts at step
// and epoch boundaries) plugs into the trainer without touching its loop.
//
// Exact means: a Trainer restored from a TrainState, with the same
// configuration, rank count and data, takes the same optimizer steps with the
// same bits as the run that produced the state. Tests: tests/core/
// trainer_test.cpp (one rank: mid-epoch, at an epoch's end, after a stop
// signal; a fake sharded update records its ranges) and data_parallel_test.cpp
// (2 and 3 ranks, all-reduce path); with the real sharded update, where each
// rank's momentum is current only in its own ranges (momentum_ranges) and a
// checkpoint collects them from their owners (io::gather_momentum), through
// checkpoint files end to end in tests/jobs/resume_test.cpp. The file format
// and the resume rules: docs/checkpoints.md. What is *not* part of the state, and so
// differs after a resume: the time figures, and the training loss/accuracy of
// the epoch the run resumes in (they cover the steps taken since the resume).
//
// Memory: with a host backend, parameters and momentum are views of the live
// buffers (no copies). With a device backend (Backend::memory_space() ==
// device) they are host mirrors that the trainer fills only where a hook may
// read them: before after_step() when a hook's needs_tensors() says so,
// before after_epoch(), on_request() and after_training(), and after
// restore(); Trainer::restore() copies a state in. The loop works on device
// memory and copies only at those boundaries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace hpcml {

struct TrainSummary;

struct TrainState {
  // ---- tensors (views of the model's flat buffers, same layout) ----------
  std::span<float> parameters;  // Model::parameters()
  std::span<float> momentum;    // the optimizer's state (Optimizer::state(): slots x parameters)
  /// In a sharded update (Collectives::finish_gradients_sharded) every rank
  /// keeps the momentum of the ranges it owns only: these [lo, hi) ranges of
  /// the flat vector, as of the last step. A checkpoint must take each range
  /// from its owner. Empty: the whole momentum vector is current on this rank.
  std::vector<std::pair<std::size_t, std::size_t>> momentum_ranges;

  // ---- position: the next step to take ------------------------------------
  std::size_t global_step = 0;    // optimizer steps taken; also the LR schedule's position
  int epoch = 0;                  // 0-based epoch of the next step
  std::size_t step_in_epoch = 0;  // steps of `epoch` already taken: the sampler skips
                                  // step_in_epoch x local_batch of this rank's indices

  // ---- what the position means (restore() refuses a state that differs) --
  // The data order of an epoch is a pure function of (seed, epoch, ranks,
  // local_batch) (epoch_indices), and no random numbers are drawn after the
  // initialisation: seed, epoch and step_in_epoch are the whole RNG state.
  std::uint64_t seed = 0;
  int ranks = 1;
  std::size_t local_batch = 0;
  std::size_t steps_per_epoch = 0;
  std::size_t total_steps = 0;   // the LR schedule's length (epochs or train.max_steps)
  std::size_t warmup_steps = 0;  // the LR schedule's warmup

  // ---- fp16 dynamic loss scaling (train.precision = "fp16") ---------------
  // The scale the next step's loss gradient is multiplied by, the good steps
  // (finite gradients) since the scale last changed, and the steps skipped for
  // inf/NaN gradients so far. loss_scale 0: no loss scaling (fp32, bf16), or a
  // state that did not record it (restore() then keeps train.loss_scale).
  double loss_scale = 0;
  std::size_t loss_scale_good_steps = 0;
  std::size_t skipped_steps = 0;
};

/// Called by the trainer at step and epoch boundaries on every rank, in the
/// same order on all ranks, so a hook may call collectives (a checkpoint
/// writer with parallel HDF5 will). The state is consistent when a hook runs:
/// the step's update is applied and the position counts it. Hooks must not
/// change parameters or momentum.
class StepHook {
 public:
  virtual ~StepHook() = default;
  /// After every optimizer step.
  virtual void after_step(const TrainState& /*state*/) {}
  /// Asked before after_step() on every rank: false when that after_step()
  /// will not read the state's parameters or momentum, so a trainer on a
  /// device backend need not copy them to the host for it. The default (true)
  /// is always correct; a checkpoint hook returns whether it saves.
  virtual bool needs_tensors(const TrainState& /*state*/) { return true; }
  /// After each completed epoch, its evaluation and metrics; the state points at the first
  /// step of the next epoch.
  virtual void after_epoch(const TrainState& /*state*/) {}
  /// Polled on every rank at the trainer's stop agreement (every 8 global
  /// steps, after after_step): true asks for an action that every rank must
  /// take at the same step. The answer travels with the stop flag in the same
  /// all-reduce (no extra collective), so a decision only one rank can make
  /// (checkpoint.every_minutes on rank 0's clock) reaches all of them.
  virtual bool request(const TrainState& /*state*/) { return false; }
  /// Called on every rank, right after that agreement, when any rank's hook
  /// asked (each hook decides whether the request was its own: only one
  /// requesting hook is expected).
  virtual void on_request(const TrainState& /*state*/) {}
  /// When training ends: all epochs done, train.max_steps reached, or a stop
  /// signal (summary.stopped_by_signal; the place to write a checkpoint before
  /// the job is requeued). Called before the summary is written.
  virtual void after_training(const TrainState& /*state*/, const TrainSummary& /*summary*/) {}
};

/// A copy of a TrainState that owns its tensors (for tests and for a
/// checkpoint reader: fill `parameters_data`/`momentum_data`, then pass
/// view() to Trainer::restore()).
struct OwnedTrainState {
  std::vector<float> parameters_data, momentum_data;
  TrainState state;  // spans point into the two vectors above

  OwnedTrainState() = default;
  explicit OwnedTrainState(const TrainState& s)
      : parameters_data(s.parameters.begin(), s.parameters.end()),
        momentum_data(s.momentum.begin(), s.momentum.end()),
        state(s) {
    state.parameters = parameters_data;
    state.momentum = momentum_data;
  }
  OwnedTrainState(const OwnedTrainState& o) : OwnedTrainState(o.state) {}
  OwnedTrainState& operator=(const OwnedTrainState& o) {
    if (this != &o) *this = OwnedTrainState(o.state);
    return *this;
  }
  OwnedTrainState(OwnedTrainState&&) = default;  // vector moves keep the data in place
  OwnedTrainState& operator=(OwnedTrainState&&) = default;
  const TrainState& view() const { return state; }
};

}  // namespace hpcml

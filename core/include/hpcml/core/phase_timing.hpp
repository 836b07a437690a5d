// Phase accounting of training steps: where each rank's step time went
// (compute, communication, I/O), and how rank 0 combines the ranks' records
// into the per-step, per-epoch and per-run figures of metrics.jsonl and
// summary.json (definitions in docs/run-directory.md).
//
// Pure arithmetic plus a clock: no MPI, no files. The trainer measures with a
// PhaseTimer on every rank, gathers StepRecords to rank 0 once per epoch and
// combines them there with combine_ranks().
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <vector>

namespace hpcml {

/// What a span of step time is spent on. Idle is not measured: it is what is
/// left of the slowest rank's step time (see combine_ranks()).
enum class Phase { kCompute = 0, kComm, kIo };
inline constexpr std::size_t kPhaseCount = 3;

/// Measures one step of one rank. Phases nest: time spent in a phase entered
/// inside another counts for the inner phase only (the comm hooks called
/// during backprop are communication, the rest of backprop is compute; the
/// optimizer update a sharded reduction runs for its ranges is compute, the
/// rest of that reduction is communication). Time outside any phase belongs to
/// the step but to no phase.
class PhaseTimer {
 public:
  /// Seconds on a monotonic clock.
  using Now = std::function<double()>;
  /// Uses std::chrono::steady_clock; tests pass a fake clock.
  explicit PhaseTimer(Now now = {});

  /// Starts a step: clears the phase totals and notes the start time.
  void begin_step();
  /// Enters phase p (nested inside the current one, if any).
  void enter(Phase p);
  /// Leaves the innermost phase entered.
  void leave();
  /// Runs f() inside phase p.
  template <class F>
  decltype(auto) measure(Phase p, F&& f) {
    enter(p);
    struct Leave {
      PhaseTimer* t;
      ~Leave() { t->leave(); }
    } guard{this};
    return f();
  }

  /// Exclusive time of phase p in the current step so far, in seconds.
  double seconds(Phase p) const { return totals_[static_cast<std::size_t>(p)]; }
  /// Seconds since begin_step().
  double step_seconds() const;

 private:
  struct Open {
    Phase phase;
    double start;
    double inner = 0;  // time of phases nested inside, excluded from this one
  };
  Now now_;
  double step_start_ = 0;
  double totals_[kPhaseCount] = {0, 0, 0};
  std::vector<Open> open_;
};

/// One rank's record of one step, as gathered to rank 0.
struct StepRecord {
  double step_s = 0;             // wall time of the step on this rank
  double compute_s = 0;          // backprop outside the comm hooks + optimizer update
  double comm_s = 0;             // inside the gradient reduction (exposed communication)
  double io_s = 0;               // waiting for / reading the batch
  double comm_overlapped_s = 0;  // reported by the comm layer (GradientCommStats)
  double loss = 0;               // this rank's mean batch loss

  static constexpr std::size_t kFields = 6;
  /// Appends the kFields values to `out` (the gather layout).
  void append_to(std::vector<double>& out) const;
};

/// One step combined over the ranks (a step line of metrics.jsonl).
struct StepPhases {
  double step_s = 0;  // the slowest rank's step time
  double compute_s = 0, comm_s = 0, io_s = 0, comm_overlapped_s = 0;  // means over ranks
  double idle_s = 0;  // step_s - compute_s - comm_s - io_s, at least 0
  double loss = 0;    // mean over ranks of each rank's mean batch loss
};

/// Combines `steps` steps of `ranks` ranks gathered rank-major (rank r's
/// records of step s at [(r * steps + s) * kFields, ...)). Sums in rank order,
/// so the result does not depend on timing.
std::vector<StepPhases> combine_ranks(std::span<const double> gathered, int ranks,
                                      std::size_t steps);

/// Sums of combined steps (an epoch line, or a whole run).
struct PhaseTotals {
  double step_s = 0, compute_s = 0, comm_s = 0, comm_overlapped_s = 0, io_s = 0, idle_s = 0;
  void add(const StepPhases& s);
  void add(const PhaseTotals& t);
};

/// Per-run accumulation: the epochs' training time (every rank) and, on rank
/// 0, every step's combined time and the sums of each epoch, for
/// summary.json's median and per-step means.
class RunTiming {
 public:
  /// Adds one epoch's training wall time (evaluation excluded).
  void add_train_seconds(double s) { train_s_ += s; }
  /// Adds one epoch's combined steps and their totals (rank 0).
  void add_steps(std::span<const StepPhases> steps, const PhaseTotals& epoch_totals);
  double train_s() const { return train_s_; }
  const PhaseTotals& totals() const { return totals_; }
  /// Median of the steps' step_s (mean of the middle two for an even
  /// count; 0 without steps).
  double step_s_median() const;

 private:
  std::vector<double> step_s_;
  PhaseTotals totals_;
  double train_s_ = 0;
};

}  // namespace hpcml

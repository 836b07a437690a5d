// The learning rate of every optimizer step: the large-batch rules of the
// field in one place. The peak rate is optimizer.lr scaled from the batch it
// was tuned for (optimizer.base_batch) to this run's global batch (linear
// scaling rule, or its square-root variant), reached by a linear warmup, then
// held or decayed (cosine, step, polynomial). docs/config-reference.md has the
// keys; docs/large-batch.md the reasoning.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "hpcml/core/train_config.hpp"

namespace hpcml {

/// optimizer.lr scaled to `global_batch` by `rule` ("none", "linear", "sqrt")
/// from `base_batch`: lr * (global / base) or lr * sqrt(global / base).
double scaled_learning_rate(const std::string& rule, double lr, std::size_t global_batch,
                            std::size_t base_batch);

class LrSchedule {
 public:
  /// `global_batch` = samples per optimizer step over all ranks;
  /// `total_steps` = the optimizer steps of the whole run (the decay's end).
  LrSchedule(const TrainConfig::Optimizer& opt, std::size_t global_batch,
             std::size_t steps_per_epoch, std::size_t total_steps);

  /// Learning rate of optimizer step `step` (0-based).
  double lr(std::size_t step) const;

  double peak_lr() const { return peak_; }
  std::size_t warmup_steps() const { return warmup_steps_; }
  std::size_t total_steps() const { return total_steps_; }
  /// The decay's milestones as optimizer steps (schedule "step").
  const std::vector<std::size_t>& milestones() const { return milestones_; }

  /// One line for the run's header: base lr, the scaling, warmup and decay,
  /// e.g. "0.05 x 8 (linear: global batch 2048 / base 256) = 0.4; warmup
  /// 470 steps; cosine to 0 at step 4690".
  std::string describe() const;

 private:
  TrainConfig::Optimizer opt_;
  std::size_t global_batch_, total_steps_, warmup_steps_;
  double peak_;
  std::vector<std::size_t> milestones_;
};

}  // namespace hpcml

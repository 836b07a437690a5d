// The synchronous data-parallel training loop.
//
// Every rank runs the same loop on its own slice of each global batch
// (epoch_indices), averages gradients through Collectives each step, and
// applies the same update, so weights stay bit-identical on all ranks.
// Rank 0 writes the run directory: metrics.jsonl (one line per step and per
// epoch) and summary.json; see docs/run-directory.md.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>

#include "hpcml/core/backend.hpp"
#include "hpcml/core/collectives.hpp"
#include "hpcml/core/data.hpp"
#include "hpcml/core/model.hpp"
#include "hpcml/core/train_config.hpp"

namespace hpcml {

/// Facts about the launch recorded in summary.json (they do not change training).
struct LaunchFacts {
  int threads_per_rank = 1;
  int nodes = 1;
  bool oversubscribed = false;
  std::string hostname;
};

struct TrainSummary {
  std::size_t steps = 0;  // optimizer steps taken
  int epochs_completed = 0;
  bool stopped_by_signal = false;
  double final_train_loss = 0, final_train_acc = 0;
  double final_test_loss = 0, final_test_acc = -1;  // -1: not evaluated
  double samples_per_s = 0;  // global samples per second of training (evaluation excluded)
  double wall_s = 0;
  double step_s_median = 0;
  double compute_s_per_step = 0, comm_s_per_step = 0, io_s_per_step = 0, idle_s_per_step = 0;
  double comm_overlapped_s_per_step = 0;
};

/// Throws ConfigError if one global batch (batch_size x ranks) does not fit in
/// the training split. Deterministic: every rank reaches the same verdict.
void check_batch_layout(const TrainConfig& config, const Dataset& train, int ranks);

class Trainer {
 public:
  /// `test` may be null (no evaluation). `run_dir` is used on rank 0 only ("" =
  /// write nothing). `out` receives the human-readable progress (rank 0 only;
  /// pass nullptr on other ranks).
  Trainer(const TrainConfig& config, Backend& backend, Collectives& comm, Dataset& train,
          Dataset* test, std::string run_dir, std::ostream* out, LaunchFacts facts = {});

  TrainSummary run();

  Mlp& model() { return model_; }

 private:
  struct Evaluation {
    double loss = 0, accuracy = 0;
  };
  Evaluation evaluate();

  const TrainConfig& config_;
  Backend& backend_;
  Collectives& comm_;
  Dataset& train_;
  Dataset* test_;
  std::string run_dir_;
  std::ostream* out_;
  LaunchFacts facts_;
  Mlp model_;
  SgdMomentum optimizer_;
};

}  // namespace hpcml

// Resolving `hpcml train --resume auto|PATH` and checking that a checkpoint
// fits the run that loads it (docs/checkpoints.md). File-system work only:
// the caller runs plan_resume() on rank 0 and shares the result.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hpcml/core/data.hpp"
#include "hpcml/core/train_config.hpp"
#include "hpcml/core/train_state.hpp"
#include "hpcml/io/checkpoint.hpp"

namespace hpcml::io {

/// Where a run goes and what it continues from (decided on rank 0).
struct ResumePlan {
  std::string run_dir;             // an existing run directory to continue in; "" = create one
  std::string checkpoint;          // the checkpoint to load; "" = a fresh start
  std::vector<std::string> notes;  // warnings and notices for rank 0 to print
};

/// The checkpoint directory of a run: checkpoint.dir, else <run_dir>/checkpoints.
std::string checkpoint_dir(const TrainConfig& cfg, const std::string& run_dir);

/// Resolves --resume: "" (a fresh run), "auto" (the newest valid checkpoint of
/// run.name in run.dir; a fresh start with a notice when there is none), a run
/// directory or a checkpoint file. Invalid checkpoints that are skipped become
/// warnings in `notes`. Throws ConfigError / DataError naming the path.
ResumePlan plan_resume(const TrainConfig& cfg, const std::string& resume);

/// The layer sizes of the model this run builds: features, hidden..., classes.
std::vector<std::int64_t> model_layers(const TrainConfig& cfg, const Dataset& train);

/// Throws ConfigError naming the field when the checkpoint cannot continue
/// this run (model shape, dataset, global batch, seed, warmup); returns
/// warnings for what may change (schedule length, rank count).
std::vector<std::string> check_resumable(const LoadedCheckpoint& c, const TrainConfig& cfg,
                                         const CheckpointInfo& here, const TrainState& now);

}  // namespace hpcml::io

// Resolving `hpcml train --resume` and checking that a checkpoint fits the run
// that loads it (docs/checkpoints.md).
#include "hpcml/io/resume.hpp"

#include <filesystem>

#include "hpcml/core/error.hpp"

namespace hpcml::io {

namespace fs = std::filesystem;

std::string checkpoint_dir(const TrainConfig& cfg, const std::string& run_dir) {
  return cfg.checkpoint.dir.empty() ? (fs::path(run_dir) / "checkpoints").string()
                                    : cfg.checkpoint.dir;
}

namespace {

// The newest valid checkpoint of run directory `run_dir`; every invalid one
// skipped adds a warning naming the file and the reason.
std::string newest_in_run(const TrainConfig& cfg, const std::string& run_dir, ResumePlan& plan) {
  std::vector<std::string> skipped;
  auto found = newest_valid_checkpoint(checkpoint_dir(cfg, run_dir), skipped);
  for (const auto& why : skipped) plan.notes.push_back("warning: skipping checkpoint: " + why);
  return found ? found->path : std::string();
}

}  // namespace

ResumePlan plan_resume(const TrainConfig& cfg, const std::string& resume) {
  ResumePlan plan;
  if (resume.empty()) return plan;
  std::error_code ec;
  if (resume == "auto") {
    if (cfg.run.name.empty()) {
      HPCML_THROW(ConfigError,
                  "--resume auto: run.name is empty, so there is no run to continue; name the "
                  "run (for example --set run.name=my-run) and use the same name on restart");
    }
    const std::string dir = (fs::path(cfg.run.dir) / cfg.run.name).string();
    if (!fs::is_directory(dir, ec)) {
      plan.notes.push_back("notice: --resume auto: no run directory " + dir +
                           " yet: starting fresh");
      return plan;
    }
    plan.run_dir = dir;
    plan.checkpoint = newest_in_run(cfg, dir, plan);
    if (plan.checkpoint.empty()) {
      plan.notes.push_back("notice: --resume auto: no valid checkpoint in " +
                           checkpoint_dir(cfg, dir) + ": starting fresh in " + dir);
    }
    return plan;
  }
  if (fs::is_directory(resume, ec)) {
    plan.run_dir = resume;
    plan.checkpoint = newest_in_run(cfg, resume, plan);
    if (plan.checkpoint.empty()) {
      HPCML_THROW(DataError, "--resume " + resume + ": no valid checkpoint in " +
                                 checkpoint_dir(cfg, resume) +
                                 (plan.notes.empty() ? "" : " (" + plan.notes.back() + ")"));
    }
    return plan;
  }
  if (!fs::exists(resume, ec))
    HPCML_THROW(ConfigError, "--resume " + resume + ": no such checkpoint file or run directory");
  // A checkpoint file: its run directory is the parent of checkpoints/, or the
  // one it records (checkpoint.dir elsewhere). Every rank reads (and checks)
  // the file afterwards.
  const fs::path parent = fs::path(resume).parent_path();
  if (parent.filename() == "checkpoints" && fs::is_directory(parent.parent_path(), ec)) {
    plan.run_dir = parent.parent_path().string();
  } else {
    const auto loaded = read_checkpoint(resume);
    if (loaded.info.run_dir.empty() || !fs::is_directory(loaded.info.run_dir, ec)) {
      HPCML_THROW(DataError, resume + ": its run directory '" + loaded.info.run_dir +
                                 "' does not exist; resume with the run directory instead");
    }
    plan.run_dir = loaded.info.run_dir;
  }
  plan.checkpoint = resume;
  return plan;
}

std::vector<std::int64_t> model_layers(const TrainConfig& cfg, const Dataset& train) {
  std::vector<std::int64_t> layers{static_cast<std::int64_t>(train.features())};
  // A layer-list model is identified by its description (CheckpointInfo::model).
  if (cfg.model.layers.empty())
    layers.insert(layers.end(), cfg.model.hidden.begin(), cfg.model.hidden.end());
  layers.push_back(train.classes());
  return layers;
}

namespace {

std::string layers_text(const std::vector<std::int64_t>& layers) {
  std::string s;
  for (auto l : layers) s += (s.empty() ? "" : "-") + std::to_string(l);
  return s;
}

}  // namespace

// The fields that must match between the checkpoint and this run (ConfigError
// naming the field), and warnings for those that may change.
std::vector<std::string> check_resumable(const LoadedCheckpoint& c, const TrainConfig& cfg,
                                         const CheckpointInfo& here, const TrainState& now) {
  const TrainState& was = c.state.view();
  const std::string& f = c.path;
  if (c.info.layers != here.layers) {
    HPCML_THROW(ConfigError, f + ": model.hidden: the checkpoint holds a " +
                                 layers_text(c.info.layers) + " model, this run builds " +
                                 layers_text(here.layers) + " (must match)");
  }
  if (!c.info.model.empty() && !here.model.empty() && c.info.model != here.model) {
    HPCML_THROW(ConfigError, f + ": model.layers: the checkpoint holds the model " + c.info.model +
                                 ", this run builds " + here.model + " (must match)");
  }
  if (c.info.optimizer != here.optimizer) {
    HPCML_THROW(ConfigError, f + ": optimizer.name: the checkpoint holds the state of " +
                                 c.info.optimizer + ", this run uses " + here.optimizer +
                                 " (must match)");
  }
  if (c.info.dataset_digest != here.dataset_digest) {
    HPCML_THROW(ConfigError, f + ": data.path: the checkpoint was trained on another dataset (" +
                                 c.info.dataset_digest + ", this run's " + cfg.data.path +
                                 " split " + cfg.data.train_split + " is " + here.dataset_digest +
                                 "; must match)");
  }
  const std::size_t gb_was = was.local_batch * static_cast<std::size_t>(was.ranks);
  const std::size_t gb_now = now.local_batch * static_cast<std::size_t>(now.ranks);
  if (gb_was != gb_now) {
    HPCML_THROW(ConfigError, f + ": train.batch_size: global batch " + std::to_string(gb_was) +
                                 " (" + std::to_string(was.ranks) + " ranks x " +
                                 std::to_string(was.local_batch) + ") in the checkpoint, " +
                                 std::to_string(gb_now) + " (" + std::to_string(now.ranks) +
                                 " ranks x " + std::to_string(now.local_batch) +
                                 ") in this run (must match)");
  }
  if (was.seed != now.seed) {
    HPCML_THROW(ConfigError, f + ": train.seed: " + std::to_string(was.seed) +
                                 " in the checkpoint, " + std::to_string(now.seed) +
                                 " in this run (must match: it fixes the sample order)");
  }
  if (was.warmup_steps != now.warmup_steps) {
    HPCML_THROW(ConfigError, f + ": optimizer.warmup_epochs: a warmup of " +
                                 std::to_string(was.warmup_steps) + " steps in the checkpoint, " +
                                 std::to_string(now.warmup_steps) + " in this run (must match)");
  }
  std::vector<std::string> notes;
  if (was.total_steps != now.total_steps) {
    notes.push_back("warning: the learning-rate schedule now ends at step " +
                    std::to_string(now.total_steps) + ", not " + std::to_string(was.total_steps) +
                    " (train.epochs or train.max_steps changed): from step " +
                    std::to_string(was.global_step) + " on, the rates differ from the saved run's");
  }
  if (was.ranks != now.ranks) {
    notes.push_back("warning: the checkpoint was written by " + std::to_string(was.ranks) +
                    " rank(s), this run has " + std::to_string(now.ranks) +
                    ": weights, momentum and the sample order are restored exactly, but the "
                    "gradient sums run in another order, so the steps are not bit-identical "
                    "to a continuation on " +
                    std::to_string(was.ranks));
  }
  return notes;
}

}  // namespace hpcml::io

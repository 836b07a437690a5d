// Which command reads which top-level table of a job config: the one place
// that decides it.
//
// One TOML file carries a whole job: [model], [data], [train], [optimizer],
// [parallel] and [run] for `hpcml train`, [slurm], [site] and [sweep] for
// `hpcml submit`, [scale] for `hpcml scale`, [synthetic] for `hpcml bench
// synthetic`. ConfigDoc records every key a command reads and check_unknown()
// rejects the rest, except in the tables passed to it: this function gives
// that list for each reader.
#pragma once

#include <string>
#include <vector>

namespace hpcml {

class ConfigDoc;

enum class ConfigReader {
  /// hpcml train: run, model, data, train, optimizer and [parallel] (with the
  /// comm layer's keys). Leaves [slurm], [sweep], [site], [scale]; any other
  /// unknown table is an error (a typo such as [modle] is caught).
  kTrain,
  /// hpcml submit: [slurm], [site], [sweep] and the training keys it
  /// validates (read_train_config). Leaves [parallel] (the comm layer's keys
  /// are checked when the job runs) and [scale].
  kSubmit,
  /// One sweep task's config as submit validates it: the training keys only.
  kSweepTask,
  /// hpcml scale: [scale] only; every other table belongs to the job it runs.
  kScale,
  /// hpcml scale --slurm: [slurm] and [site], read as submit reads them.
  kScaleSlurm,
  /// hpcml bench synthetic: [synthetic] (plus the train., run. and
  /// parallel.threads keys it reads); every other table is ignored.
  kSynthetic,
};

/// The top-level tables `reader` leaves to other commands: pass the result to
/// ConfigDoc::check_unknown() after the reader has read its keys.
std::vector<std::string> tables_left_to_others(ConfigReader reader, const ConfigDoc& doc);

}  // namespace hpcml

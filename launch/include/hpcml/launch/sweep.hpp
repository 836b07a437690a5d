// Parameter sweeps: the [sweep] table of a job config expanded into tasks (grid,
// zip or seeded random sampling), the manifest that maps an array task id to
// its run directory and parameters, the split of large sweeps into several
// arrays (MaxArraySize), and status/collect over a sweep directory.
//
//   [sweep]
//   mode = "grid"              # grid | zip | random
//   throttle = 2               # at most 2 array tasks at once (--array=...%2)
//   samples = 20               # random: number of tasks
//   seed = 1                   # random: sampling seed
//   metric = "final_test_acc"  # what `hpcml sweep collect` sorts by
//   goal = "max"               # max | min
//   [sweep.params.optimizer]   # any config key: a list of values
//   lr = [0.1, 0.05]
//   [sweep.uniform.optimizer]  # random mode only: [low, high]
//   momentum = [0.8, 0.99]
//   [sweep.log_uniform.optimizer]
//   weight_decay = [1e-5, 1e-2]
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace hpcml {
class ConfigDoc;
}

namespace hpcml::launch {

/// One task's overrides: (dotted config key, value as TOML text), in key order.
using Assignment = std::vector<std::pair<std::string, std::string>>;

struct SweepSpec {
  struct Param {
    std::string key;                  // dotted config key
    std::vector<std::string> values;  // TOML texts
  };
  struct Range {
    std::string key;
    double low = 0, high = 0;
    bool log = false;
    bool integer = false;  // both bounds were integers: sample integers in [low, high]
  };
  std::string mode = "grid";
  std::vector<Param> params;
  std::vector<Range> ranges;
  int samples = 0;
  std::uint64_t seed = 1;
  int throttle = 0;
  std::string metric = "final_test_acc";
  std::string goal = "max";

  bool empty() const { return params.empty() && ranges.empty(); }
};

/// Tables under [sweep] whose keys are config keys (read by read_sweep_spec
/// itself): pass them to check_unknown's skip list.
const std::vector<std::string>& sweep_value_tables();

/// Reads [sweep]; empty() when the config has none. Values with control
/// characters (also inside TOML strings), mismatched zip lengths, ranges outside
/// random mode and more than 100000 tasks are ConfigErrors.
SweepSpec read_sweep_spec(ConfigDoc& doc);

/// The tasks, deterministic for a given spec (random mode: for a given seed).
std::vector<Assignment> expand_sweep(const SweepSpec& spec);

/// Array `i` covers manifest tasks [offset, offset + count); every array's
/// indices start at 0 and stay below `max_array_size`.
struct ArrayChunk {
  int offset = 0;
  int count = 0;
};
std::vector<ArrayChunk> split_arrays(int tasks, long max_array_size);

/// Name of task `id`'s directory inside the sweep directory: task-0000, ...
std::string task_name(int id);

/// manifest.tsv: one line per task, tab-separated: id, directory name, then one
/// key=value (TOML value) per parameter.
struct ManifestTask {
  int id = 0;
  std::string name;
  Assignment params;
};
void write_manifest(const std::string& path, const std::vector<Assignment>& tasks);
std::vector<ManifestTask> read_manifest(const std::string& path);

/// State of one task as `sweep status` reports it.
struct TaskStatus {
  ManifestTask task;
  std::string state;    // PENDING RUNNING COMPLETED FAILED REQUEUED NOT_STARTED LOST ...
  int exit_code = -1;   // when known
  std::string reason;   // why it failed / why it waits
  std::string summary;  // path of its summary.json, "" if none
};

/// Live Slurm states of array tasks, keyed by manifest task id (filled by a Submitter).
struct QueueState {
  std::string state;
  std::string reason;
};

/// Status of every task of a sweep directory, merging what the tasks wrote
/// (state file, job.log, summary.json) with the queue's view (`queue`).
std::vector<TaskStatus> sweep_status(const std::string& sweep_dir,
                                     const std::map<int, QueueState>& queue);

/// The collected results: writes <dir>/results.csv and <dir>/results.md and
/// returns the Markdown. `metric`/`goal` "" = those recorded at submission.
std::string collect_sweep(const std::string& sweep_dir, const std::vector<TaskStatus>& status,
                          const std::string& metric, const std::string& goal);

}  // namespace hpcml::launch

// The batch script hpcml writes for a job or a sweep array: #SBATCH directives
// from a JobSpec, a body that sets up the site environment, exports the OpenMP
// variables, starts the job step (srun or mpiexec) with explicit geometry,
// forwards SIGUSR1 to it and requeues the job when the step asks for it.
//
// Nothing from a sweep or from --set is written into the script: each run's
// hpcml arguments live in a file `args` (one argument per line) in its run
// directory, read with `mapfile` and passed as "${ARGS[@]}" so no shell ever
// interprets them. Every value that is written was validated by its allowlist
// (script_safety.hpp) and is single-quoted in the body.
#pragma once

#include <string>
#include <vector>

#include "hpcml/launch/job_spec.hpp"
#include "hpcml/launch/site.hpp"

namespace hpcml::launch {

/// Exit code of `hpcml train` that means "stopped early on SIGUSR1/SIGTERM,
/// requeue me" (hpcml::kExitPreempted in core/signals.hpp).
inline constexpr int kPreemptedExitCode = 3;

struct ScriptPlan {
  JobSpec job;
  SiteProfile site;
  std::string source_config;  // the config file, named in the header comment
  std::string run_dir;        // absolute; holds the script, config copy, args, state
  std::string work_dir;       // absolute; where the job runs (--chdir): relative paths in the
                              // config (data.path, run.dir) mean what they meant at submission
  std::string hpcml;          // absolute path of the hpcml executable
  // Sweep arrays: array task i runs manifest task (array_offset + i), i in [0, array_count).
  int array_count = 0;  // 0 = a single run in run_dir
  int array_offset = 0;
  int throttle = 0;                       // --array=...%throttle; 0 = no limit
  std::string manifest = "manifest.tsv";  // in run_dir
};

/// The `#SBATCH` options, each "--name=value" or "--flag", in script order.
/// Validates the plan's paths; throws ConfigError naming the field otherwise.
std::vector<std::string> batch_directives(const ScriptPlan& plan);

/// The complete script text.
std::string render_batch_script(const ScriptPlan& plan);

}  // namespace hpcml::launch

// `hpcml submit`: from job configs to submitted Slurm jobs.
//
// For each config (in command-line order): load it, apply --set, pick the site
// profile, read [slurm] and [sweep] strictly and the training keys too (so a
// typo fails here, not after hours in the queue), create the run directory
//   <run.dir>/<run.name or <config stem>-<UTC time>>/
// with a verbatim copy of the config (config.toml), the hpcml arguments of the
// run (args; for a sweep one task-NNNN/args per task plus manifest.tsv and
// sweep.json), the batch script(s) and jobs.tsv, then submit. A config whose
// slurm.dependency is set waits on every job submitted before it in the same
// command (afterok/afterany/afternotok): runs of a scaling study, then a report.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "hpcml/core/config_doc.hpp"
#include "hpcml/launch/batch_script.hpp"
#include "hpcml/launch/process.hpp"  // self_executable (declared here before)

namespace hpcml::launch {

class Submitter;

struct SubmitOptions {
  std::vector<std::string> configs;
  std::string site;                // profile name or path; "" = config's site.name or built-in
  std::string sites_dir;           // "" = default_sites_dir()
  std::vector<std::string> sets;   // --set key=value, applied to every config
  bool dry_run = false;            // print the scripts, write and submit nothing
  bool write_only = false;         // write run directories and scripts, submit nothing
  bool hold = false;               // submit held (for inspection)
  std::string submitter = "auto";  // auto | sbatch | libslurm
  std::string hpcml;               // executable the jobs run; "" = site's, else this binary
};

struct SubmittedJob {
  std::string config;
  std::string run_dir;
  bool sweep = false;
  int tasks = 1;
  std::vector<std::string> scripts;  // one per array for big sweeps
  std::vector<std::string> job_ids;  // parallel to scripts; empty in a dry run
};

/// A job config as every submission starts from it: the document with --set
/// applied, its site profile and its [slurm] table read strictly.
struct JobConfig {
  ConfigDoc doc;  // keys under [slurm] and [site] are read; the caller checks the rest
  SiteProfile site;
  JobSpec job;
};

/// Loads `config`, applies `sets` (a control character in one is a ConfigError
/// prefixed with `what`, e.g. "scale: "), picks the site profile (`site`, else
/// the config's site.name, else built-in defaults; looked up in `sites_dir`,
/// "" = default_sites_dir()), applies the config's [site] table and reads [slurm].
JobConfig load_job_config(const std::string& config, const std::vector<std::string>& sets,
                          const std::string& site, const std::string& sites_dir,
                          const std::string& what = "");

/// Does the work; writes human-readable progress to `log` and, in a dry run,
/// the scripts to `out`. Throws ConfigError for bad configs, Error when Slurm refuses.
std::vector<SubmittedJob> submit_configs(const SubmitOptions& options, std::ostream& out,
                                         std::ostream& log);

/// One batch job whose caller decides everything submit_configs reads from a
/// config: the geometry (plan.job), the exact hpcml arguments and the jobs it
/// waits on. For tools that build their own job sets (`hpcml scale --slurm`:
/// one job per point, then a report job after all of them).
struct SingleJob {
  // plan.run_dir (absolute) holds job.sbatch, args, state and the Slurm log;
  // plan.job.command and plan.job.dependency are not used (see args, after).
  ScriptPlan plan;
  std::vector<std::string> args;             // hpcml's arguments, one per line in <run_dir>/args
  std::string dependency_type = "afterany";  // afterok | afterany | afternotok
  std::vector<std::string> after;            // job ids to wait on; empty = no dependency
  bool hold = false;                         // submit held (priority 0)
};

struct SingleJobResult {
  std::string script_path;  // <run_dir>/job.sbatch
  std::string script_text;
  std::string args_text;   // what <run_dir>/args holds
  std::string dependency;  // "" or e.g. "afterany:12:13"
  std::string job_id;      // "" when not submitted
};

/// Renders and validates the script (batch_script.hpp's allowlists) and the
/// arguments (no control characters; they reach the job only through the args
/// file, never the shell) and checks the dependency ids. With `submitter` null
/// that is all (a dry run: nothing is written). Otherwise creates run_dir,
/// writes job.sbatch and args there and submits. ConfigError for bad values,
/// Error when Slurm refuses.
SingleJobResult submit_single_job(const SingleJob& job, Submitter* submitter);

}  // namespace hpcml::launch

// The [slurm] table of a job config: every batch directive and launch option
// hpcml writes, read strictly (unknown keys and out-of-allowlist values are
// ConfigErrors), with site-profile defaults filled in.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hpcml/launch/site.hpp"

namespace hpcml {
class ConfigDoc;
}

namespace hpcml::launch {

struct JobSpec {
  std::string job_name = "hpcml";
  int nodes = 1;
  int ntasks_per_node = 1;
  int cpus_per_task = 1;
  int gpus_per_node = 0;     // --gpus-per-node; 0 = none
  std::string gres;          // --gres (alternative to gpus_per_node)
  std::int64_t mem_mb = 0;   // --mem / --mem-per-cpu in MiB; 0 = Slurm's default
  bool mem_per_cpu = false;  // true: mem_mb is per CPU
  std::int64_t time_minutes = 30;
  std::string partition, account, qos, constraint;
  bool exclusive = false;
  std::string output;                  // "" = <run dir>/slurm-%j.out (%A_%a for arrays)
  std::string error;                   // "" = same file as output
  std::vector<std::string> mail_type;  // NONE BEGIN END FAIL REQUEUE ALL ...
  std::string mail_user;
  std::vector<std::string> extra;  // further --option[=value] directives, verbatim
  // How the job step starts (defaults from the site).
  std::string launcher = "srun";  // srun | mpiexec | none (run once in the batch shell)
  std::string mpi = "pmi2";
  std::string cpu_bind = "cores";
  std::string gpu_bind = "auto";  // srun --gpu-bind= (SiteProfile::gpu_bind)
  std::string mpiexec = "mpiexec";
  std::string omp_places = "cores";
  std::string omp_proc_bind = "close";
  // Time limit / preemption: --signal=B:USR1@<signal_seconds> (0 = none) and --requeue.
  int signal_seconds = 0;
  bool requeue = false;
  // Dependency on every job submitted before this one in the same command:
  // "" (none), afterok, afterany, afternotok.
  std::string dependency;
  // What runs: `hpcml <command...>`; "{config}" and "{run_dir}" inside an element are
  // replaced by the run's config copy and directory.
  std::vector<std::string> command{"train", "{config}"};
  std::vector<std::pair<std::string, std::string>> env;  // exported after the site's env

  int total_tasks() const { return nodes * ntasks_per_node; }
};

/// Reads [slurm] (every key under it, so unknown ones are caught by the
/// caller's check_unknown) with `site` supplying defaults.
JobSpec read_job_spec(ConfigDoc& doc, const SiteProfile& site);

/// Slurm time formats (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S) to whole minutes,
/// rounded up; ConfigError (through doc.fail(key)) on anything else or zero.
std::int64_t parse_time_minutes(const ConfigDoc& doc, const std::string& key,
                                const std::string& text);

/// Reads a time key given as an integer (minutes) or a Slurm time string.
std::int64_t read_time_minutes(ConfigDoc& doc, const std::string& key, const std::string& def);

/// Slurm memory sizes (a number with an optional K/M/G/T suffix, default M) to MiB.
std::int64_t parse_mem_mb(const ConfigDoc& doc, const std::string& key, const std::string& text);

/// Slurm's time format for a number of minutes: "D-HH:MM:SS" or "HH:MM:SS".
std::string format_time(std::int64_t minutes);

}  // namespace hpcml::launch

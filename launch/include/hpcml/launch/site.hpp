// Site profiles: what differs between clusters (partition, account, modules,
// launcher, array limits) kept out of job configs. A profile is a TOML file
// configs/sites/<name>.toml with one [site] table; a job config may carry its
// own [site] table whose keys override the profile's.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace hpcml {
class ConfigDoc;
}

namespace hpcml::launch {

struct SiteProfile {
  std::string name = "default";
  std::string source;  // file it came from ("" = built-in defaults)
  // Defaults for [slurm] keys the job config leaves out ("" = let Slurm decide).
  std::string partition, account, qos, constraint;
  std::string time = "00:30:00";
  // How ranks start: "srun" (with --mpi=<mpi>, --cpu-bind=<cpu_bind>) or "mpiexec".
  std::string launcher = "srun";
  std::string mpi = "pmi2";
  std::string cpu_bind = "cores";
  // srun --gpu-bind= when the job has GPUs: "auto" (single:1, one GPU per task,
  // when a node has no more tasks than GPUs, else none), "none" (hpcml picks
  // the GPU by SLURM_LOCALID), or a Slurm value (e.g. "map_gpu:0,1,2,3").
  std::string gpu_bind = "auto";
  std::string mpiexec = "mpiexec";  // mpiexec executable when launcher = "mpiexec"
  // Environment set up in the script body, in this order.
  std::string module_init;           // file sourced first (e.g. /etc/profile.d/modules.sh)
  bool module_purge = false;         // `module purge` before loading
  std::vector<std::string> modules;  // `module load` each
  std::string env_script;            // file sourced after the modules
  std::vector<std::pair<std::string, std::string>> env;  // exported, in key order
  // Largest array index + 1 Slurm accepts; 0 = ask the cluster (scontrol/libslurm).
  long max_array_size = 0;
  // hpcml executable as seen from the compute nodes; "" = the submitting binary.
  std::string hpcml;
};

/// Directory that holds the site profiles: $HPCML_SITES_DIR if set, else, for an
/// installed hpcml, <prefix>/share/hpcml/configs/sites next to its bin/, else the
/// source tree's configs/sites.
std::string default_sites_dir();

/// Loads a profile: `name_or_path` is a file path if it contains '/' or ends in
/// ".toml", else <sites_dir>/<name>.toml. Unknown keys and values outside their
/// allowlist are ConfigErrors naming the file and key.
SiteProfile load_site(const std::string& name_or_path, const std::string& sites_dir);

/// Applies the [site] table of a job config (keys other than `name`) on top of
/// `site`. Reads and validates every key under [site].
void apply_site_table(ConfigDoc& doc, const std::string& table, SiteProfile& site);

}  // namespace hpcml::launch

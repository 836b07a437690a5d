#include "hpcml/launch/environment.hpp"

#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>

namespace hpcml::launch {

namespace {

// Parses a strictly positive integer; returns 0 for missing or malformed values.
int env_positive_int(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x <= 0 || x > 1 << 20) return 0;
  return static_cast<int>(x);
}

std::string env_string(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

int count_gpus() {
  if (int n = env_positive_int("SLURM_GPUS_ON_NODE")) return n;
  std::string visible = env_string("CUDA_VISIBLE_DEVICES");
  if (visible.empty() || visible == "NoDevFiles") return 0;
  int n = 1;
  for (char c : visible) n += c == ',';
  return n;
}

// A non-negative integer variable, or -1 when missing or malformed.
int env_index(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return -1;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1 << 24) return -1;
  return static_cast<int>(x);
}

}  // namespace

// Hydra (MPICH's mpiexec) sets MPI_LOCALRANKID beside PMI_RANK; Slurm's pmi2 plugin
// sets PMI_RANK but not MPI_LOCALRANKID. Inside an allocation Hydra starts its proxies
// with srun (one task per node), so its ranks also carry that srun step's
// SLURM_STEP_ID/SLURM_PROCID, which number the proxies, not the ranks.
bool started_by_hydra() {
  return env_index("MPI_LOCALRANKID") >= 0 && env_index("PMI_RANK") >= 0 &&
         env_index("PMI_SIZE") > 0;
}

RuntimeLayout::EnvLayout detect_env_layout() {
  RuntimeLayout::EnvLayout e;
  // A step started by srun sets SLURM_STEP_ID; a batch shell has SLURM_PROCID=0
  // and SLURM_NTASKS of the whole job, which says nothing about this process.
  if (!started_by_hydra() && env_index("SLURM_STEP_ID") >= 0 && env_index("SLURM_PROCID") >= 0 &&
      env_index("SLURM_NTASKS") > 0) {
    e.source = "SLURM";
    e.rank = env_index("SLURM_PROCID");
    e.size = env_index("SLURM_NTASKS");
    e.local_rank = env_index("SLURM_LOCALID");
    e.nodes = env_index("SLURM_STEP_NUM_NODES") > 0 ? env_index("SLURM_STEP_NUM_NODES")
                                                    : env_index("SLURM_JOB_NUM_NODES");
  } else if (env_index("PMI_RANK") >= 0 && env_index("PMI_SIZE") > 0) {
    e.source = "PMI";
    e.rank = env_index("PMI_RANK");
    e.size = env_index("PMI_SIZE");
    e.local_rank = env_index("MPI_LOCALRANKID");
  }
  return e;
}

int resolve_threads(int config_threads, std::string* source) {
  auto set = [&](const char* s) {
    if (source) *source = s;
  };
  if (config_threads > 0) {
    set("config");
    return config_threads;
  }
  if (int n = env_positive_int("SLURM_CPUS_PER_TASK")) {
    set("SLURM_CPUS_PER_TASK");
    return n;
  }
  if (int n = env_positive_int("OMP_NUM_THREADS")) {
    set("OMP_NUM_THREADS");
    return n;
  }
  set("default");
  return 1;
}

int hardware_threads() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

RuntimeLayout detect_layout(int rank, int size, int local_rank, int local_size, int nodes,
                            int config_threads) {
  RuntimeLayout l;
  l.rank = rank;
  l.size = size;
  l.local_rank = local_rank;
  l.local_size = local_size;
  l.nodes = nodes;
  l.threads_per_rank = resolve_threads(config_threads, &l.threads_source);
  l.hardware_threads = hardware_threads();
  // Under mpiexec each rank may be bound to fewer CPUs than the node has; the
  // node's count is what oversubscription is about when ranks are unbound.
  const int node_cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  l.oversubscribed = local_size * l.threads_per_rank > node_cpus;
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) == 0) l.hostname = host;
  l.slurm_job_id = env_string("SLURM_JOB_ID");
  l.under_slurm = !l.slurm_job_id.empty();
  l.slurm_cpus_per_task = env_positive_int("SLURM_CPUS_PER_TASK");
  if (!env_string("SLURM_ARRAY_TASK_ID").empty()) {
    l.array_task_id = std::atoi(env_string("SLURM_ARRAY_TASK_ID").c_str());
  }
  l.restart_count = env_positive_int("SLURM_RESTART_COUNT");
  l.gpus_on_node = count_gpus();
  l.array_job_id = env_string("SLURM_ARRAY_JOB_ID");
  l.env = detect_env_layout();
  if (!l.env.source.empty() && (l.env.size != size || l.env.rank != rank)) {
    l.mismatch = "MPI says rank " + std::to_string(rank) + " of " + std::to_string(size) + " but " +
                 l.env.source + " says rank " + std::to_string(l.env.rank) + " of " +
                 std::to_string(l.env.size) +
                 (size == 1 && l.env.size > 1
                      ? ": the launcher started independent singletons (srun without "
                        "--mpi=pmi2, or an MPI library that does not match the launcher)"
                      : "");
  }
  if (started_by_hydra()) {
    l.launcher = "mpiexec";
  } else if (!env_string("SLURM_STEP_ID").empty() && !env_string("SLURM_PROCID").empty()) {
    l.launcher = "srun";
  } else if (!env_string("PMI_RANK").empty() || !env_string("PMI_FD").empty() ||
             !env_string("HYDRA_CONTROL_FD").empty()) {
    l.launcher = "mpiexec";
  } else {
    l.launcher = "singleton";
  }
  return l;
}

std::string describe(const RuntimeLayout& l) {
  std::ostringstream os;
  os << "  launcher          " << l.launcher
     << (l.under_slurm ? " (inside Slurm job " + l.slurm_job_id + ")" : "") << "\n";
  os << "  ranks             " << l.size << " on " << l.nodes << " node(s), " << l.local_size
     << " on this node (" << l.hostname << ")\n";
  os << "  this rank         " << l.rank << " (local rank " << l.local_rank << ")\n";
  os << "  threads per rank  " << l.threads_per_rank << " (from " << l.threads_source << ")\n";
  os << "  cpus usable       " << l.hardware_threads << " by this process"
     << (l.oversubscribed ? "; node is OVERSUBSCRIBED (ranks x threads > cores)" : "") << "\n";
  if (l.under_slurm) {
    os << "  slurm             cpus-per-task " << l.slurm_cpus_per_task << ", array task "
       << l.array_task_id << ", restart count " << l.restart_count << "\n";
  }
  os << "  gpus on node      " << l.gpus_on_node << "\n";
  if (!l.env.source.empty()) {
    os << "  launcher env      " << l.env.source << ": rank " << l.env.rank << " of " << l.env.size
       << ", local rank " << l.env.local_rank;
    if (l.env.nodes > 0) os << ", " << l.env.nodes << " node(s)";
    os << "\n";
  }
  if (!l.array_job_id.empty())
    os << "  array             job " << l.array_job_id << " task " << l.array_task_id << "\n";
  if (!l.mismatch.empty()) os << "  WARNING           " << l.mismatch << "\n";
  return os.str();
}

}  // namespace hpcml::launch

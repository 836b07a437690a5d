// Where and how this process was launched: Slurm / MPI environment detection
// used by every command (`hpcml info` prints it). MPI-free: the caller passes
// the numbers it got from its communicator, this adds what the environment says.
#pragma once

#include <string>

namespace hpcml::launch {

/// Threads per rank: `config_threads` if > 0, else SLURM_CPUS_PER_TASK, else
/// OMP_NUM_THREADS, else 1. `source` (optional) receives where it came from.
/// Malformed environment values are ignored with the source saying so.
int resolve_threads(int config_threads, std::string* source = nullptr);

/// Logical CPUs this process may run on: its affinity mask, else the online
/// CPUs, at least 1.
int hardware_threads();

struct RuntimeLayout {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // rank among the ranks on this node
  int local_size = 1;  // ranks on this node
  int nodes = 1;
  int threads_per_rank = 1;
  std::string threads_source;   // "config", "SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS", "default"
  int hardware_threads = 1;     // logical CPUs this process may run on (affinity mask)
  bool oversubscribed = false;  // local_size * threads_per_rank > hardware_threads
  std::string hostname;
  std::string launcher;      // "srun", "mpiexec", "singleton"
  bool under_slurm = false;  // SLURM_JOB_ID is set
  std::string slurm_job_id;
  int slurm_cpus_per_task = 0;  // 0 when not set
  int array_task_id = -1;       // SLURM_ARRAY_TASK_ID or -1
  int restart_count = 0;        // SLURM_RESTART_COUNT
  int gpus_on_node = 0;         // SLURM_GPUS_ON_NODE or count in CUDA_VISIBLE_DEVICES
  // What the launcher's environment says, independent of MPI (-1 = not set).
  // SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID/SLURM_JOB_NUM_NODES under srun,
  // PMI_RANK/PMI_SIZE (and MPI_LOCALRANKID) under Hydra's mpiexec.
  struct EnvLayout {
    int rank = -1, size = -1, local_rank = -1, nodes = -1;
    std::string source;  // "SLURM", "PMI" or ""
  } env;
  std::string array_job_id;  // SLURM_ARRAY_JOB_ID ("" outside arrays)
  /// Non-empty when MPI and the launcher disagree, e.g. srun started N
  /// independent singletons (no --mpi=pmi2) so every rank believes it is 0 of 1.
  std::string mismatch;
};

/// The launcher's view of this process from SLURM_* / PMI_* variables alone
/// (no MPI needed: usable before MPI_Init or in a batch shell).
RuntimeLayout::EnvLayout detect_env_layout();

/// Fills a RuntimeLayout from MPI numbers (given) and the environment.
RuntimeLayout detect_layout(int rank, int size, int local_rank, int local_size, int nodes,
                            int config_threads);

/// Multi-line human-readable description (for `hpcml info`).
std::string describe(const RuntimeLayout& layout);

}  // namespace hpcml::launch

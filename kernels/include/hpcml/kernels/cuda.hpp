// The cuda backend's extras beyond the Backend interface: what `hpcml info`
// prints, the rank -> GPU choice, and cuBLAS timing for benchmarks. Every
// function here exists in every build; without CUDA they say so.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "hpcml/core/backend.hpp"
#include "hpcml/kernels/factory.hpp"

namespace hpcml::kernels {

struct CudaDevice {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // compute capability
  std::size_t memory_bytes = 0;
  int multiprocessors = 0;
  std::string pci_bus_id;  // "0000:3b:00.0"
};

struct CudaInfo {
  bool compiled = false;    // built with HPCML_ENABLE_CUDA
  int driver_version = 0;   // cudaDriverGetVersion, e.g. 13000 (0: no driver)
  int runtime_version = 0;  // cudaRuntimeGetVersion
  std::string error;        // why no device is usable ("" when devices were listed)
  std::vector<CudaDevice> devices;
};

/// The devices this process sees (CUDA_VISIBLE_DEVICES applies). Never throws.
CudaInfo cuda_info();

/// "12.8" from 12080.
std::string cuda_version_string(int version);

/// The node-local rank that chooses the GPU: SLURM_LOCALID when set (srun
/// knows it before MPI does), else placement.local_rank.
int cuda_local_rank(const DevicePlacement& placement);

/// The device index a rank uses among `device_count` visible devices:
/// - the launcher bound one GPU per task (placement.gpu_bound, or Slurm's
///   SLURM_GPUS_PER_TASK / HPCML_GPU_BOUND=1 in the environment): device 0
///   (the task sees only its own; `local_rank % device_count` if it sees more);
/// - else `local_rank`, which must be < device_count unless
///   placement.allow_sharing (then ranks wrap round the devices).
/// Throws ConfigError naming the counts when a node has more ranks than GPUs,
/// NotAvailableError when device_count is 0.
int cuda_choose_device(const DevicePlacement& placement, int device_count);

/// The device index a cuda backend runs on (throws Error for another backend).
int cuda_device_of(Backend& backend);
/// The cudaStream_t (as void*) a cuda backend runs its kernels on, for a
/// transport that must order its work after them (NCCL). Throws for another backend.
void* cuda_compute_stream(Backend& backend);
/// How many upload_batch() calls found their batch already prefetched.
std::size_t cuda_prefetch_hits(Backend& backend);

/// Records a cudaEvent pair around every cuBLAS call of a cuda backend from
/// now on (off: stops). Throws Error for a backend that is not cuda.
void cuda_set_gemm_timing(Backend& backend, bool on);
/// Milliseconds spent in cuBLAS calls since the last call (waits for them).
double cuda_take_gemm_ms(Backend& backend);

}  // namespace hpcml::kernels

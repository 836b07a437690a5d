// Creating compute backends by name.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hpcml/core/backend.hpp"

namespace hpcml::kernels {

/// Where a rank sits on its node, for backends that pick a device (cuda: one
/// GPU per rank by node-local rank; see cuda_choose_device in kernels/cuda.hpp).
/// Host backends ignore it.
struct DevicePlacement {
  int local_rank = 0;          // this rank's index among the ranks of its node
  int local_size = 1;          // ranks on this node
  bool allow_sharing = false;  // parallel.gpu_sharing: more ranks than GPUs is allowed
  bool gpu_bound = false;      // the launcher gave each task its own GPU(s)
};

/// "reference" (serial oracle), "omp" (OpenMP + CBLAS, `threads` threads) or,
/// when built with Kokkos, "kokkos" (Kokkos::DefaultHostExecutionSpace; the
/// first kokkos backend initializes Kokkos with `threads` unless the
/// application already did; see finalize_backends()).
/// Names of backends not compiled into this build ("cuda" without CUDA; "kokkos" without
/// Kokkos) throw NotAvailableError saying so; unknown names throw ConfigError
/// listing the choices.
/// "cuda" (when built with CUDA) runs on the GPU that `placement` selects;
/// without a visible device it throws NotAvailableError ("cuda: compiled, but
/// no CUDA device is visible (...)").
std::unique_ptr<Backend> make_backend(const std::string& name, int threads,
                                      const DevicePlacement& placement = {});

/// Ends the process-wide runtimes that backends started: Kokkos::finalize when
/// a kokkos backend initialized Kokkos (an application's own Kokkos is left
/// alone). Call it after the last backend is destroyed and before MPI_Finalize;
/// without a call it happens at process exit. Idempotent; a kokkos backend
/// cannot be created afterwards (Kokkos cannot be initialized twice).
void finalize_backends();

/// Calls finalize_backends() when it goes out of scope. Declare it after the
/// MPI environment and before any backend, so that it ends after every backend
/// and before MPI_Finalize, also when an exception unwinds.
class BackendRuntime {
 public:
  BackendRuntime() = default;
  ~BackendRuntime();
  BackendRuntime(const BackendRuntime&) = delete;
  BackendRuntime& operator=(const BackendRuntime&) = delete;
};

/// Names of the host-memory backends this build can create (every kernel takes
/// host pointers; the kernel tests run them all against reference).
std::vector<std::string> available_backends();

/// Names of the device-memory backends this build can create when a device is
/// visible ("cuda" when built with CUDA): buffers come from Backend::allocate().
std::vector<std::string> device_backends();

/// One line describing the kokkos backend: Kokkos version, execution space and
/// GEMM path (KokkosBlas::gemm or CBLAS), or that it is not compiled in.
std::string kokkos_description();

/// One line describing the BLAS library in use (vendor, version/config string).
std::string blas_description();

}  // namespace hpcml::kernels

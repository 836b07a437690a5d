// Backend selection by name, the "not compiled in" stubs for backends this
// build lacks (CUDA or Kokkos when not found), and the checks shared by all backends.
#include "hpcml/kernels/factory.hpp"

#include <cblas.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backends.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/kernels/cuda.hpp"

namespace hpcml::kernels {
namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Backends that exist in hpcml's design but have no implementation in this
// build: asking for them is a clear NotAvailableError, never a silent fallback.
struct PlannedBackend {
  const char* name;
  const char* why;
};
const std::vector<PlannedBackend> kPlanned = {
#if !defined(HPCML_HAS_KOKKOS)
    {"kokkos", "hpcml was configured without Kokkos (HPCML_ENABLE_KOKKOS, Kokkos_ROOT)"},
#endif
#if !defined(HPCML_HAS_CUDA)
    {"cuda", "hpcml was configured without CUDA (HPCML_ENABLE_CUDA, CMAKE_CUDA_COMPILER)"},
#endif
};

}  // namespace

std::unique_ptr<Backend> make_backend(const std::string& name, int threads,
                                      [[maybe_unused]] const DevicePlacement& placement) {
  auto names = available_backends();
  for (auto& d : device_backends()) names.push_back(std::move(d));
  if (std::find(names.begin(), names.end(), name) != names.end()) {
    HPCML_REQUIRE(threads >= 1, ConfigError,
                  "backend '" + name + "': threads must be >= 1, got " + std::to_string(threads));
    if (name == "reference") return detail::make_reference_backend();
#if defined(HPCML_HAS_CUDA)
    if (name == "cuda") return detail::make_cuda_backend(placement);
#endif
#if defined(HPCML_HAS_KOKKOS)
    if (name == "kokkos") return detail::make_kokkos_backend(threads);
#endif
    return detail::make_omp_backend(threads);
  }
  for (const auto& planned : kPlanned) {
    if (name == planned.name)
      HPCML_THROW(NotAvailableError, "backend '" + name + "' is not compiled into this build (" +
                                         planned.why + "; available: " + join(names) + ")");
  }
  HPCML_THROW(ConfigError, "unknown backend '" + name + "' (available: " + join(names) + ")");
}

std::vector<std::string> available_backends() {
#if defined(HPCML_HAS_KOKKOS)
  return {"reference", "omp", "kokkos"};
#else
  return {"reference", "omp"};
#endif
}

std::vector<std::string> device_backends() {
#if defined(HPCML_HAS_CUDA)
  return {"cuda"};
#else
  return {};
#endif
}

std::string cuda_version_string(int version) {
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

namespace {
bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}
}  // namespace

int cuda_local_rank(const DevicePlacement& placement) {
  if (const char* id = std::getenv("SLURM_LOCALID"); id != nullptr && *id != '\0') {
    char* end = nullptr;
    const long v = std::strtol(id, &end, 10);
    if (end != id && *end == '\0' && v >= 0 && v < (1L << 20)) return static_cast<int>(v);
  }
  return placement.local_rank;
}

int cuda_choose_device(const DevicePlacement& placement, int device_count) {
  if (device_count <= 0)
    HPCML_THROW(NotAvailableError, "cuda: compiled, but no CUDA device is visible");
  const int local_rank = cuda_local_rank(placement);
  const char* bound_env = std::getenv("HPCML_GPU_BOUND");
  const bool bound = placement.gpu_bound || env_set("SLURM_GPUS_PER_TASK") ||
                     (bound_env != nullptr && std::string(bound_env) == "1");
  if (bound) return local_rank % device_count;
  if (local_rank < device_count) return local_rank;
  if (placement.allow_sharing) return local_rank % device_count;
  HPCML_THROW(ConfigError, "cuda: " + std::to_string(placement.local_size) +
                               " ranks on this node but only " + std::to_string(device_count) +
                               " CUDA device(s) visible (node-local rank " +
                               std::to_string(local_rank) +
                               " has none); start at most one rank per GPU (slurm.gpus_per_node, "
                               "--gpus-per-task=1) or set parallel.gpu_sharing = true");
}

#if !defined(HPCML_HAS_CUDA)
CudaInfo cuda_info() { return {}; }
int cuda_device_of(Backend& backend) {
  cuda_set_gemm_timing(backend, false);
  return 0;
}
std::size_t cuda_prefetch_hits(Backend& backend) {
  cuda_set_gemm_timing(backend, false);
  return 0;
}
void* cuda_compute_stream(Backend& backend) {
  cuda_set_gemm_timing(backend, false);
  return nullptr;
}
void cuda_set_gemm_timing(Backend& backend, bool /*on*/) {
  HPCML_THROW(NotAvailableError, "backend '" + backend.name() +
                                     "' is not the cuda backend, which is not "
                                     "compiled into this build");
}
double cuda_take_gemm_ms(Backend& backend) {
  cuda_set_gemm_timing(backend, false);
  return 0.0;
}
#endif

void finalize_backends() {
#if defined(HPCML_HAS_KOKKOS)
  detail::finalize_kokkos();
#endif
}

BackendRuntime::~BackendRuntime() { finalize_backends(); }

std::string kokkos_description() {
#if defined(HPCML_HAS_KOKKOS)
  return detail::kokkos_description();
#else
  return "not compiled in (configure with Kokkos found: HPCML_ENABLE_KOKKOS=AUTO|ON, Kokkos_ROOT)";
#endif
}

std::string blas_description() {
  std::string threading;
  switch (openblas_get_parallel()) {
    case 0:
      threading = "sequential";
      break;
    case 1:
      threading = "pthreads";
      break;
    case 2:
      threading = "OpenMP";
      break;
    default:
      threading = "unknown";
  }
  std::string out = openblas_get_config();
  out += " (core ";
  out += openblas_get_corename();
  out += ", " + threading + " threading; omp backend: ";
#if defined(HPCML_HAS_OPENMP)
  out +=
      "one OpenMP pool of `threads` per rank, OpenBLAS set to 1 thread, large GEMMs split "
      "into one panel per thread";
#else
  out += "built without OpenMP, GEMM on OpenBLAS's own `threads` threads, other kernels serial";
#endif
  out += ")";
  return out;
}

namespace detail {

void check_labels(const char* backend, const std::int32_t* labels, std::size_t rows,
                  std::size_t classes) {
  for (std::size_t i = 0; i < rows; ++i) {
    if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= classes)
      HPCML_THROW(DataError, std::string("backend '") + backend + "': softmax_xent label " +
                                 std::to_string(labels[i]) + " at row " + std::to_string(i) +
                                 " is outside [0, " + std::to_string(classes) + ")");
  }
}

}  // namespace detail
}  // namespace hpcml::kernels

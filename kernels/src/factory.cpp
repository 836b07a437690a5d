// Backend selection by name, the "not compiled in" stubs for backends this
// build lacks (CUDA; Kokkos when not found), and the checks shared by all backends.
#include "hpcml/kernels/factory.hpp"

#include <cblas.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"

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
constexpr PlannedBackend kPlanned[] = {
#if !defined(HPCML_HAS_KOKKOS)
    {"kokkos", "hpcml was configured without Kokkos (HPCML_ENABLE_KOKKOS, Kokkos_ROOT)"},
#endif
    {"cuda", "hpcml has no CUDA/cuBLAS backend yet"},
};

}  // namespace

std::unique_ptr<Backend> make_backend(const std::string& name, int threads) {
  const auto names = available_backends();
  if (std::find(names.begin(), names.end(), name) != names.end()) {
    HPCML_REQUIRE(threads >= 1, ConfigError,
                  "backend '" + name + "': threads must be >= 1, got " + std::to_string(threads));
    if (name == "reference") return detail::make_reference_backend();
#if defined(HPCML_HAS_KOKKOS)
    if (name == "kokkos") return detail::make_kokkos_backend(threads);
#endif
    return detail::make_omp_backend(threads);
  }
  for (const auto& planned : kPlanned) {
    if (name == planned.name)
      HPCML_THROW(NotAvailableError, "backend '" + name + "' is not compiled into this build (" +
                                         planned.why +
                                         "; available: " + join(available_backends()) + ")");
  }
  HPCML_THROW(ConfigError,
              "unknown backend '" + name + "' (available: " + join(available_backends()) + ")");
}

std::vector<std::string> available_backends() {
#if defined(HPCML_HAS_KOKKOS)
  return {"reference", "omp", "kokkos"};
#else
  return {"reference", "omp"};
#endif
}

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

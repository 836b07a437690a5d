// Backend selection by name, the "not compiled in" stubs for GPU/Kokkos
// backends, and the checks shared by all backends.
#include "hpcml/kernels/factory.hpp"

#include <cblas.h>

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
    {"kokkos", "hpcml has no Kokkos backend yet"},
    {"cuda", "hpcml has no CUDA/cuBLAS backend yet"},
};

}  // namespace

std::unique_ptr<Backend> make_backend(const std::string& name, int threads) {
  if (name == "reference" || name == "omp") {
    HPCML_REQUIRE(threads >= 1, ConfigError,
                  "backend '" + name + "': threads must be >= 1, got " + std::to_string(threads));
    if (name == "reference") return detail::make_reference_backend();
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

std::vector<std::string> available_backends() { return {"reference", "omp"}; }

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

// Constructors of the concrete backends and the argument checks they share.
// Internal to hpcml_kernels: callers go through make_backend().
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "hpcml/config.hpp"
#include "hpcml/core/backend.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/kernels/factory.hpp"

namespace hpcml::kernels::detail {

std::unique_ptr<Backend> make_reference_backend();
/// Who runs a GEMM's threads in the omp backend. `panels` (the default): OpenBLAS
/// is set to one thread and OpenMP threads each multiply one panel of C.
/// `openblas`: OpenBLAS's own pthreads pool with `threads` threads (kept to
/// measure the two side by side; the only mode when built without OpenMP).
enum class GemmThreading { kPanels, kOpenblas };

std::unique_ptr<Backend> make_omp_backend(int threads,
                                          GemmThreading gemm_threading = GemmThreading::kPanels);

#if defined(HPCML_HAS_KOKKOS)
/// Kokkos on its DefaultHostExecutionSpace (kernels/kokkos/). The first one
/// initializes Kokkos with `threads` (unless the application already did).
std::unique_ptr<Backend> make_kokkos_backend(int threads);
/// Kokkos::finalize if hpcml initialized it; idempotent.
void finalize_kokkos();
/// Kokkos version, execution space and GEMM path, for `hpcml info`.
std::string kokkos_description();
#endif

#if defined(HPCML_HAS_CUDA)
/// The cuda backend on the GPU that `placement` selects (kernels/cuda/).
std::unique_ptr<Backend> make_cuda_backend(const kernels::DevicePlacement& placement);
#endif

/// Rejects leading dimensions smaller than the stored row length, which would
/// make rows overlap. Sizes of zero are valid and need no storage.
inline void check_gemm_args(const char* backend, bool trans_a, bool trans_b, std::size_t m,
                            std::size_t n, std::size_t k, std::size_t lda, std::size_t ldb,
                            std::size_t ldc) {
  if (m == 0 || n == 0) return;
  const std::size_t a_cols = trans_a ? m : k;
  const std::size_t b_cols = trans_b ? k : n;
  const auto fail = [&](const char* what, std::size_t ld, std::size_t cols) {
    HPCML_THROW(Error, std::string("backend '") + backend + "': gemm " + what + "=" +
                           std::to_string(ld) + " is smaller than the " + std::to_string(cols) +
                           " columns of the stored matrix (m=" + std::to_string(m) +
                           ", n=" + std::to_string(n) + ", k=" + std::to_string(k) + ")");
  };
  if (k > 0 && lda < a_cols) fail("lda", lda, a_cols);
  if (k > 0 && ldb < b_cols) fail("ldb", ldb, b_cols);
  if (ldc < n) fail("ldc", ldc, n);
}

/// Labels must index a class; checked before any output is written so a bad
/// batch leaves dlogits untouched.
void check_labels(const char* backend, const std::int32_t* labels, std::size_t rows,
                  std::size_t classes);

}  // namespace hpcml::kernels::detail

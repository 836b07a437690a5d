// Measuring the GEMM rate the omp backend reaches on this machine, so a
// benchmark can put a training step's achieved GFLOP/s next to the rate its
// largest kernel could reach in isolation (same shapes, same thread count).
#pragma once

#include <cstddef>

namespace hpcml::kernels {

struct SgemmRate {
  double best_gflops = 0.0;    ///< fastest single call
  double median_gflops = 0.0;  ///< median over all timed calls
  int calls = 0;               ///< timed calls (after one untimed warm-up call)
  double seconds = 0.0;        ///< total time of the timed calls
};

/// Times C[m x n] = A[m x k] * B[k x n] (no transposes, packed leading dims)
/// on the omp backend with `threads` threads, repeating until at least
/// `min_seconds` of timed calls and at least 3 calls. GFLOP/s = 2*m*n*k / t / 1e9.
/// Sizes must be >= 1 (Error otherwise). Sets OpenBLAS's process-wide thread
/// count as any omp backend does (see docs/kernels.md, "Thread model").
SgemmRate measure_sgemm(std::size_t m, std::size_t n, std::size_t k, int threads,
                        double min_seconds = 0.3);

/// measure_sgemm(m, n, k, threads).median_gflops: the median is less sensitive
/// than the best call to other load on a shared machine.
double measure_sgemm_gflops(std::size_t m, std::size_t n, std::size_t k, int threads);

}  // namespace hpcml::kernels

// kernels_sgemm_rate: the sgemm rate of the omp backend at 1..T threads, side by
// side, for the MLP's GEMM shapes or shapes given as "m,n,k" arguments.
//   kernels_sgemm_rate [--threads T] [--seconds S] [m,n,k ...]
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "hpcml/kernels/bench_util.hpp"
#include "hpcml/kernels/factory.hpp"

namespace {

struct Shape {
  std::size_t m, n, k;
};

bool parse_shape(const std::string& s, Shape& out) {
  unsigned long m = 0, n = 0, k = 0;
  char tail = 0;
  if (std::sscanf(s.c_str(), "%lu,%lu,%lu%c", &m, &n, &k, &tail) != 3 || m == 0 || n == 0 || k == 0)
    return false;
  out = {m, n, k};
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int max_threads = 2;
  double seconds = 0.3;
  std::vector<Shape> shapes;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) {
      max_threads = std::atoi(argv[++i]);
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else {
      Shape s{};
      if (!parse_shape(arg, s)) {
        std::fprintf(stderr, "kernels_sgemm_rate: expected m,n,k (positive integers), got '%s'\n",
                     arg.c_str());
        return 2;
      }
      shapes.push_back(s);
    }
  }
  if (max_threads < 1 || seconds <= 0.0) {
    std::fprintf(stderr, "kernels_sgemm_rate: --threads must be >= 1 and --seconds > 0\n");
    return 2;
  }
  if (shapes.empty()) {
    // batch 128, 784 -> 512 -> 10: forward X*W1^T, backward dH^T*X and dH*W1, and the head
    shapes = {
        {128, 512, 784}, {512, 784, 128}, {128, 784, 512}, {128, 10, 512}, {1024, 1024, 1024}};
  }
  try {
    std::printf("BLAS: %s\n", hpcml::kernels::blas_description().c_str());
    std::printf("hardware threads: %u, timed for >= %.2f s per point, C = A*B (no transposes)\n",
                std::thread::hardware_concurrency(), seconds);
    std::printf("%6s %6s %6s %8s %12s %12s %8s %14s\n", "m", "n", "k", "threads", "median_GF/s",
                "best_GF/s", "calls", "speedup_vs_1t");
    for (const auto& s : shapes) {
      double one = 0.0;
      for (int t = 1; t <= max_threads; ++t) {
        const auto r = hpcml::kernels::measure_sgemm(s.m, s.n, s.k, t, seconds);
        if (t == 1) one = r.median_gflops;
        std::printf("%6zu %6zu %6zu %8d %12.2f %12.2f %8d %14.2f\n", s.m, s.n, s.k, t,
                    r.median_gflops, r.best_gflops, r.calls, r.median_gflops / one);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernels_sgemm_rate: %s\n", e.what());
    return 1;
  }
  return 0;
}

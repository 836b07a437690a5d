#include "hpcml/kernels/bench_util.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "hpcml/core/error.hpp"
#include "hpcml/kernels/factory.hpp"

namespace hpcml::kernels {

SgemmRate measure_sgemm(std::size_t m, std::size_t n, std::size_t k, int threads,
                        double min_seconds) {
  HPCML_REQUIRE(m >= 1 && n >= 1 && k >= 1, Error,
                "measure_sgemm: sizes must be >= 1, got m=" + std::to_string(m) +
                    " n=" + std::to_string(n) + " k=" + std::to_string(k));
  auto backend = make_backend("omp", threads);
  std::mt19937 gen(12345);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(m * k), b(k * n), c(m * n, 0.0f);
  for (auto& x : a) x = dist(gen);
  for (auto& x : b) x = dist(gen);

  const auto call = [&] {
    backend->gemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
  };
  call();  // warm-up: OpenBLAS thread start-up, page faults, caches

  // Bounded so that a tiny shape cannot loop for millions of calls.
  constexpr int kMaxCalls = 1000000;
  std::vector<double> times;
  double total = 0.0;
  while ((total < min_seconds || times.size() < 3) && times.size() < kMaxCalls) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    const auto t1 = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(t1 - t0).count();
    times.push_back(dt);
    total += dt;
  }
  std::sort(times.begin(), times.end());
  const double flops =
      2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const std::size_t mid = times.size() / 2;
  const double median_time =
      times.size() % 2 == 1 ? times[mid] : 0.5 * (times[mid - 1] + times[mid]);
  SgemmRate rate;
  // A call below the clock's resolution would give an infinite rate; clamp to 1 ns.
  rate.best_gflops = flops / std::max(times.front(), 1e-9) / 1e9;
  rate.median_gflops = flops / std::max(median_time, 1e-9) / 1e9;
  rate.calls = static_cast<int>(times.size());
  rate.seconds = total;
  return rate;
}

double measure_sgemm_gflops(std::size_t m, std::size_t n, std::size_t k, int threads) {
  return measure_sgemm(m, n, k, threads).median_gflops;
}

}  // namespace hpcml::kernels

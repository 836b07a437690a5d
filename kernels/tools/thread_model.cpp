// kernels_thread_model: why the omp backend runs GEMM threads in OpenMP panels
// instead of OpenBLAS's own pool. For each GEMM threading mode it times, side
// by side in one run, a GEMM alone, elementwise kernels alone, and the two
// alternating as in a training step (median wall time of repeated calls, in
// microseconds), plus the process CPU time per alternating step: CPU time well
// above wall time x busy threads means threads spin while they wait.
//   kernels_thread_model [--threads T] [--reps R] [--mode panels|openblas|both]
// Run each mode in its own process for clean numbers: OpenBLAS's worker
// threads, once started by the openblas mode, outlive its backend.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "../src/backends.hpp"

namespace {

template <class F>
double median_us(int reps, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 51;
  std::string which = "both";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (arg == "--reps")
      reps = std::atoi(argv[i + 1]);
    else if (arg == "--mode")
      which = argv[i + 1];
  }
  if (threads < 1 || reps < 1 || (which != "both" && which != "panels" && which != "openblas")) {
    std::fprintf(stderr,
                 "usage: kernels_thread_model [--threads T>=1] [--reps R>=1] "
                 "[--mode panels|openblas|both]\n");
    return 2;
  }
  using hpcml::kernels::detail::GemmThreading;
  // The MLP's first layer: batch 128, 784 -> 512, and its parameter update.
  const std::size_t m = 128, n = 512, k = 784, params = n * k;
  std::vector<float> x(m * k, 0.01f), w(params, 0.02f), h(m * n), bias(n, 0.1f), g(params, 0.1f),
      v(params, 0.0f);
  std::printf(
      "threads=%d, gemm %zux%zux%zu (X*W^T), elementwise = add_bias+relu on %zux%zu and "
      "sgd_momentum on %zu floats; median of %d, microseconds\n",
      threads, m, n, k, m, n, params, reps);
  std::printf("%-10s %10s %12s %14s %14s %16s\n", "gemm_mode", "gemm", "elementwise", "alternating",
              "sum_of_parts", "alt_cpu_per_call");
  for (const auto mode : {GemmThreading::kPanels, GemmThreading::kOpenblas}) {
    const char* mode_name = mode == GemmThreading::kPanels ? "panels" : "openblas";
    if (which != "both" && which != mode_name) continue;
    auto be = hpcml::kernels::detail::make_omp_backend(threads, mode);
    const auto gemm = [&] {
      be->gemm(false, true, m, n, k, 1.0f, x.data(), k, w.data(), k, 0.0f, h.data(), n);
    };
    const auto elementwise = [&] {
      be->add_bias(h.data(), bias.data(), m, n);
      be->relu(h.data(), m * n);
      be->sgd_momentum(w.data(), g.data(), v.data(), params, 0.0f, 0.9f, 0.0f);
    };
    gemm();
    const double tg = median_us(reps, gemm);
    const double te = median_us(reps, elementwise);
    const double cpu0 = cpu_us();
    const double tb = median_us(reps, [&] {
      gemm();
      elementwise();
    });
    const double alt_cpu = (cpu_us() - cpu0) / reps;
    std::printf("%-10s %10.0f %12.0f %14.0f %14.0f %16.0f\n", mode_name, tg, te, tb, tg + te,
                alt_cpu);
  }
  return 0;
}

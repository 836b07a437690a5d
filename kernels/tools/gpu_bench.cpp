// Training-step benchmark of the cuda backend against omp (docs/gpu.md;
// scripts/device-check.sh runs it). Synthetic data, no MPI, no HDF5: it runs
// on a GPU machine that has neither. For each model, batch and precision it
// prints samples/s, the fraction of the step inside cuBLAS (cudaEvent timing),
// the GEMM TFLOP/s against the GPU's peak, and against cuBLAS's own rate for
// the same GEMM shapes run alone (the issue's >= 50 % target, fp32), then a
// short bf16/fp16 vs fp32 accuracy comparison on a separable synthetic task.
//
//   kernels_gpu_bench [--cpu-only] [--quick] [--omp-threads N]
//
// --cpu-only runs the omp rows alone (checks the tool without a GPU); without
// it and without a device it exits 2 with "no CUDA device: ...".
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hpcml/core/backend.hpp"
#include "hpcml/kernels/cuda.hpp"
#include "hpcml/kernels/factory.hpp"
#include "mlp_step.hpp"

namespace {

using hpcml::Backend;
using hpcml::BackendArray;
using hpcml::BatchView;
using hpcml::GemmPrecision;
using hpcml::kernels::tools::MlpStep;
using hpcml::kernels::tools::synthetic_batch;

struct Model {
  const char* name;
  std::vector<std::size_t> dims;
};

const char* precision_name(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::kFp32:
      return "fp32";
    case GemmPrecision::kTf32:
      return "tf32";
    case GemmPrecision::kBf16:
      return "bf16";
    case GemmPrecision::kFp16:
      return "fp16";
  }
  return "?";
}

// Dense peaks of an H200 SXM (NVIDIA's datasheet): FP32 67 TFLOP/s (CUDA
// cores), TF32 495, BF16/FP16 989 (tensor cores, without sparsity).
double peak_tflops(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::kFp32:
      return 67.0;
    case GemmPrecision::kTf32:
      return 495.0;
    default:
      return 989.0;
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The GEMMs of one MlpStep, alone, on scratch buffers of the same shapes.
double gemm_only_seconds(Backend& be, const std::vector<std::size_t>& d, std::size_t batch,
                         int iters) {
  std::size_t widest = 0;
  for (std::size_t x : d) widest = std::max(widest, x);
  BackendArray<float> a(be, batch * widest), w(be, widest * widest), c(be, batch * widest),
      g(be, widest * widest);
  auto once = [&] {
    for (std::size_t l = 0; l + 1 < d.size(); ++l) {
      be.gemm(false, false, batch, d[l + 1], d[l], 1.0f, a.data(), d[l], w.data(), d[l + 1], 0.0f,
              c.data(), d[l + 1]);
      be.gemm(true, false, d[l], d[l + 1], batch, 1.0f, a.data(), d[l], c.data(), d[l + 1], 0.0f,
              g.data(), d[l + 1]);
      if (l > 0)
        be.gemm(false, true, batch, d[l], d[l + 1], 1.0f, c.data(), d[l + 1], w.data(), d[l + 1],
                0.0f, a.data(), d[l]);
    }
  };
  once();
  be.synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) once();
  be.synchronize();
  return seconds_since(t0) / iters;
}

struct Row {
  double samples_per_s, step_ms, cublas_fraction, tflops, gemm_alone_tflops;
};

Row measure(Backend& be, const Model& m, std::size_t batch, GemmPrecision p, int steps) {
  be.set_gemm_precision(p);
  const bool cuda = be.name() == "cuda";
  MlpStep mlp(be, m.dims, batch, 1);
  std::vector<hpcml::Batch> batches(2);
  for (std::size_t i = 0; i < batches.size(); ++i)
    synthetic_batch(batch, m.dims.front(), m.dims.back(), static_cast<std::uint32_t>(i),
                    batches[i].x, batches[i].y);
  auto run = [&](int n) {
    BatchView v = be.upload_batch(batches[0]);
    for (int s = 0; s < n; ++s) {
      const auto& next = batches[static_cast<std::size_t>(s + 1) % batches.size()];
      be.prefetch_batch(next);  // overlaps this step on the copy stream
      mlp.step(v.x, v.y, 0.01f);
      v = be.upload_batch(next);
    }
    be.synchronize();
  };
  run(2);  // warm-up: cuBLAS heuristics, allocations
  if (cuda) hpcml::kernels::cuda_set_gemm_timing(be, true);
  const auto t0 = std::chrono::steady_clock::now();
  run(steps);
  const double seconds = seconds_since(t0);
  Row r{};
  r.step_ms = seconds / steps * 1e3;
  r.samples_per_s = static_cast<double>(batch) * steps / seconds;
  r.tflops = mlp.gemm_flops() * steps / seconds / 1e12;
  if (cuda) {
    r.cublas_fraction = hpcml::kernels::cuda_take_gemm_ms(be) / 1e3 / seconds;
    hpcml::kernels::cuda_set_gemm_timing(be, false);
  }
  r.gemm_alone_tflops = mlp.gemm_flops() / gemm_only_seconds(be, m.dims, batch, steps) / 1e12;
  be.set_gemm_precision(GemmPrecision::kFp32);
  return r;
}

// Mean accuracy over the last 50 of 300 steps, each on a fresh batch (so it is
// measured before the step learns from it).
double accuracy(Backend& be, GemmPrecision p, int steps) {
  be.set_gemm_precision(p);
  MlpStep mlp(be, {784, 512, 256, 10}, 256, 3);
  hpcml::Batch b;
  std::size_t hits = 0, seen = 0;
  for (int s = 0; s < steps; ++s) {
    synthetic_batch(256, 784, 10, static_cast<std::uint32_t>(1000 + s), b.x, b.y);
    // Harder than the benchmark data: shrink the signal so accuracy is not 100 %.
    for (auto& x : b.x) x *= 0.05f;
    const BatchView v = be.upload_batch(b);
    std::size_t correct = 0;
    mlp.step(v.x, v.y, 0.02f, &correct);
    if (s >= steps - 50) {
      hits += correct;
      seen += 256;
    }
  }
  be.set_gemm_precision(GemmPrecision::kFp32);
  return 100.0 * static_cast<double>(hits) / static_cast<double>(seen);
}

}  // namespace

int main(int argc, char** argv) {
  bool cpu_only = false, quick = false;
  int omp_threads = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--cpu-only")) {
      cpu_only = true;
    } else if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--omp-threads") && i + 1 < argc) {
      omp_threads = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--cpu-only] [--quick] [--omp-threads N]\n", argv[0]);
      return 2;
    }
  }
  if (omp_threads < 1) omp_threads = 1;
  try {
    const auto info = hpcml::kernels::cuda_info();
    std::unique_ptr<Backend> cuda;
    if (!cpu_only) {
      if (!info.compiled) {
        std::fprintf(stderr, "no CUDA device: the cuda backend is not compiled into this build\n");
        return 2;
      }
      if (info.devices.empty()) {
        std::fprintf(stderr, "no CUDA device: %s\n", info.error.c_str());
        return 2;
      }
      cuda = hpcml::kernels::make_backend("cuda", 1);
      const auto& d = info.devices[0];
      std::printf("device: %s, compute capability %d.%d, %d SMs, %.1f GiB, runtime %s, driver %s\n",
                  d.name.c_str(), d.cc_major, d.cc_minor, d.multiprocessors,
                  static_cast<double>(d.memory_bytes) / (1 << 30),
                  hpcml::kernels::cuda_version_string(info.runtime_version).c_str(),
                  hpcml::kernels::cuda_version_string(info.driver_version).c_str());
    }
    auto omp = hpcml::kernels::make_backend("omp", omp_threads);
    std::printf("omp backend: %d threads\n", omp_threads);
    std::printf(
        "peak used for %%peak: H200 SXM dense fp32 67, tf32 495, bf16/fp16 989 TFLOP/s\n\n");

    const std::vector<Model> models = {{"mlp-784-512-256-10", {784, 512, 256, 10}},
                                       {"mlp-1024-4096-4096-10", {1024, 4096, 4096, 10}}};
    std::vector<std::size_t> batches = {128, 512, 1024, 4096};
    if (quick) batches = {128};
    std::printf("%-22s %-7s %6s %-5s %12s %9s %8s %8s %6s %11s %7s\n", "model", "backend", "batch",
                "prec", "samples/s", "step_ms", "cublas%", "TFLOP/s", "%peak", "gemm-alone",
                "ratio");
    for (const auto& m : models) {
      for (std::size_t batch : batches) {
        if (cuda) {
          for (auto p : {GemmPrecision::kFp32, GemmPrecision::kTf32, GemmPrecision::kBf16,
                         GemmPrecision::kFp16}) {
            const Row r = measure(*cuda, m, batch, p, quick ? 3 : 20);
            std::printf("%-22s %-7s %6zu %-5s %12.0f %9.3f %7.1f%% %8.2f %5.1f%% %11.2f %6.1f%%\n",
                        m.name, "cuda", batch, precision_name(p), r.samples_per_s, r.step_ms,
                        100 * r.cublas_fraction, r.tflops, 100 * r.tflops / peak_tflops(p),
                        r.gemm_alone_tflops, 100 * r.tflops / r.gemm_alone_tflops);
            std::fflush(stdout);
          }
        }
        // omp: the default model at every batch, the large one at 1024 only (seconds a step).
        if (m.dims[1] > 1024 && batch != 1024 && !quick) continue;
        const Row r = measure(*omp, m, batch, GemmPrecision::kFp32, m.dims[1] > 1024 ? 2 : 5);
        std::printf("%-22s %-7s %6zu %-5s %12.0f %9.3f %8s %8.3f %6s %11.3f %6.1f%%\n", m.name,
                    "omp", batch, "fp32", r.samples_per_s, r.step_ms, "-", r.tflops, "-",
                    r.gemm_alone_tflops, 100 * r.tflops / r.gemm_alone_tflops);
        std::fflush(stdout);
      }
    }
    std::printf(
        "\naccuracy on a synthetic 10-class task (784-512-256-10, batch 256, %d steps, "
        "mean of the last 50 batches before each learns from it):\n",
        quick ? 60 : 300);
    const int steps = quick ? 60 : 300;
    if (cuda) {
      for (auto p : {GemmPrecision::kFp32, GemmPrecision::kBf16, GemmPrecision::kFp16})
        std::printf("  cuda %-5s %6.2f %%\n", precision_name(p), accuracy(*cuda, p, steps));
    }
    std::printf("  omp  fp32  %6.2f %%\n", accuracy(*omp, GemmPrecision::kFp32, steps));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernels_gpu_bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

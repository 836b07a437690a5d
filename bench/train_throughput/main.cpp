// bench/train_throughput: the default model trained for a fixed number of
// steps on 1 rank and on 2 ranks (1 thread each, equal per-rank batch), in one
// run, side by side with the OpenBLAS sgemm rate measured in the same run.
//
//   build/bench/train_throughput/train_throughput [--data DIR] [--steps N (400)]
//                                                 [--batch B (128)] [--repeats K (5)]
//
// Prints samples/s for each rank count, the parallel efficiency
// E(2) = T(1) / (2 T(2)) where T(N) is the time N ranks take for the same
// number of samples per rank (equivalently E(2) = X(2) / (2 X(1)) for
// throughputs X), and the training step's achieved GFLOP/s against sgemm.
// Ranks are bound to cores (mpiexec -bind-to core), so in both configurations
// each rank, with its progress thread, owns exactly one core (and, with no core
// spare, data.prefetch = "auto" reads batches on the training thread): unbound,
// the 1-rank baseline would get the idle second core for a reader thread for
// free and the comparison would not be per processing element. Configurations
// are interleaved run by run (best of --repeats by samples/s); a second E(2)
// from the median step times is printed as a check that is robust to the
// host's slow phases.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hpcml/analysis/scaling.hpp"
#include "hpcml/kernels/bench_util.hpp"

namespace fs = std::filesystem;

namespace {

int run(const std::string& cmd, bool quiet = true) {
  std::string full = quiet ? cmd + " > /dev/null 2>&1" : cmd;
  int st = std::system(full.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

struct Point {
  double samples_per_s = 0;
  double step_s = 0;
  double compute_s = 0;
  double comm_s = 0;
  double io_s = 0;
  double flops_per_sample = 0;
};

Point train(int ranks, const std::string& data, int steps, int batch, const std::string& dir,
            const std::string& name) {
  std::string cmd = std::string(HPCML_MPIEXEC) + " -bind-to core -n " + std::to_string(ranks) +
                    " " + HPCML_EXE + " train " + HPCML_DEFAULT_CONFIG +
                    " --set data.path=" + data +
                    " --set data.verify=false --set train.evaluate=false --set parallel.threads=1" +
                    " --set train.batch_size=" + std::to_string(batch) +
                    " --set train.max_steps=" + std::to_string(steps) + " --set run.dir=" + dir +
                    " --set run.name=" + name + " --set run.progress=never";
  if (run(cmd) != 0) {
    std::fprintf(stderr, "train_throughput: failed: %s\n", cmd.c_str());
    std::exit(1);
  }
  std::ifstream in(dir + "/" + name + "/summary.json");
  auto j = nlohmann::json::parse(in);
  Point p;
  p.samples_per_s = j["samples_per_s"];
  p.step_s = j["step_s_median"];
  p.compute_s = j["compute_s_per_step"];
  p.comm_s = j["comm_s_per_step"];
  p.io_s = j["io_s_per_step"];
  p.flops_per_sample = j["train_flops_per_sample"];
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "data/fashion-mnist";
  int steps = 400, batch = 128, repeats = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--data")
      data = argv[i + 1];
    else if (a == "--steps")
      steps = std::atoi(argv[i + 1]);
    else if (a == "--batch")
      batch = std::atoi(argv[i + 1]);
    else if (a == "--repeats")
      repeats = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--data DIR] [--steps N] [--batch B] [--repeats K]\n",
                   argv[0]);
      return 2;
    }
  }
  if (steps < 1 || batch < 1 || repeats < 1) {
    std::fprintf(stderr, "train_throughput: --steps, --batch and --repeats must be >= 1\n");
    return 2;
  }
  if (!fs::exists(fs::path(data) / "manifest.json")) {
    std::printf("sharding Fashion-MNIST into %s ...\n", data.c_str());
    if (run(std::string(HPCML_EXE) + " shard fashion-mnist --out " + data) != 0) {
      std::fprintf(stderr, "train_throughput: could not shard Fashion-MNIST into %s\n",
                   data.c_str());
      return 1;
    }
  }
  const std::string dir =
      (fs::temp_directory_path() / ("hpcml-bench-" + std::to_string(getpid()))).string();

  std::printf(
      "train_throughput: default MLP 784-512-256-10, batch %d per rank, %d steps, 1 thread per "
      "rank, best of %d\n",
      batch, steps, repeats);
  // Interleave the configurations so slow phases of a shared machine hit both.
  Point best[2];
  std::vector<double> medians[2];  // each run's median step time
  for (int r = 0; r < repeats; ++r) {
    for (int k = 0; k < 2; ++k) {
      Point p = train(k + 1, data, steps, batch, dir,
                      "r" + std::to_string(k + 1) + "-" + std::to_string(r));
      if (p.samples_per_s > best[k].samples_per_s) best[k] = p;
      medians[k].push_back(p.step_s);
    }
  }
  fs::remove_all(dir);
  const auto rate =
      hpcml::kernels::measure_sgemm(static_cast<std::size_t>(batch), 512, 784, 1, 1.0);

  std::printf("\n%-8s %14s %12s %12s %10s %10s\n", "ranks", "samples/s", "step ms", "compute ms",
              "comm ms", "io ms");
  for (int k = 0; k < 2; ++k) {
    std::printf("%-8d %14.0f %12.3f %12.3f %10.3f %10.3f\n", k + 1, best[k].samples_per_s,
                1e3 * best[k].step_s, 1e3 * best[k].compute_s, 1e3 * best[k].comm_s,
                1e3 * best[k].io_s);
  }
  const double e2 = best[1].samples_per_s / (2.0 * best[0].samples_per_s);
  const double flops_step = best[0].flops_per_sample * batch;
  const double step_gflops = flops_step / best[0].step_s / 1e9;
  const double compute_gflops = flops_step / best[0].compute_s / 1e9;
  std::printf("\nparallel efficiency E(2) = X(2)/(2 X(1)) = %.3f   (target >= 0.9)\n", e2);
  // A second estimator, robust to the host's slow phases: the median over
  // runs of each run's median step time (equal per-rank batch, so E = T1/T2).
  const double t1 = hpcml::analysis::median(medians[0]);
  const double t2 = hpcml::analysis::median(medians[1]);
  std::printf("by median step time: T(1) = %.3f ms, T(2) = %.3f ms, E(2) = %.3f\n", 1e3 * t1,
              1e3 * t2, t1 / t2);
  std::printf("sgemm %dx512x784, 1 thread: %.1f GFLOP/s median, %.1f best (%d calls)\n", batch,
              rate.median_gflops, rate.best_gflops, rate.calls);
  std::printf(
      "training step (1 rank): %.1f GFLOP/s = %.0f%% of median sgemm (target >= 70%%); "
      "compute part alone %.1f GFLOP/s = %.0f%%\n",
      step_gflops, 100 * step_gflops / rate.median_gflops, compute_gflops,
      100 * compute_gflops / rate.median_gflops);
  return 0;
}

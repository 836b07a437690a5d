// `hpcml bench`: the group of benchmark subcommands (one file each).
#include <CLI/CLI.hpp>

#include "commands.hpp"

namespace hpcml::jobs {

void add_bench(CLI::App& app, Action& action) {
  auto* bench = app.add_subcommand("bench", "Benchmarks that run under mpiexec/srun");
  bench->require_subcommand(1);
  add_bench_allreduce(*bench, action);
  add_bench_synthetic(*bench, action);
  add_bench_io(*bench, action);
}

}  // namespace hpcml::jobs

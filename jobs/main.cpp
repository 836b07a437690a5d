// hpcml: one SPMD executable, one subcommand per file in jobs/.
//
// Error policy (see docs/architecture.md): every failure surfaces as an
// hpcml::Error. A collective error (all ranks agreed on it) is printed once by
// rank 0 and every rank exits 1. Any other error is printed with the rank that
// raised it and the job is aborted with MPI_Abort so no rank is left waiting.
// Exit statuses: core/include/hpcml/core/exit_codes.hpp (docs/user-guide.md).
#include <mpi.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "commands.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/exit_codes.hpp"

namespace {

int world_rank_or_minus_one() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return -1;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size_or_one() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return 1;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

int report_and_exit(const std::string& message, bool collective) {
  const int rank = world_rank_or_minus_one();
  const int size = world_size_or_one();
  if (rank < 0 || size == 1) {
    std::fprintf(stderr, "hpcml: error: %s\n", message.c_str());
    return hpcml::exit_code::kError;
  }
  if (collective) {
    if (rank == 0) std::fprintf(stderr, "hpcml: error: %s\n", message.c_str());
    std::fflush(stderr);
    MPI_Finalize();
    return hpcml::exit_code::kError;
  }
  hpcml::comm::abort_job("hpcml: error on rank " + std::to_string(rank) + " of " +
                             std::to_string(size) + ": " + message + " (aborting the job)",
                         hpcml::exit_code::kError);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hpcml " HPCML_VERSION
               " - data-parallel training, Slurm launching and scaling studies"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("hpcml ") + HPCML_VERSION);

  hpcml::jobs::Action action;
  hpcml::jobs::add_info(app, action);
  hpcml::jobs::add_shard(app, action);
  hpcml::jobs::add_train(app, action);
  hpcml::jobs::add_bench(app, action);
  hpcml::jobs::add_submit(app, action);
  hpcml::jobs::add_sweep(app, action);
  hpcml::jobs::add_scale(app, action);
  hpcml::jobs::add_report(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  int code = hpcml::exit_code::kError;
  try {
    code = action ? action() : hpcml::exit_code::kOk;
  } catch (const hpcml::Error& e) {
    return report_and_exit(e.what(), e.collective());
  } catch (const std::exception& e) {
    return report_and_exit(std::string("internal error: ") + e.what(), false);
  }
  return code;
}

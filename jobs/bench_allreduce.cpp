// `hpcml bench allreduce`: all-reduce bandwidth per algorithm, in the manner of
// nccl-tests (comm/bench.hpp runs the sweep and formats the table). Run it
// under mpiexec/srun; every rank takes part, rank 0 prints.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "hpcml/comm/bench.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/comm/nccl.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"
#include "layout.hpp"

namespace hpcml::jobs {

namespace {

struct BenchArgs {
  std::string transport = "mpi";  // mpi (host buffers) or nccl (device buffers)
  std::string algo = "all";
  std::string min_bytes = "4";
  std::string max_bytes = "256M";
  int factor = 2;
  std::string dtype = "float";
  std::string op = "sum";
  double target_ms = 40;
  int reps = 5;
  bool check = true;
  std::string shm_slot_bytes;  // "" = CommOptions default
  std::string ring_piece_bytes;
  std::string buffers = "shared";  // shared (Communicator::allocate_shared) or private
};

int run(const BenchArgs& args) {
  comm::MpiEnvironment env(MPI_THREAD_MULTIPLE);
  comm::Communicator comm = comm::Communicator::world();
  comm::CommOptions options = comm.options();
  comm::AllreduceBenchSpec spec;
  // Every rank parses the same arguments; agree() makes a bad one a single
  // error line from rank 0 and a clean exit on every rank.
  comm::agree(comm, [&] {
    if (!args.shm_slot_bytes.empty())
      options.shm_slot_bytes = parse_byte_count(args.shm_slot_bytes, "--shm-slot-bytes");
    if (!args.ring_piece_bytes.empty())
      options.ring_piece_bytes = parse_byte_count(args.ring_piece_bytes, "--ring-piece-bytes");
    spec.min_bytes = parse_byte_count(args.min_bytes, "--min-bytes");
    spec.max_bytes = parse_byte_count(args.max_bytes, "--max-bytes");
    const std::size_t elem = args.dtype == "double" ? sizeof(double) : sizeof(float);
    HPCML_REQUIRE(spec.min_bytes >= elem && spec.min_bytes <= spec.max_bytes, ConfigError,
                  "--min-bytes/--max-bytes: need " + std::to_string(elem) + " <= min <= max, got " +
                      args.min_bytes + " and " + args.max_bytes);
    HPCML_REQUIRE(args.factor >= 2, ConfigError, "--factor: expected an integer >= 2");
    spec.factor = args.factor;
    spec.op = comm::parse_reduce_op(args.op, "--op");
    if (comm::choose_transport(comm::parse_transport_choice(args.transport, "--transport"), "",
                               comm::Codec::kNone, nullptr,
                               "--transport nccl: ") == comm::Transport::kNccl) {
      // Device buffers: ncclAllReduce against MPI staged through host memory.
      if (args.algo == "all")
        spec.algos = {comm::Algo::kNccl, comm::Algo::kMpi};
      else if (args.algo == "nccl" || args.algo == "mpi")
        spec.algos = {comm::parse_algo(args.algo, "--algo")};
      else
        HPCML_THROW(ConfigError, "--algo " + args.algo +
                                     ": with --transport nccl the rows are all, nccl or mpi "
                                     "(MPI staged through host memory)");
    } else {
      spec.algos = comm::parse_bench_algos(args.algo, "--algo");
      if (spec.algos.size() == 1 && spec.algos[0] == comm::Algo::kNccl)
        HPCML_THROW(ConfigError, "--algo nccl: runs on device buffers: add --transport nccl");
    }
  });
  comm.set_options(options);
  spec.target_ms = args.target_ms;
  spec.reps = args.reps;
  spec.check = args.check;
  spec.shared_buffers = args.buffers == "shared";

  const int rank = comm.rank(), ranks = comm.size();
  const int nodes = comm.node_count();  // collective
  auto print = [rank](const std::string& text) {
    if (rank != 0) return;
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
  };
  auto on_row = [&](const auto& row) { print(comm::format_allreduce_bench_row(row, ranks)); };
  std::vector<comm::AllreduceBenchRow> rows;
  if (args.transport == "nccl") {
    comm::Communicator local = comm.split_shared();
    print(comm::nccl_bench_header(comm, nodes, args.dtype, spec,
                                  comm::gpu_for_local_rank(local.rank())));
    const int device = nccl_device(local, nullptr);
    rows = args.dtype == "double"
               ? comm::run_nccl_allreduce_bench<double>(comm, local, spec, on_row, device)
               : comm::run_nccl_allreduce_bench<float>(comm, local, spec, on_row, device);
  } else {
    print(comm::allreduce_bench_header(comm, nodes, args.dtype, spec));
    rows = args.dtype == "double" ? comm::run_allreduce_bench<double>(comm, spec, on_row)
                                  : comm::run_allreduce_bench<float>(comm, spec, on_row);
  }
  print(comm::allreduce_bench_summary(rows, spec, ranks));
  std::size_t wrong = 0;
  for (const auto& r : rows) wrong += r.oop_wrong + r.inp_wrong;
  return wrong ? 1 : 0;
}

}  // namespace

void add_bench_allreduce(CLI::App& app, Action& action) {
  auto args = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand(
      "allreduce", "All-reduce bandwidth per algorithm (nccl-tests style); run under mpiexec");
  cmd->add_option("--transport", args->transport,
                  "mpi: host buffers; nccl: device buffers, ncclAllReduce against MPI staged "
                  "through host memory")
      ->check(CLI::IsMember({"mpi", "nccl"}))
      ->capture_default_str();
  cmd->add_option("--algo", args->algo,
                  "all, auto, mpi, ring, recursive_doubling, hierarchical (--transport nccl: "
                  "all, nccl, mpi)")
      ->capture_default_str();
  cmd->add_option("--min-bytes,-b", args->min_bytes, "Smallest message (4, 64K, 1M, ...)")
      ->capture_default_str();
  cmd->add_option("--max-bytes,-e", args->max_bytes, "Largest message")->capture_default_str();
  cmd->add_option("--factor,-f", args->factor, "Size multiplier between rows")
      ->capture_default_str();
  cmd->add_option("--dtype", args->dtype, "float or double")
      ->check(CLI::IsMember({"float", "double"}))
      ->capture_default_str();
  cmd->add_option("--op", args->op, "sum, average, max, min")->capture_default_str();
  cmd->add_option("--target-ms", args->target_ms, "Time per measurement batch")
      ->capture_default_str();
  cmd->add_option("--reps", args->reps, "Batches per measurement (best is kept)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_flag("!--no-check", args->check, "Skip the correctness check");
  cmd->add_option("--shm-slot-bytes", args->shm_slot_bytes,
                  "Staging segment of the shared-memory algorithm (default 512K)");
  cmd->add_option("--ring-piece-bytes", args->ring_piece_bytes,
                  "Pipelining unit of the ring (default 256K)");
  cmd->add_option("--buffers", args->buffers,
                  "shared: node-shared buffers (Communicator::allocate_shared), private: "
                  "ordinary memory")
      ->check(CLI::IsMember({"shared", "private"}))
      ->capture_default_str();
  cmd->callback([args, &action] { action = [args]() -> int { return run(*args); }; });
}

}  // namespace hpcml::jobs

// `hpcml bench allreduce`: all-reduce bandwidth per algorithm, in the manner of
// nccl-tests. Run it under mpiexec/srun; every rank takes part, rank 0 prints.
//
// For each size (bytes, doubling by --factor from --min-bytes to --max-bytes)
// and each algorithm it measures the out-of-place and in-place all-reduce:
// time per call (the slowest rank's mean over the best of --reps batches, the
// batches of all algorithms and the memcpy interleaved round by round),
// algbw = bytes/time, busbw = algbw * 2(n-1)/n (GB = 1e9), and #wrong, the
// number of elements differing from the exactly known result (inputs are
// multiples of 1/8, so sums are exact in any order). A plain memcpy of the same
// size, timed on every rank at once, is printed as the memory ceiling.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "commands.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::jobs {

namespace {

using comm::Algo;
using comm::Communicator;
using comm::ReduceOp;

struct BenchArgs {
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

std::size_t parse_bytes(const std::string& text, const char* flag) {
  std::size_t pos = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(text, &pos);
  } catch (const std::exception&) {
    HPCML_THROW(ConfigError, std::string(flag) +
                                 ": expected a byte count like 4, 64K, 256M, got '" + text + "'");
  }
  const std::string s = text.substr(pos);
  if (s == "K" || s == "k")
    n <<= 10;
  else if (s == "M" || s == "m")
    n <<= 20;
  else if (s == "G" || s == "g")
    n <<= 30;
  else if (!s.empty() && s != "B")
    HPCML_THROW(ConfigError, std::string(flag) + ": unknown size suffix in '" + text + "'");
  return static_cast<std::size_t>(n);
}

std::string human(std::size_t bytes) {
  char b[32];
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0)
    std::snprintf(b, sizeof b, "%zuM", bytes >> 20);
  else if (bytes >= 1024 && bytes % 1024 == 0)
    std::snprintf(b, sizeof b, "%zuK", bytes >> 10);
  else
    std::snprintf(b, sizeof b, "%zu", bytes);
  return b;
}

template <class T>
T pattern(int rank, std::size_t i) {
  return static_cast<T>(static_cast<int>((static_cast<std::size_t>(rank) * 7 + i * 13) % 17) - 8) /
         T(8);
}

double max_over_ranks(double v) {
  double m = 0;
  MPI_Allreduce(&v, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return m;
}

struct Result {
  double time_us = 0;
  std::size_t wrong = 0;
};

template <class T>
class Bench {
 public:
  Bench(Communicator& comm, const BenchArgs& args, ReduceOp op, std::size_t max_count)
      : comm_(comm), args_(args), op_(op) {
    // Every algorithm, MPI_Allreduce included, runs on the same two buffers.
    if (args.buffers == "shared") {
      shared_send_ = comm.allocate_shared(max_count * sizeof(T));
      shared_recv_ = comm.allocate_shared(max_count * sizeof(T));
      send_all_ = shared_send_.as<T>().data();
      recv_all_ = shared_recv_.as<T>().data();
    } else {
      private_send_.resize(max_count);
      private_recv_.resize(max_count);
      send_all_ = private_send_.data();
      recv_all_ = private_recv_.data();
    }
  }

  // Seconds per call of each function: iterations sized from one timed call
  // (the same on all ranks), then `reps` rounds that run one batch of every
  // function in turn, so a slow phase of a shared machine hits all of them
  // alike; per function the best batch mean of the slowest rank.
  std::vector<double> time(const std::vector<std::function<void()>>& fns) {
    std::vector<int> iters;
    for (const auto& fn : fns) {
      MPI_Barrier(MPI_COMM_WORLD);
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      const double once = max_over_ranks(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      iters.push_back(
          static_cast<int>(std::clamp(args_.target_ms * 1e-3 / std::max(once, 1e-7), 1.0, 2000.0)));
    }
    std::vector<double> best(fns.size(), 1e300);
    for (int r = 0; r < args_.reps; ++r) {
      for (std::size_t k = 0; k < fns.size(); ++k) {
        MPI_Barrier(MPI_COMM_WORLD);
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < iters[k]; ++i) fns[k]();
        const double t =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters[k];
        best[k] = std::min(best[k], max_over_ranks(t));
      }
    }
    return best;
  }

  void prepare(std::size_t count) {
    count_ = count;
    send_ = {send_all_, count};
    recv_ = {recv_all_, count};
    expect_.resize(count);
    const int n = comm_.size();
    for (std::size_t i = 0; i < count; ++i) {
      send_[i] = pattern<T>(comm_.rank(), i);
      T acc = pattern<T>(0, i);
      for (int p = 1; p < n; ++p) {
        const T v = pattern<T>(p, i);
        acc = op_ == ReduceOp::max   ? std::max(acc, v)
              : op_ == ReduceOp::min ? std::min(acc, v)
                                     : acc + v;
      }
      expect_[i] = op_ == ReduceOp::average ? acc / static_cast<T>(n) : acc;
    }
  }

  std::size_t wrong(std::span<const T> got) const {
    std::size_t w = 0;
    for (std::size_t i = 0; i < count_; ++i) w += std::memcmp(&got[i], &expect_[i], sizeof(T)) != 0;
    std::size_t total = 0;
    MPI_Allreduce(&w, &total, 1, MPI_UNSIGNED_LONG, MPI_SUM, MPI_COMM_WORLD);
    return total;
  }

  /// Elements wrong after one out-of-place call (summed over ranks).
  std::size_t check_out_of_place(Algo algo) {
    std::fill(recv_.begin(), recv_.end(), T(0));
    comm_.allreduce(send_.data(), recv_.data(), count_, op_, algo);
    return args_.check ? wrong(recv_) : 0;
  }
  std::size_t check_in_place(Algo algo) {
    std::copy(send_.begin(), send_.end(), recv_.begin());
    comm_.allreduce(recv_.data(), recv_.data(), count_, op_, algo);
    return args_.check ? wrong(recv_) : 0;
  }
  std::function<void()> out_of_place(Algo algo) {
    return [this, algo] { comm_.allreduce(send_.data(), recv_.data(), count_, op_, algo); };
  }
  // Values keep growing call after call (same sign on all ranks): harmless.
  std::function<void()> in_place(Algo algo) {
    return [this, algo] { comm_.allreduce(recv_.data(), recv_.data(), count_, op_, algo); };
  }
  std::function<void()> memcpy_fn() {
    return [this] { std::memcpy(recv_.data(), send_.data(), count_ * sizeof(T)); };
  }

 private:
  Communicator& comm_;
  const BenchArgs& args_;
  ReduceOp op_;
  std::size_t count_ = 0;
  comm::SharedBuffer shared_send_, shared_recv_;
  std::vector<T> private_send_, private_recv_;
  T* send_all_ = nullptr;
  T* recv_all_ = nullptr;
  std::span<T> send_, recv_;
  std::vector<T> expect_;
};

template <class T>
int run(const BenchArgs& args) {
  comm::MpiEnvironment env(MPI_THREAD_MULTIPLE);
  Communicator comm = Communicator::world();
  const int n = comm.size(), rank = comm.rank();
  comm::CommOptions options = comm.options();
  if (!args.shm_slot_bytes.empty())
    options.shm_slot_bytes = parse_bytes(args.shm_slot_bytes, "--shm-slot-bytes");
  if (!args.ring_piece_bytes.empty())
    options.ring_piece_bytes = parse_bytes(args.ring_piece_bytes, "--ring-piece-bytes");
  comm.set_options(options);
  const std::size_t lo = parse_bytes(args.min_bytes, "--min-bytes");
  const std::size_t hi = parse_bytes(args.max_bytes, "--max-bytes");
  HPCML_REQUIRE(lo >= sizeof(T) && lo <= hi, ConfigError,
                "--min-bytes/--max-bytes: need " + std::to_string(sizeof(T)) +
                    " <= min <= max, got " + args.min_bytes + " and " + args.max_bytes);
  HPCML_REQUIRE(args.factor >= 2, ConfigError, "--factor: expected an integer >= 2");
  std::vector<Algo> algos;
  if (args.algo == "all") {
    algos.push_back(Algo::automatic);
    for (Algo a : comm::concrete_algos()) algos.push_back(a);
  } else {
    algos.push_back(comm::parse_algo(args.algo, "--algo"));
  }
  ReduceOp op = ReduceOp::sum;
  if (args.op == "average")
    op = ReduceOp::average;
  else if (args.op == "max")
    op = ReduceOp::max;
  else if (args.op == "min")
    op = ReduceOp::min;
  else
    HPCML_REQUIRE(args.op == "sum", ConfigError, "--op: expected sum, average, max or min");

  std::size_t max_count = 0;
  for (std::size_t bytes = lo; bytes <= hi; bytes *= static_cast<std::size_t>(args.factor)) {
    max_count = bytes / sizeof(T);
    if (bytes > hi / static_cast<std::size_t>(args.factor)) break;
  }
  Bench<T> bench(comm, args, op, max_count);
  const double busfactor = n > 1 ? 2.0 * (n - 1) / n : 0.0;
  if (rank == 0) {
    std::printf("# hpcml bench allreduce: %d ranks, %d nodes, %s, op %s, %s\n", n,
                comm.node_count(), args.dtype.c_str(), args.op.c_str(),
                comm::MpiEnvironment::library_version().c_str());
    std::printf(
        "# thresholds: %s; busbw = algbw * 2(n-1)/n; GB = 1e9; time = slowest rank, best of %d\n",
        comm.options().thresholds.to_string().c_str(), args.reps);
    std::printf("# buffers: %s (every algorithm, MPI_Allreduce included, uses the same ones)\n",
                args.buffers == "shared"
                    ? "node-shared (Communicator::allocate_shared: zero-copy hierarchical path)"
                    : "private (std::vector: the hierarchical path stages through its slots)");
    std::printf("#%11s %11s %-18s |%11s %8s %8s %7s |%11s %8s %8s %7s | %9s\n", "size", "count",
                "algo", "oop us", "algbw", "busbw", "#wrong", "inp us", "algbw", "busbw", "#wrong",
                "memcpy");
    std::printf("#%11s %11s %-18s |%11s %8s %8s %7s |%11s %8s %8s %7s | %9s\n", "(B)", "(elems)",
                "", "", "(GB/s)", "(GB/s)", "", "", "(GB/s)", "(GB/s)", "", "(GB/s)");
  } else {
    comm.node_count();
  }
  struct Row {
    std::size_t bytes;
    Algo algo;
    Result oop, inp;
    double copy_us;
  };
  std::vector<Row> rows;
  std::size_t total_wrong = 0;
  for (std::size_t bytes = lo; bytes <= hi; bytes *= static_cast<std::size_t>(args.factor)) {
    const std::size_t count = bytes / sizeof(T);
    bench.prepare(count);
    std::vector<Row> size_rows;
    for (Algo algo : algos) {
      Row row{count * sizeof(T), algo, {}, {}, 0};
      row.oop.wrong = bench.check_out_of_place(algo);
      row.inp.wrong = bench.check_in_place(algo);
      size_rows.push_back(row);
    }
    std::vector<std::function<void()>> fns{bench.memcpy_fn()};
    for (Algo algo : algos) {
      fns.push_back(bench.out_of_place(algo));
      fns.push_back(bench.in_place(algo));
    }
    const std::vector<double> secs = bench.time(fns);
    for (std::size_t k = 0; k < size_rows.size(); ++k) {
      Row& row = size_rows[k];
      row.copy_us = 1e6 * secs[0];
      row.oop.time_us = 1e6 * secs[1 + 2 * k];
      row.inp.time_us = 1e6 * secs[2 + 2 * k];
      total_wrong += row.oop.wrong + row.inp.wrong;
      rows.push_back(row);
      if (rank == 0) {
        const double b = static_cast<double>(row.bytes);
        auto bw = [&](double us) { return us > 0 ? b / us * 1e-3 : 0.0; };
        std::printf(
            " %11zu %11zu %-18s |%11.1f %8.3f %8.3f %7zu |%11.1f %8.3f %8.3f %7zu | %9.3f\n",
            row.bytes, count, comm::to_string(row.algo).c_str(), row.oop.time_us,
            bw(row.oop.time_us), bw(row.oop.time_us) * busfactor, row.oop.wrong, row.inp.time_us,
            bw(row.inp.time_us), bw(row.inp.time_us) * busfactor, row.inp.wrong, bw(row.copy_us));
        std::fflush(stdout);
      }
    }
    if (bytes > hi / static_cast<std::size_t>(args.factor)) break;  // no overflow past hi
  }
  if (rank == 0) {
    std::printf("# Out of bounds values : %zu %s\n", total_wrong, total_wrong ? "FAILED" : "OK");
    std::map<Algo, std::pair<double, int>> avg;
    for (const auto& r : rows) {
      auto& a = avg[r.algo];
      a.first +=
          r.oop.time_us > 0 ? static_cast<double>(r.bytes) / r.oop.time_us * 1e-3 * busfactor : 0;
      a.second += 1;
    }
    for (const auto& [algo, a] : avg)
      std::printf("# Avg bus bandwidth    : %8.3f GB/s  %s (out of place, mean over sizes)\n",
                  a.first / a.second, comm::to_string(algo).c_str());
    // Side-by-side ratios at each size (same run): auto vs MPI, best own vs MPI, vs memcpy.
    bool have_mpi = false;
    for (Algo a : algos) have_mpi |= a == Algo::mpi;
    if (have_mpi && algos.size() > 1) {
      double worst_auto = 0;
      std::size_t worst_auto_bytes = 0;
      double sum_ratio = 0, sum_copy = 0;
      int big = 0;
      for (std::size_t i = 0; i < rows.size(); i += algos.size()) {
        const Row* mpi = nullptr;
        const Row* autor = nullptr;
        const Row* best = nullptr;
        for (std::size_t k = i; k < i + algos.size(); ++k) {
          const Row& r = rows[k];
          if (r.algo == Algo::mpi)
            mpi = &r;
          else if (r.algo == Algo::automatic)
            autor = &r;
          else if (!best || r.oop.time_us < best->oop.time_us)
            best = &r;
        }
        if (autor && mpi) {
          const double ratio = autor->oop.time_us / mpi->oop.time_us;
          if (ratio > worst_auto) {
            worst_auto = ratio;
            worst_auto_bytes = autor->bytes;
          }
        }
        if (mpi && best && mpi->bytes >= (1u << 20)) {
          const double ratio = mpi->oop.time_us / best->oop.time_us;
          std::printf("# %8s: best own %-18s %6.2fx MPI_Allreduce busbw; algbw %5.1f%% of memcpy\n",
                      human(mpi->bytes).c_str(), comm::to_string(best->algo).c_str(), ratio,
                      100.0 * mpi->copy_us / best->oop.time_us);
          sum_ratio += ratio;
          sum_copy += mpi->copy_us / best->oop.time_us;
          ++big;
        }
      }
      if (worst_auto_bytes)
        std::printf("# auto vs mpi: slowest relative time %.2fx MPI_Allreduce at %s\n", worst_auto,
                    human(worst_auto_bytes).c_str());
      if (big)
        std::printf(
            "# >= 1 MiB: best own algorithm %.2fx MPI_Allreduce busbw on average; algbw "
            "%.1f%% of memcpy on average\n",
            sum_ratio / big, 100.0 * sum_copy / big);
    }
  }
  return total_wrong ? 1 : 0;
}

}  // namespace

void add_bench_allreduce(CLI::App& app, Action& action) {
  auto args = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand(
      "allreduce", "All-reduce bandwidth per algorithm (nccl-tests style); run under mpiexec");
  cmd->add_option("--algo", args->algo, "all, auto, mpi, ring, recursive_doubling, hierarchical")
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
  cmd->callback([args, &action] {
    action = [args]() -> int {
      return args->dtype == "double" ? run<double>(*args) : run<float>(*args);
    };
  });
}

}  // namespace hpcml::jobs

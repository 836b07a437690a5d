// The all-reduce benchmark behind `hpcml bench allreduce`, in the manner of
// nccl-tests: for each size (doubling by `factor` from min_bytes to max_bytes)
// and each algorithm it measures the out-of-place and in-place all-reduce:
// time per call (the slowest rank's mean over the best of `reps` batches, the
// batches of all algorithms and the memcpy interleaved round by round),
// algbw = bytes/time, busbw = algbw * 2(n-1)/n (GB = 1e9), and #wrong, the
// number of elements differing from the exactly known result (inputs are
// multiples of 1/8, so sums are exact in any order). A plain memcpy of the same
// size, timed on every rank at once, is the memory ceiling.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "hpcml/comm/allreduce.hpp"
#include "hpcml/comm/mpi.hpp"

namespace hpcml::comm {

struct AllreduceBenchSpec {
  std::vector<Algo> algos;  // in table order; kAuto allowed
  std::size_t min_bytes = 4;
  std::size_t max_bytes = 256u << 20;
  int factor = 2;  // >= 2
  ReduceOp op = ReduceOp::kSum;
  double target_ms = 40;       // time per measurement batch
  int reps = 5;                // batches per measurement (best is kept)
  bool check = true;           // count wrong elements after one call of each kind
  bool shared_buffers = true;  // node-shared (allocate_shared) or private buffers
};

/// One size and algorithm. #wrong are summed over ranks; times in microseconds.
struct AllreduceBenchRow {
  std::size_t bytes = 0;
  std::size_t count = 0;
  Algo algo = Algo::kAuto;
  double oop_us = 0;
  std::size_t oop_wrong = 0;
  double inp_us = 0;
  std::size_t inp_wrong = 0;
  double memcpy_us = 0;
};

/// The algorithms to measure: "all" is kAuto followed by concrete_algos(),
/// anything else one parse_algo(name, what), refused by require_built() when
/// its transport is not in this build.
std::vector<Algo> parse_bench_algos(const std::string& name, const std::string& what);

/// Runs the sweep with elements of T (float or double) on `comm`, calling
/// `on_row` (on every rank) as each row is measured, and returns all rows in
/// order. Collective; the spec must match on all ranks.
template <class T>
std::vector<AllreduceBenchRow> run_allreduce_bench(
    Communicator& comm, const AllreduceBenchSpec& spec,
    const std::function<void(const AllreduceBenchRow&)>& on_row = {});

/// The benchmarks' one timing loop (collective on `comm`): seconds per call of
/// each of `fns`. Iterations per function are sized from one timed call (the
/// slowest rank's time, so the same on all ranks) to about `target_ms` per
/// batch, at most 2000; then `reps` rounds each run one batch of every function
/// in turn, between barriers, so a slow phase of a shared machine hits all of
/// them alike. Per function: the best over the rounds of the slowest rank's
/// batch mean. `drain` (may be empty) runs at the end of each timed call and
/// batch, inside the clock: a device transport waits for its stream there.
std::vector<double> time_best(MPI_Comm comm, const std::vector<std::function<void()>>& fns,
                              double target_ms, int reps, const std::function<void()>& drain = {});

/// The nccl-tests-style table: the comment header (ranks, nodes, dtype, op,
/// MPI library, thresholds, buffers, column titles), one line per row, and the
/// summary (wrong values, average bus bandwidth per algorithm, side-by-side
/// ratios against MPI_Allreduce and memcpy). Every piece ends in a newline.
std::string allreduce_bench_header(const Communicator& comm, int nodes, const std::string& dtype,
                                   const AllreduceBenchSpec& spec);
std::string format_allreduce_bench_row(const AllreduceBenchRow& row, int ranks);
std::string allreduce_bench_summary(const std::vector<AllreduceBenchRow>& rows,
                                    const AllreduceBenchSpec& spec, int ranks);

}  // namespace hpcml::comm

#include "hpcml/comm/bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <span>
#include <utility>

#include "hpcml/core/error.hpp"

namespace hpcml::comm {

namespace {

__attribute__((format(printf, 1, 2))) std::string format(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return std::string(buf, static_cast<std::size_t>(std::clamp(n, 0, int{sizeof buf} - 1)));
}

std::string human(std::size_t bytes) {
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return format("%zuM", bytes >> 20);
  if (bytes >= 1024 && bytes % 1024 == 0) return format("%zuK", bytes >> 10);
  return format("%zu", bytes);
}

double bus_factor(int ranks) { return ranks > 1 ? 2.0 * (ranks - 1) / ranks : 0.0; }

template <class T>
T pattern(int rank, std::size_t i) {
  return static_cast<T>(static_cast<int>((static_cast<std::size_t>(rank) * 7 + i * 13) % 17) - 8) /
         T(8);
}

double max_over_ranks(double v, MPI_Comm comm) {
  double m = 0;
  HPCML_CHECK_MPI(MPI_Allreduce(&v, &m, 1, MPI_DOUBLE, MPI_MAX, comm));
  return m;
}

template <class T>
class Bench {
 public:
  Bench(Communicator& comm, const AllreduceBenchSpec& spec, std::size_t max_count)
      : comm_(comm), spec_(spec) {
    // Every algorithm, MPI_Allreduce included, runs on the same two buffers.
    if (spec.shared_buffers) {
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

  void prepare(std::size_t count) {
    count_ = count;
    send_ = {send_all_, count};
    recv_ = {recv_all_, count};
    expect_.resize(count);
    const int n = comm_.size();
    const ReduceOp op = spec_.op;
    for (std::size_t i = 0; i < count; ++i) {
      send_[i] = pattern<T>(comm_.rank(), i);
      T acc = pattern<T>(0, i);
      for (int p = 1; p < n; ++p) {
        const T v = pattern<T>(p, i);
        acc = op == ReduceOp::kMax   ? std::max(acc, v)
              : op == ReduceOp::kMin ? std::min(acc, v)
                                     : acc + v;
      }
      expect_[i] = op == ReduceOp::kAverage ? acc / static_cast<T>(n) : acc;
    }
  }

  std::size_t wrong(std::span<const T> got) const {
    unsigned long long w = 0;
    for (std::size_t i = 0; i < count_; ++i) w += std::memcmp(&got[i], &expect_[i], sizeof(T)) != 0;
    unsigned long long total = 0;
    HPCML_CHECK_MPI(MPI_Allreduce(&w, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm_.get()));
    return static_cast<std::size_t>(total);
  }

  /// Elements wrong after one out-of-place call (summed over ranks).
  std::size_t check_out_of_place(Algo algo) {
    std::fill(recv_.begin(), recv_.end(), T(0));
    comm_.allreduce(send_.data(), recv_.data(), count_, spec_.op, algo);
    return spec_.check ? wrong(recv_) : 0;
  }
  std::size_t check_in_place(Algo algo) {
    std::copy(send_.begin(), send_.end(), recv_.begin());
    comm_.allreduce(recv_.data(), recv_.data(), count_, spec_.op, algo);
    return spec_.check ? wrong(recv_) : 0;
  }
  std::function<void()> out_of_place(Algo algo) {
    return [this, algo] { comm_.allreduce(send_.data(), recv_.data(), count_, spec_.op, algo); };
  }
  // Values keep growing call after call (same sign on all ranks): harmless.
  std::function<void()> in_place(Algo algo) {
    return [this, algo] { comm_.allreduce(recv_.data(), recv_.data(), count_, spec_.op, algo); };
  }
  std::function<void()> memcpy_fn() {
    return [this] { std::memcpy(recv_.data(), send_.data(), count_ * sizeof(T)); };
  }

 private:
  Communicator& comm_;
  const AllreduceBenchSpec& spec_;
  std::size_t count_ = 0;
  SharedBuffer shared_send_, shared_recv_;
  std::vector<T> private_send_, private_recv_;
  T* send_all_ = nullptr;
  T* recv_all_ = nullptr;
  std::span<T> send_, recv_;
  std::vector<T> expect_;
};

}  // namespace

std::vector<double> time_best(MPI_Comm comm, const std::vector<std::function<void()>>& fns,
                              double target_ms, int reps, const std::function<void()>& drain) {
  auto seconds = [](std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  std::vector<int> iters;
  for (const auto& fn : fns) {
    HPCML_CHECK_MPI(MPI_Barrier(comm));
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    if (drain) drain();
    const double once = max_over_ranks(seconds(t0), comm);
    iters.push_back(
        static_cast<int>(std::clamp(target_ms * 1e-3 / std::max(once, 1e-7), 1.0, 2000.0)));
  }
  std::vector<double> best(fns.size(), 1e300);
  for (int r = 0; r < reps; ++r) {
    for (std::size_t k = 0; k < fns.size(); ++k) {
      HPCML_CHECK_MPI(MPI_Barrier(comm));
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iters[k]; ++i) fns[k]();
      if (drain) drain();
      const double t = seconds(t0) / iters[k];
      best[k] = std::min(best[k], max_over_ranks(t, comm));
    }
  }
  return best;
}

std::vector<Algo> parse_bench_algos(const std::string& name, const std::string& what) {
  if (name != "all") {
    const Algo algo = parse_algo(name, what);
    require_built(transport_of(algo));  // before any header or buffer
    return {algo};
  }
  std::vector<Algo> algos{Algo::kAuto};
  for (Algo a : concrete_algos()) algos.push_back(a);
  return algos;
}

template <class T>
std::vector<AllreduceBenchRow> run_allreduce_bench(
    Communicator& comm, const AllreduceBenchSpec& spec,
    const std::function<void(const AllreduceBenchRow&)>& on_row) {
  const std::size_t lo = spec.min_bytes, hi = spec.max_bytes;
  const auto factor = static_cast<std::size_t>(spec.factor);
  HPCML_REQUIRE(lo >= sizeof(T) && lo <= hi && spec.factor >= 2, ConfigError,
                "all-reduce benchmark: need " + std::to_string(sizeof(T)) +
                    " <= min_bytes <= max_bytes and factor >= 2");
  std::size_t max_count = 0;
  for (std::size_t bytes = lo; bytes <= hi; bytes *= factor) {
    max_count = bytes / sizeof(T);
    if (bytes > hi / factor) break;
  }
  Bench<T> bench(comm, spec, max_count);
  std::vector<AllreduceBenchRow> rows;
  for (std::size_t bytes = lo; bytes <= hi; bytes *= factor) {
    const std::size_t count = bytes / sizeof(T);
    bench.prepare(count);
    std::vector<AllreduceBenchRow> size_rows;
    for (Algo algo : spec.algos) {
      AllreduceBenchRow row;
      row.bytes = count * sizeof(T);
      row.count = count;
      row.algo = algo;
      row.oop_wrong = bench.check_out_of_place(algo);
      row.inp_wrong = bench.check_in_place(algo);
      size_rows.push_back(row);
    }
    std::vector<std::function<void()>> fns{bench.memcpy_fn()};
    for (Algo algo : spec.algos) {
      fns.push_back(bench.out_of_place(algo));
      fns.push_back(bench.in_place(algo));
    }
    const std::vector<double> secs = time_best(comm.get(), fns, spec.target_ms, spec.reps);
    for (std::size_t k = 0; k < size_rows.size(); ++k) {
      AllreduceBenchRow& row = size_rows[k];
      row.memcpy_us = 1e6 * secs[0];
      row.oop_us = 1e6 * secs[1 + 2 * k];
      row.inp_us = 1e6 * secs[2 + 2 * k];
      rows.push_back(row);
      if (on_row) on_row(row);
    }
    if (bytes > hi / factor) break;  // no overflow past hi
  }
  return rows;
}

template std::vector<AllreduceBenchRow> run_allreduce_bench<float>(
    Communicator&, const AllreduceBenchSpec&, const std::function<void(const AllreduceBenchRow&)>&);
template std::vector<AllreduceBenchRow> run_allreduce_bench<double>(
    Communicator&, const AllreduceBenchSpec&, const std::function<void(const AllreduceBenchRow&)>&);

std::string allreduce_bench_header(const Communicator& comm, int nodes, const std::string& dtype,
                                   const AllreduceBenchSpec& spec) {
  std::string s;
  s += format("# hpcml bench allreduce: %d ranks, %d nodes, %s, op %s, %s\n", comm.size(), nodes,
              dtype.c_str(), to_string(spec.op).c_str(), MpiEnvironment::library_version().c_str());
  s += format(
      "# thresholds: %s; busbw = algbw * 2(n-1)/n; GB = 1e9; time = slowest rank, best of %d\n",
      comm.options().thresholds.to_string().c_str(), spec.reps);
  s += format("# buffers: %s (every algorithm, MPI_Allreduce included, uses the same ones)\n",
              spec.shared_buffers
                  ? "node-shared (Communicator::allocate_shared: zero-copy hierarchical path)"
                  : "private (std::vector: the hierarchical path stages through its slots)");
  s += format("#%11s %11s %-18s |%11s %8s %8s %7s |%11s %8s %8s %7s | %9s\n", "size", "count",
              "algo", "oop us", "algbw", "busbw", "#wrong", "inp us", "algbw", "busbw", "#wrong",
              "memcpy");
  s += format("#%11s %11s %-18s |%11s %8s %8s %7s |%11s %8s %8s %7s | %9s\n", "(B)", "(elems)", "",
              "", "(GB/s)", "(GB/s)", "", "", "(GB/s)", "(GB/s)", "", "(GB/s)");
  return s;
}

std::string format_allreduce_bench_row(const AllreduceBenchRow& row, int ranks) {
  const double b = static_cast<double>(row.bytes), busfactor = bus_factor(ranks);
  auto bw = [&](double us) { return us > 0 ? b / us * 1e-3 : 0.0; };
  return format(" %11zu %11zu %-18s |%11.1f %8.3f %8.3f %7zu |%11.1f %8.3f %8.3f %7zu | %9.3f\n",
                row.bytes, row.count, to_string(row.algo).c_str(), row.oop_us, bw(row.oop_us),
                bw(row.oop_us) * busfactor, row.oop_wrong, row.inp_us, bw(row.inp_us),
                bw(row.inp_us) * busfactor, row.inp_wrong, bw(row.memcpy_us));
}

std::string allreduce_bench_summary(const std::vector<AllreduceBenchRow>& rows,
                                    const AllreduceBenchSpec& spec, int ranks) {
  const double busfactor = bus_factor(ranks);
  const std::vector<Algo>& algos = spec.algos;
  std::size_t total_wrong = 0;
  for (const auto& r : rows) total_wrong += r.oop_wrong + r.inp_wrong;
  std::string s =
      format("# Out of bounds values : %zu %s\n", total_wrong, total_wrong ? "FAILED" : "OK");
  std::map<Algo, std::pair<double, int>> avg;
  for (const auto& r : rows) {
    auto& a = avg[r.algo];
    a.first += r.oop_us > 0 ? static_cast<double>(r.bytes) / r.oop_us * 1e-3 * busfactor : 0;
    a.second += 1;
  }
  for (const auto& [algo, a] : avg)
    s += format("# Avg bus bandwidth    : %8.3f GB/s  %s (out of place, mean over sizes)\n",
                a.first / a.second, to_string(algo).c_str());
  // Side-by-side ratios at each size (same run): auto vs MPI, best own vs MPI, vs memcpy.
  bool have_mpi = false;
  for (Algo a : algos) have_mpi |= a == Algo::kMpi;
  if (!have_mpi || algos.size() <= 1) return s;
  double worst_auto = 0;
  std::size_t worst_auto_bytes = 0;
  double sum_ratio = 0, sum_copy = 0;
  int big = 0;
  for (std::size_t i = 0; i < rows.size(); i += algos.size()) {
    const AllreduceBenchRow* mpi = nullptr;
    const AllreduceBenchRow* autor = nullptr;
    const AllreduceBenchRow* best = nullptr;
    for (std::size_t k = i; k < i + algos.size() && k < rows.size(); ++k) {
      const AllreduceBenchRow& r = rows[k];
      if (r.algo == Algo::kMpi)
        mpi = &r;
      else if (r.algo == Algo::kAuto)
        autor = &r;
      else if (!best || r.oop_us < best->oop_us)
        best = &r;
    }
    if (autor && mpi) {
      const double ratio = autor->oop_us / mpi->oop_us;
      if (ratio > worst_auto) {
        worst_auto = ratio;
        worst_auto_bytes = autor->bytes;
      }
    }
    if (mpi && best && mpi->bytes >= (1u << 20)) {
      const double ratio = mpi->oop_us / best->oop_us;
      s += format("# %8s: best own %-18s %6.2fx MPI_Allreduce busbw; algbw %5.1f%% of memcpy\n",
                  human(mpi->bytes).c_str(), to_string(best->algo).c_str(), ratio,
                  100.0 * mpi->memcpy_us / best->oop_us);
      sum_ratio += ratio;
      sum_copy += mpi->memcpy_us / best->oop_us;
      ++big;
    }
  }
  if (worst_auto_bytes)
    s += format("# auto vs mpi: slowest relative time %.2fx MPI_Allreduce at %s\n", worst_auto,
                human(worst_auto_bytes).c_str());
  if (big)
    s += format(
        "# >= 1 MiB: best own algorithm %.2fx MPI_Allreduce busbw on average; algbw "
        "%.1f%% of memcpy on average\n",
        sum_ratio / big, 100.0 * sum_copy / big);
  return s;
}

}  // namespace hpcml::comm

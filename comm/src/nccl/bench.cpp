// `hpcml bench allreduce --transport nccl`: the all-reduce sweep on device
// buffers (run_nccl_allreduce_bench in hpcml/comm/nccl.hpp). Same rows, same
// table and footer as the MPI sweep (comm/src/bench.cpp): nccl rows are
// ncclAllReduce on the device buffers, mpi rows MPI_Allreduce staged through
// host memory, memcpy a device-to-device copy.
#include <algorithm>
#include <cstring>
#include <memory>
#include <sstream>
#include <vector>

#include "hpcml/comm/nccl.hpp"
#include "hpcml/config.hpp"
#include "nccl_comm.hpp"

namespace hpcml::comm {

namespace {

template <class T>
T pattern(int rank, std::size_t i) {
  return static_cast<T>(static_cast<int>((static_cast<std::size_t>(rank) * 7 + i * 13) % 17) - 8) /
         T(8);
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAverage:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
    case ReduceOp::kMin:
      return ncclMin;
  }
  return ncclSum;
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
    default:
      return MPI_SUM;  // average: sum, then scaled on the host
  }
}

template <class T>
class NcclBench {
 public:
  NcclBench(Communicator& comm, nccl::NcclComm& nccl, const AllreduceBenchSpec& spec,
            std::size_t max_count)
      : comm_(comm),
        nccl_(nccl),
        spec_(spec),
        send_(max_count),
        recv_(max_count),
        host_send_(max_count),
        host_recv_(max_count) {}

  void prepare(std::size_t count) {
    count_ = count;
    expect_.resize(count);
    const int n = comm_.size();
    for (std::size_t i = 0; i < count; ++i) {
      host_send_[i] = pattern<T>(comm_.rank(), i);
      T acc = pattern<T>(0, i);
      for (int p = 1; p < n; ++p) {
        const T v = pattern<T>(p, i);
        acc = spec_.op == ReduceOp::kMax   ? std::max(acc, v)
              : spec_.op == ReduceOp::kMin ? std::min(acc, v)
                                           : acc + v;
      }
      expect_[i] = spec_.op == ReduceOp::kAverage ? acc / static_cast<T>(n) : acc;
    }
    HPCML_NCCL_CUDA(
        cudaMemcpy(send_.data(), host_send_.data(), count * sizeof(T), cudaMemcpyHostToDevice));
  }

  std::size_t wrong() {
    HPCML_NCCL_CUDA(
        cudaMemcpy(host_recv_.data(), recv_.data(), count_ * sizeof(T), cudaMemcpyDeviceToHost));
    unsigned long long w = 0;
    for (std::size_t i = 0; i < count_; ++i)
      w += std::memcmp(&host_recv_[i], &expect_[i], sizeof(T)) != 0;
    unsigned long long total = 0;
    HPCML_CHECK_MPI(MPI_Allreduce(&w, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm_.get()));
    return static_cast<std::size_t>(total);
  }

  void run(Algo algo, bool in_place) {
    const T* src = in_place ? recv_.data() : send_.data();
    if (algo == Algo::kNccl) {
      HPCML_CHECK_NCCL(nccl_, ncclAllReduce(src, recv_.data(), count_, nccl::data_type<T>(),
                                            nccl_op(spec_.op), nccl_.get(), nccl_.stream()));
      return;
    }
    // MPI staged through host memory: device to host, MPI_Allreduce, host to device.
    nccl_.wait("staging");
    HPCML_NCCL_CUDA(cudaMemcpy(host_send_.data(), src, count_ * sizeof(T), cudaMemcpyDeviceToHost));
    const MPI_Datatype type = sizeof(T) == sizeof(double) ? MPI_DOUBLE : MPI_FLOAT;
    HPCML_CHECK_MPI(MPI_Allreduce(host_send_.data(), host_recv_.data(), static_cast<int>(count_),
                                  type, mpi_op(spec_.op), comm_.get()));
    if (spec_.op == ReduceOp::kAverage) {
      const T n = static_cast<T>(comm_.size());
      for (std::size_t i = 0; i < count_; ++i) host_recv_[i] /= n;
    }
    HPCML_NCCL_CUDA(
        cudaMemcpy(recv_.data(), host_recv_.data(), count_ * sizeof(T), cudaMemcpyHostToDevice));
  }

  std::size_t check(Algo algo, bool in_place) {
    if (in_place) {
      HPCML_NCCL_CUDA(
          cudaMemcpy(recv_.data(), send_.data(), count_ * sizeof(T), cudaMemcpyDeviceToDevice));
    } else {
      HPCML_NCCL_CUDA(cudaMemset(recv_.data(), 0, count_ * sizeof(T)));
    }
    run(algo, in_place);
    nccl_.wait("all-reduce check");
    return spec_.check ? wrong() : 0;
  }

  void memcpy_once() {
    HPCML_NCCL_CUDA(cudaMemcpyAsync(recv_.data(), send_.data(), count_ * sizeof(T),
                                    cudaMemcpyDeviceToDevice, nccl_.stream()));
  }

  // Each timed call and batch ends with the stream drained.
  void drain() { nccl_.wait("all-reduce benchmark"); }

 private:
  Communicator& comm_;
  nccl::NcclComm& nccl_;
  const AllreduceBenchSpec& spec_;
  nccl::DeviceArray<T> send_, recv_;
  std::vector<T> host_send_, host_recv_, expect_;
  std::size_t count_ = 0;
};

}  // namespace

template <class T>
std::vector<AllreduceBenchRow> run_nccl_allreduce_bench(
    Communicator& comm, const Communicator& local, const AllreduceBenchSpec& spec,
    const std::function<void(const AllreduceBenchRow&)>& on_row, int device) {
  const std::size_t lo = spec.min_bytes, hi = spec.max_bytes;
  const auto factor = static_cast<std::size_t>(spec.factor);
  HPCML_REQUIRE(lo >= sizeof(T) && lo <= hi && spec.factor >= 2, ConfigError,
                "all-reduce benchmark: need " + std::to_string(sizeof(T)) +
                    " <= min_bytes <= max_bytes and factor >= 2");
  for (Algo a : spec.algos)
    HPCML_REQUIRE(a == Algo::kNccl || a == Algo::kMpi, ConfigError,
                  "--transport nccl: the rows are 'nccl' and 'mpi' (staged through host "
                  "memory), not '" +
                      to_string(a) + "'");
  std::size_t max_count = 0;
  for (std::size_t bytes = lo; bytes <= hi; bytes *= factor) {
    max_count = bytes / sizeof(T);
    if (bytes > hi / factor) break;
  }
  // Set-up failures (more ranks than GPUs, a CUDA or NCCL error) are one agreed error.
  std::unique_ptr<nccl::NcclComm> nccl;
  std::unique_ptr<NcclBench<T>> owned;
  agree(comm, [&] {
    nccl = std::make_unique<nccl::NcclComm>(comm, local, comm.options().stall_timeout_s, device);
    owned = std::make_unique<NcclBench<T>>(comm, *nccl, spec, max_count);
  });
  NcclBench<T>& bench = *owned;
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
      row.oop_wrong = bench.check(algo, false);
      row.inp_wrong = bench.check(algo, true);
      size_rows.push_back(row);
    }
    std::vector<std::function<void()>> fns{[&bench] { bench.memcpy_once(); }};
    for (Algo algo : spec.algos) {
      fns.push_back([&bench, algo] { bench.run(algo, false); });
      fns.push_back([&bench, algo] { bench.run(algo, true); });
    }
    const std::vector<double> secs =
        time_best(comm.get(), fns, spec.target_ms, spec.reps, [&bench] { bench.drain(); });
    for (std::size_t k = 0; k < size_rows.size(); ++k) {
      AllreduceBenchRow& row = size_rows[k];
      row.memcpy_us = 1e6 * secs[0];
      row.oop_us = 1e6 * secs[1 + 2 * k];
      row.inp_us = 1e6 * secs[2 + 2 * k];
      rows.push_back(row);
      if (on_row) on_row(row);
    }
    if (bytes > hi / factor) break;
  }
  return rows;
}

template std::vector<AllreduceBenchRow> run_nccl_allreduce_bench<float>(
    Communicator&, const Communicator&, const AllreduceBenchSpec&,
    const std::function<void(const AllreduceBenchRow&)>&, int);
template std::vector<AllreduceBenchRow> run_nccl_allreduce_bench<double>(
    Communicator&, const Communicator&, const AllreduceBenchSpec&,
    const std::function<void(const AllreduceBenchRow&)>&, int);

std::string nccl_bench_header(const Communicator& comm, int nodes, const std::string& dtype,
                              const AllreduceBenchSpec& spec, const GpuPlacement& gpu) {
  // The column titles of the MPI sweep's header (its last two lines).
  const std::string base = allreduce_bench_header(comm, nodes, dtype, spec);
  std::vector<std::string> lines;
  std::istringstream in(base);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::ostringstream s;
  s << "# hpcml bench allreduce --transport nccl: " << comm.size() << " ranks, " << nodes
    << " nodes, " << dtype << ", op " << to_string(spec.op) << ", NCCL " << nccl_description()
    << "\n";
  s << "# rank 0 GPU " << gpu.device << " " << gpu.name << " (" << gpu.pci_bus_id
    << "); one GPU per rank (node-local rank)\n";
  s << "# busbw = algbw * 2(n-1)/n; GB = 1e9; time = slowest rank, best of " << spec.reps
    << "; each batch ends with the stream drained\n";
  s << "# buffers: device (cudaMalloc); nccl = ncclAllReduce on them; mpi = MPI_Allreduce staged "
       "through host memory (device to host, MPI, host to device); memcpy = device to device\n";
  for (std::size_t i = lines.size() >= 2 ? lines.size() - 2 : 0; i < lines.size(); ++i)
    s << lines[i] << "\n";
  return s.str();
}

}  // namespace hpcml::comm

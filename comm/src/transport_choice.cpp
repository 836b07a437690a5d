// parallel.transport and the NCCL functions of builds without NCCL
// (comm/src/nccl/ implements them when HPCML_HAS_NCCL).
#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "hpcml/comm/nccl.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::comm {

std::string to_string(TransportChoice choice) {
  switch (choice) {
    case TransportChoice::kAuto:
      return "auto";
    case TransportChoice::kMpi:
      return "mpi";
    case TransportChoice::kNccl:
      return "nccl";
  }
  return "?";
}

TransportChoice parse_transport_choice(const std::string& name, const std::string& what) {
  if (name == "auto") return TransportChoice::kAuto;
  if (name == "mpi") return TransportChoice::kMpi;
  if (name == "nccl") return TransportChoice::kNccl;
  HPCML_THROW(ConfigError,
              what + ": unknown transport '" + name + "' (expected auto, mpi or nccl)");
}

Transport resolve_transport(TransportChoice choice, const std::string& backend, bool nccl_built) {
  switch (choice) {
    case TransportChoice::kMpi:
      return Transport::kMpi;
    case TransportChoice::kNccl:
      return Transport::kNccl;
    case TransportChoice::kAuto:
      break;
  }
  return backend == "cuda" && nccl_built ? Transport::kNccl : Transport::kMpi;
}

namespace {
std::string human_bytes(std::size_t bytes) {
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + "M";
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + "K";
  return std::to_string(bytes) + " B";
}
}  // namespace

std::string describe_transport_by_size(Communicator& comm, Transport transport, Algo algo) {
  if (transport == Transport::kNccl)
    return "nccl: every size (ncclAllReduce on GPU buffers; NCCL picks ring or tree)";
  if (comm.size() == 1) return "mpi: one rank, nothing to exchange";
  if (algo != Algo::kAuto) return "mpi: every size " + to_string(algo) + " (parallel.algo)";
  const Thresholds& t = comm.options().thresholds;
  const std::size_t small = t.small_max_bytes;
  const std::size_t medium = std::max(t.medium_max_bytes, small);
  // Segments (.., small], (small, medium], (medium, ..): adjacent equal ones merge.
  std::vector<std::pair<std::size_t, Algo>> seg{
      {small, comm.choose(small)}, {medium, comm.choose(medium)}, {0, comm.choose(medium + 1)}};
  std::string out;
  for (std::size_t i = 0; i < seg.size(); ++i) {
    if (i + 1 < seg.size() && seg[i + 1].second == seg[i].second) continue;
    if (!out.empty()) out += ", ";
    out += (seg[i].first ? "<= " + human_bytes(seg[i].first)
                         : std::string(out.empty() ? "every size" : "larger")) +
           " " + to_string(seg[i].second);
  }
  return "mpi: " + out;
}

void require_nccl(const std::string& what) {
  const std::string reason = nccl_unavailable_reason();
  if (!reason.empty()) HPCML_THROW(NotAvailableError, what + reason);
}

#ifndef HPCML_HAS_NCCL

namespace {
constexpr const char* kNotBuilt =
    "the NCCL transport is not compiled in (this hpcml was built without NCCL: configure with "
    "-DHPCML_ENABLE_NCCL=ON and NCCL_ROOT, see docs/communication.md)";
}

std::string nccl_unavailable_reason() { return kNotBuilt; }

std::string nccl_description() { return "not compiled in (HPCML_ENABLE_NCCL, NCCL_ROOT)"; }

GpuPlacement gpu_for_local_rank(int /*local_rank*/) { return {}; }

std::unique_ptr<Collectives> make_nccl_collectives(Communicator& /*world*/,
                                                   const Communicator& /*local*/,
                                                   const NcclOptions& /*options*/) {
  require_nccl("parallel.transport = \"nccl\": ");
  return nullptr;
}

template <class T>
std::vector<AllreduceBenchRow> run_nccl_allreduce_bench(
    Communicator& /*comm*/, const Communicator& /*local*/, const AllreduceBenchSpec& /*spec*/,
    const std::function<void(const AllreduceBenchRow&)>& /*on_row*/) {
  require_nccl("--transport nccl: ");
  return {};
}
template std::vector<AllreduceBenchRow> run_nccl_allreduce_bench<float>(
    Communicator&, const Communicator&, const AllreduceBenchSpec&,
    const std::function<void(const AllreduceBenchRow&)>&);
template std::vector<AllreduceBenchRow> run_nccl_allreduce_bench<double>(
    Communicator&, const Communicator&, const AllreduceBenchSpec&,
    const std::function<void(const AllreduceBenchRow&)>&);

std::string nccl_bench_header(const Communicator& comm, int nodes, const std::string& dtype,
                              const AllreduceBenchSpec& spec, const GpuPlacement& /*gpu*/) {
  return allreduce_bench_header(comm, nodes, dtype, spec);
}

#endif

}  // namespace hpcml::comm

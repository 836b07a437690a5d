// parallel.transport and the NCCL functions of builds without NCCL
// (comm/src/nccl/ implements them when HPCML_HAS_NCCL).
#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "hpcml/comm/nccl.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/config_doc.hpp"
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

std::string describe_nccl_by_size(const Thresholds& t, int nodes, Codec codec) {
  if (codec != Codec::kNone)
    return "nccl: every size " + to_string(codec) +
           " ncclAllReduce (parallel.compression; NCCL picks ring or tree)";
  const std::string flat = "ncclAllReduce (NCCL picks ring or tree)";
  const std::string hier =
      "hierarchical (NCCL in the node, MPI between " + std::to_string(nodes) + " node leaders)";
  if (nodes <= 1) return "nccl: every size " + flat + ", one node";
  if (choose_nccl_path(t, 0, nodes) == NcclPath::kFlat) return "nccl: every size " + flat;
  if (t.nccl_hierarchical_max_bytes == 0) return "nccl: every size " + hier;
  return "nccl: <= " + human_bytes(t.nccl_hierarchical_max_bytes) + " " + hier + ", larger " + flat;
}

std::string nccl_codec_refusal(Codec codec) {
  if (codec == Codec::kNone) return "";
  if (codec == Codec::kFp16 || codec == Codec::kBf16) {
    if (nccl_device_codecs_built()) return "";
    return "\"" + to_string(codec) +
           "\" is not built for parallel.transport = \"nccl\" (this build has no CUDA device "
           "codecs); use none";
  }
  return "\"" + to_string(codec) +
         "\" is not built for parallel.transport = \"nccl\"; use none, fp16 or bf16";
}

bool nccl_device_codecs_built() {
#if defined(HPCML_HAS_NCCL) && defined(HPCML_NCCL_DEVICE_CODECS)
  return true;
#else
  return false;
#endif
}

NodeSplit emulated_node_split(int rank, int size, int k) {
  NodeSplit s;
  if (k <= 0 || size <= 0) return s;
  s.node = rank / k;
  s.local_rank = rank % k;
  s.local_size = std::min(k, size - s.node * k);
  s.nodes = (size + k - 1) / k;
  return s;
}

std::string describe_transport_by_size(Communicator& comm, Transport transport, Algo algo,
                                       const NcclOptions* nccl) {
  if (transport == Transport::kNccl) {
    const NcclOptions defaults;
    const NcclOptions& o = nccl ? *nccl : defaults;
    const int nodes = o.emulate_node_size > 0
                          ? emulated_node_split(comm.rank(), comm.size(), o.emulate_node_size).nodes
                          : comm.node_count();
    return describe_nccl_by_size(o.thresholds, nodes, o.codec);
  }
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

Transport choose_transport(TransportChoice choice, const std::string& backend, Codec codec,
                           const ConfigDoc* doc, const std::string& what) {
  const Transport transport = resolve_transport(choice, backend, is_built(Transport::kNccl));
  if (transport != Transport::kNccl) return transport;
  // read_reducer_options refuses the codec for an explicit "nccl"; this covers "auto".
  if (const std::string why = nccl_codec_refusal(codec); !why.empty()) {
    if (doc) doc->fail("parallel.compression", why);
    HPCML_THROW(ConfigError, "parallel.compression: " + why);
  }
  if (choice == TransportChoice::kNccl) require_nccl(what);
  return transport;
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
    const std::function<void(const AllreduceBenchRow&)>& /*on_row*/, int /*device*/) {
  require_nccl("--transport nccl: ");
  return {};
}
template std::vector<AllreduceBenchRow> run_nccl_allreduce_bench<float>(
    Communicator&, const Communicator&, const AllreduceBenchSpec&,
    const std::function<void(const AllreduceBenchRow&)>&, int);
template std::vector<AllreduceBenchRow> run_nccl_allreduce_bench<double>(
    Communicator&, const Communicator&, const AllreduceBenchSpec&,
    const std::function<void(const AllreduceBenchRow&)>&, int);

std::string nccl_bench_header(const Communicator& comm, int nodes, const std::string& dtype,
                              const AllreduceBenchSpec& spec, const GpuPlacement& /*gpu*/) {
  return allreduce_bench_header(comm, nodes, dtype, spec);
}

#endif

}  // namespace hpcml::comm

// Vocabulary of the collective layer: algorithms, reduction operations, the
// automatic-selection thresholds, tuning options and the Request returned by
// non-blocking collectives. Communicator (mpi.hpp) is the user of all of it.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hpcml/comm/transport.hpp"

namespace hpcml::comm {

/// Which all-reduce algorithm runs. Each algorithm belongs to one transport
/// (transport.hpp): kNccl is the NCCL transport's own algorithm, refused by
/// builds without it. Every algorithm gives bit-identical results on all
/// ranks; the own ones (ring, recursive doubling, hierarchical) are also
/// run-to-run identical for the same algorithm, rank count and size.
enum class Algo {
  kAuto,               // chosen by message size and rank count (see Thresholds)
  kMpi,                // MPI_Allreduce / MPI_Iallreduce of the MPI library
  kRing,               // reduce-scatter + all-gather ring over MPI point-to-point, pipelined
  kRecursiveDoubling,  // log2(n) exchanges of the whole vector: for small messages
  kHierarchical,       // node-local shared-memory reduction, leader ring, node-local copy-out
  kNccl,               // the NCCL transport (GPU buffers, hpcml/comm/nccl.hpp; HPCML_ENABLE_NCCL)
};

/// One row of the algorithm table: the name the config, the CLI and to_string
/// use, an accepted alias (or empty), and the transport that runs it. The
/// parsers, the name lists in messages and concrete_algos() all read it.
struct AlgoInfo {
  Algo algo;
  std::string_view name;
  std::string_view alias;
  Transport transport;
};
/// Every algorithm, in enum order.
std::span<const AlgoInfo> algo_table();
const AlgoInfo& info(Algo algo);
inline Transport transport_of(Algo algo) { return info(algo).transport; }

/// Parses a name or alias of algo_table() ("auto"/"automatic", "mpi", "ring",
/// "recursive_doubling"/"rd", "hierarchical"/"shm", "nccl"). Throws
/// ConfigError naming `what` otherwise. Accepts algorithms of transports this
/// build lacks: using one is refused by require_built().
Algo parse_algo(const std::string& name, const std::string& what = "algo");
std::string to_string(Algo algo);
/// Every name of algo_table() (aliases excluded), e.g. for a config choice list.
std::vector<std::string> algo_names();
/// The algorithms the host communicator runs in this build (kAuto, unbuilt
/// transports' ones and kNccl, which runs on device buffers through
/// parallel.transport = "nccl", excluded).
std::vector<Algo> concrete_algos();

enum class ReduceOp { kSum, kAverage, kMax, kMin };
std::string to_string(ReduceOp op);
/// Parses "sum", "average", "max", "min". Throws ConfigError naming `what`.
ReduceOp parse_reduce_op(const std::string& name, const std::string& what = "op");

/// How the NCCL transport reduces a gradient bucket across nodes: one
/// ncclAllReduce over every rank (kFlat), or NCCL inside each node (ncclReduce
/// to the node leader), MPI all-reduce among the node leaders from pinned host
/// memory, and ncclBroadcast inside the node (kHierarchical).
enum class NcclPath { kFlat, kHierarchical };
std::string to_string(NcclPath path);

/// Automatic selection. All ranks on one node (and more than one): every
/// size uses `single_node_algo`. Several nodes: messages of at most
/// `small_max_bytes` use `small_algo`; larger ones, when more than one rank
/// shares a node, `medium_algo` up to `medium_max_bytes` and `large_algo`
/// above; with one rank per node `large_multinode_algo`. One rank: a copy. The
/// defaults come from measurements on the development machine, the multi-node
/// ones from 2 namespace nodes x 2 ranks (docs/communication.md).
struct Thresholds {
  Algo single_node_algo = Algo::kHierarchical;
  std::size_t small_max_bytes = 64 * 1024;
  Algo small_algo = Algo::kRecursiveDoubling;
  std::size_t medium_max_bytes = 1024 * 1024;
  Algo medium_algo = Algo::kHierarchical;
  Algo large_algo = Algo::kRing;
  Algo large_multinode_algo = Algo::kRing;
  /// The NCCL transport (parallel.transport = "nccl") on more than one node:
  /// buckets of at most `nccl_hierarchical_max_bytes` (0: every size) take
  /// `nccl_multinode_algo`, larger ones kFlat. One node: always kFlat.
  /// Unmeasured defaults (no multi-node GPU machine yet): flat everywhere.
  NcclPath nccl_multinode_algo = NcclPath::kFlat;
  std::size_t nccl_hierarchical_max_bytes = 0;

  /// Parses "single_node_algo=hierarchical,small_max_bytes=65536,small_algo=mpi,
  /// medium_max_bytes=1M,medium_algo=hierarchical,large_algo=ring,large_multinode_algo=ring,
  /// nccl_multinode_algo=hierarchical,nccl_hierarchical_max_bytes=4M"
  /// (any subset, sizes accept K/M suffixes) on
  /// top of `base`. Throws ConfigError naming `origin` for unknown keys or values.
  static Thresholds parse(const std::string& text, const Thresholds& base,
                          const std::string& origin);
  std::string to_string() const;
};

/// The path the NCCL transport takes for a bucket of `bytes` when the job's
/// ranks span `nodes` nodes (Thresholds' NCCL entries). Pure.
NcclPath choose_nccl_path(const Thresholds& thresholds, std::size_t bytes, int nodes);

/// Tuning of the own algorithms and the stall inspector. Must be identical on
/// all ranks of a communicator (they decide message segmentation).
struct CommOptions {
  Thresholds thresholds;
  std::size_t ring_piece_bytes = 256 * 1024;  // pipelining unit of the ring
  std::size_t shm_slot_bytes = 512 * 1024;    // staging segment of the shared-memory path
  /// A collective that has waited this long names the ranks that have not
  /// arrived and aborts the job. 0 disables the inspector.
  double stall_timeout_s = 0;
  /// Testing aid: treat blocks of this many consecutive ranks as one node
  /// (0 = real nodes from MPI_COMM_TYPE_SHARED). Lets one machine exercise the
  /// inter-node part of the hierarchical algorithm.
  int emulate_node_size = 0;

  /// Defaults overridden by the environment, read once per process:
  /// HPCML_ALLREDUCE_THRESHOLDS (Thresholds::parse syntax) and
  /// HPCML_STALL_TIMEOUT_S.
  static const CommOptions& from_environment();
};

namespace detail {
/// What a pending operation must do; implementations live in comm/src.
class RequestImpl {
 public:
  virtual ~RequestImpl() = default;
  /// Makes progress; true once complete (and finished: results in place).
  virtual bool test() = 0;
  /// Blocks until complete. Throws hpcml::Error if the operation failed.
  virtual void wait() = 0;
};
}  // namespace detail

/// A non-blocking collective in flight. Move-only. wait() completes it (and
/// rethrows its error); test() progresses it and says whether it is done.
/// The buffers given to the call must stay alive and untouched until then.
/// The destructor waits for completion (so buffers are never written after
/// they are gone) and never throws: an error found there is printed.
class Request {
 public:
  Request() = default;
  explicit Request(std::unique_ptr<detail::RequestImpl> impl) : impl_(std::move(impl)) {}
  ~Request();
  Request(Request&&) noexcept = default;
  Request& operator=(Request&& other) noexcept;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  /// True once the operation is complete; completes it when it can.
  bool test();
  void wait();
  /// True while an operation is attached and not yet waited for.
  bool pending() const { return impl_ != nullptr; }

 private:
  std::unique_ptr<detail::RequestImpl> impl_;
};

/// Waits for every request (in order); rethrows the first error after all are done.
void wait_all(std::vector<Request>& requests);

}  // namespace hpcml::comm

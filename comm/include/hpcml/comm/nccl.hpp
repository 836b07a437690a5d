// The NCCL transport: gradient all-reduce on GPU buffers through NVIDIA NCCL
// (docs/communication.md, "NCCL transport"), and the choice between it and MPI
// (parallel.transport). This header needs neither CUDA nor NCCL: every function
// exists in every build; without NCCL (HPCML_ENABLE_NCCL) the ones that would
// use it throw NotAvailableError "... not compiled in ...".
//
// One NCCL communicator per process over all ranks of the job, one GPU per rank
// (device = node-local rank, from Communicator::split_shared()); the unique id
// travels over MPI (rank 0 ncclGetUniqueId, MPI_Bcast). The communicator is
// non-blocking: every wait polls ncclCommGetAsyncError and gives up after
// parallel.stall_timeout_s, aborting the communicator (ncclCommAbort), so a
// failed or stalled peer ends the job instead of hanging it. When the threshold
// table can choose the hierarchical path (several nodes), a second NCCL
// communicator per node (unique id over the node's MPI communicator) shares the
// first one's stream, and the node leaders reduce between nodes over MPI.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hpcml/comm/allreduce.hpp"
#include "hpcml/comm/bench.hpp"
#include "hpcml/comm/codec.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/core/collectives.hpp"

namespace hpcml {
class ConfigDoc;
}

namespace hpcml::comm {

/// Why NCCL cannot run in this process, in one line, or "" when it can:
/// "the NCCL transport is not compiled in (...)" without NCCL, or
/// "no GPU for the NCCL transport: cudaGetDeviceCount returned ..." without a
/// usable device. Needs no MPI.
std::string nccl_unavailable_reason();
/// Throws NotAvailableError with nccl_unavailable_reason() (prefixed by
/// `what`, e.g. "parallel.transport = \"nccl\": ") unless NCCL can run here.
void require_nccl(const std::string& what);

/// For `hpcml info`: "2.28.9 (runtime 2.28.9), CUDA runtime 13.0, 1 GPU(s)"
/// or "not compiled in (...)" / the no-GPU reason.
std::string nccl_description();

/// This rank's GPU for the layout lines: device index and PCI bus id
/// ("0000:3b:00.0", lower case as in /sys/bus/pci/devices), or index -1 and
/// "none" (no CUDA runtime, no device). `local_rank` picks the device as the
/// NCCL transport does (local_rank % device count).
struct GpuPlacement {
  int device = -1;
  std::string pci_bus_id = "none";
  std::string name;  // device name, "" when none
};
GpuPlacement gpu_for_local_rank(int local_rank);

/// Options of the NCCL gradient path (from ReducerOptions and the job).
struct NcclOptions {
  double fusion_mb = 1;        // bucket size, as parallel.fusion_mb
  double stall_timeout_s = 0;  // 0: wait forever (still polling async errors)
  /// The GPU this rank uses: the cuda backend's (kernels::cuda_device_of), or
  /// for a host backend the one kernels::cuda_choose_device picks (honours
  /// Slurm's GPU binding). -1: device local.rank() (one GPU per rank, all visible).
  int device = -1;
  /// The compute stream (a cudaStream_t) whose work produces the gradients:
  /// gradient_ready(i) records an event on it and the communication stream
  /// waits for that event. nullptr: the legacy default stream
  /// (cudaStreamLegacy), which orders after every blocking stream's work.
  void* compute_stream = nullptr;
  /// parallel.compression: kNone, or kFp16 / kBf16 (device codecs: encode with
  /// prescale 1/world, ncclAllReduce sum in ncclHalf / ncclBfloat16, decode).
  /// Others are refused (nccl_codec_refusal). A codec bucket always goes flat.
  Codec codec = Codec::kNone;
  /// The threshold table; its NCCL entries pick flat or hierarchical per bucket.
  Thresholds thresholds{};
  /// As CommOptions::emulate_node_size: blocks of this many consecutive ranks
  /// count as one node for the hierarchical path (0: real nodes).
  int emulate_node_size = 0;
  /// Testing aid: every uncompressed bucket takes the hierarchical path, one
  /// node included (the table's "one node: flat" rule is skipped).
  bool force_hierarchical = false;
};

/// The algorithm each message size gets, one line for the layout report:
/// "mpi: <= 64K recursive_doubling, <= 1M hierarchical, larger ring",
/// "mpi: every size ring (parallel.algo)", "nccl: every size ncclAllReduce ...".
/// For kMpi with algo kAuto it asks comm.choose(): collective on first use.
/// For kNccl the table and codec of `nccl` (defaults when null) are used and
/// the node count is asked of `comm` (collective).
std::string describe_transport_by_size(Communicator& comm, Transport transport, Algo algo,
                                       const NcclOptions* nccl = nullptr);
/// The kNccl line of describe_transport_by_size for `nodes` nodes. Pure.
std::string describe_nccl_by_size(const Thresholds& thresholds, int nodes, Codec codec);

/// Why parallel.compression = `codec` cannot run on the NCCL transport (one
/// line, for the key parallel.compression), or "" when it can: kNone always;
/// kFp16 and kBf16 when the device codecs are built (nccl_device_codecs_built).
std::string nccl_codec_refusal(Codec codec);
/// True when this build has the NCCL transport and the CUDA device codecs
/// (comm/src/nccl/device_codec.cu among hpcml_comm's sources).
bool nccl_device_codecs_built();

/// The one place a run's transport is decided: parallel.transport = `choice`
/// for compute backend `backend` (resolve_transport), or the one line refusing
/// NCCL, in this order: a codec the NCCL transport does not run
/// (nccl_codec_refusal; ConfigError naming parallel.compression, through `doc`
/// when given), then, for an explicit "nccl", NotAvailableError from
/// require_nccl(`what`). "auto" picks nccl only for the cuda backend, whose own
/// start-up check names a missing GPU. Not collective: call it in comm::agree.
Transport choose_transport(TransportChoice choice, const std::string& backend, Codec codec,
                           const ConfigDoc* doc,
                           const std::string& what = "parallel.transport = \"nccl\": ");

/// Where a rank sits for the hierarchical NCCL path: its node's index (nodes
/// numbered by their lowest rank), its rank within the node, the node's rank
/// count and the number of nodes. The node leader is local_rank 0.
struct NodeSplit {
  int node = 0;
  int local_rank = 0;
  int local_size = 1;
  int nodes = 1;
  bool leader() const { return local_rank == 0; }
};
/// The split when blocks of `emulate_node_size` (> 0) consecutive ranks count
/// as one node, as CommOptions::emulate_node_size. Pure.
NodeSplit emulated_node_split(int rank, int size, int emulate_node_size);

/// Core's Collectives over NCCL. accepts_device_memory() is true: average(),
/// broadcast() and the gradient buffers may be device memory (host buffers are
/// staged through a device scratch buffer). sum(), max() and gather() carry
/// host scalars (losses, timings) and go through MPI on `world`.
/// Collective over `world`; `local` is this node's communicator
/// (world.split_shared()), which picks the GPU. Throws NotAvailableError
/// (require_nccl) when NCCL cannot run here, ConfigError naming
/// parallel.compression for a codec nccl_codec_refusal() refuses.
/// finish_gradients_each() hands each bucket on as soon as the compute stream
/// waits for it (device buffers) or the host has waited for it and copied it
/// back (host buffers); a final polling host wait for the communication stream
/// follows, so a failed peer still ends the job.
std::unique_ptr<Collectives> make_nccl_collectives(Communicator& world, const Communicator& local,
                                                   const NcclOptions& options);

/// `hpcml bench allreduce --transport nccl`: the sweep of run_allreduce_bench
/// on device buffers (cudaMalloc). Rows with Algo::kNccl are ncclAllReduce
/// (out-of-place and in-place); rows with Algo::kMpi (when spec.algos has it)
/// are MPI_Allreduce staged through host memory (device to host, MPI, host to
/// device), the path a trainer without NCCL takes, so the summary's ratio
/// footer compares the two. #wrong is checked on the copies back in host
/// memory. Collective; throws NotAvailableError (require_nccl) first.
template <class T>
std::vector<AllreduceBenchRow> run_nccl_allreduce_bench(
    Communicator& comm, const Communicator& local, const AllreduceBenchSpec& spec,
    const std::function<void(const AllreduceBenchRow&)>& on_row = {}, int device = -1);

/// The bench header for the NCCL sweep (as allreduce_bench_header, with the
/// NCCL version, the GPU and the buffers line saying what each row measures).
std::string nccl_bench_header(const Communicator& comm, int nodes, const std::string& dtype,
                              const AllreduceBenchSpec& spec, const GpuPlacement& gpu);

}  // namespace hpcml::comm

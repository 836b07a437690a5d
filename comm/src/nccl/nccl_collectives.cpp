// Core's Collectives over NCCL (make_nccl_collectives in hpcml/comm/nccl.hpp).
//
// Gradients: buffers are packed into fusion buckets from the last to the first
// (the order backprop finishes them), as GradientReducer does. When bucket b's
// buffers are all ready and every earlier bucket has started, an event is
// recorded on the compute stream, the communication stream waits for it and
// the bucket is reduced there (in place when the members tile one contiguous
// device range, else packed into a device bucket buffer), by one of three
// paths, all queued on the one communication stream in the same order on
// every rank:
//   flat          ncclAllReduce with ncclAvg over every rank;
//   codec         (parallel.compression fp16 / bf16) device encode with
//                 prescale 1/world into a 16-bit buffer, ncclAllReduce sum in
//                 ncclHalf / ncclBfloat16, device decode into the bucket;
//   hierarchical  (threshold table, several nodes) ncclReduce sum to the node
//                 leader on a per-node communicator, copied to pinned host
//                 memory; at finish the leader waits for it, MPI all-reduces
//                 it among the node leaders, divides by the world size once,
//                 copies it back, and ncclBroadcast sends it through the node.
// Backprop continues on the compute stream meanwhile. finish_gradients() and
// finish_gradients_each() share one loop over the buckets in launch order
// (finish_buckets); the latter hands each bucket to the caller as soon as the
// compute stream is made to wait for its end event (device buffers) or the
// host has waited for it (host buffers). Both end with a polling host wait for
// the communication stream, so a failed peer still ends the job.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "hpcml/comm/nccl.hpp"
#include "hpcml/config.hpp"
#include "nccl_comm.hpp"

// The CUDA device codecs (device_codec.cu) where hpcml_comm compiles them
// (comm/CMakeLists.txt defines HPCML_NCCL_DEVICE_CODECS then).
#ifdef HPCML_NCCL_DEVICE_CODECS
#include "device_codec.hpp"
#endif

namespace hpcml::comm {

namespace {

using Clock = std::chrono::steady_clock;

class NcclCollectives final : public Collectives {
 public:
  NcclCollectives(Communicator& world, const Communicator& local, const NcclOptions& options)
      : world_(world),
        options_(options),
        nccl_(world, local, options.stall_timeout_s, options.device) {
    const std::string refusal = nccl_codec_refusal(options.codec);
    HPCML_REQUIRE(refusal.empty(), ConfigError, "parallel.compression: " + refusal);
    compute_ = options.compute_stream ? static_cast<cudaStream_t>(options.compute_stream)
                                      : cudaStreamLegacy;
    HPCML_NCCL_CUDA(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming));
    split_ = options.emulate_node_size > 0
                 ? emulated_node_split(world.rank(), world.size(), options.emulate_node_size)
                 : NodeSplit{0, local.rank(), local.size(), world.node_count()};
    // The hierarchical path's communicators, when the table can choose it.
    if (options.codec == Codec::kNone &&
        (options.force_hierarchical ||
         (split_.nodes > 1 && options.thresholds.nccl_multinode_algo == NcclPath::kHierarchical)))
      make_node_communicators(local);
  }
  ~NcclCollectives() override {
    nccl_.watch(nullptr);
    for (auto& b : buckets_) destroy_bucket(b);
    if (compute_done_) (void)cudaEventDestroy(compute_done_);
  }
  NcclCollectives(const NcclCollectives&) = delete;
  NcclCollectives& operator=(const NcclCollectives&) = delete;

  int rank() const override { return world_.rank(); }
  int size() const override { return world_.size(); }
  bool accepts_device_memory() const override { return true; }

  void average(const std::vector<std::span<float>>& buffers) override {
    nccl_.ensure_alive();
    after_compute();
    for (const auto& b : buffers) {
      if (b.empty()) continue;
      if (nccl::is_device_pointer(b.data())) {
        HPCML_CHECK_NCCL(nccl_, ncclAllReduce(b.data(), b.data(), b.size(), ncclFloat, ncclAvg,
                                              nccl_.get(), nccl_.stream()));
      } else {
        float* d = scratch(b.size());
        HPCML_NCCL_CUDA(
            cudaMemcpyAsync(d, b.data(), b.size_bytes(), cudaMemcpyHostToDevice, nccl_.stream()));
        HPCML_CHECK_NCCL(
            nccl_, ncclAllReduce(d, d, b.size(), ncclFloat, ncclAvg, nccl_.get(), nccl_.stream()));
        nccl_.wait("average");
        HPCML_NCCL_CUDA(cudaMemcpy(b.data(), d, b.size_bytes(), cudaMemcpyDeviceToHost));
      }
    }
    nccl_.wait("average");
  }
  // Host scalars (losses, counts, timings): MPI.
  void sum(std::span<double> values) override { world_.sum(values); }
  void max(std::span<double> values) override { world_.max(values); }
  std::vector<double> gather(std::span<const double> local) override {
    return world_.gather(local);
  }
  void broadcast(std::span<float> values, int root) override {
    nccl_.ensure_alive();
    if (values.empty()) return;
    after_compute();
    if (nccl::is_device_pointer(values.data())) {
      HPCML_CHECK_NCCL(nccl_, ncclBroadcast(values.data(), values.data(), values.size(), ncclFloat,
                                            root, nccl_.get(), nccl_.stream()));
      nccl_.wait("broadcast");
      return;
    }
    float* d = scratch(values.size());
    HPCML_NCCL_CUDA(cudaMemcpyAsync(d, values.data(), values.size_bytes(), cudaMemcpyHostToDevice,
                                    nccl_.stream()));
    HPCML_CHECK_NCCL(
        nccl_, ncclBroadcast(d, d, values.size(), ncclFloat, root, nccl_.get(), nccl_.stream()));
    nccl_.wait("broadcast");
    HPCML_NCCL_CUDA(cudaMemcpy(values.data(), d, values.size_bytes(), cudaMemcpyDeviceToHost));
  }

  void begin_gradients(const std::vector<std::span<float>>& buffers) override {
    HPCML_REQUIRE(!active_, Error,
                  "begin_gradients called twice without finish_gradients in between");
    nccl_.ensure_alive();
    bool same = buffers.size() == buffers_.size();
    for (std::size_t i = 0; same && i < buffers.size(); ++i)
      same = buffers[i].data() == buffers_[i].data() && buffers[i].size() == buffers_[i].size();
    if (!same) {
      buffers_ = buffers;
      plan();
    }
    ready_.assign(buffers_.size(), false);
    missing_.assign(buckets_.size(), 0);
    for (std::size_t b = 0; b < buckets_.size(); ++b) {
      missing_[b] = buckets_[b].members.size();
      buckets_[b].launched = false;
    }
    next_launch_ = 0;
    active_ = true;
  }

  void gradient_ready(std::size_t index) override {
    HPCML_REQUIRE(active_ && index < buffers_.size(), Error,
                  "gradient_ready(" + std::to_string(index) +
                      ") outside begin/finish_gradients or beyond the " +
                      std::to_string(buffers_.size()) + " buffers given");
    if (ready_[index]) return;
    ready_[index] = true;
    --missing_[bucket_of_[index]];
    while (next_launch_ < buckets_.size() && missing_[next_launch_] == 0) launch(next_launch_++);
  }

  void finish_gradients() override { finish_buckets(nullptr); }
  void finish_gradients_each(const BuffersReady& ready) override { finish_buckets(&ready); }

 private:
  struct Bucket {
    std::vector<std::size_t> members;  // buffer indices, in packing order
    std::vector<std::size_t> offsets;  // element offsets of the members in `packed`
    std::size_t elems = 0;
    float* in_place = nullptr;  // device range the members tile, or null
    bool host = false;          // some member is host memory
    NcclPath path = NcclPath::kFlat;
    nccl::DeviceArray<float> packed;
    nccl::DeviceArray<std::uint16_t> coded;  // the 16-bit encoding (codec buckets)
    float* host_sum = nullptr;               // pinned node sum (hierarchical, node leader)
    cudaEvent_t ready = nullptr, start = nullptr, end = nullptr;
    cudaEvent_t reduced = nullptr;  // node sum in host_sum (hierarchical, node leader)
    bool launched = false;
    Clock::time_point launched_at;
    float* data() const { return in_place ? in_place : packed.data(); }
  };

  static void destroy_bucket(Bucket& b) {
    for (cudaEvent_t e : {b.ready, b.start, b.end, b.reduced})
      if (e) (void)cudaEventDestroy(e);
    b.ready = b.start = b.end = b.reduced = nullptr;
    if (b.host_sum) (void)cudaFreeHost(b.host_sum);
    b.host_sum = nullptr;
  }

  // The per-node MPI and NCCL communicators and the MPI communicator of the
  // node leaders (rank 0 of each node), as the MPI hierarchical algorithm
  // builds them (comm/src/mpi/shm.cpp). Collective over the world.
  void make_node_communicators(const Communicator& local) {
    MPI_Comm node = MPI_COMM_NULL, leaders = MPI_COMM_NULL;
    if (options_.emulate_node_size > 0) {
      HPCML_CHECK_MPI(MPI_Comm_split(world_.get(), split_.node, world_.rank(), &node));
    } else {
      HPCML_CHECK_MPI(MPI_Comm_dup(local.get(), &node));
    }
    node_mpi_ = std::make_unique<Communicator>(Communicator::adopt(node));
    HPCML_CHECK_MPI(
        MPI_Comm_split(world_.get(), split_.leader() ? 0 : MPI_UNDEFINED, world_.rank(), &leaders));
    if (leaders != MPI_COMM_NULL) {
      leaders_ = std::make_unique<Communicator>(Communicator::adopt(leaders));
      CommOptions o = world_.options();
      o.emulate_node_size = 0;  // one leader per node: its own nodes are the real ones
      o.stall_timeout_s = options_.stall_timeout_s;
      o.thresholds = options_.thresholds;
      leaders_->set_options(o);
      if (options_.emulate_node_size <= 0) split_.node = leaders_->rank();
    }
    if (options_.emulate_node_size <= 0)
      HPCML_CHECK_MPI(MPI_Bcast(&split_.node, 1, MPI_INT, 0, node));
    node_ = std::make_unique<nccl::NcclComm>(*node_mpi_, nccl_);
    nccl_.watch(node_.get());
  }

  // The communication stream waits for everything queued on the compute stream.
  void after_compute() {
    HPCML_NCCL_CUDA(cudaEventRecord(compute_done_, compute_));
    HPCML_NCCL_CUDA(cudaStreamWaitEvent(nccl_.stream(), compute_done_, 0));
  }

  float* scratch(std::size_t count) {
    if (scratch_.size() < count) {
      nccl_.wait("staging");  // the old scratch may still be in use
      scratch_ = nccl::DeviceArray<float>(count);
    }
    return scratch_.data();
  }

  NcclPath path_for(std::size_t elems) const {
    if (options_.codec != Codec::kNone) return NcclPath::kFlat;
    if (options_.force_hierarchical) return NcclPath::kHierarchical;
    return choose_nccl_path(options_.thresholds, elems * sizeof(float), split_.nodes);
  }

  void plan() {
    for (auto& b : buckets_) destroy_bucket(b);
    buckets_.clear();
    bucket_of_.assign(buffers_.size(), 0);
    const double limit = options_.fusion_mb * 1024.0 * 1024.0;
    bool open = false;
    for (std::size_t k = buffers_.size(); k-- > 0;) {
      const std::size_t n = buffers_[k].size();
      if (open && (options_.fusion_mb <= 0 ||
                   static_cast<double>((buckets_.back().elems + n) * sizeof(float)) > limit))
        open = false;
      if (!open) {
        buckets_.emplace_back();
        open = true;
      }
      Bucket& cur = buckets_.back();
      cur.members.push_back(k);
      cur.offsets.push_back(cur.elems);
      cur.elems += n;
      bucket_of_[k] = buckets_.size() - 1;
    }
    for (Bucket& b : buckets_) {
      std::vector<std::span<float>> sorted;
      for (std::size_t m : b.members) {
        sorted.push_back(buffers_[m]);
        b.host = b.host || !nccl::is_device_pointer(buffers_[m].data());
      }
      std::sort(sorted.begin(), sorted.end(),
                [](const auto& x, const auto& y) { return x.data() < y.data(); });
      bool tiles = !b.host && !sorted.empty();
      for (std::size_t m = 1; m < sorted.size() && tiles; ++m)
        tiles = sorted[m].data() == sorted[m - 1].data() + sorted[m - 1].size();
      if (tiles) {
        b.in_place = sorted.front().data();
      } else {
        b.packed = nccl::DeviceArray<float>(b.elems);
      }
      b.path = path_for(b.elems);
      HPCML_REQUIRE(b.path == NcclPath::kFlat || node_, Error,
                    "NCCL transport: a hierarchical bucket without node communicators");
      if (options_.codec != Codec::kNone) b.coded = nccl::DeviceArray<std::uint16_t>(b.elems);
      if (b.path == NcclPath::kHierarchical && split_.leader() && b.elems > 0) {
        HPCML_NCCL_CUDA(
            cudaMallocHost(reinterpret_cast<void**>(&b.host_sum), b.elems * sizeof(float)));
        HPCML_NCCL_CUDA(cudaEventCreateWithFlags(&b.reduced, cudaEventDisableTiming));
      }
      HPCML_NCCL_CUDA(cudaEventCreateWithFlags(&b.ready, cudaEventDisableTiming));
      HPCML_NCCL_CUDA(cudaEventCreate(&b.start));
      HPCML_NCCL_CUDA(cudaEventCreate(&b.end));
    }
  }

  // Device members get the reduced packed bucket back (host ones at the end).
  void unpack_device(const Bucket& b) {
    if (b.in_place || b.host) return;
    for (std::size_t m = 0; m < b.members.size(); ++m) {
      const auto& span = buffers_[b.members[m]];
      HPCML_NCCL_CUDA(cudaMemcpyAsync(span.data(), b.packed.data() + b.offsets[m],
                                      span.size_bytes(), cudaMemcpyDeviceToDevice, nccl_.stream()));
    }
  }

  void copy_back_host(const Bucket& b) {
    if (!b.host) return;
    for (std::size_t m = 0; m < b.members.size(); ++m) {
      const auto& span = buffers_[b.members[m]];
      HPCML_NCCL_CUDA(cudaMemcpy(span.data(), b.packed.data() + b.offsets[m], span.size_bytes(),
                                 cudaMemcpyDeviceToHost));
    }
  }

  void launch(std::size_t index) {
    Bucket& b = buckets_[index];
    cudaStream_t s = nccl_.stream();
    b.launched = true;
    b.launched_at = Clock::now();
    HPCML_NCCL_CUDA(cudaEventRecord(b.ready, compute_));
    HPCML_NCCL_CUDA(cudaStreamWaitEvent(s, b.ready, 0));
    HPCML_NCCL_CUDA(cudaEventRecord(b.start, s));
    if (!b.in_place) {
      float* d = b.packed.data();
      for (std::size_t m = 0; m < b.members.size(); ++m) {
        const auto& span = buffers_[b.members[m]];
        HPCML_NCCL_CUDA(cudaMemcpyAsync(d + b.offsets[m], span.data(), span.size_bytes(),
                                        cudaMemcpyDefault, s));
      }
    }
    float* d = b.data();
    if (b.path == NcclPath::kHierarchical) {
      // Node sum at the leader; the rest of the path runs in finish_buckets().
      HPCML_CHECK_NCCL(*node_, ncclReduce(d, d, b.elems, ncclFloat, ncclSum, 0, node_->get(), s));
      if (b.host_sum) {
        HPCML_NCCL_CUDA(
            cudaMemcpyAsync(b.host_sum, d, b.elems * sizeof(float), cudaMemcpyDeviceToHost, s));
        HPCML_NCCL_CUDA(cudaEventRecord(b.reduced, s));
      }
      return;
    }
    if (options_.codec != Codec::kNone) {
      reduce_coded(b, d);
    } else {
      HPCML_CHECK_NCCL(nccl_, ncclAllReduce(d, d, b.elems, ncclFloat, ncclAvg, nccl_.get(), s));
    }
    unpack_device(b);
    HPCML_NCCL_CUDA(cudaEventRecord(b.end, s));
  }

  // fp16 / bf16: encode(x / world), sum of the encodings in 16 bits, decode.
  void reduce_coded([[maybe_unused]] Bucket& b, [[maybe_unused]] float* d) {
#ifdef HPCML_NCCL_DEVICE_CODECS
    cudaStream_t s = nccl_.stream();
    const float prescale = 1.0f / static_cast<float>(size());
    nccl::device_encode(options_.codec, d, b.elems, prescale, b.coded.data(), s);
    const ncclDataType_t type = options_.codec == Codec::kBf16 ? ncclBfloat16 : ncclHalf;
    HPCML_CHECK_NCCL(nccl_, ncclAllReduce(b.coded.data(), b.coded.data(), b.elems, type, ncclSum,
                                          nccl_.get(), s));
    nccl::device_decode(options_.codec, b.coded.data(), b.elems, d, s);
#else
    // The constructor refused the codec (nccl_codec_refusal): unreachable.
    HPCML_THROW(Error, "NCCL transport: parallel.compression = \"" + to_string(options_.codec) +
                           "\" without the device codecs");
#endif
  }

  // The second half of a hierarchical bucket: MPI among the node leaders, the
  // one division by the world size, and the broadcast inside the node.
  void complete_hierarchical(Bucket& b) {
    cudaStream_t s = nccl_.stream();
    float* d = b.data();
    if (b.host_sum) {
      nccl_.wait("hierarchical gradient all-reduce (node sum)", b.reduced);
      leaders_->allreduce<float>(b.host_sum, b.host_sum, b.elems, ReduceOp::kSum, Algo::kAuto);
      const auto n = static_cast<float>(size());
      for (std::size_t i = 0; i < b.elems; ++i) b.host_sum[i] /= n;
      HPCML_NCCL_CUDA(
          cudaMemcpyAsync(d, b.host_sum, b.elems * sizeof(float), cudaMemcpyHostToDevice, s));
    }
    HPCML_CHECK_NCCL(*node_, ncclBroadcast(d, d, b.elems, ncclFloat, 0, node_->get(), s));
    unpack_device(b);
    HPCML_NCCL_CUDA(cudaEventRecord(b.end, s));
  }

  // finish_gradients() (ready == nullptr) and finish_gradients_each(): the
  // buckets in launch order, the same on every rank.
  void finish_buckets(const BuffersReady* ready) {
    HPCML_REQUIRE(active_, Error, "finish_gradients without begin_gradients");
    const auto t_finish = Clock::now();
    for (std::size_t i = 0; i < buffers_.size(); ++i)
      if (!ready_[i]) gradient_ready(i);
    active_ = false;
    for (Bucket& b : buckets_) {
      if (b.path == NcclPath::kHierarchical) complete_hierarchical(b);
      if (!ready) continue;
      if (b.host) {
        // Staged buffers: the host waits for this bucket (polling NCCL's
        // errors and the stall timeout) and copies it back before handing it on.
        nccl_.wait("gradient all-reduce", b.end);
        copy_back_host(b);
      } else {
        // Device buffers: no host wait; work the caller queues on the compute
        // stream runs after the bucket's reduction.
        HPCML_NCCL_CUDA(cudaStreamWaitEvent(compute_, b.end, 0));
      }
      (*ready)(b.members);
    }
    // The final host wait for the communication stream stays even when every
    // bucket was handed on: it is where NCCL's asynchronous errors and the
    // stall timeout are polled, so a failed peer ends the job instead of
    // hanging the compute stream behind a reduction that never completes.
    nccl_.wait("gradient all-reduce");
    // Host buffers come back only now: an asynchronous copy to pageable
    // memory would block inside gradient_ready() until the reduction ends.
    if (!ready)
      for (const Bucket& b : buckets_) copy_back_host(b);
    record_stats(t_finish);
  }

  void record_stats(Clock::time_point t_finish) {
    last_stats_ = {};
    const auto n = static_cast<std::size_t>(size());
    const auto l = static_cast<std::size_t>(split_.local_size);
    const auto nodes = static_cast<std::size_t>(split_.nodes);
    for (Bucket& b : buckets_) {
      const std::size_t raw = b.elems * sizeof(float);
      last_stats_.raw_bytes += raw;
      if (b.path == NcclPath::kHierarchical) {
        // Estimate: reduce and broadcast inside the node, a ring among leaders.
        if (l > 1) last_stats_.wire_bytes += 2 * (l - 1) * raw / l;
        if (split_.leader() && nodes > 1) last_stats_.wire_bytes += 2 * (nodes - 1) * raw / nodes;
      } else if (n > 1) {
        const std::size_t wire = options_.codec != Codec::kNone ? b.elems * 2 : raw;
        last_stats_.wire_bytes += 2 * (n - 1) * wire / n;
      }
      float ms = 0;
      if (cudaEventElapsedTime(&ms, b.start, b.end) != cudaSuccess) {
        (void)cudaGetLastError();
        ms = 0;
      }
      // The part of the bucket's reduction that ran before finish_gradients().
      const double before = std::chrono::duration<double>(t_finish - b.launched_at).count();
      last_stats_.overlapped_s += std::clamp(before, 0.0, static_cast<double>(ms) * 1e-3);
    }
  }

  Communicator& world_;
  NcclOptions options_;
  nccl::NcclComm nccl_;
  NodeSplit split_;
  std::unique_ptr<Communicator> node_mpi_;  // this node's ranks (hierarchical path)
  std::unique_ptr<Communicator> leaders_;   // the node leaders; null on other ranks
  std::unique_ptr<nccl::NcclComm> node_;    // NCCL over node_mpi_, on nccl_'s stream
  cudaStream_t compute_ = nullptr;
  cudaEvent_t compute_done_ = nullptr;
  nccl::DeviceArray<float> scratch_;
  std::vector<std::span<float>> buffers_;
  std::vector<Bucket> buckets_;
  std::vector<std::size_t> bucket_of_;
  std::vector<std::size_t> missing_;
  std::vector<bool> ready_;
  std::size_t next_launch_ = 0;
  bool active_ = false;
};

}  // namespace

std::unique_ptr<Collectives> make_nccl_collectives(Communicator& world, const Communicator& local,
                                                   const NcclOptions& options) {
  return std::make_unique<NcclCollectives>(world, local, options);
}

}  // namespace hpcml::comm

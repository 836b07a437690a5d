// Core's Collectives over NCCL (make_nccl_collectives in hpcml/comm/nccl.hpp).
//
// Gradients: buffers are packed into fusion buckets from the last to the first
// (the order backprop finishes them), as GradientReducer does. When bucket b's
// buffers are all ready and every earlier bucket has started, an event is
// recorded on the compute stream, the communication stream waits for it and
// the bucket is averaged there (ncclAllReduce with ncclAvg; in place when the
// members tile one contiguous device range, else packed into a device bucket
// buffer). Backprop continues on the compute stream meanwhile.
// finish_gradients() waits for the communication stream (polling NCCL's
// asynchronous error and the stall timeout) and copies host buffers back.
#include <algorithm>
#include <chrono>
#include <span>
#include <vector>

#include "hpcml/comm/nccl.hpp"
#include "nccl_comm.hpp"

namespace hpcml::comm {

namespace {

using Clock = std::chrono::steady_clock;

class NcclCollectives final : public Collectives {
 public:
  NcclCollectives(Communicator& world, const Communicator& local, const NcclOptions& options)
      : world_(world), options_(options), nccl_(world, local, options.stall_timeout_s) {
    compute_ = options.compute_stream ? static_cast<cudaStream_t>(options.compute_stream)
                                      : cudaStreamLegacy;
    HPCML_NCCL_CUDA(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming));
  }
  ~NcclCollectives() override {
    for (auto& b : buckets_) destroy_events(b);
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

  void finish_gradients() override {
    HPCML_REQUIRE(active_, Error, "finish_gradients without begin_gradients");
    const auto t_finish = Clock::now();
    for (std::size_t i = 0; i < buffers_.size(); ++i)
      if (!ready_[i]) gradient_ready(i);
    active_ = false;
    nccl_.wait("gradient all-reduce");
    // Host buffers come back only now: an asynchronous copy to pageable
    // memory would block inside gradient_ready() until the reduction ends.
    for (Bucket& b : buckets_) {
      if (!b.host) continue;
      for (std::size_t m = 0; m < b.members.size(); ++m) {
        const auto& span = buffers_[b.members[m]];
        HPCML_NCCL_CUDA(cudaMemcpy(span.data(), b.packed.data() + b.offsets[m], span.size_bytes(),
                                   cudaMemcpyDeviceToHost));
      }
    }
    last_stats_ = {};
    const auto n = static_cast<std::size_t>(size());
    for (Bucket& b : buckets_) {
      const std::size_t raw = b.elems * sizeof(float);
      last_stats_.raw_bytes += raw;
      if (n > 1) last_stats_.wire_bytes += 2 * (n - 1) * raw / n;
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

 private:
  struct Bucket {
    std::vector<std::size_t> members;  // buffer indices, in packing order
    std::vector<std::size_t> offsets;  // element offsets of the members in `packed`
    std::size_t elems = 0;
    float* in_place = nullptr;  // device range the members tile, or null
    bool host = false;          // some member is host memory
    nccl::DeviceArray<float> packed;
    cudaEvent_t ready = nullptr, start = nullptr, end = nullptr;
    bool launched = false;
    Clock::time_point launched_at;
  };

  static void destroy_events(Bucket& b) {
    for (cudaEvent_t e : {b.ready, b.start, b.end})
      if (e) (void)cudaEventDestroy(e);
    b.ready = b.start = b.end = nullptr;
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

  void plan() {
    for (auto& b : buckets_) destroy_events(b);
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
      HPCML_NCCL_CUDA(cudaEventCreateWithFlags(&b.ready, cudaEventDisableTiming));
      HPCML_NCCL_CUDA(cudaEventCreate(&b.start));
      HPCML_NCCL_CUDA(cudaEventCreate(&b.end));
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
    if (b.in_place) {
      HPCML_CHECK_NCCL(nccl_, ncclAllReduce(b.in_place, b.in_place, b.elems, ncclFloat, ncclAvg,
                                            nccl_.get(), s));
    } else {
      float* d = b.packed.data();
      for (std::size_t m = 0; m < b.members.size(); ++m) {
        const auto& span = buffers_[b.members[m]];
        HPCML_NCCL_CUDA(cudaMemcpyAsync(d + b.offsets[m], span.data(), span.size_bytes(),
                                        cudaMemcpyDefault, s));
      }
      HPCML_CHECK_NCCL(nccl_, ncclAllReduce(d, d, b.elems, ncclFloat, ncclAvg, nccl_.get(), s));
      if (!b.host) {
        for (std::size_t m = 0; m < b.members.size(); ++m) {
          const auto& span = buffers_[b.members[m]];
          HPCML_NCCL_CUDA(cudaMemcpyAsync(span.data(), d + b.offsets[m], span.size_bytes(),
                                          cudaMemcpyDeviceToDevice, s));
        }
      }
    }
    HPCML_NCCL_CUDA(cudaEventRecord(b.end, s));
  }

  Communicator& world_;
  NcclOptions options_;
  nccl::NcclComm nccl_;
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

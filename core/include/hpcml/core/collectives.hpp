// What the trainer needs from inter-rank communication. comm/ implements it
// over MPI; core itself knows nothing of MPI. Every method is collective: all
// ranks of the group call it in the same order with the same sizes.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <vector>

namespace hpcml {

/// What the last gradient reduction cost, as seen by the comm layer.
struct GradientCommStats {
  double overlapped_s = 0;     // time reductions were in flight while backprop still computed
  std::size_t wire_bytes = 0;  // bytes this rank sent (after compression)
  std::size_t raw_bytes = 0;   // bytes the gradients occupy uncompressed
};

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// True when the float buffers given to average(), broadcast() and
  /// begin_gradients() may be the compute backend's device memory (an NCCL
  /// transport). False (MPI over host memory): a trainer on a device backend
  /// stages them through host buffers.
  virtual bool accepts_device_memory() const { return false; }

  /// Replaces each buffer by its element-wise mean over all ranks. Buffers are
  /// given in the same order on every rank. After the call every rank holds
  /// bit-identical values.
  virtual void average(const std::vector<std::span<float>>& buffers) = 0;
  /// Element-wise sum over ranks, result on every rank.
  virtual void sum(std::span<double> values) = 0;
  /// Element-wise max over ranks, result on every rank.
  virtual void max(std::span<double> values) = 0;
  /// Copies root's values to every rank.
  virtual void broadcast(std::span<float> values, int root) = 0;
  /// Gathers equal-sized blocks to rank 0 (rank-major). Other ranks get {}.
  virtual std::vector<double> gather(std::span<const double> local) = 0;

  // ---- gradient reduction with overlap -------------------------------------
  // Per step the trainer calls begin_gradients() once with every gradient
  // buffer (same list, same order on every rank), then gradient_ready(i) as soon
  // as backprop has finished buffer i (buffers become ready from the last layer
  // to the first), and finish_gradients() before the optimizer update. After
  // finish_gradients() each buffer holds its mean over ranks, bit-identical on
  // all ranks. An implementation may start reductions inside gradient_ready()
  // (fusion buckets, non-blocking collectives) so they overlap the rest of the
  // backward pass. The defaults simply average everything at the end.
  virtual void begin_gradients(const std::vector<std::span<float>>& buffers) { pending_ = buffers; }
  virtual void gradient_ready(std::size_t /*index*/) {}
  virtual void finish_gradients() {
    average(pending_);
    last_stats_ = {};
    for (const auto& b : pending_) last_stats_.raw_bytes += b.size_bytes();
    last_stats_.wire_bytes = last_stats_.raw_bytes;
  }
  /// Called by finish_gradients_each() for each group of buffers whose means
  /// are final: their indices into begin_gradients()' list.
  using BuffersReady = std::function<void(std::span<const std::size_t> indices)>;
  /// finish_gradients() in pieces: calls `ready` once per group of buffers
  /// (a fusion bucket) as soon as that group's means are final, so the caller
  /// can update those tensors while later groups are still being reduced.
  /// Every index is named exactly once; groups come in the order their
  /// reductions complete, which is the same on every rank. A device transport
  /// may call `ready` before the reduction has finished on the device, with
  /// the compute stream made to wait for it (work the caller then queues on
  /// that stream runs after it). last_gradient_stats() covers the whole call.
  /// Default: finish_gradients(), then one call naming every buffer of
  /// pending_; a class that overrides begin_gradients() overrides this too.
  virtual void finish_gradients_each(const BuffersReady& ready) {
    finish_gradients();
    std::vector<std::size_t> all(pending_.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    ready(all);
  }
  /// Memory for `count` gradient elements that this implementation reduces
  /// fastest (comm/: node-shared memory, which the hierarchical all-reduce
  /// reads and writes in place, without staging copies), or an empty span when
  /// ordinary memory is as good. Collective; the memory stays valid as long as
  /// this object lives.
  virtual std::span<float> gradient_storage(std::size_t /*count*/) { return {}; }
  /// Node-shared memory for the `count` parameters, under the same contract
  /// as gradient_storage(); empty when sharded updates are not available.
  virtual std::span<float> parameter_storage(std::size_t /*count*/) { return {}; }
  /// Sharded update (optimizer work split across ranks): when it returns
  /// true it has replaced finish_gradients() and the optimizer step. It
  /// averaged the gradients, called update(lo, hi, mean) for the ranges
  /// [lo, hi) of the flat parameter vector this rank owns (mean[0, hi - lo)
  /// their averaged gradients; update writes those parameters), and made every
  /// rank's parameters identical by copying the other ranges from their
  /// owners. Needs the gradients and the parameters in gradient_storage() and
  /// parameter_storage(). False: nothing happened; call finish_gradients().
  using RangeUpdate = std::function<void(std::size_t lo, std::size_t hi, const float* mean)>;
  virtual bool finish_gradients_sharded(const RangeUpdate& /*update*/) { return false; }
  /// Statistics of the last finish_gradients().
  virtual GradientCommStats last_gradient_stats() const { return last_stats_; }

 protected:
  std::vector<std::span<float>> pending_;
  GradientCommStats last_stats_;
};

}  // namespace hpcml

// Gradient reduction for the trainer: fusion buckets, overlap with backprop,
// compression, and the configuration keys that drive them.
//
// GradientReducer implements core's Collectives over a Communicator. Per step:
// begin_gradients() with every gradient buffer, gradient_ready(i) as buffer i
// becomes final, finish_gradients() before the update. Buffers are packed into
// buckets of up to parallel.fusion_mb, from the last buffer to the first (the
// order backprop finishes them). Bucket b starts as soon as all its buffers are
// ready and every bucket before it has started, so buckets are reduced in the
// same order on every rank; the reduction runs on the Communicator's progress
// thread (MPI_THREAD_MULTIPLE) while backprop continues with earlier layers.
// Without compression a bucket is all-reduced (average) with parallel.algo;
// with a codec every rank encodes its bucket, the encodings are all-gathered
// and every rank decodes all of them in rank order, so results stay
// bit-identical on all ranks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hpcml/comm/allreduce.hpp"
#include "hpcml/comm/codec.hpp"
#include "hpcml/comm/communicator_collectives.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/core/collectives.hpp"

namespace hpcml {
class ConfigDoc;
}

namespace hpcml::comm {

struct ReducerOptions {
  /// parallel.transport. read_reducer_options() turns "auto" with algo "nccl"
  /// into kNccl; otherwise "auto" is resolved against the backend by the job
  /// (resolve_transport in transport.hpp).
  TransportChoice transport = TransportChoice::kAuto;
  Algo algo = Algo::kAuto;  // parallel.algo
  double fusion_mb = 1;     // parallel.fusion_mb (MiB per bucket; 0 = one bucket per buffer)
  Codec compression = Codec::kNone;  // parallel.compression
  double topk_ratio = 0.01;          // parallel.topk_ratio (fraction of a bucket top-k sends)
  double stall_timeout_s = 300;      // parallel.stall_timeout_s (0 = no stall inspector)
  std::string thresholds;            // parallel.allreduce_thresholds (Thresholds::parse syntax)
  bool sharded_update = true;        // parallel.sharded_update (see GradientReducer)
};

/// Reads the comm keys of the `parallel` table (defaults as above), validating
/// each. Throws ConfigError naming the key: parallel.transport = "nccl" in a
/// build without NCCL ("... not compiled in ..."), parallel.algo = "nccl" with
/// transport "mpi", an MPI algorithm or a codec with transport "nccl".
ReducerOptions read_reducer_options(ConfigDoc& doc);

/// The all-reduce threshold table these options give: defaults <
/// parallel.allreduce_thresholds < HPCML_ALLREDUCE_THRESHOLDS (an expert
/// override). Throws ConfigError naming the source of a bad entry.
Thresholds effective_thresholds(const ReducerOptions& options);

/// One line for the start-of-run log: "algo=auto fusion_mb=1 compression=none ...".
std::string describe(const ReducerOptions& options, const Communicator& comm);

class GradientReducer final : public CommunicatorCollectives {
 public:
  /// `comm` must outlive the reducer. Applies the stall timeout and thresholds
  /// to `comm`'s options. Collective (all ranks, same options).
  GradientReducer(Communicator& comm, const ReducerOptions& options);
  ~GradientReducer() override;
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  void begin_gradients(const std::vector<std::span<float>>& buffers) override;
  void gradient_ready(std::size_t index) override;
  /// finish_gradients_each() with a no-op `ready`.
  void finish_gradients() override;
  /// Launches what backprop left unlaunched, then waits for the buckets in the
  /// order they were launched (the same on every rank) and calls `ready` with
  /// each bucket's buffer indices as soon as its means are final (decoded and
  /// error feedback applied with a codec). last_wait_s() counts the waiting
  /// only, not the time spent in `ready`.
  void finish_gradients_each(const BuffersReady& ready) override;
  /// Node-shared memory (Communicator::allocate_shared) with more than one
  /// rank and no codec, else empty. On a single node the trainer's flat
  /// gradient buffer then goes through the zero-copy hierarchical path.
  std::span<float> gradient_storage(std::size_t count) override;
  /// Node-shared memory for the parameters when sharded updates apply: more
  /// than one rank, all on one node, no codec, algo auto or hierarchical,
  /// sharded_update on, and at least 1024 parameters; else empty.
  std::span<float> parameter_storage(std::size_t count) override;
  /// With both storages in use and the step's buffers inside the gradient
  /// storage: no buckets are launched during backprop; this averages the
  /// gradients with the zero-copy hierarchical path, lets each rank update
  /// the parameter ranges it owns (half each on 2 ranks) and copies the rest
  /// from their owners (Communicator::reduce_update_gather). Same bits as
  /// finish_gradients() plus the full optimizer step.
  bool finish_gradients_sharded(const RangeUpdate& update) override;
  /// True once parameter_storage() has enabled sharded updates.
  bool sharded() const { return !params_.empty(); }

  /// Seconds the last finish_gradients() (or finish_gradients_each(), outside
  /// its `ready` calls) waited for reductions still in flight.
  double last_wait_s() const { return last_wait_s_; }
  /// Number of buckets of the current plan.
  std::size_t bucket_count() const { return buckets_.size(); }
  const ReducerOptions& options() const { return options_; }

 private:
  struct Bucket;
  void plan(const std::vector<std::span<float>>& buffers);
  void launch(std::size_t b);

  ReducerOptions options_;
  std::vector<std::span<float>> buffers_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  std::vector<std::size_t> bucket_of_;  // buffer index -> bucket
  std::vector<std::size_t> missing_;    // per bucket: buffers not yet ready this step
  std::vector<bool> ready_;
  std::vector<Request> inflight_;
  SharedBuffer storage_;
  SharedBuffer params_;
  bool sharded_step_ = false;  // this step's buffers take the sharded update
  std::size_t next_launch_ = 0;
  bool active_ = false;
  double last_wait_s_ = 0;
};

}  // namespace hpcml::comm

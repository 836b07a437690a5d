// Parameter-server mode (parallel.mode = "ps"; docs/parameter-server.md).
//
// The last `servers` world ranks are servers, the others workers (so world
// rank 0 is a worker and writes the run's logs). The flat parameter vector is
// cut at tensor boundaries into one contiguous shard per server, balanced by
// size (plan_shards), so a layer-wise optimizer (LARS, LAMB) sees whole
// tensors on one server.
//
// Workers run the ordinary Trainer with a PsWorker as its Collectives:
// rank()/size() and the collectives are those of the workers'
// sub-communicator (data sharding, metrics, evaluation over W workers);
// finish_gradients_sharded() pushes each shard's gradients to its server
// (started during backprop as soon as the shard's tensors are final), pulls
// the new parameters and returns true: the optimizer step happened on the
// servers.
//
// Servers run run_server(): per push they receive a worker's shard gradients;
// - synchronous (staleness 0): when all W workers' gradients of step t are
//   in, they are summed in worker order and divided by W (the same bits as an
//   all-reduce average on 2 workers), the shard takes one optimizer step with
//   the schedule's rate of step t, and every worker gets the new shard;
// - stale-synchronous (staleness s > 0): each worker's gradient is applied
//   as it arrives (one optimizer step at 1/W of the rate of that worker's
//   clock); a worker's pull after its push of clock c is answered once every
//   worker's clock is at least c - s.
// Every message goes over a private duplicate of MPI_COMM_WORLD. A server
// that waits longer than parallel.stall_timeout_s without a message (a worker
// 1.5 x that, so the server speaks first) throws an Error
// naming the silent ranks (the top-level handler aborts the job), so a dead
// worker never leaves the servers waiting forever.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "hpcml/comm/communicator_collectives.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/core/collectives.hpp"
#include "hpcml/core/train_state.hpp"

namespace hpcml {
class ConfigDoc;
class Backend;
class Model;
class Optimizer;
class LrSchedule;
}  // namespace hpcml

namespace hpcml::comm {

enum class ParallelMode { kAllreduce, kPs };

/// The keys parallel.mode, parallel.servers and parallel.staleness.
struct PsOptions {
  ParallelMode mode = ParallelMode::kAllreduce;
  int servers = 1;    // ranks that hold parameter shards (ps only)
  int staleness = 0;  // 0 = synchronous; s > 0 = stale-synchronous parallel
  bool ps() const { return mode == ParallelMode::kPs; }
};

/// Reads the three keys (defaults as above); a bad value throws ConfigError
/// naming the key. Not collective.
PsOptions read_ps_options(ConfigDoc& doc);

/// Checks `options` against a job of `world_size` ranks: in ps mode at least
/// one worker (servers < ranks). Throws ConfigError naming parallel.servers
/// (through doc.fail, so the file or --set is named too).
void check_ps_layout(const PsOptions& options, int world_size, const ConfigDoc& doc);

/// "allreduce", or "ps: servers=1 (world ranks 3-3) workers=3 staleness=0
/// (synchronous)", for the start-of-run log.
std::string describe(const PsOptions& options, int world_size);

/// Shard bounds: `servers` + 1 offsets into the flat parameter vector, each a
/// tensor boundary, first 0 and last the total; server k holds [b[k], b[k+1]).
/// Contiguous runs of whole tensors, each bound the tensor boundary nearest
/// the equal split. Throws ConfigError (parallel.servers) when there are more
/// servers than tensors.
std::vector<std::size_t> plan_shards(const std::vector<std::size_t>& tensor_sizes, int servers);

/// The roles of a job: workers are world ranks [0, workers), servers
/// [workers, world size). Made collectively by every world rank.
class PsGroup {
 public:
  /// Collective over `world`.
  PsGroup(const Communicator& world, const PsOptions& options, double stall_timeout_s);
  bool is_server() const { return server_index_ >= 0; }
  int server_index() const { return server_index_; }  // -1 on a worker
  int workers() const { return workers_; }
  int servers() const { return servers_; }
  int staleness() const { return staleness_; }
  double stall_timeout_s() const { return stall_timeout_s_; }
  /// The private duplicate of the world for the PS messages.
  Communicator& messages() { return messages_; }
  /// Workers only (a null communicator on servers).
  Communicator& worker_comm() { return workers_comm_; }

 private:
  Communicator messages_;
  Communicator workers_comm_;
  int workers_ = 0, servers_ = 0, staleness_ = 0, server_index_ = -1;
  double stall_timeout_s_ = 0;
};

/// One server step (sync: optimizer step t; SSP: the step of the workers'
/// clock t), as the server saw it, from the run's (or resume's) first step on.
/// Seconds.
struct PsStepRecord {
  double wait_s = 0;         // idle: no message to handle
  double push_s = 0;         // receiving gradients (and summing them, sync)
  double update_s = 0;       // the optimizer on the shard
  double pull_s = 0;         // copying and sending parameters back
  int staleness_max = 0;     // most steps a reply's parameters lagged the asker's clock
  double staleness_sum = 0;  // sum over replies (mean = sum / replies)
  int replies = 0;           // pulls answered for this step
  static constexpr std::size_t kFields = 7;
};

/// What a server holds and updates: its shard of `model`'s parameters with
/// `optimizer` (made for the whole model; elementwise optimizers update the
/// shard only, layer-wise ones take a full step on gradients that are zero
/// outside the shard, whose result outside it is never sent), the learning
/// rate of each step from `schedule`.
struct PsShard {
  Model& model;
  Optimizer& optimizer;
  const LrSchedule& schedule;
  Backend& backend;
  bool layer_wise = false;
  /// A resumed run (synchronous only): the checkpoint's state, whose shard of
  /// parameters and optimizer state the server takes, and whose global step
  /// is the server's first. Null: a fresh start at step 0.
  const TrainState* resume = nullptr;
};

/// The server loop: answers workers until all have said they are done, then
/// sends its records to world rank 0 (collect_server_records). Throws Error
/// when no message arrives for the stall timeout while a worker is not done,
/// or a message has the wrong size.
std::vector<PsStepRecord> run_server(PsGroup& group, const std::vector<std::size_t>& bounds,
                                     PsShard shard);

/// World rank 0, after its own PsWorker::done(): every server's records, in
/// server order.
std::vector<std::vector<PsStepRecord>> collect_server_records(PsGroup& group);

/// Worker side of PS mode (see the top of this file).
class PsWorker final : public CommunicatorCollectives {
 public:
  /// `group` must outlive the worker. `bounds` as plan_shards() gives them.
  PsWorker(PsGroup& group, std::vector<std::size_t> bounds);
  ~PsWorker() override;
  PsWorker(const PsWorker&) = delete;
  PsWorker& operator=(const PsWorker&) = delete;

  /// Flat storage this worker owns: the gradients go to the servers from it,
  /// the parameters come back into it.
  std::span<float> gradient_storage(std::size_t count) override;
  std::span<float> parameter_storage(std::size_t count) override;
  void begin_gradients(const std::vector<std::span<float>>& buffers) override;
  void gradient_ready(std::size_t index) override;
  /// Push the rest, pull every shard; never calls `update` (the servers
  /// updated). Returns true.
  bool finish_gradients_sharded(const RangeUpdate& update) override;
  /// Not used in ps mode (finish_gradients_sharded always succeeds): throws.
  void finish_gradients() override;
  /// Not used in ps mode either (the servers update, per shard): throws.
  void finish_gradients_each(const BuffersReady& ready) override;

  /// Tells every server this worker has finished (orderly end). Call once,
  /// after training, on every worker.
  void done();
  /// The servers' optimizer state (slots x parameters, slot-major, as
  /// Optimizer::state()) into `state`, for a checkpoint: world rank 0 only,
  /// between steps of a synchronous run (the state then is that of the last
  /// step this worker pulled).
  void fetch_optimizer_state(std::span<float> state, std::size_t slots);
  /// Seconds per step this worker spent pushing (waiting for its sends) and
  /// pulling (waiting for the parameters), and the steps counted.
  double push_s() const { return push_s_; }
  double pull_s() const { return pull_s_; }
  std::size_t steps() const { return steps_; }

 private:
  void send_shard(std::size_t k);

  PsGroup& group_;
  std::vector<std::size_t> bounds_;
  std::vector<float> grads_, params_;
  std::vector<std::size_t> shard_of_;  // buffer index -> shard
  std::vector<std::size_t> missing_;   // per shard: buffers not final yet this step
  std::vector<MPI_Request> sends_;     // per shard (MPI_REQUEST_NULL when not sent)
  bool done_ = false;
  double push_s_ = 0, pull_s_ = 0;
  std::size_t steps_ = 0;
};

}  // namespace hpcml::comm

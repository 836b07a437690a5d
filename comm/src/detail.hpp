// Internals of the collective layer shared by the algorithm files: the Engine
// (private communicator duplicates, collective sequence numbers, the waiting
// loop with the stall inspector), the shared-memory node and the progress thread.
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hpcml/comm/allreduce.hpp"
#include "hpcml/comm/liveness.hpp"
#include "hpcml/comm/mpi.hpp"
#include "transport.hpp"

namespace hpcml::comm::detail {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

template <class T>
MPI_Datatype mpi_type();
template <>
inline MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}
template <>
inline MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}
template <>
inline MPI_Datatype mpi_type<unsigned char>() {
  return MPI_BYTE;
}

int checked_int(std::size_t n);

class ShmNode;
struct SharedHit;

/// One private duplicate of a user communicator with everything a collective
/// needs while it runs. Used by one thread at a time.
class Engine {
 public:
  /// Collective over `parent`. With `waiter`, the duplication is non-blocking
  /// and waited for through waiter (so a late rank trips its stall inspector).
  Engine(MPI_Comm parent, const CommOptions& options, Engine* waiter = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  MPI_Comm comm() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  const CommOptions& options() const { return options_; }
  /// Collective when it changes the shared-memory layout (the node is rebuilt).
  void set_options(const CommOptions& options);

  /// Marks the start of collective number seq()+1 named `what` (for stall reports).
  void begin(const char* what);
  std::uint64_t seq() const { return seq_; }

  /// Called by waiting loops each time they made no progress: spins, then
  /// yields, then sleeps briefly (ranks may share cores), answers stall
  /// census requests and fires the stall inspector after the timeout.
  void idle(unsigned& spins);
  /// MPI_Waitall with idle() in between (stall-aware).
  void wait_all(int n, MPI_Request* requests);

  ShmNode& shm();

 private:
  void answer_census();
  [[noreturn]] void stall(double waited);
  // Peers on this node whose process can be looked up (see liveness.hpp).
  void watch_peers(Engine* waiter);
  void check_peers();

  struct WatchedPeer {
    int rank = 0;        // in comm_
    int world_rank = 0;  // in MPI_COMM_WORLD (what the user sees)
    ProcessIdentity process;
  };

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm census_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  CommOptions options_;
  std::uint64_t seq_ = 0;
  const char* what_ = "";
  Clock::time_point started_;
  Clock::time_point last_census_check_;
  Clock::time_point wait_started_;
  std::vector<MPI_Request> census_sends_;
  std::vector<std::uint64_t> census_payload_;
  std::unique_ptr<ShmNode> shm_;
  std::vector<WatchedPeer> watched_;
  Clock::time_point last_peer_check_;
};

/// Node-local shared memory (MPI_Win_allocate_shared over the ranks of one
/// node) and the hierarchical all-reduce built on it.
class ShmNode {
 public:
  ShmNode(Engine& engine);  // collective over engine.comm()
  ~ShmNode();
  ShmNode(const ShmNode&) = delete;
  ShmNode& operator=(const ShmNode&) = delete;

  template <class T>
  void allreduce(const T* send, T* recv, std::size_t count, ReduceOp op);
  /// Node-shared messages below this size take the staged path: its two
  /// synchronisations beat the zero-copy path's three (measured crossover on
  /// 2 ranks: about 4 KiB). The choice depends on the count only.
  static constexpr std::size_t kZeroCopyMinBytes = 4096;
  /// Called for each piece [lo, hi) of this rank's part with the reduced
  /// values mean[0, hi - lo); must write recv[lo, hi).
  template <class T>
  using Epilogue = std::function<void(std::size_t, std::size_t, const T*)>;
  /// Zero-copy average of node-shared `grads` where each rank passes its
  /// part's mean to `update` (which writes those `params`) and then copies
  /// the other parts of `params` from their owners. False (nothing done, on
  /// every rank alike) when the buffers are not node-shared, the message is
  /// under 4 KiB or the ranks span several nodes.
  template <class T>
  bool reduce_update_gather(const T* grads, T* params, std::size_t count,
                            const Epilogue<T>& update);
  int local_size() const { return local_size_; }
  /// The largest local size of any node: the same on every rank, so automatic
  /// selection agrees on every rank when nodes hold different rank counts.
  int max_local_size() const { return max_local_size_; }
  int nodes() const { return nodes_; }

 private:
  struct alignas(64) Flag {
    std::atomic<std::uint64_t> value{0};
  };
  // What a rank passes to the current all-reduce: which node-shared buffers (0
  // = private memory, staged through the slots) at which byte offsets, tagged
  // with the segment it belongs to. Ranks compare them before touching peers'
  // memory, so mismatched calls fail on every rank instead of corrupting data.
  // Two per rank, by segment parity: a rank can publish segment g+1 only
  // after passing the arrival of g, and nobody passes the arrival of g+1
  // before every rank has checked g, so segment g's descriptors stay readable
  // until all ranks have compared them.
  struct alignas(64) Descriptor {
    std::atomic<std::uint64_t> segment{0}, send_id{0}, send_offset{0}, recv_id{0}, recv_offset{0};
  };
  struct Control {
    Flag arrived, reduced, final, done;
    Flag progress;  // zero-copy path: pieces of its part this rank has reduced, cumulative
    Descriptor descriptor[2];
  };
  // Whether send and recv (`bytes` each) take the zero-copy path; fills in
  // where they lie.
  bool zero_copy(const void* send, const void* recv, std::size_t bytes, SharedHit& s,
                 SharedHit& r) const;
  // Zero-copy path over node-shared buffers (one segment, no staging); `s`
  // and `r` locate send and recv (recv is this rank's).
  template <class T>
  void allreduce_shared(T* recv, std::size_t count, ReduceOp op, const SharedHit& s,
                        const SharedHit& r, const Epilogue<T>* epilogue);
  void publish_and_check(std::uint64_t g, std::uint64_t send_id, std::uint64_t send_offset,
                         std::uint64_t recv_id, std::uint64_t recv_offset);
  Control& control(int p) {
    return *reinterpret_cast<Control*>(base_[static_cast<std::size_t>(p)]);
  }
  char* slot(int p, std::uint64_t segment) {
    return base_[static_cast<std::size_t>(p)] + sizeof(Control) + (segment % 2) * slot_bytes_;
  }
  template <class Pred>
  void wait_until(Pred pred);

  Engine& engine_;
  MPI_Comm local_ = MPI_COMM_NULL, leaders_ = MPI_COMM_NULL;
  int local_rank_ = 0, local_size_ = 1, max_local_size_ = 1, nodes_ = 1;
  MPI_Win win_ = MPI_WIN_NULL;
  std::vector<char*> base_;
  std::size_t slot_bytes_ = 0;
  std::uint64_t segment_ = 0;  // segments processed so far, same on all local ranks
  std::vector<char> leader_buffer_;
  std::vector<int> members_;  // ranks of engine.comm() on this node, by local rank
  // Zero-copy path: every local rank's progress counter at the start of the
  // next call (all ranks track all counters identically), pieces copied so far.
  std::vector<std::uint64_t> progress_base_;
  std::vector<std::size_t> copied_;
  std::vector<char> scratch_;  // one piece's reduced values for an epilogue
};

/// One node-shared allocation (see SharedBuffer): the window, this rank's
/// segment and every local rank's segment address, registered in a
/// process-wide table that ShmNode::allreduce consults.
class SharedWindow {
 public:
  SharedWindow(MPI_Comm comm, std::size_t bytes);  // collective over comm
  ~SharedWindow();
  SharedWindow(const SharedWindow&) = delete;
  SharedWindow& operator=(const SharedWindow&) = delete;
  char* data() const { return mine_; }
  int local_size() const { return local_size_; }

 private:
  MPI_Comm local_ = MPI_COMM_NULL;
  MPI_Win win_ = MPI_WIN_NULL;
  char* mine_ = nullptr;
  int local_size_ = 0;
  std::uint64_t id_ = 0;
};

/// The node-shared allocation holding [p, p + bytes) in this process, if any.
struct SharedHit {
  std::uint64_t id = 0;  // same on every local rank for the same allocation
  std::size_t offset = 0;
  const std::vector<char*>* bases = nullptr;  // segment start per local rank
  const std::vector<int>* members =
      nullptr;  // ranks (of the allocating comm's world) per local rank
};
bool find_shared(const void* p, std::size_t bytes, SharedHit& hit);

/// Element-wise acc[i] = in[i] (op) acc[i].
template <class T>
void reduce_into(T* acc, const T* in, std::size_t n, ReduceOp op);
template <class T>
void scale(T* data, std::size_t n, int ranks);

/// The own algorithms, run on `engine` (after engine.begin()).
template <class T>
void ring_allreduce(const T* send, T* recv, std::size_t count, ReduceOp op, MPI_Comm comm,
                    Engine& engine);
template <class T>
void recursive_doubling_allreduce(const T* send, T* recv, std::size_t count, ReduceOp op,
                                  Engine& engine);
template <class T>
void mpi_allreduce(const T* send, T* recv, std::size_t count, ReduceOp op, Engine& engine);
MPI_Op mpi_op(ReduceOp op);

/// A pending MPI non-blocking operation; `finish` runs once it completed.
class MpiRequest final : public RequestImpl {
 public:
  MpiRequest(Engine& engine, std::function<void()> finish)
      : engine_(engine), finish_(std::move(finish)) {}
  ~MpiRequest() override;
  MpiRequest(const MpiRequest&) = delete;
  MpiRequest& operator=(const MpiRequest&) = delete;
  MPI_Request* handle() { return &req_; }
  bool test() override;
  void wait() override;

 private:
  void finish();
  Engine& engine_;
  std::function<void()> finish_;
  MPI_Request req_ = MPI_REQUEST_NULL;
  bool complete_ = false;
};

/// One progress thread with its own Engine: jobs run one after another in
/// submission order.
class AsyncEngine {
 public:
  AsyncEngine(MPI_Comm parent, const CommOptions& options, Engine& waiter);  // collective
  ~AsyncEngine();
  AsyncEngine(const AsyncEngine&) = delete;
  AsyncEngine& operator=(const AsyncEngine&) = delete;

  Request submit(std::function<void(Engine&)> job);
  void set_options(const CommOptions& options);

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    std::exception_ptr error;
  };
  class JobRequest;
  struct Job {
    std::function<void(Engine&)> fn;
    std::shared_ptr<State> state;
  };
  void loop();

  Engine engine_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace hpcml::comm::detail

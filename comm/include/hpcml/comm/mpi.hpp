// RAII over MPI: the environment (init/finalize) and communicators (owning or
// borrowed). A Communicator implements core's Collectives interface so the
// trainer can use it without knowing MPI. HPCML_CHECK_MPI, abort_job and the
// one agree() come from hpcml_mpi (hpcml/mpi/); this header re-exports them.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hpcml/comm/allreduce.hpp"
#include "hpcml/core/collectives.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/mpi/agree.hpp"
#include "hpcml/mpi/check.hpp"

namespace hpcml::comm {

namespace detail {
class Engine;
class AsyncEngine;
class SharedWindow;
}  // namespace detail

// Kept reachable as comm::abort_job for the launcher's top-level handler.
using ::hpcml::mpi::abort_job;

/// Initialises MPI for the lifetime of the object (MPI_Init_thread with
/// `required`), unless MPI is already initialised, in which case it borrows it
/// and does not finalize. Without mpiexec MPICH starts as a singleton (1 rank).
/// The destructor does not finalize while an exception is propagating: the
/// top-level handler (jobs/main.cpp) finalizes or aborts.
/// The default asks for MPI_THREAD_MULTIPLE because the non-blocking forms of
/// the own all-reduce algorithms run on a progress thread (see Communicator).
class MpiEnvironment {
 public:
  explicit MpiEnvironment(int required = MPI_THREAD_MULTIPLE);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;

  int provided_thread_level() const { return provided_; }
  /// "MPICH Version: 4.0.2 ..." first line of MPI_Get_library_version.
  static std::string library_version();
  static bool initialized();

 private:
  bool owns_ = false;
  int provided_ = MPI_THREAD_SINGLE;
};

/// Node-shared memory for collective buffers, the analogue of MPI_Alloc_mem or
/// NCCL's registered buffers: this rank's segment of an MPI_Win_allocate_shared
/// window over the ranks of its node. The hierarchical all-reduce reads and
/// writes peers' node-shared buffers directly, with no staging copies, when
/// every rank passes send and recv buffers that lie in node-shared buffers from
/// the same allocation at the same offsets (Communicator::allocate_shared).
/// Creating and destroying one are collective over the communicator that
/// allocated it; a default-constructed one is empty. Move-only.
class SharedBuffer {
 public:
  SharedBuffer();
  ~SharedBuffer();
  SharedBuffer(SharedBuffer&&) noexcept;
  SharedBuffer& operator=(SharedBuffer&&) noexcept;
  SharedBuffer(const SharedBuffer&) = delete;
  SharedBuffer& operator=(const SharedBuffer&) = delete;

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }
  /// The memory as `bytes() / sizeof(T)` elements of T (64-byte aligned start).
  template <class T>
  std::span<T> as() const {
    return {static_cast<T*>(data_), bytes_ / sizeof(T)};
  }
  /// Ranks of the node that share this allocation (0 when empty).
  int local_size() const;

 private:
  friend class Communicator;
  std::unique_ptr<detail::SharedWindow> window_;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

/// A communicator. Owning instances free their MPI_Comm on destruction (skipped
/// after MPI_Finalize); borrowed ones (world(), wrap()) never do.
///
/// Besides core's Collectives it offers typed collectives with an algorithm
/// choice (T = float or double). Every collective must be called by all ranks
/// in the same order with the same count, op and algo. The own algorithms and
/// the stall inspector work on private duplicates of the communicator created
/// at the first collective call, so they never match user messages.
/// Non-blocking forms: Algo::kMpi uses MPI_Iallreduce (progressed by
/// Request::test()/wait()); the own algorithms run, in call order, on one
/// progress thread per Communicator, which needs MPI_THREAD_MULTIPLE; at a
/// lower thread level they complete inside the call (no overlap).
class Communicator final : public Collectives {
 public:
  /// Borrows MPI_COMM_WORLD.
  static Communicator world();
  /// Borrows an existing communicator.
  static Communicator wrap(MPI_Comm comm);
  /// Takes ownership of a communicator created by the caller.
  static Communicator adopt(MPI_Comm comm);

  Communicator();
  ~Communicator() override;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  Communicator(Communicator&& other) noexcept;
  Communicator& operator=(Communicator&& other) noexcept;

  MPI_Comm get() const { return comm_; }
  int rank() const override;
  int size() const override;

  /// `bytes` of node-shared memory for this rank, zero-filled (see
  /// SharedBuffer). Collective; every rank may ask for a different size, but
  /// the zero-copy all-reduce needs the same offsets on every rank.
  SharedBuffer allocate_shared(std::size_t bytes);

  /// The ranks sharing this rank's node (MPI_COMM_TYPE_SHARED), owning.
  Communicator split_shared() const;
  /// Number of distinct nodes among this communicator's ranks. Collective.
  int node_count() const;
  void barrier() const;

  // Collectives (see core/collectives.hpp for the contract).
  void average(const std::vector<std::span<float>>& buffers) override;
  void sum(std::span<double> values) override;
  void max(std::span<double> values) override;
  void broadcast(std::span<float> values, int root) override;
  std::vector<double> gather(std::span<const double> local) override;
  /// Copies root's string to every rank.
  std::string broadcast_string(const std::string& value, int root) const;

  // ---- typed collectives with an algorithm choice --------------------------
  /// Tuning and stall inspector; defaults: CommOptions::from_environment().
  /// Takes effect for collectives started afterwards; must match on all ranks.
  void set_options(const CommOptions& options);
  const CommOptions& options() const { return options_; }

  /// recv[i] = op over ranks of send[i], on every rank. send == recv is the
  /// in-place form. Throws Error for null buffers with count > 0, partially
  /// overlapping buffers, or an algorithm whose transport this build lacks
  /// (NotAvailableError from require_built(), e.g. Algo::kNccl).
  template <class T>
  void allreduce(const T* send, T* recv, std::size_t count, ReduceOp op = ReduceOp::kSum,
                 Algo algo = Algo::kAuto);
  template <class T>
  Request iallreduce(const T* send, T* recv, std::size_t count, ReduceOp op = ReduceOp::kSum,
                     Algo algo = Algo::kAuto);
  /// Sharded update over node-shared memory (ZeRO stage 1 style, without
  /// sharding the optimizer state's memory): averages `grads` over the ranks,
  /// calls update(lo, hi, mean) for the ranges [lo, hi) of `params` this rank
  /// owns (mean[0, hi - lo) their averaged gradients; update must write those
  /// params), then copies the other ranges of `params` from their owners, so
  /// all ranks end with identical params. The mean has the bits of
  /// allreduce(average, hierarchical). Returns false, having done nothing on
  /// every rank, unless both buffers lie in node-shared buffers
  /// (allocate_shared) at the same offsets on every rank, all ranks share one
  /// node and count * 4 >= 4 KiB. Collective.
  bool reduce_update_gather(
      const float* grads, float* params, std::size_t count,
      const std::function<void(std::size_t, std::size_t, const float*)>& update);
  /// The algorithm Algo::kAuto resolves to for a message of `bytes` here.
  Algo choose(std::size_t bytes);

  template <class T>
  void broadcast(T* data, std::size_t count, int root);
  template <class T>
  Request ibroadcast(T* data, std::size_t count, int root);
  /// recv (count * size() elements) gets every rank's `count` elements, rank-major.
  template <class T>
  void allgather(const T* send, std::size_t count, T* recv);
  template <class T>
  Request iallgather(const T* send, std::size_t count, T* recv);
  Request ibarrier();

  /// Runs `job` on this communicator's progress thread after every job
  /// submitted before it (same order on all ranks: jobs may call collectives on
  /// the Engine they receive). Without MPI_THREAD_MULTIPLE it runs now.
  Request submit(std::function<void(detail::Engine&)> job);
  /// True when submit()/iallreduce() of own algorithms really overlap.
  bool has_progress_thread() const;

 private:
  Communicator(MPI_Comm comm, bool owning);
  void release() noexcept;
  detail::Engine& engine();

  MPI_Comm comm_ = MPI_COMM_NULL;
  bool owning_ = false;
  std::vector<float> scratch_;
  CommOptions options_;
  std::unique_ptr<detail::Engine> engine_;
  std::unique_ptr<detail::AsyncEngine> async_;
};

/// mpi::agree() over `comm`: runs `fn` on every rank and, if it threw on any
/// rank, every rank throws the same collective Error (see hpcml/mpi/agree.hpp).
inline void agree(const Communicator& comm, const std::function<void()>& fn) {
  mpi::agree(comm.get(), fn);
}

}  // namespace hpcml::comm

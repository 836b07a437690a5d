// Hierarchical all-reduce: node-local reduction through an MPI shared-memory
// window, a ring among node leaders, and a node-local copy-out.
//
// The message is processed in segments that fit a staging slot (two slots per
// rank, used alternately, so copying in segment g+1 overlaps peers still
// reading segment g). Per segment: every rank copies its input into its slot
// and raises `arrived`; each rank then reduces its own part of the segment
// reading all peers' slots directly (ranks 0..L-1 in that fixed order) and
// raises `reduced`; finally every rank copies the other parts out of the peers'
// slots and raises `done`. With several nodes, local rank 0 gathers the node's
// sum, runs the ring with the other leaders, publishes the result in its slot
// and raises `final`. Flags are monotonic segment counters in the window, so
// waiting is a load-acquire spin (yielding, stall-aware) with no MPI call.
#include <algorithm>
#include <array>
#include <cstring>
#include <new>

#include "detail.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::comm::detail {

ShmNode::ShmNode(Engine& engine) : engine_(engine) {
  const MPI_Comm comm = engine.comm();
  const int k = engine.options().emulate_node_size;
  if (k > 0) {
    HPCML_CHECK_MPI(MPI_Comm_split(comm, engine.rank() / k, engine.rank(), &local_));
  } else {
    HPCML_CHECK_MPI(
        MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, engine.rank(), MPI_INFO_NULL, &local_));
  }
  MPI_Comm_rank(local_, &local_rank_);
  MPI_Comm_size(local_, &local_size_);
  HPCML_CHECK_MPI(
      MPI_Comm_split(comm, local_rank_ == 0 ? 0 : MPI_UNDEFINED, engine.rank(), &leaders_));
  int leader = local_rank_ == 0 ? 1 : 0;
  HPCML_CHECK_MPI(MPI_Allreduce(&leader, &nodes_, 1, MPI_INT, MPI_SUM, comm));

  slot_bytes_ = (std::max<std::size_t>(engine.options().shm_slot_bytes, 4096) + 63) / 64 * 64;
  const auto bytes = static_cast<MPI_Aint>(sizeof(Control) + 2 * slot_bytes_);
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "true");  // each segment on its owner's NUMA node
  void* mine = nullptr;
  const int rc = MPI_Win_allocate_shared(bytes, 1, info, local_, &mine, &win_);
  MPI_Info_free(&info);
  HPCML_CHECK_MPI(rc);
  new (mine) Control();
  base_.resize(static_cast<std::size_t>(local_size_));
  for (int p = 0; p < local_size_; ++p) {
    MPI_Aint size = 0;
    int disp = 0;
    void* ptr = nullptr;
    HPCML_CHECK_MPI(MPI_Win_shared_query(win_, p, &size, &disp, &ptr));
    base_[static_cast<std::size_t>(p)] = static_cast<char*>(ptr);
  }
  HPCML_CHECK_MPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, win_));
  HPCML_CHECK_MPI(MPI_Barrier(local_));  // every Control constructed before anyone polls
}

ShmNode::~ShmNode() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (win_ != MPI_WIN_NULL) {
    MPI_Win_unlock_all(win_);
    MPI_Win_free(&win_);
  }
  if (leaders_ != MPI_COMM_NULL) MPI_Comm_free(&leaders_);
  if (local_ != MPI_COMM_NULL) MPI_Comm_free(&local_);
}

template <class Pred>
void ShmNode::wait_until(Pred pred) {
  unsigned spins = 0;
  while (!pred()) engine_.idle(spins);
}

template <class T>
void ShmNode::allreduce(const T* send, T* recv, std::size_t count, ReduceOp op) {
  const int L = local_size_, me = local_rank_;
  const bool multi = nodes_ > 1;
  const ReduceOp local_op = op == ReduceOp::average ? ReduceOp::sum : op;
  const std::size_t seg = slot_bytes_ / sizeof(T);
  const auto NL = static_cast<std::size_t>(L);
  auto all = [&](Flag Control::*flag, std::uint64_t at_least) {
    for (int p = 0; p < L; ++p)
      if ((control(p).*flag).value.load(std::memory_order_acquire) < at_least) return false;
    return true;
  };
  constexpr std::size_t kChunk = 2048;  // reduction unit that stays in L1
  std::array<T, kChunk> acc;

  for (std::size_t off = 0; off < count; off += seg) {
    const std::size_t len = std::min(seg, count - off);
    auto part_lo = [&](int p) {
      const auto q = static_cast<std::size_t>(p);
      return len / NL * q + std::min(q, len % NL);
    };
    const std::uint64_t g = segment_++;
    if (g >= 2) wait_until([&] { return all(&Control::done, g - 1); });  // slot g%2 free again
    T* mine = reinterpret_cast<T*>(slot(me, g));
    std::memcpy(mine, send + off, len * sizeof(T));
    control(me).arrived.value.store(g + 1, std::memory_order_release);
    wait_until([&] { return all(&Control::arrived, g + 1); });

    // Reduce my part in the fixed order 0, 1, ..., L-1.
    const std::size_t plo = part_lo(me), phi = part_lo(me + 1);
    for (std::size_t i = plo; i < phi; i += kChunk) {
      const std::size_t n = std::min(kChunk, phi - i);
      std::memcpy(acc.data(), reinterpret_cast<const T*>(slot(0, g)) + i, n * sizeof(T));
      for (int p = 1; p < L; ++p)
        reduce_into(acc.data(), reinterpret_cast<const T*>(slot(p, g)) + i, n, local_op);
      if (!multi && op == ReduceOp::average) scale(acc.data(), n, L);
      std::memcpy(mine + i, acc.data(), n * sizeof(T));
      if (!multi) std::memcpy(recv + off + i, acc.data(), n * sizeof(T));
    }
    control(me).reduced.value.store(g + 1, std::memory_order_release);

    if (!multi) {
      for (int p = 0; p < L; ++p) {
        if (p == me) continue;
        wait_until([&] { return control(p).reduced.value.load(std::memory_order_acquire) > g; });
        const std::size_t lo = part_lo(p), hi = part_lo(p + 1);
        std::memcpy(recv + off + lo, reinterpret_cast<const T*>(slot(p, g)) + lo,
                    (hi - lo) * sizeof(T));
      }
    } else if (me == 0) {
      wait_until([&] { return all(&Control::reduced, g + 1); });
      leader_buffer_.resize(seg * sizeof(T));
      T* node_sum = reinterpret_cast<T*>(leader_buffer_.data());
      for (int p = 0; p < L; ++p) {
        const std::size_t lo = part_lo(p), hi = part_lo(p + 1);
        std::memcpy(node_sum + lo, reinterpret_cast<const T*>(slot(p, g)) + lo,
                    (hi - lo) * sizeof(T));
      }
      ring_allreduce(node_sum, node_sum, len, local_op, leaders_, engine_);
      if (op == ReduceOp::average) scale(node_sum, len, engine_.size());
      std::memcpy(mine, node_sum, len * sizeof(T));  // peers are done reading inputs
      control(me).final.value.store(g + 1, std::memory_order_release);
      std::memcpy(recv + off, node_sum, len * sizeof(T));
    } else {
      wait_until([&] { return control(0).final.value.load(std::memory_order_acquire) > g; });
      std::memcpy(recv + off, reinterpret_cast<const T*>(slot(0, g)), len * sizeof(T));
    }
    control(me).done.value.store(g + 1, std::memory_order_release);
  }
}

template void ShmNode::allreduce<float>(const float*, float*, std::size_t, ReduceOp);
template void ShmNode::allreduce<double>(const double*, double*, std::size_t, ReduceOp);

}  // namespace hpcml::comm::detail

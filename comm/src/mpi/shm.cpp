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
//
// Zero-copy path: when send and recv lie in node-shared buffers
// (Communicator::allocate_shared) on a single node, nothing is staged. Each
// rank reduces its part straight from the peers' send buffers into its own
// recv buffer, piece by piece, raising its cumulative `progress` counter after
// each; it copies the peers' pieces from their recv buffers as their counters
// show them reduced, raises `done`, and returns once every rank is done (so
// nobody still reads its buffers). Per rank that is one read of the message,
// one write of it and one read of its own part, against a copy in, a
// reduction and a copy out through the slots.
#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>

#include "../detail.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::comm::detail {

namespace {

std::vector<int> world_ranks(MPI_Comm comm) {
  MPI_Group group = MPI_GROUP_NULL, world = MPI_GROUP_NULL;
  MPI_Comm_group(comm, &group);
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  int n = 0;
  MPI_Group_size(group, &n);
  std::vector<int> in(static_cast<std::size_t>(n)), out(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) in[static_cast<std::size_t>(i)] = i;
  MPI_Group_translate_ranks(group, n, in.data(), world, out.data());
  MPI_Group_free(&group);
  MPI_Group_free(&world);
  return out;
}

struct Registered {
  std::uint64_t id;
  char* mine;
  std::size_t bytes;
  std::vector<char*> bases;
  std::vector<int> members;
};

// Process-wide table of node-shared allocations. Entries are created and
// removed by the thread that owns the SharedBuffer; lookups come from any
// thread running a collective on a buffer that is alive by contract.
struct Registry {
  std::mutex mutex;
  std::vector<std::unique_ptr<Registered>> entries;
  std::uint64_t next_id = 1;
};

Registry& registry() {
  static Registry r;
  return r;
}

// A window of `bytes` per rank over `local`, each segment on its owner's NUMA
// node; returns every local rank's segment start (this rank's is its own).
std::vector<char*> allocate_node_window(MPI_Comm local, std::size_t bytes, MPI_Win* win) {
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "true");
  void* mine = nullptr;
  const int rc = MPI_Win_allocate_shared(static_cast<MPI_Aint>(bytes), 1, info, local, &mine, win);
  MPI_Info_free(&info);
  if (rc != MPI_SUCCESS)
    HPCML_THROW(Error, "node-shared allocation of " + std::to_string(bytes) +
                           " bytes failed (MPI_Win_allocate_shared): " + mpi::error_string(rc));
  int n = 0;
  MPI_Comm_size(local, &n);
  std::vector<char*> bases;
  for (int p = 0; p < n; ++p) {
    MPI_Aint size = 0;
    int disp = 0;
    void* ptr = nullptr;
    HPCML_CHECK_MPI(MPI_Win_shared_query(*win, p, &size, &disp, &ptr));
    bases.push_back(static_cast<char*>(ptr));
  }
  return bases;
}

}  // namespace

bool find_shared(const void* p, std::size_t bytes, SharedHit& hit) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const char* c = static_cast<const char*>(p);
  for (const auto& e : r.entries) {
    if (c >= e->mine && c + bytes <= e->mine + e->bytes) {
      hit.id = e->id;
      hit.offset = static_cast<std::size_t>(c - e->mine);
      hit.bases = &e->bases;
      hit.members = &e->members;
      return true;
    }
  }
  return false;
}

SharedWindow::SharedWindow(MPI_Comm comm, std::size_t bytes) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  HPCML_CHECK_MPI(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local_));
  int local_size = 0;
  MPI_Comm_size(local_, &local_size);
  local_size_ = local_size;
  // Ids agree across the node: the largest next id of any local rank.
  std::uint64_t proposal = 0;
  {
    std::lock_guard<std::mutex> lock(registry().mutex);
    proposal = registry().next_id;
  }
  std::uint64_t id = 0;
  HPCML_CHECK_MPI(MPI_Allreduce(&proposal, &id, 1, MPI_UINT64_T, MPI_MAX, local_));
  const std::size_t padded = (std::max<std::size_t>(bytes, 1) + 63) / 64 * 64;
  auto entry = std::make_unique<Registered>();
  try {
    entry->bases = allocate_node_window(local_, padded, &win_);
  } catch (...) {
    MPI_Comm_free(&local_);
    throw;
  }
  int local_rank = 0;
  MPI_Comm_rank(local_, &local_rank);
  mine_ = entry->bases[static_cast<std::size_t>(local_rank)];
  std::memset(mine_, 0, padded);
  entry->id = id;
  entry->mine = mine_;
  entry->bytes = bytes;
  entry->members = world_ranks(local_);
  {
    std::lock_guard<std::mutex> lock(registry().mutex);
    registry().next_id = id + 1;
    registry().entries.push_back(std::move(entry));
  }
  id_ = id;
  HPCML_CHECK_MPI(MPI_Barrier(local_));  // zero-filled everywhere before use
}

SharedWindow::~SharedWindow() {
  {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    std::erase_if(r.entries, [&](const auto& e) { return e->id == id_ && e->mine == mine_; });
  }
  // Freeing a window is collective: a rank unwinding from an error of its own
  // would wait there for peers that are busy elsewhere, instead of reaching
  // main's handler, which aborts the job. Leak it then; the process is ending.
  if (std::uncaught_exceptions() > 0) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (win_ != MPI_WIN_NULL) MPI_Win_free(&win_);
  if (local_ != MPI_COMM_NULL) MPI_Comm_free(&local_);
}

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
  HPCML_CHECK_MPI(MPI_Allreduce(&local_size_, &max_local_size_, 1, MPI_INT, MPI_MAX, comm));

  slot_bytes_ = (std::max<std::size_t>(engine.options().shm_slot_bytes, 4096) + 63) / 64 * 64;
  base_ = allocate_node_window(local_, sizeof(Control) + 2 * slot_bytes_, &win_);
  new (base_[static_cast<std::size_t>(local_rank_)]) Control();
  members_ = world_ranks(local_);
  HPCML_CHECK_MPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, win_));
  HPCML_CHECK_MPI(MPI_Barrier(local_));  // every Control constructed before anyone polls
}

ShmNode::~ShmNode() {
  if (std::uncaught_exceptions() > 0) return;  // see ~SharedWindow
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
  const ReduceOp local_op = op == ReduceOp::kAverage ? ReduceOp::kSum : op;
  const std::size_t seg = slot_bytes_ / sizeof(T);
  const auto NL = static_cast<std::size_t>(L);
  auto all = [&](Flag Control::*flag, std::uint64_t at_least) {
    for (int p = 0; p < L; ++p)
      if ((control(p).*flag).value.load(std::memory_order_acquire) < at_least) return false;
    return true;
  };
  constexpr std::size_t kChunk = 2048;  // reduction unit that stays in L1
  std::array<T, kChunk> acc;

  if (SharedHit s, r; zero_copy(send, recv, count * sizeof(T), s, r)) {
    allreduce_shared(recv, count, op, s, r, static_cast<const Epilogue<T>*>(nullptr));
    return;
  }

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
    publish_and_check(g, 0, 0, 0, 0);

    // Reduce my part in the fixed order 0, 1, ..., L-1.
    const std::size_t plo = part_lo(me), phi = part_lo(me + 1);
    for (std::size_t i = plo; i < phi; i += kChunk) {
      const std::size_t n = std::min(kChunk, phi - i);
      std::memcpy(acc.data(), reinterpret_cast<const T*>(slot(0, g)) + i, n * sizeof(T));
      for (int p = 1; p < L; ++p)
        reduce_into(acc.data(), reinterpret_cast<const T*>(slot(p, g)) + i, n, local_op);
      if (!multi && op == ReduceOp::kAverage) scale(acc.data(), n, L);
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
      if (op == ReduceOp::kAverage) scale(node_sum, len, engine_.size());
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

void ShmNode::publish_and_check(std::uint64_t g, std::uint64_t send_id, std::uint64_t send_offset,
                                std::uint64_t recv_id, std::uint64_t recv_offset) {
  const int L = local_size_;
  Descriptor& d = control(local_rank_).descriptor[g % 2];
  d.send_id.store(send_id, std::memory_order_relaxed);
  d.send_offset.store(send_offset, std::memory_order_relaxed);
  d.recv_id.store(recv_id, std::memory_order_relaxed);
  d.recv_offset.store(recv_offset, std::memory_order_relaxed);
  d.segment.store(g + 1, std::memory_order_relaxed);
  control(local_rank_).arrived.value.store(g + 1, std::memory_order_release);
  wait_until([&] {
    for (int p = 0; p < L; ++p)
      if (control(p).arrived.value.load(std::memory_order_acquire) < g + 1) return false;
    return true;
  });
  // A mismatch is seen by every rank (each differs from at least one peer),
  // so all of them throw and none waits forever.
  for (int p = 0; p < L; ++p) {
    const Descriptor& o = control(p).descriptor[g % 2];
    const bool same = o.segment.load(std::memory_order_relaxed) == g + 1 &&
                      o.send_id.load(std::memory_order_relaxed) == send_id &&
                      o.send_offset.load(std::memory_order_relaxed) == send_offset &&
                      o.recv_id.load(std::memory_order_relaxed) == recv_id &&
                      o.recv_offset.load(std::memory_order_relaxed) == recv_offset;
    if (!same) {
      // Every rank fails this collective; closing it keeps later segments'
      // waits consistent on this node.
      control(local_rank_).reduced.value.store(g + 1, std::memory_order_release);
      control(local_rank_).done.value.store(g + 1, std::memory_order_release);
    }
    HPCML_REQUIRE(same, Error,
                  "hierarchical all-reduce: local ranks " + std::to_string(local_rank_) + " and " +
                      std::to_string(p) +
                      " passed different kinds of buffers (node-shared from "
                      "Communicator::allocate_shared on one, private or at another offset on the "
                      "other); every rank must pass the same kind at the same offsets");
  }
}

bool ShmNode::zero_copy(const void* send, const void* recv, std::size_t bytes, SharedHit& s,
                        SharedHit& r) const {
  // Below a few KiB the staged path wins (kZeroCopyMinBytes). Every input is
  // the same on all ranks for a symmetric call; the descriptors catch the rest.
  return nodes_ == 1 && bytes >= kZeroCopyMinBytes && find_shared(send, bytes, s) &&
         find_shared(recv, bytes, r) && *s.members == members_ && *r.members == members_;
}

template <class T>
void ShmNode::allreduce_shared(T* recv, std::size_t count, ReduceOp op, const SharedHit& s,
                               const SharedHit& r, const Epilogue<T>* epilogue) {
  const int L = local_size_, me = local_rank_;
  const auto NL = static_cast<std::size_t>(L);
  auto peer_send = [&](int p) {
    return reinterpret_cast<const T*>((*s.bases)[static_cast<std::size_t>(p)] + s.offset);
  };
  auto peer_recv = [&](int p) {
    return reinterpret_cast<T*>((*r.bases)[static_cast<std::size_t>(p)] + r.offset);
  };
  auto part_lo = [&](int p) {
    const auto q = static_cast<std::size_t>(p);
    return count / NL * q + std::min(q, count % NL);
  };
  const std::uint64_t g = segment_++;
  publish_and_check(g, s.id, s.offset, r.id, r.offset);

  // My part, reduced in the fixed order 0, 1, ..., L-1 straight into my recv,
  // in pieces of half a slot. After each piece the cumulative `progress`
  // counter goes up, and ready pieces of the other parts are copied at once,
  // while they are still in their owner's cache. Writing recv in place is
  // safe: a peer reads my send only in its own part, and I overwrite a piece
  // of its part only after its counter shows the piece reduced.
  const ReduceOp local_op = op == ReduceOp::kAverage ? ReduceOp::kSum : op;
  T* out = recv;
  const std::size_t piece = std::max<std::size_t>(slot_bytes_ / 2 / sizeof(T), 64);
  auto pieces = [&](int p) { return (part_lo(p + 1) - part_lo(p) + piece - 1) / piece; };
  if (progress_base_.size() != NL) progress_base_.assign(NL, 0);
  // With an epilogue the piece's result goes to a scratch buffer and the
  // epilogue writes recv[lo, hi) from it (the sharded update).
  if (epilogue) scratch_.resize(piece * sizeof(T));
  auto reduce_piece = [&](std::size_t lo, std::size_t hi) {
    T* dst = epilogue ? reinterpret_cast<T*>(scratch_.data()) : out + lo;  // dst[i - lo]
    if (L == 2 && local_op == ReduceOp::kSum) {
      const T* a = peer_send(0) + lo;
      const T* b = peer_send(1) + lo;
      const T d = static_cast<T>(L);
      const std::size_t n = hi - lo;
      if (op == ReduceOp::kAverage) {
#pragma GCC ivdep
        for (std::size_t i = 0; i < n; ++i) dst[i] = (b[i] + a[i]) / d;
      } else {
#pragma GCC ivdep
        for (std::size_t i = 0; i < n; ++i) dst[i] = b[i] + a[i];
      }
    } else {
      constexpr std::size_t kChunk = 2048;
      std::array<T, kChunk> acc;
      for (std::size_t i = lo; i < hi; i += kChunk) {
        const std::size_t n = std::min(kChunk, hi - i);
        std::memcpy(acc.data(), peer_send(0) + i, n * sizeof(T));
        for (int p = 1; p < L; ++p) reduce_into(acc.data(), peer_send(p) + i, n, local_op);
        if (op == ReduceOp::kAverage) scale(acc.data(), n, L);
        std::memcpy(dst + (i - lo), acc.data(), n * sizeof(T));
      }
    }
    if (epilogue) (*epilogue)(lo, hi, dst);
  };
  copied_.assign(NL, 0);
  // Copies the pieces of part p that are ready; with `wait`, all of them.
  auto copy_ready = [&](int p, bool wait) {
    const auto q = static_cast<std::size_t>(p);
    const std::size_t lo = part_lo(p), hi = part_lo(p + 1), total = pieces(p);
    while (copied_[q] < total) {
      const std::uint64_t need = progress_base_[q] + copied_[q] + 1;
      auto ready = [&] {
        return control(p).progress.value.load(std::memory_order_acquire) >= need;
      };
      if (!ready()) {
        if (!wait) return;
        wait_until(ready);
      }
      const std::size_t a = lo + copied_[q] * piece, b = std::min(hi, a + piece);
      std::memcpy(out + a, peer_recv(p) + a, (b - a) * sizeof(T));
      ++copied_[q];
    }
  };
  {
    const std::size_t lo = part_lo(me), hi = part_lo(me + 1);
    const auto qm = static_cast<std::size_t>(me);
    for (std::size_t c = 0; lo + c * piece < hi; ++c) {
      reduce_piece(lo + c * piece, std::min(hi, lo + (c + 1) * piece));
      control(me).progress.value.store(progress_base_[qm] + c + 1, std::memory_order_release);
      for (int k = 1; k < L; ++k) copy_ready((me + k) % L, false);
    }
  }
  control(me).reduced.value.store(g + 1, std::memory_order_release);
  for (int k = 1; k < L; ++k) copy_ready((me + k) % L, true);  // different owners first
  for (int p = 0; p < L; ++p) progress_base_[static_cast<std::size_t>(p)] += pieces(p);
  control(me).done.value.store(g + 1, std::memory_order_release);
  // Nobody may still be reading my buffers when the caller gets them back.
  wait_until([&] {
    for (int p = 0; p < L; ++p)
      if (control(p).done.value.load(std::memory_order_acquire) <= g) return false;
    return true;
  });
}

template <class T>
bool ShmNode::reduce_update_gather(const T* grads, T* params, std::size_t count,
                                   const Epilogue<T>& update) {
  SharedHit s, r;
  if (!zero_copy(grads, params, count * sizeof(T), s, r)) return false;
  allreduce_shared(params, count, ReduceOp::kAverage, s, r, &update);
  return true;
}

template bool ShmNode::reduce_update_gather<float>(const float*, float*, std::size_t,
                                                   const Epilogue<float>&);
template bool ShmNode::reduce_update_gather<double>(const double*, double*, std::size_t,
                                                    const Epilogue<double>&);
template void ShmNode::allreduce<float>(const float*, float*, std::size_t, ReduceOp);
template void ShmNode::allreduce<double>(const double*, double*, std::size_t, ReduceOp);

}  // namespace hpcml::comm::detail

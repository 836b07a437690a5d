// The MPI transport's point-to-point all-reduce algorithms (ring, recursive
// doubling) and the MPI library's one, all driven through an Engine so that
// waiting is stall-aware.
#include <algorithm>
#include <cstring>
#include <vector>

#include "../detail.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::comm::detail {

template <class T>
void reduce_into(T* __restrict acc, const T* __restrict in, std::size_t n, ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAverage:
      for (std::size_t i = 0; i < n; ++i) acc[i] = in[i] + acc[i];
      break;
    case ReduceOp::kMax:
      for (std::size_t i = 0; i < n; ++i) acc[i] = std::max(in[i], acc[i]);
      break;
    case ReduceOp::kMin:
      for (std::size_t i = 0; i < n; ++i) acc[i] = std::min(in[i], acc[i]);
      break;
  }
}

template <class T>
void scale(T* data, std::size_t n, int ranks) {
  // A division (not a multiplication by 1/n) so the mean is the correctly
  // rounded quotient of the sum, whatever the rank count.
  const T d = static_cast<T>(ranks);
  for (std::size_t i = 0; i < n; ++i) data[i] = data[i] / d;
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
    default:
      return MPI_SUM;
  }
}

namespace {

template <class T>
void copy_input(const T* send, T* recv, std::size_t count) {
  if (send != recv && count > 0) std::memcpy(recv, send, count * sizeof(T));
}

}  // namespace

template <class T>
void mpi_allreduce(const T* send, T* recv, std::size_t count, ReduceOp op, Engine& engine) {
  const int n = checked_int(count);
  const void* src = send == recv ? MPI_IN_PLACE : static_cast<const void*>(send);
  if (engine.options().stall_timeout_s > 0) {
    // Non-blocking underneath so the waiting loop can watch the clock.
    MPI_Request req = MPI_REQUEST_NULL;
    HPCML_CHECK_MPI(MPI_Iallreduce(src, recv, n, mpi_type<T>(), mpi_op(op), engine.comm(), &req));
    engine.wait_all(1, &req);
  } else {
    HPCML_CHECK_MPI(MPI_Allreduce(src, recv, n, mpi_type<T>(), mpi_op(op), engine.comm()));
  }
  if (op == ReduceOp::kAverage) scale(recv, count, engine.size());
}

// Ring: 2(n-1) steps; in step s every rank sends one block to its right
// neighbour and receives one from its left. The first n-1 steps reduce
// (reduce-scatter: afterwards rank r owns the complete block r+1), the last n-1
// copy (all-gather). Blocks are cut into pieces: as soon as a piece of step s
// has arrived and been reduced it is sent on for step s+1, so reduction,
// sending and receiving overlap along the ring. Each element is reduced in one
// fixed order and then distributed, so all ranks end bit-identical.
template <class T>
void ring_allreduce(const T* send, T* recv, std::size_t count, ReduceOp op, MPI_Comm comm,
                    Engine& engine) {
  int n = 1, r = 0;
  HPCML_CHECK_MPI(MPI_Comm_size(comm, &n));
  HPCML_CHECK_MPI(MPI_Comm_rank(comm, &r));
  copy_input(send, recv, count);
  if (n == 1 || count == 0) return;

  const auto N = static_cast<std::size_t>(n);
  auto lo = [&](int b) {
    return count / N * static_cast<std::size_t>(b) +
           std::min<std::size_t>(static_cast<std::size_t>(b), count % N);
  };
  auto len = [&](int b) { return lo(b + 1) - lo(b); };
  const std::size_t max_block = (count + N - 1) / N;
  std::size_t piece = std::max<std::size_t>(1, engine.options().ring_piece_bytes / sizeof(T));
  piece = std::max(piece, (max_block + 16383) / 16384);  // keeps tags below 16384
  auto pieces = [&](std::size_t l) { return (l + piece - 1) / piece; };
  auto mod = [&](int b) { return ((b % n) + n) % n; };
  const int steps = 2 * (n - 1);
  auto send_block = [&](int s) { return s < n - 1 ? mod(r - s) : mod(r + 1 - (s - (n - 1))); };
  auto recv_block = [&](int s) { return s < n - 1 ? mod(r - s - 1) : mod(r - (s - (n - 1))); };
  const int next = mod(r + 1), prev = mod(r - 1);
  const ReduceOp local_op = op == ReduceOp::kAverage ? ReduceOp::kSum : op;

  std::vector<T> tmp(max_block);
  std::vector<MPI_Request> sends_now, sends_next, recvs;
  std::vector<int> done_idx;
  {
    const int b = send_block(0);
    for (std::size_t j = 0; j < pieces(len(b)); ++j) {
      const std::size_t off = lo(b) + j * piece, l = std::min(piece, len(b) - j * piece);
      sends_now.emplace_back();
      HPCML_CHECK_MPI(MPI_Isend(recv + off, checked_int(l), mpi_type<T>(), next,
                                static_cast<int>(j), comm, &sends_now.back()));
    }
  }
  for (int s = 0; s < steps; ++s) {
    const bool reducing = s < n - 1;
    const int b = recv_block(s);
    const std::size_t base = lo(b), blen = len(b), np = pieces(blen);
    recvs.assign(np, MPI_REQUEST_NULL);
    done_idx.resize(np);
    for (std::size_t j = 0; j < np; ++j) {
      const std::size_t l = std::min(piece, blen - j * piece);
      T* dst = reducing ? tmp.data() + j * piece : recv + base + j * piece;
      HPCML_CHECK_MPI(MPI_Irecv(dst, checked_int(l), mpi_type<T>(), prev, static_cast<int>(j), comm,
                                &recvs[j]));
    }
    sends_next.clear();
    std::size_t completed = 0;
    unsigned spins = 0;
    while (completed < np) {
      int outcount = 0;
      HPCML_CHECK_MPI(MPI_Testsome(static_cast<int>(np), recvs.data(), &outcount, done_idx.data(),
                                   MPI_STATUSES_IGNORE));
      if (outcount == 0 || outcount == MPI_UNDEFINED) {
        engine.idle(spins);
        continue;
      }
      spins = 0;
      for (int k = 0; k < outcount; ++k) {
        const auto j = static_cast<std::size_t>(done_idx[static_cast<std::size_t>(k)]);
        const std::size_t off = base + j * piece, l = std::min(piece, blen - j * piece);
        if (reducing) {
          reduce_into(recv + off, tmp.data() + j * piece, l, local_op);
          if (s == n - 2 && op == ReduceOp::kAverage) scale(recv + off, l, n);
        }
        if (s + 1 < steps) {
          sends_next.emplace_back();
          HPCML_CHECK_MPI(MPI_Isend(recv + off, checked_int(l), mpi_type<T>(), next,
                                    static_cast<int>(j), comm, &sends_next.back()));
        }
      }
      completed += static_cast<std::size_t>(outcount);
    }
    engine.wait_all(static_cast<int>(sends_now.size()), sends_now.data());
    std::swap(sends_now, sends_next);
  }
  engine.wait_all(static_cast<int>(sends_now.size()), sends_now.data());
}

// Recursive doubling: log2(n) exchanges of the whole vector; latency-optimal.
// A rank count that is not a power of two folds the first 2*rem ranks in pairs
// first and hands the result back at the end. Every partial sum is formed from
// the same two bit-identical operands on both partners (addition is
// commutative in IEEE arithmetic), so all ranks end bit-identical.
template <class T>
void recursive_doubling_allreduce(const T* send, T* recv, std::size_t count, ReduceOp op,
                                  Engine& engine) {
  const int n = engine.size(), r = engine.rank();
  copy_input(send, recv, count);
  if (n == 1 || count == 0) return;
  const int c = checked_int(count);
  const MPI_Comm comm = engine.comm();
  const ReduceOp local_op = op == ReduceOp::kAverage ? ReduceOp::kSum : op;
  std::vector<T> tmp(count);
  int pof2 = 1;
  while (pof2 * 2 <= n) pof2 *= 2;
  const int rem = n - pof2;
  MPI_Request req[2];
  int newrank = 0;
  if (r < 2 * rem) {
    if (r % 2 == 0) {
      HPCML_CHECK_MPI(MPI_Isend(recv, c, mpi_type<T>(), r + 1, 0, comm, &req[0]));
      engine.wait_all(1, req);
      newrank = -1;
    } else {
      HPCML_CHECK_MPI(MPI_Irecv(tmp.data(), c, mpi_type<T>(), r - 1, 0, comm, &req[0]));
      engine.wait_all(1, req);
      reduce_into(recv, tmp.data(), count, local_op);
      newrank = r / 2;
    }
  } else {
    newrank = r - rem;
  }
  if (newrank >= 0) {
    for (int mask = 1; mask < pof2; mask <<= 1) {
      const int pn = newrank ^ mask;
      const int partner = pn < rem ? pn * 2 + 1 : pn + rem;
      HPCML_CHECK_MPI(MPI_Irecv(tmp.data(), c, mpi_type<T>(), partner, 1, comm, &req[0]));
      HPCML_CHECK_MPI(MPI_Isend(recv, c, mpi_type<T>(), partner, 1, comm, &req[1]));
      engine.wait_all(2, req);
      reduce_into(recv, tmp.data(), count, local_op);
    }
  }
  if (r < 2 * rem) {
    if (r % 2 == 1) {
      HPCML_CHECK_MPI(MPI_Isend(recv, c, mpi_type<T>(), r - 1, 2, comm, &req[0]));
    } else {
      HPCML_CHECK_MPI(MPI_Irecv(recv, c, mpi_type<T>(), r + 1, 2, comm, &req[0]));
    }
    engine.wait_all(1, req);
  }
  if (op == ReduceOp::kAverage) scale(recv, count, n);
}

#define HPCML_COMM_INSTANTIATE(T)                                                              \
  template void reduce_into<T>(T*, const T*, std::size_t, ReduceOp);                           \
  template void scale<T>(T*, std::size_t, int);                                                \
  template void ring_allreduce<T>(const T*, T*, std::size_t, ReduceOp, MPI_Comm, Engine&);     \
  template void recursive_doubling_allreduce<T>(const T*, T*, std::size_t, ReduceOp, Engine&); \
  template void mpi_allreduce<T>(const T*, T*, std::size_t, ReduceOp, Engine&);
HPCML_COMM_INSTANTIATE(float)
HPCML_COMM_INSTANTIATE(double)
#undef HPCML_COMM_INSTANTIATE

}  // namespace hpcml::comm::detail

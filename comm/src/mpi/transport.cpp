// The MPI transport: its algorithm switch (MPI library, ring, recursive
// doubling, hierarchical shared memory) and the one algorithm MPI progresses
// itself when non-blocking (MPI_Iallreduce).
#include <memory>

#include "../detail.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::comm::detail {

namespace {

struct MpiPolicy {
  static constexpr Transport kId = Transport::kMpi;

  template <class T>
  static void allreduce(const T* send, T* recv, std::size_t count, ReduceOp op, Algo algo,
                        Engine& engine) {
    switch (algo) {
      case Algo::kMpi:
        return mpi_allreduce(send, recv, count, op, engine);
      case Algo::kRing:
        return ring_allreduce(send, recv, count, op, engine.comm(), engine);
      case Algo::kRecursiveDoubling:
        return recursive_doubling_allreduce(send, recv, count, op, engine);
      case Algo::kHierarchical:
        return engine.shm().allreduce(send, recv, count, op);
      default:
        break;
    }
    HPCML_THROW(Error, "the MPI transport has no all-reduce algorithm '" + to_string(algo) +
                           "' ('auto' must be resolved before dispatch)");
  }

  template <class T>
  static std::unique_ptr<RequestImpl> start_allreduce(const T* send, T* recv, std::size_t count,
                                                      ReduceOp op, Algo algo, Engine& engine) {
    // The own algorithms have no non-blocking form of their own: they run on
    // the Communicator's progress thread.
    if (algo != Algo::kMpi) return nullptr;
    engine.begin("iallreduce");
    const int ranks = engine.size();
    auto impl = std::make_unique<MpiRequest>(engine, [recv, count, op, ranks] {
      if (op == ReduceOp::kAverage) scale(recv, count, ranks);
    });
    HPCML_CHECK_MPI(MPI_Iallreduce(send == recv ? MPI_IN_PLACE : static_cast<const void*>(send),
                                   recv, checked_int(count), mpi_type<T>(), mpi_op(op),
                                   engine.comm(), impl->handle()));
    return impl;
  }
};

}  // namespace

TransportImpl& mpi_transport() {
  static TransportAdapter<MpiPolicy> transport;
  return transport;
}

}  // namespace hpcml::comm::detail

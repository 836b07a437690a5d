// The NCCL transport in the registry (comm/src/transport.hpp). Its algorithm,
// Algo::kNccl, reduces device buffers through the NCCL Collectives
// (parallel.transport = "nccl", make_nccl_collectives); the MPI communicator's
// host-memory collectives never run it, so asking them to is refused here with
// one message.
#include <memory>

#include "../transport.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::comm::detail {

namespace {

[[noreturn]] void refuse() {
  HPCML_THROW(NotAvailableError,
              "all-reduce algorithm 'nccl' reduces GPU buffers through parallel.transport = "
              "\"nccl\"; the MPI communicator's host-memory collectives do not run it");
}

struct NcclHostPolicy {
  static constexpr Transport kId = Transport::kNccl;
  template <class T>
  static void allreduce(const T*, T*, std::size_t, ReduceOp, Algo, Engine&) {
    refuse();
  }
  template <class T>
  static std::unique_ptr<RequestImpl> start_allreduce(const T*, T*, std::size_t, ReduceOp, Algo,
                                                      Engine&) {
    refuse();
  }
};

}  // namespace

TransportImpl& nccl_transport() {
  static TransportAdapter<NcclHostPolicy> impl;
  return impl;
}

}  // namespace hpcml::comm::detail

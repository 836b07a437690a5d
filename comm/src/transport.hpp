// The transport interface (see hpcml/comm/transport.hpp for the public side).
//
// A transport implements the all-reduce algorithms that belong to it (the
// algorithm table in transport.cpp says which) as a policy
// with template members, in the style of Aluminum's backends:
//
//   struct MyPolicy {
//     static constexpr Transport kId = Transport::kMy;
//     template <class T> static void allreduce(const T*, T*, std::size_t, ReduceOp, Algo, Engine&);
//     template <class T> static std::unique_ptr<RequestImpl> start_allreduce(
//         const T*, T*, std::size_t, ReduceOp, Algo, Engine&);
//   };
//
// TransportAdapter<MyPolicy> turns it into a TransportImpl, and transport.cpp's
// registry lists it (under its HPCML_HAS_* switch). Callers resolve an
// algorithm to its transport once per collective (one virtual call; the
// algorithms' loops are the policy's own code), so adding a transport adds a
// folder and a registry line, never a case in another transport's switch.
#pragma once

#include <cstddef>
#include <memory>

#include "hpcml/comm/allreduce.hpp"
#include "hpcml/comm/transport.hpp"
#include "hpcml/config.hpp"

namespace hpcml::comm::detail {

class Engine;

class TransportImpl {
 public:
  virtual ~TransportImpl() = default;
  virtual Transport id() const = 0;
  /// Runs `algo` (one of this transport's, not kAuto) to completion on
  /// `engine`, after engine.begin(). Same contract as Communicator::allreduce.
  virtual void allreduce(const float* send, float* recv, std::size_t count, ReduceOp op, Algo algo,
                         Engine& engine) = 0;
  virtual void allreduce(const double* send, double* recv, std::size_t count, ReduceOp op,
                         Algo algo, Engine& engine) = 0;
  /// Starts a non-blocking all-reduce that the transport progresses itself
  /// (MPI_Iallreduce, a GPU stream). Null when `algo` has no such form: the
  /// Communicator then runs allreduce() on its progress thread.
  virtual std::unique_ptr<RequestImpl> start_allreduce(const float* send, float* recv,
                                                       std::size_t count, ReduceOp op, Algo algo,
                                                       Engine& engine) = 0;
  virtual std::unique_ptr<RequestImpl> start_allreduce(const double* send, double* recv,
                                                       std::size_t count, ReduceOp op, Algo algo,
                                                       Engine& engine) = 0;
};

/// A policy (see the top of this file) as a TransportImpl.
template <class Policy>
class TransportAdapter final : public TransportImpl {
 public:
  Transport id() const override { return Policy::kId; }
  void allreduce(const float* send, float* recv, std::size_t count, ReduceOp op, Algo algo,
                 Engine& engine) override {
    Policy::template allreduce<float>(send, recv, count, op, algo, engine);
  }
  void allreduce(const double* send, double* recv, std::size_t count, ReduceOp op, Algo algo,
                 Engine& engine) override {
    Policy::template allreduce<double>(send, recv, count, op, algo, engine);
  }
  std::unique_ptr<RequestImpl> start_allreduce(const float* send, float* recv, std::size_t count,
                                               ReduceOp op, Algo algo, Engine& engine) override {
    return Policy::template start_allreduce<float>(send, recv, count, op, algo, engine);
  }
  std::unique_ptr<RequestImpl> start_allreduce(const double* send, double* recv, std::size_t count,
                                               ReduceOp op, Algo algo, Engine& engine) override {
    return Policy::template start_allreduce<double>(send, recv, count, op, algo, engine);
  }
};

/// The built transports, one function per transport folder (registry in transport.cpp).
TransportImpl& mpi_transport();  // comm/src/mpi/
#ifdef HPCML_HAS_NCCL
TransportImpl& nccl_transport();  // comm/src/nccl/, with the GPU backend
#endif

/// The implementation of `transport`. Throws NotAvailableError (require_built)
/// when this build lacks it.
TransportImpl& transport(Transport transport);

/// Runs a concrete algorithm (not kAuto) on the transport it belongs to.
template <class T>
void run_allreduce(const T* send, T* recv, std::size_t count, ReduceOp op, Algo algo,
                   Engine& engine) {
  transport(transport_of(algo)).allreduce(send, recv, count, op, algo, engine);
}

}  // namespace hpcml::comm::detail

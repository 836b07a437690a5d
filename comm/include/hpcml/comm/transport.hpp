// Transports: the ways data moves between ranks (MPI today; NCCL with the GPU
// backend). Each transport brings its own all-reduce algorithms (Algo, see
// allreduce.hpp's algorithm table) and is implemented in its own folder under
// comm/src/ behind one interface (comm/src/transport.hpp). Which transports a
// binary has is decided at build time; asking for a missing one is refused by
// require_built(), the only place that says so.
#pragma once

#include <string>

namespace hpcml::comm {

enum class Transport {
  kMpi,   // MPI point-to-point, collectives and node-shared memory (comm/src/mpi/)
  kNccl,  // NVIDIA NCCL on GPU buffers (comm/src/nccl/, HPCML_ENABLE_NCCL; hpcml/comm/nccl.hpp)
};

std::string to_string(Transport transport);
/// True when `transport` is compiled into this binary.
bool is_built(Transport transport);
/// Throws NotAvailableError "'nccl' is not available in this build (...)" unless
/// `transport` is built.
void require_built(Transport transport);

/// parallel.transport: which transport carries the gradients.
enum class TransportChoice {
  kAuto,  // nccl when the backend is "cuda" and NCCL is built in, else mpi
  kMpi,
  kNccl,
};
std::string to_string(TransportChoice choice);
/// Parses "auto", "mpi", "nccl". Throws ConfigError naming `what` otherwise.
TransportChoice parse_transport_choice(const std::string& name,
                                       const std::string& what = "parallel.transport");
/// The transport `choice` means for compute backend `backend` ("cuda", "omp",
/// ...) when NCCL is (`nccl_built`) or is not in the binary. Pure: an explicit
/// choice is returned as it is (its errors come from require_nccl()).
Transport resolve_transport(TransportChoice choice, const std::string& backend, bool nccl_built);

}  // namespace hpcml::comm

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
  kNccl,  // NVIDIA NCCL on GPU buffers: not written yet (HPCML_ENABLE_NCCL)
};

std::string to_string(Transport transport);
/// True when `transport` is compiled into this binary.
bool is_built(Transport transport);
/// Throws NotAvailableError "'nccl' is not available in this build (...)" unless
/// `transport` is built.
void require_built(Transport transport);

}  // namespace hpcml::comm

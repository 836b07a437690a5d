// The MPI helper io needs itself (io does not depend on comm/): agreeing on a
// failure across ranks. Starting MPI is comm::MpiEnvironment's job.
#pragma once

#include <mpi.h>

#include <exception>
#include <string>

namespace hpcml::io {

/// Collective over `comm`: every rank passes the exception it caught (or null).
/// If any rank failed, every rank throws the same hpcml::Error, marked
/// collective, whose message is the lowest failing rank's message, prefixed by
/// "rank r: " unless every rank failed. Returns normally if none failed.
void agree(MPI_Comm comm, std::exception_ptr local_error);

}  // namespace hpcml::io

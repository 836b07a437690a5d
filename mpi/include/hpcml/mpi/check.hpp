// Checking MPI return codes: HPCML_CHECK_MPI and the text of an error code.
// MpiEnvironment (comm) switches MPI_COMM_WORLD to MPI_ERRORS_RETURN, so every
// MPI call's result must be checked or its failure goes unnoticed.
#pragma once

#include <mpi.h>

#include <string>

#include "hpcml/core/error.hpp"

namespace hpcml::mpi {

/// Text of an MPI error code ("MPI_ERR_COUNT: invalid count argument").
std::string error_string(int code);

/// Writes `line` (plus a newline) to stderr, gives the launcher (mpiexec's
/// proxies, srun) a moment to forward it, then aborts the whole job with
/// MPI_Abort(MPI_COMM_WORLD, code). Without the pause a loaded machine can kill
/// the processes before their last output reaches the user.
[[noreturn]] void abort_job(const std::string& line, int code);

}  // namespace hpcml::mpi

/// Throws hpcml::Error naming the call and MPI's message when an MPI call fails.
#define HPCML_CHECK_MPI(call)                                                                  \
  do {                                                                                         \
    const int hpcml_mpi_rc_ = (call);                                                          \
    if (hpcml_mpi_rc_ != MPI_SUCCESS)                                                          \
      HPCML_THROW(::hpcml::Error,                                                              \
                  std::string(#call " failed: ") + ::hpcml::mpi::error_string(hpcml_mpi_rc_)); \
  } while (0)

// The one protocol by which the ranks of a communicator agree on a failure
// (used by comm, io and the subcommands around every setup phase whose failure
// may be local to one rank: files, data, memory).
#pragma once

#include <mpi.h>

#include <exception>
#include <type_traits>

namespace hpcml::mpi {

/// Collective over `comm`: every rank passes the exception it caught (or null).
/// If any rank failed, every rank throws the same hpcml::Error, marked
/// collective() so it is printed once: the message of the lowest failing rank,
/// prefixed "rank r: " unless every rank failed, and of that rank's kind
/// (DataError, ConfigError, NotAvailableError; any other exception becomes a
/// plain Error with its what()). Returns normally when no rank failed.
void agree(MPI_Comm comm, std::exception_ptr local_error);

/// Runs `fn` on every rank and agrees on the outcome (any exception it throws
/// is caught and passed to agree() above). Collective.
template <class Fn>
requires std::is_invocable_v<Fn&>
void agree(MPI_Comm comm, Fn&& fn) {
  std::exception_ptr error;
  try {
    fn();
  } catch (...) {
    error = std::current_exception();
  }
  agree(comm, error);
}

}  // namespace hpcml::mpi

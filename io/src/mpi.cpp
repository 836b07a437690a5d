#include "hpcml/io/mpi.hpp"

#include <exception>
#include <vector>

#include "hpcml/core/error.hpp"

namespace hpcml::io {

namespace {
template <typename E>
[[noreturn]] void raise_collective(E error) {
  error.set_collective(true);
  throw error;
}

enum Kind : int { kNone = 0, kData, kConfig, kNotAvailable, kOther };
}  // namespace

void agree(MPI_Comm comm, std::exception_ptr local_error) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  std::string message;
  int kind = kNone;
  if (local_error) {
    try {
      std::rethrow_exception(local_error);
    } catch (const DataError& e) {
      kind = kData, message = e.what();
    } catch (const ConfigError& e) {
      kind = kConfig, message = e.what();
    } catch (const NotAvailableError& e) {
      kind = kNotAvailable, message = e.what();
    } catch (const std::exception& e) {
      kind = kOther, message = e.what();
    } catch (...) {
      kind = kOther, message = "unknown exception";
    }
  }
  // The lowest failing rank speaks for everyone.
  int candidate = kind != kNone ? rank : size;
  int first = size;
  MPI_Allreduce(&candidate, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == size) return;
  int failed_here = kind != kNone ? 1 : 0, failed = 0;
  MPI_Allreduce(&failed_here, &failed, 1, MPI_INT, MPI_SUM, comm);
  int header[2] = {kind, static_cast<int>(message.size())};
  MPI_Bcast(header, 2, MPI_INT, first, comm);
  message.resize(static_cast<std::size_t>(header[1]));
  MPI_Bcast(message.data(), header[1], MPI_CHAR, first, comm);
  // Name the rank only when it matters: not every rank failed.
  if (failed < size) message = "rank " + std::to_string(first) + ": " + message;
  switch (header[0]) {
    case kData:
      raise_collective(DataError(message, __FILE__, __LINE__));
    case kConfig:
      raise_collective(ConfigError(message, __FILE__, __LINE__));
    case kNotAvailable:
      raise_collective(NotAvailableError(message, __FILE__, __LINE__));
    default:
      raise_collective(Error(message, __FILE__, __LINE__));
  }
}

}  // namespace hpcml::io

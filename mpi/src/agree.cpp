#include "hpcml/mpi/agree.hpp"

#include <string>

#include "hpcml/core/error.hpp"
#include "hpcml/mpi/check.hpp"

namespace hpcml::mpi {

namespace {

template <class E>
[[noreturn]] void raise_collective(E error) {
  error.set_collective(true);
  throw error;
}

// The kind of error travels with the message so callers can still catch by type.
enum Kind : int { kNone = 0, kData, kConfig, kNotAvailable, kOther };

}  // namespace

void agree(MPI_Comm comm, std::exception_ptr local_error) {
  int rank = 0, size = 1;
  HPCML_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  HPCML_CHECK_MPI(MPI_Comm_size(comm, &size));
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
  // One reduction answers both questions: the lowest failing rank speaks for
  // everyone (min of rank-or-size), and whether any rank succeeded (min of
  // -succeeded is -1 then).
  const bool failed_here = kind != kNone;
  int local[2] = {failed_here ? rank : size, failed_here ? 0 : -1};
  int global[2] = {size, 0};
  HPCML_CHECK_MPI(MPI_Allreduce(local, global, 2, MPI_INT, MPI_MIN, comm));
  const int first = global[0];
  if (first == size) return;
  const bool every_rank_failed = global[1] == 0;
  int header[2] = {kind, static_cast<int>(message.size())};
  HPCML_CHECK_MPI(MPI_Bcast(header, 2, MPI_INT, first, comm));
  message.resize(static_cast<std::size_t>(header[1]));
  if (header[1] > 0) HPCML_CHECK_MPI(MPI_Bcast(message.data(), header[1], MPI_CHAR, first, comm));
  // Name the rank only when it matters: not every rank failed.
  if (!every_rank_failed) message = "rank " + std::to_string(first) + ": " + message;
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

}  // namespace hpcml::mpi

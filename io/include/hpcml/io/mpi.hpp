// Small MPI helpers io needs before comm/ offers a common environment class.
#pragma once

#include <mpi.h>

#include <exception>
#include <string>

namespace hpcml::io {

/// Initialises MPI (MPI_THREAD_FUNNELED) unless it already is, and finalises it
/// on destruction if this object initialised it. Works with and without
/// mpiexec (MPICH singleton init). During exception unwinding it does NOT
/// finalise: MPI_Finalize is collective and would hang if only this rank
/// failed; main()'s error handler then finalises (collective errors) or aborts.
class MpiSession {
 public:
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }

 private:
  bool owns_ = false;
  int rank_ = 0;
  int size_ = 1;
};

/// Collective over `comm`: every rank passes the exception it caught (or null).
/// If any rank failed, every rank throws the same hpcml::Error, marked
/// collective, whose message is the lowest failing rank's message, prefixed by
/// "rank r: " unless every rank failed. Returns normally if none failed.
void agree(MPI_Comm comm, std::exception_ptr local_error);

}  // namespace hpcml::io

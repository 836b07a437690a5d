// Helpers of the tests that run under mpiexec: this rank, the world size, and
// one scratch directory shared by all ranks of the job.
#pragma once

#include <mpi.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace hpcml::testing {

inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

inline int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

/// <tmp>/hpcml-test-<tag>-<rank 0's pid>-<world size>, emptied and created by
/// rank 0 before any rank returns (so concurrent jobs never share one).
inline std::string shared_dir(const std::string& tag) {
  long pid = static_cast<long>(::getpid());
  MPI_Bcast(&pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  const std::filesystem::path p =
      std::filesystem::temp_directory_path() /
      ("hpcml-test-" + tag + "-" + std::to_string(pid) + "-" + std::to_string(world_size()));
  if (world_rank() == 0) {
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return p.string();
}

}  // namespace hpcml::testing

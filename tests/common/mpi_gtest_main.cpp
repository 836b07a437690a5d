// GoogleTest main for tests started under mpiexec: MPI is initialised once,
// only rank 0 prints, and the process exit code is the logical OR of every
// rank's result so a failure on any rank fails the CTest test.
#include <gtest/gtest.h>
#include <mpi.h>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int local = RUN_ALL_TESTS();
  int global = 0;
  MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
  if (rank != 0 && local != 0) {
    // Rank 0 does not see other ranks' failures in its own output: say which.
    std::fprintf(stderr, "[rank %d] tests FAILED on this rank\n", rank);
  }
  MPI_Finalize();
  return global ? 1 : 0;
}

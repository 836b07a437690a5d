// Deliberately stalls one rank (rank 1) so that the stall inspector must fire:
// the other ranks wait 1 s in a collective, then the job aborts with a message
// naming rank 1. Run by check_stall.cmake, which expects a non-zero exit.
// Usage: comm_stall_probe <algo> <blocking|nonblocking>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "hpcml/comm/mpi.hpp"

int main(int argc, char** argv) {
  using namespace hpcml::comm;
  if (argc != 3) {
    std::fprintf(stderr, "usage: comm_stall_probe <algo> <blocking|nonblocking>\n");
    return 2;
  }
  MpiEnvironment env(MPI_THREAD_MULTIPLE);
  Communicator comm = Communicator::world();
  CommOptions o;
  o.stall_timeout_s = 1.0;
  comm.set_options(o);
  const Algo algo = parse_algo(argv[1]);
  const bool nonblocking = std::string(argv[2]) == "nonblocking";
  std::vector<float> x(100000, 1.0f);
  comm.allreduce(x.data(), x.data(), x.size(), ReduceOp::kSum, algo);          // everyone arrives
  comm.iallreduce(x.data(), x.data(), x.size(), ReduceOp::kSum, algo).wait();  // progress thread up
  if (comm.rank() == 1) sleep(8);
  if (nonblocking) {
    Request r = comm.iallreduce(x.data(), x.data(), x.size(), ReduceOp::kSum, algo);
    r.wait();
  } else {
    comm.allreduce(x.data(), x.data(), x.size(), ReduceOp::kSum, algo);
  }
  if (comm.rank() == 0) std::printf("no stall detected\n");
  return 0;
}

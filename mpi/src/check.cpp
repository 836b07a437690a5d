#include "hpcml/mpi/check.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace hpcml::mpi {

std::string error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<std::size_t>(len));
}

void abort_job(const std::string& line, int code) {
  const std::string text = line + "\n";
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
  ::usleep(500 * 1000);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace hpcml::mpi

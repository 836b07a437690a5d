// `hpcml train` with parallel.backend = "cuda" where no GPU is visible: one
// error line, exit 1 on every rank, no hang (label mpi).
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "hpcml/config.hpp"
#include "hpcml/kernels/cuda.hpp"
#include "shell_util.hpp"

namespace {

using shell_test::args_string;
using shell_test::quote;
using shell_test::run;

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

TEST(CudaCli, TrainWithoutADeviceFailsCleanlyOnEveryRank) {
  if (!hpcml::kernels::cuda_info().devices.empty())
    GTEST_SKIP() << "a CUDA device is visible: this test is for machines without one";
  const std::string inner = quote(HPCML_EXE) + " \"$@\"; echo \"[rank-exit=$?]\"";
  const std::vector<std::string> args = {
      "train", std::string(HPCML_CONFIGS) + "/fashion_mnist_mlp.toml",
      "--set", "parallel.backend=cuda",
      "--set", "run.dir=" + std::string(HPCML_RUNS)};
  const auto r = run("timeout -k 10 120 " + std::string(HPCML_MPIEXEC) + " -n 2 sh -c " +
                     quote(inner) + " sh" + args_string(args));
  EXPECT_TRUE(r.status != 124 && r.status != 137) << "hang:\n" << r.out;
  EXPECT_EQ(count(r.out, "[rank-exit=1]"), 2) << r.out;
  EXPECT_EQ(count(r.out, "hpcml: error: "), 1) << r.out;
#if defined(HPCML_HAS_CUDA)
  const std::string expected = "hpcml: error: cuda: compiled, but no CUDA device is visible";
#else
  const std::string expected = "hpcml: error: backend 'cuda' is not compiled into this build";
#endif
  EXPECT_NE(r.out.find(expected), std::string::npos) << r.out;
}

}  // namespace

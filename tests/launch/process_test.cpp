// run_process's options (environment, output passed through) and what this
// process knows of itself (executable, command line, CPUs).
#include <gtest/gtest.h>

#include <cstdlib>

#include "hpcml/core/process_path.hpp"
#include "hpcml/launch/environment.hpp"
#include "hpcml/launch/process.hpp"

namespace hpcml::launch {
namespace {

TEST(Process, EnvironmentVariablesReplaceInheritedOnes) {
  ::setenv("HPCML_PROCESS_TEST", "inherited", 1);
  ProcessOptions o;
  o.env = {{"HPCML_PROCESS_TEST", "set"}, {"HPCML_PROCESS_TEST_NEW", "new"}};
  const auto r =
      run_process({"sh", "-c", "echo \"$HPCML_PROCESS_TEST $HPCML_PROCESS_TEST_NEW\""}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "set new\n");
  // Without options the child sees our environment.
  EXPECT_EQ(run_process({"sh", "-c", "echo $HPCML_PROCESS_TEST"}).out, "inherited\n");
  ::unsetenv("HPCML_PROCESS_TEST");
}

TEST(Process, PassThroughKeepsTheExitCodeAndCapturesNothing) {
  ProcessOptions o;
  o.capture = false;
  const auto r = run_process({"sh", "-c", "exit 3"}, o);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(run_process({"sh", "-c", "kill -TERM $$"}, o).exit_code, 128 + 15);
  const auto missing = run_process({"/nonexistent/hpcml-no-such-program"}, o);
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_NE(missing.err.find("cannot run it"), std::string::npos);
}

TEST(Process, ThisProcess) {
  EXPECT_NE(self_executable().find("launch_unit_test"), std::string::npos);
  const std::string line = self_command_line("prog");
  EXPECT_EQ(line.rfind("prog", 0), 0u) << line;
  EXPECT_GE(hardware_threads(), 1);
  EXPECT_TRUE(in_path("sh"));
  EXPECT_FALSE(find_on_path("sh").empty());
  EXPECT_FALSE(in_path("hpcml-no-such-program"));
}

}  // namespace
}  // namespace hpcml::launch

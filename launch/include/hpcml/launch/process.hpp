// Runs a program with an argument vector (never through a shell) and captures
// its output: how launch/ calls sbatch, squeue and scontrol.
#pragma once

#include <string>
#include <vector>

namespace hpcml::launch {

struct ProcessResult {
  int exit_code = -1;  // 127: could not be started; 128+n: killed by signal n
  std::string out;
  std::string err;
};

/// Runs argv[0] (looked up in PATH) with argv, stdin from /dev/null.
ProcessResult run_process(const std::vector<std::string>& argv);

/// True if `program` is an executable found in PATH.
bool in_path(const std::string& program);

}  // namespace hpcml::launch

// Runs a program with an argument vector (never through a shell): how launch/
// calls sbatch, squeue and scontrol (output captured) and how a local scaling
// study runs its points (output passed through). Also what this process is:
// its executable and its command line.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace hpcml::launch {

struct ProcessResult {
  int exit_code = -1;  // 127: could not be started; 128+n: killed by signal n
  std::string out;
  std::string err;
};

struct ProcessOptions {
  /// true: stdin from /dev/null, stdout and stderr captured into the result.
  /// false: the child shares this process's stdin, stdout and stderr (flush
  /// your streams first); the result's out and err stay empty.
  bool capture = true;
  /// Variables set in the child's environment (replacing inherited ones).
  std::vector<std::pair<std::string, std::string>> env;
};

/// Runs argv[0] (looked up in PATH) with argv and waits for it. A program that
/// cannot be started gives exit code 127 and the reason in err.
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options);
/// The same with the default options: stdin from /dev/null, output captured.
ProcessResult run_process(const std::vector<std::string>& argv);

/// True if `program` is an executable found in PATH.
bool in_path(const std::string& program);

/// The path of the running executable (/proc/self/exe). Throws Error if unknown.
std::string self_executable();

/// This process's command line for logs and provenance: `program` followed by
/// its arguments (argv[0] is replaced), each shell-quoted when it holds a
/// space, a quote, a backslash or '$'. Just `program` if /proc cannot be read.
std::string self_command_line(const std::string& program = "hpcml");

}  // namespace hpcml::launch

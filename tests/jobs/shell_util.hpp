// Running shell commands from the end-to-end tests of the hpcml executable:
// quoting, capturing stdout + stderr, and the exit status.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

namespace shell_test {

struct Result {
  int status = -1;  // exit status of the whole command
  std::string out;  // stdout + stderr
};

/// s in single quotes for sh, embedded quotes escaped.
inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// Runs `cmd` under sh and returns its combined output and exit status
/// (128 + signal number when a signal ended it).
inline Result run(const std::string& cmd) {
  Result r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

/// " 'a' 'b' ...": the arguments quoted, each after a space.
inline std::string args_string(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += " " + quote(a);
  return s;
}

}  // namespace shell_test

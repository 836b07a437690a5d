#include "hpcml/comm/liveness.hpp"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace hpcml::comm {

namespace {

// Reads state and start time from /proc/<pid>/stat. The command name (field 2)
// is in parentheses and may itself contain spaces and ')', so parsing starts
// after the last ')'.
bool read_stat(long pid, char& state, unsigned long long& start_ticks) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return false;
  char buf[1024];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (!p) return false;
  // Fields after the name: 3 state, 4 ppid, ..., 22 starttime.
  int field = 2;
  const char* tok = p + 1;
  while (*tok && field < 22) {
    while (*tok == ' ') ++tok;
    ++field;
    if (field == 3) state = *tok;
    if (field == 22) {
      start_ticks = std::strtoull(tok, nullptr, 10);
      return true;
    }
    while (*tok && *tok != ' ') ++tok;
  }
  return false;
}

}  // namespace

ProcessIdentity this_process() {
  ProcessIdentity p;
  p.pid = static_cast<long>(::getpid());
  char state = '?';
  if (!read_stat(p.pid, state, p.start_ticks)) p.start_ticks = 0;
  return p;
}

Liveness process_liveness(const ProcessIdentity& process) {
  if (process.pid <= 0) return Liveness::kUnknown;
  char state = '?';
  unsigned long long start = 0;
  if (read_stat(process.pid, state, start)) {
    if (state == 'Z' || state == 'X') return Liveness::kGone;
    if (process.start_ticks != 0 && start != process.start_ticks) return Liveness::kGone;
    return Liveness::kAlive;
  }
  // No /proc entry: ask the kernel directly (also covers systems without /proc).
  if (::kill(static_cast<pid_t>(process.pid), 0) == 0) return Liveness::kAlive;
  if (errno == ESRCH) return Liveness::kGone;
  return Liveness::kUnknown;  // EPERM: exists, another user's process
}

}  // namespace hpcml::comm

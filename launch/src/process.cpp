#include "hpcml/launch/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>

#include "hpcml/core/error.hpp"
#include "hpcml/core/process_path.hpp"
#include "hpcml/launch/script_safety.hpp"

extern char** environ;

namespace hpcml::launch {

namespace {

// Closes a descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

}  // namespace

bool in_path(const std::string& program) { return !find_on_path(program).empty(); }

ProcessResult run_process(const std::vector<std::string>& argv) {
  return run_process(argv, ProcessOptions{});
}

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  ProcessResult r;
  if (argv.empty()) return r;
  // The child's environment: ours, with options.env replacing same-named variables.
  std::vector<std::string> env_text;
  for (char** e = environ; *e; ++e) {
    const std::string_view entry(*e);
    bool replaced = false;
    for (const auto& [k, v] : options.env)
      replaced = replaced || (entry.size() > k.size() && entry.compare(0, k.size(), k) == 0 &&
                              entry[k.size()] == '=');
    if (!replaced) env_text.emplace_back(entry);
  }
  for (const auto& [k, v] : options.env) env_text.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  if (options.capture) {
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) HPCML_THROW(Error, "pipe failed running " + argv[0]);
  }
  Fd out_r{out_pipe[0]}, out_w{out_pipe[1]};
  if (options.capture) {
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) HPCML_THROW(Error, "pipe failed running " + argv[0]);
  }
  Fd err_r{err_pipe[0]}, err_w{err_pipe[1]};

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (options.capture) {
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_w.fd, 1);
    posix_spawn_file_actions_adddup2(&fa, err_w.fd, 2);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, argv[0].c_str(), &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  out_w.reset();
  err_w.reset();
  if (rc != 0) {
    r.exit_code = 127;
    r.err = argv[0] + ": cannot run it (" + std::string(std::strerror(rc)) + ")";
    return r;
  }
  if (options.capture) {
    pollfd fds[2] = {{out_r.fd, POLLIN, 0}, {err_r.fd, POLLIN, 0}};
    int open_fds = 2;
    char buf[4096];
    while (open_fds > 0) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
        if (n > 0) {
          (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
          fds[i].fd = -1;
          --open_fds;
        }
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.exit_code = 128 + WTERMSIG(status);
  }
  return r;
}

std::string self_executable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) HPCML_THROW(Error, "cannot find the hpcml executable (/proc/self/exe): " + ec.message());
  return p.string();
}

std::string self_command_line(const std::string& program) {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string line = program;
  std::size_t start = all.find('\0');  // argv[0] is replaced by `program`
  while (start != std::string::npos && start + 1 < all.size()) {
    const std::size_t end = all.find('\0', start + 1);
    const std::string arg = all.substr(start + 1, end - start - 1);
    line += ' ';
    line += arg.find_first_of(" \"'\\$") == std::string::npos ? arg : shell_quote(arg);
    start = end;
  }
  return line;
}

}  // namespace hpcml::launch

#include "hpcml/core/run_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "hpcml/core/error.hpp"

namespace hpcml {

namespace fs = std::filesystem;

std::string create_unique_dir(const std::string& parent, const std::string& name,
                              const std::string& what) {
  HPCML_REQUIRE(!name.empty(), ConfigError, what + ": empty directory name");
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec)
    HPCML_THROW(ConfigError, what + " '" + parent + "': cannot create directory: " + ec.message());
  for (int i = 1; i < 10000; ++i) {
    const fs::path p = fs::path(parent) / (i == 1 ? name : name + "-" + std::to_string(i));
    if (::mkdir(p.c_str(), 0777) == 0) return p.string();
    if (errno != EEXIST)
      HPCML_THROW(ConfigError,
                  what + ": cannot create '" + p.string() + "': " + std::strerror(errno));
  }
  HPCML_THROW(ConfigError, what + ": too many directories named '" + name + "' in " + parent);
}

bool create_dir_if_missing(const std::string& path, const std::string& what) {
  std::error_code ec;
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  if (ec)
    HPCML_THROW(ConfigError, what + " '" + p.parent_path().string() +
                                 "': cannot create directory: " + ec.message());
  if (::mkdir(p.c_str(), 0777) == 0) return true;
  const int err = errno;
  if (err == EEXIST && fs::is_directory(p, ec)) return false;
  HPCML_THROW(ConfigError, what + ": cannot create '" + path + "': " + std::strerror(err));
}

std::string sanitize_file_name(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '_';
  }
  return out;
}

namespace {

// Closes the descriptor and removes the temporary unless released.
struct TempFile {
  std::string path;
  int fd = -1;
  bool keep = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!keep) ::unlink(path.c_str());
  }
};

[[noreturn]] void fail(const std::string& path, const char* step, int err) {
  HPCML_THROW(Error, path + ": " + step + " failed: " + std::strerror(err));
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& text, bool executable) {
  TempFile tmp;
  tmp.path = path + ".tmp." + std::to_string(::getpid());
  const mode_t mode = executable ? 0775 : 0664;
  tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (tmp.fd < 0) fail(path, "open", errno);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(tmp.fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path, "write", errno);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(tmp.fd) != 0) fail(path, "fsync", errno);
  const int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) fail(path, "close", errno);
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) fail(path, "rename", errno);
  tmp.keep = true;
  // The rename is durable only once the directory entry is.
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    const int rc = ::fsync(dfd);
    const int err = errno;
    ::close(dfd);
    if (rc != 0 && err != EINVAL) fail(dir.string(), "fsync", err);
  }
}

RunDirLock::RunDirLock(const std::string& dir) {
  const std::string path = (fs::path(dir) / ".lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0664);
  if (fd < 0) fail(path, "open", errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err != EWOULDBLOCK) {
      ::close(fd);
      fail(path, "flock", err);
    }
    // The holder writes its pid and host right after taking the lock: a run
    // refused in between waits for that line (up to 1 s) to name the holder.
    std::string holder;
    for (int tries = 0; tries < 50; ++tries) {
      holder.assign(256, '\0');
      const ssize_t n = ::pread(fd, holder.data(), holder.size(), 0);
      holder.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
      if (holder.find('\n') != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::close(fd);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
    for (char& c : holder)
      if (!std::isprint(static_cast<unsigned char>(c))) c = '?';
    HPCML_THROW(Error, "run directory " + dir + " is in use by another run (" +
                           (holder.empty() ? std::string("holder unknown") : holder) + " holds " +
                           path + "); wait for it to end, or give this run another run.name");
  }
  fd_ = fd;
  char host[256] = "";
  ::gethostname(host, sizeof host - 1);
  const std::string who = "pid " + std::to_string(::getpid()) + " on host " + host + "\n";
  // Best effort: the lock is the flock, the text only names the holder.
  if (::ftruncate(fd_, 0) == 0) {
    const ssize_t w = ::pwrite(fd_, who.data(), who.size(), 0);
    (void)w;
  }
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) ::close(fd_);
}

RunDirLock& RunDirLock::operator=(RunDirLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

}  // namespace hpcml

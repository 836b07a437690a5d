#include "mapped.hpp"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <utility>

namespace hpcml::io::detail {

FileMap FileMap::map(int fd, std::uint64_t offset, std::size_t length) {
  FileMap m;
  if (fd < 0 || length == 0) return m;
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t begin = offset / page * page;
  const std::size_t len = length + static_cast<std::size_t>(offset - begin);
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, static_cast<off_t>(begin));
  if (p == MAP_FAILED) return m;
  m.addr_ = p;
  m.length_ = len;
  m.file_begin_ = begin;
  return m;
}

FileMap::FileMap(FileMap&& other) noexcept
    : addr_(std::exchange(other.addr_, nullptr)),
      length_(std::exchange(other.length_, 0)),
      file_begin_(std::exchange(other.file_begin_, 0)) {}

FileMap& FileMap::operator=(FileMap&& other) noexcept {
  if (this != &other) {
    reset();
    addr_ = std::exchange(other.addr_, nullptr);
    length_ = std::exchange(other.length_, 0);
    file_begin_ = std::exchange(other.file_begin_, 0);
  }
  return *this;
}

FileMap::~FileMap() { reset(); }

void FileMap::reset() {
  if (addr_) ::munmap(addr_, length_);
  addr_ = nullptr;
  length_ = 0;
  file_begin_ = 0;
}

namespace {

// The jump buffer of the guarded copy running on this thread (null: none).
thread_local sigjmp_buf* t_jump = nullptr;
struct sigaction g_previous {};

void on_sigbus(int sig, siginfo_t* info, void* context) {
  if (sigjmp_buf* env = t_jump) {
    t_jump = nullptr;
    siglongjmp(*env, 1);
  }
  // Not ours: do what would have happened without this handler.
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) {
      g_previous.sa_sigaction(sig, info, context);
      return;
    }
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // Default action: a fault re-runs the faulting instruction and dies of it
  // now; a SIGBUS sent by kill() is raised again.
  ::signal(SIGBUS, SIG_DFL);
  if (info == nullptr || info->si_code <= 0) ::raise(SIGBUS);
}

void install_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sigemptyset(&sa.sa_mask);
    // SA_NODEFER: SIGBUS stays unblocked after the siglongjmp (sigsetjmp below
    // does not save the signal mask: saving it would cost a system call).
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    ::sigaction(SIGBUS, &sa, &g_previous);
  });
}

}  // namespace

bool run_guarded(void (*fn)(void*), void* arg) {
  install_handler();
  sigjmp_buf env;
  if (sigsetjmp(env, 0) != 0) {
    // Came back from the handler: make sure SIGBUS is not left blocked.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGBUS);
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    return false;
  }
  t_jump = &env;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  fn(arg);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_jump = nullptr;
  return true;
}

}  // namespace hpcml::io::detail

#include "hpcml/core/signals.hpp"

#include <atomic>
#include <csignal>

namespace hpcml {

namespace {
volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_stop_signal(int sig) {
  g_stop = 1;
  g_signal = sig;
}
}  // namespace

void install_stop_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() { return g_stop != 0; }
int stop_signal() { return g_signal; }
void set_stop_requested(bool value, int signal_number) {
  g_stop = value ? 1 : 0;
  g_signal = signal_number;
}

}  // namespace hpcml

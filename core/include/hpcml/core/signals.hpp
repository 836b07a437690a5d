// Graceful stop on SIGUSR1/SIGTERM (Slurm's --signal and preemption): the
// handler only sets a flag; the trainer polls it once per step and all ranks
// agree on the step at which to stop.
#pragma once

#include "hpcml/core/exit_codes.hpp"

namespace hpcml {

/// Installs handlers for SIGUSR1 and SIGTERM that set the stop flag.
void install_stop_signal_handlers();
/// True once a stop signal has arrived in this process.
bool stop_requested();
/// The signal number that requested the stop (0 if none).
int stop_signal();
/// For tests: sets or clears the flag as if a signal had arrived.
void set_stop_requested(bool value, int signal_number = 0);

/// Exit code of `hpcml train` when it stopped early on a signal (the job
/// script requeues on it); defined with the others in exit_codes.hpp.
inline constexpr int kExitPreempted = exit_code::kPreempted;

}  // namespace hpcml

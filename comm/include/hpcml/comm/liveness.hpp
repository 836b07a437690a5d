// Is another process of this job still alive? Used by the waiting loops to
// notice a rank on the same node that died (kill -9, a crash) within a fraction
// of a second, instead of waiting for the stall inspector's timeout: a dead
// peer is told apart from a slow one by its process, not by time.
#pragma once

namespace hpcml::comm {

/// A process, robust against pid reuse: the pid plus its start time (clock
/// ticks since boot, /proc/<pid>/stat field 22; 0 where /proc is missing).
struct ProcessIdentity {
  long pid = 0;
  unsigned long long start_ticks = 0;
};

/// This process.
ProcessIdentity this_process();

enum class Liveness {
  kAlive,    ///< the process exists (and has the recorded start time)
  kGone,     ///< no such process, a zombie, or its pid now names another process
  kUnknown,  ///< cannot tell (no /proc, or another pid namespace)
};

/// Looks the process up on this node. Never blocks, never throws.
Liveness process_liveness(const ProcessIdentity& process);

}  // namespace hpcml::comm

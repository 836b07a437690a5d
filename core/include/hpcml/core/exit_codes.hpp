// The exit statuses of the hpcml executable, in one place. Job scripts branch
// on them (requeue on kPreempted only), so each cause has its own code and none
// of them changes meaning. docs/user-guide.md ("Exit statuses") lists them.
#pragma once

namespace hpcml::exit_code {

/// The command did what was asked.
inline constexpr int kOk = 0;
/// An error: bad config, data, arguments to the library, I/O failure, an
/// internal error. One `hpcml: error:` line says what.
inline constexpr int kError = 1;
/// `hpcml train` stopped early on SIGUSR1/SIGTERM at a step all ranks agreed
/// on: "stopped, requeue me". The only code a job script requeues on.
inline constexpr int kPreempted = 3;
/// The stall inspector aborted the job: a collective did not complete within
/// parallel.stall_timeout_s (a rank hung, deadlocked or far too slow).
inline constexpr int kStalled = 4;
/// A rank of the job died (killed, crashed) and the survivors aborted the job.
inline constexpr int kPeerLost = 5;
// 100-127: command-line usage errors, as CLI11 numbers them (106: a required
// argument is missing, 109: an argument too many, ...). Reserved here so no
// hpcml code collides with them.
inline constexpr int kUsageFirst = 100;
inline constexpr int kUsageLast = 127;

}  // namespace hpcml::exit_code

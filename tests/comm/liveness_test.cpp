// comm's process liveness check (the peer watch of the waiting loops).
#include "hpcml/comm/liveness.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

using hpcml::comm::Liveness;
using hpcml::comm::process_liveness;
using hpcml::comm::ProcessIdentity;
using hpcml::comm::this_process;

TEST(Liveness, ThisProcessIsAliveWithItsStartTime) {
  const ProcessIdentity self = this_process();
  EXPECT_EQ(self.pid, static_cast<long>(::getpid()));
  EXPECT_GT(self.start_ticks, 0u);  // Linux: /proc/self/stat
  EXPECT_EQ(process_liveness(self), Liveness::kAlive);
}

TEST(Liveness, AReusedPidIsAnotherProcess) {
  ProcessIdentity other = this_process();
  other.start_ticks += 12345;  // same pid, different start: not the process we knew
  EXPECT_EQ(process_liveness(other), Liveness::kGone);
}

TEST(Liveness, KilledChildIsGoneAsZombieAndAfterReaping) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    for (;;) ::pause();
  }
  EXPECT_EQ(process_liveness({child, 0}), Liveness::kAlive);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  // Not reaped yet: a zombie counts as gone.
  for (int i = 0; i < 200; ++i) {
    if (process_liveness({child, 0}) == Liveness::kGone) break;
    ::usleep(5000);
  }
  EXPECT_EQ(process_liveness({child, 0}), Liveness::kGone);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(process_liveness({child, 1}), Liveness::kGone);
}

TEST(Liveness, NoPidIsUnknown) { EXPECT_EQ(process_liveness({0, 0}), Liveness::kUnknown); }

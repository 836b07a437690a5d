#include "hpcml/core/phase_timing.hpp"

#include <gtest/gtest.h>

#include "hpcml/core/error.hpp"

using hpcml::Phase;
using hpcml::PhaseTimer;
using hpcml::StepPhases;
using hpcml::StepRecord;

namespace {

// A clock the test moves by hand.
struct FakeClock {
  double t = 100.0;
  PhaseTimer::Now now() {
    return [this] { return t; };
  }
};

}  // namespace

TEST(PhaseTimer, NestedPhasesCountForTheInnerPhaseOnly) {
  FakeClock c;
  PhaseTimer timer(c.now());
  timer.begin_step();
  timer.measure(Phase::kIo, [&] { c.t += 0.5; });
  timer.measure(Phase::kComm, [&] { c.t += 0.25; });  // begin_gradients
  timer.measure(Phase::kCompute, [&] {                // backprop with two comm hooks
    c.t += 2.0;
    timer.measure(Phase::kComm, [&] { c.t += 0.5; });
    c.t += 1.0;
    timer.measure(Phase::kComm, [&] { c.t += 0.25; });
  });
  const bool done = timer.measure(Phase::kComm, [&] {  // a sharded reduction
    c.t += 1.0;
    timer.measure(Phase::kCompute, [&] { c.t += 0.75; });  // the update of owned ranges
    c.t += 1.0;
    return true;
  });
  EXPECT_TRUE(done);
  c.t += 0.125;  // outside every phase: part of the step only
  EXPECT_DOUBLE_EQ(timer.seconds(Phase::kIo), 0.5);
  EXPECT_DOUBLE_EQ(timer.seconds(Phase::kCompute), 2.0 + 1.0 + 0.75);
  EXPECT_DOUBLE_EQ(timer.seconds(Phase::kComm), 0.25 + 0.5 + 0.25 + 2.0);
  EXPECT_DOUBLE_EQ(timer.step_seconds(), 7.375);

  // A new step starts from zero.
  timer.begin_step();
  EXPECT_EQ(timer.seconds(Phase::kCompute), 0.0);
  EXPECT_EQ(timer.step_seconds(), 0.0);
}

TEST(PhaseTimer, LeavesThePhaseWhenTheBodyThrows) {
  FakeClock c;
  PhaseTimer timer(c.now());
  timer.begin_step();
  EXPECT_THROW(timer.measure(Phase::kIo,
                             [&] {
                               c.t += 1.0;
                               throw hpcml::DataError("bad batch");
                             }),
               hpcml::DataError);
  EXPECT_DOUBLE_EQ(timer.seconds(Phase::kIo), 1.0);
  EXPECT_NO_THROW(timer.begin_step());  // nothing left open
  EXPECT_THROW(timer.leave(), hpcml::Error);
}

TEST(PhaseTimer, RealClockIsMonotonic) {
  PhaseTimer timer;
  timer.begin_step();
  timer.measure(Phase::kCompute, [] {});
  EXPECT_GE(timer.seconds(Phase::kCompute), 0.0);
  EXPECT_GE(timer.step_seconds(), timer.seconds(Phase::kCompute));
}

TEST(CombineRanks, SlowestStepMeanPhasesAndIdleRemainder) {
  // 2 ranks x 2 steps, rank-major.
  std::vector<double> g;
  StepRecord{1.0, 0.5, 0.25, 0.125, 0.0625, 2.0}.append_to(g);  // rank 0, step 1
  StepRecord{2.0, 0.5, 0.25, 0.0, 0.0, 1.0}.append_to(g);       // rank 0, step 2
  StepRecord{1.5, 0.25, 0.5, 0.125, 0.1875, 4.0}.append_to(g);  // rank 1, step 1
  StepRecord{0.5, 0.5, 0.25, 0.0, 0.0, 3.0}.append_to(g);       // rank 1, step 2
  ASSERT_EQ(g.size(), 4 * StepRecord::kFields);
  const auto s = hpcml::combine_ranks(g, 2, 2);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_DOUBLE_EQ(s[0].step_s, 1.5);
  EXPECT_DOUBLE_EQ(s[0].compute_s, 0.375);
  EXPECT_DOUBLE_EQ(s[0].comm_s, 0.375);
  EXPECT_DOUBLE_EQ(s[0].io_s, 0.125);
  EXPECT_DOUBLE_EQ(s[0].comm_overlapped_s, 0.125);
  EXPECT_DOUBLE_EQ(s[0].idle_s, 1.5 - 0.375 - 0.375 - 0.125);
  EXPECT_DOUBLE_EQ(s[0].loss, 3.0);
  EXPECT_DOUBLE_EQ(s[1].step_s, 2.0);
  EXPECT_DOUBLE_EQ(s[1].idle_s, 2.0 - 0.5 - 0.25);
  EXPECT_DOUBLE_EQ(s[1].loss, 2.0);

  hpcml::PhaseTotals t;
  for (const auto& p : s) t.add(p);
  EXPECT_DOUBLE_EQ(t.step_s, 3.5);
  EXPECT_DOUBLE_EQ(t.compute_s, 0.875);
  EXPECT_DOUBLE_EQ(t.idle_s, 0.625 + 1.25);
}

TEST(CombineRanks, IdleIsNeverNegative) {
  // Phases that add up to more than the step (clock granularity): idle 0.
  std::vector<double> g;
  StepRecord{1.0, 0.75, 0.5, 0.0, 0.0, 0.0}.append_to(g);
  EXPECT_EQ(hpcml::combine_ranks(g, 1, 1)[0].idle_s, 0.0);
}

TEST(CombineRanks, RejectsAWrongSize) {
  std::vector<double> g(StepRecord::kFields * 3);
  EXPECT_THROW(hpcml::combine_ranks(g, 2, 2), hpcml::Error);
  EXPECT_TRUE(hpcml::combine_ranks({}, 4, 0).empty());
}

TEST(RunTiming, MedianAndTotalsOverEpochs) {
  hpcml::RunTiming r;
  EXPECT_EQ(r.step_s_median(), 0.0);
  std::vector<StepPhases> e1(3), e2(1);
  e1[0].step_s = 3.0;
  e1[1].step_s = 1.0;
  e1[2].step_s = 4.0;
  e2[0].step_s = 2.0;
  hpcml::PhaseTotals t1, t2;
  t1.compute_s = 1.5;
  t2.compute_s = 0.5;
  r.add_steps(e1, t1);
  EXPECT_DOUBLE_EQ(r.step_s_median(), 3.0);  // odd count: the middle one
  r.add_steps(e2, t2);
  EXPECT_DOUBLE_EQ(r.step_s_median(), 2.5);  // even count: mean of the middle two
  EXPECT_DOUBLE_EQ(r.totals().compute_s, 2.0);
  r.add_train_seconds(1.25);
  r.add_train_seconds(0.5);
  EXPECT_DOUBLE_EQ(r.train_s(), 1.75);
}

#include "hpcml/core/phase_timing.hpp"

#include <algorithm>
#include <chrono>

#include "hpcml/core/error.hpp"

namespace hpcml {

namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

PhaseTimer::PhaseTimer(Now now) : now_(now ? std::move(now) : Now(steady_seconds)) {
  open_.reserve(4);
}

void PhaseTimer::begin_step() {
  HPCML_REQUIRE(open_.empty(), Error, "PhaseTimer: begin_step inside an open phase");
  std::fill(std::begin(totals_), std::end(totals_), 0.0);
  step_start_ = now_();
}

void PhaseTimer::enter(Phase p) { open_.push_back({p, now_()}); }

void PhaseTimer::leave() {
  HPCML_REQUIRE(!open_.empty(), Error, "PhaseTimer: leave without enter");
  const Open o = open_.back();
  open_.pop_back();
  const double elapsed = now_() - o.start;
  totals_[static_cast<std::size_t>(o.phase)] += std::max(0.0, elapsed - o.inner);
  if (!open_.empty()) open_.back().inner += elapsed;
}

double PhaseTimer::step_seconds() const { return now_() - step_start_; }

void StepRecord::append_to(std::vector<double>& out) const {
  out.insert(out.end(), {step_s, compute_s, comm_s, io_s, comm_overlapped_s, loss});
}

std::vector<StepPhases> combine_ranks(std::span<const double> gathered, int ranks,
                                      std::size_t steps) {
  const auto n = static_cast<std::size_t>(ranks);
  HPCML_REQUIRE(ranks >= 1 && gathered.size() == n * steps * StepRecord::kFields, Error,
                "combine_ranks: " + std::to_string(gathered.size()) + " values for " +
                    std::to_string(ranks) + " ranks x " + std::to_string(steps) + " steps");
  std::vector<StepPhases> out(steps);
  for (std::size_t st = 0; st < steps; ++st) {
    StepPhases& p = out[st];
    for (std::size_t r = 0; r < n; ++r) {
      const double* f = &gathered[(r * steps + st) * StepRecord::kFields];
      p.step_s = std::max(p.step_s, f[0]);
      p.compute_s += f[1];
      p.comm_s += f[2];
      p.io_s += f[3];
      p.comm_overlapped_s += f[4];
      p.loss += f[5];
    }
    p.compute_s /= ranks;
    p.comm_s /= ranks;
    p.io_s /= ranks;
    p.comm_overlapped_s /= ranks;
    p.loss /= ranks;
    p.idle_s = std::max(0.0, p.step_s - p.compute_s - p.comm_s - p.io_s);
  }
  return out;
}

void PhaseTotals::add(const StepPhases& s) {
  step_s += s.step_s;
  compute_s += s.compute_s;
  comm_s += s.comm_s;
  io_s += s.io_s;
  idle_s += s.idle_s;
  comm_overlapped_s += s.comm_overlapped_s;
}

void PhaseTotals::add(const PhaseTotals& t) {
  step_s += t.step_s;
  compute_s += t.compute_s;
  comm_s += t.comm_s;
  io_s += t.io_s;
  idle_s += t.idle_s;
  comm_overlapped_s += t.comm_overlapped_s;
}

void RunTiming::add_steps(std::span<const StepPhases> steps, const PhaseTotals& epoch_totals) {
  for (const auto& s : steps) step_s_.push_back(s.step_s);
  totals_.add(epoch_totals);
}

double RunTiming::step_s_median() const { return median(step_s_); }

}  // namespace hpcml

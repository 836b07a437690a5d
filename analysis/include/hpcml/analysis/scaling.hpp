// Scaling analysis: tables of speedup/efficiency, Amdahl and Gustafson fits,
// Karp–Flatt serial fractions and predictions at larger N.
//
// Pure computation: no MPI, no files. Every quantity the report prints comes
// from here; docs/scaling.md derives each formula.
//
// Conventions:
// - N is the number of processing elements of a point: ranks x threads per rank.
// - The baseline N0 is the smallest N of a study (need not be 1); speedup and
//   efficiency are relative to it: S(N) = X(N)/X(N0), E(N) = S(N)*N0/N, where X
//   is the rate (work per second). For strong scaling X ~ 1/T(N); for weak
//   scaling X ~ N/T(N), so S is Gustafson's scaled speedup measured.
// - Quantities that cannot be computed are NaN here; writers print them as
//   "n/a" (text) or null (JSON), never as "nan".
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "hpcml/analysis/multiterm.hpp"

namespace hpcml::analysis {

inline constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

enum class Mode { kStrong, kWeak };
std::string to_string(Mode mode);
/// Parses "strong" or "weak"; throws ConfigError naming `what` otherwise.
Mode parse_mode(const std::string& text, const std::string& what);

/// Seconds per step spent in each activity (means over ranks). NaN = not measured.
struct TimeSplit {
  double compute_s = kUnknown;
  double comm_exposed_s = kUnknown;  // communication not hidden behind compute
  double comm_overlapped_s =
      kUnknown;  // communication hidden behind compute (not in the step time)
  double io_s = kUnknown;
  double idle_s = kUnknown;
};

/// One measurement (one repeat) of one configuration.
struct Sample {
  double step_s = kUnknown;      // wall seconds per step; NaN if only a rate is known
  double throughput = kUnknown;  // work units (samples) per second; NaN if only time is known
  TimeSplit split;
  bool oversubscribed = false;
  std::string source;  // run directory or file:line, for messages
};

/// One configuration of a study with all its repeats.
struct Point {
  int ranks = 1;
  int threads = 1;
  int nodes = 1;
  std::vector<Sample> samples;
  double n() const { return static_cast<double>(ranks) * threads; }
};

struct Study {
  std::string name;
  Mode mode = Mode::kStrong;
  std::vector<Point> points;
  std::vector<std::string> notes;  // provenance lines for the report
};

/// The table row of one point. Spreads are over repeats (median, min, max).
struct Row {
  int ranks = 1, threads = 1, nodes = 1;
  double n = 1;
  int repeats = 0;
  double time_med = kUnknown, time_min = kUnknown, time_max = kUnknown;  // s per step
  double rate_med = kUnknown, rate_min = kUnknown, rate_max = kUnknown;  // throughput (or 1/T)
  bool rate_is_throughput = false;  // false: rate is derived from time only (relative units)
  double speedup = kUnknown, speedup_min = kUnknown, speedup_max = kUnknown;
  double efficiency = kUnknown;
  double karp_flatt = kUnknown;        // NaN at the baseline
  double gustafson_serial = kUnknown;  // weak scaling only; NaN at the baseline
  TimeSplit split;                     // medians over repeats
  bool oversubscribed = false;
};

enum class Law { kAmdahl, kGustafson };
std::string to_string(Law law);

/// Least-squares fit of a scaling law to the rates of a study.
struct Fit {
  Law law = Law::kAmdahl;
  bool ok = false;               // false: too few distinct N; p etc. are NaN
  double p = kUnknown;           // parallel fraction relative to one processing element
  double p_baseline = kUnknown;  // parallel fraction of the baseline run (Amdahl only)
  double rate1 = kUnknown;       // fitted rate at N = 1 (model scale)
  double se = kUnknown;          // standard error of p from the residuals (linearised)
  double ci_lo = kUnknown, ci_hi = kUnknown;      // p +- t(0.975, dof) * se, clipped to [0, 1]
  double boot_lo = kUnknown, boot_hi = kUnknown;  // residual-bootstrap 2.5 / 97.5 percentiles
  double lo = kUnknown, hi = kUnknown;            // reported interval: union of the two above
  double rms_log_residual = kUnknown;             // root mean square of log(measured/model)
  int observations = 0;
  int dof = 0;
  bool at_bound = false;  // p is 0 or 1: the law cannot describe the data well
};

struct FitOptions {
  int bootstrap = 1000;
  std::uint64_t seed = 20260501;
};

/// Model speedup relative to N = 1 for parallel fraction p.
double amdahl_speedup(double p, double n);
double gustafson_speedup(double p, double n);
/// Model speedup relative to the baseline n0: S(n)/S(n0).
double law_speedup(Law law, double p, double n, double n0);
/// Model efficiency relative to the baseline: law_speedup * n0 / n.
double law_efficiency(Law law, double p, double n, double n0);
/// Karp–Flatt serial fraction of a speedup s at n relative to n0 (uses n/n0);
/// NaN when n == n0.
double karp_flatt(double speedup, double n, double n0);

/// Fits `law` to observations (n_i, rate_i) by least squares on log(rate):
/// log rate_i = log c + log S_law(n_i; p), p in [0, 1], c > 0 free.
/// Needs >= 2 distinct n for a fit (else ok = false); rates must be > 0.
Fit fit_law(Law law, const std::vector<double>& n, const std::vector<double>& rate,
            const FitOptions& options = {});

struct Prediction {
  double n = 1;
  double speedup = kUnknown, speedup_lo = kUnknown, speedup_hi = kUnknown;  // relative to N0
  double efficiency = kUnknown, efficiency_lo = kUnknown, efficiency_hi = kUnknown;
};

/// Largest N (>= n0) whose model efficiency relative to n0 stays >= target.
/// Infinite when the efficiency never drops below target.
double max_n_above(Law law, double p, double n0, double target);

struct StudyOptions {
  double target_efficiency = 0.8;
  double max_n = 0;                // 0: 64 x the largest measured N
  bool fit_oversubscribed = true;  // false: oversubscribed points stay in the table, not in the fit
  FitOptions fit;
  int holdout = 1;  // largest N left out for the held-out check of the models (0: none)
};

struct StudyResult {
  Study study;
  double n0 = kUnknown;
  std::vector<Row> rows;  // sorted by N
  Fit fit;
  std::vector<Prediction> predictions;  // 2x, 4x, ... the largest measured N up to max_n
  double max_n_target = kUnknown;       // largest N with efficiency >= target (may be inf)
  double max_n_target_lo = kUnknown, max_n_target_hi = kUnknown;  // from the fit interval
  double max_n = kUnknown;                                        // the prediction range used
  double target_efficiency = 0.8;
  std::vector<std::string> warnings;
  MultiTermResult multi_term;  // time(N) = a + b/N + c log2 N + d N and the held-out check
};

/// Builds the table, fit and predictions of one study. Throws DataError when
/// the study has no points or a point has no usable sample; suspicious data
/// (non-monotone, one point, oversubscription, a fit at a bound) becomes a warning.
StudyResult analyse(const Study& study, const StudyOptions& options);

double median(std::vector<double> values);

}  // namespace hpcml::analysis

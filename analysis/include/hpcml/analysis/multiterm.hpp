// A multi-term scaling model, time(N) = a + b/N + c*log2(N) + d*N, with the
// terms chosen by cross-validation, and a held-out check that fits on the
// smaller N and predicts the larger ones (for this model and for the Amdahl
// and Gustafson fits side by side).
//
// Pure computation: no files, no MPI. docs/scaling.md ("Multi-term model")
// derives every step. Deterministic: no random numbers are used.
#pragma once

#include <array>
#include <limits>
#include <string>
#include <vector>

namespace hpcml::analysis {

/// The four terms, as bits of a subset mask: a (constant), b/N, c*log2 N, d*N.
inline constexpr unsigned kTermConstant = 1u, kTermInverse = 2u, kTermLog = 4u, kTermLinear = 8u;
inline constexpr int kTermCount = 4;

/// "a + b/N + c*log2 N + d*N" restricted to the terms of `mask`.
std::string terms_text(unsigned mask);

/// The model's time at n: sum of coef[j] * f_j(n); coef of unused terms is 0.
double multiterm_time(const std::array<double, kTermCount>& coef, double n);

/// One subset of the terms fitted to all points.
struct TermCandidate {
  unsigned mask = 0;
  std::array<double, kTermCount> coef{};                         // 0 for terms not in the subset
  double cv_rms_rel = std::numeric_limits<double>::quiet_NaN();  // leave-one-N-out
  double rms_rel = std::numeric_limits<double>::quiet_NaN();     // in-sample
};

struct MultiTermFit {
  bool ok = false;
  std::string why_not;  // when !ok: one line saying what is missing
  unsigned mask = 0;    // chosen terms
  std::array<double, kTermCount> coef{};
  double cv_rms_rel = std::numeric_limits<double>::quiet_NaN();
  double rms_rel = std::numeric_limits<double>::quiet_NaN();
  int points = 0;                         // distinct N used
  std::vector<TermCandidate> candidates;  // every admissible subset, best CV error first
  double predict(double n) const { return multiterm_time(coef, n); }
};

/// Fits time(N) to one time per distinct N (`n` ascending or not, no repeats:
/// callers pass medians). Weighted least squares on the relative error, all
/// coefficients >= 0; the subset with the smallest leave-one-N-out error wins,
/// ties (within 1 %) going to fewer terms. Needs >= 3 distinct N (else ok =
/// false with why_not); times must be > 0 and N >= 1 (DataError otherwise).
MultiTermFit fit_multiterm(const std::vector<double>& n, const std::vector<double>& t);

/// One held-out point: measured time and each model's prediction (NaN when
/// that model could not be fitted).
struct HoldoutPoint {
  double n = 0;
  double measured = std::numeric_limits<double>::quiet_NaN();
  double amdahl = std::numeric_limits<double>::quiet_NaN();
  double gustafson = std::numeric_limits<double>::quiet_NaN();
  double multiterm = std::numeric_limits<double>::quiet_NaN();
};

struct Holdout {
  bool ok = false;
  std::string why_not;
  int held_out = 0;  // number of largest N left out of the fits
  double train_max_n = std::numeric_limits<double>::quiet_NaN();
  unsigned multiterm_mask = 0;  // terms chosen on the training points
  std::array<double, kTermCount> multiterm_coef{};
  double amdahl_p = std::numeric_limits<double>::quiet_NaN();
  double gustafson_p = std::numeric_limits<double>::quiet_NaN();
  double amdahl_rate1 = std::numeric_limits<double>::quiet_NaN();  // fitted rate at N = 1
  double gustafson_rate1 = std::numeric_limits<double>::quiet_NaN();
  bool weak = false;  // rate = N/t (weak) or 1/t (strong)
  std::vector<HoldoutPoint> points;
  /// Time the held-out Amdahl (gustafson = false) or Gustafson fit predicts at n.
  double law_time(bool gustafson, double n) const;
};

struct MultiTermResult {
  bool evaluated = false;    // false: the study was not analysed with it (no rows)
  std::string time_unit;     // what t(N) is: "s per step", "1/throughput", ...
  std::vector<double> n, t;  // the points fitted (one per distinct N, ascending)
  MultiTermFit fit;
  Holdout holdout;
};

/// Fits on all points and runs the held-out check: the `holdout` largest N
/// are left out, the multi-term model (terms chosen again by CV on the rest)
/// and the Amdahl and Gustafson laws are fitted to the rest and predict them.
/// t is a time per unit of work: t = 1/rate (strong) or N/rate (weak), so that
/// the laws' fitted rates convert to times the same way. holdout = 0 skips the
/// check; it needs holdout + 3 distinct N (else holdout.ok = false, why_not).
MultiTermResult analyse_multiterm(const std::vector<double>& n, const std::vector<double>& t,
                                  bool weak, int holdout);

}  // namespace hpcml::analysis

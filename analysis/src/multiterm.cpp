#include "hpcml/analysis/multiterm.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>

#include "hpcml/analysis/report.hpp"
#include "hpcml/analysis/scaling.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::analysis {

namespace {

constexpr unsigned kAllTerms = 15u;

double term(int j, double n) {
  switch (j) {
    case 0:
      return 1.0;
    case 1:
      return 1.0 / n;
    case 2:
      return std::log2(n);
    default:
      return n;
  }
}

int popcount(unsigned mask) { return std::popcount(mask); }

struct Solved {
  bool ok = false;  // false: singular (terms not independent on these N)
  std::array<double, kTermCount> coef{};
  double ssr = 0;  // sum of squared relative errors
};

// Weighted least squares on the relative error for the terms of `mask`:
// minimise sum_i (sum_j coef_j f_j(n_i) / t_i - 1)^2. Columns are scaled to
// unit norm and the normal equations solved by Cholesky in long double (at
// most 4 unknowns); a pivot below 1e-12 of its diagonal means the subset is
// not identifiable from these N.
Solved solve(unsigned mask, const std::vector<double>& n, const std::vector<double>& t) {
  Solved out;
  std::vector<int> cols;
  for (int j = 0; j < kTermCount; ++j)
    if (mask & (1u << j)) cols.push_back(j);
  const std::size_t k = cols.size(), m = n.size();
  if (k == 0 || m < k) return out;
  std::vector<std::vector<long double>> a(m, std::vector<long double>(k));
  std::vector<long double> scale(k, 0);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t c = 0; c < k; ++c) {
      a[i][c] = term(cols[c], n[i]) / t[i];
      scale[c] += a[i][c] * a[i][c];
    }
  for (std::size_t c = 0; c < k; ++c) {
    if (!(scale[c] > 0)) return out;
    scale[c] = std::sqrt(scale[c]);
    for (std::size_t i = 0; i < m; ++i) a[i][c] /= scale[c];
  }
  std::vector<std::vector<long double>> g(k, std::vector<long double>(k, 0));
  std::vector<long double> rhs(k, 0);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t r = 0; r < k; ++r) {
      rhs[r] += a[i][r];
      for (std::size_t c = 0; c < k; ++c) g[r][c] += a[i][r] * a[i][c];
    }
  // Cholesky G = L L^T.
  std::vector<std::vector<long double>> l(k, std::vector<long double>(k, 0));
  for (std::size_t r = 0; r < k; ++r) {
    for (std::size_t c = 0; c <= r; ++c) {
      long double s = g[r][c];
      for (std::size_t q = 0; q < c; ++q) s -= l[r][q] * l[c][q];
      if (r == c) {
        if (!(s > 1e-12L * g[r][r])) return out;
        l[r][r] = std::sqrt(s);
      } else {
        l[r][c] = s / l[c][c];
      }
    }
  }
  std::vector<long double> y(k), x(k);
  for (std::size_t r = 0; r < k; ++r) {
    long double s = rhs[r];
    for (std::size_t q = 0; q < r; ++q) s -= l[r][q] * y[q];
    y[r] = s / l[r][r];
  }
  for (std::size_t r = k; r-- > 0;) {
    long double s = y[r];
    for (std::size_t q = r + 1; q < k; ++q) s -= l[q][r] * x[q];
    x[r] = s / l[r][r];
  }
  for (std::size_t c = 0; c < k; ++c)
    out.coef[static_cast<std::size_t>(cols[c])] = static_cast<double>(x[c] / scale[c]);
  out.ok = true;
  for (std::size_t i = 0; i < m; ++i) {
    const double e = multiterm_time(out.coef, n[i]) / t[i] - 1.0;
    out.ssr += e * e;
  }
  return out;
}

// Admissible: every coefficient of the subset >= 0. A coefficient whose term
// contributes less than 1e-9 of the largest time anywhere in the data is
// rounding noise around zero and is set to 0 (exact data of fewer terms).
bool admissible(Solved& s, unsigned mask, const std::vector<double>& n) {
  if (!s.ok) return false;
  const double n_max = *std::max_element(n.begin(), n.end());
  double t_scale = 0;
  for (double v : n) t_scale = std::max(t_scale, std::fabs(multiterm_time(s.coef, v)));
  for (int j = 0; j < kTermCount; ++j) {
    if (!(mask & (1u << j))) continue;
    const double biggest = std::max(std::fabs(term(j, 1.0)), std::fabs(term(j, n_max)));
    if (s.coef[static_cast<std::size_t>(j)] < 0) {
      if (std::fabs(s.coef[static_cast<std::size_t>(j)]) * biggest > 1e-9 * t_scale) return false;
      s.coef[static_cast<std::size_t>(j)] = 0;
    }
  }
  return true;
}

// Non-negative least squares restricted to the terms of `mask`: the best
// admissible fit over the non-empty sub-subsets (an NNLS optimum is the
// unconstrained optimum of its active terms). Ties go to fewer terms.
Solved nnls(unsigned mask, const std::vector<double>& n, const std::vector<double>& t) {
  Solved best;
  int best_k = 0;
  for (unsigned sub = 1; sub <= kAllTerms; ++sub) {
    if ((sub & ~mask) != 0) continue;
    Solved s = solve(sub, n, t);
    if (!admissible(s, sub, n)) continue;
    const int k = popcount(sub);
    // Sums of squares that differ by rounding only (exact data: both ~0) tie.
    const double tol = best.ok ? 1e-12 * best.ssr + 1e-24 : 0.0;
    if (!best.ok || s.ssr < best.ssr - tol || (s.ssr <= best.ssr + tol && k < best_k)) {
      best = s;
      best_k = k;
    }
  }
  return best;
}

}  // namespace

std::string terms_text(unsigned mask) {
  static const char* names[] = {"a", "b/N", "c*log2 N", "d*N"};
  std::string out;
  for (int j = 0; j < kTermCount; ++j)
    if (mask & (1u << j)) out += (out.empty() ? "" : " + ") + std::string(names[j]);
  return out.empty() ? "none" : out;
}

double multiterm_time(const std::array<double, kTermCount>& coef, double n) {
  double s = 0;
  for (int j = 0; j < kTermCount; ++j)
    if (coef[static_cast<std::size_t>(j)] != 0) s += coef[static_cast<std::size_t>(j)] * term(j, n);
  return s;
}

MultiTermFit fit_multiterm(const std::vector<double>& n_in, const std::vector<double>& t_in) {
  HPCML_REQUIRE(n_in.size() == t_in.size(), Error, "fit_multiterm: n and t differ in length");
  MultiTermFit fit;
  // Sort by N; each N once.
  std::vector<std::size_t> order(n_in.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return n_in[a] < n_in[b]; });
  std::vector<double> n, t;
  for (std::size_t i : order) {
    HPCML_REQUIRE(std::isfinite(n_in[i]) && n_in[i] >= 1 && std::isfinite(t_in[i]) && t_in[i] > 0,
                  DataError,
                  "multi-term model: a point has N=" + format_number(n_in[i]) +
                      ", time=" + format_number(t_in[i]) + "; need N >= 1 and a time > 0");
    HPCML_REQUIRE(n.empty() || n_in[i] > n.back(), DataError,
                  "multi-term model: N=" + format_number(n_in[i]) +
                      " given twice; pass one time (the median) per N");
    n.push_back(n_in[i]);
    t.push_back(t_in[i]);
  }
  fit.points = static_cast<int>(n.size());
  if (n.size() < 3) {
    fit.why_not =
        "needs at least 3 distinct N for cross-validation, got " + std::to_string(n.size());
    return fit;
  }
  const std::size_t d = n.size();
  for (unsigned mask = 1; mask <= kAllTerms; ++mask) {
    // Every leave-one-out fold must still determine the subset's coefficients.
    if (static_cast<std::size_t>(popcount(mask)) > d - 1) continue;
    Solved full = solve(mask, n, t);
    if (!admissible(full, mask, n)) continue;
    TermCandidate c;
    c.mask = mask;
    c.coef = full.coef;
    c.rms_rel = std::sqrt(full.ssr / static_cast<double>(d));
    double cv = 0;
    bool folds_ok = true;
    for (std::size_t out = 0; out < d && folds_ok; ++out) {
      std::vector<double> tn, tt;
      for (std::size_t i = 0; i < d; ++i)
        if (i != out) {
          tn.push_back(n[i]);
          tt.push_back(t[i]);
        }
      const Solved f = nnls(mask, tn, tt);
      if (!f.ok) {
        folds_ok = false;
        break;
      }
      const double e = multiterm_time(f.coef, n[out]) / t[out] - 1.0;
      cv += e * e;
    }
    if (!folds_ok) continue;
    c.cv_rms_rel = std::sqrt(cv / static_cast<double>(d));
    fit.candidates.push_back(c);
  }
  if (fit.candidates.empty()) {
    fit.why_not =
        "no subset of the terms fits these " + std::to_string(d) + " points with coefficients >= 0";
    return fit;
  }
  std::stable_sort(fit.candidates.begin(), fit.candidates.end(),
                   [](const TermCandidate& a, const TermCandidate& b) {
                     if (a.cv_rms_rel != b.cv_rms_rel) return a.cv_rms_rel < b.cv_rms_rel;
                     if (popcount(a.mask) != popcount(b.mask))
                       return popcount(a.mask) < popcount(b.mask);
                     return a.mask < b.mask;
                   });
  // Within 1 % (relative) of the best CV error, the fewest terms win.
  const double limit = fit.candidates.front().cv_rms_rel * 1.01 + 1e-12;
  const TermCandidate* chosen = &fit.candidates.front();
  for (const auto& c : fit.candidates)
    if (c.cv_rms_rel <= limit && popcount(c.mask) < popcount(chosen->mask)) chosen = &c;
  fit.ok = true;
  fit.mask = chosen->mask;
  fit.coef = chosen->coef;
  fit.cv_rms_rel = chosen->cv_rms_rel;
  fit.rms_rel = chosen->rms_rel;
  return fit;
}

double Holdout::law_time(bool gustafson, double n) const {
  const double p = gustafson ? gustafson_p : amdahl_p;
  const double rate1 = gustafson ? gustafson_rate1 : amdahl_rate1;
  if (!std::isfinite(p) || !std::isfinite(rate1)) return kUnknown;
  const double r = rate1 * (gustafson ? gustafson_speedup(p, n) : amdahl_speedup(p, n));
  return (weak ? n : 1.0) / r;
}

MultiTermResult analyse_multiterm(const std::vector<double>& n, const std::vector<double>& t,
                                  bool weak, int holdout) {
  MultiTermResult out;
  out.evaluated = true;
  std::vector<std::size_t> order(n.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return n[a] < n[b]; });
  for (std::size_t i : order) {
    out.n.push_back(n[i]);
    out.t.push_back(t[i]);
  }
  out.fit = fit_multiterm(out.n, out.t);
  Holdout& h = out.holdout;
  h.held_out = holdout;
  if (holdout <= 0) {
    h.why_not = "not requested (--holdout 0)";
    return out;
  }
  const std::size_t d = out.n.size(), k = static_cast<std::size_t>(holdout);
  if (d < k + 3) {
    h.why_not = "needs at least " + std::to_string(k + 3) + " distinct N (3 to fit, " +
                std::to_string(k) + " to predict), got " + std::to_string(d);
    return out;
  }
  const std::vector<double> tn(out.n.begin(), out.n.end() - static_cast<std::ptrdiff_t>(k));
  const std::vector<double> tt(out.t.begin(), out.t.end() - static_cast<std::ptrdiff_t>(k));
  h.train_max_n = tn.back();
  const MultiTermFit mt = fit_multiterm(tn, tt);
  if (mt.ok) {
    h.multiterm_mask = mt.mask;
    h.multiterm_coef = mt.coef;
  }
  // The laws are fitted to the rates the times come from: rate = 1/t (strong)
  // or N/t (weak); a fitted rate converts back the same way.
  std::vector<double> rate(tn.size());
  for (std::size_t i = 0; i < tn.size(); ++i) rate[i] = (weak ? tn[i] : 1.0) / tt[i];
  FitOptions no_bootstrap;
  no_bootstrap.bootstrap = 0;
  const Fit am = fit_law(Law::kAmdahl, tn, rate, no_bootstrap);
  const Fit gu = fit_law(Law::kGustafson, tn, rate, no_bootstrap);
  h.amdahl_p = am.p;
  h.gustafson_p = gu.p;
  h.amdahl_rate1 = am.ok ? am.rate1 : kUnknown;
  h.gustafson_rate1 = gu.ok ? gu.rate1 : kUnknown;
  h.weak = weak;
  for (std::size_t i = d - k; i < d; ++i) {
    HoldoutPoint p;
    p.n = out.n[i];
    p.measured = out.t[i];
    p.amdahl = h.law_time(false, p.n);
    p.gustafson = h.law_time(true, p.n);
    p.multiterm = mt.ok ? mt.predict(p.n) : kUnknown;
    h.points.push_back(p);
  }
  h.ok = true;
  return out;
}

}  // namespace hpcml::analysis

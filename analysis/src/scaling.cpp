#include "hpcml/analysis/scaling.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <utility>

#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"

namespace hpcml::analysis {

namespace {

bool finite(double x) { return std::isfinite(x); }

std::string num(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

// log of the model speedup relative to one processing element, and its derivative in p.
double log_model(Law law, double p, double n) {
  return law == Law::kAmdahl ? -std::log((1.0 - p) + p / n) : std::log((1.0 - p) + p * n);
}
double dlog_model_dp(Law law, double p, double n) {
  return law == Law::kAmdahl ? (1.0 - 1.0 / n) / ((1.0 - p) + p / n)
                             : (n - 1.0) / ((1.0 - p) + p * n);
}

// The observations grouped by N. The fit's profile depends on the data only
// through each group's size and mean log rate (the spread inside a group adds a
// constant), so one evaluation costs O(distinct N), not O(rows): a CSV of 10^6
// repeats fits as fast as its aggregates.
struct Groups {
  std::vector<double> n;      // distinct N, ascending
  std::vector<double> count;  // observations at each N
  double total = 0;           // all observations
};

// Sum over groups of count * (mean - scale - model)^2 at p, with the scale
// profiled out (closed form). The within-group spread is left out: a constant in p.
double profile_ssr(Law law, double p, const Groups& g, const std::vector<double>& mean,
                   double* log_c) {
  double scale = 0;
  for (std::size_t k = 0; k < g.n.size(); ++k)
    scale += g.count[k] * (mean[k] - log_model(law, p, g.n[k]));
  scale /= g.total;
  double ssr = 0;
  for (std::size_t k = 0; k < g.n.size(); ++k) {
    const double r = mean[k] - scale - log_model(law, p, g.n[k]);
    ssr += g.count[k] * r * r;
  }
  if (log_c) *log_c = scale;
  return ssr;
}

// Global minimiser over [0, 1]: a grid finds the basin (the profile need not be
// unimodal for noisy data), golden-section search polishes it.
double minimise_p(Law law, const Groups& groups, const std::vector<double>& mean) {
  constexpr int kGrid = 1000;
  int best = 0;
  double best_ssr = std::numeric_limits<double>::infinity();
  for (int k = 0; k <= kGrid; ++k) {
    const double ssr = profile_ssr(law, static_cast<double>(k) / kGrid, groups, mean, nullptr);
    if (ssr < best_ssr) {
      best_ssr = ssr;
      best = k;
    }
  }
  double a = std::max(0.0, (best - 1.0) / kGrid), b = std::min(1.0, (best + 1.0) / kGrid);
  const double g = (std::sqrt(5.0) - 1.0) / 2.0;
  double c = b - g * (b - a), d = a + g * (b - a);
  double fc = profile_ssr(law, c, groups, mean, nullptr),
         fd = profile_ssr(law, d, groups, mean, nullptr);
  for (int it = 0; it < 200 && b - a > 1e-13; ++it) {
    if (fc <= fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - g * (b - a);
      fc = profile_ssr(law, c, groups, mean, nullptr);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + g * (b - a);
      fd = profile_ssr(law, d, groups, mean, nullptr);
    }
  }
  double p = 0.5 * (a + b);
  // The endpoints are candidates too (a minimum at the bound is common for bad data).
  for (double edge : {0.0, 1.0})
    if (profile_ssr(law, edge, groups, mean, nullptr) < profile_ssr(law, p, groups, mean, nullptr))
      p = edge;
  return p;
}

// Two-sided 95% Student-t quantile.
double t975(int dof) {
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                 2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                 2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                 2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  if (dof < 1) return std::numeric_limits<double>::infinity();
  if (dof <= 30) return table[dof - 1];
  return 1.960 + 2.4 / dof;  // asymptotic expansion, within 0.002 for dof > 30
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * (static_cast<double>(v.size()) - 1.0);
  const auto i = static_cast<std::size_t>(std::floor(pos));
  const std::size_t j = std::min(i + 1, v.size() - 1);
  return v[i] + (pos - static_cast<double>(i)) * (v[j] - v[i]);
}

}  // namespace

std::string to_string(Mode mode) { return mode == Mode::kStrong ? "strong" : "weak"; }

Mode parse_mode(const std::string& text, const std::string& what) {
  if (text == "strong") return Mode::kStrong;
  if (text == "weak") return Mode::kWeak;
  HPCML_THROW(ConfigError, what + ": expected 'strong' or 'weak', got '" + printable(text) + "'");
}

std::string to_string(Law law) { return law == Law::kAmdahl ? "Amdahl" : "Gustafson"; }

double median(std::vector<double> values) {
  if (values.empty()) return kUnknown;
  std::sort(values.begin(), values.end());
  const std::size_t m = values.size() / 2;
  return values.size() % 2 ? values[m] : 0.5 * (values[m - 1] + values[m]);
}

double amdahl_speedup(double p, double n) { return 1.0 / ((1.0 - p) + p / n); }
double gustafson_speedup(double p, double n) { return (1.0 - p) + p * n; }

double law_speedup(Law law, double p, double n, double n0) {
  return law == Law::kAmdahl ? amdahl_speedup(p, n) / amdahl_speedup(p, n0)
                             : gustafson_speedup(p, n) / gustafson_speedup(p, n0);
}

double law_efficiency(Law law, double p, double n, double n0) {
  return law_speedup(law, p, n, n0) * n0 / n;
}

double karp_flatt(double speedup, double n, double n0) {
  const double r = n / n0;
  if (!(r > 1.0) || !(speedup > 0)) return kUnknown;
  return (1.0 / speedup - 1.0 / r) / (1.0 - 1.0 / r);
}

Fit fit_law(Law law, const std::vector<double>& n, const std::vector<double>& rate,
            const FitOptions& options) {
  HPCML_REQUIRE(n.size() == rate.size(), Error, "fit_law: n and rate differ in length");
  Fit fit;
  fit.law = law;
  fit.observations = static_cast<int>(n.size());
  std::vector<double> logy;
  for (std::size_t i = 0; i < n.size(); ++i) {
    HPCML_REQUIRE(finite(rate[i]) && rate[i] > 0 && finite(n[i]) && n[i] >= 1, DataError,
                  "scaling fit: observation " + std::to_string(i) + " has N=" + num(n[i]) +
                      ", rate=" + num(rate[i]) + "; need N >= 1 and a rate > 0");
    logy.push_back(std::log(rate[i]));
  }
  // Group by N (ascending): the fit works on each N's count and mean log rate.
  std::vector<double> distinct = n;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  if (distinct.size() < 2) return fit;
  Groups groups;
  groups.n = distinct;
  groups.count.assign(distinct.size(), 0.0);
  groups.total = static_cast<double>(n.size());
  std::vector<std::size_t> group_of(n.size());
  std::vector<double> mean(distinct.size(), 0.0);
  for (std::size_t i = 0; i < n.size(); ++i) {
    group_of[i] = static_cast<std::size_t>(
        std::lower_bound(distinct.begin(), distinct.end(), n[i]) - distinct.begin());
    groups.count[group_of[i]] += 1;
    mean[group_of[i]] += logy[i];
  }
  for (std::size_t k = 0; k < distinct.size(); ++k) mean[k] /= groups.count[k];
  double within = 0;  // spread inside the groups: part of the residuals, constant in p
  for (std::size_t i = 0; i < n.size(); ++i) {
    const double d = logy[i] - mean[group_of[i]];
    within += d * d;
  }

  fit.ok = true;
  double log_c = 0;
  fit.p = minimise_p(law, groups, mean);
  const double ssr = within + profile_ssr(law, fit.p, groups, mean, &log_c);
  fit.rate1 = std::exp(log_c);
  fit.rms_log_residual = std::sqrt(ssr / static_cast<double>(n.size()));
  fit.at_bound = fit.p <= 1e-9 || fit.p >= 1.0 - 1e-9;
  fit.dof = fit.observations - 2;
  if (law == Law::kAmdahl) {
    const double n0 = distinct.front();
    fit.p_baseline = (fit.p / n0) / ((1.0 - fit.p) + fit.p / n0);
  }
  if (fit.dof < 1) return fit;

  // Residual-based standard error: linearise around the optimum, parameters (log c, p).
  double s1 = 0, s2 = 0;
  for (std::size_t k = 0; k < distinct.size(); ++k) {
    const double d = dlog_model_dp(law, fit.p, distinct[k]);
    s1 += groups.count[k] * d;
    s2 += groups.count[k] * d * d;
  }
  const double m = static_cast<double>(n.size());
  const double det = m * s2 - s1 * s1;
  const double sigma2 = ssr / fit.dof;
  fit.se = det > 0 ? std::sqrt(sigma2 * m / det) : kUnknown;
  if (finite(fit.se)) {
    const double t = t975(fit.dof);
    fit.ci_lo = std::clamp(fit.p - t * fit.se, 0.0, 1.0);
    fit.ci_hi = std::clamp(fit.p + t * fit.se, 0.0, 1.0);
  }

  // Residual bootstrap (seeded, so reports are reproducible). Residuals are
  // inflated by sqrt(m/dof) because fitted residuals underestimate the noise.
  // A resample only changes each N's mean log rate: the mean of count residuals
  // drawn with replacement. Up to kExactDraws repeats they are drawn one by one;
  // beyond, that mean is drawn from its normal limit (mean of the residuals,
  // their spread / sqrt(count)), so 10^6 rows cost what a few dozen do.
  if (options.bootstrap > 0) {
    constexpr double kExactDraws = 64;
    std::vector<double> fitted(distinct.size()), resid(n.size());
    const double inflate = std::sqrt(m / fit.dof);
    for (std::size_t k = 0; k < distinct.size(); ++k)
      fitted[k] = log_c + log_model(law, fit.p, distinct[k]);
    double resid_mean = 0, resid_sq = 0;
    for (std::size_t i = 0; i < n.size(); ++i) {
      resid[i] = (logy[i] - fitted[group_of[i]]) * inflate;
      resid_mean += resid[i];
    }
    resid_mean /= m;
    for (double r : resid) resid_sq += (r - resid_mean) * (r - resid_mean);
    const double resid_sd = std::sqrt(resid_sq / m);
    std::vector<std::size_t> exact_rows;  // rows of the N drawn one by one, in order
    for (std::size_t i = 0; i < n.size(); ++i)
      if (groups.count[group_of[i]] <= kExactDraws) exact_rows.push_back(i);
    std::mt19937_64 rng(options.seed);
    std::uniform_int_distribution<std::size_t> pick(0, n.size() - 1);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> ps, sum(distinct.size()), mean_star(distinct.size());
    ps.reserve(static_cast<std::size_t>(options.bootstrap));
    for (int b = 0; b < options.bootstrap; ++b) {
      std::fill(sum.begin(), sum.end(), 0.0);
      for (std::size_t i : exact_rows) sum[group_of[i]] += resid[pick(rng)];
      for (std::size_t k = 0; k < distinct.size(); ++k) {
        const double c = groups.count[k];
        mean_star[k] =
            fitted[k] +
            (c <= kExactDraws ? sum[k] / c : resid_mean + resid_sd / std::sqrt(c) * normal(rng));
      }
      ps.push_back(minimise_p(law, groups, mean_star));
    }
    fit.boot_lo = percentile(ps, 0.025);
    fit.boot_hi = percentile(ps, 0.975);
  }
  fit.lo = fit.p;
  fit.hi = fit.p;
  for (double v : {fit.ci_lo, fit.boot_lo})
    if (finite(v)) fit.lo = std::min(fit.lo, v);
  for (double v : {fit.ci_hi, fit.boot_hi})
    if (finite(v)) fit.hi = std::max(fit.hi, v);
  return fit;
}

double max_n_above(Law law, double p, double n0, double target) {
  if (!finite(p) || !(target > 0)) return kUnknown;
  if (target > 1.0) return n0;  // only the baseline itself has efficiency 1
  if (law == Law::kAmdahl) {
    if (p >= 1.0) return std::numeric_limits<double>::infinity();
    const double n = ((n0 * (1.0 - p) + p) / target - p) / (1.0 - p);
    return std::max(n, n0);
  }
  const double limit = n0 * p / ((1.0 - p) + p * n0);
  if (limit >= target) return std::numeric_limits<double>::infinity();
  const double n = n0 * (1.0 - p) / (target * ((1.0 - p) + p * n0) - p * n0);
  return std::max(n, n0);
}

StudyResult analyse(const Study& study, const StudyOptions& options) {
  StudyResult out;
  out.study = study;
  out.target_efficiency = options.target_efficiency;
  const std::string where = "study '" + printable(study.name) + "'";
  HPCML_REQUIRE(!study.points.empty(), DataError, where + ": no points to analyse");
  HPCML_REQUIRE(
      options.target_efficiency > 0 && options.target_efficiency <= 1, ConfigError,
      "target efficiency: expected a value in (0, 1], got " + num(options.target_efficiency));

  // One rate definition for the whole study: real throughput when every sample
  // has one, else a rate derived from time per step.
  bool all_throughput = true, all_time = true;
  for (const auto& pt : study.points) {
    HPCML_REQUIRE(pt.ranks >= 1 && pt.threads >= 1, DataError,
                  where + ": a point has ranks=" + std::to_string(pt.ranks) +
                      ", threads=" + std::to_string(pt.threads) + "; both must be >= 1");
    HPCML_REQUIRE(!pt.samples.empty(), DataError,
                  where + ": point with N=" + num(pt.n()) + " has no measurement");
    for (const auto& s : pt.samples) {
      all_throughput = all_throughput && finite(s.throughput) && s.throughput > 0;
      all_time = all_time && finite(s.step_s) && s.step_s > 0;
    }
  }
  if (!all_throughput && !all_time) {
    for (const auto& pt : study.points)
      for (const auto& s : pt.samples)
        HPCML_REQUIRE(
            (finite(s.throughput) && s.throughput > 0) || (finite(s.step_s) && s.step_s > 0),
            DataError,
            s.source + ": N=" + num(pt.n()) +
                " has neither a time per step > 0 nor a throughput > 0");
    HPCML_THROW(DataError, where +
                               ": some points give only time and others only throughput; "
                               "give the same quantity for every point");
  }

  std::vector<Point> points = study.points;
  std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) {
    return a.n() != b.n() ? a.n() < b.n() : a.ranks < b.ranks;
  });
  out.n0 = points.front().n();

  std::vector<double> fit_n, fit_rate;
  int left_out = 0;
  for (const auto& pt : points) {
    Row row;
    row.ranks = pt.ranks;
    row.threads = pt.threads;
    row.nodes = pt.nodes;
    row.n = pt.n();
    row.repeats = static_cast<int>(pt.samples.size());
    row.rate_is_throughput = all_throughput;
    std::vector<double> times, rates, comp, cexp, cov, io, idle;
    for (const auto& s : pt.samples) {
      if (finite(s.step_s) && s.step_s > 0) times.push_back(s.step_s);
      const double rate = all_throughput                ? s.throughput
                          : study.mode == Mode::kStrong ? 1.0 / s.step_s
                                                        : row.n / s.step_s;
      rates.push_back(rate);
      if (options.fit_oversubscribed || !s.oversubscribed) {
        fit_n.push_back(row.n);
        fit_rate.push_back(rate);
      } else {
        ++left_out;
      }
      if (finite(s.split.compute_s)) comp.push_back(s.split.compute_s);
      if (finite(s.split.comm_exposed_s)) cexp.push_back(s.split.comm_exposed_s);
      if (finite(s.split.comm_overlapped_s)) cov.push_back(s.split.comm_overlapped_s);
      if (finite(s.split.io_s)) io.push_back(s.split.io_s);
      if (finite(s.split.idle_s)) idle.push_back(s.split.idle_s);
      row.oversubscribed = row.oversubscribed || s.oversubscribed;
    }
    if (!times.empty()) {
      row.time_med = median(times);
      row.time_min = *std::min_element(times.begin(), times.end());
      row.time_max = *std::max_element(times.begin(), times.end());
    }
    row.rate_med = median(rates);
    row.rate_min = *std::min_element(rates.begin(), rates.end());
    row.rate_max = *std::max_element(rates.begin(), rates.end());
    row.split.compute_s = median(comp);
    row.split.comm_exposed_s = median(cexp);
    row.split.comm_overlapped_s = median(cov);
    row.split.io_s = median(io);
    row.split.idle_s = median(idle);
    out.rows.push_back(row);
  }

  // The baseline rate: median over all points at N0 (there may be several layouts).
  std::vector<double> base_rates;
  for (const auto& row : out.rows)
    if (row.n == out.n0) base_rates.push_back(row.rate_med);
  const double rate0 = median(base_rates);
  for (auto& row : out.rows) {
    row.speedup = row.rate_med / rate0;
    row.speedup_min = row.rate_min / rate0;
    row.speedup_max = row.rate_max / rate0;
    row.efficiency = row.speedup * out.n0 / row.n;
    row.karp_flatt = karp_flatt(row.speedup, row.n, out.n0);
    if (study.mode == Mode::kWeak && row.n > out.n0) {
      const double r = row.n / out.n0;
      row.gustafson_serial = (r - row.speedup) / (r - 1.0);
    }
    if (row.oversubscribed)
      out.warnings.push_back("N=" + num(row.n) + " (" + std::to_string(row.ranks) + " ranks x " +
                             std::to_string(row.threads) +
                             " threads) was oversubscribed: more processing elements than cores, "
                             "so it does not show how the job scales on real hardware");
  }
  for (std::size_t i = 1; i < out.rows.size(); ++i) {
    const auto& a = out.rows[i - 1];
    const auto& b = out.rows[i];
    if (b.n > a.n && b.rate_med < a.rate_med)
      out.warnings.push_back(
          "non-monotone: " + std::string(all_throughput ? "throughput" : "rate") +
          " drops from N=" + num(a.n) + " to N=" + num(b.n) + " (speedup " + num(a.speedup) +
          " -> " + num(b.speedup) + "): a larger N is slower");
  }

  const Law law = study.mode == Mode::kStrong ? Law::kAmdahl : Law::kGustafson;
  if (left_out > 0)
    out.warnings.push_back(std::to_string(left_out) +
                           " oversubscribed measurement(s) are shown but left out of the fit");
  out.fit = fit_law(law, fit_n, fit_rate, options.fit);
  {
    // Multi-term model: one time per distinct N (median over the points at
    // that N): the median step time when every point has one, else derived
    // from the rate as t = 1/rate (strong) or N/rate (weak).
    bool step_times = true;
    for (const auto& row : out.rows) step_times = step_times && finite(row.time_med);
    std::map<double, std::vector<double>> by_n;
    for (const auto& row : out.rows)
      if (options.fit_oversubscribed || !row.oversubscribed)
        by_n[row.n].push_back(
            step_times ? row.time_med : (study.mode == Mode::kWeak ? row.n : 1.0) / row.rate_med);
    std::vector<double> mn, mt;
    for (const auto& [n, ts] : by_n) {
      mn.push_back(n);
      mt.push_back(median(ts));
    }
    out.multi_term = analyse_multiterm(mn, mt, study.mode == Mode::kWeak, options.holdout);
    out.multi_term.time_unit = step_times                  ? "s per step"
                               : study.mode == Mode::kWeak ? "N/throughput"
                                                           : "1/throughput";
  }
  const double n_top = out.rows.back().n;
  out.max_n = options.max_n > 0 ? options.max_n : 64.0 * n_top;
  if (!out.fit.ok) {
    out.warnings.push_back("only one N measured (N=" + num(out.n0) +
                           "): no speedup, fit or prediction is possible; measure at least two N");
    return out;
  }
  if (out.fit.at_bound)
    out.warnings.push_back(to_string(law) + " fit reached the bound P=" + num(out.fit.p) +
                           ": the measurements do not follow the law (check for slowdowns or "
                           "superlinear effects)");
  if (out.fit.dof < 1)
    out.warnings.push_back(
        "as many parameters as measurements: the fit is exact and its "
        "uncertainty is unknown; add repeats or more N");

  if (out.max_n <= n_top)
    out.warnings.push_back("max N " + num(out.max_n) + " is not above the largest measured N " +
                           num(n_top) + ": no predictions");
  for (double n = 2 * n_top; n <= out.max_n * (1 + 1e-12); n *= 2) {
    Prediction pr;
    pr.n = n;
    pr.speedup = law_speedup(law, out.fit.p, n, out.n0);
    pr.efficiency = pr.speedup * out.n0 / n;
    if (finite(out.fit.lo) && finite(out.fit.hi)) {
      // Speedup grows with p for both laws, so the interval ends map to the ends.
      pr.speedup_lo = law_speedup(law, out.fit.lo, n, out.n0);
      pr.speedup_hi = law_speedup(law, out.fit.hi, n, out.n0);
      pr.efficiency_lo = pr.speedup_lo * out.n0 / n;
      pr.efficiency_hi = pr.speedup_hi * out.n0 / n;
    }
    out.predictions.push_back(pr);
  }
  out.max_n_target = max_n_above(law, out.fit.p, out.n0, options.target_efficiency);
  if (finite(out.fit.lo)) {
    out.max_n_target_lo = max_n_above(law, out.fit.lo, out.n0, options.target_efficiency);
    out.max_n_target_hi = max_n_above(law, out.fit.hi, out.n0, options.target_efficiency);
  }
  return out;
}

}  // namespace hpcml::analysis

// The multi-term model time(N) = a + b/N + c log2 N + d N: recovery of known
// terms (exact and noisy), subset choice, the held-out check, too few points,
// bad input and determinism of the report files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>

#include "common.hpp"
#include "hpcml/analysis/multiterm.hpp"
#include "hpcml/analysis/report.hpp"
#include "hpcml/analysis/scaling.hpp"
#include "hpcml/core/error.hpp"

using namespace hpcml::analysis;
using hpcml_test::slurp;

namespace {

const std::vector<double> kN = {1, 2, 4, 8, 16, 32, 64, 128, 256};

std::vector<double> times(const std::array<double, kTermCount>& coef,
                          const std::vector<double>& n) {
  std::vector<double> t;
  for (double v : n) t.push_back(multiterm_time(coef, v));
  return t;
}

// Uniform in [-1, 1) from the raw mt19937_64 stream (its output is fixed by
// the standard; the std distributions are not), so the noise is the same everywhere.
double uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53 * 2.0 - 1.0;
}

}  // namespace

TEST(AnalysisMultiTerm, ExactDataRecoversTermsAndCoefficients) {
  struct Case {
    unsigned mask;
    std::array<double, kTermCount> coef;
  };
  const Case cases[] = {
      {kTermConstant | kTermInverse | kTermLog, {2.0, 30.0, 0.5, 0.0}},
      {kTermConstant | kTermInverse, {0.3, 10.0, 0.0, 0.0}},
      {kTermInverse | kTermLinear, {0.0, 50.0, 0.0, 0.01}},
      {kTermInverse | kTermLog, {0.0, 8.0, 0.05, 0.0}},
      {kTermConstant | kTermInverse | kTermLog | kTermLinear, {1.0, 40.0, 0.2, 0.004}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(terms_text(c.mask));
    const auto fit = fit_multiterm(kN, times(c.coef, kN));
    ASSERT_TRUE(fit.ok) << fit.why_not;
    EXPECT_EQ(fit.mask, c.mask) << terms_text(fit.mask);
    for (std::size_t j = 0; j < kTermCount; ++j)
      EXPECT_NEAR(fit.coef[j], c.coef[j], 1e-8 * (1 + c.coef[j])) << j;
    EXPECT_LT(fit.cv_rms_rel, 1e-9);
    EXPECT_LT(fit.rms_rel, 1e-9);
    EXPECT_EQ(fit.points, static_cast<int>(kN.size()));
    for (const auto& cand : fit.candidates)
      for (double v : cand.coef) EXPECT_GE(v, 0.0);  // non-negative coefficients only
  }
}

TEST(AnalysisMultiTerm, NoisyDataChoosesTheTermsAndCoefficientsAreClose) {
  const std::array<double, kTermCount> truth = {2.0, 30.0, 0.5, 0.0};
  std::mt19937_64 rng(7);
  int right = 0;
  for (int trial = 0; trial < 10; ++trial) {
    auto t = times(truth, kN);
    for (auto& v : t) v *= 1.0 + 0.01 * uniform(rng);  // +-1 % noise
    const auto fit = fit_multiterm(kN, t);
    ASSERT_TRUE(fit.ok) << fit.why_not;
    if (fit.mask == (kTermConstant | kTermInverse | kTermLog)) {
      ++right;
      EXPECT_NEAR(fit.coef[1], 30.0, 0.03 * 30.0);
      EXPECT_NEAR(fit.coef[0], 2.0, 0.25 * 2.0);
      EXPECT_NEAR(fit.coef[2], 0.5, 0.25 * 0.5);
    }
    // Whatever it chose, it describes the data to about the noise level.
    EXPECT_LT(fit.rms_rel, 0.02);
    EXPECT_LT(fit.cv_rms_rel, 0.03);
    for (double n : {512.0, 1024.0})
      EXPECT_NEAR(fit.predict(n) / multiterm_time(truth, n), 1.0, 0.1) << n;
  }
  EXPECT_GE(right, 8) << "the true terms should win most noisy trials";
}

TEST(AnalysisMultiTerm, TooFewPointsAndBadInputAreClearNotCrashes) {
  auto two = fit_multiterm({1, 2}, {1.0, 0.6});
  EXPECT_FALSE(two.ok);
  EXPECT_NE(two.why_not.find("needs at least 3 distinct N for cross-validation, got 2"),
            std::string::npos)
      << two.why_not;
  EXPECT_FALSE(fit_multiterm({}, {}).ok);
  const auto r = analyse_multiterm({1, 2, 4}, {1.0, 0.6, 0.4}, false, 1);
  EXPECT_TRUE(r.fit.ok);
  EXPECT_FALSE(r.holdout.ok);
  EXPECT_NE(r.holdout.why_not.find("needs at least 4 distinct N (3 to fit, 1 to predict), got 3"),
            std::string::npos)
      << r.holdout.why_not;
  try {
    fit_multiterm({1, 2, 4}, {1.0, -0.5, 0.3});
    FAIL() << "a negative time must be refused";
  } catch (const hpcml::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("need N >= 1 and a time > 0"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(fit_multiterm({1, 2, 2}, {1.0, 0.5, 0.5}), hpcml::DataError);
  EXPECT_THROW(fit_multiterm({0.5, 2, 4}, {1.0, 0.5, 0.5}), hpcml::DataError);

  // Through analyse(): a study with 2 N reports why, with no NaN in the files.
  Study st;
  st.name = "two";
  for (int r2 : {1, 2}) {
    Point pt;
    pt.ranks = r2;
    Sample s;
    s.step_s = 1.0 / r2 + 0.1;
    pt.samples.push_back(s);
    st.points.push_back(pt);
  }
  const auto res = analyse(st, {});
  EXPECT_FALSE(res.multi_term.fit.ok);
  hpcml_test::TempDir d("multiterm-two");
  write_report((d.path() / "r").string(), {{res, {}}}, ReportOptions{"t", {}, false});
  const std::string md = slurp(d.path() / "r" / "report.md");
  EXPECT_NE(md.find("Not fitted: needs at least 3 distinct N"), std::string::npos) << md;
  EXPECT_FALSE(hpcml_test::has_non_finite(md));
  EXPECT_FALSE(std::filesystem::exists(d.path() / "r" / "time-model.svg"));  // no model, no plot
  EXPECT_FALSE(hpcml_test::has_non_finite(slurp(d.path() / "r" / "report.json")));
}

TEST(AnalysisMultiTerm, HeldOutPredictionsAreComputedFromTheSmallerN) {
  // Exact Amdahl times, T1 = 10 s, P = 0.95: Amdahl and the terms a + b/N
  // both predict the held-out N exactly; Gustafson does not.
  std::vector<double> n = {1, 2, 4, 8, 16, 32}, t;
  for (double v : n) t.push_back(10.0 * (0.05 + 0.95 / v));
  const auto r = analyse_multiterm(n, t, false, 2);
  ASSERT_TRUE(r.holdout.ok) << r.holdout.why_not;
  EXPECT_EQ(r.holdout.train_max_n, 8);
  ASSERT_EQ(r.holdout.points.size(), 2u);
  EXPECT_EQ(r.holdout.points[0].n, 16);
  EXPECT_EQ(r.holdout.points[1].n, 32);
  EXPECT_EQ(r.holdout.multiterm_mask, kTermConstant | kTermInverse);
  EXPECT_NEAR(r.holdout.amdahl_p, 0.95, 1e-6);
  for (const auto& p : r.holdout.points) {
    EXPECT_DOUBLE_EQ(p.measured, 10.0 * (0.05 + 0.95 / p.n));
    EXPECT_NEAR(p.amdahl / p.measured, 1.0, 1e-6);
    EXPECT_NEAR(p.multiterm / p.measured, 1.0, 1e-9);
    EXPECT_GT(std::fabs(p.gustafson / p.measured - 1.0), 0.05);
  }

  // Data with a linear overhead: the held-out values are exactly what each
  // model fitted to the first four N predicts.
  std::vector<double> t2;
  for (double v : n) t2.push_back(1.0 + 20.0 / v + 0.05 * v);
  const auto r2 = analyse_multiterm(n, t2, false, 2);
  ASSERT_TRUE(r2.holdout.ok);
  const std::vector<double> tn(n.begin(), n.begin() + 4), tt(t2.begin(), t2.begin() + 4);
  const auto mt = fit_multiterm(tn, tt);
  std::vector<double> rate;
  for (double v : tt) rate.push_back(1.0 / v);
  FitOptions nb;
  nb.bootstrap = 0;
  const Fit am = fit_law(Law::kAmdahl, tn, rate, nb);
  for (const auto& p : r2.holdout.points) {
    EXPECT_DOUBLE_EQ(p.multiterm, mt.predict(p.n));
    EXPECT_NEAR(p.amdahl, 1.0 / (am.rate1 * amdahl_speedup(am.p, p.n)), 1e-12 * p.amdahl);
    EXPECT_NEAR(p.multiterm / p.measured, 1.0, 1e-6);  // the terms are in the model
    EXPECT_LT(p.amdahl, p.measured);                   // Amdahl cannot slow down with N
  }
  EXPECT_FALSE(analyse_multiterm(n, t2, false, 0).holdout.ok);  // switched off
}

TEST(AnalysisMultiTerm, WeakScalingTimesAndDeterministicReportFiles) {
  // Weak scaling: t = N / rate is the step time; a + c log2 N growth.
  Study st;
  st.name = "weak";
  st.mode = Mode::kWeak;
  for (int r : {1, 2, 4, 8, 16, 32}) {
    Point pt;
    pt.ranks = r;
    for (int k = 0; k < 3; ++k) {
      Sample s;
      s.step_s = (1.0 + 0.1 * std::log2(r)) * (1.0 + 0.002 * (k - 1));
      pt.samples.push_back(s);
    }
    st.points.push_back(pt);
  }
  StudyOptions opt;
  opt.holdout = 2;
  const auto res = analyse(st, opt);
  ASSERT_TRUE(res.multi_term.fit.ok) << res.multi_term.fit.why_not;
  EXPECT_EQ(res.multi_term.time_unit, "s per step");
  EXPECT_EQ(res.multi_term.fit.mask, kTermConstant | kTermLog);
  EXPECT_NEAR(res.multi_term.fit.coef[0], 1.0, 1e-6);
  EXPECT_NEAR(res.multi_term.fit.coef[2], 0.1, 1e-6);
  ASSERT_TRUE(res.multi_term.holdout.ok);
  for (const auto& p : res.multi_term.holdout.points)
    EXPECT_NEAR(p.multiterm / p.measured, 1.0, 1e-6);

  hpcml_test::TempDir d("multiterm-det");
  for (const char* sub : {"a", "b"})
    write_report((d.path() / sub).string(), {{analyse(st, opt), {}}},
                 ReportOptions{"t", {}, false});
  for (const char* f : {"multiterm.csv", "holdout.csv", "report.json", "report.md"}) {
    const std::string a = slurp(d.path() / "a" / f);
    EXPECT_FALSE(a.empty()) << f;
    EXPECT_EQ(a, slurp(d.path() / "b" / f)) << f;
    EXPECT_FALSE(hpcml_test::has_non_finite(a)) << f;
  }
  const std::string md = slurp(d.path() / "a" / "report.md");
  EXPECT_NE(md.find("### Multi-term model"), std::string::npos);
  EXPECT_NE(md.find("chosen terms: **a + c*log2 N**"), std::string::npos) << md;
  EXPECT_NE(md.find("| N | measured | Amdahl | Gustafson | multi-term |"), std::string::npos);
  const std::string svg = slurp(d.path() / "a" / "time-model.svg");
  EXPECT_NE(svg.find("multi-term, all N: a + c*log2 N"), std::string::npos);
  EXPECT_NE(svg.find("Amdahl fitted to N &lt;= 8"), std::string::npos);
  EXPECT_NE(md.find("![time-model](time-model.svg)"), std::string::npos);
  const std::string ho = slurp(d.path() / "a" / "holdout.csv");
  EXPECT_EQ(std::count(ho.begin(), ho.end(), '\n'), 1 + 2);
}

// Fits, tables, predictions and the alpha-beta model on data whose answer is known.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "hpcml/analysis/comm_model.hpp"
#include "hpcml/analysis/scaling.hpp"
#include "hpcml/core/error.hpp"

using namespace hpcml::analysis;

namespace {

// A strong-scaling study whose times follow Amdahl's law exactly (T1 = 2 s).
Study amdahl_study(double p, std::vector<int> ranks, double t1 = 2.0) {
  Study st;
  st.name = "exact";
  for (int r : ranks) {
    Point pt;
    pt.ranks = r;
    Sample s;
    s.step_s = t1 * ((1 - p) + p / r);
    pt.samples.push_back(s);
    st.points.push_back(pt);
  }
  return st;
}

}  // namespace

TEST(AnalysisFit, ExactAmdahlRecoversPForSeveralPAndBaselines) {
  for (double p : {0.0, 0.3, 0.75, 0.9, 0.99, 0.999, 1.0}) {
    for (auto ranks :
         std::vector<std::vector<int>>{{1, 2, 4, 8}, {2, 4, 8, 16}, {3, 6, 12}, {4, 32}}) {
      const auto r = analyse(amdahl_study(p, ranks), {});
      ASSERT_TRUE(r.fit.ok);
      EXPECT_NEAR(r.fit.p, p, 1e-6) << "baseline " << ranks.front();
      EXPECT_EQ(r.n0, ranks.front());
      // Speedup is relative to the baseline and matches the relative Amdahl model.
      for (const auto& row : r.rows) {
        EXPECT_NEAR(row.speedup, law_speedup(Law::kAmdahl, p, row.n, r.n0), 1e-9);
        EXPECT_NEAR(row.efficiency, row.speedup * r.n0 / row.n, 1e-12);
        if (row.n > r.n0 && p < 1) {
          // Karp–Flatt relative to N0 is constant for Amdahl data: the baseline's serial fraction.
          EXPECT_NEAR(row.karp_flatt, 1 - r.fit.p_baseline, 1e-6);
        }
      }
    }
  }
}

TEST(AnalysisFit, ExactGustafsonRecoversP) {
  for (double p : {0.2, 0.8, 0.95}) {
    Study st;
    st.mode = Mode::kWeak;
    st.name = "weak";
    for (int r : {2, 4, 8, 16}) {
      Point pt;
      pt.ranks = r;
      Sample s;
      s.throughput = 100.0 * gustafson_speedup(p, r);
      pt.samples.push_back(s);
      st.points.push_back(pt);
    }
    const auto res = analyse(st, {});
    ASSERT_TRUE(res.fit.ok);
    EXPECT_EQ(res.fit.law, Law::kGustafson);
    EXPECT_NEAR(res.fit.p, p, 1e-6);
    for (const auto& row : res.rows) {
      if (row.n > res.n0) {
        EXPECT_TRUE(std::isfinite(row.gustafson_serial));
      }
    }
  }
}

TEST(AnalysisFit, NoisyDataIntervalsCoverTheTruth) {
  // 20 seeded noisy tables (3 % multiplicative noise, 3 repeats): a 95 % interval
  // must contain the true P in nearly all of them, and be narrow enough to mean something.
  const double p_true = 0.85;
  int covered = 0;
  for (int seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(1000 + seed);
    std::normal_distribution<double> noise(0.0, 0.03);
    Study st;
    st.name = "noisy";
    for (int r : {1, 2, 4, 8, 16}) {
      Point pt;
      pt.ranks = r;
      for (int k = 0; k < 3; ++k) {
        Sample s;
        s.step_s = ((1 - p_true) + p_true / r) * std::exp(noise(rng));
        pt.samples.push_back(s);
      }
      st.points.push_back(pt);
    }
    StudyOptions opt;
    opt.fit.bootstrap = 300;
    const auto res = analyse(st, opt);
    ASSERT_TRUE(res.fit.ok);
    ASSERT_TRUE(std::isfinite(res.fit.lo) && std::isfinite(res.fit.hi));
    EXPECT_LT(res.fit.hi - res.fit.lo, 0.1);
    EXPECT_LE(res.fit.lo, res.fit.p);
    EXPECT_GE(res.fit.hi, res.fit.p);
    if (res.fit.lo <= p_true && p_true <= res.fit.hi) ++covered;
  }
  EXPECT_GE(covered, 18);
}

TEST(AnalysisFit, BootstrapIsReproducibleForAFixedSeed) {
  auto st = amdahl_study(0.9, {1, 2, 4, 8});
  st.points[1].samples[0].step_s *= 1.05;
  st.points[3].samples[0].step_s *= 0.97;
  const auto a = analyse(st, {});
  const auto b = analyse(st, {});
  EXPECT_EQ(a.fit.boot_lo, b.fit.boot_lo);
  EXPECT_EQ(a.fit.boot_hi, b.fit.boot_hi);
  EXPECT_TRUE(std::isfinite(a.fit.se));
}

TEST(AnalysisFit, OnePointWarnsAndDoesNotFit) {
  const auto r = analyse(amdahl_study(0.9, {4}), {});
  EXPECT_FALSE(r.fit.ok);
  EXPECT_TRUE(r.predictions.empty());
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings.back().find("only one N"), std::string::npos);
  EXPECT_DOUBLE_EQ(r.rows[0].speedup, 1.0);
}

TEST(AnalysisFit, NonMonotoneDataWarnsAndStaysFinite) {
  Study st = amdahl_study(0.9, {1, 2, 4});
  st.points[2].samples[0].step_s = 3.0;  // slower at 4 than at 1
  const auto r = analyse(st, {});
  ASSERT_TRUE(r.fit.ok);
  EXPECT_TRUE(std::isfinite(r.fit.p));
  EXPECT_GE(r.fit.p, 0.0);
  EXPECT_LE(r.fit.p, 1.0);
  bool warned = false;
  for (const auto& w : r.warnings) warned = warned || w.find("non-monotone") != std::string::npos;
  EXPECT_TRUE(warned);
  // Times growing with N everywhere pin P at the bound 0, which is also flagged.
  Study worse = amdahl_study(0.0, {1, 2, 4});
  for (auto& p : worse.points) p.samples[0].step_s = 1.0 + p.ranks;
  const auto w = analyse(worse, {});
  EXPECT_TRUE(w.fit.at_bound);
  EXPECT_EQ(w.fit.p, 0.0);
  for (const auto& pr : w.predictions) EXPECT_TRUE(std::isfinite(pr.efficiency));
}

TEST(AnalysisFit, ZeroOrMissingTimesAreClearErrors) {
  Study st = amdahl_study(0.9, {1, 2});
  st.points[1].samples[0].step_s = 0.0;
  st.points[1].samples[0].source = "x.csv:3";
  try {
    analyse(st, {});
    FAIL() << "expected DataError";
  } catch (const hpcml::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("x.csv:3"), std::string::npos) << e.what();
  }
  Study empty;
  empty.name = "empty";
  EXPECT_THROW(analyse(empty, {}), hpcml::DataError);
  Study none = amdahl_study(0.9, {1, 2});
  none.points[0].samples.clear();
  EXPECT_THROW(analyse(none, {}), hpcml::DataError);
  EXPECT_THROW(fit_law(Law::kAmdahl, {1, 2}, {1.0, -1.0}), hpcml::DataError);
}

TEST(AnalysisFit, MaxNAboveTargetMatchesTheModel) {
  for (double p : {0.5, 0.9, 0.99}) {
    for (double n0 : {1.0, 4.0}) {
      const double n = max_n_above(Law::kAmdahl, p, n0, 0.8);
      EXPECT_NEAR(law_efficiency(Law::kAmdahl, p, n, n0), 0.8, 1e-9);
      EXPECT_GT(law_efficiency(Law::kAmdahl, p, n * 0.99, n0), 0.8);
    }
  }
  EXPECT_TRUE(std::isinf(max_n_above(Law::kAmdahl, 1.0, 1, 0.8)));
  // Gustafson efficiency tends to P*N0/((1-P)+P*N0): above the target it never drops below.
  EXPECT_TRUE(std::isinf(max_n_above(Law::kGustafson, 0.9, 1, 0.8)));
  const double g = max_n_above(Law::kGustafson, 0.5, 1, 0.8);
  EXPECT_NEAR(law_efficiency(Law::kGustafson, 0.5, g, 1), 0.8, 1e-9);
}

TEST(AnalysisFit, PredictionsDoubleUpToMaxN) {
  StudyOptions opt;
  opt.max_n = 128;
  const auto r = analyse(amdahl_study(0.95, {1, 2, 4}), opt);
  ASSERT_EQ(r.predictions.size(), 5u);  // 8 16 32 64 128
  EXPECT_EQ(r.predictions.front().n, 8);
  EXPECT_EQ(r.predictions.back().n, 128);
  for (const auto& p : r.predictions) {
    EXPECT_NEAR(p.speedup, amdahl_speedup(0.95, p.n), 1e-5);
    EXPECT_NEAR(p.efficiency, p.speedup / p.n, 1e-12);
  }
}

TEST(AnalysisFit, KarpFlattAndLaws) {
  EXPECT_DOUBLE_EQ(amdahl_speedup(0.5, 2), 1 / 0.75);
  EXPECT_DOUBLE_EQ(gustafson_speedup(0.5, 4), 2.5);
  // e = (1/S - 1/N)/(1 - 1/N): S = 1/0.75 at N=2 gives 0.5.
  EXPECT_NEAR(karp_flatt(1 / 0.75, 2, 1), 0.5, 1e-12);
  EXPECT_TRUE(std::isnan(karp_flatt(1.0, 4, 4)));
}

TEST(AnalysisCommModel, RingHierarchicalAndBusBandwidth) {
  const AlphaBeta link{1e-5, 1e-9};
  // 2(n-1) alpha + 2 (n-1)/n bytes beta
  EXPECT_NEAR(ring_allreduce_s(link, 4, 1e6), 6e-5 + 1.5e6 * 1e-9, 1e-15);
  EXPECT_EQ(ring_allreduce_s(link, 1, 1e6), 0.0);
  const AlphaBeta intra{1e-6, 1e-10};
  // 8 ranks, 4 per node: reduce + bcast inside the node, each the cheaper of a
  // tree (2 * (1e-6 + 1e-4)) and reduce-scatter + gather (6e-6 + 1.5e-4), plus a
  // ring over the 2 node leaders.
  EXPECT_NEAR(hierarchical_allreduce_s(link, intra, 8, 4, 1e6),
              2 * (6e-6 + 1.5e-4) + ring_allreduce_s(link, 2, 1e6), 1e-15);
  // Small messages: the tree wins (2 * (1e-6 + 1e-7) vs 6e-6 + 1.5e-7).
  EXPECT_NEAR(hierarchical_allreduce_s(link, intra, 8, 4, 1e3),
              2 * 2 * (1e-6 + 1e-7) + ring_allreduce_s(link, 2, 1e3), 1e-15);
  // One node: no inter-node part.
  EXPECT_NEAR(hierarchical_allreduce_s(link, intra, 4, 4, 1e3), 2 * 2 * (1e-6 + 1e-7), 1e-15);
  EXPECT_NEAR(allreduce_busbw_gbps(1e9, 1.0, 4), 1.5, 1e-12);
  EXPECT_NEAR(algbw_gbps(2e9, 1.0), 2.0, 1e-12);
}

TEST(AnalysisCommModel, AlphaBetaFitRecoversParameters) {
  std::vector<AllreduceSample> s;
  const AlphaBeta truth{2e-5, 5e-10};
  for (double n : {2.0, 4.0})
    for (double b : {1e3, 1e5, 1e7}) s.push_back({n, b, ring_allreduce_s(truth, n, b)});
  const auto ab = fit_alpha_beta(s);
  EXPECT_NEAR(ab.alpha_s, truth.alpha_s, 1e-12);
  EXPECT_NEAR(ab.beta_s_per_byte, truth.beta_s_per_byte, 1e-18);
  EXPECT_THROW(fit_alpha_beta({{2, 1e3, 1e-4}}), hpcml::DataError);
  EXPECT_THROW(fit_alpha_beta({{2, 1e3, 1e-4}, {2, 1e3, 2e-4}}), hpcml::DataError);
}

TEST(AnalysisCommModel, ModelMatchesBaselineAndDegradesWithN) {
  auto st = amdahl_study(1.0, {1, 2, 4}, 0.1);
  StudyOptions opt;
  opt.max_n = 64;
  const auto r = analyse(st, opt);
  CommModelParams p;
  p.inter = {1e-5, 1e-9};
  p.grad_bytes = 4e6;
  p.ranks_per_node = 4;
  const auto m = model_study(r, p);
  ASSERT_TRUE(m.ok) << m.why_not;
  ASSERT_FALSE(m.points.empty());
  for (std::size_t v = 0; v < m.variants.size(); ++v) {
    EXPECT_NEAR(m.points.front().efficiency[v], 1.0, 1e-12);
    EXPECT_LT(m.points.back().efficiency[v], 1.0);
  }
  // Compression helps: fp16 halves the bytes so it is at least as efficient as the plain ring.
  ASSERT_EQ(m.variants.size(), 3u);  // no intra-node parameters: ring variants only
  EXPECT_EQ(m.variants[1].name, "ring + fp16");
  EXPECT_GT(m.points.back().efficiency[1], m.points.back().efficiency[0]);
  // With fast intra-node links the hierarchical variant beats the ring at scale.
  p.intra = {1e-6, 1e-11};
  const auto h = model_study(r, p);
  ASSERT_EQ(h.variants.size(), 5u);
  EXPECT_EQ(h.variants[1].name, "hierarchical");
  EXPECT_GT(h.points.back().efficiency[1], h.points.back().efficiency[0]);
  CommModelParams none;
  EXPECT_FALSE(model_study(r, none).ok);
}

TEST(AnalysisCommModel, EachBucketPaysItsOwnLatency) {
  CommModelParams p;
  p.inter = {1e-3, 1e-9};
  p.grad_bytes = 3e6;
  const CommVariant ring{"ring", false, 1.0}, fp16{"ring + fp16", false, 2.0};
  const double one = variant_allreduce_s(p, ring, 4);
  EXPECT_DOUBLE_EQ(one, ring_allreduce_s(p.inter, 4, 3e6));
  p.bucket_bytes = {1e6, 2e6};
  // The same bytes in two all-reduces: one more ring latency, 2(n - 1) alpha.
  EXPECT_NEAR(variant_allreduce_s(p, ring, 4) - one, 6 * 1e-3, 1e-12);
  EXPECT_NEAR(variant_allreduce_s(p, fp16, 4),
              ring_allreduce_s(p.inter, 4, 0.5e6) + ring_allreduce_s(p.inter, 4, 1e6), 1e-15);
  // Buckets alone give the gradient size; a bucket of 0 bytes is refused.
  auto st = amdahl_study(1.0, {1, 2, 4}, 0.1);
  const auto r = analyse(st, {});
  p.grad_bytes = kUnknown;
  const auto m = model_study(r, p);
  ASSERT_TRUE(m.ok) << m.why_not;
  EXPECT_DOUBLE_EQ(m.params.grad_bytes, 3e6);
  p.bucket_bytes = {1e6, 0};
  const auto bad = model_study(r, p);
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.why_not.find("bucket sizes must be > 0"), std::string::npos) << bad.why_not;
}

TEST(AnalysisCommModel, AutoVariantPicksTheCommLayersAlgorithmPerBucket) {
  const AutoThresholds t;  // 64 KiB and 1 MiB, parallel.allreduce_thresholds' defaults
  EXPECT_EQ(t.small_max_bytes, 65536);
  EXPECT_EQ(t.medium_max_bytes, 1048576);
  // 2 nodes x 2 ranks: a bucket just under/over each threshold.
  EXPECT_EQ(auto_algorithm(t, 4, 2, 65536), AutoAlgo::kRecursiveDoubling);
  EXPECT_EQ(auto_algorithm(t, 4, 2, 65537), AutoAlgo::kHierarchical);
  EXPECT_EQ(auto_algorithm(t, 4, 2, 1048576), AutoAlgo::kHierarchical);
  EXPECT_EQ(auto_algorithm(t, 4, 2, 1048577), AutoAlgo::kRing);
  // One rank per node: ring above the small size; one node: hierarchical at every size.
  EXPECT_EQ(auto_algorithm(t, 4, 1, 1000), AutoAlgo::kRecursiveDoubling);
  EXPECT_EQ(auto_algorithm(t, 4, 1, 500000), AutoAlgo::kRing);
  EXPECT_EQ(auto_algorithm(t, 2, 2, 100), AutoAlgo::kHierarchical);
  EXPECT_EQ(auto_algorithm(t, 2, 2, 1e8), AutoAlgo::kHierarchical);
  EXPECT_EQ(auto_algorithm({1000, 2000}, 8, 4, 1500), AutoAlgo::kHierarchical);
  EXPECT_EQ(auto_algorithm({1000, 2000}, 8, 4, 2001), AutoAlgo::kRing);
  EXPECT_EQ(to_string(AutoAlgo::kRecursiveDoubling), "recursive_doubling");
  AutoThresholds parsed;
  set_auto_thresholds(parsed, "16K", "");
  EXPECT_EQ(parsed.small_max_bytes, 16384);
  EXPECT_EQ(parsed.medium_max_bytes, 1048576);
  set_auto_thresholds(parsed, "", "2M");
  EXPECT_EQ(parsed.medium_max_bytes, 2097152);
  EXPECT_THROW(set_auto_thresholds(parsed, "lots", ""), hpcml::ConfigError);

  // Recursive doubling: ceil(log2 g) intra-node rounds and ceil(log2 nodes) inter-node
  // rounds, each alpha + b beta of the whole buffer.
  const AlphaBeta inter{1e-3, 1e-9}, intra{1e-5, 1e-10};
  EXPECT_NEAR(recursive_doubling_allreduce_s(inter, intra, 8, 2, 1e4),
              1 * (1e-5 + 1e-6) + 2 * (1e-3 + 1e-5), 1e-15);
  EXPECT_EQ(recursive_doubling_allreduce_s(inter, intra, 1, 2, 1e4), 0.0);

  // Each bucket of a step pays the formula of its own algorithm.
  CommModelParams p;
  p.inter = inter;
  p.intra = intra;
  p.ranks_per_node = 2;
  p.bucket_bytes = {65536, 65537, 1048576, 1048577};
  const auto variants = comm_variants(p);
  ASSERT_EQ(variants.size(), 6u);
  EXPECT_EQ(variants[2].name, "auto (size thresholds)");
  ASSERT_TRUE(variants[2].automatic);
  const double expect = recursive_doubling_allreduce_s(inter, intra, 4, 2, 65536) +
                        hierarchical_allreduce_s(inter, intra, 4, 2, 65537) +
                        hierarchical_allreduce_s(inter, intra, 4, 2, 1048576) +
                        ring_allreduce_s(inter, 4, 1048577);
  EXPECT_NEAR(variant_allreduce_s(p, variants[2], 4), expect, 1e-15);
  const auto choices = auto_choices(p, 4);
  ASSERT_EQ(choices.size(), 4u);
  EXPECT_EQ(choices[0], AutoAlgo::kRecursiveDoubling);
  EXPECT_EQ(choices[1], AutoAlgo::kHierarchical);
  EXPECT_EQ(choices[2], AutoAlgo::kHierarchical);
  EXPECT_EQ(choices[3], AutoAlgo::kRing);
  // At 2 ranks (one node) every bucket is hierarchical.
  EXPECT_NEAR(variant_allreduce_s(p, variants[2], 2), variant_allreduce_s(p, variants[1], 2),
              1e-15);
  // Shown only with intra-node parameters and bucket sizes.
  p.bucket_bytes.clear();
  EXPECT_FALSE(has_auto_variant(comm_variants(p)));
  p.bucket_bytes = {1e6};
  p.intra = {};
  EXPECT_FALSE(has_auto_variant(comm_variants(p)));
  // Invalid thresholds are refused by the model with a reason.
  p.intra = intra;
  p.thresholds.medium_max_bytes = -1;
  const auto bad = model_study(analyse(amdahl_study(1.0, {1, 2, 4}, 0.1), {}), p);
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.why_not.find("auto thresholds"), std::string::npos) << bad.why_not;
}

TEST(AnalysisFit, OversubscribedPointsCanBeLeftOutOfTheFit) {
  Study st = amdahl_study(0.9, {1, 2, 4, 8});
  st.points[3].samples[0].step_s *= 3;  // the oversubscribed point is much slower
  st.points[3].samples[0].oversubscribed = true;
  const auto with = analyse(st, {});
  EXPECT_GT(std::fabs(with.fit.p - 0.9), 0.01);
  StudyOptions opt;
  opt.fit_oversubscribed = false;
  const auto without = analyse(st, opt);
  EXPECT_NEAR(without.fit.p, 0.9, 1e-6);
  EXPECT_EQ(without.rows.size(), 4u);  // still in the table
  EXPECT_TRUE(without.rows[3].oversubscribed);
  bool noted = false;
  for (const auto& w : without.warnings)
    noted = noted || w.find("left out of the fit") != std::string::npos;
  EXPECT_TRUE(noted);
}

#include "hpcml/analysis/comm_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"

namespace hpcml::analysis {

namespace {
bool finite(double x) { return std::isfinite(x); }
double tree_steps(double g) { return g > 1 ? std::ceil(std::log2(g)) : 0.0; }
std::string num(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}
}  // namespace

bool AlphaBeta::valid() const {
  return finite(alpha_s) && finite(beta_s_per_byte) && alpha_s >= 0 && beta_s_per_byte >= 0;
}

double ring_allreduce_s(const AlphaBeta& link, double n, double bytes) {
  if (n <= 1) return 0.0;
  return 2.0 * (n - 1.0) * link.alpha_s + 2.0 * ((n - 1.0) / n) * bytes * link.beta_s_per_byte;
}

double hierarchical_allreduce_s(const AlphaBeta& inter, const AlphaBeta& intra, double n,
                                double ranks_per_node, double bytes) {
  if (n <= 1) return 0.0;
  const double g = std::min(std::max(1.0, ranks_per_node), n);
  const double nodes = std::ceil(n / g);
  // Reduce to the node leader (and the broadcast back, same cost): the cheaper of a
  // binomial tree of whole buffers (latency-bound) and reduce-scatter + gather
  // (bandwidth-bound), as an MPI library's algorithm selection would pick.
  const double tree = tree_steps(g) * (intra.alpha_s + bytes * intra.beta_s_per_byte);
  const double scatter_gather = g > 1 ? 2.0 * (g - 1.0) * intra.alpha_s +
                                            2.0 * ((g - 1.0) / g) * bytes * intra.beta_s_per_byte
                                      : 0.0;
  return 2.0 * std::min(tree, scatter_gather) + ring_allreduce_s(inter, nodes, bytes);
}

double recursive_doubling_allreduce_s(const AlphaBeta& inter, const AlphaBeta& intra, double n,
                                      double ranks_per_node, double bytes) {
  if (n <= 1) return 0.0;
  const double g = std::min(std::max(1.0, ranks_per_node), n);
  const AlphaBeta& in_node = intra.valid() ? intra : inter;
  // Blocks of g consecutive ranks per node: the first rounds pair ranks of one node,
  // the rest ranks of different nodes. Each round exchanges the whole buffer.
  return tree_steps(g) * (in_node.alpha_s + bytes * in_node.beta_s_per_byte) +
         tree_steps(std::ceil(n / g)) * (inter.alpha_s + bytes * inter.beta_s_per_byte);
}

void set_auto_thresholds(AutoThresholds& t, const std::string& small_max,
                         const std::string& medium_max) {
  if (!small_max.empty())
    t.small_max_bytes = static_cast<double>(parse_byte_count(small_max, "--auto-small-max-bytes"));
  if (!medium_max.empty())
    t.medium_max_bytes =
        static_cast<double>(parse_byte_count(medium_max, "--auto-medium-max-bytes"));
}

std::string to_string(AutoAlgo a) {
  switch (a) {
    case AutoAlgo::kRecursiveDoubling:
      return "recursive_doubling";
    case AutoAlgo::kHierarchical:
      return "hierarchical";
    case AutoAlgo::kRing:
      return "ring";
  }
  return "?";
}

AutoAlgo auto_algorithm(const AutoThresholds& t, double n, double ranks_per_node, double bytes) {
  // Communicator::choose with the default algorithms of comm::Thresholds.
  const double g = std::min(std::max(1.0, ranks_per_node), std::max(1.0, n));
  if (std::ceil(n / g) <= 1) return AutoAlgo::kHierarchical;  // single_node_algo
  if (bytes <= t.small_max_bytes) return AutoAlgo::kRecursiveDoubling;
  if (g <= 1) return AutoAlgo::kRing;  // large_multinode_algo
  return bytes <= t.medium_max_bytes ? AutoAlgo::kHierarchical : AutoAlgo::kRing;
}

double algbw_gbps(double bytes, double seconds) { return bytes / seconds / 1e9; }
double allreduce_busbw_gbps(double bytes, double seconds, double n) {
  return algbw_gbps(bytes, seconds) * 2.0 * (n - 1.0) / n;
}

AlphaBeta fit_alpha_beta(const std::vector<AllreduceSample>& samples) {
  // t = a * x + b * y with x = 2(n-1), y = 2(n-1)/n * bytes: 2x2 normal equations.
  double sxx = 0, sxy = 0, syy = 0, sxt = 0, syt = 0;
  int used = 0;
  for (const auto& s : samples) {
    HPCML_REQUIRE(s.ranks >= 1 && s.bytes >= 0 && s.seconds > 0 && finite(s.seconds), DataError,
                  "all-reduce sample with ranks=" + num(s.ranks) + ", bytes=" + num(s.bytes) +
                      ", time=" + num(s.seconds) + " s is invalid");
    if (s.ranks < 2) continue;
    const double x = 2.0 * (s.ranks - 1.0), y = x / s.ranks * s.bytes;
    sxx += x * x;
    sxy += x * y;
    syy += y * y;
    sxt += x * s.seconds;
    syt += y * s.seconds;
    ++used;
  }
  HPCML_REQUIRE(used >= 2, DataError,
                "alpha-beta fit: need at least 2 all-reduce measurements with >= 2 ranks, got " +
                    std::to_string(used));
  const double det = sxx * syy - sxy * sxy;
  HPCML_REQUIRE(det > 1e-12 * sxx * syy, DataError,
                "alpha-beta fit: the measurements use one message size and one rank count, so "
                "latency and bandwidth cannot be separated; measure several sizes");
  AlphaBeta ab{(syy * sxt - sxy * syt) / det, (sxx * syt - sxy * sxt) / det};
  // A negative coefficient means the other one explains everything: refit it alone.
  if (ab.alpha_s < 0) ab = {0.0, syt / syy};
  if (ab.beta_s_per_byte < 0) ab = {sxt / sxx, 0.0};
  return ab;
}

std::vector<CommVariant> comm_variants(const CommModelParams& params) {
  std::vector<CommVariant> v = {
      {"ring", false, 1.0}, {"ring + fp16", false, 2.0}, {"ring + int8", false, 4.0}};
  // Without separate intra-node parameters the hierarchical algorithm can only
  // look worse than the ring (it moves the same bytes twice more), so it is shown
  // only when intra-node alpha/beta are known.
  if (params.intra.valid()) {
    v.insert(v.begin() + 1, {"hierarchical", true, 1.0});
    // The comm layer's per-size choice matters only when a step has several sizes.
    if (!params.bucket_bytes.empty()) v.insert(v.begin() + 2, {kAutoVariantName, false, 1.0, true});
    v.push_back({"hierarchical + fp16", true, 2.0});
  }
  if (finite(params.topk_density) && params.topk_density > 0 && params.topk_density < 1)
    v.push_back({"ring + top-k " + num(params.topk_density), false, 1.0 / params.topk_density});
  return v;
}

double variant_allreduce_s(const CommModelParams& params, const CommVariant& v, double n) {
  auto one = [&](double raw) {
    const double bytes = raw / v.ratio;
    if (v.automatic) switch (auto_algorithm(params.thresholds, n, params.ranks_per_node, bytes)) {
        case AutoAlgo::kRecursiveDoubling:
          return recursive_doubling_allreduce_s(params.inter, params.intra, n,
                                                params.ranks_per_node, bytes);
        case AutoAlgo::kHierarchical:
          return hierarchical_allreduce_s(params.inter, params.intra, n, params.ranks_per_node,
                                          bytes);
        case AutoAlgo::kRing:
          return ring_allreduce_s(params.inter, n, bytes);
      }
    if (!v.hierarchical) return ring_allreduce_s(params.inter, n, bytes);
    return hierarchical_allreduce_s(params.inter, params.intra, n, params.ranks_per_node, bytes);
  };
  if (params.bucket_bytes.empty()) return one(params.grad_bytes);
  double t = 0;
  for (double b : params.bucket_bytes) t += one(b);
  return t;
}

std::vector<AutoAlgo> auto_choices(const CommModelParams& params, double n) {
  std::vector<AutoAlgo> out;
  if (params.bucket_bytes.empty())
    out.push_back(auto_algorithm(params.thresholds, n, params.ranks_per_node, params.grad_bytes));
  for (double b : params.bucket_bytes)
    out.push_back(auto_algorithm(params.thresholds, n, params.ranks_per_node, b));
  return out;
}

bool has_auto_variant(const std::vector<CommVariant>& variants) {
  return std::any_of(variants.begin(), variants.end(),
                     [](const CommVariant& v) { return v.automatic; });
}

CommModelResult model_study(const StudyResult& study, const CommModelParams& params) {
  CommModelResult out;
  out.params = params;
  if (!params.inter.valid()) {
    out.why_not = "no alpha/beta given (use --alpha/--beta or --allreduce-csv)";
    return out;
  }
  for (double b : params.bucket_bytes)
    if (!(finite(b) && b > 0)) {
      out.why_not = "bucket sizes must be > 0 bytes, got " + num(b);
      return out;
    }
  for (double t : {params.thresholds.small_max_bytes, params.thresholds.medium_max_bytes})
    if (!(finite(t) && t >= 0)) {
      out.why_not = "auto thresholds must be >= 0 bytes, got " + num(t);
      return out;
    }
  if (!finite(params.grad_bytes) && !params.bucket_bytes.empty()) {
    out.params.grad_bytes = 0;
    for (double b : params.bucket_bytes) out.params.grad_bytes += b;
  }
  if (!(finite(out.params.grad_bytes) && out.params.grad_bytes > 0)) {
    out.why_not = "gradient size unknown (use --grad-bytes, or a run whose summary has grad_bytes)";
    return out;
  }
  const Row* base = nullptr;
  for (const auto& r : study.rows)
    if (r.n == study.n0 && finite(r.time_med)) {
      base = &r;
      break;
    }
  if (!base) {
    out.why_not = "the baseline point has no time per step (throughput-only input)";
    return out;
  }
  out.variants = comm_variants(params);
  const double ranks0 = base->ranks;
  const double threads = base->threads;
  if (finite(base->split.comm_exposed_s)) {
    out.work_s_baseline = base->time_med - base->split.comm_exposed_s;
    out.work_source = "measured: T(N0) minus its exposed communication";
  } else {
    out.work_s_baseline =
        base->time_med - variant_allreduce_s(out.params, {"ring", false, 1.0}, ranks0);
    out.work_source = "T(N0) minus the ring model's all-reduce time (no measured split)";
  }
  if (!(out.work_s_baseline > 0)) {
    out.why_not = "the model's communication time at the baseline (" + num(base->time_med) +
                  " s per step) leaves no compute time: alpha/beta or grad bytes are too large";
    return out;
  }
  auto model_step = [&](const CommVariant& v, double n, double ranks) {
    const double work = study.study.mode == Mode::kStrong ? out.work_s_baseline * study.n0 / n
                                                          : out.work_s_baseline;
    return work + variant_allreduce_s(out.params, v, ranks);
  };
  auto add_point = [&](double n, double ranks, bool measured, double eff) {
    CommPointModel p;
    p.n = n;
    p.ranks = ranks;
    p.measured = measured;
    p.efficiency_measured = eff;
    for (const auto& v : out.variants) {
      const double t = model_step(v, n, ranks);
      const double t0 = model_step(v, study.n0, ranks0);
      p.step_s.push_back(t);
      p.efficiency.push_back(study.study.mode == Mode::kStrong ? t0 * study.n0 / (n * t) : t0 / t);
    }
    out.points.push_back(p);
  };
  for (const auto& r : study.rows)
    if (r.threads == base->threads) add_point(r.n, r.ranks, true, r.efficiency);
  for (const auto& pr : study.predictions) add_point(pr.n, pr.n / threads, false, kUnknown);
  out.ok = true;
  return out;
}

}  // namespace hpcml::analysis

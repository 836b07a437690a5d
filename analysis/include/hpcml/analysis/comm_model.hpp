// The alpha-beta (latency-bandwidth) model of gradient all-reduce, and what it
// predicts for the efficiency of a data-parallel step at scale.
//
// A message of b bytes between two ranks costs alpha + b * beta seconds.
// - ring all-reduce over n ranks: 2(n-1) alpha + 2 (n-1)/n * b * beta
// - hierarchical over n ranks on n/g nodes of g ranks: reduce to the node leader
//   (intra-node alpha/beta; the cheaper of a binomial tree, ceil(log2 g) (alpha +
//   b beta), and reduce-scatter + gather, 2(g-1) alpha + 2 (g-1)/g b beta), ring
//   all-reduce among the n/g leaders (inter-node alpha/beta), broadcast inside
//   the node (same cost as the reduce). Shown only when intra-node alpha/beta
//   are given.
// - recursive doubling over n ranks on nodes of g: ceil(log2 g) rounds of whole
//   buffers inside the node (intra alpha/beta) and ceil(log2(n/g)) between nodes
//   (inter alpha/beta), each alpha + b beta.
// - "auto (size thresholds)": each all-reduce (fusion bucket) takes the algorithm
//   the comm layer's automatic selection picks for its size at that geometry
//   (parallel.allreduce_thresholds' defaults, comm::Thresholds; analysis does not
//   depend on comm, so the two sizes are mirrored in AutoThresholds). Shown when
//   intra-node alpha/beta and bucket sizes are given.
// - compression divides the bytes on the wire by the codec's ratio.
// docs/scaling.md derives these and says what they leave out.
#pragma once

#include <string>
#include <vector>

#include "hpcml/analysis/scaling.hpp"

namespace hpcml::analysis {

struct AlphaBeta {
  double alpha_s = kUnknown;          // latency per message, seconds
  double beta_s_per_byte = kUnknown;  // inverse bandwidth, seconds per byte
  bool valid() const;
};

double ring_allreduce_s(const AlphaBeta& link, double n, double bytes);
double hierarchical_allreduce_s(const AlphaBeta& inter, const AlphaBeta& intra, double n,
                                double ranks_per_node, double bytes);

double recursive_doubling_allreduce_s(const AlphaBeta& inter, const AlphaBeta& intra, double n,
                                      double ranks_per_node, double bytes);

/// The comm layer's automatic selection (comm::Thresholds, Communicator::choose) with
/// its default algorithms; the sizes mirror parallel.allreduce_thresholds' defaults
/// (small_max_bytes = 64 KiB, medium_max_bytes = 1 MiB).
struct AutoThresholds {
  double small_max_bytes = 64 * 1024;
  double medium_max_bytes = 1024 * 1024;
};
/// Sets the sizes given (byte counts like 65536, 64K, 1M, as in the comm layer's
/// threshold syntax; "" keeps the current value). Throws ConfigError naming the
/// --auto-small-max-bytes / --auto-medium-max-bytes option.
void set_auto_thresholds(AutoThresholds& t, const std::string& small_max,
                         const std::string& medium_max);
enum class AutoAlgo { kRecursiveDoubling, kHierarchical, kRing };
std::string to_string(AutoAlgo a);
/// What the comm layer picks for `bytes` over n ranks, ranks_per_node per node: one
/// node (several ranks): hierarchical; several nodes: <= small recursive doubling,
/// then with several ranks per node hierarchical up to medium and ring above; with
/// one rank per node ring.
AutoAlgo auto_algorithm(const AutoThresholds& t, double n, double ranks_per_node, double bytes);

/// nccl-tests' bandwidths for an all-reduce of `bytes` over n ranks that took `seconds`.
double algbw_gbps(double bytes, double seconds);                      // bytes/time, GB = 1e9
double allreduce_busbw_gbps(double bytes, double seconds, double n);  // algbw * 2(n-1)/n

/// One all-reduce measurement: n ranks, message size, time.
struct AllreduceSample {
  double ranks = 0;
  double bytes = 0;
  double seconds = 0;
};
/// Least-squares alpha and beta (both >= 0) of the ring model from measurements.
/// Throws DataError with fewer than 2 samples or when they cannot separate alpha
/// from beta (one message size and one rank count).
AlphaBeta fit_alpha_beta(const std::vector<AllreduceSample>& samples);

struct CommModelParams {
  AlphaBeta inter;  // between nodes (and between ranks for the flat ring)
  AlphaBeta intra;  // inside a node; defaults to `inter` when invalid
  double ranks_per_node = 1;
  double grad_bytes = kUnknown;  // bytes all-reduced per step (fp32 gradients)
  // The all-reduces of one step (tensor fusion buckets, bytes each): each pays its
  // own latency. Empty: one all-reduce of grad_bytes.
  std::vector<double> bucket_bytes;
  AutoThresholds thresholds;       // of the "auto (size thresholds)" variant
  double topk_density = kUnknown;  // adds a top-k variant when in (0, 1)
  std::string source;              // where alpha/beta came from, for the report
};

/// One algorithm/codec combination of the model.
struct CommVariant {
  std::string name;  // e.g. "ring", "hierarchical + fp16"
  bool hierarchical = false;
  double ratio = 1;        // compression ratio
  bool automatic = false;  // per all-reduce, the algorithm auto_algorithm() picks
};
inline constexpr const char* kAutoVariantName = "auto (size thresholds)";
std::vector<CommVariant> comm_variants(const CommModelParams& params);

/// Model time of a step's all-reduces of a variant at n ranks: one of grad_bytes, or
/// one per entry of bucket_bytes.
double variant_allreduce_s(const CommModelParams& params, const CommVariant& v, double n);

/// The "auto (size thresholds)" variant's algorithm for each all-reduce of a step at
/// n ranks (one per bucket, or one for grad_bytes).
std::vector<AutoAlgo> auto_choices(const CommModelParams& params, double n);
bool has_auto_variant(const std::vector<CommVariant>& variants);

struct CommPointModel {
  double n = 1;           // processing elements
  double ranks = 1;       // all-reduce participants
  bool measured = false;  // a point that was run (compare) or a prediction
  double efficiency_measured = kUnknown;
  std::vector<double> step_s;      // per variant
  std::vector<double> efficiency;  // per variant, relative to the baseline
};

struct CommModelResult {
  bool ok = false;
  std::string why_not;  // when !ok
  CommModelParams params;
  std::vector<CommVariant> variants;
  double work_s_baseline = kUnknown;   // non-communication time per step at the baseline
  std::string work_source;             // how work_s_baseline was obtained
  std::vector<CommPointModel> points;  // measured points, then predictions
};

/// Combines the model with the measured time per step. The non-communication
/// part of the baseline step (T(N0) minus its exposed communication) is divided
/// by N/N0 for strong scaling and kept for weak scaling; the model step time is
/// that plus the variant's all-reduce (no overlap assumed).
CommModelResult model_study(const StudyResult& study, const CommModelParams& params);

}  // namespace hpcml::analysis

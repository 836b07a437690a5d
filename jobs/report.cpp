// `hpcml report DIR | --csv FILE`: the scaling report (tables, Amdahl/Gustafson
// fit, predictions, alpha-beta model, plots) from run directories or a CSV table.
// The work is in analysis/ (hpcml_analysis); see docs/scaling.md.
#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "hpcml/analysis/report.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/launch/process.hpp"

namespace hpcml::jobs {

namespace {

namespace fs = std::filesystem;

struct ReportArgs {
  analysis::ReportRequest req;
  double bandwidth_gbps = analysis::kUnknown;
  double intra_bandwidth_gbps = analysis::kUnknown;
  bool no_png = false;
  bool exclude_oversubscribed = false;
  std::string auto_small_max, auto_medium_max;  // byte counts, K/M/G suffixes
  std::string command_line;
};

int run_report(ReportArgs& a) {
  auto& req = a.req;
  if (std::isfinite(a.bandwidth_gbps)) {
    HPCML_REQUIRE(a.bandwidth_gbps > 0, ConfigError, "--bandwidth-gbps: expected a value > 0");
    req.comm.inter.beta_s_per_byte = 1.0 / (a.bandwidth_gbps * 1e9);
  }
  if (std::isfinite(a.intra_bandwidth_gbps)) {
    HPCML_REQUIRE(a.intra_bandwidth_gbps > 0, ConfigError,
                  "--intra-bandwidth-gbps: expected a value > 0");
    req.comm.intra.beta_s_per_byte = 1.0 / (a.intra_bandwidth_gbps * 1e9);
  }
  if (std::isfinite(req.comm.inter.alpha_s) != std::isfinite(req.comm.inter.beta_s_per_byte))
    HPCML_THROW(ConfigError, "--alpha and --beta (or --bandwidth-gbps) must be given together");
  analysis::set_auto_thresholds(req.comm.thresholds, a.auto_small_max, a.auto_medium_max);
  if (req.comm.inter.valid() && req.comm.source.empty())
    req.comm.source = "given on the command line";
  req.report.png = !a.no_png;
  req.study.fit_oversubscribed = !a.exclude_oversubscribed;
  req.report.provenance.insert(req.report.provenance.begin(),
                               "produced by hpcml " HPCML_VERSION ": `" + a.command_line + "`");
  const auto out = analysis::make_report(req);
  std::cout << "report: " << out.markdown_path << " (" << out.files.size() << " files"
            << (out.png_written ? ", SVG and PNG plots" : ", SVG plots only") << ")\n";
  if (!out.png_note.empty()) std::cout << "note: " << out.png_note << "\n";
  return 0;
}

// Exact enough that the report job reads the very value given.
std::string number_arg(double v) {
  std::ostringstream o;
  o << std::setprecision(17) << v;
  return o.str();
}

}  // namespace

CLI::Validator one_of(const std::vector<std::string>& choices) {
  std::string list, braces;  // "a, b or c" for the error, "a,b,c" for --help
  for (std::size_t i = 0; i < choices.size(); ++i) {
    list += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + choices[i];
    braces += (i == 0 ? "" : ",") + choices[i];
  }
  return CLI::Validator(
      [choices, list](std::string& value) -> std::string {
        for (const auto& c : choices)
          if (value == c) return "";
        return "expected " + list + ", got '" + printable(value) + "'";
      },
      "{" + braces + "}");
}

std::vector<std::string> report_arguments(const analysis::ReportRequest& r,
                                          const std::string& study_dir, const std::string& mode,
                                          bool no_png) {
  std::vector<std::string> v{"report", study_dir, "--out", study_dir + "/report", "--mode", mode};
  if (r.study.max_n > 0) v.insert(v.end(), {"--max-n", number_arg(r.study.max_n)});
  v.insert(v.end(), {"--target-eff", number_arg(r.study.target_efficiency)});
  v.insert(v.end(), {"--holdout", std::to_string(r.study.holdout)});
  const auto& c = r.comm;
  if (std::isfinite(c.inter.alpha_s)) v.insert(v.end(), {"--alpha", number_arg(c.inter.alpha_s)});
  if (std::isfinite(c.inter.beta_s_per_byte))
    v.insert(v.end(), {"--beta", number_arg(c.inter.beta_s_per_byte)});
  if (std::isfinite(c.intra.alpha_s))
    v.insert(v.end(), {"--intra-alpha", number_arg(c.intra.alpha_s)});
  if (std::isfinite(c.intra.beta_s_per_byte) && c.intra.beta_s_per_byte > 0)
    v.insert(v.end(),
             {"--intra-bandwidth-gbps", number_arg(1.0 / (c.intra.beta_s_per_byte * 1e9))});
  if (!r.allreduce_csv.empty())
    v.insert(v.end(), {"--allreduce-csv", fs::absolute(r.allreduce_csv).string()});
  if (std::isfinite(c.grad_bytes)) v.insert(v.end(), {"--grad-bytes", number_arg(c.grad_bytes)});
  if (c.ranks_per_node > 0) v.insert(v.end(), {"--ranks-per-node", number_arg(c.ranks_per_node)});
  if (!c.bucket_bytes.empty()) {
    std::string list;
    for (double b : c.bucket_bytes) list += (list.empty() ? "" : ",") + number_arg(b);
    v.insert(v.end(), {"--bucket-bytes", list});
  }
  const analysis::AutoThresholds defaults;
  if (c.thresholds.small_max_bytes != defaults.small_max_bytes)
    v.insert(v.end(), {"--auto-small-max-bytes", number_arg(c.thresholds.small_max_bytes)});
  if (c.thresholds.medium_max_bytes != defaults.medium_max_bytes)
    v.insert(v.end(), {"--auto-medium-max-bytes", number_arg(c.thresholds.medium_max_bytes)});
  if (no_png) v.push_back("--no-png");
  v.insert(v.end(), {"--title", "Scaling report: " + fs::path(study_dir).filename().string()});
  return v;
}

void add_report(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "report", "Scaling report (speedup, efficiency, Amdahl/Gustafson fit, predictions, plots)");
  auto a = std::make_shared<ReportArgs>();
  auto& r = a->req;
  cmd->add_option("dir", r.runs_dir, "Study directory from `hpcml scale`, or run directories");
  cmd->add_option(
         "--csv", r.csv,
         "CSV table instead: columns n|ranks[,threads], time_s|throughput, optional study, "
         "mode, nodes, compute_s, comm_s, io_s, idle_s")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", r.out_dir, "Output directory (default DIR/report or FILE-report)");
  cmd->add_option("--mode", r.mode, "strong or weak (default: from study.json, else strong)")
      ->check(one_of({"strong", "weak"}));
  cmd->add_option("--max-n", r.study.max_n, "Predict up to this N (default 64 x largest measured)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--target-eff", r.study.target_efficiency,
                  "Efficiency target for the largest useful N")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  cmd->add_option("--bootstrap", r.study.fit.bootstrap, "Bootstrap resamples for the P interval")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--seed", r.study.fit.seed, "Bootstrap seed")->capture_default_str();
  cmd->add_option("--holdout", r.study.holdout,
                  "Held-out check: fit the models without the largest K N, predict them (0: off)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  cmd->add_option("--alpha", r.comm.inter.alpha_s, "All-reduce model: inter-node latency (s)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--beta", r.comm.inter.beta_s_per_byte,
                  "All-reduce model: inter-node inverse bandwidth (s/byte)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--bandwidth-gbps", a->bandwidth_gbps, "Instead of --beta: bandwidth in GB/s");
  cmd->add_option("--intra-alpha", r.comm.intra.alpha_s, "Intra-node latency (s), hierarchical")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--intra-bandwidth-gbps", a->intra_bandwidth_gbps,
                  "Intra-node bandwidth (GB/s), hierarchical");
  cmd->add_option("--allreduce-csv", r.allreduce_csv,
                  "Fit alpha/beta to all-reduce timings: `hpcml bench allreduce` output or CSV "
                  "(ranks, bytes, time_s)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--intra-allreduce-csv", r.intra_allreduce_csv,
                  "Fit the intra-node alpha/beta (hierarchical model) to such timings")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--exclude-oversubscribed", a->exclude_oversubscribed,
                "Leave oversubscribed points out of the fit (they stay in the table)");
  cmd->add_option("--grad-bytes", r.comm.grad_bytes,
                  "Bytes all-reduced per step (default: from the runs' summary.json)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--ranks-per-node", r.comm.ranks_per_node,
                  "Ranks per node for the hierarchical model (default: densest measured)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--bucket-bytes", r.comm.bucket_bytes,
                  "The all-reduces of one step (fusion buckets), bytes each, e.g. 537640,1605632; "
                  "each pays its own latency (default: one of --grad-bytes)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  cmd->add_option("--auto-small-max-bytes", a->auto_small_max,
                  "The auto (size thresholds) variant: all-reduces up to this size take "
                  "recursive doubling across nodes (mirrors parallel.allreduce_thresholds' "
                  "small_max_bytes; default 64K)");
  cmd->add_option("--auto-medium-max-bytes", a->auto_medium_max,
                  "The auto (size thresholds) variant: up to this size hierarchical, larger ring "
                  "(mirrors parallel.allreduce_thresholds' medium_max_bytes; default 1M)");
  cmd->add_option("--topk-density", r.comm.topk_density, "Add a top-k variant with this density")
      ->check(CLI::Range(1e-9, 0.999999));
  cmd->add_option("--title", r.report.title, "Report title")->capture_default_str();
  cmd->add_flag("--no-png", a->no_png, "Write SVG plots only");
  r.comm.ranks_per_node = 0;
  cmd->callback([&action, a] {
    a->command_line = launch::self_command_line();
    action = [a] { return run_report(*a); };
  });
}

}  // namespace hpcml::jobs

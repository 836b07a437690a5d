// `hpcml scale CONFIG --ranks 1,2,4 [--threads 1,2] [--mode strong|weak] [--repeats K]`:
// a scaling study (launch/study.hpp), then its report (analysis, see
// docs/scaling.md). Locally the points run one after another under mpiexec and
// the report follows; with --slurm each point is a batch job and a last job
// runs `hpcml report` with report_arguments() (report.cpp).
#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "hpcml/analysis/report.hpp"
#include "hpcml/config.hpp"
#include "hpcml/launch/process.hpp"
#include "hpcml/launch/study.hpp"

namespace hpcml::jobs {

namespace {

namespace fs = std::filesystem;

struct ScaleArgs {
  launch::StudyRequest study;
  std::string mode = "strong";
  analysis::ReportRequest report;
  double bandwidth_gbps = analysis::kUnknown;
  double intra_bandwidth_gbps = analysis::kUnknown;
  bool no_png = false;
  std::string auto_small_max, auto_medium_max;  // byte counts, K/M/G suffixes
};

// The report's model parameters: the command line first, then the config's [scale].
void apply_model_keys(ScaleArgs& a, const launch::StudyModelKeys& m) {
  auto& comm = a.report.comm;
  analysis::set_auto_thresholds(comm.thresholds, a.auto_small_max, a.auto_medium_max);
  if (std::isfinite(a.bandwidth_gbps)) comm.inter.beta_s_per_byte = 1.0 / (a.bandwidth_gbps * 1e9);
  if (std::isfinite(a.intra_bandwidth_gbps))
    comm.intra.beta_s_per_byte = 1.0 / (a.intra_bandwidth_gbps * 1e9);
  const bool alpha_cli = std::isfinite(comm.inter.alpha_s);
  auto pick = [](double& current, double config) {
    if (!std::isfinite(current)) current = config;
  };
  pick(comm.inter.alpha_s, m.alpha_s);
  pick(comm.inter.beta_s_per_byte, m.beta_s_per_byte);
  pick(comm.intra.alpha_s, m.intra_alpha_s);
  pick(comm.intra.beta_s_per_byte, m.intra_beta_s_per_byte);
  pick(comm.grad_bytes, m.grad_bytes);
  if (!(comm.ranks_per_node > 0) && m.ranks_per_node > 0) comm.ranks_per_node = m.ranks_per_node;
  if (comm.inter.valid() && comm.source.empty())
    comm.source = alpha_cli ? "given on the command line" : a.study.config + " [scale]";
  if (a.report.allreduce_csv.empty()) a.report.allreduce_csv = m.allreduce_csv;
}

int run_scale(ScaleArgs& a) {
  a.study.mode = launch::parse_study_mode(a.mode);
  a.study.command = launch::self_command_line();
  const launch::StudyPlan plan = launch::plan_study(a.study);
  apply_model_keys(a, plan.model);
  if (a.study.slurm) {
    launch::submit_study_slurm(
        plan,
        [&](const std::string& dir) { return report_arguments(a.report, dir, a.mode, a.no_png); },
        std::cout, std::cerr);
    return 0;
  }
  const auto local = launch::run_study_local(plan, std::cout, std::cerr);
  if (a.study.dry_run) return 0;

  const std::string& dir = local.study_dir;
  a.report.runs_dir = dir;
  a.report.mode = a.mode;
  a.report.report.png = !a.no_png;
  a.report.report.title = "Scaling report: " + fs::path(dir).filename().string();
  const bool strong = a.mode == "strong";
  a.report.report.provenance = {
      "produced by hpcml " HPCML_VERSION ": `" + a.study.command + "`",
      "job: " + plan.job + " (" + a.study.config + "), " + a.mode + " scaling" +
          (strong ? ", global batch " + std::to_string(plan.global_batch)
                  : ", batch " + std::to_string(plan.config_batch) + " per rank") +
          (plan.steps > 0 ? ", " + std::to_string(plan.steps) + " steps per run" : ""),
      "launched locally with mpiexec, one point after another, on a machine with " +
          std::to_string(local.hardware_threads) + " hardware threads"};
  const auto out = analysis::make_report(a.report);
  std::cout << "\nreport: " << out.markdown_path << "\n";
  if (!out.png_note.empty()) std::cout << "note: " << out.png_note << "\n";
  return local.failed ? 1 : 0;
}

}  // namespace

void add_scale(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "scale", "Scaling study: run a job at several rank/thread counts, then report");
  auto a = std::make_shared<ScaleArgs>();
  auto& s = a->study;
  cmd->add_option("config", s.config, "TOML job config (training, or [synthetic])")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--ranks", s.ranks, "Rank counts, e.g. 1,2,4")->required()->delimiter(',');
  cmd->add_option("--threads", s.threads, "Threads per rank, e.g. 1,2")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--mode", a->mode, "strong: fixed global problem; weak: fixed per-rank problem")
      ->check(one_of({"strong", "weak"}))
      ->capture_default_str();
  cmd->add_flag("--local", s.local, "Run the points here with mpiexec (default)");
  cmd->add_flag("--slurm", s.slurm, "Submit one Slurm job per point, then a report job");
  cmd->add_option("--site", s.site, "--slurm: site profile, name or path (default: site.name)");
  cmd->add_option("--submitter", s.submitter, "--slurm: how to submit")
      ->check(one_of({"auto", "sbatch", "libslurm"}))
      ->capture_default_str();
  cmd->add_option("--repeats", s.repeats, "Runs per point (median and min-max in the report)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--job", s.job, "train, synthetic, or auto ([synthetic] table -> synthetic)")
      ->check(one_of({"auto", "train", "synthetic"}))
      ->capture_default_str();
  cmd->add_option("--out", s.out, "Study directory (default <run.dir>/scale-<UTC time>)");
  cmd->add_option("--global-batch", s.global_batch,
                  "Strong scaling: global batch (default train.batch_size x smallest rank count)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--steps", s.steps, "Steps per run (train.max_steps; default from the config)")
      ->check(CLI::Range(1L, 100000000L));
  cmd->add_option("--set", s.sets, "Config override for every run (repeatable)");
  cmd->add_flag("--dry-run", s.dry_run,
                "Print the commands (--slurm: the scripts and args), run nothing");
  auto& r = a->report;
  r.comm.ranks_per_node = 0;
  cmd->add_option("--max-n", r.study.max_n, "Report: predict up to this N")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--target-eff", r.study.target_efficiency, "Report: efficiency target")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  cmd->add_option("--holdout", r.study.holdout,
                  "Report: held-out check, fit without the largest K N and predict them (0: off)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  cmd->add_option("--alpha", r.comm.inter.alpha_s, "Report: inter-node latency (s)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--beta", r.comm.inter.beta_s_per_byte, "Report: inverse bandwidth (s/byte)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--bandwidth-gbps", a->bandwidth_gbps, "Report: instead of --beta, GB/s");
  cmd->add_option("--intra-alpha", r.comm.intra.alpha_s, "Report: intra-node latency (s)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--intra-bandwidth-gbps", a->intra_bandwidth_gbps, "Report: intra-node GB/s");
  cmd->add_option("--allreduce-csv", r.allreduce_csv, "Report: fit alpha/beta to these timings")
      ->check(CLI::ExistingFile);
  cmd->add_option("--grad-bytes", r.comm.grad_bytes, "Report: bytes all-reduced per step")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--ranks-per-node", r.comm.ranks_per_node,
                  "Report: ranks per node (hierarchical)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--bucket-bytes", r.comm.bucket_bytes,
                  "Report: the all-reduces of one step (fusion buckets), bytes each")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  cmd->add_option("--auto-small-max-bytes", a->auto_small_max,
                  "Report: auto variant's recursive-doubling limit (small_max_bytes, e.g. 64K)");
  cmd->add_option("--auto-medium-max-bytes", a->auto_medium_max,
                  "Report: auto variant's hierarchical limit (medium_max_bytes, e.g. 1M)");
  cmd->add_flag("--no-png", a->no_png, "Report: SVG plots only");
  cmd->callback([&action, a] { action = [a] { return run_scale(*a); }; });
}

}  // namespace hpcml::jobs

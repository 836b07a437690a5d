// `hpcml scale CONFIG --ranks 1,2,4 [--threads 1,2] [--mode strong|weak] [--repeats K]`:
// a scaling study. Runs the job (training, or `bench synthetic` for a config
// with a [synthetic] table) once per ranks x threads point and repeat, each in
// its own run directory under the study directory, then writes study.json and
// the report (hpcml_analysis, see docs/scaling.md).
//
// Locally the points run one after another with `mpiexec -n R` of this same
// executable; more ranks x threads than cores is allowed and flagged in the
// report. `--slurm` is not implemented yet (NotAvailableError).
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "hpcml/analysis/plot.hpp"
#include "hpcml/analysis/report.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"

extern char** environ;

namespace hpcml::jobs {

namespace {

namespace fs = std::filesystem;

struct ScaleArgs {
  std::string config;
  std::vector<int> ranks;
  std::vector<int> threads{1};
  std::string mode = "strong";
  bool local = false;
  bool slurm = false;
  int repeats = 1;
  std::string job = "auto";
  std::string out;
  long global_batch = 0;
  long steps = -1;
  std::vector<std::string> sets;
  bool dry_run = false;
  analysis::ReportRequest report;
  double bandwidth_gbps = analysis::kUnknown;
  double intra_bandwidth_gbps = analysis::kUnknown;
  bool no_png = false;
};

std::string utc_stamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", &tm);
  return ts;
}

int hardware_threads() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

std::string self_exe() {
  std::error_code ec;
  const auto p = fs::read_symlink("/proc/self/exe", ec);
  HPCML_REQUIRE(!ec, Error, "cannot find the hpcml executable (/proc/self/exe): " + ec.message());
  return p.string();
}

std::string quote_for_log(const std::string& s) {
  if (s.find_first_of(" \"'\\$") == std::string::npos) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs argv (no shell) with OMP_NUM_THREADS set, output to our stdout/stderr.
int run_child(const std::vector<std::string>& argv, int threads) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::string(*e).rfind("OMP_NUM_THREADS=", 0) != 0) env.emplace_back(*e);
  env.push_back("OMP_NUM_THREADS=" + std::to_string(threads));
  std::vector<char*> cargv, cenv;
  std::vector<std::string> a = argv, b = env;
  for (auto& s : a) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  for (auto& s : b) cenv.push_back(s.data());
  cenv.push_back(nullptr);
  std::cout << std::flush;
  pid_t pid = 0;
  if (posix_spawnp(&pid, cargv[0], nullptr, nullptr, cargv.data(), cenv.data()) != 0) return 127;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 127;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  std::ofstream f(path.string() + ".tmp");
  f << j.dump(2) << '\n';
  f.close();
  HPCML_REQUIRE(f.good(), Error, path.string() + ": write failed");
  fs::rename(path.string() + ".tmp", path);
}

int run_scale(ScaleArgs& a) {
  HPCML_REQUIRE(!a.ranks.empty(), ConfigError, "scale: --ranks: give at least one rank count");
  for (int r : a.ranks)
    HPCML_REQUIRE(r >= 1, ConfigError,
                  "scale: --ranks: expected counts >= 1, got " + std::to_string(r));
  for (int t : a.threads)
    HPCML_REQUIRE(t >= 1, ConfigError,
                  "scale: --threads: expected counts >= 1, got " + std::to_string(t));
  HPCML_REQUIRE(!(a.local && a.slurm), ConfigError, "scale: give --local or --slurm, not both");
  if (a.slurm)
    HPCML_THROW(NotAvailableError,
                "scale --slurm is not implemented in this version: run the study locally "
                "(--local, the default) or submit one `hpcml submit` job per point and run "
                "`hpcml report` on their run directories (see docs/scaling.md)");

  ConfigDoc doc = ConfigDoc::load(a.config);
  for (const auto& s : a.sets) doc.set(s);
  std::string job = a.job;
  if (job == "auto") job = doc.has("synthetic") ? "synthetic" : "train";
  const long config_batch = doc.get_int("train.batch_size", job == "synthetic" ? 32 : 64, 1);
  const long config_steps = doc.get_int("train.max_steps", job == "synthetic" ? 10 : 0, 0);
  const std::string run_parent = doc.get_string("run.dir", "runs");
  // [scale] holds the report's model parameters (the trainer ignores the table).
  auto opt_double = [&](const std::string& key, double current) {
    return std::isfinite(current) ? current
           : doc.has(key)         ? doc.get_double(key, 0.0, 0.0)
                                  : current;
  };
  auto& comm = a.report.comm;
  if (std::isfinite(a.bandwidth_gbps)) comm.inter.beta_s_per_byte = 1.0 / (a.bandwidth_gbps * 1e9);
  if (std::isfinite(a.intra_bandwidth_gbps))
    comm.intra.beta_s_per_byte = 1.0 / (a.intra_bandwidth_gbps * 1e9);
  const bool alpha_cli = std::isfinite(comm.inter.alpha_s);
  comm.inter.alpha_s = opt_double("scale.alpha_s", comm.inter.alpha_s);
  comm.inter.beta_s_per_byte = opt_double("scale.beta_s_per_byte", comm.inter.beta_s_per_byte);
  comm.intra.alpha_s = opt_double("scale.intra_alpha_s", comm.intra.alpha_s);
  comm.intra.beta_s_per_byte =
      opt_double("scale.intra_beta_s_per_byte", comm.intra.beta_s_per_byte);
  comm.grad_bytes = opt_double("scale.grad_bytes", comm.grad_bytes);
  if (!(comm.ranks_per_node > 0) && doc.has("scale.ranks_per_node"))
    comm.ranks_per_node = static_cast<double>(doc.get_int("scale.ranks_per_node", 1, 1));
  if (comm.inter.valid() && comm.source.empty())
    comm.source = alpha_cli ? "given on the command line" : a.config + " [scale]";
  if (a.report.allreduce_csv.empty() && doc.has("scale.allreduce_csv"))
    a.report.allreduce_csv = doc.get_string("scale.allreduce_csv", "");
  std::vector<std::string> other_tables;
  for (const auto& k : doc.leaf_keys()) {
    const std::string t = k.substr(0, k.find('.'));
    if (t != "scale" && (other_tables.empty() || other_tables.back() != t))
      other_tables.push_back(t);
  }
  doc.check_unknown(other_tables);

  const int r_min = *std::min_element(a.ranks.begin(), a.ranks.end());
  const long global_batch = a.global_batch > 0 ? a.global_batch : config_batch * r_min;
  const long steps = a.steps >= 0 ? a.steps : config_steps;
  if (a.mode == "strong") {
    for (int r : a.ranks)
      HPCML_REQUIRE(global_batch % r == 0, ConfigError,
                    "scale: strong scaling keeps the global batch " + std::to_string(global_batch) +
                        " fixed, which " + std::to_string(r) +
                        " ranks cannot share evenly; pass --global-batch with a multiple of every "
                        "rank count");
  }

  const std::string study_dir =
      a.out.empty() ? (fs::path(run_parent) / ("scale-" + utc_stamp())).string() : a.out;
  std::error_code ec;
  fs::create_directories(study_dir, ec);
  HPCML_REQUIRE(!ec, ConfigError,
                "scale: cannot create study directory '" + study_dir + "': " + ec.message());
  HPCML_REQUIRE(
      !fs::exists(fs::path(study_dir) / "study.json"), ConfigError,
      "scale: '" + study_dir + "' already holds a study (study.json); choose another --out");

  const std::string exe = self_exe();
  const std::string mpiexec = analysis::find_on_path("mpiexec");
  HPCML_REQUIRE(!mpiexec.empty(), NotAvailableError, "scale: mpiexec not found on PATH");
  const int cores = hardware_threads();
  std::string cmdline;
  {
    std::ifstream in("/proc/self/cmdline", std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::size_t start = all.find('\0');
    cmdline = "hpcml";
    while (start != std::string::npos && start + 1 < all.size()) {
      const std::size_t end = all.find('\0', start + 1);
      cmdline += " " + quote_for_log(all.substr(start + 1, end - start - 1));
      start = end;
    }
  }

  nlohmann::json study = {{"name", fs::path(study_dir).filename().string()},
                          {"mode", a.mode},
                          {"job", job},
                          {"config", a.config},
                          {"command", cmdline},
                          {"hpcml_version", HPCML_VERSION},
                          {"created_utc", utc_stamp()},
                          {"launcher", "mpiexec (local)"},
                          {"hardware_threads", cores},
                          {"global_batch", a.mode == "strong" ? global_batch : 0},
                          {"steps", steps},
                          {"repeats", a.repeats},
                          {"points", nlohmann::json::array()}};
  const fs::path study_json = fs::path(study_dir) / "study.json";
  write_json(study_json, study);

  std::cout << "hpcml scale: " << a.mode << " scaling of '" << job << "' (" << a.config << "), "
            << a.ranks.size() * a.threads.size() << " point(s) x " << a.repeats
            << " repeat(s); study " << study_dir << "\n";
  int failed = 0;
  // Repeats are the outer loop so that slow drifts of a shared machine spread
  // over all points instead of biasing one.
  for (int k = 0; k < a.repeats; ++k) {
    for (int t : a.threads) {
      for (int r : a.ranks) {
        const long local_batch = a.mode == "strong" ? global_batch / r : config_batch;
        const std::string name =
            "r" + std::to_string(r) + "-t" + std::to_string(t) + "-k" + std::to_string(k);
        const bool over = static_cast<long>(r) * t > cores;
        std::vector<std::string> argv = {mpiexec, "-n", std::to_string(r), exe};
        if (job == "synthetic") {
          argv.insert(argv.end(), {"bench", "synthetic"});
        } else {
          argv.push_back("train");
        }
        argv.push_back(a.config);
        for (const auto& s : a.sets) argv.insert(argv.end(), {"--set", s});
        argv.insert(argv.end(),
                    {"--set", "run.dir=\"" + study_dir + "\"", "--set", "run.name=\"" + name + "\"",
                     "--set", "train.batch_size=" + std::to_string(local_batch), "--set",
                     "parallel.threads=" + std::to_string(t)});
        if (steps > 0 || job == "synthetic")
          argv.insert(argv.end(), {"--set", "train.max_steps=" + std::to_string(steps)});
        if (job == "synthetic")
          argv.insert(argv.end(), {"--set", "synthetic.scaling=\"" + a.mode + "\""});
        std::string shown;
        for (const auto& x : argv) {
          if (!shown.empty()) shown += ' ';
          shown += quote_for_log(x);
        }
        std::cout << "\n== point " << name << ": " << r << " rank(s) x " << t << " thread(s)"
                  << (over ? " [OVERSUBSCRIBED: " + std::to_string(r * t) + " > " +
                                 std::to_string(cores) + " cores]"
                           : "")
                  << "\n   " << shown << "\n";
        if (a.dry_run) continue;
        const auto t0 = std::chrono::steady_clock::now();
        const int code = run_child(argv, t);
        const double wall =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const bool ok = code == 0 && fs::exists(fs::path(study_dir) / name / "summary.json");
        if (!ok) {
          ++failed;
          std::cerr << "hpcml scale: point " << name << " failed (exit code " << code
                    << "); it is left out of the report\n";
        }
        study["points"].push_back({{"dir", name},
                                   {"ranks", r},
                                   {"threads", t},
                                   {"repeat", k},
                                   {"local_batch", local_batch},
                                   {"oversubscribed", over},
                                   {"exit_code", code},
                                   {"wall_s", wall},
                                   {"status", ok ? "ok" : "failed"}});
        write_json(study_json, study);
      }
    }
  }
  if (a.dry_run) return 0;
  HPCML_REQUIRE(failed < static_cast<int>(study["points"].size()), Error,
                "scale: every point failed; see the messages above (study " + study_dir + ")");

  a.report.runs_dir = study_dir;
  a.report.mode = a.mode;
  a.report.report.png = !a.no_png;
  a.report.report.title = "Scaling report: " + fs::path(study_dir).filename().string();
  a.report.report.provenance = {
      "produced by hpcml " HPCML_VERSION ": `" + cmdline + "`",
      "job: " + job + " (" + a.config + "), " + a.mode + " scaling" +
          (a.mode == "strong" ? ", global batch " + std::to_string(global_batch)
                              : ", batch " + std::to_string(config_batch) + " per rank") +
          (steps > 0 ? ", " + std::to_string(steps) + " steps per run" : ""),
      "launched locally with mpiexec, one point after another, on a machine with " +
          std::to_string(cores) + " hardware threads"};
  const auto out = analysis::make_report(a.report);
  std::cout << "\nreport: " << out.markdown_path << "\n";
  if (!out.png_note.empty()) std::cout << "note: " << out.png_note << "\n";
  return failed ? 1 : 0;
}

}  // namespace

void add_scale(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "scale", "Scaling study: run a job at several rank/thread counts, then report");
  auto a = std::make_shared<ScaleArgs>();
  cmd->add_option("config", a->config, "TOML job config (training, or [synthetic])")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--ranks", a->ranks, "Rank counts, e.g. 1,2,4")->required()->delimiter(',');
  cmd->add_option("--threads", a->threads, "Threads per rank, e.g. 1,2")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--mode", a->mode, "strong: fixed global problem; weak: fixed per-rank problem")
      ->check(CLI::IsMember({"strong", "weak"}))
      ->capture_default_str();
  cmd->add_flag("--local", a->local, "Run the points here with mpiexec (default)");
  cmd->add_flag("--slurm", a->slurm, "Submit one Slurm job per point (not implemented yet)");
  cmd->add_option("--repeats", a->repeats, "Runs per point (median and min-max in the report)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--job", a->job, "train, synthetic, or auto ([synthetic] table -> synthetic)")
      ->check(CLI::IsMember({"auto", "train", "synthetic"}))
      ->capture_default_str();
  cmd->add_option("--out", a->out, "Study directory (default <run.dir>/scale-<UTC time>)");
  cmd->add_option("--global-batch", a->global_batch,
                  "Strong scaling: global batch (default train.batch_size x smallest rank count)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--steps", a->steps, "Steps per run (train.max_steps; default from the config)")
      ->check(CLI::Range(1L, 100000000L));
  cmd->add_option("--set", a->sets, "Config override for every run (repeatable)");
  cmd->add_flag("--dry-run", a->dry_run, "Print the commands, run nothing");
  auto& r = a->report;
  r.comm.ranks_per_node = 0;
  cmd->add_option("--max-n", r.study.max_n, "Report: predict up to this N")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--target-eff", r.study.target_efficiency, "Report: efficiency target")
      ->check(CLI::Range(0.01, 1.0))
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
  cmd->add_flag("--no-png", a->no_png, "Report: SVG plots only");
  cmd->callback([&action, a] { action = [a] { return run_scale(*a); }; });
}

}  // namespace hpcml::jobs

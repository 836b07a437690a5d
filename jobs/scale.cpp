// `hpcml scale CONFIG --ranks 1,2,4 [--threads 1,2] [--mode strong|weak] [--repeats K]`:
// a scaling study. Runs the job (training, or `bench synthetic` for a config
// with a [synthetic] table) once per ranks x threads point and repeat, each in
// its own run directory under the study directory, then writes study.json and
// the report (hpcml_analysis, see docs/scaling.md).
//
// Locally the points run one after another with `mpiexec -n R` of this same
// executable; more ranks x threads than cores is allowed and flagged in the
// report. With `--slurm` each point becomes one batch job (launch's
// submit_single_job: its script, args file and log under <study>/slurm/<point>),
// followed by one `hpcml report` job that waits (afterany) on all of them; the
// points write their run directories where the local mode would, so the same
// `hpcml report <study>` reads both.
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
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "hpcml/analysis/plot.hpp"
#include "hpcml/analysis/report.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/launch/job_spec.hpp"
#include "hpcml/launch/process.hpp"
#include "hpcml/launch/script_safety.hpp"
#include "hpcml/launch/site.hpp"
#include "hpcml/launch/submit.hpp"
#include "hpcml/launch/submitter.hpp"

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
  std::string site;                // --slurm: site profile (name or path); "" = config's site.name
  std::string submitter = "auto";  // --slurm: auto | sbatch | libslurm
};

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

// r{R}-t{T}-k{k}. Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "literal" + string.
std::string point_name(int ranks, int threads, int repeat) {
  std::string n = "r";
  n.append(std::to_string(ranks)).append("-t").append(std::to_string(threads));
  n.append("-k").append(std::to_string(repeat));
  return n;
}

// hpcml's arguments for one point (after `mpiexec -n R <exe>` locally, or in
// the Slurm job's args file): the run lands in <study_dir>/<name> either way.
std::vector<std::string> point_args(const std::string& job, const std::string& config,
                                    const std::vector<std::string>& sets,
                                    const std::string& study_dir, const std::string& name,
                                    long local_batch, int threads, long steps,
                                    const std::string& mode) {
  std::vector<std::string> argv;
  if (job == "synthetic") {
    argv.insert(argv.end(), {"bench", "synthetic"});
  } else {
    argv.push_back("train");
  }
  argv.push_back(config);
  for (const auto& s : sets) argv.insert(argv.end(), {"--set", s});
  argv.insert(argv.end(),
              {"--set", "run.dir=\"" + study_dir + "\"", "--set", "run.name=\"" + name + "\"",
               "--set", "train.batch_size=" + std::to_string(local_batch), "--set",
               "parallel.threads=" + std::to_string(threads)});
  if (steps > 0 || job == "synthetic")
    argv.insert(argv.end(), {"--set", "train.max_steps=" + std::to_string(steps)});
  if (job == "synthetic") argv.insert(argv.end(), {"--set", "synthetic.scaling=\"" + mode + "\""});
  return argv;
}

std::string number_arg(double v) {
  std::ostringstream o;
  o << std::setprecision(17) << v;
  return o.str();
}

// `hpcml report` arguments that reproduce what the local mode's make_report(a.report) does.
std::vector<std::string> report_args(const analysis::ReportRequest& r, const std::string& study_dir,
                                     const std::string& mode, bool no_png) {
  std::vector<std::string> v{"report", study_dir, "--out", study_dir + "/report", "--mode", mode};
  if (r.study.max_n > 0) v.insert(v.end(), {"--max-n", number_arg(r.study.max_n)});
  v.insert(v.end(), {"--target-eff", number_arg(r.study.target_efficiency)});
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
  if (no_png) v.push_back("--no-png");
  v.insert(v.end(), {"--title", "Scaling report: " + fs::path(study_dir).filename().string()});
  return v;
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  std::ofstream f(path.string() + ".tmp");
  f << j.dump(2) << '\n';
  f.close();
  HPCML_REQUIRE(f.good(), Error, path.string() + ": write failed");
  fs::rename(path.string() + ".tmp", path);
}

std::string command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t start = all.find('\0');
  std::string cmdline = "hpcml";
  while (start != std::string::npos && start + 1 < all.size()) {
    const std::size_t end = all.find('\0', start + 1);
    cmdline += " " + quote_for_log(all.substr(start + 1, end - start - 1));
    start = end;
  }
  return cmdline;
}

// What run_scale settled before launching anything.
struct SlurmStudy {
  std::string job;
  long config_batch = 0;
  long global_batch = 0;
  long steps = 0;
  std::string study_dir;
  std::string cmdline;
};

// Nodes x tasks per node for `ranks`: one node unless the config caps
// slurm.ntasks_per_node, then as few nodes as the cap allows, evenly filled.
std::pair<int, int> geometry(int ranks, int cap, const std::string& config) {
  if (cap <= 0 || cap >= ranks) return {1, ranks};
  const int nodes = (ranks + cap - 1) / cap;
  HPCML_REQUIRE(ranks % nodes == 0, ConfigError,
                "scale --slurm: " + std::to_string(ranks) + " ranks cannot fill " +
                    std::to_string(nodes) + " nodes evenly with at most " + std::to_string(cap) +
                    " per node (slurm.ntasks_per_node in " + config +
                    "); choose rank counts that are multiples of the node count");
  return {nodes, ranks / nodes};
}

int submit_scale_slurm(ScaleArgs& a, const SlurmStudy& s) {
  namespace L = hpcml::launch;
  // [slurm] and [site] of the config, read as `hpcml submit` reads them.
  ConfigDoc sdoc = ConfigDoc::load(a.config);
  for (const auto& x : a.sets) {
    HPCML_REQUIRE(!L::has_control_char(x), ConfigError,
                  "scale: --set '" + L::printable(x) + "': contains a control character");
    sdoc.set(x);
  }
  std::string site_name = sdoc.get_string("site.name", "");
  if (!a.site.empty()) site_name = a.site;
  L::SiteProfile site;
  if (!site_name.empty()) site = L::load_site(site_name, L::default_sites_dir());
  L::apply_site_table(sdoc, "site", site);
  const L::JobSpec base = L::read_job_spec(sdoc, site);
  std::vector<std::string> others;
  for (const auto& k : sdoc.leaf_keys()) {
    const std::string t = k.substr(0, k.find('.'));
    if (t != "slurm" && t != "site" && (others.empty() || others.back() != t)) others.push_back(t);
  }
  sdoc.check_unknown(others);
  const int cap = sdoc.has("slurm.ntasks_per_node") ? base.ntasks_per_node : 0;

  std::string study_dir = fs::absolute(s.study_dir).lexically_normal().string();
  while (study_dir.size() > 1 && study_dir.back() == '/') study_dir.pop_back();
  if (auto why = L::check_field(L::Field::kPath, study_dir); !why.empty())
    HPCML_THROW(ConfigError, "scale --slurm: study directory '" + L::printable(study_dir) + "' " +
                                 why + " (allowed: " + std::string(L::describe(L::Field::kPath)) +
                                 "; choose another --out)");
  HPCML_REQUIRE(
      !fs::exists(fs::path(study_dir) / "study.json"), ConfigError,
      "scale: '" + study_dir + "' already holds a study (study.json); choose another --out");
  const std::string slurm_dir = study_dir + "/slurm";
  // The jobs read a copy, so editing the config while they queue changes nothing.
  const std::string config_copy = slurm_dir + "/config.toml";

  L::ScriptPlan plan0;
  plan0.site = site;
  plan0.source_config = a.config;
  plan0.work_dir = fs::current_path().string();
  plan0.hpcml = !site.hpcml.empty() ? site.hpcml : L::self_executable();

  std::unique_ptr<L::Submitter> submitter;
  if (!a.dry_run) {
    submitter = L::make_submitter(a.submitter);
    std::error_code ec;
    fs::create_directories(slurm_dir, ec);
    HPCML_REQUIRE(!ec, ConfigError,
                  "scale: cannot create study directory '" + slurm_dir + "': " + ec.message());
    fs::copy_file(a.config, config_copy, fs::copy_options::overwrite_existing, ec);
    HPCML_REQUIRE(!ec, ConfigError,
                  "scale: cannot copy " + a.config + " to " + config_copy + ": " + ec.message());
  }

  nlohmann::json study = {
      {"name", fs::path(study_dir).filename().string()},
      {"mode", a.mode},
      {"job", s.job},
      {"config", a.config},
      {"command", s.cmdline},
      {"hpcml_version", HPCML_VERSION},
      {"created_utc", utc_timestamp()},
      {"launcher", std::string("slurm (") + (submitter ? submitter->name() : a.submitter) + ")"},
      {"site", site.name},
      {"global_batch", a.mode == "strong" ? s.global_batch : 0},
      {"steps", s.steps},
      {"repeats", a.repeats},
      {"points", nlohmann::json::array()}};
  const fs::path study_json = fs::path(study_dir) / "study.json";

  std::cout << "hpcml scale: " << a.mode << " scaling of '" << s.job << "' (" << a.config
            << ") on Slurm, " << a.ranks.size() * a.threads.size() << " point(s) x " << a.repeats
            << " repeat(s); study " << study_dir << (a.dry_run ? " (dry run)" : "") << "\n";
  std::vector<std::string> ids;
  try {
    for (int k = 0; k < a.repeats; ++k) {
      for (int t : a.threads) {
        for (int r : a.ranks) {
          const long local_batch = a.mode == "strong" ? s.global_batch / r : s.config_batch;
          const std::string name = point_name(r, t, k);
          L::SingleJob sj;
          sj.plan = plan0;
          sj.plan.job = base;
          const auto [nodes, per_node] = geometry(r, cap, a.config);
          sj.plan.job.nodes = nodes;
          sj.plan.job.ntasks_per_node = per_node;
          sj.plan.job.cpus_per_task = t;
          sj.plan.job.job_name = base.job_name + "-" + name;
          sj.plan.run_dir = slurm_dir + "/" + name;
          sj.args = point_args(s.job, config_copy, a.sets, study_dir, name, local_batch, t, s.steps,
                               a.mode);
          const auto res = L::submit_single_job(sj, submitter.get());
          std::cout << "\n== point " << name << ": " << r << " rank(s) x " << t << " thread(s) on "
                    << nodes << " node(s)";
          if (a.dry_run) {
            std::cout << "\n# ---- " << res.script_path << "\n"
                      << res.script_text << "# ---- " << sj.plan.run_dir
                      << "/args (one hpcml argument per line)\n"
                      << res.args_text;
            continue;
          }
          std::cout << ": job " << res.job_id << "\n";
          ids.push_back(res.job_id);
          study["points"].push_back({{"dir", name},
                                     {"ranks", r},
                                     {"threads", t},
                                     {"repeat", k},
                                     {"local_batch", local_batch},
                                     {"nodes", nodes},
                                     {"ntasks_per_node", per_node},
                                     {"cpus_per_task", t},
                                     {"job_id", res.job_id},
                                     {"slurm_dir", "slurm/" + name}});
        }
      }
    }
    L::SingleJob rj;
    rj.plan = plan0;
    rj.plan.job = base;
    rj.plan.job.nodes = 1;
    rj.plan.job.ntasks_per_node = 1;
    rj.plan.job.cpus_per_task = 1;
    rj.plan.job.gpus_per_node = 0;
    rj.plan.job.gres.clear();
    rj.plan.job.launcher = "none";  // not an MPI program: runs in the batch shell
    rj.plan.job.job_name = base.job_name + "-report";
    rj.plan.run_dir = slurm_dir + "/report";
    rj.args = report_args(a.report, study_dir, a.mode, a.no_png);
    rj.dependency_type = "afterany";
    rj.after = ids;
    if (a.dry_run) {
      // Dry run: stand-in ids so that the dependency is shown and checked.
      for (std::size_t i = 0; i < a.ranks.size() * a.threads.size() * a.repeats; ++i)
        rj.after.push_back(std::to_string(i + 1));
    } else {
      // Before the report job exists: it reads study.json when the points have ended.
      write_json(study_json, study);
    }
    const auto res = L::submit_single_job(rj, submitter.get());
    if (a.dry_run) {
      std::cout << "\n== report (after every point, " << res.dependency.substr(0, 8)
                << " on their job ids)\n# ---- " << res.script_path << "\n"
                << res.script_text << "# ---- " << rj.plan.run_dir
                << "/args (one hpcml argument per line)\n"
                << res.args_text;
      return 0;
    }
    ids.push_back(res.job_id);
    study["report_job_id"] = res.job_id;
    write_json(study_json, study);
    std::cout << "\n== report: job " << res.job_id << " (" << res.dependency.substr(0, 8)
              << " on the points)\n";
  } catch (...) {
    // All or nothing: a study missing points would fit the wrong curve.
    for (const auto& id : ids) L::run_process({"scancel", id});
    if (!ids.empty())
      std::cerr << "hpcml scale: submission failed; cancelled the " << ids.size()
                << " job(s) already submitted\n";
    throw;
  }
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
  std::cout << "\nsubmitted " << ids.size() << " job(s): " << list << "\n"
            << "follow:  squeue -j " << list << "\n"
            << "logs:    " << slurm_dir << "/<point>/slurm-<job id>.out\n"
            << "report:  " << study_dir << "/report/report.md once job " << ids.back()
            << " has ended (or run `hpcml report " << study_dir << "` yourself)\n";
  return 0;
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
      a.out.empty() ? (fs::path(run_parent) / ("scale-" + utc_timestamp())).string() : a.out;
  const std::string cmdline = command_line();
  if (a.slurm) {
    SlurmStudy s{job, config_batch, global_batch, steps, study_dir, cmdline};
    return submit_scale_slurm(a, s);
  }
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

  nlohmann::json study = {{"name", fs::path(study_dir).filename().string()},
                          {"mode", a.mode},
                          {"job", job},
                          {"config", a.config},
                          {"command", cmdline},
                          {"hpcml_version", HPCML_VERSION},
                          {"created_utc", utc_timestamp()},
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
        const std::string name = point_name(r, t, k);
        const bool over = static_cast<long>(r) * t > cores;
        std::vector<std::string> argv = {mpiexec, "-n", std::to_string(r), exe};
        for (auto& x :
             point_args(job, a.config, a.sets, study_dir, name, local_batch, t, steps, a.mode))
          argv.push_back(std::move(x));
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
  cmd->add_flag("--slurm", a->slurm, "Submit one Slurm job per point, then a report job");
  cmd->add_option("--site", a->site, "--slurm: site profile, name or path (default: site.name)");
  cmd->add_option("--submitter", a->submitter, "--slurm: how to submit")
      ->check(CLI::IsMember({"auto", "sbatch", "libslurm"}))
      ->capture_default_str();
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
  cmd->add_flag("--dry-run", a->dry_run,
                "Print the commands (--slurm: the scripts and args), run nothing");
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

#include "hpcml/launch/study.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "hpcml/config.hpp"
#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/config_tables.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/process_path.hpp"
#include "hpcml/core/run_dir.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/launch/environment.hpp"
#include "hpcml/launch/process.hpp"
#include "hpcml/launch/script_safety.hpp"
#include "hpcml/launch/submitter.hpp"
#include "validate.hpp"

namespace hpcml::launch {

namespace fs = std::filesystem;

namespace {

// r{R}-t{T}-k{k}.
std::string point_name(int ranks, int threads, int repeat) {
  return cat("r", std::to_string(ranks), "-t", std::to_string(threads), "-k",
             std::to_string(repeat));
}

// An argument as a shell would need it, for the log only (the points run without a shell).
std::string shown(const std::string& s) {
  return s.find_first_of(" \"'\\$") == std::string::npos ? s : shell_quote(s);
}

// study.json's fields common to both launchers.
nlohmann::json study_json(const StudyPlan& p, const std::string& study_dir,
                          const std::string& launcher) {
  const bool strong = p.request.mode == StudyMode::kStrong;
  return {{"name", fs::path(study_dir).filename().string()},
          {"mode", to_string(p.request.mode)},
          {"job", p.job},
          {"config", p.request.config},
          {"command", p.request.command},
          {"hpcml_version", HPCML_VERSION},
          {"created_utc", utc_timestamp()},
          {"launcher", launcher},
          {"global_batch", strong ? p.global_batch : 0},
          {"steps", p.steps},
          {"repeats", p.request.repeats},
          {"points", nlohmann::json::array()}};
}

void write_json(const std::string& path, const nlohmann::json& j) {
  write_file_atomic(path, j.dump(2) + "\n");
}

void require_no_study(const std::string& study_dir) {
  HPCML_REQUIRE(
      !fs::exists(fs::path(study_dir) / "study.json"), ConfigError,
      "scale: '" + study_dir + "' already holds a study (study.json); choose another --out");
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  HPCML_REQUIRE(f, ConfigError, path + ": cannot read the config file");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

const char* to_string(StudyMode mode) { return mode == StudyMode::kWeak ? "weak" : "strong"; }

StudyMode parse_study_mode(const std::string& text) {
  if (text == "strong") return StudyMode::kStrong;
  if (text == "weak") return StudyMode::kWeak;
  HPCML_THROW(ConfigError, "scale: --mode '" + printable(text) + "': expected strong or weak");
}

StudyPlan plan_study(const StudyRequest& request) {
  const StudyRequest& r = request;
  HPCML_REQUIRE(!r.ranks.empty(), ConfigError, "scale: --ranks: give at least one rank count");
  for (int n : r.ranks)
    HPCML_REQUIRE(n >= 1, ConfigError,
                  "scale: --ranks: expected counts >= 1, got " + std::to_string(n));
  HPCML_REQUIRE(!r.threads.empty(), ConfigError,
                "scale: --threads: give at least one thread count");
  for (int t : r.threads)
    HPCML_REQUIRE(t >= 1, ConfigError,
                  "scale: --threads: expected counts >= 1, got " + std::to_string(t));
  HPCML_REQUIRE(!(r.local && r.slurm), ConfigError, "scale: give --local or --slurm, not both");
  HPCML_REQUIRE(r.repeats >= 1, ConfigError,
                "scale: --repeats: expected >= 1, got " + std::to_string(r.repeats));
  HPCML_REQUIRE(r.job == "auto" || r.job == "train" || r.job == "synthetic", ConfigError,
                "scale: --job '" + printable(r.job) + "': expected train, synthetic or auto");

  StudyPlan p;
  p.request = r;
  ConfigDoc doc = ConfigDoc::load(r.config);
  for (const auto& s : r.sets) doc.set(s);
  p.job = r.job == "auto" ? (doc.has("synthetic") ? "synthetic" : "train") : r.job;
  const bool synthetic = p.job == "synthetic";
  p.config_batch = doc.get_int("train.batch_size", synthetic ? 32 : 64, 1);
  const long config_steps = doc.get_int("train.max_steps", synthetic ? 10 : 0, 0);
  const std::string run_parent = doc.get_string("run.dir", "runs");
  // [scale] belongs to the study: read every key so that a typo is an error.
  auto number = [&](const std::string& key) {
    return doc.has(key) ? doc.get_double(key, 0.0, 0.0) : StudyModelKeys::kAbsent;
  };
  p.model.alpha_s = number("scale.alpha_s");
  p.model.beta_s_per_byte = number("scale.beta_s_per_byte");
  p.model.intra_alpha_s = number("scale.intra_alpha_s");
  p.model.intra_beta_s_per_byte = number("scale.intra_beta_s_per_byte");
  p.model.grad_bytes = number("scale.grad_bytes");
  if (doc.has("scale.ranks_per_node"))
    p.model.ranks_per_node = static_cast<double>(doc.get_int("scale.ranks_per_node", 1, 1));
  if (doc.has("scale.allreduce_csv"))
    p.model.allreduce_csv = doc.get_string("scale.allreduce_csv", "");
  doc.check_unknown(tables_left_to_others(ConfigReader::kScale, doc));

  const int r_min = *std::min_element(r.ranks.begin(), r.ranks.end());
  p.global_batch = r.global_batch > 0 ? r.global_batch : p.config_batch * r_min;
  p.steps = r.steps >= 0 ? r.steps : config_steps;
  const bool strong = r.mode == StudyMode::kStrong;
  if (strong) {
    for (int n : r.ranks)
      HPCML_REQUIRE(p.global_batch % n == 0, ConfigError,
                    "scale: strong scaling keeps the global batch " +
                        std::to_string(p.global_batch) + " fixed, which " + std::to_string(n) +
                        " ranks cannot share evenly; pass --global-batch with a multiple of "
                        "every rank count");
  }

  p.default_dir = r.out.empty();
  p.study_dir =
      p.default_dir ? (fs::path(run_parent) / ("scale-" + utc_timestamp())).string() : r.out;
  if (r.slurm) {
    // The jobs run elsewhere: every path they see is absolute.
    p.study_dir = fs::absolute(p.study_dir).lexically_normal().string();
    while (p.study_dir.size() > 1 && p.study_dir.back() == '/') p.study_dir.pop_back();
  }

  for (int k = 0; k < r.repeats; ++k) {
    for (int t : r.threads) {
      for (int n : r.ranks) {
        StudyPoint pt;
        pt.name = point_name(n, t, k);
        pt.ranks = n;
        pt.threads = t;
        pt.repeat = k;
        pt.local_batch = strong ? p.global_batch / n : p.config_batch;
        p.points.push_back(pt);
      }
    }
  }
  return p;
}

std::vector<std::string> point_args(const StudyPlan& plan, const StudyPoint& point,
                                    const std::string& config) {
  const bool synthetic = plan.job == "synthetic";
  std::vector<std::string> argv;
  if (synthetic) {
    argv.insert(argv.end(), {"bench", "synthetic"});
  } else {
    argv.push_back("train");
  }
  argv.push_back(config);
  for (const auto& s : plan.request.sets) argv.insert(argv.end(), {"--set", s});
  argv.insert(argv.end(), {"--set", cat("run.dir=\"", plan.study_dir, "\""), "--set",
                           cat("run.name=\"", point.name, "\""), "--set",
                           "train.batch_size=" + std::to_string(point.local_batch), "--set",
                           "parallel.threads=" + std::to_string(point.threads)});
  if (plan.steps > 0 || synthetic)
    argv.insert(argv.end(), {"--set", "train.max_steps=" + std::to_string(plan.steps)});
  if (synthetic)
    argv.insert(argv.end(),
                {"--set", cat("synthetic.scaling=\"", to_string(plan.request.mode), "\"")});
  return argv;
}

std::vector<std::string> local_point_command(const StudyPlan& plan, const StudyPoint& point,
                                             const std::string& mpiexec, const std::string& hpcml) {
  std::vector<std::string> argv = {mpiexec, "-n", std::to_string(point.ranks), hpcml};
  for (auto& x : point_args(plan, point, plan.request.config)) argv.push_back(std::move(x));
  return argv;
}

std::pair<int, int> slurm_geometry(int ranks, int cap, const std::string& config) {
  if (cap <= 0 || cap >= ranks) return {1, ranks};
  const int nodes = (ranks + cap - 1) / cap;
  HPCML_REQUIRE(ranks % nodes == 0, ConfigError,
                "scale --slurm: " + std::to_string(ranks) + " ranks cannot fill " +
                    std::to_string(nodes) + " nodes evenly with at most " + std::to_string(cap) +
                    " per node (slurm.ntasks_per_node in " + config +
                    "); choose rank counts that are multiples of the node count");
  return {nodes, ranks / nodes};
}

std::string create_study_dir(const StudyPlan& plan) {
  if (plan.default_dir) {
    const fs::path d(plan.study_dir);
    return create_unique_dir(d.parent_path().string(), d.filename().string(), "scale: run.dir");
  }
  std::error_code ec;
  fs::create_directories(plan.study_dir, ec);
  HPCML_REQUIRE(!ec, ConfigError,
                "scale: cannot create study directory '" + plan.study_dir + "': " + ec.message());
  require_no_study(plan.study_dir);
  return plan.study_dir;
}

LocalStudyResult run_study_local(const StudyPlan& plan, std::ostream& out, std::ostream& err) {
  const StudyRequest& rq = plan.request;
  LocalStudyResult res;
  res.study_dir = create_study_dir(plan);
  StudyPlan p = plan;
  p.study_dir = res.study_dir;
  const std::string exe = self_executable();
  const std::string mpiexec = find_on_path("mpiexec");
  HPCML_REQUIRE(!mpiexec.empty(), NotAvailableError, "scale: mpiexec not found on PATH");
  res.hardware_threads = hardware_threads();
  const int cores = res.hardware_threads;

  nlohmann::json study = study_json(p, p.study_dir, "mpiexec (local)");
  study["hardware_threads"] = cores;
  const std::string json_path = (fs::path(p.study_dir) / "study.json").string();
  write_json(json_path, study);

  out << "hpcml scale: " << to_string(rq.mode) << " scaling of '" << p.job << "' (" << rq.config
      << "), " << rq.ranks.size() * rq.threads.size() << " point(s) x " << rq.repeats
      << " repeat(s); study " << p.study_dir << "\n";
  for (const auto& pt : p.points) {
    const bool over = static_cast<long>(pt.ranks) * pt.threads > cores;
    const auto argv = local_point_command(p, pt, mpiexec, exe);
    std::string line;
    for (const auto& x : argv) line += (line.empty() ? "" : " ") + shown(x);
    out << "\n== point " << pt.name << ": " << pt.ranks << " rank(s) x " << pt.threads
        << " thread(s)"
        << (over ? " [OVERSUBSCRIBED: " + std::to_string(pt.ranks * pt.threads) + " > " +
                       std::to_string(cores) + " cores]"
                 : "")
        << "\n   " << line << "\n";
    if (rq.dry_run) continue;
    out << std::flush;
    ProcessOptions po;
    po.capture = false;
    po.env = {{"OMP_NUM_THREADS", std::to_string(pt.threads)}};
    const auto t0 = std::chrono::steady_clock::now();
    const int code = run_process(argv, po).exit_code;
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const bool ok = code == 0 && fs::exists(fs::path(p.study_dir) / pt.name / "summary.json");
    ++res.points;
    if (!ok) {
      ++res.failed;
      err << "hpcml scale: point " << pt.name << " failed (exit code " << code
          << "); it is left out of the report\n";
    }
    study["points"].push_back({{"dir", pt.name},
                               {"ranks", pt.ranks},
                               {"threads", pt.threads},
                               {"repeat", pt.repeat},
                               {"local_batch", pt.local_batch},
                               {"oversubscribed", over},
                               {"exit_code", code},
                               {"wall_s", wall},
                               {"status", ok ? "ok" : "failed"}});
    write_json(json_path, study);
  }
  if (rq.dry_run) return res;
  HPCML_REQUIRE(res.failed < res.points, Error,
                "scale: every point failed; see the messages above (study " + p.study_dir + ")");
  return res;
}

SlurmStudyJobs plan_slurm_study(const StudyPlan& plan, const std::string& study_dir,
                                const ReportArgs& report_args) {
  const StudyRequest& rq = plan.request;
  // [slurm] and [site] of the config, read as `hpcml submit` reads them.
  JobConfig jc = load_job_config(rq.config, rq.sets, rq.site, rq.sites_dir, "scale: ");
  jc.doc.check_unknown(tables_left_to_others(ConfigReader::kScaleSlurm, jc.doc));
  const JobSpec& base = jc.job;
  const int cap = jc.doc.has("slurm.ntasks_per_node") ? base.ntasks_per_node : 0;

  SlurmStudyJobs s;
  s.study_dir = study_dir;
  if (auto why = check_field(Field::kPath, s.study_dir); !why.empty())
    HPCML_THROW(ConfigError, "scale --slurm: study directory '" + printable(s.study_dir) + "' " +
                                 why + " (allowed: " + std::string(describe(Field::kPath)) +
                                 "; choose another --out)");
  s.slurm_dir = s.study_dir + "/slurm";
  // The jobs read a copy, so editing the config while they queue changes nothing.
  s.config_copy = s.slurm_dir + "/config.toml";
  s.site = jc.site;

  ScriptPlan plan0;
  plan0.site = jc.site;
  plan0.source_config = rq.config;
  plan0.work_dir = fs::current_path().string();
  plan0.hpcml = !jc.site.hpcml.empty() ? jc.site.hpcml : self_executable();

  StudyPlan p = plan;
  p.study_dir = s.study_dir;
  for (const auto& pt : p.points) {
    SingleJob sj;
    sj.plan = plan0;
    sj.plan.job = base;
    const auto [nodes, per_node] = slurm_geometry(pt.ranks, cap, rq.config);
    sj.plan.job.nodes = nodes;
    sj.plan.job.ntasks_per_node = per_node;
    sj.plan.job.cpus_per_task = pt.threads;
    sj.plan.job.job_name = base.job_name + "-" + pt.name;
    sj.plan.run_dir = s.slurm_dir + "/" + pt.name;
    sj.args = point_args(p, pt, s.config_copy);
    s.points.push_back(std::move(sj));
  }
  SingleJob& rj = s.report;
  rj.plan = plan0;
  rj.plan.job = base;
  rj.plan.job.nodes = 1;
  rj.plan.job.ntasks_per_node = 1;
  rj.plan.job.cpus_per_task = 1;
  rj.plan.job.gpus_per_node = 0;
  rj.plan.job.gres.clear();
  rj.plan.job.launcher = "none";  // not an MPI program: runs in the batch shell
  rj.plan.job.job_name = base.job_name + "-report";
  rj.plan.run_dir = s.slurm_dir + "/report";
  rj.args = report_args(s.study_dir);
  rj.dependency_type = "afterany";
  return s;
}

SlurmStudyResult submit_study_slurm(const StudyPlan& plan, const ReportArgs& report_args,
                                    std::ostream& out, std::ostream& err) {
  const StudyRequest& rq = plan.request;
  SlurmStudyJobs s = plan_slurm_study(plan, plan.study_dir, report_args);
  require_no_study(s.study_dir);

  std::unique_ptr<Submitter> submitter;
  if (!rq.dry_run) {
    submitter = make_submitter(rq.submitter);
    const std::string dir = create_study_dir(plan);
    // A default directory taken by another study at the same second: plan for the new name.
    if (dir != s.study_dir) s = plan_slurm_study(plan, dir, report_args);
    std::error_code ec;
    fs::create_directories(s.slurm_dir, ec);
    HPCML_REQUIRE(!ec, ConfigError,
                  "scale: cannot create study directory '" + s.slurm_dir + "': " + ec.message());
    try {
      write_file_atomic(s.config_copy, read_text(rq.config));
    } catch (const Error& e) {
      HPCML_THROW(ConfigError,
                  "scale: cannot copy " + rq.config + " to " + s.config_copy + ": " + e.what());
    }
  }

  SlurmStudyResult res;
  res.study_dir = s.study_dir;
  nlohmann::json study =
      study_json(plan, s.study_dir,
                 std::string("slurm (") + (submitter ? submitter->name() : rq.submitter) + ")");
  study["site"] = s.site.name;
  const std::string json_path = s.study_dir + "/study.json";

  out << "hpcml scale: " << to_string(rq.mode) << " scaling of '" << plan.job << "' (" << rq.config
      << ") on Slurm, " << rq.ranks.size() * rq.threads.size() << " point(s) x " << rq.repeats
      << " repeat(s); study " << s.study_dir << (rq.dry_run ? " (dry run)" : "") << "\n";
  std::vector<std::string> ids;
  try {
    for (std::size_t i = 0; i < plan.points.size(); ++i) {
      const StudyPoint& pt = plan.points[i];
      const SingleJob& sj = s.points[i];
      const auto job = submit_single_job(sj, submitter.get());
      out << "\n== point " << pt.name << ": " << pt.ranks << " rank(s) x " << pt.threads
          << " thread(s) on " << sj.plan.job.nodes << " node(s)";
      if (rq.dry_run) {
        out << "\n# ---- " << job.script_path << "\n"
            << job.script_text << "# ---- " << sj.plan.run_dir
            << "/args (one hpcml argument per line)\n"
            << job.args_text;
        continue;
      }
      out << ": job " << job.job_id << "\n";
      ids.push_back(job.job_id);
      study["points"].push_back({{"dir", pt.name},
                                 {"ranks", pt.ranks},
                                 {"threads", pt.threads},
                                 {"repeat", pt.repeat},
                                 {"local_batch", pt.local_batch},
                                 {"nodes", sj.plan.job.nodes},
                                 {"ntasks_per_node", sj.plan.job.ntasks_per_node},
                                 {"cpus_per_task", pt.threads},
                                 {"job_id", job.job_id},
                                 {"slurm_dir", "slurm/" + pt.name}});
    }
    SingleJob& rj = s.report;
    rj.after = ids;
    if (rq.dry_run) {
      // Stand-in ids so that the dependency is shown and checked.
      for (std::size_t i = 0; i < plan.points.size(); ++i)
        rj.after.push_back(std::to_string(i + 1));
    } else {
      // Before the report job exists: it reads study.json when the points have ended.
      write_json(json_path, study);
    }
    const auto job = submit_single_job(rj, submitter.get());
    if (rq.dry_run) {
      out << "\n== report (after every point, " << job.dependency.substr(0, 8)
          << " on their job ids)\n# ---- " << job.script_path << "\n"
          << job.script_text << "# ---- " << rj.plan.run_dir
          << "/args (one hpcml argument per line)\n"
          << job.args_text;
      return res;
    }
    ids.push_back(job.job_id);
    study["report_job_id"] = job.job_id;
    write_json(json_path, study);
    out << "\n== report: job " << job.job_id << " (" << job.dependency.substr(0, 8)
        << " on the points)\n";
  } catch (...) {
    // All or nothing: a study missing points would fit the wrong curve.
    for (const auto& id : ids) run_process({"scancel", id});
    if (!ids.empty())
      err << "hpcml scale: submission failed; cancelled the " << ids.size()
          << " job(s) already submitted\n";
    throw;
  }
  res.report_job_id = ids.back();
  res.job_ids.assign(ids.begin(), ids.end() - 1);
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
  out << "\nsubmitted " << ids.size() << " job(s): " << list << "\n"
      << "follow:  squeue -j " << list << "\n"
      << "logs:    " << s.slurm_dir << "/<point>/slurm-<job id>.out\n"
      << "report:  " << s.study_dir << "/report/report.md once job " << ids.back()
      << " has ended (or run `hpcml report " << s.study_dir << "` yourself)\n";
  return res;
}

}  // namespace hpcml::launch

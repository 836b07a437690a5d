#include "hpcml/launch/submit.hpp"

#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/config_tables.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/run_dir.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/core/train_config.hpp"
#include "hpcml/launch/batch_script.hpp"
#include "hpcml/launch/job_spec.hpp"
#include "hpcml/launch/script_safety.hpp"
#include "hpcml/launch/site.hpp"
#include "hpcml/launch/submitter.hpp"
#include "hpcml/launch/sweep.hpp"
#include "validate.hpp"

namespace hpcml::launch {

namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) HPCML_THROW(ConfigError, path + ": cannot read the config file");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Small files of a run directory: whole or not at all (core's run_dir.hpp).
void write_text(const fs::path& path, const std::string& text, bool executable = false) {
  write_file_atomic(path.string(), text, executable);
}

std::string join_lines(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

// Everything decided for one config before anything is written.
struct Prepared {
  std::string config;
  std::string config_text;
  ScriptPlan plan;
  SweepSpec sweep;
  std::vector<Assignment> tasks;
  std::vector<ArrayChunk> chunks;
  std::string run_parent;  // absolute run.dir
  std::string run_name;
  long max_array_size = 0;
  std::string max_array_note;
};

// hpcml's argv for one run (written one per line to `args`).
std::vector<std::string> run_args(const Prepared& p, const std::string& dir,
                                  const std::vector<std::string>& sets, const Assignment& params) {
  std::vector<std::string> a;
  const std::string config_copy = p.plan.run_dir + "/config.toml";
  for (const auto& c : p.plan.job.command)
    a.push_back(replace_all(replace_all(c, "{config}", config_copy), "{run_dir}", dir));
  if (a.front() == "train") {
    // The trainer creates <run.dir>/<run.name>; it writes into this run's directory.
    // Last, so that neither --set nor the sweep can move it elsewhere.
    for (const auto& s : sets) a.insert(a.end(), {"--set", s});
    for (const auto& [k, v] : params) a.insert(a.end(), {"--set", k + "=" + v});
    a.insert(a.end(), {"--set", "run.dir=\"" + dir + "\"", "--set", "run.name=\"train\""});
  }
  for (const auto& x : a) {
    if (has_control_char(x))
      HPCML_THROW(ConfigError,
                  p.config + ": argument '" + printable(x) + "' contains a control character");
  }
  return a;
}

Prepared prepare(const SubmitOptions& o, const std::string& config,
                 const std::function<Submitter*()>& submitter) {
  Prepared p;
  p.config = config;
  p.config_text = read_text(config);
  JobConfig jc = load_job_config(config, o.sets, o.site, o.sites_dir);
  ConfigDoc& doc = jc.doc;
  const SiteProfile& site = jc.site;
  const JobSpec& job = jc.job;
  p.sweep = read_sweep_spec(doc);
  TrainConfig train = read_train_config(doc);
  std::vector<std::string> skip = tables_left_to_others(ConfigReader::kSubmit, doc);
  for (const auto& t : sweep_value_tables()) skip.push_back(t);
  doc.check_unknown(skip);

  p.tasks = expand_sweep(p.sweep);
  if (!p.tasks.empty() && job.command.front() != "train")
    doc.fail("sweep", "sweeps vary training keys: slurm.command must be \"train\"");
  // Each task's config must be valid too: catch a swept typo or a bad value now.
  for (std::size_t t = 0; t < p.tasks.size(); ++t) {
    try {
      ConfigDoc task_doc = doc;
      for (const auto& [k, v] : p.tasks[t]) task_doc.set(k + "=" + v);
      read_train_config(task_doc);
      task_doc.check_unknown(tables_left_to_others(ConfigReader::kSweepTask, task_doc));
    } catch (const ConfigError& e) {
      HPCML_THROW(ConfigError, "sweep task " + std::to_string(t) + ": " + e.what());
    }
  }

  p.run_parent = fs::absolute(train.run.dir).lexically_normal().string();
  while (p.run_parent.size() > 1 && p.run_parent.back() == '/') p.run_parent.pop_back();
  p.run_name = sanitize_file_name(train.run.name.empty()
                                      ? fs::path(config).stem().string() + "-" + utc_timestamp()
                                      : train.run.name);
  p.plan.job = job;
  p.plan.site = site;
  p.plan.source_config = config;
  p.plan.run_dir = p.run_parent + "/" + p.run_name;
  p.plan.work_dir = fs::current_path().string();
  if (auto why = check_field(Field::kPath, p.plan.work_dir); !why.empty())
    HPCML_THROW(ConfigError, "working directory '" + printable(p.plan.work_dir) + "' " + why +
                                 ": submit from a directory whose path has only " +
                                 std::string(describe(Field::kPath)));
  p.plan.hpcml = !o.hpcml.empty() ? o.hpcml : !site.hpcml.empty() ? site.hpcml : self_executable();
  if (auto why = check_field(Field::kPath, p.plan.run_dir); !why.empty())
    HPCML_THROW(ConfigError, config + ": run directory '" + printable(p.plan.run_dir) + "' " + why +
                                 " (allowed: " + std::string(describe(Field::kPath)) +
                                 "; set run.dir)");
  if (auto why = check_field(Field::kPath, p.plan.hpcml); !why.empty())
    HPCML_THROW(ConfigError, "hpcml executable path '" + printable(p.plan.hpcml) + "' " + why);

  if (!p.tasks.empty()) {
    p.plan.throttle = p.sweep.throttle;
    p.max_array_size = site.max_array_size;
    if (p.max_array_size > 0) {
      p.max_array_note = "site profile";
    } else {
      try {
        p.max_array_size = submitter()->max_array_size();
        p.max_array_note = submitter()->name();
      } catch (const Error& e) {
        if (!o.dry_run && !o.write_only) throw;
        p.max_array_size = 1001;
        p.max_array_note = "Slurm's default (cluster not reachable: " + std::string(e.what()) + ")";
      }
    }
    p.chunks = split_arrays(static_cast<int>(p.tasks.size()), p.max_array_size);
  }
  return p;
}

}  // namespace

JobConfig load_job_config(const std::string& config, const std::vector<std::string>& sets,
                          const std::string& site, const std::string& sites_dir,
                          const std::string& what) {
  JobConfig jc;
  jc.doc = ConfigDoc::load(config);
  for (const auto& s : sets) {
    if (has_control_char(s))
      HPCML_THROW(ConfigError, what + "--set '" + printable(s) + "': contains a control character");
    jc.doc.set(s);
  }
  // Site: the option, else the config's site.name, else built-in defaults.
  std::string site_name = jc.doc.get_string("site.name", "");
  if (!site.empty()) site_name = site;
  if (!site_name.empty())
    jc.site = load_site(site_name, sites_dir.empty() ? default_sites_dir() : sites_dir);
  apply_site_table(jc.doc, "site", jc.site);
  jc.job = read_job_spec(jc.doc, jc.site);
  return jc;
}

SingleJobResult submit_single_job(const SingleJob& job, Submitter* submitter) {
  SingleJobResult r;
  if (job.args.empty()) HPCML_THROW(ConfigError, "submit: a job needs at least the hpcml command");
  // batch_directives writes the name as given (read_job_spec checked the config's).
  if (auto why = check_field(Field::kJobName, job.plan.job.job_name); !why.empty())
    HPCML_THROW(ConfigError, "job name '" + printable(job.plan.job.job_name) + "' " + why +
                                 " (allowed: " + std::string(describe(Field::kJobName)) + ")");
  for (const auto& x : job.args) {
    if (has_control_char(x))
      HPCML_THROW(ConfigError, job.plan.run_dir + ": argument '" + printable(x) +
                                   "' contains a control character");
  }
  if (!job.after.empty()) {
    if (job.dependency_type != "afterok" && job.dependency_type != "afterany" &&
        job.dependency_type != "afternotok")
      HPCML_THROW(ConfigError, "submit: dependency type '" + printable(job.dependency_type) +
                                   "': expected afterok, afterany or afternotok");
    r.dependency = job.dependency_type;
    for (const auto& id : job.after) {
      if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
        HPCML_THROW(ConfigError,
                    "submit: dependency on job id '" + printable(id) + "': expected digits");
      r.dependency += ":" + id;
    }
  }
  // Validates run_dir, work_dir, the executable and every directive.
  r.script_text = render_batch_script(job.plan);
  r.args_text = join_lines(job.args);
  const fs::path dir = job.plan.run_dir;
  r.script_path = (dir / "job.sbatch").string();
  if (!submitter) return r;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    HPCML_THROW(ConfigError, "cannot create run directory '" + dir.string() + "': " + ec.message());
  write_text(dir / "args", r.args_text);
  write_text(dir / "job.sbatch", r.script_text, true);
  SubmitRequest req{&job.plan, r.script_path, r.script_text, r.dependency, job.hold};
  r.job_id = submitter->submit(req);
  write_text(dir / "jobs.tsv", r.job_id + "\tjob.sbatch\n");
  return r;
}

std::vector<SubmittedJob> submit_configs(const SubmitOptions& o, std::ostream& out,
                                         std::ostream& log) {
  if (o.configs.empty()) HPCML_THROW(ConfigError, "submit: no config given");
  // Created on first use: a dry run may not need Slurm at all.
  std::unique_ptr<Submitter> sub;
  auto submitter = [&]() -> Submitter* {
    if (!sub) sub = make_submitter(o.submitter);
    return sub.get();
  };
  // Validate every config before submitting any: a chain is all or nothing.
  std::vector<Prepared> prepared;
  for (const auto& c : o.configs) prepared.push_back(prepare(o, c, submitter));

  std::vector<SubmittedJob> result;
  std::vector<std::string> submitted_ids;
  for (auto& p : prepared) {
    SubmittedJob sj;
    sj.config = p.config;
    sj.sweep = !p.tasks.empty();
    sj.tasks = sj.sweep ? static_cast<int>(p.tasks.size()) : 1;
    std::string dependency;
    if (!p.plan.job.dependency.empty() && !submitted_ids.empty()) {
      dependency = p.plan.job.dependency;
      for (const auto& id : submitted_ids) dependency += ":" + id;
    }
    if (!o.dry_run) p.plan.run_dir = create_unique_dir(p.run_parent, p.run_name, "run.dir");
    sj.run_dir = p.plan.run_dir;

    // Scripts (one per array chunk for sweeps).
    std::vector<std::pair<std::string, std::string>> scripts;  // file name, text
    if (!sj.sweep) {
      scripts.emplace_back("job.sbatch", render_batch_script(p.plan));
    } else {
      for (std::size_t c = 0; c < p.chunks.size(); ++c) {
        ScriptPlan plan = p.plan;
        plan.array_offset = p.chunks[c].offset;
        plan.array_count = p.chunks[c].count;
        plan.job.job_name = p.plan.job.job_name;
        scripts.emplace_back(
            p.chunks.size() == 1 ? "sweep.sbatch" : "sweep-" + std::to_string(c) + ".sbatch",
            render_batch_script(plan));
      }
    }

    if (o.dry_run) {
      out << "# ==== " << p.config << " -> " << p.plan.run_dir
          << (dependency.empty() ? "" : " (after its predecessors: " + p.plan.job.dependency + ")")
          << "\n";
      for (const auto& [name, text] : scripts) out << "# ---- " << name << "\n" << text;
      if (!sj.sweep) {
        out << "# ---- args (one hpcml argument per line)\n"
            << join_lines(run_args(p, p.plan.run_dir, o.sets, {}));
      } else {
        out << "# ---- " << p.tasks.size() << " tasks in " << p.chunks.size()
            << " array(s), MaxArraySize " << p.max_array_size << " (" << p.max_array_note << ")\n";
        for (std::size_t t = 0; t < p.tasks.size(); ++t) {
          out << "# " << task_name(static_cast<int>(t)) << ":";
          for (const auto& [k, v] : p.tasks[t]) out << " " << k << "=" << v;
          out << "\n";
        }
      }
      for (const auto& [name, text] : scripts) sj.scripts.push_back(p.plan.run_dir + "/" + name);
      result.push_back(std::move(sj));
      continue;
    }

    const fs::path dir = p.plan.run_dir;
    write_text(dir / "config.toml", p.config_text);
    if (!sj.sweep) {
      write_text(dir / "args", join_lines(run_args(p, p.plan.run_dir, o.sets, {})));
    } else {
      write_manifest((dir / "manifest.tsv").string(), p.tasks);
      for (std::size_t t = 0; t < p.tasks.size(); ++t) {
        const fs::path td = dir / task_name(static_cast<int>(t));
        fs::create_directory(td);
        write_text(td / "args", join_lines(run_args(p, td.string(), o.sets, p.tasks[t])));
      }
    }
    nlohmann::json jobs = nlohmann::json::array();
    std::string jobs_tsv;
    for (std::size_t c = 0; c < scripts.size(); ++c) {
      const auto& [name, text] = scripts[c];
      write_text(dir / name, text, true);
      ScriptPlan plan = p.plan;
      if (sj.sweep) {
        plan.array_offset = p.chunks[c].offset;
        plan.array_count = p.chunks[c].count;
      }
      SubmitRequest req{&plan, (dir / name).string(), text, dependency, o.hold};
      sj.scripts.push_back(req.script_path);
      if (o.write_only) {
        log << "hpcml: wrote " << req.script_path << " (not submitted)\n";
        continue;
      }
      std::string id = submitter()->submit(req);
      sj.job_ids.push_back(id);
      jobs.push_back({{"job_id", id},
                      {"script", name},
                      {"offset", sj.sweep ? p.chunks[c].offset : 0},
                      {"count", sj.sweep ? p.chunks[c].count : 0}});
      jobs_tsv += id + "\t" + name + "\n";
      out << id << "\n";
      log << "hpcml: submitted " << name << " as job " << id << " via " << submitter()->name()
          << (dependency.empty() ? "" : " (dependency " + dependency + ")") << "; run directory "
          << p.plan.run_dir << "\n";
    }
    write_text(dir / "jobs.tsv", jobs_tsv);
    if (sj.sweep) {
      nlohmann::json meta{{"config", p.config},
                          {"mode", p.sweep.mode},
                          {"tasks", p.tasks.size()},
                          {"metric", p.sweep.metric},
                          {"goal", p.sweep.goal},
                          {"throttle", p.sweep.throttle},
                          {"max_array_size", p.max_array_size},
                          {"jobs", jobs}};
      write_text(dir / "sweep.json", meta.dump(2) + "\n");
    }
    for (const auto& id : sj.job_ids) submitted_ids.push_back(id);
    result.push_back(std::move(sj));
  }
  return result;
}

}  // namespace hpcml::launch

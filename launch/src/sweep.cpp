#include "hpcml/launch/sweep.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <toml.hpp>

#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/random.hpp"
#include "hpcml/core/run_dir.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/launch/script_safety.hpp"

namespace hpcml::launch {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxTasks = 100000;

std::string render_value(const toml::value& v) {
  std::ostringstream os;
  os << v;
  std::string s = os.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Rejects control characters anywhere inside a value (also escaped ones in TOML strings).
void check_value(const ConfigDoc& doc, const std::string& key, const toml::value& v) {
  if (v.is_string()) {
    const std::string& s = v.as_string().str;
    if (has_control_char(s))
      doc.fail(key, "value '" + printable(s) + "' contains a control character");
  } else if (v.is_array()) {
    for (const auto& e : v.as_array()) check_value(doc, key, e);
  } else if (v.is_table()) {
    for (const auto& [k, e] : v.as_table()) check_value(doc, key, e);
  }
}

toml::value parse_raw(const ConfigDoc& doc, const std::string& key) {
  auto raw = doc.raw(key);
  if (!raw) doc.fail(key, "missing");
  // raw() renders a string with a newline as a multi-line TOML string: refuse it
  // here, before its line breaks are lost.
  if (raw->find("\"\"\"") != std::string::npos || raw->find("'''") != std::string::npos)
    doc.fail(key, "sweep values cannot contain newlines or other control characters");
  try {
    std::istringstream in("v = " + *raw);
    auto data = toml::parse(in, key);
    return toml::find(data, "v");
  } catch (const std::exception&) {
    doc.fail(key, "cannot read the sweep values back (control characters in a string?)");
  }
}

std::string fmt_double(double x) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), x);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string last_lines(const fs::path& p, int n) {
  std::ifstream f(p);
  if (!f) return {};
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(f, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    lines.push_back(line);
    if (lines.size() > static_cast<std::size_t>(n)) lines.erase(lines.begin());
  }
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : " | ") + l;
  return out;
}

// The trainer writes <task>/<run name>/summary.json (a requeued run may use
// <name>-2, ...): take the newest summary.json up to two levels down.
std::string find_summary(const fs::path& task_dir) {
  std::string best;
  fs::file_time_type best_t{};
  std::error_code ec;
  if (fs::exists(task_dir / "summary.json")) return (task_dir / "summary.json").string();
  for (const auto& e : fs::directory_iterator(task_dir, ec)) {
    if (!e.is_directory()) continue;
    fs::path s = e.path() / "summary.json";
    if (fs::exists(s)) {
      auto t = fs::last_write_time(s, ec);
      if (best.empty() || t > best_t) {
        best = s.string();
        best_t = t;
      }
    }
  }
  return best;
}

}  // namespace

const std::vector<std::string>& sweep_value_tables() {
  static const std::vector<std::string> t{"sweep.params", "sweep.uniform", "sweep.log_uniform"};
  return t;
}

SweepSpec read_sweep_spec(ConfigDoc& doc) {
  SweepSpec s;
  if (doc.leaf_keys("sweep").empty()) return s;
  s.mode = doc.get_choice("sweep.mode", s.mode, {"grid", "zip", "random"});
  s.throttle = static_cast<int>(doc.get_int("sweep.throttle", 0, 0, 1000000));
  s.samples = static_cast<int>(doc.get_int("sweep.samples", 0, 0, kMaxTasks));
  s.seed = static_cast<std::uint64_t>(doc.get_int("sweep.seed", 1, 0));
  s.metric = doc.get_string("sweep.metric", s.metric);
  if (auto why = check_field(Field::kJobName, s.metric); !why.empty())
    doc.fail("sweep.metric", "'" + printable(s.metric) + "' " + why);
  s.goal = doc.get_choice("sweep.goal", s.goal, {"max", "min"});

  const std::string pp = "sweep.params.";
  for (const auto& key : doc.leaf_keys("sweep.params")) {
    toml::value v = parse_raw(doc, key);
    if (!v.is_array() || v.as_array().empty())
      doc.fail(key, "expected a non-empty list of values for the sweep");
    check_value(doc, key, v);
    SweepSpec::Param p{key.substr(pp.size()), {}};
    for (const auto& e : v.as_array()) {
      if (e.is_table()) doc.fail(key, "sweep values cannot be tables");
      p.values.push_back(render_value(e));
    }
    s.params.push_back(std::move(p));
  }
  for (const char* table : {"sweep.uniform", "sweep.log_uniform"}) {
    const std::string prefix = std::string(table) + ".";
    for (const auto& key : doc.leaf_keys(table)) {
      if (s.mode != "random") doc.fail(key, "ranges need sweep.mode = \"random\"");
      toml::value v = parse_raw(doc, key);
      if (!v.is_array() || v.as_array().size() != 2 ||
          !(v.as_array()[0].is_integer() || v.as_array()[0].is_floating()) ||
          !(v.as_array()[1].is_integer() || v.as_array()[1].is_floating()))
        doc.fail(key, "expected [low, high] numbers");
      SweepSpec::Range r;
      r.key = key.substr(prefix.size());
      auto num = [](const toml::value& x) {
        return x.is_integer() ? static_cast<double>(x.as_integer()) : x.as_floating();
      };
      r.low = num(v.as_array()[0]);
      r.high = num(v.as_array()[1]);
      r.integer = v.as_array()[0].is_integer() && v.as_array()[1].is_integer();
      r.log = std::string(table) == "sweep.log_uniform";
      if (!(r.low <= r.high)) doc.fail(key, "expected low <= high");
      if (r.log && r.low <= 0) doc.fail(key, "log_uniform needs low > 0");
      s.ranges.push_back(r);
    }
  }
  std::set<std::string> seen;
  for (const auto& p : s.params) seen.insert(p.key);
  for (const auto& r : s.ranges) {
    if (!seen.insert(r.key).second)
      doc.fail("sweep", "key '" + printable(r.key) + "' is swept twice");
  }
  for (const auto& k : seen) {
    if (k.rfind("slurm.", 0) == 0 || k.rfind("sweep.", 0) == 0 || k.rfind("site.", 0) == 0)
      doc.fail("sweep.params." + k, "the sweep can vary training keys, not [slurm]/[sweep]/[site]");
  }
  if (s.empty()) {
    doc.fail("sweep", "has no parameters (add [sweep.params] lists)");
  }
  std::size_t n = 0;
  if (s.mode == "grid") {
    n = 1;
    for (const auto& p : s.params) {
      n *= p.values.size();
      if (n > kMaxTasks) doc.fail("sweep.params", "the grid has more than 100000 tasks");
    }
  } else if (s.mode == "zip") {
    n = s.params.front().values.size();
    for (const auto& p : s.params) {
      if (p.values.size() != n)
        doc.fail("sweep.params." + p.key,
                 "zip needs lists of equal length: " + std::to_string(p.values.size()) +
                     " values, the first list has " + std::to_string(n));
    }
  } else if (s.samples == 0) {
    doc.fail("sweep.samples", "random mode needs samples >= 1");
  }
  return s;
}

std::vector<Assignment> expand_sweep(const SweepSpec& s) {
  std::vector<Assignment> tasks;
  if (s.empty()) return tasks;
  if (s.mode == "grid") {
    std::size_t n = 1;
    for (const auto& p : s.params) n *= p.values.size();
    for (std::size_t t = 0; t < n; ++t) {
      Assignment a;
      // The last parameter varies fastest.
      std::size_t rest = t;
      std::vector<std::size_t> idx(s.params.size());
      for (std::size_t i = s.params.size(); i-- > 0;) {
        idx[i] = rest % s.params[i].values.size();
        rest /= s.params[i].values.size();
      }
      for (std::size_t i = 0; i < s.params.size(); ++i)
        a.emplace_back(s.params[i].key, s.params[i].values[idx[i]]);
      tasks.push_back(std::move(a));
    }
  } else if (s.mode == "zip") {
    for (std::size_t t = 0; t < s.params.front().values.size(); ++t) {
      Assignment a;
      for (const auto& p : s.params) a.emplace_back(p.key, p.values[t]);
      tasks.push_back(std::move(a));
    }
  } else {
    SplitMix64 rng(s.seed);  // portable: a seed gives the same sweep everywhere
    for (int t = 0; t < s.samples; ++t) {
      Assignment a;
      for (const auto& p : s.params) a.emplace_back(p.key, p.values[rng.next() % p.values.size()]);
      for (const auto& r : s.ranges) {
        double u = rng.uniform();
        if (r.integer) {
          auto lo = static_cast<long long>(r.low), hi = static_cast<long long>(r.high);
          long long x = r.log ? static_cast<long long>(std::llround(std::exp(
                                    std::log(r.low) + u * (std::log(r.high) - std::log(r.low)))))
                              : lo + static_cast<long long>(
                                         rng.next() % static_cast<std::uint64_t>(hi - lo + 1));
          a.emplace_back(r.key, std::to_string(std::clamp(x, lo, hi)));
        } else {
          double x = r.log ? std::exp(std::log(r.low) + u * (std::log(r.high) - std::log(r.low)))
                           : r.low + u * (r.high - r.low);
          a.emplace_back(r.key, fmt_double(x));
        }
      }
      std::sort(a.begin(), a.end());
      tasks.push_back(std::move(a));
    }
  }
  return tasks;
}

std::vector<ArrayChunk> split_arrays(int tasks, long max_array_size) {
  std::vector<ArrayChunk> out;
  const long per = max_array_size > 0 ? max_array_size : tasks;
  for (int off = 0; off < tasks; off += static_cast<int>(per)) {
    out.push_back({off, static_cast<int>(std::min<long>(per, tasks - off))});
  }
  return out;
}

std::string task_name(int id) {
  std::ostringstream os;
  os << "task-" << std::setw(4) << std::setfill('0') << id;
  return os.str();
}

void write_manifest(const std::string& path, const std::vector<Assignment>& tasks) {
  std::ostringstream f;
  for (std::size_t t = 0; t < tasks.size(); ++t) {
    f << t << '\t' << task_name(static_cast<int>(t));
    for (const auto& [k, v] : tasks[t]) f << '\t' << k << '=' << v;
    f << '\n';
  }
  write_file_atomic(path, f.str());
}

std::vector<ManifestTask> read_manifest(const std::string& path) {
  std::ifstream f(path);
  if (!f) HPCML_THROW(DataError, path + ": cannot read the sweep manifest");
  std::vector<ManifestTask> out;
  std::string line;
  int lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty()) continue;
    auto cols = split(line, '\t');
    ManifestTask t;
    try {
      t.id = std::stoi(cols.at(0));
      t.name = cols.at(1);
    } catch (const std::exception&) {
      HPCML_THROW(DataError, path + ":" + std::to_string(lineno) + ": malformed manifest line");
    }
    for (std::size_t i = 2; i < cols.size(); ++i) {
      auto eq = cols[i].find('=');
      if (eq == std::string::npos)
        HPCML_THROW(DataError, path + ":" + std::to_string(lineno) + ": parameter without '='");
      t.params.emplace_back(cols[i].substr(0, eq), cols[i].substr(eq + 1));
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<TaskStatus> sweep_status(const std::string& sweep_dir,
                                     const std::map<int, QueueState>& queue) {
  std::vector<TaskStatus> out;
  for (auto& t : read_manifest(sweep_dir + "/manifest.tsv")) {
    TaskStatus st;
    st.task = t;
    const fs::path dir = fs::path(sweep_dir) / t.name;
    st.summary = find_summary(dir);
    std::string state_line = read_file(dir / "state");
    auto words = split(state_line.substr(0, state_line.find('\n')), ' ');
    auto q = queue.find(t.id);
    const bool live = q != queue.end();
    if (live && q->second.state != "COMPLETED" && q->second.state != "FAILED") {
      st.state = q->second.state;
      st.reason = q->second.reason;
    } else if (!words.empty() && words[0] == "exited" && words.size() > 1) {
      st.exit_code = std::atoi(words[1].c_str());
      if (st.exit_code == 0 && !st.summary.empty()) {
        st.state = "COMPLETED";
      } else {
        st.state = "FAILED";
        st.reason = st.exit_code == 0 ? "exit 0 but no summary.json"
                                      : "exit code " + std::to_string(st.exit_code);
        std::string tail = last_lines(dir / "job.log", 2);
        if (!tail.empty()) st.reason += ": " + tail;
      }
    } else if (!words.empty() && (words[0] == "running" || words[0] == "requeued")) {
      st.state = "LOST";
      st.reason = "started (" + words[0] +
                  ") but not in the queue and never finished: killed (time limit, "
                  "cancelled, node failure?)";
      std::string tail = last_lines(dir / "job.log", 2);
      if (!tail.empty()) st.reason += ": " + tail;
    } else {
      st.state = live ? q->second.state : "NOT_STARTED";
      st.reason = live ? q->second.reason : "no trace of it running; cancelled before it started?";
    }
    out.push_back(std::move(st));
  }
  return out;
}

std::string collect_sweep(const std::string& sweep_dir, const std::vector<TaskStatus>& status,
                          const std::string& metric_in, const std::string& goal_in) {
  std::string metric = metric_in, goal = goal_in;
  nlohmann::json meta;
  {
    std::ifstream f(sweep_dir + "/sweep.json");
    if (f) {
      try {
        meta = nlohmann::json::parse(f);
      } catch (const std::exception&) {
        HPCML_THROW(DataError, sweep_dir + "/sweep.json: not valid JSON");
      }
    }
  }
  if (metric.empty()) metric = meta.value("metric", std::string("final_test_acc"));
  if (goal.empty()) goal = meta.value("goal", std::string("max"));
  if (goal != "max" && goal != "min")
    HPCML_THROW(ConfigError, "goal must be max or min, got '" + printable(goal) + "'");

  std::vector<std::string> param_keys;
  for (const auto& s : status)
    for (const auto& [k, v] : s.task.params)
      if (std::find(param_keys.begin(), param_keys.end(), k) == param_keys.end())
        param_keys.push_back(k);

  struct Row {
    const TaskStatus* st;
    std::map<std::string, double> m;
  };
  std::vector<Row> rows;
  std::set<std::string> metric_keys;
  std::vector<std::pair<const TaskStatus*, std::string>> failed;
  for (const auto& s : status) {
    if (s.state != "COMPLETED") {
      failed.emplace_back(&s, s.reason);
      continue;
    }
    Row r{&s, {}};
    try {
      std::ifstream f(s.summary);
      auto j = nlohmann::json::parse(f);
      for (auto it = j.begin(); it != j.end(); ++it)
        if (it.value().is_number()) r.m[it.key()] = it.value().get<double>();
    } catch (const std::exception&) {
      failed.emplace_back(&s, s.summary + " is not valid JSON");
      continue;
    }
    if (!r.m.count(metric)) {
      failed.emplace_back(&s, s.summary + " has no metric '" + printable(metric) + "'");
      continue;
    }
    for (const auto& [k, v] : r.m) metric_keys.insert(k);
    rows.push_back(std::move(r));
  }
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    return goal == "max" ? a.m.at(metric) > b.m.at(metric) : a.m.at(metric) < b.m.at(metric);
  });
  std::vector<std::string> cols{metric};
  for (const auto& k : metric_keys)
    if (k != metric) cols.push_back(k);

  auto num = [](double x) {
    std::ostringstream os;
    os << std::setprecision(6) << x;
    return os.str();
  };
  auto csv_field = [](const std::string& v) {
    if (v.find_first_of(",\"") == std::string::npos) return v;
    std::string o = "\"";
    for (char c : v) o += c == '"' ? std::string("\"\"") : std::string(1, c);
    return o + "\"";
  };
  auto param_of = [](const TaskStatus& s, const std::string& k) {
    for (const auto& [kk, v] : s.task.params)
      if (kk == k) return v;
    return std::string();
  };

  std::ostringstream csv;
  csv << "task";
  for (const auto& k : param_keys) csv << "," << csv_field(k);
  for (const auto& c : cols) csv << "," << csv_field(c);
  csv << ",state\n";
  for (const auto& r : rows) {
    csv << r.st->task.id;
    for (const auto& k : param_keys) csv << "," << csv_field(param_of(*r.st, k));
    for (const auto& c : cols) csv << "," << (r.m.count(c) ? num(r.m.at(c)) : "");
    csv << ",COMPLETED\n";
  }
  for (const auto& [s, why] : failed) {
    csv << s->task.id;
    for (const auto& k : param_keys) csv << "," << csv_field(param_of(*s, k));
    for (std::size_t c = 0; c < cols.size(); ++c) csv << ",";
    csv << "," << s->state << "\n";
  }
  write_file_atomic(sweep_dir + "/results.csv", csv.str());

  auto md_cell = [](std::string v) {
    std::string o;
    for (char c : v) o += c == '|' ? std::string("\\|") : std::string(1, c);
    return o;
  };
  std::ostringstream md;
  md << "# Sweep results: " << sweep_dir << "\n\n";
  md << rows.size() << " of " << status.size() << " tasks completed; sorted by `" << metric << "` ("
     << (goal == "max" ? "highest" : "lowest") << " first).\n\n";
  if (!rows.empty()) {
    md << "Best: task " << rows.front().st->task.id << " (" << rows.front().st->task.name << ")";
    for (const auto& [k, v] : rows.front().st->task.params) md << ", " << k << " = " << md_cell(v);
    md << ": " << metric << " = " << num(rows.front().m.at(metric)) << "\n\n";
    md << "| task |";
    for (const auto& k : param_keys) md << " " << md_cell(k) << " |";
    for (const auto& c : cols) md << " " << md_cell(c) << " |";
    md << "\n|---|";
    for (std::size_t i = 0; i < param_keys.size() + cols.size(); ++i) md << "---|";
    md << "\n";
    for (const auto& r : rows) {
      md << "| " << r.st->task.id << " |";
      for (const auto& k : param_keys) md << " " << md_cell(param_of(*r.st, k)) << " |";
      for (const auto& c : cols) md << " " << (r.m.count(c) ? num(r.m.at(c)) : "") << " |";
      md << "\n";
    }
  }
  if (!failed.empty()) {
    md << "\n## Tasks without results\n\n";
    for (const auto& [s, why] : failed)
      md << "- task " << s->task.id << " (" << s->task.name << "): " << s->state
         << (why.empty() ? "" : ": " + md_cell(why)) << "\n";
  }
  write_file_atomic(sweep_dir + "/results.md", md.str());
  return md.str();
}

}  // namespace hpcml::launch

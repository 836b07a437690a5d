#include "hpcml/analysis/inputs.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "hpcml/core/error.hpp"

namespace hpcml::analysis {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

bool parse_double(const std::string& text, double* out) {
  const std::string t = trim(text);
  if (t.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

// Canonical column name for the accepted spellings; "" when unknown.
std::string canonical(const std::string& header) {
  static const std::map<std::string, std::string> names = {
      {"study", "study"},
      {"mode", "mode"},
      {"n", "n"},
      {"ranks", "ranks"},
      {"threads", "threads"},
      {"threads_per_rank", "threads"},
      {"nodes", "nodes"},
      {"time_s", "time_s"},
      {"time", "time_s"},
      {"step_s", "time_s"},
      {"seconds", "time_s"},
      {"throughput", "throughput"},
      {"samples_per_s", "throughput"},
      {"rate", "throughput"},
      {"compute_s", "compute_s"},
      {"comm_s", "comm_exposed_s"},
      {"comm_exposed_s", "comm_exposed_s"},
      {"comm_overlapped_s", "comm_overlapped_s"},
      {"io_s", "io_s"},
      {"idle_s", "idle_s"},
      {"oversubscribed", "oversubscribed"}};
  const auto it = names.find(lower(trim(header)));
  return it == names.end() ? "" : it->second;
}

double json_number(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return kUnknown;
  return it->get<double>();
}

}  // namespace

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields;
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  fields.push_back(trim(cur));
  return fields;
}

std::vector<Study> read_csv(const std::string& path, Mode default_mode) {
  std::ifstream in(path);
  HPCML_REQUIRE(in, DataError, path + ": cannot open the CSV file");
  std::string line;
  int lineno = 0;
  std::vector<std::string> header;
  std::map<std::string, std::size_t> col;
  std::vector<std::string> ignored;
  std::vector<std::string> study_order;
  std::map<std::string, Study> studies;
  std::map<std::pair<std::string, std::pair<int, int>>, std::size_t> point_index;
  int header_line = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    const auto fields = split_csv_line(t);
    const std::string where = path + ":" + std::to_string(lineno);
    if (header.empty()) {
      header = fields;
      header_line = lineno;
      for (std::size_t i = 0; i < fields.size(); ++i) {
        const std::string c = canonical(fields[i]);
        if (c.empty()) {
          ignored.push_back(fields[i]);
          continue;
        }
        HPCML_REQUIRE(!col.count(c), DataError,
                      where + ": column '" + c + "' appears twice (as '" + header[col[c]] +
                          "' and '" + fields[i] + "')");
        col[c] = i;
      }
      HPCML_REQUIRE(col.count("n") || col.count("ranks"), DataError,
                    where + ": missing column: need 'n' or 'ranks' (header is '" + t + "')");
      HPCML_REQUIRE(
          col.count("time_s") || col.count("throughput"), DataError,
          where + ": missing column: need 'time_s' or 'throughput' (header is '" + t + "')");
      continue;
    }
    HPCML_REQUIRE(fields.size() == header.size(), DataError,
                  where + ": expected " + std::to_string(header.size()) +
                      " fields as in the header, got " + std::to_string(fields.size()));
    auto cell = [&](const std::string& name) -> std::string {
      const auto it = col.find(name);
      return it == col.end() ? std::string() : fields[it->second];
    };
    auto number = [&](const std::string& name, bool required, double min_exclusive) -> double {
      const std::string text = cell(name);
      if (text.empty() && !col.count(name)) return kUnknown;
      if (text.empty()) {
        HPCML_REQUIRE(!required, DataError,
                      where + ": column '" + header[col[name]] + "' is empty");
        return kUnknown;
      }
      double v = 0;
      HPCML_REQUIRE(
          parse_double(text, &v), DataError,
          where + ": column '" + header[col[name]] + "': expected a number, got '" + text + "'");
      HPCML_REQUIRE(v > min_exclusive, DataError,
                    where + ": column '" + header[col[name]] + "': expected a value > " +
                        (min_exclusive == 0 ? std::string("0") : std::string("-1")) + ", got '" +
                        text + "'");
      return v;
    };
    auto integer = [&](const std::string& name) -> int {
      const double v = number(name, true, 0);
      if (!std::isfinite(v)) return 0;
      HPCML_REQUIRE(v == std::floor(v) && v <= 1e9, DataError,
                    where + ": column '" + header[col[name]] +
                        "': expected a whole number >= 1, got '" + cell(name) + "'");
      return static_cast<int>(v);
    };

    Point pt;
    const int n = col.count("n") ? integer("n") : 0;
    const int ranks = col.count("ranks") ? integer("ranks") : 0;
    const int threads = col.count("threads") ? integer("threads") : 0;
    if (ranks > 0) {
      pt.ranks = ranks;
      pt.threads = threads > 0 ? threads : 1;
      HPCML_REQUIRE(n == 0 || n == pt.ranks * pt.threads, DataError,
                    where + ": n=" + std::to_string(n) +
                        " but ranks x threads = " + std::to_string(pt.ranks * pt.threads));
    } else {
      pt.threads = threads > 0 ? threads : 1;
      HPCML_REQUIRE(n % pt.threads == 0, DataError,
                    where + ": n=" + std::to_string(n) +
                        " is not a multiple of threads=" + std::to_string(pt.threads));
      pt.ranks = n / pt.threads;
    }
    if (col.count("nodes")) pt.nodes = integer("nodes");

    Sample s;
    s.source = where;
    s.step_s = col.count("time_s") ? number("time_s", !col.count("throughput"), 0) : kUnknown;
    s.throughput =
        col.count("throughput") ? number("throughput", !col.count("time_s"), 0) : kUnknown;
    HPCML_REQUIRE(std::isfinite(s.step_s) || std::isfinite(s.throughput), DataError,
                  where + ": neither time_s nor throughput is given");
    s.split.compute_s = number("compute_s", false, -1e-300);
    s.split.comm_exposed_s = number("comm_exposed_s", false, -1e-300);
    s.split.comm_overlapped_s = number("comm_overlapped_s", false, -1e-300);
    s.split.io_s = number("io_s", false, -1e-300);
    s.split.idle_s = number("idle_s", false, -1e-300);
    if (col.count("oversubscribed")) {
      const std::string o = lower(cell("oversubscribed"));
      HPCML_REQUIRE(
          o == "" || o == "0" || o == "1" || o == "true" || o == "false" || o == "yes" || o == "no",
          DataError, where + ": column 'oversubscribed': expected true/false/1/0, got '" + o + "'");
      s.oversubscribed = o == "1" || o == "true" || o == "yes";
    }

    const std::string name =
        col.count("study") && !cell("study").empty() ? cell("study") : "scaling";
    if (!studies.count(name)) {
      study_order.push_back(name);
      Study st;
      st.name = name;
      st.mode = default_mode;
      st.notes.push_back("source: " + path);
      studies[name] = st;
    }
    Study& st = studies[name];
    if (col.count("mode") && !cell("mode").empty()) {
      const Mode m = parse_mode(lower(cell("mode")), where + ": column 'mode'");
      HPCML_REQUIRE(st.points.empty() || m == st.mode, DataError,
                    where + ": study '" + name + "' mixes strong and weak rows");
      st.mode = m;
    }
    const auto key = std::make_pair(name, std::make_pair(pt.ranks, pt.threads));
    if (!point_index.count(key)) {
      point_index[key] = st.points.size();
      st.points.push_back(pt);
    }
    Point& target = st.points[point_index[key]];
    HPCML_REQUIRE(target.nodes == pt.nodes, DataError,
                  where + ": repeat of N=" + std::to_string(pt.ranks * pt.threads) +
                      " gives nodes=" + std::to_string(pt.nodes) + ", earlier rows said " +
                      std::to_string(target.nodes));
    target.samples.push_back(s);
  }
  HPCML_REQUIRE(!header.empty(), DataError, path + ": the CSV file is empty (no header row)");
  HPCML_REQUIRE(
      !study_order.empty(), DataError,
      path + ":" + std::to_string(header_line) + ": the CSV file has a header but no data rows");
  std::vector<Study> out;
  for (const auto& name : study_order) {
    Study st = studies[name];
    if (!ignored.empty()) {
      std::string list;
      for (const auto& c : ignored) list += (list.empty() ? "" : ", ") + c;
      st.notes.push_back("ignored columns: " + list);
    }
    out.push_back(st);
  }
  return out;
}

RunSummary read_run_summary(const std::string& dir) {
  const std::string path = (fs::path(dir) / "summary.json").string();
  std::ifstream in(path);
  HPCML_REQUIRE(in, DataError, path + ": cannot open (not a finished run directory?)");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    HPCML_THROW(DataError, path + ": not valid JSON: " + std::string(e.what()));
  }
  HPCML_REQUIRE(j.is_object(), DataError, path + ": expected a JSON object");
  RunSummary rs;
  rs.dir = dir;
  const double ranks = json_number(j, "ranks");
  HPCML_REQUIRE(std::isfinite(ranks) && ranks >= 1 && ranks == std::floor(ranks), DataError,
                path + ": key 'ranks': expected a whole number >= 1");
  rs.point.ranks = static_cast<int>(ranks);
  const double threads = json_number(j, "threads_per_rank");
  rs.point.threads = std::isfinite(threads) && threads >= 1 ? static_cast<int>(threads) : 1;
  const double nodes = json_number(j, "nodes");
  rs.point.nodes = std::isfinite(nodes) && nodes >= 1 ? static_cast<int>(nodes) : 1;
  Sample s;
  s.source = dir;
  s.step_s = json_number(j, "step_s_median");
  rs.global_batch = json_number(j, "global_batch");
  rs.grad_bytes = json_number(j, "grad_bytes");
  // Training runs may report the parameter count instead: fp32 gradients.
  if (!std::isfinite(rs.grad_bytes) && std::isfinite(json_number(j, "parameters")))
    rs.grad_bytes = 4.0 * json_number(j, "parameters");
  // Steady-state throughput from the median step (epoch-level samples_per_s
  // includes evaluation and start-up); fall back to it when the batch is unknown.
  if (std::isfinite(s.step_s) && s.step_s > 0 && std::isfinite(rs.global_batch) &&
      rs.global_batch > 0)
    s.throughput = rs.global_batch / s.step_s;
  else
    s.throughput = json_number(j, "samples_per_s");
  HPCML_REQUIRE((std::isfinite(s.step_s) && s.step_s > 0) ||
                    (std::isfinite(s.throughput) && s.throughput > 0),
                DataError, path + ": needs 'step_s_median' > 0 or 'samples_per_s' > 0");
  if (!(s.step_s > 0)) s.step_s = kUnknown;
  if (!(s.throughput > 0)) s.throughput = kUnknown;
  s.split.compute_s = json_number(j, "compute_s_per_step");
  s.split.comm_exposed_s = json_number(j, "comm_exposed_s_per_step");
  if (!std::isfinite(s.split.comm_exposed_s))
    s.split.comm_exposed_s = json_number(j, "comm_s_per_step");
  s.split.comm_overlapped_s = json_number(j, "comm_overlapped_s_per_step");
  s.split.io_s = json_number(j, "io_s_per_step");
  s.split.idle_s = json_number(j, "idle_s_per_step");
  const auto ov = j.find("oversubscribed");
  s.oversubscribed = ov != j.end() && ov->is_boolean() && ov->get<bool>();
  rs.point.samples.push_back(s);
  return rs;
}

RunStudies read_runs(const std::string& dir, const std::string& mode) {
  HPCML_REQUIRE(fs::is_directory(dir), DataError, dir + ": not a directory");
  std::string name = fs::path(dir).filename().string();
  if (name.empty()) name = fs::path(dir).parent_path().filename().string();
  std::string mode_text = mode;
  std::vector<std::string> run_dirs;
  std::vector<std::string> notes;
  const fs::path study_json = fs::path(dir) / "study.json";
  if (fs::exists(study_json)) {
    std::ifstream in(study_json);
    nlohmann::json j;
    try {
      in >> j;
    } catch (const std::exception& e) {
      HPCML_THROW(DataError, study_json.string() + ": not valid JSON: " + std::string(e.what()));
    }
    if (mode_text.empty() && j.contains("mode") && j["mode"].is_string())
      mode_text = j["mode"].get<std::string>();
    if (j.contains("name") && j["name"].is_string()) name = j["name"].get<std::string>();
    if (j.contains("command") && j["command"].is_string())
      notes.push_back("study command: `" + j["command"].get<std::string>() + "`");
    HPCML_REQUIRE(j.contains("points") && j["points"].is_array(), DataError,
                  study_json.string() + ": key 'points': expected an array");
    for (const auto& p : j["points"]) {
      HPCML_REQUIRE(p.is_object() && p.contains("dir") && p["dir"].is_string(), DataError,
                    study_json.string() + ": every point needs a 'dir' string");
      const fs::path d = fs::path(dir) / p["dir"].get<std::string>();
      if (p.contains("status") && p["status"].is_string() && p["status"] != "ok") {
        notes.push_back("point " + p["dir"].get<std::string>() + " did not finish (status " +
                        p["status"].get<std::string>() + ") and is left out");
        continue;
      }
      run_dirs.push_back(d.string());
    }
  } else if (fs::exists(fs::path(dir) / "summary.json")) {
    run_dirs.push_back(dir);
  } else {
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
         ++it) {
      if (it.depth() > 2) {
        it.disable_recursion_pending();
        continue;
      }
      if (it->is_directory() && fs::exists(it->path() / "summary.json")) {
        run_dirs.push_back(it->path().string());
        it.disable_recursion_pending();
      }
    }
    std::sort(run_dirs.begin(), run_dirs.end());
  }
  HPCML_REQUIRE(!run_dirs.empty(), DataError,
                dir + ": no run directories (no summary.json here or up to 3 levels down)");
  const Mode m = parse_mode(mode_text.empty() ? "strong" : mode_text, dir + ": mode");

  RunStudies out;
  std::map<std::pair<int, int>, Point> points;
  for (const auto& d : run_dirs) {
    RunSummary rs = read_run_summary(d);
    if (std::isfinite(rs.grad_bytes)) out.grad_bytes = rs.grad_bytes;
    auto key = std::make_pair(rs.point.ranks, rs.point.threads);
    auto it = points.find(key);
    if (it == points.end()) {
      points[key] = rs.point;
    } else {
      it->second.nodes = std::max(it->second.nodes, rs.point.nodes);
      it->second.samples.push_back(rs.point.samples.front());
    }
  }
  std::set<int> thread_counts, rank_counts;
  for (const auto& [k, p] : points) {
    rank_counts.insert(k.first);
    thread_counts.insert(k.second);
  }
  auto make = [&](const std::string& study_name) {
    Study st;
    st.name = study_name;
    st.mode = m;
    st.notes = notes;
    st.notes.push_back("source: " + dir + " (" + std::to_string(run_dirs.size()) + " runs)");
    return st;
  };
  if (thread_counts.size() == 1) {
    Study st = make(name);
    for (const auto& [k, p] : points) st.points.push_back(p);
    out.studies.push_back(st);
    return out;
  }
  for (int t : thread_counts) {
    Study st = make(name + ", ranks at " + std::to_string(t) + " thread" + (t > 1 ? "s" : ""));
    for (const auto& [k, p] : points)
      if (k.second == t) st.points.push_back(p);
    out.studies.push_back(st);
  }
  for (int r : rank_counts) {
    Study st = make(name + ", threads at " + std::to_string(r) + " rank" + (r > 1 ? "s" : ""));
    for (const auto& [k, p] : points)
      if (k.first == r) st.points.push_back(p);
    if (st.points.size() >= 2) out.studies.push_back(st);
  }
  return out;
}

}  // namespace hpcml::analysis

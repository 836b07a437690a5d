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
#include "hpcml/core/strings.hpp"

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

// A count (ranks, threads, nodes) from summary.json: a whole number in [1, 10^9];
// absent (or not a number) gives 1 unless `required`. `ranks: 1e30` is an error,
// not a wrapped int.
int json_count(const nlohmann::json& j, const char* key, const std::string& path, bool required) {
  const auto it = j.find(key);
  if (it == j.end() && !required) return 1;
  const double v = it != j.end() && it->is_number() ? it->get<double>() : kUnknown;
  HPCML_REQUIRE(std::isfinite(v) && v >= 1 && v <= 1e9 && v == std::floor(v), DataError,
                path + ": key '" + key + "': expected a whole number in [1, 10^9], got " +
                    (it == j.end() ? std::string("nothing") : printable(it->dump())));
  return static_cast<int>(v);
}

// The meaningful lines of a CSV file: blank lines and '#' comments skipped,
// each trimmed, with its line number for messages.
class CsvLines {
 public:
  CsvLines(std::istream& in, const std::string& path) : in_(in), path_(path) {}
  /// The next meaningful line; false at the end of the file.
  bool next(std::string& line) {
    std::string raw;
    while (std::getline(in_, raw)) {
      ++number_;
      line = trim(raw);
      if (!line.empty() && line[0] != '#') return true;
    }
    return false;
  }
  int number() const { return number_; }
  /// "path:line" of the last line returned.
  std::string where() const { return path_ + ":" + std::to_string(number_); }

 private:
  std::istream& in_;
  const std::string& path_;
  int number_ = 0;
};

// The header row: which field holds each known column.
struct Columns {
  std::vector<std::string> header;           // the names as written
  std::map<std::string, std::size_t> index;  // canonical name -> field
  std::vector<std::string> ignored;          // names of unknown columns
  bool has(const std::string& name) const { return index.count(name) > 0; }
  /// The header's spelling of a known column (for messages).
  std::string written(const std::string& name) const { return printable(header[index.at(name)]); }
};

// Maps the header's fields to canonical columns; DataError for a column given
// twice or when no size (n, ranks) or no time (time_s, throughput) column exists.
Columns map_columns(const std::vector<std::string>& fields, const std::string& where,
                    const std::string& text) {
  Columns c;
  c.header = fields;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const std::string name = canonical(fields[i]);
    if (name.empty()) {
      c.ignored.push_back(fields[i]);
      continue;
    }
    HPCML_REQUIRE(!c.has(name), DataError,
                  where + ": column '" + name + "' appears twice (as '" +
                      printable(c.written(name)) + "' and '" + printable(fields[i]) + "')");
    c.index[name] = i;
  }
  HPCML_REQUIRE(
      c.has("n") || c.has("ranks"), DataError,
      where + ": missing column: need 'n' or 'ranks' (header is '" + printable(text) + "')");
  HPCML_REQUIRE(c.has("time_s") || c.has("throughput"), DataError,
                where + ": missing column: need 'time_s' or 'throughput' (header is '" +
                    printable(text) + "')");
  return c;
}

// One data row: typed access to its cells, errors naming file:line and column.
class CsvRow {
 public:
  CsvRow(const Columns& columns, std::vector<std::string> fields, std::string where)
      : columns_(columns), fields_(std::move(fields)), where_(std::move(where)) {
    HPCML_REQUIRE(fields_.size() == columns_.header.size(), DataError,
                  where_ + ": expected " + std::to_string(columns_.header.size()) +
                      " fields as in the header, got " + std::to_string(fields_.size()));
  }
  const std::string& where() const { return where_; }
  bool has(const std::string& name) const { return columns_.has(name); }

  /// The cell of a column; "" when the column is absent.
  std::string cell(const std::string& name) const {
    const auto it = columns_.index.find(name);
    return it == columns_.index.end() ? std::string() : fields_[it->second];
  }

  /// A number > min_exclusive; kUnknown when the column is absent or (not
  /// `required`) the cell is empty.
  double number(const std::string& name, bool required, double min_exclusive) const {
    const std::string text = cell(name);
    if (text.empty() && !has(name)) return kUnknown;
    if (text.empty()) {
      HPCML_REQUIRE(!required, DataError,
                    where_ + ": column '" + columns_.written(name) + "' is empty");
      return kUnknown;
    }
    double v = 0;
    HPCML_REQUIRE(parse_double(text, &v), DataError,
                  where_ + ": column '" + columns_.written(name) + "': expected a number, got '" +
                      printable(text) + "'");
    HPCML_REQUIRE(v > min_exclusive, DataError,
                  where_ + ": column '" + columns_.written(name) + "': expected a value > " +
                      (min_exclusive == 0 ? std::string("0") : std::string("-1")) + ", got '" +
                      printable(text) + "'");
    return v;
  }

  /// A whole number >= 1 (a required column).
  int integer(const std::string& name) const {
    const double v = number(name, true, 0);
    if (!std::isfinite(v)) return 0;
    HPCML_REQUIRE(v == std::floor(v) && v <= 1e9, DataError,
                  where_ + ": column '" + columns_.written(name) +
                      "': expected a whole number >= 1, got '" + printable(cell(name)) + "'");
    return static_cast<int>(v);
  }

 private:
  const Columns& columns_;
  std::vector<std::string> fields_;
  std::string where_;
};

// Ranks, threads (n = ranks x threads) and nodes of a row, without samples.
Point parse_layout(const CsvRow& row) {
  Point pt;
  const int n = row.has("n") ? row.integer("n") : 0;
  const int ranks = row.has("ranks") ? row.integer("ranks") : 0;
  const int threads = row.has("threads") ? row.integer("threads") : 0;
  if (ranks > 0) {
    pt.ranks = ranks;
    pt.threads = threads > 0 ? threads : 1;
    HPCML_REQUIRE(n == 0 || n == pt.ranks * pt.threads, DataError,
                  row.where() + ": n=" + std::to_string(n) +
                      " but ranks x threads = " + std::to_string(pt.ranks * pt.threads));
  } else {
    pt.threads = threads > 0 ? threads : 1;
    HPCML_REQUIRE(n % pt.threads == 0, DataError,
                  row.where() + ": n=" + std::to_string(n) +
                      " is not a multiple of threads=" + std::to_string(pt.threads));
    pt.ranks = n / pt.threads;
  }
  if (row.has("nodes")) pt.nodes = row.integer("nodes");
  return pt;
}

// The measurement of a row: time or throughput, the time split, oversubscription.
Sample parse_sample(const CsvRow& row) {
  Sample s;
  s.source = row.where();
  const bool has_time = row.has("time_s"), has_throughput = row.has("throughput");
  s.step_s = has_time ? row.number("time_s", !has_throughput, 0) : kUnknown;
  s.throughput = has_throughput ? row.number("throughput", !has_time, 0) : kUnknown;
  HPCML_REQUIRE(std::isfinite(s.step_s) || std::isfinite(s.throughput), DataError,
                row.where() + ": neither time_s nor throughput is given");
  s.split.compute_s = row.number("compute_s", false, -1e-300);
  s.split.comm_exposed_s = row.number("comm_exposed_s", false, -1e-300);
  s.split.comm_overlapped_s = row.number("comm_overlapped_s", false, -1e-300);
  s.split.io_s = row.number("io_s", false, -1e-300);
  s.split.idle_s = row.number("idle_s", false, -1e-300);
  if (row.has("oversubscribed")) {
    const std::string o = lower(row.cell("oversubscribed"));
    HPCML_REQUIRE(
        o == "" || o == "0" || o == "1" || o == "true" || o == "false" || o == "yes" || o == "no",
        DataError,
        row.where() + ": column 'oversubscribed': expected true/false/1/0, got '" + printable(o) +
            "'");
    s.oversubscribed = o == "1" || o == "true" || o == "yes";
  }
  return s;
}

// Rows grouped into studies (column study, default "scaling") in the order
// first seen; rows of the same study and ranks x threads are repeats of one point.
class StudyCollector {
 public:
  StudyCollector(const std::string& path, Mode default_mode)
      : path_(path), default_mode_(default_mode) {}

  void add(const CsvRow& row, const Point& pt, const Sample& sample) {
    const std::string name =
        row.has("study") && !row.cell("study").empty() ? row.cell("study") : "scaling";
    if (!studies_.count(name)) {
      order_.push_back(name);
      Study st;
      st.name = name;
      st.mode = default_mode_;
      st.notes.push_back("source: " + path_);
      studies_[name] = st;
    }
    Study& st = studies_[name];
    if (row.has("mode") && !row.cell("mode").empty()) {
      const Mode m = parse_mode(lower(row.cell("mode")), row.where() + ": column 'mode'");
      HPCML_REQUIRE(st.points.empty() || m == st.mode, DataError,
                    row.where() + ": study '" + printable(name) + "' mixes strong and weak rows");
      st.mode = m;
    }
    const auto key = std::make_pair(name, std::make_pair(pt.ranks, pt.threads));
    if (!point_index_.count(key)) {
      point_index_[key] = st.points.size();
      st.points.push_back(pt);
    }
    Point& target = st.points[point_index_[key]];
    HPCML_REQUIRE(target.nodes == pt.nodes, DataError,
                  row.where() + ": repeat of N=" + std::to_string(pt.ranks * pt.threads) +
                      " gives nodes=" + std::to_string(pt.nodes) + ", earlier rows said " +
                      std::to_string(target.nodes));
    target.samples.push_back(sample);
  }

  bool empty() const { return order_.empty(); }

  /// The studies, each noting the ignored columns.
  std::vector<Study> finish(const std::vector<std::string>& ignored) const {
    std::vector<Study> out;
    for (const auto& name : order_) {
      Study st = studies_.at(name);
      if (!ignored.empty()) {
        std::string list;
        for (const auto& c : ignored) list += (list.empty() ? "" : ", ") + c;
        st.notes.push_back("ignored columns: " + list);
      }
      out.push_back(st);
    }
    return out;
  }

 private:
  std::string path_;
  Mode default_mode_;
  std::vector<std::string> order_;
  std::map<std::string, Study> studies_;
  std::map<std::pair<std::string, std::pair<int, int>>, std::size_t> point_index_;
};

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
  CsvLines lines(in, path);
  std::string line;
  HPCML_REQUIRE(lines.next(line), DataError, path + ": the CSV file is empty (no header row)");
  const int header_line = lines.number();
  const Columns columns = map_columns(split_csv_line(line), lines.where(), line);
  StudyCollector studies(path, default_mode);
  while (lines.next(line)) {
    const CsvRow row(columns, split_csv_line(line), lines.where());
    const Point point = parse_layout(row);
    const Sample sample = parse_sample(row);
    studies.add(row, point, sample);
  }
  HPCML_REQUIRE(
      !studies.empty(), DataError,
      path + ":" + std::to_string(header_line) + ": the CSV file has a header but no data rows");
  return studies.finish(columns.ignored);
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
  if (const auto m = j.find("mode"); m != j.end() && m->is_string() && *m == "ps") {
    rs.mode = "ps";
    if (const auto sv = j.find("servers"); sv != j.end() && sv->is_number_integer())
      rs.mode += " (" + std::to_string(sv->get<long long>()) + " server(s)";
    else
      rs.mode += " (";
    const auto st = j.find("staleness");
    const long long staleness = st != j.end() && st->is_number_integer() ? st->get<long long>() : 0;
    rs.mode += (rs.mode.back() == '(' ? "" : ", ") +
               (staleness > 0 ? "staleness " + std::to_string(staleness) : std::string("sync")) +
               ")";
  }
  rs.point.ranks = json_count(j, "ranks", path, true);
  rs.point.threads = json_count(j, "threads_per_rank", path, false);
  rs.point.nodes = json_count(j, "nodes", path, false);
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

// The studies of one mode's points: one study when every run used the same
// thread count, else one per thread count and one per rank count.
static void add_mode_studies(RunStudies& out, const std::map<std::pair<int, int>, Point>& points,
                             const std::string& name, Mode m, const std::vector<std::string>& notes,
                             const std::string& dir, std::size_t runs) {
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
    st.notes.push_back("source: " + dir + " (" + std::to_string(runs) + " runs)");
    return st;
  };
  if (thread_counts.size() == 1) {
    Study st = make(name);
    for (const auto& [k, p] : points) st.points.push_back(p);
    out.studies.push_back(st);
    return;
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
  // Points by (ranks, threads), separately per mode (all-reduce, ps, ...).
  std::map<std::string, std::map<std::pair<int, int>, Point>> by_mode;
  for (const auto& d : run_dirs) {
    RunSummary rs = read_run_summary(d);
    if (std::isfinite(rs.grad_bytes)) out.grad_bytes = rs.grad_bytes;
    auto& points = by_mode[rs.mode];
    auto key = std::make_pair(rs.point.ranks, rs.point.threads);
    auto it = points.find(key);
    if (it == points.end()) {
      points[key] = rs.point;
    } else {
      it->second.nodes = std::max(it->second.nodes, rs.point.nodes);
      it->second.samples.push_back(rs.point.samples.front());
    }
  }
  const std::string base_name = name;
  for (const auto& [mode_label, points] : by_mode) {
    // One mode: the study keeps its name; several: each is named by its mode.
    name = by_mode.size() == 1 ? base_name : base_name + ", " + mode_label;
    add_mode_studies(out, points, name, m, notes, dir, run_dirs.size());
  }
  return out;
}

}  // namespace hpcml::analysis

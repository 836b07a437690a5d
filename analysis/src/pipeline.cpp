#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "hpcml/analysis/inputs.hpp"
#include "hpcml/analysis/report.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"

namespace hpcml::analysis {

namespace fs = std::filesystem;

namespace {

// The table printed by `hpcml bench allreduce` (nccl-tests layout): a header
// "# hpcml bench allreduce: N ranks, ...", then rows
// "size count algo | oop_us algbw busbw #wrong | inp_us ...". Uses the
// out-of-place times of one algorithm: `ring` when present, else `mpi`, else the
// first one listed.
std::vector<AllreduceSample> read_bench_output(const std::string& path, std::string* algo_used) {
  std::ifstream in(path);
  std::string line;
  double ranks = 0;
  int lineno = 0;
  std::map<std::string, std::vector<AllreduceSample>> by_algo;
  std::vector<std::string> order;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.rfind("# hpcml bench allreduce:", 0) == 0) {
      std::istringstream h(line.substr(24));
      h >> ranks;
      HPCML_REQUIRE(ranks >= 1, DataError,
                    path + ":" + std::to_string(lineno) + ": cannot read the rank count");
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    double size = 0, count = 0, us = 0;
    std::string algo, bar;
    if (!(row >> size >> count >> algo >> bar >> us) || bar != "|")
      HPCML_THROW(DataError, path + ":" + std::to_string(lineno) +
                                 ": not a row of `hpcml bench allreduce` output: '" +
                                 printable(line) + "'");
    HPCML_REQUIRE(ranks >= 1, DataError, path + ": no '# hpcml bench allreduce: N ranks' header");
    if (!by_algo.count(algo)) order.push_back(algo);
    by_algo[algo].push_back({ranks, size, us * 1e-6});
  }
  HPCML_REQUIRE(!order.empty(), DataError, path + ": no all-reduce measurements");
  *algo_used = by_algo.count("ring") ? "ring" : by_algo.count("mpi") ? "mpi" : order.front();
  return by_algo[*algo_used];
}

}  // namespace

std::vector<AllreduceSample> read_allreduce_file(const std::string& path, std::string* what) {
  std::ifstream in(path);
  HPCML_REQUIRE(in, DataError, path + ": cannot open the all-reduce timings");
  std::string first;
  std::getline(in, first);
  std::vector<AllreduceSample> out;
  if (first.rfind("# hpcml bench allreduce:", 0) == 0) {
    std::string algo;
    // Several outputs (one per rank count) may be concatenated in one file.
    out = read_bench_output(path, &algo);
    if (what) *what = "`hpcml bench allreduce` output, algorithm " + algo + ", out-of-place times";
    return out;
  }
  if (what) *what = "CSV (ranks, bytes, time_s)";
  return read_allreduce_csv(path);
}

std::vector<AllreduceSample> read_allreduce_csv(const std::string& path) {
  std::ifstream in(path);
  HPCML_REQUIRE(in, DataError, path + ": cannot open the all-reduce CSV file");
  std::string line;
  int lineno = 0;
  std::map<std::string, std::size_t> col;
  std::size_t width = 0;
  std::vector<AllreduceSample> out;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos ||
        line[line.find_first_not_of(" \t")] == '#')
      continue;
    const auto f = split_csv_line(line);
    const std::string where = path + ":" + std::to_string(lineno);
    if (col.empty()) {
      width = f.size();
      for (std::size_t i = 0; i < f.size(); ++i) {
        std::string h = f[i];
        for (auto& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (h == "n") h = "ranks";
        if (h == "size_bytes") h = "bytes";
        if (h == "seconds" || h == "time") h = "time_s";
        col[h] = i;
      }
      for (const char* need : {"ranks", "bytes", "time_s"})
        HPCML_REQUIRE(
            col.count(need), DataError,
            where + ": missing column '" + std::string(need) + "' (need ranks, bytes, time_s)");
      continue;
    }
    HPCML_REQUIRE(
        f.size() == width, DataError,
        where + ": expected " + std::to_string(width) + " fields, got " + std::to_string(f.size()));
    AllreduceSample s;
    double* dst[] = {&s.ranks, &s.bytes, &s.seconds};
    const char* names[] = {"ranks", "bytes", "time_s"};
    for (int k = 0; k < 3; ++k) {
      const std::string& t = f[col[names[k]]];
      char* end = nullptr;
      const double v = std::strtod(t.c_str(), &end);
      HPCML_REQUIRE(!t.empty() && end == t.c_str() + t.size() && std::isfinite(v) && v >= 0,
                    DataError,
                    where + ": column '" + names[k] + "': expected a number >= 0, got '" +
                        printable(t) + "'");
      *dst[k] = v;
    }
    HPCML_REQUIRE(s.seconds > 0, DataError, where + ": column 'time_s' must be > 0");
    out.push_back(s);
  }
  HPCML_REQUIRE(!out.empty(), DataError, path + ": no all-reduce measurements");
  return out;
}

ReportOutput make_report(const ReportRequest& req) {
  HPCML_REQUIRE(req.runs_dir.empty() != req.csv.empty(), ConfigError,
                "report: give either a run/study directory or --csv FILE, not both or neither");
  std::vector<Study> studies;
  CommModelParams comm = req.comm;
  std::string out_dir = req.out_dir;
  if (!req.csv.empty()) {
    const Mode mode = parse_mode(req.mode.empty() ? "strong" : req.mode, "--mode");
    studies = read_csv(req.csv, mode);
    if (out_dir.empty()) {
      fs::path p(req.csv);
      out_dir = (p.parent_path() / (p.stem().string() + "-report")).string();
    }
  } else {
    auto runs = read_runs(req.runs_dir, req.mode);
    studies = std::move(runs.studies);
    if (!std::isfinite(comm.grad_bytes)) comm.grad_bytes = runs.grad_bytes;
    if (out_dir.empty()) out_dir = (fs::path(req.runs_dir) / "report").string();
  }
  if (!req.allreduce_csv.empty()) {
    std::string what;
    const auto samples = read_allreduce_file(req.allreduce_csv, &what);
    comm.inter = fit_alpha_beta(samples);
    comm.source = "fitted (ring model, least squares) to " + std::to_string(samples.size()) +
                  " all-reduce timings in " + req.allreduce_csv + " (" + what + ")";
  }
  if (!req.intra_allreduce_csv.empty()) {
    std::string what;
    const auto samples = read_allreduce_file(req.intra_allreduce_csv, &what);
    comm.intra = fit_alpha_beta(samples);
    comm.source += std::string(comm.source.empty() ? "" : "; ") + "intra-node fitted to " +
                   std::to_string(samples.size()) + " all-reduce timings in " +
                   req.intra_allreduce_csv + " (" + what + ")";
  }
  std::vector<ReportStudy> results;
  for (const auto& st : studies) {
    ReportStudy rs;
    rs.result = analyse(st, req.study);
    CommModelParams p = comm;
    if (!(p.ranks_per_node > 0)) {
      // Default: the densest node layout that was measured.
      double g = 1;
      for (const auto& r : rs.result.rows)
        g = std::max(g, std::ceil(static_cast<double>(r.ranks) / std::max(1, r.nodes)));
      p.ranks_per_node = g;
    }
    rs.comm = model_study(rs.result, p);
    results.push_back(std::move(rs));
  }
  return write_report(out_dir, results, req.report);
}

}  // namespace hpcml::analysis

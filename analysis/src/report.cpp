// write_report: the report's files, composed from one writer per format
// (report_plots.cpp, report_csv.cpp, report_json.cpp, report_markdown.cpp).
#include "hpcml/analysis/report.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "hpcml/core/error.hpp"
#include "report_format.hpp"

namespace hpcml::analysis {

namespace fs = std::filesystem;

namespace detail {

void write_file(const std::string& path, const std::string& text, ReportOutput& out) {
  std::ofstream f(path, std::ios::binary);
  HPCML_REQUIRE(f, DataError, path + ": cannot write");
  f << text;
  f.close();
  HPCML_REQUIRE(f, DataError, path + ": write failed (disk full?)");
  // Every path once: the count printed is the number of files that exist.
  HPCML_REQUIRE(std::find(out.files.begin(), out.files.end(), path) == out.files.end(), Error,
                path + ": written twice in one report");
  out.files.push_back(path);
}

}  // namespace detail

std::string format_number(double v, int digits) {
  if (!detail::finite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

ReportOutput write_report(const std::string& out_dir, const std::vector<ReportStudy>& studies,
                          const ReportOptions& options) {
  ReportOutput out;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  HPCML_REQUIRE(!ec && fs::is_directory(out_dir), DataError,
                out_dir + ": cannot create the report directory: " + ec.message());
  const fs::path dir(out_dir);
  auto path = [&](const char* name) { return (dir / name).string(); };

  const ReportPlots plots = write_plots(out_dir, studies, options.png, out);
  const ReportCsv csv = report_csv(studies);
  detail::write_file(path("table.csv"), csv.table, out);
  detail::write_file(path("fit.csv"), csv.fit, out);
  detail::write_file(path("predictions.csv"), csv.predictions, out);
  detail::write_file(path("comm_model.csv"), csv.comm_model, out);
  detail::write_file(path("multiterm.csv"), csv.multiterm, out);
  detail::write_file(path("holdout.csv"), csv.holdout, out);
  detail::write_file(path("report.json"), report_json(studies, options, plots), out);
  out.markdown_path = path("report.md");
  detail::write_file(out.markdown_path, report_markdown(studies, options, plots), out);
  return out;
}

}  // namespace hpcml::analysis

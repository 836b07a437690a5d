// Writes the scaling report: Markdown embedding SVG (and PNG) plots, plus CSV
// and JSON files holding every number shown.
//
// Output contract: no file written here ever contains "nan" or "inf"; unknown
// values are "n/a" in Markdown, empty cells in CSV and null in JSON, and an
// unbounded N is spelled out ("unbounded" / a *_unbounded flag).
#pragma once

#include <string>
#include <vector>

#include "hpcml/analysis/comm_model.hpp"
#include "hpcml/analysis/scaling.hpp"

namespace hpcml::analysis {

struct ReportStudy {
  StudyResult result;
  CommModelResult comm;
};

struct ReportOptions {
  std::string title = "Scaling report";
  std::vector<std::string> provenance;  // lines shown under the title (command, host, date)
  bool png = true;                      // try rsvg-convert
};

struct ReportOutput {
  std::vector<std::string> files;  // paths written
  bool png_written = false;
  std::string png_note;  // why PNG is missing, if it is
  std::string markdown_path;
};

/// Creates `out_dir` if needed and writes report.md, report.json, table.csv,
/// fit.csv, predictions.csv, comm_model.csv, multiterm.csv, holdout.csv and the plots: write_plots
/// first, then the CSV, JSON and Markdown writers below. Throws DataError when the directory or a
/// file cannot be written.
ReportOutput write_report(const std::string& out_dir, const std::vector<ReportStudy>& studies,
                          const ReportOptions& options);

/// One plot as written: <name>.svg, and <name>.png when `png`.
struct PlotFile {
  std::string name;
  bool png = false;
};

/// What write_plots wrote, for the writers that link or list the plots.
struct ReportPlots {
  std::vector<std::vector<PlotFile>> studies;  // parallel to the studies
  std::string note_before;  // why no PNG was attempted ("" when it was): top of report.md
  std::string note;         // the final PNG note: report.json's png_note
  bool png_written = false;
};

/// Writes each study's plots into `dir` (speedup, efficiency and, when the rows
/// have a time split, time-split; prefixed by the study's name when there are
/// several studies) as SVG and, with `png` and rsvg-convert on PATH, as PNG.
/// The first failed conversion stops the PNGs. Adds every file to out.files
/// and sets out.png_written / out.png_note.
ReportPlots write_plots(const std::string& dir, const std::vector<ReportStudy>& studies, bool png,
                        ReportOutput& out);

/// The CSV files of the report: every number of the Markdown tables.
struct ReportCsv {
  std::string table;        // table.csv: one row per measured N
  std::string fit;          // fit.csv: one row per study
  std::string predictions;  // predictions.csv
  std::string comm_model;   // comm_model.csv: one row per N and model variant
  std::string multiterm;    // multiterm.csv: one row per admissible subset of the terms
  std::string holdout;      // holdout.csv: one row per held-out N, every model's prediction
};
ReportCsv report_csv(const std::vector<ReportStudy>& studies);

/// report.json: everything in the report, null for unknown values.
std::string report_json(const std::vector<ReportStudy>& studies, const ReportOptions& options,
                        const ReportPlots& plots);

/// report.md: tables, fits, predictions, the model and links to the plots.
std::string report_markdown(const std::vector<ReportStudy>& studies, const ReportOptions& options,
                            const ReportPlots& plots);

/// `v` with `digits` significant digits; "n/a" when not finite.
std::string format_number(double v, int digits = 4);

}  // namespace hpcml::analysis

namespace hpcml::analysis {

/// Everything `hpcml report` (and `hpcml scale` after its runs) needs.
struct ReportRequest {
  std::string runs_dir;  // a study/run directory, or ""
  std::string csv;       // a CSV table, or "" (exactly one of runs_dir and csv)
  std::string out_dir;   // "" = <runs_dir>/report or <csv without .csv>-report
  std::string mode;      // "" = from study.json (runs) or strong
  StudyOptions study;
  CommModelParams comm;       // grad_bytes NaN = from the runs; ranks_per_node <= 0 = from the data
  std::string allreduce_csv;  // all-reduce timings (CSV or bench output) to fit alpha/beta
  std::string intra_allreduce_csv;  // the same for the intra-node alpha/beta (hierarchical)
  ReportOptions report;
};

/// Reads the inputs, analyses every study, applies the communication model and
/// writes the report. Throws DataError/ConfigError for bad input.
ReportOutput make_report(const ReportRequest& request);

/// Reads all-reduce timings (columns ranks, bytes, time_s; aliases n, size_bytes,
/// seconds) for fit_alpha_beta. Errors name file:line.
std::vector<AllreduceSample> read_allreduce_csv(const std::string& path);

/// Reads all-reduce timings either as that CSV or as the text printed by
/// `hpcml bench allreduce` (several runs may be concatenated; the out-of-place
/// times of algorithm `ring`, else `mpi`, else the first listed are used).
/// `what` (optional) receives a description for the report.
std::vector<AllreduceSample> read_allreduce_file(const std::string& path, std::string* what);

}  // namespace hpcml::analysis

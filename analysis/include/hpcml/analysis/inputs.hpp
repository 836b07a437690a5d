// Reading scaling measurements: CSV tables from anywhere, and hpcml run
// directories (summary.json written by `hpcml train` and `hpcml bench synthetic`).
//
// Every error is a one-line DataError naming the file (and line) and what is
// wrong; nothing here prints.
#pragma once

#include <string>
#include <vector>

#include "hpcml/analysis/scaling.hpp"

namespace hpcml::analysis {

/// Reads a CSV scaling table. Header row names the columns (case-insensitive,
/// any order); '#' lines and blank lines are skipped. Columns:
///   n | ranks [+ threads] (one required; n = ranks x threads),
///   time_s | throughput (at least one required; both > 0),
///   optional: study, mode (strong|weak), nodes, compute_s, comm_exposed_s
///   (alias comm_s), comm_overlapped_s, io_s, idle_s, oversubscribed (0/1/true/false).
/// Several rows with the same study and N are repeats. `default_mode` applies
/// where there is no mode column. Unknown columns are listed in the study notes.
std::vector<Study> read_csv(const std::string& path, Mode default_mode);

/// One run directory's summary.json as a point with one sample.
struct RunSummary {
  Point point;  // one sample
  double global_batch = kUnknown;
  double grad_bytes = kUnknown;  // bytes all-reduced per step, if the run reports it
  std::string dir;
  // How gradients were combined: "all-reduce", or "ps" / "ps, staleness s"
  // (summary.json's mode, servers, staleness). Runs of different modes are
  // never repeats of one point: read_runs() makes a study per mode.
  std::string mode = "all-reduce";
};
RunSummary read_run_summary(const std::string& dir);

/// The measurements under `dir`: a study directory written by `hpcml scale`
/// (study.json + one run directory per point and repeat), any directory holding
/// run directories (found up to 3 levels down), or a single run directory.
/// Runs of the same ranks x threads are repeats. When several thread counts
/// occur, the result has one study per thread count (ranks scaling) and one per
/// rank count with >= 2 thread counts (thread scaling). `mode` "" takes the mode
/// from study.json, else strong.
struct RunStudies {
  std::vector<Study> studies;
  double grad_bytes = kUnknown;
};
RunStudies read_runs(const std::string& dir, const std::string& mode);

/// Splits one CSV line into fields (double quotes group, "" is a quote).
std::vector<std::string> split_csv_line(const std::string& line);

}  // namespace hpcml::analysis

// Internal to analysis/: formatting shared by the report writers (report_*.cpp).
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

#include "hpcml/analysis/report.hpp"

namespace hpcml::analysis::detail {

inline bool finite(double x) { return std::isfinite(x); }

/// N as a whole number, "unbounded" or "n/a".
inline std::string n_text(double n) {
  if (std::isinf(n)) return "unbounded";
  if (!finite(n)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", std::floor(n + 1e-9));
  return buf;
}

/// "RxT", with '*' when oversubscribed (plot categories, bar labels).
inline std::string layout(const Row& r) {
  return std::to_string(r.ranks) + "x" + std::to_string(r.threads) + (r.oversubscribed ? "*" : "");
}

/// Unit of a study's rate column.
inline std::string rate_unit(const StudyResult& s) {
  const bool weak = s.study.mode == Mode::kWeak;
  return !s.rows.empty() && s.rows.front().rate_is_throughput ? "samples/s"
         : weak                                               ? "N/T, 1/s"
                                                              : "steps/s = 1/T";
}

/// Whether any row has a time split (compute, communication, I/O).
inline bool has_split(const StudyResult& s) {
  for (const auto& r : s.rows)
    if (finite(r.split.compute_s) || finite(r.split.comm_exposed_s) || finite(r.split.io_s))
      return true;
  return false;
}

/// Writes one report file and records its path in out.files; DataError on failure.
void write_file(const std::string& path, const std::string& text, ReportOutput& out);

}  // namespace hpcml::analysis::detail

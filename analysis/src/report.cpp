#include "hpcml/analysis/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hpcml/analysis/plot.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/process_path.hpp"

namespace hpcml::analysis {

namespace fs = std::filesystem;

namespace {

bool finite(double x) { return std::isfinite(x); }

std::string csv_num(double v) {
  if (!finite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

nlohmann::json jnum(double v) { return finite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string csv_text(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string slug(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!out.empty() && out.back() != '-')
      out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "study" : out;
}

std::string n_text(double n) {
  if (std::isinf(n)) return "unbounded";
  if (!finite(n)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", std::floor(n + 1e-9));
  return buf;
}

std::string pct(double v) { return finite(v) ? format_number(100.0 * v, 3) + " %" : "n/a"; }

void write_file(const fs::path& path, const std::string& text, ReportOutput& out) {
  std::ofstream f(path, std::ios::binary);
  HPCML_REQUIRE(f, DataError, path.string() + ": cannot write");
  f << text;
  f.close();
  HPCML_REQUIRE(f, DataError, path.string() + ": write failed (disk full?)");
  out.files.push_back(path.string());
}

std::string layout(const Row& r) {
  return std::to_string(r.ranks) + "x" + std::to_string(r.threads) + (r.oversubscribed ? "*" : "");
}

const char* kColors[] = {"#d62728", "#2ca02c", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

std::vector<double> model_grid(double n0, double n1) {
  std::vector<double> x;
  for (double e = std::log2(n0); e <= std::log2(n1) + 1e-9; e += 0.125) x.push_back(std::exp2(e));
  return x;
}

std::string speedup_svg(const StudyResult& s) {
  LineChart c;
  c.title = s.study.name + ": speedup (" + to_string(s.study.mode) + " scaling)";
  c.x_label = "N = ranks x threads per rank (processing elements, log2 scale)";
  c.y_label = "speedup S(N) = X(N)/X(N0), N0 = " + n_text(s.n0) + " (log2 scale)";
  c.log2_y = true;
  const double top = s.fit.ok && !s.predictions.empty() ? s.predictions.back().n : s.rows.back().n;
  const auto grid = model_grid(s.n0, std::max(top, 2 * s.n0));
  Series ideal;
  ideal.label = "ideal S = N/N0";
  ideal.color = "#7f7f7f";
  ideal.dash = "6,4";
  for (double n : grid) {
    ideal.x.push_back(n);
    ideal.y.push_back(n / s.n0);
  }
  c.series.push_back(ideal);
  if (s.fit.ok) {
    const Law law = s.fit.law;
    Series m;
    m.label = to_string(law) + " fit, P = " + format_number(s.fit.p, 4) +
              (finite(s.fit.lo)
                   ? " [" + format_number(s.fit.lo, 4) + ", " + format_number(s.fit.hi, 4) + "]"
                   : "");
    m.color = "#d62728";
    for (double n : grid) {
      m.x.push_back(n);
      m.y.push_back(law_speedup(law, s.fit.p, n, s.n0));
      if (finite(s.fit.lo)) {
        m.band_lo.push_back(law_speedup(law, s.fit.lo, n, s.n0));
        m.band_hi.push_back(law_speedup(law, s.fit.hi, n, s.n0));
      }
    }
    c.series.push_back(m);
  }
  Series meas;
  meas.label = "measured (median, bars: min-max over repeats)";
  meas.color = "#1f77b4";
  meas.line = false;
  meas.markers = true;
  for (const auto& r : s.rows) {
    meas.x.push_back(r.n);
    meas.y.push_back(r.speedup);
    meas.y_lo.push_back(r.speedup_min);
    meas.y_hi.push_back(r.speedup_max);
  }
  c.series.push_back(meas);
  return render_line_chart(c);
}

std::string efficiency_svg(const StudyResult& s, const CommModelResult& cm) {
  LineChart c;
  c.title = s.study.name + ": parallel efficiency";
  c.x_label = "N = ranks x threads per rank (processing elements, log2 scale)";
  c.y_label = "efficiency E(N) = S(N) N0 / N (1 = ideal)";
  c.y_min = 0;
  double ymax = 1.1;
  for (const auto& r : s.rows)
    if (finite(r.efficiency)) ymax = std::max(ymax, std::min(2.0, r.efficiency * 1.05));
  c.y_max = ymax;
  const double top = s.fit.ok && !s.predictions.empty() ? s.predictions.back().n : s.rows.back().n;
  const auto grid = model_grid(s.n0, std::max(top, 2 * s.n0));
  Series target;
  target.label = "target E = " + format_number(s.target_efficiency, 3);
  target.color = "#7f7f7f";
  target.dash = "6,4";
  target.x = {grid.front(), grid.back()};
  target.y = {s.target_efficiency, s.target_efficiency};
  c.series.push_back(target);
  if (s.fit.ok) {
    Series m;
    m.label = to_string(s.fit.law) + " fit";
    m.color = "#d62728";
    for (double n : grid) {
      m.x.push_back(n);
      m.y.push_back(law_efficiency(s.fit.law, s.fit.p, n, s.n0));
      if (finite(s.fit.lo)) {
        m.band_lo.push_back(law_efficiency(s.fit.law, s.fit.lo, n, s.n0));
        m.band_hi.push_back(law_efficiency(s.fit.law, s.fit.hi, n, s.n0));
      }
    }
    c.series.push_back(m);
  }
  if (cm.ok) {
    for (std::size_t v = 0; v < cm.variants.size(); ++v) {
      Series m;
      m.label = "alpha-beta model: " + cm.variants[v].name;
      m.color = kColors[(v + 1) % 6];
      m.dash = v % 2 ? "2,3" : "8,3";
      for (const auto& p : cm.points) {
        m.x.push_back(p.n);
        m.y.push_back(p.efficiency[v]);
      }
      c.series.push_back(m);
    }
  }
  Series meas;
  meas.label = "measured (median)";
  meas.color = "#1f77b4";
  meas.line = false;
  meas.markers = true;
  for (const auto& r : s.rows) {
    meas.x.push_back(r.n);
    meas.y.push_back(r.efficiency);
  }
  c.series.push_back(meas);
  return render_line_chart(c);
}

bool has_split(const StudyResult& s) {
  for (const auto& r : s.rows)
    if (finite(r.split.compute_s) || finite(r.split.comm_exposed_s) || finite(r.split.io_s))
      return true;
  return false;
}

std::string split_svg(const StudyResult& s) {
  StackedBars b;
  b.title = s.study.name + ": where the time of a step goes";
  b.y_label = "time per step (ms, medians over repeats)";
  b.layers = {"compute", "communication (exposed)", "I/O", "idle / wait", "other (step - parts)"};
  b.colors = {"#1f77b4", "#d62728", "#2ca02c", "#bcbd22", "#c7c7c7"};
  b.values.assign(b.layers.size(), {});
  b.side_label = "communication overlapped with compute (hidden, not in the step time)";
  bool any_over = false;
  for (const auto& r : s.rows) {
    b.categories.push_back(layout(r));
    any_over = any_over || r.oversubscribed;
    const double parts[4] = {r.split.compute_s, r.split.comm_exposed_s, r.split.io_s,
                             r.split.idle_s};
    double sum = 0;
    for (int l = 0; l < 4; ++l) {
      const double v = finite(parts[l]) ? parts[l] : 0.0;
      b.values[l].push_back(1e3 * v);
      sum += v;
    }
    b.values[4].push_back(finite(r.time_med) && r.time_med > sum ? 1e3 * (r.time_med - sum) : 0.0);
    b.side.push_back(finite(r.split.comm_overlapped_s) ? 1e3 * r.split.comm_overlapped_s : 0.0);
  }
  if (any_over) b.footnote = "* oversubscribed: more ranks x threads than cores";
  return render_stacked_bars(b);
}

}  // namespace

std::string format_number(double v, int digits) {
  if (!finite(v)) return "n/a";
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
  bool png_ok = options.png;
  if (png_ok && find_on_path("rsvg-convert").empty()) {
    png_ok = false;
    out.png_note =
        "PNG plots were not written: rsvg-convert is not installed (Debian package "
        "librsvg2-bin); the SVG plots are complete.";
  } else if (!options.png) {
    out.png_note = "PNG plots were not requested.";
  }

  std::ostringstream md, table, fitcsv, predcsv, commcsv;
  nlohmann::json js;
  js["title"] = options.title;
  js["provenance"] = options.provenance;
  js["studies"] = nlohmann::json::array();
  table
      << "study,mode,n,ranks,threads,nodes,repeats,time_s_median,time_s_min,time_s_max,rate_median,"
         "rate_min,rate_max,rate_unit,speedup,speedup_min,speedup_max,efficiency,karp_flatt,"
         "gustafson_serial,compute_s,comm_exposed_s,comm_overlapped_s,io_s,idle_s,oversubscribed\n";
  fitcsv << "study,law,n0,p,p_baseline,se,ci95_lo,ci95_hi,bootstrap_lo,bootstrap_hi,interval_lo,"
            "interval_hi,rms_log_residual,observations,dof,target_efficiency,max_n_target,"
            "max_n_target_lo,max_n_target_hi,max_n_unbounded\n";
  predcsv << "study,law,n,speedup,speedup_lo,speedup_hi,efficiency,efficiency_lo,efficiency_hi\n";
  commcsv << "study,variant,n,ranks,measured,efficiency_measured,step_s_model,efficiency_model\n";

  md << "# " << options.title << "\n\n";
  for (const auto& line : options.provenance) md << "- " << line << "\n";
  if (!options.provenance.empty()) md << "\n";
  md << "How every number is computed: see docs/scaling.md in the hpcml sources. "
        "Every number below is also in `table.csv`, `fit.csv`, `predictions.csv`, "
        "`comm_model.csv` and `report.json`.\n\n";
  if (!out.png_note.empty()) md << "> " << out.png_note << "\n\n";

  for (const auto& rs : studies) {
    const StudyResult& s = rs.result;
    const CommModelResult& cm = rs.comm;
    const bool weak = s.study.mode == Mode::kWeak;
    const std::string prefix = studies.size() == 1 ? "" : slug(s.study.name) + "-";
    const std::string rate_unit = !s.rows.empty() && s.rows.front().rate_is_throughput
                                      ? "samples/s"
                                      : (weak ? "N/T, 1/s" : "steps/s = 1/T");
    nlohmann::json jst;
    jst["name"] = s.study.name;
    jst["mode"] = to_string(s.study.mode);
    jst["n0"] = jnum(s.n0);
    jst["notes"] = s.study.notes;
    jst["warnings"] = s.warnings;
    jst["rate_unit"] = rate_unit;

    md << "## " << s.study.name << " — " << to_string(s.study.mode) << " scaling\n\n";
    for (const auto& n : s.study.notes) md << "- " << n << "\n";
    md << "- baseline N0 = " << n_text(s.n0)
       << " (the smallest N measured); speedup and efficiency are relative to it\n\n";
    if (!s.warnings.empty()) {
      md << "**Warnings**\n\n";
      for (const auto& w : s.warnings) md << "- ⚠ " << w << "\n";
      md << "\n";
    }

    // --- table
    md << "### Measurements\n\n";
    md << "| N | ranks x threads | nodes | repeats | time/step (s): median [min, max] | rate ("
       << rate_unit << ") | " << (weak ? "scaled speedup" : "speedup")
       << " S(N) [min, max] | efficiency E(N) | Karp–Flatt e(N) |"
       << (weak ? " Gustafson serial s(N) |" : "") << "\n";
    md << "|---:|---|---:|---:|---|---:|---|---:|---:|" << (weak ? "---:|" : "") << "\n";
    jst["rows"] = nlohmann::json::array();
    for (const auto& r : s.rows) {
      md << "| " << n_text(r.n) << " | " << r.ranks << " x " << r.threads
         << (r.oversubscribed ? " (oversubscribed)" : "") << " | " << r.nodes << " | " << r.repeats
         << " | " << format_number(r.time_med) << " [" << format_number(r.time_min) << ", "
         << format_number(r.time_max) << "] | " << format_number(r.rate_med) << " | "
         << format_number(r.speedup) << " [" << format_number(r.speedup_min) << ", "
         << format_number(r.speedup_max) << "] | " << format_number(r.efficiency, 3) << " | "
         << format_number(r.karp_flatt, 3) << " |"
         << (weak ? " " + format_number(r.gustafson_serial, 3) + " |" : "") << "\n";
      table << csv_text(s.study.name) << ',' << to_string(s.study.mode) << ',' << csv_num(r.n)
            << ',' << r.ranks << ',' << r.threads << ',' << r.nodes << ',' << r.repeats << ','
            << csv_num(r.time_med) << ',' << csv_num(r.time_min) << ',' << csv_num(r.time_max)
            << ',' << csv_num(r.rate_med) << ',' << csv_num(r.rate_min) << ','
            << csv_num(r.rate_max) << ',' << csv_text(rate_unit) << ',' << csv_num(r.speedup) << ','
            << csv_num(r.speedup_min) << ',' << csv_num(r.speedup_max) << ','
            << csv_num(r.efficiency) << ',' << csv_num(r.karp_flatt) << ','
            << csv_num(r.gustafson_serial) << ',' << csv_num(r.split.compute_s) << ','
            << csv_num(r.split.comm_exposed_s) << ',' << csv_num(r.split.comm_overlapped_s) << ','
            << csv_num(r.split.io_s) << ',' << csv_num(r.split.idle_s) << ','
            << (r.oversubscribed ? "true" : "false") << "\n";
      jst["rows"].push_back({{"n", jnum(r.n)},
                             {"ranks", r.ranks},
                             {"threads", r.threads},
                             {"nodes", r.nodes},
                             {"repeats", r.repeats},
                             {"time_s_median", jnum(r.time_med)},
                             {"time_s_min", jnum(r.time_min)},
                             {"time_s_max", jnum(r.time_max)},
                             {"rate_median", jnum(r.rate_med)},
                             {"rate_min", jnum(r.rate_min)},
                             {"rate_max", jnum(r.rate_max)},
                             {"speedup", jnum(r.speedup)},
                             {"speedup_min", jnum(r.speedup_min)},
                             {"speedup_max", jnum(r.speedup_max)},
                             {"efficiency", jnum(r.efficiency)},
                             {"karp_flatt", jnum(r.karp_flatt)},
                             {"gustafson_serial", jnum(r.gustafson_serial)},
                             {"compute_s", jnum(r.split.compute_s)},
                             {"comm_exposed_s", jnum(r.split.comm_exposed_s)},
                             {"comm_overlapped_s", jnum(r.split.comm_overlapped_s)},
                             {"io_s", jnum(r.split.io_s)},
                             {"idle_s", jnum(r.split.idle_s)},
                             {"oversubscribed", r.oversubscribed}});
    }
    md << "\n";
    if (has_split(s)) {
      md << "Time split per step (s, medians over repeats; means over ranks):\n\n"
         << "| N | ranks x threads | compute | comm exposed | comm overlapped | I/O | idle |\n"
         << "|---:|---|---:|---:|---:|---:|---:|\n";
      for (const auto& r : s.rows)
        md << "| " << n_text(r.n) << " | " << layout(r) << " | " << format_number(r.split.compute_s)
           << " | " << format_number(r.split.comm_exposed_s) << " | "
           << format_number(r.split.comm_overlapped_s) << " | " << format_number(r.split.io_s)
           << " | " << format_number(r.split.idle_s) << " |\n";
      md << "\n";
    }

    // --- fit
    const Fit& f = s.fit;
    md << "### " << to_string(f.law) << " fit\n\n";
    nlohmann::json jf = {{"law", to_string(f.law)},
                         {"ok", f.ok},
                         {"p", jnum(f.p)},
                         {"p_baseline", jnum(f.p_baseline)},
                         {"se", jnum(f.se)},
                         {"ci95_lo", jnum(f.ci_lo)},
                         {"ci95_hi", jnum(f.ci_hi)},
                         {"bootstrap_lo", jnum(f.boot_lo)},
                         {"bootstrap_hi", jnum(f.boot_hi)},
                         {"interval_lo", jnum(f.lo)},
                         {"interval_hi", jnum(f.hi)},
                         {"rms_log_residual", jnum(f.rms_log_residual)},
                         {"observations", f.observations},
                         {"dof", f.dof},
                         {"at_bound", f.at_bound}};
    if (!f.ok) {
      md << "No fit: at least two different N are needed.\n\n";
    } else {
      md << "Least squares on log(rate) over all " << f.observations << " measurements (" << f.dof
         << " degrees of freedom):\n\n";
      md << "- parallel fraction **P = " << format_number(f.p, 4) << "**";
      if (finite(f.lo))
        md << ", 95 % interval **[" << format_number(f.lo, 4) << ", " << format_number(f.hi, 4)
           << "]** (union of residual t-interval [" << format_number(f.ci_lo, 4) << ", "
           << format_number(f.ci_hi, 4) << "] and residual bootstrap ["
           << format_number(f.boot_lo, 4) << ", " << format_number(f.boot_hi, 4) << "])";
      else
        md << " (uncertainty unknown: no residual degrees of freedom)";
      md << "\n";
      md << "- serial fraction 1 - P = " << format_number(1 - f.p, 4) << "\n";
      if (f.law == Law::kAmdahl && s.n0 != 1)
        md << "- parallel fraction of the baseline run (N0 = " << n_text(s.n0)
           << "): P0 = " << format_number(f.p_baseline, 4) << "\n";
      md << "- rms residual of log(rate): " << format_number(f.rms_log_residual, 3) << " (about "
         << pct(std::expm1(f.rms_log_residual)) << ")\n\n";
    }
    jst["fit"] = jf;

    // --- predictions
    jst["predictions"] = nlohmann::json::array();
    jst["target_efficiency"] = s.target_efficiency;
    jst["max_n"] = jnum(s.max_n);
    jst["max_n_target"] = jnum(s.max_n_target);
    jst["max_n_target_lo"] = jnum(s.max_n_target_lo);
    jst["max_n_target_hi"] = jnum(s.max_n_target_hi);
    jst["max_n_unbounded"] = std::isinf(s.max_n_target);
    if (f.ok) {
      md << "### Predictions\n\n";
      if (!s.predictions.empty()) {
        md << "| N | predicted " << (weak ? "scaled speedup" : "speedup")
           << " [interval] | predicted efficiency [interval] |\n|---:|---|---|\n";
        for (const auto& p : s.predictions) {
          md << "| " << n_text(p.n) << " | " << format_number(p.speedup) << " ["
             << format_number(p.speedup_lo) << ", " << format_number(p.speedup_hi) << "] | "
             << format_number(p.efficiency, 3) << " [" << format_number(p.efficiency_lo, 3) << ", "
             << format_number(p.efficiency_hi, 3) << "] |\n";
          predcsv << csv_text(s.study.name) << ',' << to_string(f.law) << ',' << csv_num(p.n) << ','
                  << csv_num(p.speedup) << ',' << csv_num(p.speedup_lo) << ','
                  << csv_num(p.speedup_hi) << ',' << csv_num(p.efficiency) << ','
                  << csv_num(p.efficiency_lo) << ',' << csv_num(p.efficiency_hi) << "\n";
          jst["predictions"].push_back({{"n", jnum(p.n)},
                                        {"speedup", jnum(p.speedup)},
                                        {"speedup_lo", jnum(p.speedup_lo)},
                                        {"speedup_hi", jnum(p.speedup_hi)},
                                        {"efficiency", jnum(p.efficiency)},
                                        {"efficiency_lo", jnum(p.efficiency_lo)},
                                        {"efficiency_hi", jnum(p.efficiency_hi)}});
        }
        md << "\n";
      }
      md << "Largest N with predicted efficiency >= " << format_number(s.target_efficiency, 3)
         << ": **" << n_text(s.max_n_target) << "**";
      if (finite(s.max_n_target_lo) || std::isinf(s.max_n_target_lo))
        md << " (from the P interval: " << n_text(s.max_n_target_lo) << " to "
           << n_text(s.max_n_target_hi) << ")";
      if (finite(s.max_n_target) && s.max_n_target >= 1)
        md << "; largest power of two: "
           << n_text(std::exp2(std::floor(std::log2(s.max_n_target) + 1e-12)));
      md << ".\n\n";
    }
    fitcsv << csv_text(s.study.name) << ',' << to_string(f.law) << ',' << csv_num(s.n0) << ','
           << csv_num(f.p) << ',' << csv_num(f.p_baseline) << ',' << csv_num(f.se) << ','
           << csv_num(f.ci_lo) << ',' << csv_num(f.ci_hi) << ',' << csv_num(f.boot_lo) << ','
           << csv_num(f.boot_hi) << ',' << csv_num(f.lo) << ',' << csv_num(f.hi) << ','
           << csv_num(f.rms_log_residual) << ',' << f.observations << ',' << f.dof << ','
           << csv_num(s.target_efficiency) << ',' << csv_num(s.max_n_target) << ','
           << csv_num(s.max_n_target_lo) << ',' << csv_num(s.max_n_target_hi) << ','
           << (std::isinf(s.max_n_target) ? "true" : "false") << "\n";

    // --- communication model
    md << "### Communication model (alpha-beta)\n\n";
    nlohmann::json jc = {{"ok", cm.ok}};
    if (!cm.ok) {
      md << "Not evaluated: " << (cm.why_not.empty() ? "no parameters" : cm.why_not) << ".\n\n";
      jc["why_not"] = cm.why_not;
    } else {
      const auto& p = cm.params;
      md << "- ring links (between ranks; between nodes in the hierarchical model): alpha = "
         << format_number(p.inter.alpha_s * 1e6)
         << " us, beta = " << format_number(p.inter.beta_s_per_byte * 1e9) << " ns/byte (bandwidth "
         << format_number(1e-9 / p.inter.beta_s_per_byte) << " GB/s)";
      if (p.intra.valid())
        md << "; intra-node: alpha = " << format_number(p.intra.alpha_s * 1e6)
           << " us, beta = " << format_number(p.intra.beta_s_per_byte * 1e9) << " ns/byte";
      md << "\n- source: " << p.source
         << "\n- gradient bytes per step: " << format_number(p.grad_bytes)
         << "; ranks per node: " << format_number(p.ranks_per_node)
         << "\n- non-communication time per step at N0: " << format_number(cm.work_s_baseline)
         << " s (" << cm.work_source
         << ")\n- no overlap of communication with compute is assumed\n\n";
      md << "Efficiency, model vs. measured:\n\n| N | ranks | measured |";
      for (const auto& v : cm.variants) md << ' ' << v.name << " |";
      md << "\n|---:|---:|---:|";
      for (std::size_t i = 0; i < cm.variants.size(); ++i) md << "---:|";
      md << "\n";
      jc["alpha_s"] = jnum(p.inter.alpha_s);
      jc["beta_s_per_byte"] = jnum(p.inter.beta_s_per_byte);
      jc["intra_alpha_s"] = jnum(p.intra.alpha_s);
      jc["intra_beta_s_per_byte"] = jnum(p.intra.beta_s_per_byte);
      jc["grad_bytes"] = jnum(p.grad_bytes);
      jc["ranks_per_node"] = jnum(p.ranks_per_node);
      jc["source"] = p.source;
      jc["work_s_baseline"] = jnum(cm.work_s_baseline);
      jc["points"] = nlohmann::json::array();
      for (const auto& pt : cm.points) {
        md << "| " << n_text(pt.n) << (pt.measured ? "" : " (predicted)") << " | "
           << n_text(pt.ranks) << " | " << format_number(pt.efficiency_measured, 3) << " |";
        nlohmann::json jp = {{"n", jnum(pt.n)},
                             {"ranks", jnum(pt.ranks)},
                             {"measured", pt.measured},
                             {"efficiency_measured", jnum(pt.efficiency_measured)}};
        for (std::size_t v = 0; v < cm.variants.size(); ++v) {
          md << ' ' << format_number(pt.efficiency[v], 3) << " |";
          jp["model"][cm.variants[v].name] = {{"step_s", jnum(pt.step_s[v])},
                                              {"efficiency", jnum(pt.efficiency[v])}};
          commcsv << csv_text(s.study.name) << ',' << csv_text(cm.variants[v].name) << ','
                  << csv_num(pt.n) << ',' << csv_num(pt.ranks) << ','
                  << (pt.measured ? "true" : "false") << ',' << csv_num(pt.efficiency_measured)
                  << ',' << csv_num(pt.step_s[v]) << ',' << csv_num(pt.efficiency[v]) << "\n";
        }
        md << "\n";
        jc["points"].push_back(jp);
      }
      md << "\n";
    }
    jst["comm_model"] = jc;

    // --- plots
    md << "### Plots\n\n";
    std::vector<std::pair<std::string, std::string>> plots = {
        {prefix + "speedup", speedup_svg(s)}, {prefix + "efficiency", efficiency_svg(s, cm)}};
    if (has_split(s)) plots.push_back({prefix + "time-split", split_svg(s)});
    jst["plots"] = nlohmann::json::array();
    for (const auto& [name, svg] : plots) {
      write_file(dir / (name + ".svg"), svg, out);
      md << "![" << name << "](" << name << ".svg)\n\n";
      std::string png_line = "SVG: [" + name + ".svg](" + name + ".svg)";
      jst["plots"].push_back(name + ".svg");
      if (png_ok) {
        std::string why;
        if (svg_to_png((dir / (name + ".svg")).string(), (dir / (name + ".png")).string(), &why)) {
          out.files.push_back((dir / (name + ".png")).string());
          out.png_written = true;
          png_line += ", PNG: [" + name + ".png](" + name + ".png)";
          jst["plots"].push_back(name + ".png");
        } else {
          png_ok = false;
          out.png_note = "PNG conversion failed: " + why + "; SVG only.";
        }
      }
      md << png_line << "\n\n";
    }
    js["studies"].push_back(jst);
  }
  if (!out.png_note.empty() && out.png_written) md << "> " << out.png_note << "\n";

  write_file(dir / "table.csv", table.str(), out);
  write_file(dir / "fit.csv", fitcsv.str(), out);
  write_file(dir / "predictions.csv", predcsv.str(), out);
  write_file(dir / "comm_model.csv", commcsv.str(), out);
  js["png_note"] = out.png_note;
  write_file(dir / "report.json", js.dump(2) + "\n", out);
  out.markdown_path = (dir / "report.md").string();
  write_file(dir / "report.md", md.str(), out);
  return out;
}

}  // namespace hpcml::analysis

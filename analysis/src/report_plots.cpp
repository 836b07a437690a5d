#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <utility>

#include "hpcml/analysis/plot.hpp"
#include "hpcml/analysis/report.hpp"
#include "hpcml/core/process_path.hpp"
#include "report_format.hpp"

namespace hpcml::analysis {

namespace fs = std::filesystem;

using detail::finite;
using detail::has_split;
using detail::layout;
using detail::n_text;

namespace {

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

const char* kColors[] = {"#d62728", "#2ca02c", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

// The study's measured points as unconnected markers, y = row.*value.
Series measured_series(const StudyResult& s, std::string label, double Row::*value) {
  Series meas;
  meas.label = std::move(label);
  meas.color = "#1f77b4";
  meas.line = false;
  meas.markers = true;
  for (const auto& r : s.rows) {
    meas.x.push_back(r.n);
    meas.y.push_back(r.*value);
  }
  return meas;
}

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
  Series meas = measured_series(s, "measured (median, bars: min-max over repeats)", &Row::speedup);
  for (const auto& r : s.rows) {
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
  c.series.push_back(measured_series(s, "measured (median)", &Row::efficiency));
  return render_line_chart(c);
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

// The multi-term model against the measured time per N, with the fits made
// without the held-out N extended over them (only when the model was fitted).
std::string time_model_svg(const StudyResult& s) {
  const MultiTermResult& m = s.multi_term;
  LineChart c;
  c.title = s.study.name + ": time per N and the multi-term model";
  c.x_label = "N = ranks x threads per rank (processing elements, log2 scale)";
  c.y_label = "t(N) (" + m.time_unit + ", log2 scale)";
  c.log2_y = true;
  const auto grid = model_grid(m.n.front(), std::max(m.n.back(), 2 * m.n.front()));
  Series all;
  all.label = "multi-term, all N: " + terms_text(m.fit.mask);
  all.color = "#d62728";
  for (double n : grid) {
    all.x.push_back(n);
    all.y.push_back(m.fit.predict(n));
  }
  c.series.push_back(all);
  const Holdout& h = m.holdout;
  if (h.ok) {
    const std::string upto = " fitted to N <= " + n_text(h.train_max_n);
    if (h.multiterm_mask) {
      Series mt;
      mt.label = "multi-term" + upto + ": " + terms_text(h.multiterm_mask);
      mt.color = "#ff7f0e";
      mt.dash = "8,3";
      for (double n : grid) {
        mt.x.push_back(n);
        mt.y.push_back(multiterm_time(h.multiterm_coef, n));
      }
      c.series.push_back(mt);
    }
    for (bool gus : {false, true}) {
      Series law;
      law.label = std::string(gus ? "Gustafson" : "Amdahl") + upto;
      law.color = gus ? "#8c564b" : "#2ca02c";
      law.dash = gus ? "2,3" : "5,3";
      for (double n : grid) {
        law.x.push_back(n);
        law.y.push_back(h.law_time(gus, n));
      }
      c.series.push_back(law);
    }
  }
  Series meas;
  meas.label = "measured (median per N)";
  meas.color = "#1f77b4";
  meas.line = false;
  meas.markers = true;
  meas.x = m.n;
  meas.y = m.t;
  c.series.push_back(meas);
  return render_line_chart(c);
}

}  // namespace

ReportPlots write_plots(const std::string& dir, const std::vector<ReportStudy>& studies, bool png,
                        ReportOutput& out) {
  ReportPlots plots;
  bool png_ok = png;
  if (png_ok && find_on_path("rsvg-convert").empty()) {
    png_ok = false;
    out.png_note =
        "PNG plots were not written: rsvg-convert is not installed (Debian package "
        "librsvg2-bin); the SVG plots are complete.";
  } else if (!png) {
    out.png_note = "PNG plots were not requested.";
  }
  plots.note_before = out.png_note;
  // Names that differ only in case or punctuation ("Run A", "run-a") give one slug:
  // later ones get -2, -3, ... so no study's plots overwrite another's.
  std::set<std::string> used;
  for (const auto& rs : studies) {
    const StudyResult& s = rs.result;
    std::string base = slug(s.study.name), unique = base;
    for (int k = 2; !used.insert(unique).second; ++k) unique = base + "-" + std::to_string(k);
    const std::string prefix = studies.size() == 1 ? "" : unique + "-";
    std::vector<std::pair<std::string, std::string>> svgs = {
        {prefix + "speedup", speedup_svg(s)}, {prefix + "efficiency", efficiency_svg(s, rs.comm)}};
    if (has_split(s)) svgs.push_back({prefix + "time-split", split_svg(s)});
    if (s.multi_term.fit.ok) svgs.push_back({prefix + "time-model", time_model_svg(s)});
    auto& files = plots.studies.emplace_back();
    for (const auto& [name, svg] : svgs) {
      const std::string svg_path = (fs::path(dir) / (name + ".svg")).string();
      const std::string png_path = (fs::path(dir) / (name + ".png")).string();
      detail::write_file(svg_path, svg, out);
      PlotFile f{name, false};
      if (png_ok) {
        std::string why;
        if (svg_to_png(svg_path, png_path, &why)) {
          out.files.push_back(png_path);
          out.png_written = true;
          f.png = true;
        } else {
          png_ok = false;
          out.png_note = "PNG conversion failed: " + why + "; SVG only.";
        }
      }
      files.push_back(f);
    }
  }
  plots.note = out.png_note;
  plots.png_written = out.png_written;
  return plots;
}

}  // namespace hpcml::analysis

#include <cmath>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "hpcml/analysis/report.hpp"
#include "report_format.hpp"

namespace hpcml::analysis {

using detail::finite;
using detail::layout;
using detail::n_text;

namespace {

std::string pct(double v) { return finite(v) ? format_number(100.0 * v, 3) + " %" : "n/a"; }

void header(std::ostream& md, const StudyResult& s) {
  md << "## " << s.study.name << " — " << to_string(s.study.mode) << " scaling\n\n";
  for (const auto& n : s.study.notes) md << "- " << n << "\n";
  md << "- baseline N0 = " << n_text(s.n0)
     << " (the smallest N measured); speedup and efficiency are relative to it\n\n";
  if (!s.warnings.empty()) {
    md << "**Warnings**\n\n";
    for (const auto& w : s.warnings) md << "- ⚠ " << w << "\n";
    md << "\n";
  }
}

void measurements(std::ostream& md, const StudyResult& s) {
  const bool weak = s.study.mode == Mode::kWeak;
  md << "### Measurements\n\n";
  md << "| N | ranks x threads | nodes | repeats | time/step (s): median [min, max] | rate ("
     << detail::rate_unit(s) << ") | " << (weak ? "scaled speedup" : "speedup")
     << " S(N) [min, max] | efficiency E(N) | Karp–Flatt e(N) |"
     << (weak ? " Gustafson serial s(N) |" : "") << "\n";
  md << "|---:|---|---:|---:|---|---:|---|---:|---:|" << (weak ? "---:|" : "") << "\n";
  for (const auto& r : s.rows) {
    md << "| " << n_text(r.n) << " | " << r.ranks << " x " << r.threads
       << (r.oversubscribed ? " (oversubscribed)" : "") << " | " << r.nodes << " | " << r.repeats
       << " | " << format_number(r.time_med) << " [" << format_number(r.time_min) << ", "
       << format_number(r.time_max) << "] | " << format_number(r.rate_med) << " | "
       << format_number(r.speedup) << " [" << format_number(r.speedup_min) << ", "
       << format_number(r.speedup_max) << "] | " << format_number(r.efficiency, 3) << " | "
       << format_number(r.karp_flatt, 3) << " |"
       << (weak ? " " + format_number(r.gustafson_serial, 3) + " |" : "") << "\n";
  }
  md << "\n";
  if (detail::has_split(s)) {
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
}

void fit(std::ostream& md, const StudyResult& s) {
  const Fit& f = s.fit;
  md << "### " << to_string(f.law) << " fit\n\n";
  if (!f.ok) {
    md << "No fit: at least two different N are needed.\n\n";
    return;
  }
  md << "Least squares on log(rate) over all " << f.observations << " measurements (" << f.dof
     << " degrees of freedom):\n\n";
  md << "- parallel fraction **P = " << format_number(f.p, 4) << "**";
  if (finite(f.lo))
    md << ", 95 % interval **[" << format_number(f.lo, 4) << ", " << format_number(f.hi, 4)
       << "]** (union of residual t-interval [" << format_number(f.ci_lo, 4) << ", "
       << format_number(f.ci_hi, 4) << "] and residual bootstrap [" << format_number(f.boot_lo, 4)
       << ", " << format_number(f.boot_hi, 4) << "])";
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

void predictions(std::ostream& md, const StudyResult& s) {
  if (!s.fit.ok) return;
  const bool weak = s.study.mode == Mode::kWeak;
  md << "### Predictions\n\n";
  if (!s.predictions.empty()) {
    md << "| N | predicted " << (weak ? "scaled speedup" : "speedup")
       << " [interval] | predicted efficiency [interval] |\n|---:|---|---|\n";
    for (const auto& p : s.predictions)
      md << "| " << n_text(p.n) << " | " << format_number(p.speedup) << " ["
         << format_number(p.speedup_lo) << ", " << format_number(p.speedup_hi) << "] | "
         << format_number(p.efficiency, 3) << " [" << format_number(p.efficiency_lo, 3) << ", "
         << format_number(p.efficiency_hi, 3) << "] |\n";
    md << "\n";
  }
  md << "Largest N with predicted efficiency >= " << format_number(s.target_efficiency, 3) << ": **"
     << n_text(s.max_n_target) << "**";
  if (finite(s.max_n_target_lo) || std::isinf(s.max_n_target_lo))
    md << " (from the P interval: " << n_text(s.max_n_target_lo) << " to "
       << n_text(s.max_n_target_hi) << ")";
  if (finite(s.max_n_target) && s.max_n_target >= 1)
    md << "; largest power of two: "
       << n_text(std::exp2(std::floor(std::log2(s.max_n_target) + 1e-12)));
  md << ".\n\n";
}

std::string coef_list(unsigned mask, const std::array<double, kTermCount>& coef) {
  static const char* names[] = {"a", "b", "c", "d"};
  std::string out;
  for (int j = 0; j < kTermCount; ++j)
    if (mask & (1u << j))
      out += (out.empty() ? "" : ", ") + std::string(names[j]) + " = " +
             format_number(coef[static_cast<std::size_t>(j)]);
  return out;
}

// A prediction with its error relative to the measurement: "1.23 (+4.5 %)".
std::string with_error(double predicted, double measured) {
  if (!finite(predicted)) return "n/a";
  std::string out = format_number(predicted);
  if (finite(measured) && measured > 0) {
    const double e = predicted / measured - 1.0;
    out += " (" + std::string(e >= 0 ? "+" : "") + format_number(100.0 * e, 3) + " %)";
  }
  return out;
}

void multi_term(std::ostream& md, const StudyResult& s) {
  const MultiTermResult& m = s.multi_term;
  if (!m.evaluated) return;
  md << "### Multi-term model\n\n";
  md << "time(N) = a + b/N + c*log2 N + d*N fitted to one time per N (t = " << m.time_unit
     << "; the median over the points at that N): least squares on the relative error, every "
        "coefficient >= 0, terms chosen by leave-one-N-out cross-validation. Its numbers are in "
        "`multiterm.csv`, `holdout.csv` and `report.json` (`multi_term`).\n\n";
  if (!m.fit.ok) {
    md << "Not fitted: " << m.fit.why_not << ".\n\n";
  } else {
    md << "- chosen terms: **" << terms_text(m.fit.mask) << "**; "
       << coef_list(m.fit.mask, m.fit.coef) << "\n"
       << "- cross-validation error (rms relative, leave one N out): **" << pct(m.fit.cv_rms_rel)
       << "**; in-sample rms relative error " << pct(m.fit.rms_rel) << "\n\n";
    md << "| terms | coefficients | CV error | in-sample error |\n|---|---|---:|---:|\n";
    for (const auto& c : m.fit.candidates)
      md << "| " << terms_text(c.mask) << (c.mask == m.fit.mask ? " (chosen)" : "") << " | "
         << coef_list(c.mask, c.coef) << " | " << pct(c.cv_rms_rel) << " | " << pct(c.rms_rel)
         << " |\n";
    md << "\n";
  }
  const Holdout& h = m.holdout;
  md << "#### Held-out prediction\n\n";
  if (!h.ok) {
    md << "Not computed: " << h.why_not << ".\n\n";
    return;
  }
  md << "Every model fitted to N <= " << n_text(h.train_max_n) << " only, predicting the largest "
     << h.held_out << " N (t in " << m.time_unit
     << "; relative error in brackets). Amdahl P = " << format_number(h.amdahl_p, 4)
     << ", Gustafson P = " << format_number(h.gustafson_p, 4) << ", multi-term: "
     << (h.multiterm_mask
             ? terms_text(h.multiterm_mask) + "; " + coef_list(h.multiterm_mask, h.multiterm_coef)
             : std::string("not fitted"))
     << ".\n\n";
  md << "| N | measured | Amdahl | Gustafson | multi-term |\n|---:|---:|---:|---:|---:|\n";
  for (const auto& p : h.points)
    md << "| " << n_text(p.n) << " | " << format_number(p.measured) << " | "
       << with_error(p.amdahl, p.measured) << " | " << with_error(p.gustafson, p.measured) << " | "
       << with_error(p.multiterm, p.measured) << " |\n";
  md << "\n";
}

void comm_model(std::ostream& md, const CommModelResult& cm) {
  md << "### Communication model (alpha-beta)\n\n";
  if (!cm.ok) {
    md << "Not evaluated: " << (cm.why_not.empty() ? "no parameters" : cm.why_not) << ".\n\n";
    return;
  }
  const auto& p = cm.params;
  md << "- ring links (between ranks; between nodes in the hierarchical model): alpha = "
     << format_number(p.inter.alpha_s * 1e6)
     << " us, beta = " << format_number(p.inter.beta_s_per_byte * 1e9) << " ns/byte (bandwidth "
     << format_number(1e-9 / p.inter.beta_s_per_byte) << " GB/s)";
  if (p.intra.valid())
    md << "; intra-node: alpha = " << format_number(p.intra.alpha_s * 1e6)
       << " us, beta = " << format_number(p.intra.beta_s_per_byte * 1e9) << " ns/byte";
  md << "\n- source: " << p.source
     << "\n- gradient bytes per step: " << format_number(p.grad_bytes);
  if (!p.bucket_bytes.empty()) {
    md << ", in " << p.bucket_bytes.size() << " all-reduce(s) of";
    for (std::size_t i = 0; i < p.bucket_bytes.size(); ++i)
      md << (i ? ", " : " ") << format_number(p.bucket_bytes[i]);
    md << " bytes (each pays its own latency)";
  }
  md << "; ranks per node: " << format_number(p.ranks_per_node)
     << "\n- non-communication time per step at N0: " << format_number(cm.work_s_baseline) << " s ("
     << cm.work_source << ")\n- no overlap of communication with compute is assumed\n";
  if (has_auto_variant(cm.variants)) {
    auto bytes = [](double b) { return std::to_string(static_cast<long long>(b)); };
    md << "- " << kAutoVariantName
       << ": each all-reduce takes the comm layer's automatic choice for its size (one node: "
          "hierarchical; several: <= "
       << bytes(p.thresholds.small_max_bytes)
       << " B recursive_doubling, <= " << bytes(p.thresholds.medium_max_bytes)
       << " B hierarchical (ring with one rank per node), larger ring); per all-reduce";
    // Runs of rank counts with the same choices: "2 ranks: a, b; 4-256 ranks: a, c".
    std::vector<AutoAlgo> last;
    double first = 0, prev = 0;
    bool any = false;
    auto flush = [&] {
      if (last.empty()) return;
      md << (any ? "; " : ": ") << n_text(first) << (first == prev ? "" : "-" + n_text(prev))
         << " ranks:";
      for (std::size_t i = 0; i < last.size(); ++i) md << (i ? ", " : " ") << to_string(last[i]);
      any = true;
    };
    for (const auto& pt : cm.points) {
      auto choice = auto_choices(p, pt.ranks);
      if (!last.empty() && choice == last && pt.ranks >= prev) {
        prev = pt.ranks;
        continue;
      }
      flush();
      last = std::move(choice);
      first = prev = pt.ranks;
    }
    flush();
    md << "\n";
  }
  md << "\n";
  md << "Efficiency, model vs. measured:\n\n| N | ranks | measured |";
  for (const auto& v : cm.variants) md << ' ' << v.name << " |";
  md << "\n|---:|---:|---:|";
  for (std::size_t i = 0; i < cm.variants.size(); ++i) md << "---:|";
  md << "\n";
  for (const auto& pt : cm.points) {
    md << "| " << n_text(pt.n) << (pt.measured ? "" : " (predicted)") << " | " << n_text(pt.ranks)
       << " | " << format_number(pt.efficiency_measured, 3) << " |";
    for (std::size_t v = 0; v < cm.variants.size(); ++v)
      md << ' ' << format_number(pt.efficiency[v], 3) << " |";
    md << "\n";
  }
  md << "\n";
}

void plot_links(std::ostream& md, const std::vector<PlotFile>& plots) {
  md << "### Plots\n\n";
  for (const auto& f : plots) {
    md << "![" << f.name << "](" << f.name << ".svg)\n\n";
    md << "SVG: [" << f.name << ".svg](" << f.name << ".svg)";
    if (f.png) md << ", PNG: [" << f.name << ".png](" << f.name << ".png)";
    md << "\n\n";
  }
}

}  // namespace

std::string report_markdown(const std::vector<ReportStudy>& studies, const ReportOptions& options,
                            const ReportPlots& plots) {
  std::ostringstream md;
  md << "# " << options.title << "\n\n";
  for (const auto& line : options.provenance) md << "- " << line << "\n";
  if (!options.provenance.empty()) md << "\n";
  md << "How every number is computed: see docs/scaling.md in the hpcml sources. "
        "Every number below is also in `table.csv`, `fit.csv`, `predictions.csv`, "
        "`comm_model.csv` and `report.json`.\n\n";
  if (!plots.note_before.empty()) md << "> " << plots.note_before << "\n\n";
  for (std::size_t i = 0; i < studies.size(); ++i) {
    const StudyResult& s = studies[i].result;
    header(md, s);
    measurements(md, s);
    fit(md, s);
    predictions(md, s);
    multi_term(md, s);
    comm_model(md, studies[i].comm);
    plot_links(md, i < plots.studies.size() ? plots.studies[i] : std::vector<PlotFile>{});
  }
  if (!plots.note.empty() && plots.png_written) md << "> " << plots.note << "\n";
  return md.str();
}

}  // namespace hpcml::analysis

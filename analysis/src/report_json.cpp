#include <nlohmann/json.hpp>

#include "hpcml/analysis/report.hpp"
#include "report_format.hpp"

namespace hpcml::analysis {

using detail::finite;

namespace {

using nlohmann::json;

// Unknown values are null.
json jnum(double v) { return finite(v) ? json(v) : json(nullptr); }

json row_json(const Row& r) {
  return {{"n", jnum(r.n)},
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
          {"oversubscribed", r.oversubscribed}};
}

json fit_json(const Fit& f) {
  return {{"law", to_string(f.law)},
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
}

json comm_json(const CommModelResult& cm) {
  json jc = {{"ok", cm.ok}};
  if (!cm.ok) {
    jc["why_not"] = cm.why_not;
    return jc;
  }
  const auto& p = cm.params;
  jc["alpha_s"] = jnum(p.inter.alpha_s);
  jc["beta_s_per_byte"] = jnum(p.inter.beta_s_per_byte);
  jc["intra_alpha_s"] = jnum(p.intra.alpha_s);
  jc["intra_beta_s_per_byte"] = jnum(p.intra.beta_s_per_byte);
  jc["grad_bytes"] = jnum(p.grad_bytes);
  jc["bucket_bytes"] = p.bucket_bytes;
  jc["ranks_per_node"] = jnum(p.ranks_per_node);
  jc["source"] = p.source;
  jc["work_s_baseline"] = jnum(cm.work_s_baseline);
  const bool automatic = has_auto_variant(cm.variants);
  if (automatic)
    jc["auto_thresholds"] = {{"small_max_bytes", jnum(p.thresholds.small_max_bytes)},
                             {"medium_max_bytes", jnum(p.thresholds.medium_max_bytes)}};
  jc["points"] = json::array();
  for (const auto& pt : cm.points) {
    json jp = {{"n", jnum(pt.n)},
               {"ranks", jnum(pt.ranks)},
               {"measured", pt.measured},
               {"efficiency_measured", jnum(pt.efficiency_measured)}};
    for (std::size_t v = 0; v < cm.variants.size(); ++v)
      jp["model"][cm.variants[v].name] = {{"step_s", jnum(pt.step_s[v])},
                                          {"efficiency", jnum(pt.efficiency[v])}};
    if (automatic) {  // the algorithm of each all-reduce (bucket) at this point
      jp["auto_algorithms"] = json::array();
      for (AutoAlgo a : auto_choices(p, pt.ranks)) jp["auto_algorithms"].push_back(to_string(a));
    }
    jc["points"].push_back(jp);
  }
  return jc;
}

json multiterm_json(const MultiTermResult& m) {
  json j = {{"ok", m.fit.ok}, {"time_unit", m.time_unit}, {"points", m.fit.points}};
  auto coef_json = [](unsigned mask, const std::array<double, kTermCount>& coef) {
    static const char* names[] = {"a", "b", "c", "d"};
    json c = json::object();
    for (int k = 0; k < kTermCount; ++k)
      c[names[k]] = (mask & (1u << k)) ? jnum(coef[static_cast<std::size_t>(k)]) : json(nullptr);
    return c;
  };
  if (!m.fit.ok) {
    j["why_not"] = m.fit.why_not;
  } else {
    j["terms"] = terms_text(m.fit.mask);
    j["coefficients"] = coef_json(m.fit.mask, m.fit.coef);
    j["cv_rms_rel_error"] = jnum(m.fit.cv_rms_rel);
    j["rms_rel_error"] = jnum(m.fit.rms_rel);
    j["candidates"] = json::array();
    for (const auto& c : m.fit.candidates)
      j["candidates"].push_back({{"terms", terms_text(c.mask)},
                                 {"coefficients", coef_json(c.mask, c.coef)},
                                 {"cv_rms_rel_error", jnum(c.cv_rms_rel)},
                                 {"rms_rel_error", jnum(c.rms_rel)}});
  }
  const Holdout& h = m.holdout;
  json jh = {{"ok", h.ok}, {"held_out", h.held_out}};
  if (!h.ok) {
    jh["why_not"] = h.why_not;
  } else {
    jh["train_max_n"] = jnum(h.train_max_n);
    jh["amdahl_p"] = jnum(h.amdahl_p);
    jh["gustafson_p"] = jnum(h.gustafson_p);
    jh["multiterm_terms"] = h.multiterm_mask ? json(terms_text(h.multiterm_mask)) : json(nullptr);
    jh["multiterm_coefficients"] = coef_json(h.multiterm_mask, h.multiterm_coef);
    jh["points"] = json::array();
    auto rel = [](double p, double meas) {
      return finite(p) && finite(meas) && meas > 0 ? json(p / meas - 1.0) : json(nullptr);
    };
    for (const auto& p : h.points)
      jh["points"].push_back({{"n", jnum(p.n)},
                              {"measured", jnum(p.measured)},
                              {"amdahl", jnum(p.amdahl)},
                              {"amdahl_rel_error", rel(p.amdahl, p.measured)},
                              {"gustafson", jnum(p.gustafson)},
                              {"gustafson_rel_error", rel(p.gustafson, p.measured)},
                              {"multiterm", jnum(p.multiterm)},
                              {"multiterm_rel_error", rel(p.multiterm, p.measured)}});
  }
  j["holdout"] = jh;
  return j;
}

json study_json(const ReportStudy& rs, const std::vector<PlotFile>& plots) {
  const StudyResult& s = rs.result;
  json jst;
  jst["name"] = s.study.name;
  jst["mode"] = to_string(s.study.mode);
  jst["n0"] = jnum(s.n0);
  jst["notes"] = s.study.notes;
  jst["warnings"] = s.warnings;
  jst["rate_unit"] = detail::rate_unit(s);
  jst["rows"] = json::array();
  for (const auto& r : s.rows) jst["rows"].push_back(row_json(r));
  jst["fit"] = fit_json(s.fit);
  jst["predictions"] = json::array();
  if (s.fit.ok) {
    for (const auto& p : s.predictions)
      jst["predictions"].push_back({{"n", jnum(p.n)},
                                    {"speedup", jnum(p.speedup)},
                                    {"speedup_lo", jnum(p.speedup_lo)},
                                    {"speedup_hi", jnum(p.speedup_hi)},
                                    {"efficiency", jnum(p.efficiency)},
                                    {"efficiency_lo", jnum(p.efficiency_lo)},
                                    {"efficiency_hi", jnum(p.efficiency_hi)}});
  }
  jst["target_efficiency"] = s.target_efficiency;
  jst["max_n"] = jnum(s.max_n);
  jst["max_n_target"] = jnum(s.max_n_target);
  jst["max_n_target_lo"] = jnum(s.max_n_target_lo);
  jst["max_n_target_hi"] = jnum(s.max_n_target_hi);
  jst["max_n_unbounded"] = std::isinf(s.max_n_target);
  jst["comm_model"] = comm_json(rs.comm);
  if (s.multi_term.evaluated) jst["multi_term"] = multiterm_json(s.multi_term);
  jst["plots"] = json::array();
  for (const auto& f : plots) {
    jst["plots"].push_back(f.name + ".svg");
    if (f.png) jst["plots"].push_back(f.name + ".png");
  }
  return jst;
}

}  // namespace

std::string report_json(const std::vector<ReportStudy>& studies, const ReportOptions& options,
                        const ReportPlots& plots) {
  json js;
  js["title"] = options.title;
  js["provenance"] = options.provenance;
  js["studies"] = json::array();
  for (std::size_t i = 0; i < studies.size(); ++i) {
    static const std::vector<PlotFile> kNone;
    js["studies"].push_back(
        study_json(studies[i], i < plots.studies.size() ? plots.studies[i] : kNone));
  }
  js["png_note"] = plots.note;
  return js.dump(2) + "\n";
}

}  // namespace hpcml::analysis

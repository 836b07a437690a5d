#include <cstdio>
#include <sstream>

#include "hpcml/analysis/report.hpp"
#include "report_format.hpp"

namespace hpcml::analysis {

using detail::finite;

namespace {

// Unknown values are empty cells.
std::string csv_num(double v) {
  if (!finite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string csv_text(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

void table_rows(std::ostream& table, const StudyResult& s) {
  const std::string unit = detail::rate_unit(s);
  for (const auto& r : s.rows) {
    table << csv_text(s.study.name) << ',' << to_string(s.study.mode) << ',' << csv_num(r.n) << ','
          << r.ranks << ',' << r.threads << ',' << r.nodes << ',' << r.repeats << ','
          << csv_num(r.time_med) << ',' << csv_num(r.time_min) << ',' << csv_num(r.time_max) << ','
          << csv_num(r.rate_med) << ',' << csv_num(r.rate_min) << ',' << csv_num(r.rate_max) << ','
          << csv_text(unit) << ',' << csv_num(r.speedup) << ',' << csv_num(r.speedup_min) << ','
          << csv_num(r.speedup_max) << ',' << csv_num(r.efficiency) << ',' << csv_num(r.karp_flatt)
          << ',' << csv_num(r.gustafson_serial) << ',' << csv_num(r.split.compute_s) << ','
          << csv_num(r.split.comm_exposed_s) << ',' << csv_num(r.split.comm_overlapped_s) << ','
          << csv_num(r.split.io_s) << ',' << csv_num(r.split.idle_s) << ','
          << (r.oversubscribed ? "true" : "false") << "\n";
  }
}

void fit_row(std::ostream& fit, const StudyResult& s) {
  const Fit& f = s.fit;
  fit << csv_text(s.study.name) << ',' << to_string(f.law) << ',' << csv_num(s.n0) << ','
      << csv_num(f.p) << ',' << csv_num(f.p_baseline) << ',' << csv_num(f.se) << ','
      << csv_num(f.ci_lo) << ',' << csv_num(f.ci_hi) << ',' << csv_num(f.boot_lo) << ','
      << csv_num(f.boot_hi) << ',' << csv_num(f.lo) << ',' << csv_num(f.hi) << ','
      << csv_num(f.rms_log_residual) << ',' << f.observations << ',' << f.dof << ','
      << csv_num(s.target_efficiency) << ',' << csv_num(s.max_n_target) << ','
      << csv_num(s.max_n_target_lo) << ',' << csv_num(s.max_n_target_hi) << ','
      << (std::isinf(s.max_n_target) ? "true" : "false") << "\n";
}

void prediction_rows(std::ostream& pred, const StudyResult& s) {
  if (!s.fit.ok) return;
  for (const auto& p : s.predictions)
    pred << csv_text(s.study.name) << ',' << to_string(s.fit.law) << ',' << csv_num(p.n) << ','
         << csv_num(p.speedup) << ',' << csv_num(p.speedup_lo) << ',' << csv_num(p.speedup_hi)
         << ',' << csv_num(p.efficiency) << ',' << csv_num(p.efficiency_lo) << ','
         << csv_num(p.efficiency_hi) << "\n";
}

void comm_rows(std::ostream& comm, const StudyResult& s, const CommModelResult& cm) {
  if (!cm.ok) return;
  for (const auto& pt : cm.points)
    for (std::size_t v = 0; v < cm.variants.size(); ++v)
      comm << csv_text(s.study.name) << ',' << csv_text(cm.variants[v].name) << ',' << csv_num(pt.n)
           << ',' << csv_num(pt.ranks) << ',' << (pt.measured ? "true" : "false") << ','
           << csv_num(pt.efficiency_measured) << ',' << csv_num(pt.step_s[v]) << ','
           << csv_num(pt.efficiency[v]) << "\n";
}

void multiterm_rows(std::ostream& mt, const StudyResult& s) {
  const MultiTermResult& m = s.multi_term;
  if (!m.fit.ok) return;
  for (const auto& c : m.fit.candidates) {
    mt << csv_text(s.study.name) << ',' << csv_text(terms_text(c.mask)) << ','
       << (c.mask == m.fit.mask ? "true" : "false") << ',' << csv_text(m.time_unit);
    for (int j = 0; j < kTermCount; ++j)
      mt << ',' << ((c.mask & (1u << j)) ? csv_num(c.coef[static_cast<std::size_t>(j)]) : "");
    mt << ',' << csv_num(c.cv_rms_rel) << ',' << csv_num(c.rms_rel) << ',' << m.fit.points << "\n";
  }
}

std::string rel_error(double predicted, double measured) {
  return finite(predicted) && finite(measured) && measured > 0 ? csv_num(predicted / measured - 1.0)
                                                               : "";
}

void holdout_rows(std::ostream& ho, const StudyResult& s) {
  const Holdout& h = s.multi_term.holdout;
  if (!h.ok) return;
  for (const auto& p : h.points)
    ho << csv_text(s.study.name) << ',' << csv_num(p.n) << ',' << csv_num(h.train_max_n) << ','
       << csv_text(s.multi_term.time_unit) << ',' << csv_num(p.measured) << ',' << csv_num(p.amdahl)
       << ',' << rel_error(p.amdahl, p.measured) << ',' << csv_num(p.gustafson) << ','
       << rel_error(p.gustafson, p.measured) << ',' << csv_num(p.multiterm) << ','
       << rel_error(p.multiterm, p.measured) << ','
       << csv_text(h.multiterm_mask ? terms_text(h.multiterm_mask) : "") << "\n";
}

}  // namespace

ReportCsv report_csv(const std::vector<ReportStudy>& studies) {
  std::ostringstream table, fit, pred, comm, mt, ho;
  table
      << "study,mode,n,ranks,threads,nodes,repeats,time_s_median,time_s_min,time_s_max,rate_median,"
         "rate_min,rate_max,rate_unit,speedup,speedup_min,speedup_max,efficiency,karp_flatt,"
         "gustafson_serial,compute_s,comm_exposed_s,comm_overlapped_s,io_s,idle_s,oversubscribed\n";
  fit << "study,law,n0,p,p_baseline,se,ci95_lo,ci95_hi,bootstrap_lo,bootstrap_hi,interval_lo,"
         "interval_hi,rms_log_residual,observations,dof,target_efficiency,max_n_target,"
         "max_n_target_lo,max_n_target_hi,max_n_unbounded\n";
  pred << "study,law,n,speedup,speedup_lo,speedup_hi,efficiency,efficiency_lo,efficiency_hi\n";
  comm << "study,variant,n,ranks,measured,efficiency_measured,step_s_model,efficiency_model\n";
  mt << "study,terms,chosen,time_unit,a,b,c,d,cv_rms_rel_error,rms_rel_error,points\n";
  ho << "study,n,train_max_n,time_unit,measured,amdahl,amdahl_rel_error,gustafson,"
        "gustafson_rel_error,multiterm,multiterm_rel_error,multiterm_terms\n";
  for (const auto& rs : studies) {
    multiterm_rows(mt, rs.result);
    holdout_rows(ho, rs.result);
    table_rows(table, rs.result);
    fit_row(fit, rs.result);
    prediction_rows(pred, rs.result);
    comm_rows(comm, rs.result, rs.comm);
  }
  return {table.str(), fit.str(), pred.str(), comm.str(), mt.str(), ho.str()};
}

}  // namespace hpcml::analysis

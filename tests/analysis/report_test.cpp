// CSV input errors, run-directory input, and the files of the report.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "hpcml/analysis/inputs.hpp"
#include "hpcml/analysis/plot.hpp"
#include "hpcml/analysis/report.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/process_path.hpp"

using namespace hpcml::analysis;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("hpcml-analysis-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

std::string write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
  return p.string();
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string error_of(const std::string& csv_text, TempDir& dir) {
  const auto path = write(dir.path() / "t.csv", csv_text);
  try {
    read_csv(path, Mode::kStrong);
  } catch (const hpcml::DataError& e) {
    return e.what();
  }
  return "";
}

// No report file may print a non-finite number.
void expect_no_nan(const fs::path& dir) {
  const std::regex bad(R"((^|[^a-zA-Z])(nan|inf|infinity)([^a-zA-Z]|$))", std::regex::icase);
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto ext = e.path().extension();
    if (ext != ".md" && ext != ".csv" && ext != ".json" && ext != ".svg") continue;
    const std::string text = slurp(e.path());
    EXPECT_FALSE(std::regex_search(text, bad)) << e.path() << " contains a non-finite number";
  }
}

}  // namespace

TEST(AnalysisCsv, ErrorsNameFileLineAndColumn) {
  TempDir d;
  auto e = error_of("n,foo\n1,2\n", d);
  EXPECT_NE(e.find("t.csv:1: missing column: need 'time_s' or 'throughput'"), std::string::npos)
      << e;
  e = error_of("time_s\n1\n", d);
  EXPECT_NE(e.find("missing column: need 'n' or 'ranks'"), std::string::npos) << e;
  e = error_of("# comment\nn,time_s\n1,2.0\n2,abc\n", d);
  EXPECT_NE(e.find("t.csv:4: column 'time_s': expected a number, got 'abc'"), std::string::npos)
      << e;
  e = error_of("n,time_s\n1,2.0\n2,0\n", d);
  EXPECT_NE(e.find("t.csv:3: column 'time_s': expected a value > 0"), std::string::npos) << e;
  e = error_of("n,time_s\n1,2.0\n2\n", d);
  EXPECT_NE(e.find("t.csv:3: expected 2 fields"), std::string::npos) << e;
  e = error_of("n,time_s\n1.5,2.0\n", d);
  EXPECT_NE(e.find("whole number"), std::string::npos) << e;
  e = error_of("n,time_s\n", d);
  EXPECT_NE(e.find("no data rows"), std::string::npos) << e;
  e = error_of("", d);
  EXPECT_NE(e.find("empty"), std::string::npos) << e;
  e = error_of("n,ranks,threads,time_s\n4,2,1,1.0\n", d);
  EXPECT_NE(e.find("ranks x threads"), std::string::npos) << e;
  e = error_of("n,time_s,mode\n1,1,strong\n2,1,weak\n", d);
  EXPECT_NE(e.find("mixes strong and weak"), std::string::npos) << e;
  EXPECT_THROW(read_csv((d.path() / "missing.csv").string(), Mode::kStrong), hpcml::DataError);
}

TEST(AnalysisCsv, StudiesRepeatsAndAliases) {
  TempDir d;
  const auto path = write(d.path() / "a.csv",
                          "Study,N,Seconds,threads,extra\n"
                          "\"a, quoted\",1,1.0,1,x\n"
                          "\"a, quoted\",2,0.6,1,x\n"
                          "\"a, quoted\",2,0.62,1,x\n"
                          "b,2,1.0,2,x\n"
                          "b,4,0.5,2,x\n");
  const auto studies = read_csv(path, Mode::kStrong);
  ASSERT_EQ(studies.size(), 2u);
  EXPECT_EQ(studies[0].name, "a, quoted");
  ASSERT_EQ(studies[0].points.size(), 2u);
  EXPECT_EQ(studies[0].points[1].samples.size(), 2u);
  EXPECT_EQ(studies[1].points[1].ranks, 2);
  EXPECT_EQ(studies[1].points[1].threads, 2);
  bool noted = false;
  for (const auto& n : studies[0].notes) noted = noted || n.find("extra") != std::string::npos;
  EXPECT_TRUE(noted);
  const auto r = analyse(studies[0], {});
  EXPECT_EQ(r.rows[1].repeats, 2);
  EXPECT_NEAR(r.rows[1].time_med, 0.61, 1e-12);
}

TEST(AnalysisPlot, SvgIsWellFormedAndLabelled) {
  LineChart c;
  c.title = "t <&>";
  c.x_label = "N (log2)";
  c.y_label = "speedup";
  c.log2_y = true;
  Series s;
  s.label = "measured";
  s.x = {1, 2, 4, 8};
  s.y = {1, 1.9, 3.5, std::nan("")};
  s.markers = true;
  c.series.push_back(s);
  const std::string svg = render_line_chart(c);
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(svg.find("t &lt;&amp;&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">N (log2)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">measured</text>"), std::string::npos);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '<') - std::count(svg.begin(), svg.end(), '>'), 0);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  // Tick labels on the log2 axis are the powers of two.
  for (const char* t : {">1</text>", ">2</text>", ">4</text>", ">8</text>"})
    EXPECT_NE(svg.find(t), std::string::npos) << t;
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

TEST(AnalysisReport, WritesEveryFileWithoutNaN) {
  TempDir d;
  const auto path = write(d.path() / "in.csv",
                          "n,time_s,compute_s,comm_s,io_s,idle_s,oversubscribed\n"
                          "1,1.00,0.95,0.00,0.05,0,false\n"
                          "2,0.56,0.48,0.03,0.05,0,false\n"
                          "2,0.58,0.48,0.05,0.05,0,false\n"
                          "4,0.34,0.24,0.05,0.05,0,true\n");
  auto studies = read_csv(path, Mode::kStrong);
  std::vector<ReportStudy> rs;
  StudyOptions opt;
  opt.max_n = 256;
  rs.push_back({analyse(studies[0], opt), {}});
  CommModelParams p;
  p.inter = {1e-5, 1e-9};
  p.grad_bytes = 1e6;
  p.ranks_per_node = 4;
  p.source = "test";
  rs[0].comm = model_study(rs[0].result, p);
  ASSERT_TRUE(rs[0].comm.ok);
  // A second, degenerate study (one point) goes in the same report.
  Study one;
  one.name = "single";
  Point pt;
  Sample s;
  s.step_s = 1.0;
  pt.samples.push_back(s);
  one.points.push_back(pt);
  rs.push_back({analyse(one, {}), model_study(analyse(one, {}), {})});

  const auto out_dir = d.path() / "report";
  const auto out = write_report(out_dir.string(), rs, {});
  for (const char* f : {"report.md", "report.json", "table.csv", "fit.csv", "predictions.csv",
                        "comm_model.csv", "scaling-speedup.svg", "scaling-efficiency.svg",
                        "scaling-time-split.svg", "single-speedup.svg"})
    EXPECT_TRUE(fs::exists(out_dir / f)) << f;
  expect_no_nan(out_dir);
  const std::string md = slurp(out_dir / "report.md");
  EXPECT_NE(md.find("![scaling-speedup](scaling-speedup.svg)"), std::string::npos);
  EXPECT_NE(md.find("oversubscribed"), std::string::npos);
  EXPECT_NE(md.find("only one N"), std::string::npos);
  EXPECT_NE(md.find("Karp–Flatt"), std::string::npos);
  EXPECT_NE(slurp(out_dir / "report.json").find("\"p\": null"), std::string::npos);
  const std::string table = slurp(out_dir / "table.csv");
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 1 + 3 + 1);
  if (!hpcml::find_on_path("rsvg-convert").empty()) {
    ASSERT_TRUE(out.png_written) << out.png_note;
    const std::string png = slurp(out_dir / "scaling-speedup.png");
    ASSERT_GE(png.size(), 8u);
    EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  } else {
    EXPECT_FALSE(out.png_written);
    EXPECT_NE(md.find("rsvg-convert is not installed"), std::string::npos);
  }
}

TEST(AnalysisReport, WithoutRsvgConvertWritesSvgOnlyAndSaysSo) {
  TempDir d;
  const char* old = std::getenv("PATH");
  const std::string saved = old ? old : "";
  ::setenv("PATH", (d.path() / "empty-bin").c_str(), 1);
  Study st;
  st.name = "s";
  for (int r : {1, 2}) {
    Point pt;
    pt.ranks = r;
    Sample s;
    s.step_s = 1.0 / r;
    pt.samples.push_back(s);
    st.points.push_back(pt);
  }
  const auto out = write_report((d.path() / "r").string(), {{analyse(st, {}), {}}}, {});
  ::setenv("PATH", saved.c_str(), 1);
  EXPECT_FALSE(out.png_written);
  EXPECT_TRUE(fs::exists(d.path() / "r" / "speedup.svg"));
  EXPECT_FALSE(fs::exists(d.path() / "r" / "speedup.png"));
  EXPECT_NE(slurp(d.path() / "r" / "report.md").find("rsvg-convert is not installed"),
            std::string::npos);
}

TEST(AnalysisRuns, ParameterServerAndAllReduceRunsAreSeparateStudiesNotRepeats) {
  TempDir d;
  auto summary = [&](const std::string& name, int ranks, double step, const std::string& extra) {
    write(d.path() / name / "summary.json",
          "{\"ranks\": " + std::to_string(ranks) +
              ", \"threads_per_rank\": 1, \"nodes\": 1, \"global_batch\": 64, "
              "\"step_s_median\": " +
              std::to_string(step) + extra + "}");
  };
  summary("ar-1", 1, 1.0, "");
  summary("ar-2", 2, 0.6, "");
  summary("ps-1", 1, 1.2, ", \"mode\": \"ps\", \"servers\": 1, \"staleness\": 0");
  summary("ps-2", 2, 0.8, ", \"mode\": \"ps\", \"servers\": 1, \"staleness\": 0");
  summary("ssp-2", 2, 0.7, ", \"mode\": \"ps\", \"servers\": 1, \"staleness\": 2");
  const auto runs = read_runs(d.path().string(), "");
  ASSERT_EQ(runs.studies.size(), 3u);
  const std::string base = d.path().filename().string();
  EXPECT_EQ(runs.studies[0].name, base + ", all-reduce");
  EXPECT_EQ(runs.studies[1].name, base + ", ps (1 server(s), staleness 2)");
  EXPECT_EQ(runs.studies[2].name, base + ", ps (1 server(s), sync)");
  EXPECT_EQ(runs.studies[0].points.size(), 2u);
  EXPECT_EQ(runs.studies[1].points.size(), 1u);
  ASSERT_EQ(runs.studies[2].points.size(), 2u);
  // Each point one run: no all-reduce run counted as a repeat of a ps run.
  for (const auto& st : runs.studies)
    for (const auto& p : st.points) EXPECT_EQ(p.samples.size(), 1u) << st.name;
  EXPECT_EQ(runs.studies[2].points[1].samples[0].step_s, 0.8);
}

TEST(AnalysisRuns, ReadsRunDirectoriesAndGroupsRepeats) {
  TempDir d;
  auto summary = [&](const std::string& name, int ranks, int threads, double step) {
    write(d.path() / name / "summary.json",
          "{\"ranks\": " + std::to_string(ranks) +
              ", \"threads_per_rank\": " + std::to_string(threads) +
              ", \"nodes\": 1, \"global_batch\": 64, \"step_s_median\": " + std::to_string(step) +
              ", \"compute_s_per_step\": 0.1, \"comm_exposed_s_per_step\": 0.01, "
              "\"oversubscribed\": false, \"grad_bytes\": 1000}");
  };
  summary("r1-t1-k0", 1, 1, 1.0);
  summary("r1-t1-k1", 1, 1, 1.1);
  summary("r2-t1-k0", 2, 1, 0.55);
  summary("r2-t2-k0", 2, 2, 0.3);
  const auto runs = read_runs(d.path().string(), "");
  EXPECT_EQ(runs.grad_bytes, 1000);
  // Two thread counts: ranks at 1 thread, ranks at 2 threads (one point), threads at 2 ranks.
  ASSERT_EQ(runs.studies.size(), 3u);
  EXPECT_EQ(runs.studies[0].points.size(), 2u);
  EXPECT_EQ(runs.studies[0].points[0].samples.size(), 2u);
  EXPECT_NEAR(runs.studies[0].points[0].samples[0].throughput, 64.0, 1e-9);
  write(d.path() / "bad" / "summary.json", "{\"ranks\": \"two\"}");
  try {
    read_runs(d.path().string(), "");
    FAIL();
  } catch (const hpcml::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("summary.json: key 'ranks'"), std::string::npos)
        << e.what();
  }
  write(d.path() / "bad" / "summary.json", "{not json");
  EXPECT_THROW(read_runs(d.path().string(), ""), hpcml::DataError);
  EXPECT_THROW(read_runs((d.path() / "nowhere").string(), ""), hpcml::DataError);
}

TEST(AnalysisAllreduce, ReadsBenchOutputAndCsv) {
  TempDir d;
  // Two concatenated `hpcml bench allreduce` outputs (2 and 4 ranks) whose ring
  // rows follow alpha = 10 us, beta = 1 ns/byte exactly; the mpi rows must be ignored.
  const AlphaBeta truth{1e-5, 1e-9};
  std::string text;
  for (int n : {2, 4}) {
    text += "# hpcml bench allreduce: " + std::to_string(n) + " ranks, 1 nodes, float, op sum\n";
    text += "#       size       count algo               |     oop us    algbw\n";
    for (double b : {1024.0, 65536.0, 4194304.0}) {
      char row[256];
      std::snprintf(row, sizeof row,
                    "%12.0f %11.0f %-18s | %10.3f 0.1 0.1 0 | 1.0 0.1 0.1 0 | 1.0\n", b, b / 4,
                    "ring", 1e6 * ring_allreduce_s(truth, n, b));
      text += row;
      std::snprintf(row, sizeof row,
                    "%12.0f %11.0f %-18s | %10.3f 0.1 0.1 0 | 1.0 0.1 0.1 0 | 1.0\n", b, b / 4,
                    "mpi", 5.0);
      text += row;
    }
    text += "# Avg bus bandwidth    :    0.272 GB/s\n";
  }
  const auto path = write(d.path() / "bench.txt", text);
  std::string what;
  const auto samples = read_allreduce_file(path, &what);
  ASSERT_EQ(samples.size(), 6u);
  EXPECT_NE(what.find("algorithm ring"), std::string::npos) << what;
  const auto ab = fit_alpha_beta(samples);
  EXPECT_NEAR(ab.alpha_s, truth.alpha_s, 1e-9);
  EXPECT_NEAR(ab.beta_s_per_byte, truth.beta_s_per_byte, 1e-12);

  const auto csv = write(d.path() / "ar.csv", "ranks,bytes,time_s\n2,1000,1e-5\n2,1e6,1e-3\n");
  EXPECT_EQ(read_allreduce_file(csv, &what).size(), 2u);
  const auto bad = write(d.path() / "bad.txt", "# hpcml bench allreduce: 2 ranks\nfoo bar\n");
  try {
    read_allreduce_file(bad, nullptr);
    FAIL();
  } catch (const hpcml::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:2"), std::string::npos) << e.what();
  }
  const auto badcsv = write(d.path() / "b.csv", "ranks,bytes\n2,1000\n");
  EXPECT_THROW(read_allreduce_file(badcsv, nullptr), hpcml::DataError);
}

// ---- hostile input (issue 10) ----------------------------------------------------------

TEST(AnalysisHostile, EchoedFieldsAreEscapedAndTruncated) {
  TempDir d;
  // A 2 MB field used to give a 2 MB error line.
  auto e = error_of("n,time_s\n1,2.0\n2," + std::string(2000000, '7') + "x\n", d);
  EXPECT_LT(e.size(), 300u) << e.substr(0, 300);
  EXPECT_NE(e.find("t.csv:3: column 'time_s': expected a number, got '777"), std::string::npos)
      << e.substr(0, 300);
  EXPECT_NE(e.find("… (2000001 bytes)'"), std::string::npos) << e.substr(0, 300);
  e = error_of("n,time_s,oversubscribed\n1,2.0,ye\x01s\n", d);
  EXPECT_NE(e.find("got 'ye\\x01s'"), std::string::npos) << e;
  // An enum value with a carriage return (CSV lines end at \n only).
  const auto path = write(d.path() / "m.csv", "n,time_s,mode\n1,2.0,str\rong\n");
  std::string msg;
  try {
    read_csv(path, Mode::kStrong);
  } catch (const hpcml::Error& ex) {
    msg = ex.what();
  }
  EXPECT_NE(msg.find("expected 'strong' or 'weak', got 'str\\rong'"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\r'), std::string::npos);
}

TEST(AnalysisHostile, HugeCountsInSummaryJsonAreErrorsNamingKeyAndFile) {
  TempDir d;
  const std::string body = ", \"step_s_median\": 1.0, \"global_batch\": 64}";
  write(d.path() / "r" / "summary.json", "{\"ranks\": 1e30" + body);
  std::string msg;
  try {
    read_run_summary((d.path() / "r").string());
  } catch (const hpcml::DataError& e) {
    msg = e.what();
  }
  EXPECT_EQ(msg, (d.path() / "r" / "summary.json").string() +
                     ": key 'ranks': expected a whole number in [1, 10^9], got 1e+30");
  write(d.path() / "r" / "summary.json", "{\"ranks\": 2, \"threads_per_rank\": 4294967297" + body);
  EXPECT_THROW(read_run_summary((d.path() / "r").string()), hpcml::DataError);
  write(d.path() / "r" / "summary.json", "{\"ranks\": 2, \"nodes\": -1" + body);
  EXPECT_THROW(read_run_summary((d.path() / "r").string()), hpcml::DataError);
  write(d.path() / "r" / "summary.json", "{\"ranks\": 2" + body);
  const auto rs = read_run_summary((d.path() / "r").string());
  EXPECT_EQ(rs.point.ranks, 2);
  EXPECT_EQ(rs.point.threads, 1);
  EXPECT_EQ(rs.point.nodes, 1);
}

TEST(AnalysisHostile, StudyNamesThatSlugAlikeGetDistinctPlotFiles) {
  TempDir d;
  std::vector<ReportStudy> rs;
  for (const char* name : {"Run A", "run-a", "RUN_A", "run a 2"}) {
    Study st;
    st.name = name;
    for (int r : {1, 2}) {
      Point pt;
      pt.ranks = r;
      Sample s;
      s.step_s = 1.0 / r;
      pt.samples.push_back(s);
      st.points.push_back(pt);
    }
    rs.push_back({analyse(st, {}), {}});
  }
  ReportOptions o;
  o.png = false;
  const auto out = write_report((d.path() / "r").string(), rs, o);
  for (const char* f :
       {"run-a-speedup.svg", "run-a-2-speedup.svg", "run-a-3-speedup.svg", "run-a-2-2-speedup.svg"})
    EXPECT_TRUE(fs::exists(d.path() / "r" / f)) << f;
  // The count reported is the count of files that exist, each once.
  std::size_t on_disk = 0;
  for (const auto& e : fs::directory_iterator(d.path() / "r")) on_disk += e.is_regular_file();
  EXPECT_EQ(out.files.size(), on_disk);
  std::vector<std::string> sorted = out.files;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end());
  // Each study's section links its own plots.
  const std::string md = slurp(d.path() / "r" / "report.md");
  EXPECT_NE(md.find("(run-a-3-speedup.svg)"), std::string::npos);
}

// 10^5 rows (10 measurements repeated 10^4 times) parse and fit with the default
// bootstrap in well under the CTest timeout, giving the fit of the 10 rows.
TEST(AnalysisHostile, HundredThousandRowsFitLikeTheirAggregates) {
  TempDir d;
  const double times[5][2] = {
      {1.00, 1.02}, {0.56, 0.55}, {0.33, 0.34}, {0.21, 0.215}, {0.16, 0.155}};
  std::string small = "n,time_s\n", big = "n,time_s\n";
  std::string block;
  for (int k = 0; k < 5; ++k)
    for (int r = 0; r < 2; ++r)
      block += std::to_string(1 << k) + "," + std::to_string(times[k][r]) + "\n";
  small += block;
  big.reserve(block.size() * 10000 + 16);
  for (int i = 0; i < 10000; ++i) big += block;
  const auto a = analyse(read_csv(write(d.path() / "small.csv", small), Mode::kStrong).at(0), {});
  const auto big_studies = read_csv(write(d.path() / "big.csv", big), Mode::kStrong);
  ASSERT_EQ(big_studies.size(), 1u);
  ASSERT_EQ(big_studies[0].points.size(), 5u);
  EXPECT_EQ(big_studies[0].points[0].samples.size(), 20000u);
  const auto b = analyse(big_studies[0], {});  // default bootstrap: 1000 resamples
  ASSERT_TRUE(a.fit.ok && b.fit.ok);
  EXPECT_NEAR(a.fit.p, b.fit.p, 1e-9);
  EXPECT_NEAR(a.fit.rate1, b.fit.rate1, 1e-9 * a.fit.rate1);
  EXPECT_NEAR(a.fit.rms_log_residual, b.fit.rms_log_residual, 1e-9);
  EXPECT_EQ(b.fit.observations, 100000);
  // With 10^5 observations the intervals are narrow and hold the estimate.
  ASSERT_TRUE(std::isfinite(b.fit.boot_lo) && std::isfinite(b.fit.boot_hi));
  EXPECT_LE(b.fit.boot_lo, b.fit.p + 1e-6);
  EXPECT_GE(b.fit.boot_hi, b.fit.p - 1e-6);
  EXPECT_LT(b.fit.hi - b.fit.lo, a.fit.hi - a.fit.lo);
}

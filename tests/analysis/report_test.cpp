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

// `hpcml report --csv` end to end through the executable.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "common.hpp"

using namespace hpcml_test;

namespace {

nlohmann::json report_json(const fs::path& dir) {
  return nlohmann::json::parse(slurp(dir / "report.json"));
}

void expect_clean(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto ext = e.path().extension();
    if (ext == ".md" || ext == ".csv" || ext == ".json" || ext == ".svg") {
      EXPECT_FALSE(has_non_finite(slurp(e.path()))) << e.path();
    }
  }
}

}  // namespace

TEST(AnalysisCli, ReportFromCsvRecoversExactAmdahl) {
  ASSERT_FALSE(hpcml_exe().empty()) << "HPCML_EXE not set";
  TempDir d("report-cli");
  // Exact Amdahl times with P = 0.93 and a baseline of 2 ranks (T1 = 10 s).
  std::string csv = "# exact Amdahl, P = 0.93\nranks,time_s\n";
  for (int n : {2, 4, 8, 16})
    csv += std::to_string(n) + "," + std::to_string(10.0 * (0.07 + 0.93 / n)) + "\n";
  write_text(d.path() / "exact.csv", csv);
  const auto out = d.path() / "out";
  const auto r = run(hpcml_exe() + " report --csv " + (d.path() / "exact.csv").string() +
                     " --out " + out.string() + " --max-n 256 --target-eff 0.5");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = report_json(out);
  ASSERT_EQ(j["studies"].size(), 1u);
  const auto& s = j["studies"][0];
  EXPECT_EQ(s["n0"].get<double>(), 2.0);
  EXPECT_NEAR(s["fit"]["p"].get<double>(), 0.93, 1e-6);
  EXPECT_EQ(s["predictions"].size(), 4u);  // 32 64 128 256
  // Efficiency relative to N0=2 drops to 0.5 at N = ((2*0.07+0.93)/0.5 - 0.93)/0.07.
  EXPECT_NEAR(s["max_n_target"].get<double>(), ((2 * 0.07 + 0.93) / 0.5 - 0.93) / 0.07, 1e-3);
  for (const char* f :
       {"report.md", "table.csv", "fit.csv", "predictions.csv", "speedup.svg", "efficiency.svg"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  const std::string md = slurp(out / "report.md");
  EXPECT_NE(md.find("hpcml report --csv"), std::string::npos);
  EXPECT_NE(md.find("![speedup](speedup.svg)"), std::string::npos);
  expect_clean(out);
}

TEST(AnalysisCli, BadCsvFailsWithFileLineMessage) {
  ASSERT_FALSE(hpcml_exe().empty());
  TempDir d("report-cli-bad");
  write_text(d.path() / "bad.csv", "n,throughput\n1,100\n2,-5\n");
  auto r = run(hpcml_exe() + " report --csv " + (d.path() / "bad.csv").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("bad.csv:3: column 'throughput'"), std::string::npos) << r.output;
  write_text(d.path() / "cols.csv", "n,speed\n1,100\n");
  r = run(hpcml_exe() + " report --csv " + (d.path() / "cols.csv").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("missing column"), std::string::npos) << r.output;
  r = run(hpcml_exe() + " report");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("either a run/study directory or --csv"), std::string::npos) << r.output;
}

TEST(AnalysisCli, DegenerateCsvGivesWarningsNotNaN) {
  ASSERT_FALSE(hpcml_exe().empty());
  TempDir d("report-cli-degenerate");
  // One point, and a study that gets slower with N; both in one file.
  write_text(d.path() / "deg.csv",
             "study,n,throughput\nsingle,4,100\nslower,1,100\nslower,2,90\nslower,4,80\n");
  const auto out = d.path() / "out";
  const auto r = run(hpcml_exe() + " report --csv " + (d.path() / "deg.csv").string() + " --out " +
                     out.string() + " --alpha 1e-5 --bandwidth-gbps 10 --grad-bytes 1e6");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string md = slurp(out / "report.md");
  EXPECT_NE(md.find("only one N"), std::string::npos);
  EXPECT_NE(md.find("non-monotone"), std::string::npos);
  EXPECT_NE(md.find("reached the bound"), std::string::npos);
  // Throughput-only input has no time per step, so the alpha-beta model says why it is skipped.
  EXPECT_NE(md.find("no time per step"), std::string::npos);
  expect_clean(out);
}

TEST(AnalysisCli, HoldoutOptionPredictsTheLargestNAndRefusesTooFew) {
  ASSERT_FALSE(hpcml_exe().empty());
  TempDir d("report-cli-holdout");
  // Time with a linear overhead: t = 1 + 20/N + 0.05 N (the a + b/N + d*N terms).
  std::string csv = "n,time_s\n";
  for (int n : {1, 2, 4, 8, 16, 32})
    csv += std::to_string(n) + "," + std::to_string(1.0 + 20.0 / n + 0.05 * n) + "\n";
  write_text(d.path() / "lin.csv", csv);
  const auto out = d.path() / "out";
  auto r = run(hpcml_exe() + " report --csv " + (d.path() / "lin.csv").string() + " --out " +
               out.string() + " --holdout 2 --no-png --bootstrap 50");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = report_json(out)["studies"][0]["multi_term"];
  ASSERT_TRUE(j["ok"].get<bool>()) << j.dump();
  EXPECT_EQ(j["terms"], "a + b/N + d*N");
  EXPECT_NEAR(j["coefficients"]["d"].get<double>(), 0.05, 1e-4);
  const auto& h = j["holdout"];
  ASSERT_TRUE(h["ok"].get<bool>()) << h.dump();
  EXPECT_EQ(h["train_max_n"].get<double>(), 8.0);
  ASSERT_EQ(h["points"].size(), 2u);
  EXPECT_EQ(h["points"][1]["n"].get<double>(), 32.0);
  // The multi-term model has the right terms; Amdahl cannot rise with N.
  EXPECT_LT(std::fabs(h["points"][1]["multiterm_rel_error"].get<double>()), 1e-4);
  EXPECT_LT(h["points"][1]["amdahl_rel_error"].get<double>(), -0.2);
  for (const char* f : {"multiterm.csv", "holdout.csv"}) EXPECT_TRUE(fs::exists(out / f)) << f;
  expect_clean(out);

  // Three N cannot hold out two: the report says so and still succeeds.
  write_text(d.path() / "three.csv", "n,time_s\n1,1.0\n2,0.6\n4,0.4\n");
  const auto out3 = d.path() / "out3";
  r = run(hpcml_exe() + " report --csv " + (d.path() / "three.csv").string() + " --out " +
          out3.string() + " --holdout 2 --no-png");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(slurp(out3 / "report.md")
                .find("Not computed: needs at least 5 distinct N (3 to fit, 2 to predict), got 3"),
            std::string::npos);
  expect_clean(out3);
  r = run(hpcml_exe() + " report --csv " + (d.path() / "three.csv").string() + " --holdout -1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--holdout"), std::string::npos) << r.output;
}

namespace {

// The text of one "== point NAME:" section of `hpcml scale --slurm --dry-run` output.
std::string section(const std::string& out, const std::string& head) {
  const auto at = out.find("== " + head);
  if (at == std::string::npos) return "";
  const auto next = out.find("\n== ", at + 1);
  return out.substr(at, next == std::string::npos ? std::string::npos : next - at);
}

const char* kSlurmConfig = R"([synthetic]
serial_fraction = 0.2
work_s = 0.1

[train]
max_steps = 2
batch_size = 8

[slurm]
time = "5"
)";

}  // namespace

// `hpcml scale --slurm --dry-run`: one script per point with that point's
// geometry, the point's arguments only in its args file, and a report job;
// nothing is written and no Slurm is needed.
TEST(AnalysisCli, ScaleSlurmDryRunScriptsPerPoint) {
  ASSERT_FALSE(hpcml_exe().empty()) << "HPCML_EXE not set";
  TempDir d("scale-slurm-dry");
  write_text(d.path() / "syn.toml", kSlurmConfig);
  const auto study = d.path() / "study";
  const auto r =
      run(hpcml_exe() + " scale " + (d.path() / "syn.toml").string() +
          " --slurm --dry-run --site local --ranks 1,2 --threads 1,2 --out " + study.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_FALSE(fs::exists(study)) << "a dry run writes nothing";
  for (int ranks : {1, 2}) {
    for (int threads : {1, 2}) {
      const std::string name = "r" + std::to_string(ranks) + "-t" + std::to_string(threads) + "-k0";
      const std::string s = section(r.output, "point " + name + ":");
      ASSERT_FALSE(s.empty()) << name << "\n" << r.output;
      const std::string rs = std::to_string(ranks), ts = std::to_string(threads);
      EXPECT_NE(s.find("#SBATCH --nodes=1\n"), std::string::npos) << s;
      EXPECT_NE(s.find("#SBATCH --ntasks-per-node=" + rs + "\n"), std::string::npos) << s;
      EXPECT_NE(s.find("#SBATCH --cpus-per-task=" + ts + "\n"), std::string::npos) << s;
      EXPECT_NE(s.find("#SBATCH --partition=debug\n"), std::string::npos) << s;
      EXPECT_NE(s.find("srun -n " + rs + " --ntasks-per-node=" + rs + " -c " + ts + " "),
                std::string::npos)
          << s;
      EXPECT_NE(s.find("export OMP_NUM_THREADS=" + ts + "\n"), std::string::npos) << s;
      // Arguments: strong scaling splits the global batch 8, the run lands in <study>/<name>.
      EXPECT_NE(s.find("\nbench\nsynthetic\n" + (study / "slurm" / "config.toml").string() + "\n"),
                std::string::npos)
          << s;
      EXPECT_NE(s.find("\ntrain.batch_size=" + std::to_string(8 / ranks) + "\n"), std::string::npos)
          << s;
      EXPECT_NE(s.find("\nparallel.threads=" + ts + "\n"), std::string::npos) << s;
      EXPECT_NE(s.find("\nrun.dir=\"" + study.string() + "\"\n"), std::string::npos) << s;
      EXPECT_NE(s.find("\nrun.name=\"" + name + "\"\n"), std::string::npos) << s;
      EXPECT_NE(s.find("#SBATCH --output=" + (study / "slurm" / name).string() + "/slurm-%j.out"),
                std::string::npos)
          << s;
    }
  }
  const std::string rep = section(r.output, "report");
  ASSERT_FALSE(rep.empty()) << r.output;
  EXPECT_NE(rep.find("afterany"), std::string::npos) << rep;
  EXPECT_NE(rep.find("#SBATCH --ntasks-per-node=1\n"), std::string::npos) << rep;
  EXPECT_NE(rep.find("\nreport\n" + study.string() + "\n--out\n" + study.string() + "/report\n"),
            std::string::npos)
      << rep;
  EXPECT_EQ(rep.find("srun "), std::string::npos) << "the report is not an MPI job\n" << rep;
}

// slurm.ntasks_per_node caps the ranks per node: more ranks spread over nodes evenly.
TEST(AnalysisCli, ScaleSlurmDryRunSpreadsRanksOverNodes) {
  ASSERT_FALSE(hpcml_exe().empty()) << "HPCML_EXE not set";
  TempDir d("scale-slurm-nodes");
  write_text(d.path() / "syn.toml", std::string(kSlurmConfig) + "ntasks_per_node = 2\n");
  const std::string base = hpcml_exe() + " scale " + (d.path() / "syn.toml").string() +
                           " --slurm --dry-run --site local --global-batch 24 --out " +
                           (d.path() / "study").string();
  auto r = run(base + " --ranks 2,4");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string s = section(r.output, "point r4-t1-k0:");
  EXPECT_NE(s.find("#SBATCH --nodes=2\n"), std::string::npos) << s;
  EXPECT_NE(s.find("#SBATCH --ntasks-per-node=2\n"), std::string::npos) << s;
  EXPECT_NE(s.find("srun -n 4 "), std::string::npos) << s;
  r = run(base + " --ranks 3");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("cannot fill 2 nodes evenly"), std::string::npos) << r.output;
}

// A study directory the script allowlist refuses fails before anything is submitted.
TEST(AnalysisCli, ScaleSlurmRefusesUnsafeStudyDir) {
  ASSERT_FALSE(hpcml_exe().empty()) << "HPCML_EXE not set";
  TempDir d("scale-slurm-unsafe");
  write_text(d.path() / "syn.toml", kSlurmConfig);
  const auto r = run(hpcml_exe() + " scale " + (d.path() / "syn.toml").string() +
                     " --slurm --dry-run --site local --ranks 1,2 --out '" +
                     (d.path() / "st$(x)udy").string() + "'");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("study directory"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d.path() / "st$(x)udy"));
}

// The report job's model parameters: the [scale] table, the command line winning
// (values exact in binary: the job gets them with 17 significant digits).
TEST(AnalysisCli, ScaleSlurmReportArgsTakeScaleTableUnderCommandLine) {
  ASSERT_FALSE(hpcml_exe().empty()) << "HPCML_EXE not set";
  TempDir d("scale-slurm-model");
  write_text(d.path() / "syn.toml", std::string(kSlurmConfig) +
                                        "\n[scale]\nalpha_s = 0.25\nbeta_s_per_byte = 0.5\n"
                                        "grad_bytes = 4096\n");
  const std::string base = hpcml_exe() + " scale " + (d.path() / "syn.toml").string() +
                           " --slurm --dry-run --site local --ranks 1,2 --out " +
                           (d.path() / "study").string();
  auto r = run(base);
  ASSERT_EQ(r.code, 0) << r.output;
  std::string rep = section(r.output, "report");
  EXPECT_NE(rep.find("\n--alpha\n0.25\n"), std::string::npos) << rep;
  EXPECT_NE(rep.find("\n--grad-bytes\n4096\n"), std::string::npos) << rep;
  r = run(base + " --alpha 0.125 --grad-bytes 8192");
  ASSERT_EQ(r.code, 0) << r.output;
  rep = section(r.output, "report");
  EXPECT_NE(rep.find("\n--alpha\n0.125\n"), std::string::npos) << rep;
  EXPECT_NE(rep.find("\n--grad-bytes\n8192\n"), std::string::npos) << rep;
}

TEST(AnalysisCli, ReportAutoVariantPicksEachBucketsAlgorithm) {
  ASSERT_FALSE(hpcml_exe().empty()) << "HPCML_EXE not set";
  TempDir d("report-auto");
  write_text(d.path() / "t.csv", "ranks,time_s\n2,1.0\n4,1.1\n");
  const std::string base = hpcml_exe() + " report --csv " + (d.path() / "t.csv").string() +
                           " --mode weak --no-png --alpha 1e-4 --beta 1e-9 --intra-alpha 1e-5 "
                           "--intra-bandwidth-gbps 10 --ranks-per-node 2 --holdout 0";
  auto r =
      run(base + " --out " + (d.path() / "a").string() + " --bucket-bytes 537640,1605632,4096");
  ASSERT_EQ(r.code, 0) << r.output;
  auto cm = report_json(d.path() / "a")["studies"][0]["comm_model"];
  ASSERT_TRUE(cm["ok"].get<bool>()) << cm.dump();
  EXPECT_EQ(cm["auto_thresholds"]["small_max_bytes"].get<double>(), 65536);
  EXPECT_EQ(cm["auto_thresholds"]["medium_max_bytes"].get<double>(), 1048576);
  bool at4 = false;
  for (const auto& p : cm["points"]) {
    ASSERT_TRUE(p["model"].contains("auto (size thresholds)")) << p.dump();
    if (p["ranks"].get<double>() != 4) continue;
    at4 = true;
    EXPECT_EQ(p["auto_algorithms"], nlohmann::json({"hierarchical", "ring", "recursive_doubling"}));
  }
  EXPECT_TRUE(at4);
  std::string md = slurp(d.path() / "a" / "report.md");
  EXPECT_NE(md.find("| auto (size thresholds) |"), std::string::npos) << md;
  EXPECT_NE(md.find("<= 65536 B recursive_doubling, <= 1048576 B hierarchical"), std::string::npos)
      << md;
  EXPECT_NE(md.find("per all-reduce: 2 ranks: hierarchical, hierarchical, hierarchical; "),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("; 4-256 ranks: hierarchical, ring, recursive_doubling\n"), std::string::npos)
      << md;
  // Thresholds from the command line move the buckets between algorithms.
  r = run(base + " --out " + (d.path() / "b").string() +
          " --bucket-bytes 537640,1605632,4096 --auto-small-max-bytes 64X");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--auto-small-max-bytes: unknown size suffix in '64X'"),
            std::string::npos)
      << r.output;
  // Sizes in the comm layer's syntax: 1K = 1024.
  r = run(base + " --out " + (d.path() / "b").string() +
          " --bucket-bytes 537640,1605632,4096 --auto-small-max-bytes 1K "
          "--auto-medium-max-bytes 500000");
  ASSERT_EQ(r.code, 0) << r.output;
  cm = report_json(d.path() / "b")["studies"][0]["comm_model"];
  for (const auto& p : cm["points"]) {
    if (p["ranks"].get<double>() == 4) {
      EXPECT_EQ(p["auto_algorithms"], nlohmann::json({"ring", "ring", "hierarchical"}));
    }
  }
  // Without bucket sizes the variant is not shown.
  r = run(base + " --out " + (d.path() / "c").string() + " --grad-bytes 2e6");
  ASSERT_EQ(r.code, 0) << r.output;
  md = slurp(d.path() / "c" / "report.md");
  EXPECT_EQ(md.find("auto (size thresholds)"), std::string::npos);
  EXPECT_NE(md.find("| hierarchical |"), std::string::npos);
}

TEST(AnalysisCli, ScaleSlurmReportArgsForwardBucketsAndThresholds) {
  ASSERT_FALSE(hpcml_exe().empty()) << "HPCML_EXE not set";
  TempDir d("scale-slurm-buckets");
  write_text(d.path() / "syn.toml", std::string(kSlurmConfig));
  const std::string base = hpcml_exe() + " scale " + (d.path() / "syn.toml").string() +
                           " --slurm --dry-run --site local --ranks 1,2 --out " +
                           (d.path() / "study").string();
  auto r = run(base);
  ASSERT_EQ(r.code, 0) << r.output;
  std::string rep = section(r.output, "report");
  EXPECT_EQ(rep.find("--bucket-bytes"), std::string::npos) << rep;
  EXPECT_EQ(rep.find("--auto-"), std::string::npos) << rep;
  r = run(base + " --bucket-bytes 537640,1605632 --auto-medium-max-bytes 2M");
  ASSERT_EQ(r.code, 0) << r.output;
  rep = section(r.output, "report");
  EXPECT_NE(rep.find("\n--bucket-bytes\n537640,1605632\n"), std::string::npos) << rep;
  EXPECT_NE(rep.find("\n--auto-medium-max-bytes\n2097152\n"), std::string::npos) << rep;
  EXPECT_EQ(rep.find("--auto-small-max-bytes"), std::string::npos) << rep;
}

// Issue 10: "Run A" and "run-a" used to write the same plot files while the count
// printed claimed every file was written.
TEST(AnalysisCli, ReportCountsTheFilesThatExist) {
  ASSERT_FALSE(hpcml_exe().empty()) << "HPCML_EXE not set";
  TempDir d("report-names");
  std::string csv = "study,n,time_s\n";
  for (const char* s : {"Run A", "run-a", "RUN_A"})
    for (int n : {1, 2, 4})
      csv += std::string(s) + "," + std::to_string(n) + "," + std::to_string(0.1 + 0.9 / n) + "\n";
  write_text(d.path() / "names.csv", csv);
  const auto out = d.path() / "out";
  const auto r = run(hpcml_exe() + " report --no-png --csv " + (d.path() / "names.csv").string() +
                     " --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  std::size_t on_disk = 0;
  for (const auto& e : fs::directory_iterator(out)) on_disk += e.is_regular_file();
  EXPECT_NE(r.output.find("(" + std::to_string(on_disk) + " files"), std::string::npos)
      << r.output << " but " << on_disk << " files exist";
  for (const char* f : {"run-a-speedup.svg", "run-a-2-speedup.svg", "run-a-3-speedup.svg"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
}

// Issue 10: a refused choice is echoed escaped, on one line (CLI11 printed it raw).
TEST(AnalysisCli, RefusedChoiceIsEchoedEscaped) {
  ASSERT_FALSE(hpcml_exe().empty()) << "HPCML_EXE not set";
  TempDir d("report-mode");
  write_text(d.path() / "a.csv", "n,time_s\n1,1\n2,0.6\n");
  const auto r = run(hpcml_exe() + " report --csv " + (d.path() / "a.csv").string() +
                     " --mode \"$(printf 'str\\rong\\nx')\"");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--mode: expected strong or weak, got 'str\\rong\\nx'\n"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find('\r'), std::string::npos) << r.output;
}

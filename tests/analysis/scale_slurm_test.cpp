// `hpcml scale --slurm` against a running Slurm (label `slurm`; start one with
// scripts/slurm-local.sh start). Skips, saying why, when no Slurm answers.
//
// A strong-scaling study of `hpcml bench synthetic` (true parallel fraction 0.8)
// at 1 and 2 ranks: one batch job per point and a report job after both. The
// report the job writes must hold both points and a fitted P near 0.8.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "common.hpp"

using namespace hpcml_test;

namespace {

std::string g_skip_reason;

// Finds the cluster: SLURM_CONF if set, else the one scripts/slurm-local.sh starts.
void find_slurm() {
  if (!std::getenv("SLURM_CONF")) {
    const char* dir = std::getenv("HPCML_SLURM_DIR");
    const std::string conf =
        std::string(dir && *dir ? dir : (fs::temp_directory_path() / "hpcml-slurm").string()) +
        "/slurm.conf";
    if (fs::exists(conf)) setenv("SLURM_CONF", conf.c_str(), 1);
  }
  const auto r = run("sinfo -h -o %T");
  if (r.code != 0) {
    g_skip_reason = "no Slurm reachable (sinfo failed: " + r.output.substr(0, r.output.find('\n')) +
                    "); start one with scripts/slurm-local.sh start";
  } else if (r.output.find("idle") == std::string::npos &&
             r.output.find("mix") == std::string::npos &&
             r.output.find("alloc") == std::string::npos) {
    g_skip_reason = "Slurm answers but no node is up (sinfo: " + r.output + ")";
  }
}

// Site profile the jobs use: $HPCML_TEST_SITE (name or path) on a real cluster, else "local".
std::string site() {
  const char* s = std::getenv("HPCML_TEST_SITE");
  return s && *s ? s : "local";
}

const char* kConfig = R"(# synthetic job, true parallel fraction 0.8
[synthetic]
serial_fraction = 0.2
work_s = 0.6
grad_bytes = 4096

[train]
max_steps = 3
batch_size = 32

[slurm]
time = "5"
)";

class ScaleSlurm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { find_slurm(); }
  void SetUp() override {
    if (!g_skip_reason.empty()) GTEST_SKIP() << g_skip_reason;
  }
  void TearDown() override {
    for (const auto& id : ids_) run("scancel " + id);
  }
  void run_study(const std::string& submitter);
  std::vector<std::string> ids_;
};

// Whether none of `ids` is still queued or running.
bool all_ended(const std::vector<std::string>& ids) {
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
  // Slurm forgets finished jobs after MinJobAge; an unknown id is an ended one.
  const auto r = run("squeue -h -o %i -j " + list + " 2>/dev/null");
  return r.output.find_first_not_of(" \n") == std::string::npos;
}

}  // namespace

// The study through `--submitter submitter`; every check is a gtest assertion.
void ScaleSlurm::run_study(const std::string& submitter) {
  ASSERT_FALSE(hpcml_exe().empty()) << "HPCML_EXE not set";
  // On a real cluster the study must be on a file system the compute nodes see.
  const char* base = std::getenv("HPCML_TEST_DIR");
  TempDir d("scale-slurm");
  const fs::path root = base && *base ? fs::path(base) / d.path().filename() : d.path();
  write_text(root / "syn.toml", kConfig);
  const auto study = root / "study";
  const auto r = run("cd " + root.string() + " && " + hpcml_exe() +
                     " scale syn.toml --slurm --submitter " + submitter + " --site " + site() +
                     " --ranks 1,2 --mode strong --no-png --max-n 16 --out " + study.string());
  ASSERT_EQ(r.code, 0) << r.output;

  // study.json is there at once, with a job id per point and the report's.
  const auto sj = nlohmann::json::parse(slurp(study / "study.json"));
  EXPECT_EQ(sj["mode"], "strong");
  EXPECT_EQ(sj["job"], "synthetic");
  if (submitter != "auto") {
    EXPECT_EQ(sj["launcher"], "slurm (" + submitter + ")");
  }
  ASSERT_EQ(sj["points"].size(), 2u);
  for (const auto& p : sj["points"]) {
    ids_.push_back(p["job_id"].get<std::string>());
    EXPECT_EQ(p["cpus_per_task"].get<int>(), 1);
    EXPECT_EQ(p["nodes"].get<int>() * p["ntasks_per_node"].get<int>(), p["ranks"].get<int>());
  }
  ASSERT_TRUE(sj.contains("report_job_id"));
  ids_.push_back(sj["report_job_id"].get<std::string>());
  EXPECT_NE(r.output.find("squeue -j"), std::string::npos) << r.output;
  // The report job waits for every point.
  const auto show = run("scontrol show job -o " + ids_.back());
  if (show.code == 0 && show.output.find("JobState=PENDING") != std::string::npos) {
    EXPECT_NE(show.output.find("afterany:" + ids_[0]), std::string::npos) << show.output;
  }

  // A deadline for the queue to drain, not a timing assertion.
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  while (!all_ended(ids_) && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::seconds(1));
  std::string logs;
  for (const auto& e : fs::recursive_directory_iterator(study / "slurm"))
    if (e.path().extension() == ".out")
      logs += "---- " + e.path().string() + "\n" + slurp(e.path());
  ASSERT_TRUE(all_ended(ids_)) << "jobs still queued after 180 s\n" << logs;

  // Each point's run directory is where the local mode puts it.
  for (const char* name : {"r1-t1-k0", "r2-t1-k0"})
    EXPECT_TRUE(fs::exists(study / name / "summary.json")) << name << "\n" << logs;
  const auto summary = nlohmann::json::parse(slurp(study / "r2-t1-k0" / "summary.json"));
  EXPECT_EQ(summary["ranks"], 2);
  EXPECT_EQ(summary["global_batch"].get<double>(), 32.0);

  // The report job wrote the report, with both points and P near the true 0.8.
  ASSERT_TRUE(fs::exists(study / "report" / "report.json")) << logs;
  EXPECT_TRUE(fs::exists(study / "report" / "report.md"));
  const auto rep = nlohmann::json::parse(slurp(study / "report" / "report.json"));
  ASSERT_EQ(rep["studies"].size(), 1u);
  EXPECT_EQ(rep["studies"][0]["rows"].size(), 2u);
  const auto& fit = rep["studies"][0]["fit"];
  ASSERT_TRUE(fit["ok"].get<bool>()) << fit.dump();
  EXPECT_NEAR(fit["p"].get<double>(), 0.8, 0.1) << fit.dump();
  if (base && *base) fs::remove_all(root);
}

TEST_F(ScaleSlurm, StudyOfSyntheticJobSubmitsPointsAndReport) { run_study("auto"); }

// The same through sbatch (auto is libslurm in builds that have it).
TEST_F(ScaleSlurm, StudyThroughSbatch) { run_study("sbatch"); }

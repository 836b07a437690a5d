// Scaling studies (launch/study.hpp) without running anything: the points a
// plan holds for strong and weak studies, the command lines of local and Slurm
// points, the report job, and the errors. The local runner and the Slurm
// submission are run as dry runs only (no process is started).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hpcml/core/error.hpp"
#include "hpcml/launch/study.hpp"
#include "test_util.hpp"

namespace hpcml::launch {
namespace {

namespace fs = std::filesystem;
using Args = std::vector<std::string>;

const char* kTrain = R"(# a training job
[train]
batch_size = 32
max_steps = 5

[run]
dir = "runs"

[parallel]
threads = 1
)";

const char* kSynthetic = R"([synthetic]
serial_fraction = 0.2
work_s = 0.5

[slurm]
job_name = "syn"
ntasks_per_node = 2
time = "5"

[scale]
alpha_s = 2e-6
beta_s_per_byte = 1e-9
ranks_per_node = 2
allreduce_csv = "ar.csv"
)";

// A config file in a temporary directory and a request for it.
class StudyTest : public ::testing::Test {
 protected:
  StudyRequest request(const char* text, std::vector<int> ranks) {
    const std::string path = dir_.path() + "/job.toml";
    test::write_file(path, text);
    StudyRequest r;
    r.config = path;
    r.ranks = std::move(ranks);
    r.command = "hpcml scale job.toml";
    r.sites_dir = test::source_dir() + "/configs/sites";
    return r;
  }
  test::TempDir dir_;
};

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

TEST_F(StudyTest, StrongPlanSplitsTheGlobalBatchAndOrdersRepeatsOutermost) {
  StudyRequest r = request(kTrain, {1, 2, 4});
  r.threads = {1, 2};
  r.repeats = 2;
  r.out = "study";
  const StudyPlan p = plan_study(r);
  EXPECT_EQ(p.job, "train");
  EXPECT_EQ(p.config_batch, 32);
  EXPECT_EQ(p.global_batch, 32);  // batch_size x the smallest rank count
  EXPECT_EQ(p.steps, 5);
  EXPECT_EQ(p.study_dir, "study");
  EXPECT_FALSE(p.default_dir);
  ASSERT_EQ(p.points.size(), 12u);
  EXPECT_EQ(p.points[0].name, "r1-t1-k0");
  EXPECT_EQ(p.points[1].name, "r2-t1-k0");
  EXPECT_EQ(p.points[3].name, "r1-t2-k0");
  EXPECT_EQ(p.points[6].name, "r1-t1-k1");
  EXPECT_EQ(p.points[11].name, "r4-t2-k1");
  for (const auto& pt : p.points) EXPECT_EQ(pt.local_batch * pt.ranks, 32) << pt.name;
  EXPECT_EQ(p.points[11].threads, 2);
  EXPECT_EQ(p.points[11].repeat, 1);
}

TEST_F(StudyTest, WeakPlanKeepsTheBatchPerRank) {
  StudyRequest r = request(kTrain, {2, 3});
  r.mode = StudyMode::kWeak;
  r.steps = 7;
  const StudyPlan p = plan_study(r);
  ASSERT_EQ(p.points.size(), 2u);
  for (const auto& pt : p.points) EXPECT_EQ(pt.local_batch, 32);
  EXPECT_EQ(p.steps, 7);
  // No --out: <run.dir>/scale-<UTC time>, created later with a suffix on collision.
  EXPECT_TRUE(p.default_dir);
  EXPECT_EQ(p.study_dir.rfind("runs/scale-", 0), 0u) << p.study_dir;
}

TEST_F(StudyTest, SyntheticJobIsDetectedAndReadsTheScaleTable) {
  StudyRequest r = request(kSynthetic, {1, 2});
  r.global_batch = 64;
  const StudyPlan p = plan_study(r);
  EXPECT_EQ(p.job, "synthetic");
  EXPECT_EQ(p.config_batch, 32);  // the synthetic job's defaults
  EXPECT_EQ(p.steps, 10);
  EXPECT_EQ(p.global_batch, 64);
  EXPECT_DOUBLE_EQ(p.model.alpha_s, 2e-6);
  EXPECT_DOUBLE_EQ(p.model.beta_s_per_byte, 1e-9);
  EXPECT_TRUE(std::isnan(p.model.intra_alpha_s));
  EXPECT_DOUBLE_EQ(p.model.ranks_per_node, 2);
  EXPECT_EQ(p.model.allreduce_csv, "ar.csv");
  r.job = "train";
  EXPECT_EQ(plan_study(r).job, "train");
}

TEST_F(StudyTest, BadRequestsAreConfigErrors) {
  auto fails = [&](StudyRequest r, const std::string& what) {
    const std::string e = error_of([&] { plan_study(r); });
    EXPECT_NE(e.find(what), std::string::npos) << e;
  };
  fails(request(kTrain, {}), "--ranks: give at least one rank count");
  fails(request(kTrain, {1, 0}), "--ranks: expected counts >= 1, got 0");
  StudyRequest r = request(kTrain, {1});
  r.threads = {0};
  fails(r, "--threads: expected counts >= 1, got 0");
  r = request(kTrain, {1});
  r.local = r.slurm = true;
  fails(r, "give --local or --slurm, not both");
  r = request(kTrain, {1});
  r.job = "bogus";
  fails(r, "--job 'bogus'");
  // 32 cannot be split over 3 ranks.
  fails(request(kTrain, {1, 3}), "3 ranks cannot share evenly");
  // A typo in [scale] is caught; other tables belong to the job.
  fails(request((std::string(kTrain) + "[scale]\nalpah_s = 1e-6\n").c_str(), {1}), "alpah_s");
  EXPECT_THROW(parse_study_mode("sideways"), ConfigError);
  EXPECT_EQ(parse_study_mode("weak"), StudyMode::kWeak);
  EXPECT_STREQ(to_string(StudyMode::kStrong), "strong");
}

TEST_F(StudyTest, LocalPointCommandsRunThisExecutableUnderMpiexec) {
  StudyRequest r = request(kTrain, {1, 2});
  r.out = "st";
  r.sets = {"optim.lr=0.1"};
  const StudyPlan p = plan_study(r);
  EXPECT_EQ(
      local_point_command(p, p.points[1], "/usr/bin/mpiexec", "/opt/hpcml"),
      (Args{"/usr/bin/mpiexec", "-n", "2", "/opt/hpcml", "train", r.config, "--set", "optim.lr=0.1",
            "--set", "run.dir=\"st\"", "--set", "run.name=\"r2-t1-k0\"", "--set",
            "train.batch_size=16", "--set", "parallel.threads=1", "--set", "train.max_steps=5"}));
  // No max_steps of its own and none asked for: the config's epochs decide.
  StudyRequest r0 = request("[train]\nbatch_size = 8\n", {1});
  r0.out = "st";
  const StudyPlan p0 = plan_study(r0);
  EXPECT_EQ(point_args(p0, p0.points[0], "c.toml"),
            (Args{"train", "c.toml", "--set", "run.dir=\"st\"", "--set", "run.name=\"r1-t1-k0\"",
                  "--set", "train.batch_size=8", "--set", "parallel.threads=1"}));
}

TEST_F(StudyTest, SyntheticPointsTellTheJobTheMode) {
  StudyRequest r = request(kSynthetic, {2});
  r.mode = StudyMode::kWeak;
  r.threads = {3};
  r.out = "st";
  const StudyPlan p = plan_study(r);
  EXPECT_EQ(
      point_args(p, p.points[0], "c.toml"),
      (Args{"bench", "synthetic", "c.toml", "--set", "run.dir=\"st\"", "--set",
            "run.name=\"r2-t3-k0\"", "--set", "train.batch_size=32", "--set", "parallel.threads=3",
            "--set", "train.max_steps=10", "--set", "synthetic.scaling=\"weak\""}));
}

TEST(StudyGeometry, FillsAsFewNodesAsTheCapAllowsEvenly) {
  EXPECT_EQ(slurm_geometry(8, 0, "c.toml"), std::make_pair(1, 8));
  EXPECT_EQ(slurm_geometry(4, 4, "c.toml"), std::make_pair(1, 4));
  EXPECT_EQ(slurm_geometry(8, 4, "c.toml"), std::make_pair(2, 4));
  EXPECT_EQ(slurm_geometry(6, 4, "c.toml"), std::make_pair(2, 3));
  const std::string e = error_of([] { slurm_geometry(5, 2, "c.toml"); });
  EXPECT_NE(e.find("5 ranks cannot fill 3 nodes evenly with at most 2 per node"), std::string::npos)
      << e;
  EXPECT_NE(e.find("c.toml"), std::string::npos) << e;
}

TEST_F(StudyTest, SlurmJobsPerPointAndAReportJob) {
  StudyRequest r = request(kSynthetic, {1, 2, 4});
  r.slurm = true;
  r.out = dir_.path() + "/study/";
  r.global_batch = 64;
  r.site = "local";
  const StudyPlan p = plan_study(r);
  EXPECT_EQ(p.study_dir, dir_.path() + "/study");  // absolute, no trailing '/'
  std::string report_dir;
  const auto s = plan_slurm_study(p, p.study_dir, [&](const std::string& d) {
    report_dir = d;
    return Args{"report", d, "--no-png"};
  });
  EXPECT_EQ(s.slurm_dir, p.study_dir + "/slurm");
  EXPECT_EQ(s.config_copy, p.study_dir + "/slurm/config.toml");
  EXPECT_EQ(s.site.name, "local");
  ASSERT_EQ(s.points.size(), 3u);
  const SingleJob& j4 = s.points[2];
  EXPECT_EQ(j4.plan.job.nodes, 2);  // at most 2 per node
  EXPECT_EQ(j4.plan.job.ntasks_per_node, 2);
  EXPECT_EQ(j4.plan.job.cpus_per_task, 1);
  EXPECT_EQ(j4.plan.job.job_name, "syn-r4-t1-k0");
  EXPECT_EQ(j4.plan.run_dir, p.study_dir + "/slurm/r4-t1-k0");
  EXPECT_EQ(j4.plan.source_config, r.config);
  EXPECT_EQ(j4.args, (Args{"bench", "synthetic", s.config_copy, "--set",
                           "run.dir=\"" + p.study_dir + "\"", "--set", "run.name=\"r4-t1-k0\"",
                           "--set", "train.batch_size=16", "--set", "parallel.threads=1", "--set",
                           "train.max_steps=10", "--set", "synthetic.scaling=\"strong\""}));
  EXPECT_EQ(s.points[0].plan.job.nodes, 1);
  EXPECT_EQ(s.points[0].plan.job.ntasks_per_node, 1);

  // The report job: one task in the batch shell, the caller's arguments.
  EXPECT_EQ(report_dir, p.study_dir);
  EXPECT_EQ(s.report.args, (Args{"report", p.study_dir, "--no-png"}));
  EXPECT_EQ(s.report.plan.job.launcher, "none");
  EXPECT_EQ(s.report.plan.job.nodes * s.report.plan.job.ntasks_per_node, 1);
  EXPECT_EQ(s.report.plan.job.job_name, "syn-report");
  EXPECT_EQ(s.report.dependency_type, "afterany");

  // Rendered as a dry run (no submitter: nothing written, nothing submitted).
  const auto res = submit_single_job(j4, nullptr);
  EXPECT_NE(res.script_text.find("#SBATCH --nodes=2\n"), std::string::npos) << res.script_text;
  EXPECT_NE(res.script_text.find("#SBATCH --job-name=syn-r4-t1-k0\n"), std::string::npos);
  EXPECT_TRUE(res.job_id.empty());
  EXPECT_FALSE(fs::exists(j4.plan.run_dir));
}

TEST_F(StudyTest, SlurmStudiesRefuseBadPathsKeysAndSets) {
  auto report = [](const std::string& d) { return Args{"report", d}; };
  StudyRequest r = request(kSynthetic, {1});
  r.slurm = true;
  r.out = dir_.path() + "/a b";
  std::string e = error_of([&] {
    const StudyPlan p = plan_study(r);
    plan_slurm_study(p, p.study_dir, report);
  });
  EXPECT_NE(e.find("study directory"), std::string::npos) << e;
  EXPECT_NE(e.find("choose another --out"), std::string::npos) << e;

  const std::string typo = test::replace_all(kSynthetic, "time = \"5\"", "time = \"5\"\nbogus = 1");
  r = request(typo.c_str(), {1});
  r.slurm = true;
  r.out = dir_.path() + "/s";
  e = error_of([&] { plan_slurm_study(plan_study(r), r.out, report); });
  EXPECT_NE(e.find("slurm.bogus"), std::string::npos) << e;

  r = request(kSynthetic, {1});
  r.slurm = true;
  r.out = dir_.path() + "/s";
  StudyPlan bad = plan_study(r);
  bad.request.sets = {"train.max_steps=3\nrm -rf /"};  // after planning: the Slurm side refuses it
  e = error_of([&] { plan_slurm_study(bad, bad.study_dir, report); });
  EXPECT_NE(e.find("scale: --set"), std::string::npos) << e;
  EXPECT_NE(e.find("control character"), std::string::npos) << e;

  // 3 ranks at most 2 per node cannot be spread evenly.
  r = request(kSynthetic, {3});
  r.slurm = true;
  r.global_batch = 96;
  r.out = dir_.path() + "/s";
  e = error_of([&] { plan_slurm_study(plan_study(r), r.out, report); });
  EXPECT_NE(e.find("3 ranks cannot fill 2 nodes evenly"), std::string::npos) << e;
}

TEST_F(StudyTest, SlurmDryRunPrintsEveryJobAndWritesNothing) {
  StudyRequest r = request(kSynthetic, {1, 2});
  r.slurm = true;
  r.dry_run = true;
  r.global_batch = 64;
  r.out = dir_.path() + "/study";
  const StudyPlan p = plan_study(r);
  std::ostringstream out, err;
  const auto res = submit_study_slurm(
      p,
      [](const std::string& d) {
        return Args{"report", d};
      },
      out, err);
  EXPECT_TRUE(res.job_ids.empty());
  EXPECT_TRUE(res.report_job_id.empty());
  EXPECT_FALSE(fs::exists(r.out));
  const std::string text = out.str();
  EXPECT_NE(text.find("on Slurm, 2 point(s) x 1 repeat(s)"), std::string::npos) << text;
  EXPECT_NE(text.find("== point r2-t1-k0: 2 rank(s) x 1 thread(s) on 1 node(s)"), std::string::npos)
      << text;
  // The report job waits on stand-in ids for the points.
  EXPECT_NE(text.find("== report (after every point, afterany on their job ids)"),
            std::string::npos)
      << text;
  EXPECT_TRUE(err.str().empty()) << err.str();
}

// PATH holding only a stand-in mpiexec (never started: dry runs only).
class FakeMpiexec {
 public:
  explicit FakeMpiexec(const std::string& dir) {
    const char* p = std::getenv("PATH");
    old_ = p ? p : "";
    test::write_file(dir + "/mpiexec", "#!/bin/sh\nexit 99\n");
    fs::permissions(dir + "/mpiexec", fs::perms::owner_all);
    ::setenv("PATH", dir.c_str(), 1);
  }
  ~FakeMpiexec() { ::setenv("PATH", old_.c_str(), 1); }
  FakeMpiexec(const FakeMpiexec&) = delete;
  FakeMpiexec& operator=(const FakeMpiexec&) = delete;

 private:
  std::string old_;
};

TEST_F(StudyTest, LocalDryRunWritesStudyJsonAndPrintsEachPoint) {
  const std::string bin = dir_.path() + "/bin";
  fs::create_directories(bin);
  FakeMpiexec fake(bin);
  StudyRequest r = request(kTrain, {1, 2});
  r.threads = {1, 4096};  // more than any machine: flagged
  r.dry_run = true;
  r.out = dir_.path() + "/study";
  const StudyPlan p = plan_study(r);
  std::ostringstream out, err;
  const auto res = run_study_local(p, out, err);
  EXPECT_EQ(res.study_dir, r.out);
  EXPECT_EQ(res.points, 0);
  EXPECT_GE(res.hardware_threads, 1);
  const std::string text = out.str();
  EXPECT_NE(text.find("strong scaling of 'train'"), std::string::npos) << text;
  EXPECT_NE(text.find("   " + bin + "/mpiexec -n 2 "), std::string::npos) << text;
  EXPECT_NE(text.find("--set 'run.name=\"r2-t1-k0\"'"), std::string::npos) << text;
  EXPECT_NE(text.find("[OVERSUBSCRIBED: 8192 > "), std::string::npos) << text;
  const auto j = nlohmann::json::parse(test::read_file(r.out + "/study.json"));
  EXPECT_EQ(j["mode"], "strong");
  EXPECT_EQ(j["job"], "train");
  EXPECT_EQ(j["launcher"], "mpiexec (local)");
  EXPECT_EQ(j["command"], "hpcml scale job.toml");
  EXPECT_EQ(j["global_batch"], 32);
  EXPECT_EQ(j["hardware_threads"], res.hardware_threads);
  EXPECT_TRUE(j["points"].empty());

  // The directory now holds a study: --out must name another.
  const std::string e = error_of([&] { run_study_local(p, out, err); });
  EXPECT_NE(e.find("already holds a study (study.json); choose another --out"), std::string::npos)
      << e;
}

TEST_F(StudyTest, DefaultStudyDirectoriesGetASuffixOnCollision) {
  StudyRequest r = request(kTrain, {1});
  const StudyPlan p0 = plan_study(r);
  StudyPlan p = p0;
  p.study_dir = dir_.path() + "/runs/scale-x";
  EXPECT_EQ(create_study_dir(p), dir_.path() + "/runs/scale-x");
  EXPECT_EQ(create_study_dir(p), dir_.path() + "/runs/scale-x-2");
  p.default_dir = false;  // --out: used as it is
  EXPECT_EQ(create_study_dir(p), dir_.path() + "/runs/scale-x");
}

TEST_F(StudyTest, MissingMpiexecIsNotAvailable) {
  const std::string empty = dir_.path() + "/empty";
  fs::create_directories(empty);
  FakeMpiexec fake(empty);
  fs::remove(empty + "/mpiexec");
  StudyRequest r = request(kTrain, {1});
  r.dry_run = true;
  r.out = dir_.path() + "/study";
  std::ostringstream out, err;
  EXPECT_THROW(run_study_local(plan_study(r), out, err), NotAvailableError);
}

}  // namespace
}  // namespace hpcml::launch

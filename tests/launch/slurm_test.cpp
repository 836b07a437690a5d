// Jobs submitted for real to a running Slurm (label `slurm`; scripts/slurm-local.sh
// start gives one). Every test skips, saying why, when no Slurm answers.
//
//   - both submitters (sbatch, libslurm) produce the same job from one config;
//   - a 2-rank MPI training job started with srun;
//   - a 6-task sweep array throttled to 2, whose collected table has 6 rows;
//   - a dependency chain whose last job (afterany) runs after the others end;
//   - a job that gets USR1 before its time limit, stops the trainer and requeues;
//   - hostile values in a job's environment run nothing under Slurm either.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "hpcml/launch/process.hpp"
#include "hpcml/launch/submitter.hpp"
#include "test_util.hpp"

namespace hpcml::launch {
namespace {

namespace fs = std::filesystem;
using test::read_file;

std::string g_skip_reason;

// Site profile the jobs use: $HPCML_TEST_SITE (name or path) on a real cluster, else "local".
std::string site() {
  const char* s = std::getenv("HPCML_TEST_SITE");
  return s && *s ? s : "local";
}

// Finds the cluster: SLURM_CONF if set, else the one scripts/slurm-local.sh starts.
void find_slurm() {
  if (!std::getenv("SLURM_CONF")) {
    const char* dir = std::getenv("HPCML_SLURM_DIR");
    std::string conf =
        std::string(dir && *dir ? dir : (fs::temp_directory_path() / "hpcml-slurm").string()) +
        "/slurm.conf";
    if (fs::exists(conf)) setenv("SLURM_CONF", conf.c_str(), 1);
  }
  ProcessResult r = run_process({"sinfo", "-h", "-o", "%T"});
  if (r.exit_code != 0) {
    g_skip_reason = "no Slurm reachable (sinfo failed: " + r.err.substr(0, r.err.find('\n')) +
                    "); start one with scripts/slurm-local.sh start";
  } else if (r.out.find("idle") == std::string::npos && r.out.find("mix") == std::string::npos &&
             r.out.find("alloc") == std::string::npos) {
    g_skip_reason = "Slurm answers but no node is up (sinfo: " + r.out + ")";
  }
}

// One fresh directory per test, left in place on failure for inspection.
class SlurmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { find_slurm(); }
  void SetUp() override {
    if (!g_skip_reason.empty()) GTEST_SKIP() << g_skip_reason;
    // On a real cluster the run directories must be on a file system the compute nodes see.
    const char* base = std::getenv("HPCML_TEST_DIR");
    std::string templ =
        ((base && *base ? fs::path(base) : fs::temp_directory_path()) / "hpcml-slurm-test-XXXXXX")
            .string();
    dir_ = ::mkdtemp(templ.data());
    fs::current_path(dir_);
  }
  void TearDown() override {
    for (const auto& id : to_cancel_) run_process({"scancel", id});
    if (!dir_.empty() && !HasFailure()) {
      std::error_code ec;
      fs::current_path(fs::temp_directory_path(), ec);
      fs::remove_all(dir_, ec);
    }
  }

  // `hpcml submit ...`; returns the job ids it printed.
  std::vector<std::string> submit(const std::vector<std::string>& args) {
    std::vector<std::string> argv{HPCML_EXE, "submit"};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = run_process(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> ids;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) ids.push_back(line);
    }
    to_cancel_.insert(to_cancel_.end(), ids.begin(), ids.end());
    return ids;
  }

  std::string write_config(const std::string& name, const std::string& text) {
    test::write_file(dir_ + "/" + name, text);
    return dir_ + "/" + name;
  }

  std::string dir_;
  std::vector<std::string> to_cancel_;
};

// `scontrol show job -o ID` as key -> value (first record).
std::map<std::string, std::string> show_job(const std::string& id) {
  std::map<std::string, std::string> m;
  ProcessResult r = run_process({"scontrol", "show", "job", "-o", id});
  std::string line = r.out.substr(0, r.out.find('\n'));
  std::istringstream in(line);
  for (std::string kv; in >> kv;) {
    auto eq = kv.find('=');
    if (eq != std::string::npos) m[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return m;
}

// Polls `done` every 0.5 s until it holds or `seconds` pass (a deadline, not a timing assertion).
bool wait_for(const std::function<bool()>& done, int seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return done();
}

bool starts_with_file(const std::string& path, const std::string& prefix) {
  return read_file(path).rfind(prefix, 0) == 0;
}

// Fashion-MNIST shards for the training jobs: the repository's data/ if present,
// else made once with `hpcml shard fashion-mnist` into the temp directory.
std::string dataset() {
  const std::string repo = test::source_dir() + "/data/fashion-mnist";
  if (fs::exists(repo + "/manifest.json")) return repo;
  const std::string tmp = (fs::temp_directory_path() / "hpcml-launch-fmnist").string();
  if (!fs::exists(tmp + "/manifest.json")) {
    ProcessResult r = run_process({HPCML_EXE, "shard", "fashion-mnist", "--out", tmp});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  return tmp;
}

std::string train_config(const std::string& extra_slurm, int max_steps) {
  std::ostringstream c;
  c << "[data]\npath = \"" << dataset() << "\"\nverify = false\n"
    << "[model]\nhidden = [16]\n"
    << "[train]\nepochs = 1000\nbatch_size = 32\nmax_steps = " << max_steps << "\nevaluate = true\n"
    << "[run]\ndir = \"runs\"\nprogress = \"never\"\n"
    << "[slurm]\ntime = \"5\"\n"
    << extra_slurm;
  return c.str();
}

TEST_F(SlurmTest, SbatchAndLibslurmSubmitTheSameJob) {
  if (!libslurm_available()) GTEST_SKIP() << "built without libslurm";
  const std::string cfg = write_config(
      "held.toml",
      "[slurm]\njob_name = \"held\"\nntasks_per_node = 2\ncpus_per_task = 1\ntime = "
      "\"0-00:07:30\"\n"
      "mem_per_cpu = \"100M\"\nsignal_seconds = 40\nrequeue = true\noutput = \"out-%j.log\"\n"
      "mail_type = [\"FAIL\"]\ncommand = [\"info\"]\n[run]\ndir = \"runs\"\n");
  auto a =
      submit({cfg, "--site", site(), "--hold", "--submitter", "sbatch", "--set", "run.name=\"a\""});
  auto b = submit(
      {cfg, "--site", site(), "--hold", "--submitter", "libslurm", "--set", "run.name=\"b\""});
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  auto ja = show_job(a[0]), jb = show_job(b[0]);
  for (const char* key :
       {"JobName", "NumNodes", "NumTasks", "CPUs/Task", "TimeLimit", "Partition", "Requeue",
        "MinMemoryCPU", "Priority", "MailType", "WorkDir", "JobState", "Reason"}) {
    EXPECT_EQ(ja[key], jb[key]) << key;
    EXPECT_FALSE(ja[key].empty()) << key;
  }
  EXPECT_EQ(ja["TimeLimit"], "00:08:00");
  EXPECT_EQ(ja["NumTasks"], "2");
  EXPECT_EQ(ja["Requeue"], "1");
  EXPECT_EQ(ja["Priority"], "0");  // held
  EXPECT_EQ(ja["StdOut"], dir_ + "/runs/a/out-" + a[0] + ".log");
  EXPECT_EQ(jb["StdOut"], dir_ + "/runs/b/out-" + b[0] + ".log");
  // Both submitters see the same states for both jobs.
  for (const auto& kind : {"sbatch", "libslurm"}) {
    auto sub = make_submitter(kind);
    for (const auto& id : {a[0], b[0]}) {
      auto st = sub->states(id);
      ASSERT_EQ(st.count(-1), 1u) << kind;
      EXPECT_EQ(st[-1].state, "PENDING") << kind;
      EXPECT_EQ(st[-1].reason, "JobHeldUser") << kind;
    }
    EXPECT_GT(sub->max_array_size(), 1);
  }
  EXPECT_EQ(make_submitter("sbatch")->max_array_size(),
            make_submitter("libslurm")->max_array_size());
}

TEST_F(SlurmTest, TwoRankMpiTrainingWithSrun) {
  const std::string cfg =
      write_config("train.toml", train_config("job_name = \"train2\"\nntasks_per_node = 2\n", 5));
  auto ids = submit({cfg, "--site", site(), "--set", "run.name=\"t\""});
  ASSERT_EQ(ids.size(), 1u);
  const std::string run = dir_ + "/runs/t";
  ASSERT_TRUE(wait_for([&] { return starts_with_file(run + "/state", "exited"); }, 120))
      << read_file(run + "/state") << read_file(run + "/slurm-" + ids[0] + ".out");
  const std::string out = read_file(run + "/slurm-" + ids[0] + ".out");
  EXPECT_TRUE(starts_with_file(run + "/state", "exited 0 ")) << out;
  auto summary = nlohmann::json::parse(read_file(run + "/train/summary.json"));
  EXPECT_EQ(summary["ranks"], 2);
  EXPECT_EQ(summary["steps"], 5);
  EXPECT_NE(out.find("ranks 2 on 1 node(s)"), std::string::npos) << out;
}

TEST_F(SlurmTest, SixTaskSweepThrottledToTwoCollectsSixRows) {
  const std::string cfg = write_config(
      "sweep.toml", train_config("job_name = \"sweep6\"\n", 5) +
                        "[sweep]\nmode = \"grid\"\nthrottle = 2\nmetric = \"final_test_acc\"\n"
                        "[sweep.params.optimizer]\nlr = [0.2, 0.05, 0.01]\n"
                        "[sweep.params.train]\nbatch_size = [16, 32]\n");
  auto ids = submit({cfg, "--site", site(), "--set", "run.name=\"s\""});
  ASSERT_EQ(ids.size(), 1u);
  const std::string run = dir_ + "/runs/s";
  EXPECT_NE(show_job(ids[0]).count("ArrayTaskThrottle"), 0u);
  EXPECT_EQ(show_job(ids[0])["ArrayTaskThrottle"], "2");

  // Watch the array through both status paths; never more than 2 tasks run at once.
  int max_running = 0, polls = 0;
  auto all_done = [&] {
    ProcessResult r =
        run_process({HPCML_EXE, "sweep", "status", run, "--submitter",
                     (++polls % 2) ? "sbatch" : (libslurm_available() ? "libslurm" : "sbatch")});
    if (r.exit_code != 0) return false;
    int running = 0;
    std::istringstream rows(r.out);
    for (std::string id, state, rest; rows >> id >> state && std::getline(rows, rest);)
      running += id.find_first_not_of("0123456789") == std::string::npos && state == "RUNNING";
    max_running = std::max(max_running, running);
    // Done when every task has finished one way or the other.
    int finished = 0;
    std::istringstream again(r.out);
    for (std::string id, state, rest; again >> id >> state && std::getline(again, rest);)
      finished += id.find_first_not_of("0123456789") == std::string::npos &&
                  (state == "COMPLETED" || state == "FAILED");
    return finished == 6;
  };
  ASSERT_TRUE(wait_for(all_done, 200)) << run_process({HPCML_EXE, "sweep", "status", run}).out;
  EXPECT_LE(max_running, 2);
  ProcessResult st = run_process({HPCML_EXE, "sweep", "status", run});
  EXPECT_NE(st.out.find("6 tasks: 6 COMPLETED"), std::string::npos) << st.out;

  ProcessResult r = run_process({HPCML_EXE, "sweep", "collect", run});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("6 of 6 tasks completed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Best: task "), std::string::npos) << r.out;
  const std::string csv = read_file(run + "/results.csv");
  int lines = 0;
  for (char c : csv) lines += c == '\n';
  EXPECT_EQ(lines, 7) << csv;  // header + 6 rows
  int table_rows = 0;
  std::istringstream md(read_file(run + "/results.md"));
  for (std::string line; std::getline(md, line);)
    table_rows += line.rfind("| ", 0) == 0 && line.find("| task |") != 0;
  EXPECT_EQ(table_rows, 6) << read_file(run + "/results.md");
  // Each task ran in its own directory with its own parameters.
  for (int t = 0; t < 6; ++t) {
    const std::string s = run + "/task-000" + std::to_string(t) + "/train/summary.json";
    ASSERT_TRUE(fs::exists(s)) << s;
    auto j = nlohmann::json::parse(read_file(s));
    EXPECT_EQ(j["local_batch"], t % 2 == 0 ? 16 : 32) << s;
  }
}

// MaxArraySize 2 (the site's value, as a config [site] override): three tasks
// become two arrays, each indexed from 0, and the sweep still collects as one.
TEST_F(SlurmTest, SweepLargerThanMaxArraySizeIsSplitIntoArraysFromZero) {
  const std::string cfg =
      write_config("split.toml",
                   train_config("job_name = \"split\"\n", 2) +
                       "[sweep]\nmode = \"zip\"\n[sweep.params.optimizer]\nlr = [0.1, 0.05, 0.01]\n"
                       "[site]\nmax_array_size = 2\n");
  auto ids = submit({cfg, "--site", site(), "--set", "run.name=\"z\""});
  ASSERT_EQ(ids.size(), 2u);
  const std::string run = dir_ + "/runs/z";
  ASSERT_TRUE(wait_for(
      [&] {
        return run_process({HPCML_EXE, "sweep", "status", run}).out.find("3 tasks: 3 COMPLETED") !=
               std::string::npos;
      },
      150))
      << run_process({HPCML_EXE, "sweep", "status", run}).out;
  EXPECT_TRUE(fs::exists(run + "/sweep-0.sbatch"));
  EXPECT_TRUE(fs::exists(run + "/slurm-" + ids[0] + "_1.out"));
  EXPECT_TRUE(fs::exists(run + "/slurm-" + ids[1] +
                         "_0.out"));  // the third task is index 0 of the second array
  EXPECT_FALSE(fs::exists(run + "/slurm-" + ids[1] + "_1.out"));
  auto last = nlohmann::json::parse(read_file(run + "/task-0002/train/summary.json"));
  EXPECT_EQ(last["steps"], 2);
  ProcessResult r = run_process({HPCML_EXE, "sweep", "collect", run});
  EXPECT_NE(r.out.find("3 of 3 tasks completed"), std::string::npos) << r.out;
}

TEST_F(SlurmTest, DependencyChainRunsTheLastJobAfterTheOthers) {
  const std::string info = "[slurm]\ntime = \"2\"\ncommand = [\"info\"]\n[run]\ndir = \"runs\"\n";
  const std::string a = write_config("a.toml", info + "name = \"a\"\n");
  // b fails (unknown option): afterany still releases the report.
  const std::string b =
      write_config("b.toml",
                   "[slurm]\ntime = \"2\"\ncommand = [\"info\", \"--no-such-option\"]\n[run]\ndir "
                   "= \"runs\"\nname = \"b\"\n");
  const std::string c = write_config("c.toml",
                                     "[slurm]\ntime = \"2\"\ndependency = \"afterany\"\ncommand = "
                                     "[\"info\"]\n[run]\ndir = \"runs\"\n"
                                     "name = \"report\"\n");
  auto ids = submit({a, b, c, "--site", site(), "--submitter", "sbatch"});
  ASSERT_EQ(ids.size(), 3u);
  auto jc = show_job(ids[2]);
  EXPECT_NE(jc["Dependency"].find("afterany:" + ids[0]), std::string::npos) << jc["Dependency"];
  EXPECT_NE(jc["Dependency"].find("afterany:" + ids[1]), std::string::npos) << jc["Dependency"];
  ASSERT_TRUE(
      wait_for([&] { return starts_with_file(dir_ + "/runs/report/state", "exited"); }, 120));
  EXPECT_TRUE(starts_with_file(dir_ + "/runs/a/state", "exited 0 "));
  EXPECT_FALSE(starts_with_file(dir_ + "/runs/b/state", "exited 0 "))
      << read_file(dir_ + "/runs/b/state");
  EXPECT_TRUE(starts_with_file(dir_ + "/runs/report/state", "exited 0 "));
  // `hpcml info` under srun: the launcher's view agrees with MPI.
  const std::string info_out = read_file(dir_ + "/runs/a/slurm-" + ids[0] + ".out");
  EXPECT_NE(info_out.find("launcher env      SLURM: rank 0 of 1"), std::string::npos) << info_out;
  EXPECT_EQ(info_out.find("WARNING"), std::string::npos) << info_out;
  // Slurm's own record: the report started no earlier than both others ended.
  auto ja = show_job(ids[0]), jb = show_job(ids[1]);
  jc = show_job(ids[2]);
  EXPECT_GE(jc["StartTime"], ja["EndTime"]);
  EXPECT_GE(jc["StartTime"], jb["EndTime"]);
}

// Waits until the job's run directory `run` reports its first restart, cancels
// the job (Slurm re-sends the pending USR1 to a restarted job almost at once, so
// it may already have stopped and requeued again) and checks the log for the
// signal, the trainer's stop and the requeue.
void expect_stopped_by_usr1_and_requeued(const std::string& id, const std::string& run) {
  const std::string log = run + "/slurm-" + id + ".out";
  ASSERT_TRUE(wait_for(
      [&] { return read_file(run + "/state").find("restart=1") != std::string::npos; }, 200))
      << read_file(run + "/state") << read_file(log);
  run_process({"scancel", id});
  const std::string out = read_file(log);
  EXPECT_NE(out.find("hpcml: SIGUSR1"), std::string::npos) << out;
  EXPECT_NE(out.find("stopped early on signal"), std::string::npos) << out;
  EXPECT_NE(out.find("requeueing job " + id), std::string::npos) << out;
}

TEST_F(SlurmTest, Usr1BeforeTheTimeLimitStopsTheTrainerAndRequeues) {
  // 1 minute limit, USR1 50 s before it: the trainer (no step limit) is stopped by
  // the signal, exits 3, and the script requeues the job, which starts again.
  const std::string cfg = write_config(
      "requeue.toml",
      train_config("job_name = \"requeue\"\nsignal_seconds = 50\nrequeue = true\n", 0));
  auto ids = submit({cfg, "--site", site(), "--set", "slurm.time=1", "--set",
                     "train.evaluate=false", "--set", "run.name=\"r\""});
  ASSERT_EQ(ids.size(), 1u);
  ASSERT_NO_FATAL_FAILURE(expect_stopped_by_usr1_and_requeued(ids[0], dir_ + "/runs/r"));
  const std::string restarts = show_job(ids[0])["Restarts"];
  ASSERT_FALSE(restarts.empty());
  EXPECT_GE(std::stoi(restarts), 1) << "Restarts=" << restarts;
  // The first run's messages above are still in the log after the restart (--open-mode=append).
}

// Issue 10: a job whose work needs three allocations. USR1 is sent to the batch
// shell twice while the trainer runs; each time it stops, writes a checkpoint,
// exits 3 and the script requeues; each restart runs with --resume auto. The
// final weights equal an uninterrupted run's (same rank count and threads).
int metrics_steps(const std::string& path) {
  std::istringstream in(read_file(path));
  int n = 0;
  for (std::string line; std::getline(in, line);)
    if (line.find("\"type\":\"step\"") != std::string::npos) ++n;
  return n;
}

TEST_F(SlurmTest, RequeuedTwiceFinishesWithTheUninterruptedWeights) {
  // About 15 ms a step (two 1024-wide layers, batch 128): slow enough to signal twice.
  std::string cfg_text = train_config("job_name = \"resume3\"\nrequeue = true\n", 1000);
  cfg_text += "[parallel]\nthreads = 1\n";
  const std::string cfg = write_config("resume3.toml", cfg_text);
  const std::vector<std::string> sets{
      "--set", "train.evaluate=false", "--set", "model.hidden=[1024, 1024]",
      "--set", "train.batch_size=128", "--set", "run.name=\"three\""};
  std::vector<std::string> args{cfg, "--site", site()};
  args.insert(args.end(), sets.begin(), sets.end());
  auto ids = submit(args);
  ASSERT_EQ(ids.size(), 1u);
  const std::string run = dir_ + "/runs/three";
  const std::string log = run + "/slurm-" + ids[0] + ".out";
  const std::string metrics = run + "/train/metrics.jsonl";
  for (int restart = 0; restart < 2; ++restart) {
    const std::string tag = "restart=" + std::to_string(restart);
    // Running in allocation `restart`, and past the steps it had already done.
    const int before = metrics_steps(metrics);
    ASSERT_TRUE(wait_for(
        [&] {
          return read_file(run + "/state").rfind("running", 0) == 0 &&
                 read_file(run + "/state").find(tag) != std::string::npos &&
                 metrics_steps(metrics) > before + 50;
        },
        200))
        << read_file(run + "/state") << read_file(log);
    run_process({"scancel", "--signal=USR1", "--batch", ids[0]});
    ASSERT_TRUE(wait_for(
        [&] {
          return read_file(run + "/state").find("restart=" + std::to_string(restart + 1)) !=
                 std::string::npos;
        },
        200))
        << read_file(run + "/state") << read_file(log);
  }
  ASSERT_TRUE(wait_for([&] { return starts_with_file(run + "/state", "exited"); }, 300))
      << read_file(run + "/state") << read_file(log);
  const std::string out = read_file(log);
  EXPECT_TRUE(starts_with_file(run + "/state", "exited 0 ")) << read_file(run + "/state") << out;
  auto summary = nlohmann::json::parse(read_file(run + "/train/summary.json"));
  EXPECT_EQ(summary["steps"], 1000) << out;
  EXPECT_EQ(summary["restarts"], 2) << out;
  EXPECT_FALSE(summary["resumed_from"].is_null()) << out;

  // The same training without Slurm or stops: one rank, one thread.
  std::vector<std::string> ref{HPCML_EXE, "train", cfg, "--set", "run.dir=\"" + dir_ + "/ref\""};
  ref.insert(ref.end(), sets.begin(), sets.end());
  ProcessResult r = run_process(ref);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto uninterrupted = nlohmann::json::parse(read_file(dir_ + "/ref/three/summary.json"));
  EXPECT_EQ(summary["params_digest"], uninterrupted["params_digest"]) << out;
}

// Issue 10: the same through Hydra's mpiexec, which often exits 0 after SIGUSR1 although
// both ranks exit 3. The script reads summary.json's stopped_by_signal and requeues.
TEST_F(SlurmTest, Usr1ThroughMpiexecStillRequeues) {
  const std::string cfg = write_config(
      "requeue-mpiexec.toml",
      train_config("job_name = \"requeue-mpx\"\nntasks_per_node = 2\nlauncher = \"mpiexec\"\n"
                   "signal_seconds = 50\nrequeue = true\n",
                   0));
  auto ids = submit({cfg, "--site", site(), "--set", "slurm.time=1", "--set",
                     "train.evaluate=false", "--set", "run.name=\"m\""});
  ASSERT_EQ(ids.size(), 1u);
  const std::string run = dir_ + "/runs/m";
  ASSERT_NO_FATAL_FAILURE(expect_stopped_by_usr1_and_requeued(ids[0], run));
  auto summary = nlohmann::json::parse(read_file(run + "/train/summary.json"));
  EXPECT_EQ(summary["stopped_by_signal"], true);
  EXPECT_EQ(summary["ranks"], 2);
}

TEST_F(SlurmTest, HostileEnvironmentValuesRunNothingUnderSlurm) {
  const std::string marker = dir_ + "/pwned";
  const std::string cfg = write_config(
      "hostile.toml",
      "[slurm]\ntime = \"2\"\ncommand = [\"info\"]\n[slurm.env]\nHOSTILE = \"$(touch " + marker +
          ") `touch " + marker + "`; touch " + marker +
          " #\"\n[run]\ndir = \"runs\"\nname = \"h\"\n");
  auto ids = submit({cfg, "--site", site()});
  ASSERT_EQ(ids.size(), 1u);
  ASSERT_TRUE(wait_for([&] { return starts_with_file(dir_ + "/runs/h/state", "exited"); }, 60));
  EXPECT_TRUE(starts_with_file(dir_ + "/runs/h/state", "exited 0 "));
  EXPECT_FALSE(fs::exists(marker));
}

}  // namespace
}  // namespace hpcml::launch

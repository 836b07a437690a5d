// Batch scripts: generated text against expected files for several configs and
// site profiles, hostile values refused, and generated scripts executed by bash
// to show that values arrive literally and nothing else runs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "hpcml/core/error.hpp"
#include "hpcml/launch/process.hpp"
#include "hpcml/launch/submit.hpp"
#include "test_util.hpp"

namespace hpcml::launch {
namespace {

namespace fs = std::filesystem;
using test::data_dir;
using test::read_file;

std::string dry_run(const std::string& config, const std::string& site,
                    const std::vector<std::string>& sets = {}) {
  test::ScopedChdir cd(data_dir());
  SubmitOptions o;
  o.configs = {config};
  o.site = site;
  o.sites_dir = test::source_dir() + "/configs/sites";
  o.sets = sets;
  o.dry_run = true;
  o.hpcml = "/opt/hpcml/bin/hpcml";
  std::ostringstream out, log;
  submit_configs(o, out, log);
  return test::replace_all(out.str(), data_dir(), "@DATA@");
}

void expect_matches_file(const std::string& got, const std::string& name) {
  const std::string path = data_dir() + "/expected/" + name;
  if (const char* u = std::getenv("HPCML_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    test::write_file(path, got);
    GTEST_SKIP() << "wrote " << path;
  }
  ASSERT_TRUE(fs::exists(path)) << path
                                << " missing (run with HPCML_UPDATE_GOLDEN=1 and review it)";
  EXPECT_EQ(got, read_file(path)) << "generated script differs from " << path;
}

TEST(LaunchScript, BasicJobOnLocalSite) {
  expect_matches_file(dry_run("basic.toml", "local"), "basic.txt");
}

TEST(LaunchScript, EveryDirectiveOnExampleCluster) {
  expect_matches_file(dry_run("full.toml", "example-cluster"), "full.txt");
}

TEST(LaunchScript, GpuJobBindsOneGpuPerTask) {
  expect_matches_file(dry_run("gpu.toml", "example-gpu-cluster"), "gpu.txt");
}

// gpu_bind: "auto" binds one GPU per task only when a node has enough of them.
TEST(LaunchScript, GpuBindingFollowsTasksAndGpus) {
  const std::string bound = dry_run("gpu.toml", "example-gpu-cluster");
  EXPECT_NE(bound.find("--gpus-per-node=4 --gpu-bind='single:1' \"$HPCML\""), std::string::npos)
      << bound;
  EXPECT_NE(bound.find("export HPCML_GPU_BOUND=1\n"), std::string::npos);
  // More tasks than GPUs: no binding; hpcml refuses unless parallel.gpu_sharing.
  const std::string shared =
      dry_run("gpu.toml", "example-gpu-cluster", {"slurm.ntasks_per_node=8"});
  EXPECT_EQ(shared.find("--gpu-bind"), std::string::npos) << shared;
  EXPECT_EQ(shared.find("HPCML_GPU_BOUND"), std::string::npos);
  const std::string mapped =
      dry_run("gpu.toml", "example-gpu-cluster", {"slurm.gpu_bind=\"map_gpu:3,2,1,0\""});
  EXPECT_NE(mapped.find("--gpu-bind='map_gpu:3,2,1,0'"), std::string::npos) << mapped;
  const std::string none = dry_run("gpu.toml", "example-gpu-cluster", {"slurm.gpu_bind=\"none\""});
  EXPECT_EQ(none.find("--gpu-bind"), std::string::npos);
}

TEST(LaunchScript, GridSweepWithMpiexecSite) {
  expect_matches_file(dry_run("sweep.toml", "example-mpiexec"), "sweep.txt");
}

TEST(LaunchScript, ZipSweepSplitByMaxArraySize) {
  expect_matches_file(dry_run("zip_split.toml", "sites/tiny-arrays.toml"), "zip_split.txt");
}

// Independent of the expected files: the facts the issue asks for.
TEST(LaunchScript, ContainsTheGeometryAndSignalHandling) {
  const std::string s = dry_run("full.toml", "example-cluster");
  for (const char* needle :
       {"#SBATCH --nodes=4\n", "#SBATCH --ntasks-per-node=8\n", "#SBATCH --cpus-per-task=4\n",
        "#SBATCH --gpus-per-node=2\n", "#SBATCH --mem=65536M\n", "#SBATCH --time=1-12:00:00\n",
        "#SBATCH --exclusive\n", "#SBATCH --signal=B:USR1@120\n", "#SBATCH --requeue\n",
        "#SBATCH --reservation=maint\n", "export OMP_NUM_THREADS=4\n",
        "export OMP_PROC_BIND='spread'\n",
        "srun -n 32 --ntasks-per-node=8 -c 4 --cpu-bind='cores' --mpi='pmi2'",
        "module load 'mpich/4.0'\n", "scontrol requeue \"$SLURM_JOB_ID\"",
        "trap hpcml_forward_usr1 USR1"}) {
    EXPECT_NE(s.find(needle), std::string::npos) << "missing: " << needle;
  }
  const std::string sweep = dry_run("sweep.toml", "example-mpiexec");
  EXPECT_NE(sweep.find("#SBATCH --array=0-5%2\n"), std::string::npos);
  EXPECT_NE(sweep.find("'mpiexec' -n 2 -ppn 2"), std::string::npos);
  const std::string zip = dry_run("zip_split.toml", "sites/tiny-arrays.toml");
  EXPECT_NE(zip.find("# ---- sweep-2.sbatch"), std::string::npos);
  EXPECT_NE(zip.find("TASK=$((10#$SLURM_ARRAY_TASK_ID + 4))"), std::string::npos);
}

// A hostile value must be refused with a message naming its key.
void expect_refused(const std::string& config, const std::vector<std::string>& sets,
                    const std::string& key) {
  try {
    dry_run(config, "local", sets);
    ADD_FAILURE() << "accepted: " << (sets.empty() ? config : sets.back());
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos)
        << "message spans lines: " << e.what();
  }
}

TEST(LaunchScript, HostileValuesAreRefused) {
  expect_refused("basic.toml", {"slurm.job_name=\"x\\n#SBATCH --uid=0\""}, "slurm.job_name");
  expect_refused("basic.toml", {"slurm.job_name=\"$(touch /tmp/pwned)\""}, "slurm.job_name");
  expect_refused("basic.toml", {"slurm.job_name=\"`id`\""}, "slurm.job_name");
  expect_refused("basic.toml", {"slurm.partition=\"debug;reboot\""}, "slurm.partition");
  expect_refused("basic.toml", {"slurm.gpu_bind=\"single:1;id\""}, "slurm.gpu_bind");
  expect_refused("basic.toml", {"slurm.account=\"a#b\""}, "slurm.account");
  expect_refused("basic.toml", {"slurm.output=\"/x\\nrm -rf /\""}, "slurm.output");
  expect_refused("basic.toml", {"slurm.output=\"/x/$(id).out\""}, "slurm.output");
  expect_refused("basic.toml", {"slurm.error=\"a b\""}, "slurm.error");
  expect_refused("basic.toml", {"slurm.extra=[\"--comment=$(id)\"]"}, "slurm.extra");
  expect_refused("basic.toml", {"slurm.extra=[\"--comment=x\\n#SBATCH --uid=0\"]"}, "slurm.extra");
  expect_refused("basic.toml", {"slurm.mail_user=\"a@b;id\""}, "slurm.mail_user");
  expect_refused("basic.toml", {"slurm.constraint=\"ib`id`\""}, "slurm.constraint");
  expect_refused("basic.toml", {"site.modules=[\"mpich; touch /tmp/pwned\"]"}, "site.modules");
  expect_refused("basic.toml", {"site.modules=[\"$(id)\"]"}, "site.modules");
  expect_refused("basic.toml", {"site.env_script=\"/x;id\""}, "site.env_script");
  expect_refused("basic.toml", {"slurm.env.X=\"line1\\nline2\""}, "slurm.env.X");
  expect_refused("basic.toml", {"slurm.env.\"A;B\"=\"v\""}, "slurm.env");
  expect_refused("basic.toml", {"slurm.command=[\"train;id\"]"}, "slurm.command");
  expect_refused("basic.toml", {"run.dir=\"/tmp/a b\""}, "run directory");
  expect_refused("basic.toml", {"run.dir=\"/tmp/$(id)\""}, "run directory");
  expect_refused("sweep.toml", {"sweep.params.data.path=[\"ok\", \"bad\\nid\"]"},
                 "sweep.params.data.path");
  expect_refused("basic.toml", {"slurm.time=\"10; id\""}, "slurm.time");
  expect_refused("basic.toml", {"slurm.mem=\"4G$(id)\""}, "slurm.mem");
  expect_refused("basic.toml", {"slurm.nodez=2"}, "slurm.nodez");  // typo: unknown key
  expect_refused("basic.toml", {"sweep.mode=\"grid\"", "sweep.params.optimizer.lrr=[1, 2]"},
                 "optimizer.lrr");
  // A raw --set with a newline never gets as far as TOML.
  expect_refused("basic.toml", {"slurm.job_name=a\nb"}, "--set");
}

TEST(LaunchScript, UnknownSiteIsAConfigError) {
  EXPECT_THROW(dry_run("basic.toml", "no-such-site"), ConfigError);
  EXPECT_THROW(dry_run("basic.toml", "../../etc/passwd"), ConfigError);
}

// Writes a run directory (no submission) for `config_text` and returns it.
// `hpcml` is the program the script runs (default: a recorder of its arguments).
std::string write_run(const test::TempDir& tmp, const std::string& config_text,
                      const std::vector<std::string>& sets = {},
                      const std::string& hpcml = data_dir() + "/record_args.sh") {
  const std::string cfg = tmp.path() + "/job.toml";
  test::write_file(cfg, config_text);
  test::ScopedChdir cd(tmp.path());
  SubmitOptions o;
  o.configs = {cfg};
  o.sets = sets;
  o.write_only = true;
  o.hpcml = hpcml;
  std::ostringstream out, log;
  auto jobs = submit_configs(o, out, log);
  return jobs.at(0).run_dir;
}

// The generated scripts, run by bash (Slurm not needed with launcher = "none"):
// hostile environment and sweep values reach the program literally and no
// command hidden in them runs.
TEST(LaunchScript, HostileValuesArriveLiterallyAndRunNothing) {
  test::TempDir tmp;
  const std::string marker = tmp.path() + "/pwned";
  const std::string hostile_env =
      "$(touch " + marker + ") `touch " + marker + "`; touch " + marker + " # x'y\"z";
  std::ostringstream cfg;
  cfg << "[slurm]\nlauncher = \"none\"\njob_name = \"hostile\"\n"
      << "[slurm.env]\nHOSTILE = \"" << test::replace_all(hostile_env, "\"", "\\\"") << "\"\n"
      << "[sweep]\nmode = \"zip\"\n[sweep.params.data]\n"
      << "path = [\"$(touch " << marker << ")\", \"`touch " << marker << "`\", \"a;touch " << marker
      << " #\"]\n"
      << "[run]\ndir = \"" << tmp.path() << "/runs\"\nname = \"h\"\n";
  const std::string run_dir =
      write_run(tmp, cfg.str(), {"data.test_split=\"t$(touch " + marker + ")\""});
  const std::string rec = tmp.path() + "/rec";
  fs::create_directory(rec);
  for (int task = 0; task < 3; ++task) {
    ProcessResult r =
        run_process({"env", "RECORD_DIR=" + rec, "SLURM_ARRAY_TASK_ID=" + std::to_string(task),
                     "SLURM_JOB_ID=1", "bash", run_dir + "/sweep.sbatch"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err
                              << read_file(run_dir + "/task-000" + std::to_string(task) +
                                           "/job.log");
  }
  EXPECT_FALSE(fs::exists(marker)) << "a hostile value was executed";
  const char* expected_paths[] = {"data.path=\"$(touch ", "data.path=\"`touch ",
                                  "data.path=\"a;touch "};
  for (int task = 0; task < 3; ++task) {
    const std::string args = read_file(rec + "/args." + std::to_string(task));
    EXPECT_NE(args.find(expected_paths[task]), std::string::npos) << args;
    EXPECT_NE(args.find("data.test_split=\"t$(touch "), std::string::npos) << args;
    EXPECT_EQ(read_file(rec + "/env." + std::to_string(task)), hostile_env + "\n");
    EXPECT_EQ(
        read_file(run_dir + "/task-000" + std::to_string(task) + "/state").rfind("exited 0 ", 0),
        0u);
  }
  // Not an array task, or a forged task id: the script refuses before running anything.
  ProcessResult r = run_process({"env", "RECORD_DIR=" + rec, "SLURM_ARRAY_TASK_ID=1+$(id)", "bash",
                                 run_dir + "/sweep.sbatch"});
  EXPECT_EQ(r.exit_code, 2);
  r = run_process(
      {"env", "RECORD_DIR=" + rec, "SLURM_ARRAY_TASK_ID=7", "bash", run_dir + "/sweep.sbatch"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(fs::exists(rec + "/args.3"));
  EXPECT_FALSE(fs::exists(marker));
}

// SIGUSR1 to the batch shell (what --signal=B:USR1 does) reaches the job step,
// and the step's exit code 3 comes back out of the script (requeue off).
TEST(LaunchScript, Usr1IsForwardedToTheJobStep) {
  test::TempDir tmp;
  std::ostringstream cfg;
  cfg << "[slurm]\nlauncher = \"none\"\nsignal_seconds = 60\n[run]\ndir = \"" << tmp.path()
      << "/runs\"\nname = \"sig\"\n";
  const std::string run_dir = write_run(tmp, cfg.str(), {}, data_dir() + "/wait_usr1.sh");
  const std::string rec = tmp.path();
  const std::string script = run_dir + "/job.sbatch";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("RECORD_DIR", rec.c_str(), 1);
    execlp("bash", "bash", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the step to be up (bounded: 30 s), then signal the batch shell only.
  for (int i = 0; i < 600 && !fs::exists(rec + "/ready"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(rec + "/ready"));
  kill(pid, SIGUSR1);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_EQ(read_file(rec + "/usr1"), "got-usr1\n");
  EXPECT_EQ(read_file(run_dir + "/state").rfind("exited 3 ", 0), 0u);
}

// Issue 10: Hydra's mpiexec often exits 0 after SIGUSR1 although the ranks exited 3.
// The script reads what the ranks recorded (summary.json's stopped_by_signal) and
// requeues all the same; a finished run is not mistaken for a stopped one.
struct MpiexecRun {
  int exit_code = -1;
  std::string err, state, scontrol;
};

MpiexecRun run_mpiexec_job(bool stopped) {
  test::TempDir tmp;
  std::ostringstream cfg;
  cfg << "[slurm]\nlauncher = \"mpiexec\"\nrequeue = true\nsignal_seconds = 60\n"
      << "[site]\nmpiexec = \"" << data_dir() << "/fake_mpiexec.sh\"\n"
      << "[run]\ndir = \"" << tmp.path() << "/runs\"\nname = \"mpx\"\n";
  const std::string run_dir = write_run(tmp, cfg.str(), {}, data_dir() + "/fake_train.sh");
  const std::string path = data_dir() + "/bin:" + std::string(std::getenv("PATH"));
  ProcessResult r = run_process(
      {"env", "PATH=" + path, "RECORD_DIR=" + tmp.path(), "SLURM_JOB_ID=77",
       std::string("STOPPED=") + (stopped ? "true" : "false"), "bash", run_dir + "/job.sbatch"});
  MpiexecRun m;
  m.exit_code = r.exit_code;
  m.err = r.err;
  m.state = read_file(run_dir + "/state");
  if (fs::exists(tmp.path() + "/scontrol")) m.scontrol = read_file(tmp.path() + "/scontrol");
  return m;
}

TEST(LaunchScript, MpiexecExitZeroAfterASignalStopStillRequeues) {
  const MpiexecRun stopped = run_mpiexec_job(true);
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;  // requeued: the batch job itself succeeded
  EXPECT_EQ(stopped.scontrol, "requeue 77\n") << stopped.err;
  EXPECT_EQ(stopped.state.rfind("requeued ", 0), 0u) << stopped.state;
  EXPECT_NE(stopped.err.find("the launcher exited 0 but the ranks recorded a stop on a signal"),
            std::string::npos)
      << stopped.err;
  const MpiexecRun finished = run_mpiexec_job(false);
  EXPECT_EQ(finished.exit_code, 0) << finished.err;
  EXPECT_EQ(finished.scontrol, "");
  EXPECT_EQ(finished.state.rfind("exited 0 ", 0), 0u) << finished.state;
}

TEST(LaunchScript, FaultDetectionDefaults) {
  // srun ends the whole step when one rank dies; Hydra's auto-cleanup is left on.
  const std::string s = dry_run("full.toml", "example-cluster");
  EXPECT_NE(s.find(" --kill-on-bad-exit=1 "), std::string::npos);
  const std::string m = dry_run("sweep.toml", "example-mpiexec");
  EXPECT_EQ(m.find("-disable-auto-cleanup"), std::string::npos);
  EXPECT_NE(m.find("hpcml_stopped_by_signal"), std::string::npos);
}

}  // namespace
}  // namespace hpcml::launch

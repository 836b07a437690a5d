// `hpcml train --resume` end to end: real shards, real mpiexec, real signals.
// A run stopped anywhere (inside an epoch, at an epoch's end, by max_steps,
// by SIGUSR1 to mpiexec or SIGTERM to one rank, by kill -9) and resumed ends
// with the params_digest of the run that was never stopped (same ranks,
// backend and threads); corrupt checkpoints are skipped or refused with one
// line naming them; fields that must match are named when they do not.
#include <gtest/gtest.h>

#include <hdf5.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include <vector>
#include "shell_util.hpp"

namespace fs = std::filesystem;

namespace {

using shell_test::args_string;
using shell_test::quote;
using shell_test::Result;
using shell_test::run;

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

// The fixed-length string attribute `name` of a checkpoint file.
std::string checkpoint_attribute(const std::string& path, const char* name) {
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return "";
  hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
  hid_t type = H5Aget_type(attr);
  std::string out(H5Tget_size(type), '\0');
  H5Aread(attr, type, out.data());
  H5Tclose(type);
  H5Aclose(attr);
  H5Fclose(file);
  return out.substr(0, out.find('\0'));
}

class Resume : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(HPCML_TESTDATA) / "resume" / info->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  std::string config() const { return std::string(HPCML_CONFIGS) + "/fashion_mnist_mlp.toml"; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path run_dir(const std::string& name) const { return dir_ / "runs" / name; }
  fs::path ckpt_dir(const std::string& name) const { return run_dir(name) / "checkpoints"; }

  // Runs hpcml on `ranks` ranks; each rank prints "[rank-exit=N]" after hpcml
  // returns, and writes its hpcml's pid to <dir>/pid.<rank> (for signals).
  Result hpcml_mpi(int ranks, const std::vector<std::string>& args, int timeout_s = 300) {
    return run(mpi_command(ranks, args, timeout_s));
  }
  // timeout_s 0: no `timeout` in front (a signal for mpiexec must reach mpiexec).
  // `pids`: the prefix of the pid files (two jobs at once need two).
  std::string mpi_command(int ranks, const std::vector<std::string>& args, int timeout_s = 300,
                          const std::string& pids = "pid.") {
    // The rank's shell passes SIGUSR1/SIGTERM on to hpcml (mpiexec signals
    // the processes it started) and waits again until hpcml has exited.
    const std::string inner =
        quote(HPCML_EXE) + " \"$@\" & c=$!; echo $c > " + quote(path(pids)) +
        "$PMI_RANK; trap 'kill -USR1 $c' USR1; trap 'kill -TERM $c' TERM; wait $c; rc=$?; "
        "while kill -0 $c 2>/dev/null; do wait $c; rc=$?; done; echo \"[rank-exit=$rc]\"";
    return (timeout_s > 0 ? "timeout -k 10 " + std::to_string(timeout_s) + " " : std::string()) +
           HPCML_MPIEXEC + " -n " + std::to_string(ranks) + " sh -c " + quote(inner) + " sh" +
           args_string(args);
  }

  // A small learnable CSV dataset (label first, 8 features, 3 classes) sharded
  // into dir/<name>; `shift` makes another dataset of the same shape.
  std::string small_dataset(const std::string& name = "small", int shift = 0) {
    std::ofstream csv(path(name + ".csv"));
    for (int i = 0; i < 480; ++i) {
      const int label = i % 3;
      csv << label;
      for (int f = 0; f < 8; ++f)
        csv << "," << (f == label ? 1.0 : 0.0) + 0.01 * ((i * 7 + f + shift) % 5);
      csv << "\n";
    }
    csv.close();
    for (const char* split : {"train", "test"}) {
      auto r =
          run(quote(HPCML_EXE) + " shard csv --file " + quote(path(name + ".csv")) + " --split " +
              split + " --classes 3 --no-header --out " + quote(path(name)) + " --shards 3");
      EXPECT_EQ(r.status, 0) << r.out;
    }
    return path(name);
  }

  // 480 samples, global batch 8: 60 steps per epoch. hidden [128] (1,539
  // parameters) is large enough for the sharded update on 2 ranks, so the
  // momentum is gathered from its owners. Cosine schedule with warmup: the
  // LR depends on the schedule's position and length.
  std::vector<std::string> train_args(const std::string& data, const std::string& name,
                                      int epochs = 3) {
    return {"train", config(),
            "--set", "data.path=" + data,
            "--set", "model.hidden=[128]",
            "--set", "train.batch_size=4",
            "--set", "train.epochs=" + std::to_string(epochs),
            "--set", "optimizer.warmup_epochs=0.5",
            "--set", "run.dir=" + path("runs"),
            "--set", "run.name=" + name,
            "--set", "run.progress=never",
            "--set", "parallel.threads=1"};
  }

  static std::vector<std::string> with(std::vector<std::string> args,
                                       const std::vector<std::string>& sets) {
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    return args;
  }

  std::string digest(const std::string& name) const {
    return read_json(run_dir(name) / "summary.json")["params_digest"].get<std::string>();
  }

  // Copies run `from` to run `to` and removes its checkpoints after `step`.
  void copy_run_up_to(const std::string& from, const std::string& to, std::size_t step) {
    fs::copy(run_dir(from), run_dir(to), fs::copy_options::recursive);
    for (const auto& e : fs::directory_iterator(ckpt_dir(to))) {
      std::smatch m;
      const std::string f = e.path().filename().string();
      if (std::regex_match(f, m, std::regex("ckpt-([0-9]+)\\.h5")) && std::stoul(m[1]) > step)
        fs::remove(e.path());
    }
  }

  fs::path dir_;
};

std::string ckpt_name(std::size_t step) {
  const std::string n = std::to_string(step);
  return "ckpt-" + std::string(12 - n.size(), '0') + n + ".h5";
}

std::vector<std::string> resume(std::vector<std::string> args, const std::string& how = "auto") {
  args.insert(args.end(), {"--resume", how});
  return args;
}

// The newest checkpoint of a run stopped inside an epoch, and one stopped
// right at an epoch's end, each resume to the uninterrupted run's bits.
TEST_F(Resume, MidEpochAndEpochBoundaryResumeBitExactly) {
  const auto data = small_dataset();
  auto r = hpcml_mpi(
      2, with(train_args(data, "full"), {"checkpoint.every_steps=5", "checkpoint.keep=1000"}));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  ASSERT_NE(r.out.find("update: sharded"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(ckpt_dir("full") / ckpt_name(180)));  // the end of the run
  const auto full = read_json(run_dir("full") / "summary.json");
  EXPECT_EQ(full["restarts"], 0);
  EXPECT_TRUE(full["resumed_from"].is_null());
  // One checkpoint line per save in metrics.jsonl: steps 5, 10, ..., 180.
  int lines = 0;
  std::ifstream m(run_dir("full") / "metrics.jsonl");
  for (std::string line; std::getline(m, line);)
    lines += nlohmann::json::parse(line)["type"] == "checkpoint";
  EXPECT_EQ(lines, 36);

  for (std::size_t at : {35u, 60u, 125u}) {
    const std::string name = "at" + std::to_string(at);
    copy_run_up_to("full", name, at);
    r = hpcml_mpi(2, resume(with(train_args(data, name), {"checkpoint.every_steps=5"})));
    ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
    const std::string from = (ckpt_dir(name) / ckpt_name(at)).string();
    EXPECT_NE(r.out.find("resumed from " + from + " at step " + std::to_string(at)),
              std::string::npos)
        << r.out;
    EXPECT_EQ(r.out.find("warning"), std::string::npos) << r.out;
    const auto s = read_json(run_dir(name) / "summary.json");
    EXPECT_EQ(s["params_digest"], full["params_digest"]) << "resumed at step " << at;
    EXPECT_EQ(s["steps"], 180);
    EXPECT_EQ(s["epochs_completed"], 3);
    EXPECT_EQ(s["restarts"], 1);
    EXPECT_EQ(fs::path(s["resumed_from"].get<std::string>()).filename(), ckpt_name(at));
    EXPECT_TRUE(fs::exists(run_dir(name) / "config-resume-1.toml"));
    // keep = 2 in the resumed run: the newest two remain.
    EXPECT_TRUE(fs::exists(ckpt_dir(name) / ckpt_name(180)));
    EXPECT_TRUE(fs::exists(ckpt_dir(name) / ckpt_name(175)));
    EXPECT_FALSE(fs::exists(ckpt_dir(name) / ckpt_name(170)));
  }
}

// train.max_steps stops a run inside an epoch; resumed without the limit it
// continues (a warning: the schedule's end moved). With a constant rate the
// schedule's length does not matter, so the result is the uninterrupted run's.
TEST_F(Resume, StoppedByMaxStepsThenResumedWithoutTheLimit) {
  const auto data = small_dataset();
  const std::vector<std::string> constant = {"optimizer.schedule=constant",
                                             "optimizer.warmup_epochs=0"};
  auto r = hpcml_mpi(2, with(train_args(data, "full", 2), constant));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  auto limited = constant;
  limited.push_back("train.max_steps=37");
  r = hpcml_mpi(2, with(train_args(data, "part", 2), limited));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  EXPECT_EQ(read_json(run_dir("part") / "summary.json")["steps"], 37);
  EXPECT_TRUE(fs::exists(ckpt_dir("part") / ckpt_name(37)));  // written at the end
  r = hpcml_mpi(2, resume(with(train_args(data, "part", 2), constant)));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  EXPECT_NE(r.out.find("hpcml: warning: the learning-rate schedule now ends at step 120, not 37"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(digest("part"), digest("full"));
  EXPECT_EQ(read_json(run_dir("part") / "summary.json")["steps"], 120);
}

// Long enough (36,000 steps, seconds even on a fast quiet machine, where a
// step of this small model takes tens of microseconds) that a signal sent
// after the first epoch arrives well before the end.
constexpr int kLongEpochs = 600;

// Waits (up to 120 s, polling every 0.02 s) until the run has written an
// epoch line, i.e. has trained for a while, then sends the signal; returns
// the job's result.
std::string signal_when_training(const std::string& metrics, const std::string& kill) {
  return "for i in $(seq 1 6000); do grep -q '\"type\":\"epoch\"' " + quote(metrics) +
         " 2>/dev/null && break; sleep 0.02; done; " + kill + "; wait $job";
}

// SIGUSR1 to every rank (what srun does with Slurm's --signal): every rank
// stops at the same step, writes a checkpoint and exits 3; --resume auto ends
// with the bits of the run that was never stopped. (The signal goes to the
// ranks, not to Hydra's mpiexec, whose handling of SIGUSR1 is issue 10 item 1;
// the generated scripts' path through srun is tested under Slurm.)
TEST_F(Resume, AfterSigusr1ToEveryRank) {
  const auto data = small_dataset();
  const auto args = with(train_args(data, "full", kLongEpochs), {"train.evaluate=false"});
  auto r = hpcml_mpi(2, args);
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;

  const auto stopped = with(train_args(data, "stopped", kLongEpochs), {"train.evaluate=false"});
  const std::string script =
      "sh -c " +
      quote("echo $$ > " + quote(path("mpiexec.pid")) + "; exec " + mpi_command(2, stopped, 0)) +
      " & job=$!; " +
      signal_when_training(
          (run_dir("stopped") / "metrics.jsonl").string(),
          "kill -USR1 $(cat " + quote(path("pid.0")) + ") $(cat " + quote(path("pid.1")) + ")");
  r = run("timeout -k 10 300 sh -c " + quote(script));
  ASSERT_EQ(count(r.out, "[rank-exit=3]"), 2) << r.out;
  EXPECT_NE(r.out.find("stopped early on signal 10 after step "), std::string::npos) << r.out;
  const auto s = read_json(run_dir("stopped") / "summary.json");
  EXPECT_TRUE(s["stopped_by_signal"].get<bool>());
  EXPECT_EQ(s["stop_signal"], 10);
  const std::size_t at = s["steps"].get<std::size_t>();
  EXPECT_LT(at, 60u * kLongEpochs);
  EXPECT_EQ(at % 8, 0u);  // the ranks agree every 8 steps
  EXPECT_TRUE(fs::exists(ckpt_dir("stopped") / ckpt_name(at)));

  r = hpcml_mpi(2, resume(stopped));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  EXPECT_NE(r.out.find("at step " + std::to_string(at)), std::string::npos) << r.out;
  EXPECT_EQ(digest("stopped"), digest("full"));
}

// SIGTERM to rank 1 alone: rank 0 names signal 15 (the agreed number, not its
// own 0), every rank exits 3, and the resumed run is bit-exact.
TEST_F(Resume, AfterSigtermToOneRank) {
  const auto data = small_dataset();
  const auto full = with(train_args(data, "full", kLongEpochs), {"train.evaluate=false"});
  auto r = hpcml_mpi(2, full);
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;

  const auto args = with(train_args(data, "stopped", kLongEpochs), {"train.evaluate=false"});
  const std::string script = mpi_command(2, args) + " & job=$!; " +
                             signal_when_training((run_dir("stopped") / "metrics.jsonl").string(),
                                                  "kill -TERM $(cat " + quote(path("pid.1")) + ")");
  r = run("timeout -k 10 300 sh -c " + quote(script));
  ASSERT_EQ(count(r.out, "[rank-exit=3]"), 2) << r.out;
  EXPECT_NE(r.out.find("stopped early on signal 15 after step "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("signal 0"), std::string::npos) << r.out;
  EXPECT_EQ(read_json(run_dir("stopped") / "summary.json")["stop_signal"], 15);

  r = hpcml_mpi(2, resume(args));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  EXPECT_EQ(digest("stopped"), digest("full"));
}

// 2 ranks x batch 6 -> 3 ranks x batch 4 (the same global batch of 12): the
// weights and the momentum are loaded exactly (their digests are the
// checkpoint's), and training goes on to the end.
TEST_F(Resume, OnAnotherRankCount) {
  const auto data = small_dataset();
  auto two = with(train_args(data, "grow", 2), {"train.batch_size=6", "train.max_steps=50"});
  auto r = hpcml_mpi(2, two);
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  const std::string ckpt = (ckpt_dir("grow") / ckpt_name(50)).string();
  ASSERT_TRUE(fs::exists(ckpt));
  const std::string params = checkpoint_attribute(ckpt, "params_digest");
  const std::string momentum = checkpoint_attribute(ckpt, "momentum_digest");
  ASSERT_EQ(params.rfind("fnv1a64:", 0), 0u);

  auto three = with(train_args(data, "grow", 2), {"train.batch_size=4"});
  r = hpcml_mpi(3, resume(three));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 3) << r.out;
  EXPECT_NE(r.out.find("loaded parameters " + params + ", momentum " + momentum), std::string::npos)
      << "expected " << params << " / " << momentum << " in:\n"
      << r.out;
  EXPECT_NE(r.out.find("hpcml: warning: the checkpoint was written by 2 rank(s), this run has 3"),
            std::string::npos)
      << r.out;
  const auto s = read_json(run_dir("grow") / "summary.json");
  EXPECT_EQ(s["ranks"], 3);
  EXPECT_EQ(s["steps"], 80);  // 480 / 12 = 40 steps per epoch, 2 epochs
  EXPECT_EQ(s["restarts"], 1);
}

// Fields that must match are named; a missing run name or path is a clear error.
TEST_F(Resume, MismatchesAreNamed) {
  const auto data = small_dataset();
  auto r = hpcml_mpi(2, with(train_args(data, "a", 1), {"train.max_steps=10"}));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  auto expect_error = [&](const std::vector<std::string>& args, const std::string& what) {
    auto res = hpcml_mpi(2, args);
    EXPECT_EQ(count(res.out, "[rank-exit=1]"), 2) << res.out;
    EXPECT_EQ(count(res.out, "hpcml: error: "), 1) << res.out;
    EXPECT_NE(res.out.find(what), std::string::npos) << "expected '" << what << "' in:\n"
                                                     << res.out;
  };
  expect_error(resume(with(train_args(data, "a", 1), {"model.hidden=[64]"})),
               "model.hidden: the checkpoint holds a 8-128-3 model, this run builds 8-64-3");
  expect_error(resume(with(train_args(data, "a", 1), {"train.batch_size=2"})),
               "train.batch_size: global batch 8 (2 ranks x 4) in the checkpoint, 4");
  const auto other = small_dataset("other", 1);
  expect_error(resume(train_args(other, "a", 1)),
               "data.path: the checkpoint was trained on another dataset");
  expect_error(resume(with(train_args(data, "a", 1), {"run.name="})),
               "--resume auto: run.name is empty");
  expect_error(resume(train_args(data, "a", 1), path("nowhere")),
               "--resume " + path("nowhere") + ": no such checkpoint file or run directory");

  // A finished run resumed again (a requeue after the end): nothing to train,
  // its summary stays.
  const auto before = read_json(run_dir("a") / "summary.json");
  r = hpcml_mpi(2, resume(with(train_args(data, "a", 1), {"train.max_steps=10"})));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  EXPECT_NE(r.out.find("notice: the run is already complete at step 10"), std::string::npos)
      << r.out;
  EXPECT_EQ(read_json(run_dir("a") / "summary.json"), before);

  // No run directory yet: a notice and a fresh start under that name.
  r = hpcml_mpi(2, resume(with(train_args(data, "new", 1), {"train.max_steps=10"})));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  EXPECT_NE(r.out.find("notice: --resume auto: no run directory"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(ckpt_dir("new") / ckpt_name(10)));
}

// A corrupt newest checkpoint (a flipped byte in its data, or cut short) is
// skipped by auto with a warning naming it, which falls back to the previous
// one; named with --resume PATH it is refused in one line; a leftover .tmp of
// an interrupted write is ignored.
TEST_F(Resume, CorruptCheckpointsAreSkippedOrRefused) {
  const auto data = small_dataset();
  auto r = hpcml_mpi(
      2, with(train_args(data, "full", 1), {"checkpoint.every_steps=10", "checkpoint.keep=10"}));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  const std::string digest_full = digest("full");

  copy_run_up_to("full", "flip", 40);
  const std::string flipped = (ckpt_dir("flip") / ckpt_name(40)).string();
  {
    hid_t file = H5Fopen(flipped.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(file, "parameters", H5P_DEFAULT);
    hsize_t coord[1] = {0}, size = 0;
    haddr_t addr = HADDR_UNDEF;
    unsigned mask = 0;
    H5Dget_chunk_info_by_coord(ds, coord, &mask, &addr, &size);
    H5Dclose(ds);
    H5Fclose(file);
    ASSERT_NE(addr, HADDR_UNDEF);
    std::fstream f(flipped, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(addr + 100));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x04);
    f.seekp(static_cast<std::streamoff>(addr + 100));
    f.write(&c, 1);
  }
  // A leftover of a write killed half-way, newer than every checkpoint.
  fs::copy_file(ckpt_dir("flip") / ckpt_name(30), ckpt_dir("flip") / (ckpt_name(50) + ".tmp"));
  fs::resize_file(ckpt_dir("flip") / (ckpt_name(50) + ".tmp"), 1000);

  auto refused = hpcml_mpi(2, resume(train_args(data, "flip", 1), flipped));
  EXPECT_EQ(count(refused.out, "[rank-exit=1]"), 2) << refused.out;
  EXPECT_EQ(count(refused.out, "hpcml: error: " + flipped + ": "), 1) << refused.out;

  r = hpcml_mpi(2, resume(train_args(data, "flip", 1)));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  EXPECT_NE(r.out.find("hpcml: warning: skipping checkpoint: " + flipped + ": "), std::string::npos)
      << r.out;
  EXPECT_EQ(count(r.out, "skipping checkpoint"), 1) << r.out;  // not the .tmp
  EXPECT_NE(r.out.find("resumed from " + (ckpt_dir("flip") / ckpt_name(30)).string()),
            std::string::npos)
      << r.out;
  EXPECT_EQ(digest("flip"), digest_full);
  EXPECT_FALSE(fs::exists(ckpt_dir("flip") / (ckpt_name(50) + ".tmp")));  // cleaned up

  copy_run_up_to("full", "cut", 40);
  const std::string cut = (ckpt_dir("cut") / ckpt_name(40)).string();
  fs::resize_file(cut, fs::file_size(cut) - 300);
  r = hpcml_mpi(2, resume(train_args(data, "cut", 1), run_dir("cut").string()));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  EXPECT_NE(r.out.find("hpcml: warning: skipping checkpoint: " + cut + ": "), std::string::npos)
      << r.out;
  EXPECT_EQ(digest("cut"), digest_full);
}

// kill -9 of the job while it writes a checkpoint every step, at a few
// moments: whatever is left under a checkpoint name is valid (auto resumes
// without skipping anything), and the resumed run ends with the same bits.
TEST_F(Resume, KillDuringWritesLeavesValidCheckpoints) {
  const auto data = small_dataset();
  // 30 epochs of 60 steps, a checkpoint at every step: seconds of writing, so
  // each kill lands during the run even on a fast, quiet machine.
  const auto base =
      with(train_args(data, "full", 30), {"checkpoint.every_steps=1", "train.evaluate=false"});
  auto r = hpcml_mpi(2, base);
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  for (const char* delay : {"0.3", "0.9", "1.6"}) {
    const std::string name = std::string("killed") + delay;
    auto args =
        with(train_args(data, name, 30), {"checkpoint.every_steps=1", "train.evaluate=false"});
    // Once rank 0 has started (its pid file exists), wait `delay` seconds and kill it.
    const std::string script = mpi_command(2, args, 120) +
                               " & job=$!; for i in $(seq 1 600); do [ -s " + quote(path("pid.0")) +
                               " ] && [ -d " + quote(ckpt_dir(name).string()) +
                               " ] && break; sleep 0.05; done; sleep " + delay +
                               "; kill -KILL $(cat " + quote(path("pid.0")) + "); wait $job";
    fs::remove(path("pid.0"));
    r = run("timeout -k 10 150 sh -c " + quote(script));
    EXPECT_EQ(count(r.out, "[rank-exit=0]"), 0) << "the run ended before the kill:\n" << r.out;
    r = hpcml_mpi(2, resume(args));
    ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
    EXPECT_EQ(r.out.find("skipping checkpoint"), std::string::npos) << r.out;
    EXPECT_EQ(digest(name), digest("full")) << delay;
  }
}

}  // namespace

namespace {

// checkpoint.every_minutes: rank 0's clock decides, the ranks agree at the
// 8-step poll, so every timed save falls on a multiple of 8 on all ranks
// (an interval of 60 ns has always passed at a poll).
TEST_F(Resume, TimedCheckpointsFallOnAgreedSteps) {
  const auto data = small_dataset();
  auto r = hpcml_mpi(2, with(train_args(data, "timed", 1),
                             {"checkpoint.every_minutes=1e-9", "checkpoint.keep=100"}));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  std::ifstream m(run_dir("timed") / "metrics.jsonl");
  int timed = 0;
  for (std::string line; std::getline(m, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] != "checkpoint" || j["reason"] != "minutes") continue;
    ++timed;
    EXPECT_EQ(j["global_step"].get<int>() % 8, 0) << line;
    EXPECT_TRUE(fs::exists(j["path"].get<std::string>())) << line;
  }
  EXPECT_EQ(timed, 7);  // every poll (steps 8, 16, ..., 56) finds the interval passed
}

// checkpoint.async (the default) and synchronous saves of the same run write
// the same checkpoints: the same files with the same parameter and momentum
// bytes (their digests), and a resume from an async one is bit-exact.
TEST_F(Resume, AsyncAndSyncCheckpointsAreTheSame) {
  const auto data = small_dataset();
  const std::vector<std::string> every5 = {"checkpoint.every_steps=5", "checkpoint.keep=1000"};
  auto sync_args = with(train_args(data, "sync", 1), every5);
  sync_args = with(sync_args, {"checkpoint.async=false"});
  auto r = hpcml_mpi(2, sync_args);
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  EXPECT_EQ(r.out.find("in the background"), std::string::npos) << r.out;
  r = hpcml_mpi(2, with(train_args(data, "async", 1), every5));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  EXPECT_NE(r.out.find("in the background; training paused"), std::string::npos) << r.out;
  EXPECT_EQ(digest("async"), digest("sync"));
  int files = 0;
  for (const auto& e : fs::directory_iterator(ckpt_dir("sync"))) {
    const std::string name = e.path().filename().string();
    const std::string other = (ckpt_dir("async") / name).string();
    ASSERT_TRUE(fs::exists(other)) << other;
    for (const char* attr : {"params_digest", "momentum_digest"}) {
      EXPECT_EQ(checkpoint_attribute(e.path().string(), attr), checkpoint_attribute(other, attr))
          << name << " " << attr;
    }
    ++files;
  }
  EXPECT_EQ(files, 12);  // steps 5, 10, ..., 60
  int async_lines = 0;
  std::ifstream m(run_dir("async") / "metrics.jsonl");
  for (std::string line; std::getline(m, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] != "checkpoint") continue;
    async_lines += j["async"].get<bool>();
    EXPECT_GE(j["snapshot_s"].get<double>(), 0.0) << line;
    EXPECT_GE(j["step_cost_s"].get<double>(), 0.0) << line;
    EXPECT_GT(j["bytes"].get<int>(), 0) << line;
  }
  // All 12: step 60 is saved in the background by every_steps, and the end of
  // training, finding that step saved, only waits for its write.
  EXPECT_EQ(async_lines, 12);
  copy_run_up_to("async", "mid", 35);
  r = hpcml_mpi(2, resume(with(train_args(data, "mid", 1), every5)));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  EXPECT_NE(r.out.find("at step 35"), std::string::npos) << r.out;
  EXPECT_EQ(digest("mid"), digest("sync"));
}

// A background write that fails ends the job on every rank with one line
// naming the file, no summary.json is written, and the checkpoints written
// before it stay valid. (Here a directory sits where step 20's temporary file
// must go: root ignores permissions, so chmod cannot make it fail.)
TEST_F(Resume, AnAsyncWriteFailureEndsTheJob) {
  const auto data = small_dataset();
  const fs::path ck = dir_ / "ck";
  const fs::path blocked = ck / (ckpt_name(20) + ".tmp");
  fs::create_directories(blocked);
  std::ofstream(blocked / "in-the-way") << "x";
  auto r = hpcml_mpi(
      2, with(train_args(data, "failing", 1),
              {"checkpoint.every_steps=5", "checkpoint.keep=5", "checkpoint.dir=" + ck.string()}));
  EXPECT_EQ(count(r.out, "[rank-exit=1]"), 2) << r.out;
  EXPECT_EQ(count(r.out, "hpcml: error: "), 1) << r.out;
  EXPECT_NE(r.out.find(blocked.string()), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(run_dir("failing") / "summary.json"));
  EXPECT_EQ(
      checkpoint_attribute((ck / ckpt_name(15)).string(), "params_digest").rfind("fnv1a64:", 0),
      0u);
  EXPECT_FALSE(fs::exists(ck / ckpt_name(20)));
}

// Two `--resume auto` runs of one run.name started at once, before the run
// directory exists and again when it holds a checkpoint: each time one trains
// in runs/<name>, the other stops at once with one line naming the run
// directory and the holder (pid and host of the lock in <run dir>/.lock);
// neither writes anywhere else (no <name>-2).
TEST_F(Resume, TwoRunsOfOneNameAtOnceDoNotShareTheDirectory) {
  const auto data = small_dataset();
  // Ten times the long run, so that the one that trains is still training when
  // the other has been refused (on a quiet machine kLongEpochs takes ~2 s).
  const auto args = with(train_args(data, "twin", 10 * kLongEpochs), {"train.evaluate=false"});
  for (const char* phase : {"fresh", "resumed"}) {
    // Both start; once one has ended (the refused one), the other is stopped by SIGUSR1.
    const std::string a_out = path(std::string(phase) + ".a.out");
    const std::string b_out = path(std::string(phase) + ".b.out");
    const std::string script = mpi_command(2, resume(args), 300, "a.pid.") + " > " + quote(a_out) +
                               " 2>&1 & " + mpi_command(2, resume(args), 300, "b.pid.") + " > " +
                               quote(b_out) + " 2>&1 & wait -n; sleep 1; for f in " +
                               quote(path("a.pid.")) + "* " + quote(path("b.pid.")) +
                               "*; do kill -USR1 $(cat $f) 2>/dev/null; done; wait";
    auto r = run("timeout -k 10 300 bash -c " + quote(script));
    std::string a, b;
    {
      std::ifstream fa(a_out), fb(b_out);
      a.assign(std::istreambuf_iterator<char>(fa), {});
      b.assign(std::istreambuf_iterator<char>(fb), {});
    }
    const bool a_refused = count(a, "[rank-exit=1]") > 0;
    const std::string& refused = a_refused ? a : b;
    const std::string& trained = a_refused ? b : a;
    EXPECT_EQ(count(refused, "[rank-exit=1]"), 2) << phase << "\n" << a << "\n----\n" << b;
    EXPECT_EQ(count(refused, "hpcml: error: "), 1) << refused;
    EXPECT_NE(refused.find("run directory " + run_dir("twin").string() +
                           " is in use by another run (pid "),
              std::string::npos)
        << refused;
    EXPECT_NE(refused.find(" on host "), std::string::npos) << refused;
    // Stopped by the signal (3), or, on a very fast machine, finished (0).
    EXPECT_EQ(count(trained, "[rank-exit=3]") + count(trained, "[rank-exit=0]"), 2) << trained;
    EXPECT_NE(trained.find(std::string(phase) == "fresh" ? "no run directory" : "resumed from"),
              std::string::npos)
        << trained;
    EXPECT_EQ(read_json(run_dir("twin") / "summary.json")["restarts"],
              std::string(phase) == "fresh" ? 0 : 1);
    EXPECT_FALSE(fs::exists(dir_ / "runs" / "twin-2"));
    for (const char* f : {"a.pid.0", "a.pid.1", "b.pid.0", "b.pid.1"}) fs::remove(path(f));
  }
}

}  // namespace

// The other optimizers' state goes into the checkpoint and comes back: AdamW
// (two slots, sharded update: each slot's ranges gathered from their owners)
// and LAMB (layer-wise, full update on every rank) resume mid-epoch to the
// uninterrupted run's bits; a checkpoint of one optimizer is refused by another.
TEST_F(Resume, AdamwAndLambStateResumesBitExactly) {
  const auto data = small_dataset();
  for (const std::string opt : {"adamw", "lamb"}) {
    const std::vector<std::string> sets{"optimizer.name=\"" + opt + "\"", "optimizer.lr=0.003",
                                        "checkpoint.every_steps=5", "checkpoint.keep=1000"};
    auto r = hpcml_mpi(2, with(train_args(data, opt, 2), sets));
    ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
    EXPECT_NE(r.out.find(opt == "adamw" ? "update: sharded" : "lamb needs whole layers"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(checkpoint_attribute((ckpt_dir(opt) / ckpt_name(120)).string(), "optimizer"), opt);
    const std::string name = opt + "-at35";
    copy_run_up_to(opt, name, 35);
    r = hpcml_mpi(2, resume(with(train_args(data, name, 2), sets)));
    ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
    EXPECT_NE(r.out.find("at step 35"), std::string::npos) << r.out;
    EXPECT_EQ(digest(name), digest(opt)) << opt;
  }
  auto r = hpcml_mpi(2, resume(train_args(data, "adamw", 2)));
  EXPECT_EQ(count(r.out, "[rank-exit=1]"), 2) << r.out;
  EXPECT_NE(
      r.out.find("optimizer.name: the checkpoint holds the state of adamw, this run uses sgd"),
      std::string::npos)
      << r.out;
}

// A model from a layer list (convolution, pooling, dropout) checkpoints and
// resumes to the uninterrupted run's bits (the dropout masks follow the step),
// and a checkpoint of another layer list is refused naming model.layers.
TEST_F(Resume, LayerListModelResumesBitExactly) {
  const auto data = small_dataset();
  auto write_layers = [&](const std::string& file, int units) {
    std::ofstream f(path(file));
    f << "[model]\ninput_shape = [2, 4, 1]\n"
      << "[[model.layers]]\ntype = \"conv2d\"\nfilters = 6\nkernel = 3\npadding = 1\n"
      << "[[model.layers]]\ntype = \"relu\"\n"
      << "[[model.layers]]\ntype = \"maxpool2d\"\n"
      << "[[model.layers]]\ntype = \"flatten\"\n"
      << "[[model.layers]]\ntype = \"dense\"\nunits = " << units << "\n"
      << "[[model.layers]]\ntype = \"dropout\"\nrate = 0.25\n";
    return path(file);
  };
  const std::string layers = write_layers("layers.toml", 16);
  auto args = [&](const std::string& name, std::vector<std::string> sets,
                  const std::string& config = "") {
    auto a = train_args(data, name, 2);
    a[1] = config.empty() ? layers : config;  // the layer list instead of the default MLP
    a.erase(std::find(a.begin(), a.end(), "model.hidden=[128]") - 1,
            std::find(a.begin(), a.end(), "model.hidden=[128]") + 1);
    return with(a, sets);
  };
  auto r = hpcml_mpi(2, args("cnn", {"checkpoint.every_steps=5", "checkpoint.keep=1000"}));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  EXPECT_NE(r.out.find("model 2x4x1 -> conv2d 3x3x6 s1 p1 -> relu -> maxpool2d 2 -> flatten -> "
                       "dense 16 -> dropout 0.25 -> dense 3"),
            std::string::npos)
      << r.out;
  copy_run_up_to("cnn", "cnn-at45", 45);
  r = hpcml_mpi(2, resume(args("cnn-at45", {"checkpoint.every_steps=5"})));
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  EXPECT_NE(r.out.find("at step 45"), std::string::npos) << r.out;
  EXPECT_EQ(digest("cnn-at45"), digest("cnn"));
  r = hpcml_mpi(2, resume(args("cnn", {}, write_layers("layers8.toml", 8))));
  EXPECT_EQ(count(r.out, "[rank-exit=1]"), 2) << r.out;
  EXPECT_NE(r.out.find("model.layers: the checkpoint holds the model 2x4x1 -> conv2d"),
            std::string::npos)
      << r.out;
}

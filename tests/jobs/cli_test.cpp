// End-to-end tests of `hpcml shard` and `hpcml train` as a user runs them:
// real HDF5 shards, real mpiexec, one process per rank. Bad input must give a
// one-line error naming the file or key, a non-zero exit on every rank, and
// no hang (every command runs under `timeout`).
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "shell_util.hpp"

namespace fs = std::filesystem;

namespace {

using shell_test::args_string;
using shell_test::quote;
using shell_test::Result;
using shell_test::run;

// Runs hpcml on `ranks` ranks; each rank prints "[rank-exit=N]" after hpcml returns.
// A hang ends in SIGKILL 10 s after the SIGTERM (hpcml treats SIGTERM as a
// request to stop at the next step, which a hung rank never reaches).
Result hpcml_mpi(int ranks, const std::vector<std::string>& args, int timeout_s = 300) {
  std::string inner = quote(HPCML_EXE) + " \"$@\"; echo \"[rank-exit=$?]\"";
  return run("timeout -k 10 " + std::to_string(timeout_s) + " " + HPCML_MPIEXEC + " -n " +
             std::to_string(ranks) + " sh -c " + quote(inner) + " sh" + args_string(args));
}

Result hpcml(const std::vector<std::string>& args, int timeout_s = 120) {
  return run("timeout " + std::to_string(timeout_s) + " " + quote(HPCML_EXE) + args_string(args));
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

// Every rank exited with 1 and the error was printed exactly once, on one line.
void expect_clean_failure(const Result& r, int ranks, const std::string& expected) {
  EXPECT_TRUE(r.status != 124 && r.status != 137) << "command timed out (hang):\n" << r.out;
  EXPECT_EQ(count(r.out, "[rank-exit=1]"), ranks) << r.out;
  EXPECT_EQ(count(r.out, "hpcml: error: "), 1) << r.out;
  std::smatch m;
  std::regex line("hpcml: error: ([^\n]*)\n");
  ASSERT_TRUE(std::regex_search(r.out, m, line)) << r.out;
  EXPECT_NE(m[1].str().find(expected), std::string::npos)
      << "expected '" << expected << "' in: " << m[1].str();
  EXPECT_EQ(r.out.find("core dumped"), std::string::npos) << r.out;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(HPCML_TESTDATA) / "cli" / info->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  std::string fmnist() const { return std::string(HPCML_TESTDATA) + "/fashion-mnist"; }
  std::string config() const { return std::string(HPCML_CONFIGS) + "/fashion_mnist_mlp.toml"; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A small CSV dataset (label first) sharded into dir/small: learnable, 8 features.
  // Labels i % 3; with `one_label2`, labels i % 2 except one sample with 2.
  std::string small_dataset(int samples = 240, int shards = 3, bool one_label2 = false) {
    std::ofstream csv(path("small.csv"));
    for (int i = 0; i < samples; ++i) {
      int label = one_label2 ? (i == samples / 2 ? 2 : i % 2) : i % 3;
      csv << label;
      for (int f = 0; f < 8; ++f) csv << "," << (f == label ? 1.0 : 0.0) + 0.01 * ((i * 7 + f) % 5);
      csv << "\n";
    }
    csv.close();
    for (const char* split : {"train", "test"}) {
      auto r =
          hpcml({"shard", "csv", "--file", path("small.csv"), "--split", split, "--classes", "3",
                 "--no-header", "--out", path("small"), "--shards", std::to_string(shards)});
      EXPECT_EQ(r.status, 0) << r.out;
    }
    return path("small");
  }

  std::vector<std::string> small_train_args(const std::string& data) {
    return {"train", config(),           "--set", "data.path=" + data,
            "--set", "model.hidden=[8]", "--set", "train.batch_size=4",
            "--set", "train.epochs=1",   "--set", "run.dir=" + path("runs")};
  }

  fs::path dir_;
};

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

fs::path only_run_dir(const fs::path& runs) {
  fs::path found;
  int n = 0;
  for (const auto& e : fs::directory_iterator(runs)) {
    found = e.path();
    ++n;
  }
  EXPECT_EQ(n, 1);
  return found;
}

}  // namespace

// The stated threshold: 300 steps of global batch 128 (38400 samples, ~0.64
// epoch) reach >= 80% test accuracy on Fashion-MNIST with the default model.
TEST_F(Cli, TrainsFashionMnistOnTwoRanksAboveThreshold) {
  auto r = hpcml_mpi(
      2, {"train", config(), "--set", "data.path=" + fmnist(), "--set", "train.max_steps=300",
          "--set", "run.dir=" + path("runs"), "--set", "run.progress=always"});
  ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
  auto run_dir = only_run_dir(path("runs"));
  auto s = read_json(run_dir / "summary.json");
  EXPECT_EQ(s["ranks"], 2);
  EXPECT_EQ(s["steps"], 300);
  EXPECT_GE(s["final_test_acc"].get<double>(), 0.80) << s.dump();
  EXPECT_TRUE(fs::exists(run_dir / "config.toml"));
  // One metrics line per step plus one per (partial) epoch.
  std::ifstream m(run_dir / "metrics.jsonl");
  int steps = 0, epochs = 0;
  for (std::string line; std::getline(m, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == "step") ++steps;
    if (j["type"] == "epoch") ++epochs;
  }
  EXPECT_EQ(steps, 300);
  EXPECT_EQ(epochs, 1);
  EXPECT_NE(r.out.find("final test accuracy"), std::string::npos) << r.out;
  // The in-epoch progress line (forced on: stdout is a pipe here).
  EXPECT_NE(r.out.find("\r  epoch 1/10  step "), std::string::npos) << r.out;
}

// Same config, seed and rank count: every step's loss and the final metrics are
// bit-identical between two runs (losses are computed from the weights). A
// third run takes the other paths that must not change a bit: a reader thread
// instead of reads on the training thread, and the all-reduce plus full
// optimizer step instead of the sharded update.
TEST_F(Cli, RunsAreBitReproducible) {
  std::vector<std::string> losses[3];
  std::string finals[3];
  for (int k = 0; k < 3; ++k) {
    std::vector<std::string> args = {"train", config(),
                                     "--set", "data.path=" + fmnist(),
                                     "--set", "train.max_steps=40",
                                     "--set", "run.dir=" + path("runs"),
                                     "--set", "run.name=r" + std::to_string(k)};
    if (k == 2) {
      for (const char* s : {"data.prefetch=2", "parallel.sharded_update=false"}) {
        args.push_back("--set");
        args.push_back(s);
      }
    }
    auto r = hpcml_mpi(2, args);
    ASSERT_EQ(count(r.out, "[rank-exit=0]"), 2) << r.out;
    std::ifstream m(path("runs") + "/r" + std::to_string(k) + "/metrics.jsonl");
    for (std::string line; std::getline(m, line);) {
      auto j = nlohmann::json::parse(line);
      if (j["type"] == "step") losses[k].push_back(j["loss"].dump());
    }
    auto s = read_json(path("runs") + "/r" + std::to_string(k) + "/summary.json");
    finals[k] = s["final_train_loss"].dump() + " " + s["final_test_loss"].dump();
  }
  EXPECT_EQ(losses[0].size(), 40u);
  EXPECT_EQ(losses[0], losses[1]);
  EXPECT_EQ(finals[0], finals[1]);
  EXPECT_EQ(losses[0], losses[2]) << "reader thread + all-reduce path differs";
  EXPECT_EQ(finals[0], finals[2]);
}

TEST_F(Cli, SmallCsvDatasetTrains) {
  auto data = small_dataset();
  auto r = hpcml_mpi(3, small_train_args(data));
  EXPECT_EQ(count(r.out, "[rank-exit=0]"), 3) << r.out;
}

TEST_F(Cli, ConfigWithWrongType) {
  auto r = hpcml_mpi(2, {"train", config(), "--set", "train.epochs=\"three\""});
  expect_clean_failure(r, 2, "--set train.epochs: expected an integer, got a string");
  std::ofstream(path("bad.toml")) << "[train]\nbatch_size = 1.5\n";
  r = hpcml_mpi(2, {"train", path("bad.toml")});
  expect_clean_failure(r, 2, path("bad.toml") + ": key 'train.batch_size': expected an integer");
}

TEST_F(Cli, ConfigWithUnknownKey) {
  std::ofstream(path("typo.toml")) << "[train]\nepoch = 3\n";
  auto r = hpcml_mpi(2, {"train", path("typo.toml")});
  expect_clean_failure(r, 2, "key 'train.epoch': unknown key (did you mean 'train.epochs'?)");
}

TEST_F(Cli, ConfigWithImpossibleValues) {
  auto r = hpcml_mpi(2, {"train", config(), "--set", "train.batch_size=0"});
  expect_clean_failure(r, 2, "--set train.batch_size: expected an integer in [1, 16777216], got 0");
  r = hpcml_mpi(2, {"train", path("missing.toml")});
  expect_clean_failure(r, 2, path("missing.toml") + ": cannot open config file");
}

TEST_F(Cli, MoreRanksThanSamples) {
  auto data = small_dataset(3, 1);
  auto args = small_train_args(data);
  args.insert(args.end(), {"--set", "train.batch_size=1"});
  auto r = hpcml_mpi(4, args);
  expect_clean_failure(r, 4, "train.batch_size: 1 per rank x 4 ranks = 4 exceeds the 3 samples");
}

TEST_F(Cli, BenchAllreduceBadArgumentsFailOnceOnEveryRank) {
  expect_clean_failure(hpcml_mpi(2, {"bench", "allreduce", "--min-bytes", "1Q"}), 2,
                       "--min-bytes: unknown size suffix in '1Q'");
#if HPCML_NCCL_BUILT
  // The NCCL algorithm runs on device buffers: it is asked for with --transport nccl.
  expect_clean_failure(hpcml_mpi(2, {"bench", "allreduce", "--algo", "nccl"}), 2,
                       "--algo nccl: runs on device buffers: add --transport nccl");
#else
  expect_clean_failure(hpcml_mpi(2, {"bench", "allreduce", "--algo", "nccl"}), 2,
                       "'nccl' is not available in this build");
#endif
}

TEST_F(Cli, MissingDataPath) {
  auto r = hpcml_mpi(2, {"train", config(), "--set", "data.path=" + path("nowhere")});
  expect_clean_failure(r, 2, path("nowhere"));
}

TEST_F(Cli, TruncatedShard) {
  auto data = small_dataset();
  std::string shard;
  for (const auto& e : fs::directory_iterator(data)) {
    if (e.path().filename().string().rfind("train-00001", 0) == 0) shard = e.path().string();
  }
  ASSERT_FALSE(shard.empty());
  fs::resize_file(shard, fs::file_size(shard) / 2);
  auto r = hpcml_mpi(2, small_train_args(data));
  expect_clean_failure(r, 2, fs::path(shard).filename().string());
}

TEST_F(Cli, CorruptedShardFailsVerification) {
  auto data = small_dataset();
  std::string shard;
  for (const auto& e : fs::directory_iterator(data)) {
    if (e.path().filename().string().rfind("train-00002", 0) == 0) shard = e.path().string();
  }
  ASSERT_FALSE(shard.empty());
  // Flip bytes inside the raw feature data (contiguous layout: find its offset).
  hid_t file = H5Fopen(shard.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  hid_t ds = H5Dopen2(file, "features", H5P_DEFAULT);
  ASSERT_GE(ds, 0);
  const haddr_t offset = H5Dget_offset(ds);
  H5Dclose(ds);
  H5Fclose(file);
  ASSERT_NE(offset, HADDR_UNDEF);
  std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset) + 40);
  char bytes[4];
  f.read(bytes, sizeof bytes);
  bytes[1] = static_cast<char>(bytes[1] ^ 0x01);  // a small change of one float: still finite
  f.seekp(static_cast<std::streamoff>(offset) + 40);
  f.write(bytes, sizeof bytes);
  f.close();
  auto r = hpcml_mpi(2, small_train_args(data));
  expect_clean_failure(r, 2, fs::path(shard).filename().string());
}

TEST_F(Cli, LabelsOutOfRangeForTheManifest) {
  auto data = small_dataset();
  // Claim 2 classes while the shards hold labels 0..2.
  auto mpath = fs::path(data) / "manifest.json";
  auto j = read_json(mpath);
  j["classes"] = 2;
  std::ofstream(mpath) << j.dump(2);
  auto r = hpcml_mpi(2, small_train_args(data));
  expect_clean_failure(r, 2, "label");
}

// One bad label with verification off is found mid-training by one rank's
// reader while the other rank goes on into the next all-reduce: the failing
// rank's error aborts the job at once with its one-line message; it must not
// wait in a collective (a node-shared window's free) for the busy peer.
TEST_F(Cli, BadLabelFoundDuringTrainingAbortsTheJob) {
  auto data = small_dataset(240, 3, true);
  auto mpath = fs::path(data) / "manifest.json";
  auto j = read_json(mpath);
  j["classes"] = 2;
  std::ofstream(mpath) << j.dump(2);
  auto args = small_train_args(data);
  args.insert(args.end(), {"--set", "data.verify=false"});
  auto r = hpcml_mpi(2, args, 60);
  EXPECT_TRUE(r.status != 124 && r.status != 137) << "command timed out (hang):\n" << r.out;
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_EQ(count(r.out, "[rank-exit=0]"), 0) << r.out;
  EXPECT_NE(r.out.find("is outside [0, 2) (aborting the job)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("core dumped"), std::string::npos) << r.out;
}

TEST_F(Cli, NonFiniteFeaturesAreRejectedWhenSharding) {
  std::ofstream(path("nan.csv")) << "0,1.0,2.0\n1,nan,0.5\n";
  auto r = hpcml({"shard", "csv", "--file", path("nan.csv"), "--split", "train", "--classes", "2",
                  "--no-header", "--out", path("nan")});
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find(path("nan.csv")), std::string::npos) << r.out;
}

// Issue 10: hostile configs give one clear line on every rank, never defaults or a crash.
TEST_F(Cli, HostileConfigsAreOneLineErrors) {
  // A directory as the config used to train on built-in defaults and exit 0.
  fs::create_directories(path("confdir"));
  auto r = hpcml_mpi(2, {"train", path("confdir")});
  expect_clean_failure(r, 2, path("confdir") + ": is a directory, not a config file");
  // 10,000 nested arrays crashed toml11's recursive parser (SIGSEGV).
  std::ofstream(path("deep.toml"))
      << "[train]\nx = " << std::string(10000, '[') << std::string(10000, ']') << "\n";
  r = hpcml_mpi(2, {"train", path("deep.toml")});
  expect_clean_failure(r, 2,
                       path("deep.toml") + ":2: arrays or inline tables nested deeper than 64");
  r = hpcml_mpi(2, {"train", config(), "--set",
                    "train.x=" + std::string(10000, '{') + std::string(10000, '}')});
  expect_clean_failure(r, 2, "--set train.x: value has arrays or inline tables nested deeper");
  // 2^63 used to be clamped to 2^63 - 1 in silence.
  r = hpcml_mpi(2, {"train", config(), "--set", "train.seed=9223372036854775808"});
  expect_clean_failure(r, 2,
                       "--set train.seed: integer 9223372036854775808 does not fit in 64 bits");
}

// Issue 11: bf16/fp16/TF32 GEMMs need a device backend; a host backend refuses
// them at start with one line naming the key, on every rank.
TEST_F(Cli, LowPrecisionOnAHostBackendIsOneLineError) {
  auto r = hpcml_mpi(2, {"train", config(), "--set", "train.precision=bf16"});
  expect_clean_failure(r, 2, "train.precision: the omp backend computes in fp32 only");
  r = hpcml_mpi(2, {"train", config(), "--set", "train.precision=fp16", "--set",
                    "parallel.backend=reference"});
  expect_clean_failure(r, 2, "train.precision: the reference backend computes in fp32 only");
  r = hpcml_mpi(2, {"train", config(), "--set", "train.tf32=true"});
  expect_clean_failure(r, 2, "train.tf32: the omp backend computes in fp32 only");
}

// Issue 10: CSV header auto-detection says which row it took as the header and
// never drops a numeric first row; a huge field is echoed short.
TEST_F(Cli, CsvHeaderDetectionSaysWhichRowItTook) {
  auto shard = [&](const std::string& name) {
    return hpcml({"shard", "csv", "--file", path(name + ".csv"), "--split", "train", "--classes",
                  "2", "--shards", "1", "--out", path(name)});
  };
  std::ofstream(path("named.csv")) << "label,a,b\n0,1.0,2.0\n1,0.5,0.25\n";
  auto r = shard("named");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("hpcml: note: " + path("named.csv") +
                       ":1: first row taken as the header (a field is not a number): "
                       "'label,a,b'; pass --no-header if it is data"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(read_json(fs::path(path("named")) / "manifest.json")["splits"]["train"]["samples"], 2);
  // A numeric first row is data: three samples, and no note.
  std::ofstream(path("numeric.csv")) << "0,1.0,2.0\n1,0.5,0.25\n0,0.1,0.2\n";
  r = shard("numeric");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("taken as the header"), std::string::npos) << r.out;
  EXPECT_EQ(read_json(fs::path(path("numeric")) / "manifest.json")["splits"]["train"]["samples"],
            3);
  // A 2 MB field is echoed cut short on one line.
  std::ofstream(path("long.csv")) << "0,1.0\n1," << std::string(2000000, '9') << "z\n";
  r = shard("long");
  EXPECT_EQ(r.status, 1) << r.out.substr(0, 400);
  EXPECT_LT(r.out.size(), 1000u) << r.out.substr(0, 400);
  EXPECT_NE(r.out.find("… (2000001 bytes)' (sample 1) is not a number"), std::string::npos)
      << r.out.substr(0, 400);
}

#include "hpcml/core/run_dir.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "hpcml/core/error.hpp"

namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/hpcml-run-dir-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST(RunDir, CreatesParentAndSuffixesTakenNames) {
  TempDir t;
  const std::string parent = (t.path / "runs" / "deep").string();
  EXPECT_EQ(hpcml::create_unique_dir(parent, "a"), parent + "/a");
  EXPECT_EQ(hpcml::create_unique_dir(parent, "a"), parent + "/a-2");
  EXPECT_EQ(hpcml::create_unique_dir(parent, "a"), parent + "/a-3");
  EXPECT_EQ(hpcml::create_unique_dir(parent, "b"), parent + "/b");
  EXPECT_TRUE(fs::is_directory(parent + "/a-3"));
}

TEST(RunDir, ErrorsNameTheSettingAndPath) {
  TempDir t;
  const fs::path file = t.path / "plain-file";
  std::ofstream(file) << "x";
  try {
    hpcml::create_unique_dir((file / "sub").string(), "run", "study.dir");
    FAIL() << "no error";
  } catch (const hpcml::ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("study.dir"), std::string::npos) << msg;
    EXPECT_NE(msg.find("plain-file"), std::string::npos) << msg;
  }
  EXPECT_THROW(hpcml::create_unique_dir(t.path.string(), ""), hpcml::ConfigError);
}

TEST(RunDir, SanitizesNames) {
  EXPECT_EQ(hpcml::sanitize_file_name("my run/1:x.toml"), "my_run_1_x.toml");
  EXPECT_EQ(hpcml::sanitize_file_name("ok-name_2.0"), "ok-name_2.0");
}

TEST(RunDir, AtomicWriteReplacesWholeFileAndLeavesNoTemporary) {
  TempDir t;
  const fs::path p = t.path / "summary.json";
  hpcml::write_file_atomic(p.string(), "first\n");
  EXPECT_EQ(slurp(p), "first\n");
  hpcml::write_file_atomic(p.string(), "second, longer\n");
  EXPECT_EQ(slurp(p), "second, longer\n");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(t.path)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(RunDir, AtomicWriteSetsExecuteBits) {
  TempDir t;
  const fs::path p = t.path / "job.sbatch";
  hpcml::write_file_atomic(p.string(), "#!/bin/bash\n", true);
  EXPECT_NE(fs::status(p).permissions() & fs::perms::owner_exec, fs::perms::none);
  hpcml::write_file_atomic((t.path / "args").string(), "x\n");
  EXPECT_EQ(fs::status(t.path / "args").permissions() & fs::perms::owner_exec, fs::perms::none);
}

TEST(RunDir, AtomicWriteFailureNamesPathAndLeavesNothingBehind) {
  TempDir t;
  try {
    hpcml::write_file_atomic((t.path / "missing" / "x.json").string(), "x");
    FAIL() << "no error";
  } catch (const hpcml::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing/x.json"), std::string::npos) << e.what();
  }
  // The target is a directory: the rename fails, the directory stays, no temporary is left.
  fs::create_directory(t.path / "taken");
  std::ofstream(t.path / "taken" / "inside") << "keep";
  EXPECT_THROW(hpcml::write_file_atomic((t.path / "taken").string(), "x"), hpcml::Error);
  EXPECT_EQ(slurp(t.path / "taken" / "inside"), "keep");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(t.path)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

namespace {

// The run-directory lock: a second holder (another open file description, as
// another process would have) is refused with the directory and the holder
// named; the lock is free again once the first is released.
TEST(RunDir, LockIsExclusiveAndNamesTheHolder) {
  TempDir t;
  const std::string dir = t.path.string();
  hpcml::RunDirLock first(dir);
  EXPECT_TRUE(first.held());
  EXPECT_NE(slurp(t.path / ".lock").find("pid " + std::to_string(::getpid()) + " on host "),
            std::string::npos);
  try {
    hpcml::RunDirLock second(dir);
    FAIL() << "a second lock was granted";
  } catch (const hpcml::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("run directory " + dir + " is in use by another run (pid " +
                        std::to_string(::getpid()) + " on host "),
              std::string::npos)
        << what;
    EXPECT_NE(what.find(dir + "/.lock"), std::string::npos) << what;
  }
  hpcml::RunDirLock moved = std::move(first);
  EXPECT_FALSE(first.held());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_THROW(hpcml::RunDirLock{dir}, hpcml::Error);
  moved = hpcml::RunDirLock();  // released
  hpcml::RunDirLock again(dir);
  EXPECT_TRUE(again.held());
  EXPECT_THROW(hpcml::RunDirLock{(t.path / "missing").string()}, hpcml::Error);
}

TEST(RunDir, CreateDirIfMissingSaysWhetherItMadeIt) {
  TempDir t;
  const std::string dir = (t.path / "a" / "b").string();
  EXPECT_TRUE(hpcml::create_dir_if_missing(dir));
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_FALSE(hpcml::create_dir_if_missing(dir));  // there already
  std::ofstream(t.path / "file") << "x";
  EXPECT_THROW(hpcml::create_dir_if_missing((t.path / "file").string()), hpcml::ConfigError);
}

}  // namespace

// Helpers for the analysis tests that drive the hpcml executable.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace hpcml_test {

namespace fs = std::filesystem;

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = fs::temp_directory_path() / ("hpcml-" + tag + "-" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

/// The hpcml executable under test (CTest sets HPCML_EXE).
inline std::string hpcml_exe() {
  const char* e = std::getenv("HPCML_EXE");
  return e ? e : "";
}

struct RunResult {
  int code = -1;
  std::string output;  // stdout and stderr together
};

/// Runs a shell command line (arguments are test-controlled paths), capturing output.
inline RunResult run(const std::string& command) {
  RunResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) r.output += buf;
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// True when a text file of the report prints a non-finite number.
inline bool has_non_finite(const std::string& text) {
  static const std::regex bad(R"((^|[^a-zA-Z])(nan|inf|infinity)([^a-zA-Z]|$))", std::regex::icase);
  return std::regex_search(text, bad);
}

}  // namespace hpcml_test

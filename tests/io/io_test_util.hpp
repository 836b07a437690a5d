// Helpers shared by the io tests: unique temp dirs, synthetic data, error checks.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hpcml/core/error.hpp"
#include "hpcml/io/inputs.hpp"

namespace hpcml::io::test {

/// A fresh directory under /tmp, removed (with its contents) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "io") {
    static std::atomic<int> counter{0};
    path_ =
        std::filesystem::temp_directory_path() /
        ("hpcml-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// n samples of shape {a, b}; every value distinct and exactly representable,
/// so equality checks are exact and any row mix-up shows.
inline LabeledData synthetic(std::size_t n, std::size_t a = 3, std::size_t b = 2, int classes = 5) {
  LabeledData d;
  d.samples = n;
  d.feature_shape = {a, b};
  d.features = a * b;
  d.features_source = "synthetic-x";
  d.labels_source = "synthetic-y";
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < d.features; ++j)
      d.x.push_back(static_cast<float>(i) + static_cast<float>(j) / 64.0f);
    d.y.push_back(static_cast<std::int32_t>((i * 7) % static_cast<std::size_t>(classes)));
  }
  return d;
}

inline void write_bytes(const std::string& path, const void* data, std::size_t n) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

inline void write_text(const std::string& path, const std::string& text) {
  write_bytes(path, text.data(), text.size());
}

}  // namespace hpcml::io::test

/// Expects `stmt` to throw hpcml::DataError whose one-line message contains
/// every given substring (typically the file name and what is wrong).
#define EXPECT_DATA_ERROR(stmt, ...)                                           \
  do {                                                                         \
    try {                                                                      \
      stmt;                                                                    \
      ADD_FAILURE() << "expected DataError from: " #stmt;                      \
    } catch (const ::hpcml::DataError& err_) {                                 \
      const std::string msg_ = err_.what();                                    \
      EXPECT_EQ(msg_.find('\n'), std::string::npos) << "multi-line: " << msg_; \
      for (const std::string& part_ : std::vector<std::string>{__VA_ARGS__})   \
        EXPECT_NE(msg_.find(part_), std::string::npos)                         \
            << "message lacks '" << part_ << "': " << msg_;                    \
    }                                                                          \
  } while (0)

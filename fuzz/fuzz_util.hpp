// Shared helpers of the fuzz targets: the readers under test take paths, so the
// fuzzer's bytes go to files in a private directory under /dev/shm (memory,
// no disk I/O), created once per process and removed at exit.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include "hpcml/core/error.hpp"

namespace hpcml::fuzz {

/// The process's scratch directory (created on first use, removed at exit).
/// Held in a string that is never destroyed, so the exit handler can use it.
inline const std::string& scratch_dir() {
  static const std::string* dir = [] {
    // scripts/fuzz.sh points HPCML_FUZZ_SCRATCH at a directory it removes
    // afterwards: a crashing input ends the process without the exit handler.
    const char* env = std::getenv("HPCML_FUZZ_SCRATCH");
    const char* base = env && *env                           ? env
                       : std::filesystem::exists("/dev/shm") ? "/dev/shm"
                                                             : "/tmp";
    auto* d = new std::string(std::string(base) + "/hpcml-fuzz-XXXXXX");
    if (!::mkdtemp(d->data())) std::abort();
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*dir, ec);
    });
    return d;
  }();
  return *dir;
}

/// Writes `size` bytes to <scratch>/<name> (replacing it) and returns the path.
inline std::string write_file(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  if (std::fclose(f) != 0) std::abort();
  return path;
}

/// Splits the input in two: the first two bytes (little-endian) give the
/// length of the first part (clamped to what is there), the rest is the second.
struct TwoParts {
  const std::uint8_t* a;
  std::size_t a_size;
  const std::uint8_t* b;
  std::size_t b_size;
};
inline TwoParts split_two(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return {data, 0, data, 0};
  std::size_t n = static_cast<std::size_t>(data[0]) | (static_cast<std::size_t>(data[1]) << 8);
  data += 2;
  size -= 2;
  if (n > size) n = size;
  return {data, n, data + n, size - n};
}

/// The body of a two-file reader target: splits the input (split_two), writes
/// the parts to <scratch>/<name_a> and <scratch>/<name_b>, calls
/// read(path_a, path_b) and accepts hpcml::Error (a clear refusal) as an
/// outcome; anything else (a crash, another exception) is a finding.
template <class Read>
int read_two_files(const std::uint8_t* data, std::size_t size, const char* name_a,
                   const char* name_b, Read read) {
  const auto parts = split_two(data, size);
  const auto a = write_file(name_a, parts.a, parts.a_size);
  const auto b = write_file(name_b, parts.b, parts.b_size);
  try {
    read(a, b);
  } catch (const hpcml::Error&) {
  }
  return 0;
}

}  // namespace hpcml::fuzz

// Fuzz target: the .npy reader (io::read_npy, features + labels).
// Input layout: 2 bytes (little-endian) = length of the features file, then the
// features file, then the labels file (fuzz_util.hpp split_two).
#include <cstddef>
#include <cstdint>

#include "fuzz_util.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/io/inputs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parts = hpcml::fuzz::split_two(data, size);
  const auto x = hpcml::fuzz::write_file("x.npy", parts.a, parts.a_size);
  const auto y = hpcml::fuzz::write_file("y.npy", parts.b, parts.b_size);
  try {
    const auto d = hpcml::io::read_npy(x, y);
    hpcml::io::validate(d, 10);
  } catch (const hpcml::Error&) {
  }
  return 0;
}

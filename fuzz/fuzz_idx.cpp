// Fuzz target: the IDX reader (io::read_idx, images + labels, gzip or plain).
// Input layout: 2 bytes (little-endian) = length of the images file, then the
// images file, then the labels file (fuzz_util.hpp split_two).
#include <cstddef>
#include <cstdint>

#include "fuzz_util.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/io/inputs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parts = hpcml::fuzz::split_two(data, size);
  const auto images = hpcml::fuzz::write_file("images.idx", parts.a, parts.a_size);
  const auto labels = hpcml::fuzz::write_file("labels.idx", parts.b, parts.b_size);
  try {
    const auto d = hpcml::io::read_idx(images, labels);
    hpcml::io::validate(d, 10);
  } catch (const hpcml::Error&) {
  }
  return 0;
}

// Fuzz target: the IDX reader (io::read_idx, images + labels, gzip or plain).
// Input layout: 2 bytes (little-endian) = length of the images file, then the
// images file, then the labels file (fuzz_util.hpp split_two).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.hpp"
#include "hpcml/io/inputs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return hpcml::fuzz::read_two_files(data, size, "images.idx", "labels.idx",
                                     [](const std::string& images, const std::string& labels) {
                                       hpcml::io::validate(hpcml::io::read_idx(images, labels), 10);
                                     });
}

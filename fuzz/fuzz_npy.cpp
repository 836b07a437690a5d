// Fuzz target: the .npy reader (io::read_npy, features + labels).
// Input layout: 2 bytes (little-endian) = length of the features file, then the
// features file, then the labels file (fuzz_util.hpp split_two).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.hpp"
#include "hpcml/io/inputs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return hpcml::fuzz::read_two_files(data, size, "x.npy", "y.npy",
                                     [](const std::string& x, const std::string& y) {
                                       hpcml::io::validate(hpcml::io::read_npy(x, y), 10);
                                     });
}

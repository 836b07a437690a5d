// Fuzz target: the shard manifest parser (io::read_manifest) on arbitrary
// manifest.json bytes. A DataError (or any hpcml::Error) is the expected answer
// to bad input; anything else (crash, other exception, huge allocation) is a bug.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/io/format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hpcml::fuzz::write_file("manifest.json", data, size);
  try {
    (void)hpcml::io::read_manifest(hpcml::fuzz::scratch_dir());
  } catch (const hpcml::Error&) {
  }
  return 0;
}

// Fuzz target: the scaling-table CSV reader of `hpcml report --csv`
// (analysis::read_csv).
#include <cstddef>
#include <cstdint>

#include "fuzz_util.hpp"
#include "hpcml/analysis/inputs.hpp"
#include "hpcml/core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = hpcml::fuzz::write_file("table.csv", data, size);
  try {
    (void)hpcml::analysis::read_csv(path, hpcml::analysis::Mode::kStrong);
  } catch (const hpcml::Error&) {
  }
  return 0;
}

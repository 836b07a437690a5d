// Fuzz target: the CSV reader of `hpcml shard csv` (io::read_csv). The first
// byte picks the options (header auto/yes/no, label column -2..2), the rest is
// the file.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/io/inputs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  hpcml::io::CsvOptions options;
  using Header = hpcml::io::CsvOptions::Header;
  const Header headers[] = {Header::kAuto, Header::kYes, Header::kNo};
  options.header = headers[data[0] % 3];
  options.label_column = static_cast<int>((data[0] / 3) % 5) - 2;
  const auto path = hpcml::fuzz::write_file("data.csv", data + 1, size - 1);
  try {
    const auto d = hpcml::io::read_csv(path, options);
    hpcml::io::validate(d, 10);
  } catch (const hpcml::Error&) {
  }
  return 0;
}

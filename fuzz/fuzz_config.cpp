// Fuzz target: the TOML configuration layer (ConfigDoc::parse, in memory), then
// the typed training config read from it (read_train_config), as `hpcml train`
// does.
#include <cstddef>
#include <cstdint>
#include <string>

#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/train_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto doc = hpcml::ConfigDoc::parse(text, "fuzz.toml");
    (void)hpcml::read_train_config(doc);
  } catch (const hpcml::Error&) {
  }
  return 0;
}

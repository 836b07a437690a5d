// A program outside hpcml, built against the installed package (hpcml::core):
// reads a config from a string and lays out one epoch, and prints one line that
// tests/install/install_consumer.cmake checks.
#include <cstdio>
#include <set>

#include "hpcml/config.hpp"
#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/data.hpp"
#include "hpcml/core/error.hpp"

int main() {
  try {
    auto doc =
        hpcml::ConfigDoc::parse("[train]\nbatch_size = 32\nname = \"consumer\"\n", "consumer.toml");
    const auto batch = doc.get_int("train.batch_size", 1, 1);
    const auto name = doc.get_string("train.name", "");
    doc.check_unknown();

    // 1000 samples over 4 ranks of 32: 7 whole global batches of 128 per epoch.
    const auto steps = hpcml::steps_per_epoch(1000, 4, static_cast<std::size_t>(batch));
    const auto idx = hpcml::epoch_indices(1000, 42, 0, 1, 4, static_cast<std::size_t>(batch));
    const std::set<std::size_t> distinct(idx.begin(), idx.end());
    std::printf("hpcml %s consumer: batch_size=%lld name=%s steps=%zu indices=%zu distinct=%zu\n",
                HPCML_VERSION, static_cast<long long>(batch), name.c_str(), steps, idx.size(),
                distinct.size());
    return 0;
  } catch (const hpcml::Error& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}

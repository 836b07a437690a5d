// Test helper: shards one split from .npy files with the io library alone, so
// the h5py interop test does not depend on the whole hpcml executable.
// usage: io_shard_tool FEATURES.npy LABELS.npy OUT_DIR SPLIT CLASSES SHARDS
#include <cstdio>
#include <exception>
#include <string>

#include "hpcml/io/writer.hpp"

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s FEATURES.npy LABELS.npy OUT_DIR SPLIT CLASSES SHARDS\n",
                 argv[0]);
    return 2;
  }
  try {
    const hpcml::io::LabeledData data = hpcml::io::read_npy(argv[1], argv[2]);
    hpcml::io::ShardWriteOptions o;
    o.out_dir = argv[3];
    o.dataset = "interop";
    o.split = argv[4];
    o.classes = std::stoi(argv[5]);
    o.shards = std::stoul(argv[6]);
    o.progress = [](const std::string& line) { std::printf("%s\n", line.c_str()); };
    hpcml::io::write_split(data, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "io_shard_tool: %s\n", e.what());
    return 1;
  }
  return 0;
}

// `hpcml shard`: converts input data into the hpcml shard format (HDF5 shards
// + manifest.json, see docs/data-format.md) and verifies shard directories.
// Runs with or without mpiexec; under R ranks rank r writes shards r, r+R, ...
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/io/dataset.hpp"
#include "hpcml/io/format.hpp"
#include "hpcml/io/inputs.hpp"
#include "hpcml/io/writer.hpp"
#include "hpcml/mpi/agree.hpp"
#include "hpcml/mpi/check.hpp"

namespace hpcml::jobs {

namespace {

namespace fs = std::filesystem;

struct CommonOptions {
  std::string out;
  std::size_t shards = 4;
  std::string split;
  int classes = 0;
  std::string name;  // dataset name; defaults to the output directory's name
  float scale = 1.0f;
  std::string layout = "shards";  // or "single-file"
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::function<void(const std::string&)> printer(const comm::Communicator& mpi) {
  const int rank = mpi.rank(), size = mpi.size();
  return [rank, size](const std::string& line) {
    if (size > 1)
      std::printf("[rank %d] %s\n", rank, line.c_str());
    else
      std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
}

std::string default_name(const std::string& out) {
  fs::path p = fs::path(out).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  const std::string n = p.filename().string();
  return n.empty() || n == "." || n == ".." ? "dataset" : n;
}

// Reads the inputs on every rank (each rank needs the rows of its shards) and
// writes one split. Reading errors are agreed on so no rank is left waiting.
template <typename Load>
int convert(const comm::Communicator& mpi, const CommonOptions& o, const std::string& split,
            Load load, const std::string& dataset_name) {
  auto print = printer(mpi);
  const auto start = std::chrono::steady_clock::now();
  io::LabeledData data;
  std::exception_ptr error;
  try {
    data = load();
  } catch (...) {
    error = std::current_exception();
  }
  hpcml::mpi::agree(MPI_COMM_WORLD, error);
  if (mpi.rank() == 0)
    print("read " + split + ": " + std::to_string(data.samples) + " samples x " +
          std::to_string(data.features) + " features from " + data.features_source + " in " +
          std::to_string(seconds_since(start)).substr(0, 5) + " s");
  io::ShardWriteOptions w;
  w.out_dir = o.out;
  w.dataset = dataset_name;
  w.split = split;
  w.shards = o.shards;
  w.layout = o.layout == "single-file" ? io::Layout::kSingleFile : io::Layout::kShards;
  w.classes = o.classes;
  w.progress = print;
  io::write_split(data, w, MPI_COMM_WORLD);
  if (mpi.rank() == 0)
    print("done: " + split + " (" + std::to_string(data.samples) + " samples) in " +
          std::to_string(seconds_since(start)).substr(0, 5) + " s");
  return 0;
}

void add_common(CLI::App* cmd, CommonOptions& o, bool with_split) {
  cmd->add_option("--out", o.out, "Output directory (created if missing)")->required();
  cmd->add_option("--shards", o.shards, "Number of shard files per split")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--layout", o.layout,
                  "shards: --shards files per split, read per rank; single-file: one "
                  "<split>.h5 per split (written by rank 0), read with collective MPI-IO")
      ->check(one_of({"shards", "single-file"}))
      ->capture_default_str();
  if (with_split) {
    cmd->add_option("--split", o.split, "Split name, e.g. train or test")->required();
    cmd->add_option("--classes", o.classes, "Number of classes (labels in [0, K))")
        ->required()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--name", o.name, "Dataset name in the manifest (default: --out's name)");
    cmd->add_option("--scale", o.scale, "Multiply every feature by this factor")
        ->capture_default_str();
  }
}

std::vector<std::size_t> parse_shape(const std::string& text) {
  std::vector<std::size_t> shape;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    std::size_t pos = 0;
    unsigned long v = 0;
    try {
      v = std::stoul(part, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    if (pos != part.size() || part.empty() || v == 0)
      HPCML_THROW(ConfigError,
                  "--feature-shape '" + text + "': expected positive integers separated by commas");
    shape.push_back(v);
  }
  return shape;
}

int verify(const std::string& dir) {
  comm::MpiEnvironment env;
  const auto mpi = comm::Communicator::world();
  io::Manifest manifest;
  std::exception_ptr error;
  try {
    manifest = io::read_manifest(dir);
  } catch (...) {
    error = std::current_exception();
  }
  hpcml::mpi::agree(MPI_COMM_WORLD, error);
  std::vector<std::pair<std::string, std::size_t>> tasks;
  for (const auto& [split, info] : manifest.splits)
    for (std::size_t i = 0; i < info.shards.size(); ++i) tasks.emplace_back(split, i);

  // Rank r checks tasks r, r+R, ...; rank 0 prints the lines in task order.
  const int rank = mpi.rank(), size = mpi.size();
  std::string mine;
  int failures = 0;
  for (std::size_t t = static_cast<std::size_t>(rank); t < tasks.size();
       t += static_cast<std::size_t>(size)) {
    const io::ShardCheck c = io::check_shard_file(dir, manifest, tasks[t].first, tasks[t].second);
    char buf[64];
    std::snprintf(buf, sizeof buf, ": %zu samples, %.2f s", c.samples, c.seconds);
    std::string line = c.ok ? "ok    " + c.file + buf : "FAIL  " + c.problem;
    // One line per shard, whatever the message holds (the lines are gathered
    // as "<task>\t<line>\n" records below).
    for (char& ch : line)
      if (ch == '\n' || ch == '\r') ch = ' ';
    failures += c.ok ? 0 : 1;
    mine += std::to_string(t) + '\t' + line + '\n';
  }
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(static_cast<std::size_t>(size)), displs(static_cast<std::size_t>(size));
  HPCML_CHECK_MPI(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, MPI_COMM_WORLD));
  std::string all;
  if (rank == 0) {
    int total = 0;
    for (int r = 0; r < size; ++r) displs[r] = total, total += lens[r];
    all.resize(static_cast<std::size_t>(total));
  }
  HPCML_CHECK_MPI(MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(),
                              MPI_CHAR, 0, MPI_COMM_WORLD));
  int total_failures = 0;
  HPCML_CHECK_MPI(MPI_Allreduce(&failures, &total_failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
  if (rank == 0) {
    std::vector<std::string> lines(tasks.size());
    std::stringstream ss(all);
    std::string line;
    while (std::getline(ss, line)) {
      const auto tab = line.find('\t');
      lines[std::stoul(line.substr(0, tab))] = line.substr(tab + 1);
    }
    for (const auto& l : lines) std::printf("%s\n", l.c_str());
    std::printf("%s: %zu shards checked, %d failed\n", dir.c_str(), tasks.size(), total_failures);
    std::fflush(stdout);
  }
  return total_failures == 0 ? 0 : 1;
}

}  // namespace

void add_shard(CLI::App& app, Action& action) {
  auto* shard = app.add_subcommand("shard", "Convert data into HDF5 shards, or verify shards");
  shard->require_subcommand(1);

  // The option storage must outlive parsing: the callbacks run after parse().
  auto common = std::make_shared<CommonOptions>();

  auto* fm = shard->add_subcommand("fashion-mnist", "Shard Fashion-MNIST (train and test splits)");
  auto source = std::make_shared<std::string>("/usr/share/datasets/fashion-mnist");
  add_common(fm, *common, false);
  fm->add_option("--source", *source, "Directory with the four *-ubyte.gz IDX files")
      ->capture_default_str();
  fm->callback([&action, common, source] {
    action = [common, source]() -> int {
      comm::MpiEnvironment env;
      const auto mpi = comm::Communicator::world();
      const fs::path dir(*source);
      CommonOptions o = *common;
      o.classes = 10;
      for (const auto& [split, prefix] :
           {std::pair<std::string, std::string>{"train", "train"}, {"test", "t10k"}}) {
        const std::string images = (dir / (prefix + "-images-idx3-ubyte.gz")).string();
        const std::string labels = (dir / (prefix + "-labels-idx1-ubyte.gz")).string();
        convert(
            mpi, o, split, [&] { return io::read_idx(images, labels); }, "fashion-mnist");
      }
      return 0;
    };
  });

  auto* npy = shard->add_subcommand("npy", "Shard one split from .npy features and labels");
  auto npy_x = std::make_shared<std::string>(), npy_y = std::make_shared<std::string>();
  add_common(npy, *common, true);
  npy->add_option("--features", *npy_x, "Features .npy, shape (n, ...)")->required();
  npy->add_option("--labels", *npy_y, "Labels .npy, integer, shape (n,)")->required();
  npy->callback([&action, common, npy_x, npy_y] {
    action = [common, npy_x, npy_y]() -> int {
      comm::MpiEnvironment env;
      const auto mpi = comm::Communicator::world();
      const CommonOptions& o = *common;
      return convert(
          mpi, o, o.split, [&] { return io::read_npy(*npy_x, *npy_y, o.scale); },
          o.name.empty() ? default_name(o.out) : o.name);
    };
  });

  auto* csv = shard->add_subcommand("csv", "Shard one split from a CSV file");
  auto csv_file = std::make_shared<std::string>();
  auto csv_opts = std::make_shared<io::CsvOptions>();
  add_common(csv, *common, true);
  csv->add_option("--file", *csv_file, "CSV file, one sample per line")->required();
  csv->add_option("--label-column", csv_opts->label_column,
                  "Column of the integer label (negative counts from the end)")
      ->capture_default_str();
  auto csv_flags = std::make_shared<std::pair<bool, bool>>(false, false);
  auto* header = csv->add_flag("--header", csv_flags->first,
                               "The first line is a header (default: auto-detect)");
  auto* no_header = csv->add_flag("--no-header", csv_flags->second, "The first line is data");
  header->excludes(no_header);
  csv->callback([&action, common, csv_file, csv_opts, csv_flags] {
    csv_opts->header = csv_flags->first    ? io::CsvOptions::Header::kYes
                       : csv_flags->second ? io::CsvOptions::Header::kNo
                                           : io::CsvOptions::Header::kAuto;
    action = [common, csv_file, csv_opts]() -> int {
      const CommonOptions& o = *common;
      io::CsvOptions c = *csv_opts;
      c.scale = o.scale;
      comm::MpiEnvironment env;
      const auto mpi = comm::Communicator::world();
      return convert(
          mpi, o, o.split, [&] { return io::read_csv(*csv_file, c); },
          o.name.empty() ? default_name(o.out) : o.name);
    };
  });

  struct RawArgs {
    std::string features, labels, shape, label_dtype = "uint8";
    std::size_t num_features = 0;
  };
  auto raw_args = std::make_shared<RawArgs>();
  auto* raw = shard->add_subcommand("raw", "Shard one split from raw little-endian binaries");
  add_common(raw, *common, true);
  raw->add_option("--features", raw_args->features, "float32 features, row-major")->required();
  raw->add_option("--labels", raw_args->labels, "labels, one per sample")->required();
  raw->add_option("--num-features", raw_args->num_features, "Features per sample")
      ->required()
      ->check(CLI::PositiveNumber);
  raw->add_option("--feature-shape", raw_args->shape, "Shape of one sample, e.g. 28,28");
  raw->add_option("--label-dtype", raw_args->label_dtype, "uint8 or int32")
      ->check(CLI::IsMember({"uint8", "int32"}))
      ->capture_default_str();
  raw->callback([&action, common, raw_args] {
    action = [common, raw_args]() -> int {
      const CommonOptions& o = *common;
      const RawArgs& a = *raw_args;
      const auto shape = a.shape.empty() ? std::vector<std::size_t>{} : parse_shape(a.shape);
      const auto type =
          a.label_dtype == "int32" ? io::RawLabelType::kInt32 : io::RawLabelType::kUint8;
      comm::MpiEnvironment env;
      const auto mpi = comm::Communicator::world();
      return convert(
          mpi, o, o.split,
          [&] { return io::read_raw(a.features, a.labels, a.num_features, type, shape, o.scale); },
          o.name.empty() ? default_name(o.out) : o.name);
    };
  });

  auto* ver = shard->add_subcommand("verify", "Check every shard of every split of DIR");
  auto verify_dir = std::make_shared<std::string>();
  ver->add_option("dir", *verify_dir, "Shard directory (holds manifest.json)")->required();
  ver->callback(
      [&action, verify_dir] { action = [verify_dir]() -> int { return verify(*verify_dir); }; });
}

}  // namespace hpcml::jobs

// `hpcml bench io`: reads one split several ways in one run and prints MB/s
// side by side (nccl-tests style), cold (page cache dropped) and warm:
//   plain         each rank read()s a contiguous 1/R of the single file's bytes
//                 sequentially into a buffer (what `cat` does: the reference);
//   shards-mmap   each rank reads its training batches (epoch 0's random
//                 permutation) from the sharded layout, rows memcpy'd from the
//                 shards' mapped data (ReadMethod::kAuto: the trainer's default
//                 path, read on the caller's thread);
//   shards-pread  the same batches, one pread per row run (ReadMethod::kPread:
//                 the default path before the mapping);
//   single-coll   the same batches from the single-file layout, one collective
//                 MPI_File_read_at_all per group of batches over a file view of
//                 the row runs (ReadMethod::kAuto, what training uses);
//   single-h5     the same, through HDF5: a hyperslab union and a collective
//                 H5Dread (H5FD_MPIO_COLLECTIVE; ReadMethod::kHyperslab).
// With --run, also the exposed I/O of a training run: the time per step the
// trainer waited on its reader (summary.json's io_s_per_step) against the step.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/data.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/io/dataset.hpp"
#include "hpcml/io/format.hpp"
#include "hpcml/mpi/check.hpp"

namespace hpcml::jobs {

namespace {

namespace fs = std::filesystem;

struct IoArgs {
  std::string shards;  // directory of the sharded layout
  std::string single;  // directory of the single-file layout of the same data
  std::string split = "train";
  std::size_t batch = 64;
  std::size_t batches = 0;  // per rank; 0 = the whole of epoch 0
  int repeats = 3;
  std::uint64_t seed = 42;
  std::string run;  // optional run directory (or its summary.json)
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Every file of a split in a dataset directory.
std::vector<std::string> split_files(const std::string& dir, const std::string& split) {
  const io::Manifest m = io::read_manifest(dir);
  auto it = m.splits.find(split);
  if (it == m.splits.end())
    HPCML_THROW(DataError, dir + "/manifest.json: has no split '" + printable(split) + "'");
  std::vector<std::string> files;
  for (const auto& sh : it->second.shards) files.push_back((fs::path(dir) / sh.file).string());
  return files;
}

// Asks the kernel to drop the files' cached pages. Returns false if a call failed.
bool drop_cache(const std::vector<std::string>& files) {
  bool ok = true;
  for (const auto& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0) {
      ok = false;
      continue;
    }
    ok = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0 && ok;
    ::close(fd);
  }
  return ok;
}

// Fraction of the files' pages in the page cache (mincore), or -1 if unknown.
double resident_fraction(const std::vector<std::string>& files) {
  const long page = ::sysconf(_SC_PAGESIZE);
  std::size_t pages = 0, resident = 0;
  for (const auto& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0) return -1;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_size == 0) {
      ::close(fd);
      continue;
    }
    const auto size = static_cast<std::size_t>(st.st_size);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (map == MAP_FAILED) return -1;
    std::vector<unsigned char> vec((size + static_cast<std::size_t>(page) - 1) /
                                   static_cast<std::size_t>(page));
    const bool ok = ::mincore(map, size, vec.data()) == 0;
    ::munmap(map, size);
    if (!ok) return -1;
    pages += vec.size();
    for (unsigned char v : vec) resident += v & 1;
  }
  return pages ? static_cast<double>(resident) / static_cast<double>(pages) : 0.0;
}

// Bytes [begin, end) of `path` read sequentially in 4 MiB read() calls.
std::size_t plain_read(const std::string& path, std::size_t begin, std::size_t end,
                       std::vector<char>& buf) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) HPCML_THROW(DataError, path + ": cannot open: " + std::strerror(errno));
  std::size_t done = 0;
  while (begin + done < end) {
    const std::size_t want = std::min(buf.size(), end - begin - done);
    const ssize_t got = ::pread(fd, buf.data(), want, static_cast<off_t>(begin + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      ::close(fd);
      HPCML_THROW(DataError, path + ": read failed at byte " + std::to_string(begin + done));
    }
    done += static_cast<std::size_t>(got);
  }
  ::close(fd);
  return done;
}

struct Result {
  std::string method, state;
  double bytes = 0;  // summed over ranks
  double seconds = 0;
  double mbps() const { return seconds > 0 ? bytes / seconds / 1e6 : 0; }
};

int run_io(const IoArgs& a) {
  comm::MpiEnvironment env;
  auto world = comm::Communicator::world();
  const int rank = world.rank(), size = world.size();
  const MPI_Comm comm = world.get();

  std::unique_ptr<io::ShardDataset> shards, single;
  std::vector<std::string> files;  // every file of both layouts (for the cache drops)
  std::string single_file;
  comm::agree(world, [&] {
    if (a.shards.empty() || a.single.empty())
      HPCML_THROW(ConfigError,
                  "bench io needs --shards DIR and --single DIR (the same data in "
                  "both layouts, see `hpcml shard --layout`)");
    files = split_files(a.shards, a.split);
    const auto sf = split_files(a.single, a.split);
    if (io::read_manifest(a.single).splits.at(a.split).layout != io::Layout::kSingleFile)
      HPCML_THROW(DataError, a.single + "/manifest.json: split '" + printable(a.split) +
                                 "' is not in the single-file layout");
    single_file = sf.at(0);
    files.push_back(single_file);
  });
  // (Re)opened before every cold pass: pages mapped by a reader of the shards
  // stay in the page cache whatever posix_fadvise asks.
  auto open_shards = [&] {
    shards.reset();
    comm::agree(world, [&] {
      shards = io::open_dataset(a.shards, a.split);
      shards->set_prefetch_depth(0);
    });
  };
  open_shards();
  single = io::open_dataset(a.single, a.split, comm);
  comm::agree(world, [&] {
    if (shards->samples() != single->samples() || shards->features() != single->features())
      HPCML_THROW(DataError, a.shards + " and " + a.single + ": split '" + printable(a.split) +
                                 "' differs (" + std::to_string(shards->samples()) + " x " +
                                 std::to_string(shards->features()) + " vs " +
                                 std::to_string(single->samples()) + " x " +
                                 std::to_string(single->features()) + ")");
    if (a.batch * static_cast<std::size_t>(size) > shards->samples())
      HPCML_THROW(ConfigError, "--batch " + std::to_string(a.batch) + " x " + std::to_string(size) +
                                   " ranks is more than the " + std::to_string(shards->samples()) +
                                   " samples");
  });

  const std::size_t n = shards->samples(), f = shards->features();
  auto indices = epoch_indices(n, a.seed, 0, rank, size, a.batch);
  if (a.batches > 0 && a.batches * a.batch < indices.size()) indices.resize(a.batches * a.batch);
  const double row_bytes = static_cast<double>(4 * f + 4);
  // The plain read covers as many bytes as the batches hold, from a contiguous
  // block of the file (rank r: the r-th block).
  const std::size_t file_size = fs::file_size(single_file);
  const std::size_t span =
      std::min(file_size / static_cast<std::size_t>(size),
               static_cast<std::size_t>(static_cast<double>(indices.size()) * row_bytes));
  const std::size_t begin = span * static_cast<std::size_t>(rank), end = begin + span;
  std::vector<char> buf(std::size_t{4} << 20);

  // One timed pass of a method on every rank: bytes summed, the slowest rank's time.
  auto pass = [&](const std::string& method) {
    HPCML_CHECK_MPI(MPI_Barrier(comm));
    const double t0 = now_s();
    double bytes = 0;
    if (method == "plain") {
      bytes = static_cast<double>(plain_read(single_file, begin, end, buf));
    } else {
      const bool sharded = method.rfind("shards-", 0) == 0;
      io::ShardDataset& ds = sharded ? *shards : *single;
      ds.set_read_method(method == "single-h5"      ? io::ReadMethod::kHyperslab
                         : method == "shards-pread" ? io::ReadMethod::kPread
                                                    : io::ReadMethod::kAuto);
      auto reader = ds.read(indices, a.batch);
      Batch b;
      while (reader->next(b)) bytes += static_cast<double>(b.rows) * row_bytes;
    }
    double t = now_s() - t0;
    HPCML_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, comm));
    HPCML_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &bytes, 1, MPI_DOUBLE, MPI_SUM, comm));
    return Result{method, "", bytes, t};
  };

  const std::vector<std::string> methods = {"plain", "shards-mmap", "shards-pread", "single-coll",
                                            "single-h5"};
  std::vector<Result> results;
  // Cold: drop the cache of every file before each method (every rank asks for
  // its node; the same files, so asking twice is harmless).
  bool dropped = true;
  double resident_after_drop = 0;
  for (const auto& m : methods) {
    shards.reset();
    int ok = drop_cache(files) ? 1 : 0;
    HPCML_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, comm));
    dropped = dropped && ok == 1;
    open_shards();  // reads the shards' metadata and labels (not timed)
    HPCML_CHECK_MPI(MPI_Barrier(comm));
    if (rank == 0) resident_after_drop = std::max(resident_after_drop, resident_fraction(files));
    Result r = pass(m);
    r.state = "cold";
    results.push_back(r);
  }
  // Warm: every method once to fill the cache, then the median of --repeats passes.
  for (const auto& m : methods) pass(m);
  for (const auto& m : methods) {
    std::vector<Result> rs;
    for (int i = 0; i < a.repeats; ++i) rs.push_back(pass(m));
    std::sort(rs.begin(), rs.end(),
              [](const Result& x, const Result& y) { return x.seconds < y.seconds; });
    Result r = rs[rs.size() / 2];
    r.state = "warm";
    results.push_back(r);
  }

  if (rank == 0) {
    std::printf(
        "# hpcml %s bench io: split '%s', %zu x %zu float32 (%.1f MB), %d rank(s), "
        "batch %zu/rank, %zu batches/rank, warm = median of %d\n",
        HPCML_VERSION, a.split.c_str(), n, f, static_cast<double>(n) * row_bytes / 1e6, size,
        a.batch, indices.size() / a.batch, a.repeats);
    std::printf("#   shards: %s (%zu files)\n#   single: %s\n", a.shards.c_str(), files.size() - 1,
                single_file.c_str());
    std::printf("# cold: posix_fadvise(DONTNEED) on every file before each method: %s",
                dropped ? "accepted" : "FAILED (cold figures are warm)");
    if (resident_after_drop >= 0)
      std::printf("; at most %.1f%% of their pages still cached after the drop%s",
                  100 * resident_after_drop,
                  resident_after_drop > 0.05 ? " (the drop did NOT fully work)" : "");
    std::printf("\n#\n# %-12s %5s %14s %10s %10s %9s\n", "method", "cache", "bytes", "time_s",
                "MB/s", "vs_plain");
    for (const auto& r : results) {
      double plain = 0;
      for (const auto& p : results)
        if (p.method == "plain" && p.state == r.state) plain = p.mbps();
      std::printf("  %-12s %5s %14.0f %10.4f %10.1f %8.2fx\n", r.method.c_str(), r.state.c_str(),
                  r.bytes, r.seconds, r.mbps(), plain > 0 ? r.mbps() / plain : 0.0);
    }
    std::printf("# target: warm reads >= 0.80x plain\n");
    for (const auto& r : results)
      if (r.state == "warm" && r.method != "plain") {
        double plain = 0;
        for (const auto& p : results)
          if (p.method == "plain" && p.state == "warm") plain = p.mbps();
        std::printf("#   %-12s warm %.2fx: %s\n", r.method.c_str(),
                    plain > 0 ? r.mbps() / plain : 0.0,
                    plain > 0 && r.mbps() / plain >= 0.8 ? "met" : "NOT met");
      }
    std::fflush(stdout);
  }

  if (!a.run.empty()) {
    comm::agree(world, [&] {
      if (rank != 0) return;
      const std::string path =
          fs::is_directory(a.run) ? (fs::path(a.run) / "summary.json").string() : a.run;
      std::ifstream in(path);
      if (!in) HPCML_THROW(DataError, path + ": cannot open");
      nlohmann::json s;
      try {
        s = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception&) {
        HPCML_THROW(DataError, path + ": not valid JSON");
      }
      double step = 0;
      for (const char* k :
           {"compute_s_per_step", "comm_s_per_step", "io_s_per_step", "idle_s_per_step"}) {
        if (!s.contains(k) || !s[k].is_number())
          HPCML_THROW(DataError, path + ": field '" + k + "' is missing or not a number");
        step += s[k].get<double>();
      }
      const double io = s["io_s_per_step"].get<double>();
      std::printf(
          "# exposed I/O of %s: %.3f ms waited on the reader per step of %.3f ms = "
          "%.2f%% (target < 5%%: %s)\n",
          path.c_str(), 1e3 * io, 1e3 * step, step > 0 ? 100 * io / step : 0.0,
          step > 0 && io / step < 0.05 ? "met" : "NOT met");
      std::fflush(stdout);
    });
  }
  single.reset();  // collective close, on every rank together
  return 0;
}

}  // namespace

void add_bench_io(CLI::App& bench, Action& action) {
  auto* cmd = bench.add_subcommand(
      "io", "Read a split per rank from shards, collectively from one file, and plainly (MB/s)");
  auto a = std::make_shared<IoArgs>();
  cmd->add_option("--shards", a->shards, "Dataset directory of the sharded layout")->required();
  cmd->add_option("--single", a->single,
                  "Dataset directory of the same data in the single-file layout")
      ->required();
  cmd->add_option("--split", a->split, "Split to read")->capture_default_str();
  cmd->add_option("--batch", a->batch, "Rows per batch per rank")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--batches", a->batches, "Batches per rank (default 0: all of epoch 0's batches)")
      ->capture_default_str();
  cmd->add_option("--repeats", a->repeats, "Warm passes per method (the median is printed)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "Seed of the batch permutation")->capture_default_str();
  cmd->add_option("--run", a->run,
                  "A training run directory (or its summary.json): also print its exposed I/O");
  cmd->callback([&action, a] { action = [a] { return run_io(*a); }; });
}

}  // namespace hpcml::jobs

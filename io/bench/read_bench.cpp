// Rough timing of random mini-batch reads from a shard directory, side by side
// with gathering the same rows from memory (the floor any reader can reach).
// usage: io_read_bench DIR [SPLIT=train] [BATCH=128] [BATCHES=2000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>

#include "hpcml/io/dataset.hpp"

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [SPLIT] [BATCH] [BATCHES]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1], split = argc > 2 ? argv[2] : "train";
  const std::size_t batch = argc > 3 ? std::stoul(argv[3]) : 128;
  const std::size_t batches = argc > 4 ? std::stoul(argv[4]) : 2000;
  try {
    auto ds = hpcml::io::open_dataset(dir, split);
    const std::size_t n = ds->samples(), f = ds->features();
    std::vector<std::size_t> idx(batch * batches);
    std::mt19937_64 rng(1);
    for (std::size_t i = 0; i < idx.size(); i += n) {
      std::vector<std::size_t> perm(n);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng);
      std::copy_n(perm.begin(), std::min(n, idx.size() - i), idx.begin() + i);
    }
    std::printf("%s, %zu random batches of %zu rows (%zu bytes/row)\n", ds->describe().c_str(),
                batches, batch, f * 4);

    // Warm the page cache and get the in-memory copy.
    double t = now();
    const hpcml::Batch all = ds->read_all();
    std::printf("read_all: %.3f s\n", now() - t);

    hpcml::Batch b;
    b.x.resize(batch * f);
    b.y.resize(batch);
    t = now();
    for (std::size_t s = 0; s < batches; ++s)
      for (std::size_t r = 0; r < batch; ++r) {
        const std::size_t g = idx[s * batch + r];
        std::memcpy(b.x.data() + r * f, all.x.data() + g * f, f * 4);
        b.y[r] = all.y[g];
      }
    const double mem = (now() - t) / static_cast<double>(batches);

    auto sync_read = [&](hpcml::io::ReadMethod method) {
      ds->set_read_method(method);
      const double t0 = now();
      for (std::size_t s = 0; s < batches; ++s)
        ds->read_rows(std::span(idx).subspan(s * batch, batch), b);
      return (now() - t0) / static_cast<double>(batches);
    };
    const double hyper = sync_read(hpcml::io::ReadMethod::kHyperslab);
    const double pread = sync_read(hpcml::io::ReadMethod::kPread);
    const double sync = sync_read(hpcml::io::ReadMethod::kAuto);

    t = now();
    auto reader = ds->read(idx, batch);
    std::size_t got = 0;
    while (reader->next(b)) ++got;
    const double pre = (now() - t) / static_cast<double>(got);

    std::printf(
        "per batch: memory gather %.1f us | read_rows hyperslab %.1f us (%.1fx memory) | "
        "read_rows pread %.1f us (%.1fx memory) | read_rows auto/mmap %.1f us (%.1fx memory) | "
        "prefetch reader (auto), consumer doing nothing %.1f us (%.1fx memory)\n",
        mem * 1e6, hyper * 1e6, hyper / mem, pread * 1e6, pread / mem, sync * 1e6, sync / mem,
        pre * 1e6, pre / mem);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "io_read_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

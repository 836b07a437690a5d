// GradientReducer: fusion does not change results, codecs stay within their
// bounds, results are bit-identical on all ranks, and the statistics add up.
// The "trainer" here is a small driver that announces gradients from the last
// buffer to the first, as backprop does.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hpcml/comm/reducer.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"

using namespace hpcml::comm;

namespace {

struct Grads {
  std::vector<std::vector<float>> data;
  std::vector<std::span<float>> spans() {
    std::vector<std::span<float>> s;
    for (auto& d : data) s.emplace_back(d);
    return s;
  }
};

// Layer-like sizes: weights and biases of a small MLP plus odd ones.
Grads make_grads(int rank, unsigned step) {
  const std::size_t sizes[] = {784 * 64, 64, 64 * 33, 33, 1, 33 * 10, 10, 7919};
  Grads g;
  std::mt19937 gen(1000u * step + static_cast<unsigned>(rank));
  std::normal_distribution<float> d(0.0f, 0.1f);
  for (std::size_t n : sizes) {
    g.data.emplace_back(n);
    for (auto& x : g.data.back()) x = d(gen);
  }
  return g;
}

Communicator dup_world() {
  MPI_Comm c;
  MPI_Comm_dup(MPI_COMM_WORLD, &c);
  return Communicator::adopt(c);
}

void reduce_step(GradientReducer& red, Grads& g, bool shuffled_ready) {
  auto spans = g.spans();
  red.begin_gradients(spans);
  std::vector<std::size_t> order;
  for (std::size_t i = spans.size(); i-- > 0;) order.push_back(i);
  if (shuffled_ready) {
    // Ranks announce in different orders: buckets must still go out in order.
    std::mt19937 gen(static_cast<unsigned>(red.rank()) * 7u + 1u);
    std::shuffle(order.begin(), order.end(), gen);
  }
  for (std::size_t i : order) red.gradient_ready(i);
  red.finish_gradients();
}

bool same_bits(const Grads& a, const Grads& b) {
  for (std::size_t k = 0; k < a.data.size(); ++k)
    if (std::memcmp(a.data[k].data(), b.data[k].data(), a.data[k].size() * sizeof(float)) != 0)
      return false;
  return true;
}

std::size_t total_size(const Grads& g) {
  std::size_t total = 0;
  for (const auto& d : g.data) total += d.size();
  return total;
}

// Copies the buffers one after another into `storage` (a trainer's flat
// gradient buffer) and returns their spans there.
std::vector<std::span<float>> lay_out(const Grads& g, std::span<float> storage) {
  std::vector<std::span<float>> spans;
  std::size_t off = 0;
  for (const auto& d : g.data) {
    std::copy(d.begin(), d.end(), storage.begin() + static_cast<std::ptrdiff_t>(off));
    spans.push_back(storage.subspan(off, d.size()));
    off += d.size();
  }
  return spans;
}

void expect_identical_on_all_ranks(const Grads& g) {
  for (const auto& d : g.data) {
    std::vector<float> root = d;
    MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
    ASSERT_EQ(std::memcmp(root.data(), d.data(), d.size() * sizeof(float)), 0);
  }
}

TEST(Reducer, FusedEqualsUnfusedBitForBit) {
  Communicator comm = dup_world();
  std::vector<Algo> algos{Algo::kMpi, Algo::kRecursiveDoubling, Algo::kHierarchical};
  if (comm.size() <= 2) algos.push_back(Algo::kRing);  // ring's order depends on the block
  for (Algo algo : algos) {
    for (bool shuffled : {false, true}) {
      Grads fused = make_grads(comm.rank(), 1), unfused = fused, whole = fused;
      ReducerOptions o;
      o.algo = algo;
      o.fusion_mb = 0.02;  // several buckets
      GradientReducer a(comm, o);
      reduce_step(a, fused, shuffled);
      EXPECT_GE(a.bucket_count(), 3u);
      o.fusion_mb = 0;
      GradientReducer b(comm, o);
      reduce_step(b, unfused, shuffled);
      EXPECT_EQ(b.bucket_count(), unfused.data.size());
      EXPECT_TRUE(same_bits(fused, unfused)) << to_string(algo);
      o.fusion_mb = 1024;
      GradientReducer c(comm, o);
      reduce_step(c, whole, shuffled);
      EXPECT_EQ(c.bucket_count(), 1u);
      EXPECT_TRUE(same_bits(fused, whole)) << to_string(algo);
      expect_identical_on_all_ranks(fused);
    }
  }
}

// The trainer's flat gradient buffer in the reducer's gradient_storage():
// node-shared memory reduced in place gives the same bits as private buffers.
TEST(Reducer, GradientStorageGivesTheSameBits) {
  Communicator comm = dup_world();
  ReducerOptions o;
  o.fusion_mb = 0.02;  // several buckets at different offsets of the storage
  Grads expected = make_grads(comm.rank(), 3);
  const std::size_t total = total_size(expected);
  GradientReducer shared(comm, o);
  std::span<float> storage = shared.gradient_storage(total);
  if (comm.size() == 1) {
    EXPECT_TRUE(storage.empty()) << "one rank needs no node-shared memory";
    return;
  }
  ASSERT_EQ(storage.size(), total);
  std::vector<std::span<float>> spans = lay_out(expected, storage);
  for (int step = 0; step < 2; ++step) {  // the buffer is reused step after step
    shared.begin_gradients(spans);
    for (std::size_t i = spans.size(); i-- > 0;) shared.gradient_ready(i);
    shared.finish_gradients();
  }
  GradientReducer plain(comm, o);
  for (int step = 0; step < 2; ++step) reduce_step(plain, expected, false);
  for (std::size_t k = 0; k < spans.size(); ++k)
    EXPECT_EQ(std::memcmp(spans[k].data(), expected.data[k].data(), spans[k].size_bytes()), 0)
        << "buffer " << k;
  o.compression = Codec::kFp16;
  GradientReducer lossy(comm, o);
  EXPECT_TRUE(lossy.gradient_storage(total).empty()) << "codecs pack into their own buffers";
}

// Sharded update: each rank updates the ranges it owns from the averaged
// gradients and copies the rest; the result has the bits of averaging first
// and updating everything, on every rank, and every element has one owner.
TEST(Reducer, ShardedUpdateMatchesAverageThenUpdate) {
  Communicator comm = dup_world();
  ReducerOptions o;
  o.fusion_mb = 0.02;
  Grads g = make_grads(comm.rank(), 5);
  const std::size_t total = total_size(g);
  GradientReducer red(comm, o);
  std::span<float> gs = red.gradient_storage(total);
  std::span<float> ps = red.parameter_storage(total);
  if (comm.size() == 1) {
    EXPECT_TRUE(ps.empty());
    return;
  }
  ASSERT_EQ(ps.size(), total);
  ASSERT_TRUE(red.sharded());
  std::vector<float> p0(total);
  for (std::size_t i = 0; i < total; ++i) p0[i] = ps[i] = 0.001f * static_cast<float>(i % 997);
  std::vector<std::span<float>> spans = lay_out(g, gs);
  std::vector<int> owned(total, 0);
  red.begin_gradients(spans);
  for (std::size_t i = spans.size(); i-- > 0;) red.gradient_ready(i);
  const bool sharded =
      red.finish_gradients_sharded([&](std::size_t lo, std::size_t hi, const float* mean) {
        for (std::size_t i = lo; i < hi; ++i) {
          ps[i] -= 0.5f * mean[i - lo];
          ++owned[i];
        }
      });
  ASSERT_TRUE(sharded);
  Grads ref = make_grads(comm.rank(), 5);
  GradientReducer plain(comm, o);
  reduce_step(plain, ref, false);
  std::size_t wrong = 0, k = 0;
  for (const auto& d : ref.data) {
    for (float x : d) {
      const float expect = p0[k] - 0.5f * x;
      wrong += std::memcmp(&expect, &ps[k], sizeof(float)) != 0;
      ++k;
    }
  }
  EXPECT_EQ(wrong, 0u);
  std::vector<int> owners(total, 0);
  MPI_Allreduce(owned.data(), owners.data(), static_cast<int>(total), MPI_INT, MPI_SUM,
                MPI_COMM_WORLD);
  EXPECT_EQ(std::count(owners.begin(), owners.end(), 1), static_cast<std::ptrdiff_t>(total))
      << "every parameter updated by exactly one rank";
  std::vector<float> root(ps.begin(), ps.end());
  MPI_Bcast(root.data(), static_cast<int>(total), MPI_FLOAT, 0, MPI_COMM_WORLD);
  EXPECT_EQ(std::memcmp(root.data(), ps.data(), total * sizeof(float)), 0);

  // The same storage finished the plain way still gets the mean.
  for (std::size_t i = 0; i < total; ++i) gs[i] = 0;
  std::copy(g.data[0].begin(), g.data[0].end(), gs.begin());
  red.begin_gradients(spans);
  red.finish_gradients();
  Grads again = make_grads(comm.rank(), 5);
  for (std::size_t k2 = 1; k2 < again.data.size(); ++k2)
    std::fill(again.data[k2].begin(), again.data[k2].end(), 0.0f);
  GradientReducer plain2(comm, o);
  reduce_step(plain2, again, false);
  EXPECT_EQ(std::memcmp(gs.data(), again.data[0].data(), again.data[0].size() * sizeof(float)), 0);

  o.sharded_update = false;
  GradientReducer unsharded(comm, o);
  (void)unsharded.gradient_storage(total);
  EXPECT_TRUE(unsharded.parameter_storage(total).empty());
}

TEST(Reducer, AutomaticMatchesMean) {
  Communicator comm = dup_world();
  const int n = comm.size();
  ReducerOptions o;  // defaults: auto, fusion 4 MiB
  GradientReducer red(comm, o);
  for (unsigned step = 1; step <= 3; ++step) {
    Grads g = make_grads(comm.rank(), step);
    reduce_step(red, g, false);
    std::vector<Grads> all;
    for (int p = 0; p < n; ++p) all.push_back(make_grads(p, step));
    for (std::size_t k = 0; k < g.data.size(); ++k)
      for (std::size_t i = 0; i < g.data[k].size(); i += 7) {
        double mean = 0;
        for (int p = 0; p < n; ++p) mean += all[static_cast<std::size_t>(p)].data[k][i];
        mean /= n;
        ASSERT_NEAR(g.data[k][i], mean, 1e-6) << k << "," << i;
      }
    expect_identical_on_all_ranks(g);
    const auto s = red.last_gradient_stats();
    std::size_t raw = 0;
    for (const auto& d : g.data) raw += d.size() * sizeof(float);
    EXPECT_EQ(s.raw_bytes, raw);
    EXPECT_EQ(s.wire_bytes, n > 1 ? 2 * (n - 1) * raw / n : 0u);
    EXPECT_GE(s.overlapped_s, 0.0);
  }
}

// Decoded mean vs exact mean: each contribution's error within the codec's
// bound, so the mean's error is within the mean of the bounds.
TEST(Reducer, CodecsWithinBoundsAndIdenticalOnAllRanks) {
  Communicator comm = dup_world();
  const int n = comm.size();
  for (Codec codec : {Codec::kFp16, Codec::kBf16, Codec::kInt8}) {
    ReducerOptions o;
    o.compression = codec;
    o.fusion_mb = 0.1;
    GradientReducer red(comm, o);
    Grads g = make_grads(comm.rank(), 5);
    reduce_step(red, g, false);
    expect_identical_on_all_ranks(g);
    std::vector<Grads> all;
    for (int p = 0; p < n; ++p) all.push_back(make_grads(p, 5));
    for (std::size_t k = 0; k < g.data.size(); ++k) {
      for (std::size_t i = 0; i < g.data[k].size(); ++i) {
        double mean = 0, bound = 0;
        for (int p = 0; p < n; ++p) {
          const double x = all[static_cast<std::size_t>(p)].data[k][i];
          mean += x;
          if (codec == Codec::kFp16) bound += std::ldexp(std::fabs(x), -11) + std::ldexp(1.0, -25);
          if (codec == Codec::kBf16) bound += std::ldexp(std::fabs(x), -8);
          if (codec == Codec::kInt8) bound += 0.5 / 127.0;  // |x| < 1 here, so s/2 < 0.5/127
        }
        mean /= n;
        bound = bound / n + 1e-6;
        ASSERT_LE(std::fabs(g.data[k][i] - mean), bound)
            << to_string(codec) << " " << k << "," << i;
      }
    }
    const auto s = red.last_gradient_stats();
    if (n > 1) {
      EXPECT_LT(s.wire_bytes, (n - 1) * s.raw_bytes * 3 / 5) << to_string(codec);
    } else {
      EXPECT_EQ(s.wire_bytes, 0u);
    }
  }
}

// Top-k through the reducer: at ratio 1 it sends everything, so the result is
// the mean decoded in rank order, exactly; at a small ratio each bucket's result
// has at most n*k non-zeros and is identical on all ranks. (The error-feedback
// identity itself is checked exactly in codec_test.)
TEST(Reducer, TopkSparsityAndExactAtRatioOne) {
  Communicator comm = dup_world();
  const int n = comm.size();
  std::vector<Grads> all;
  for (int p = 0; p < n; ++p) all.push_back(make_grads(p, 9));
  {
    ReducerOptions o;
    o.compression = Codec::kTopk;
    o.topk_ratio = 1.0;
    GradientReducer red(comm, o);
    Grads g = make_grads(comm.rank(), 9);
    reduce_step(red, g, false);
    for (std::size_t k = 0; k < g.data.size(); ++k)
      for (std::size_t i = 0; i < g.data[k].size(); ++i) {
        float acc = 0.0f;
        for (int p = 0; p < n; ++p) acc += all[static_cast<std::size_t>(p)].data[k][i];
        ASSERT_EQ(g.data[k][i], acc / static_cast<float>(n)) << k << "," << i;
      }
  }
  ReducerOptions o;
  o.compression = Codec::kTopk;
  o.topk_ratio = 0.05;
  o.fusion_mb = 0;  // one bucket per buffer: the bound is per buffer
  GradientReducer red(comm, o);
  for (int step = 0; step < 3; ++step) {
    Grads g = make_grads(comm.rank(), 9);
    reduce_step(red, g, false);
    expect_identical_on_all_ranks(g);
    for (const auto& d : g.data) {
      std::size_t nonzero = 0;
      for (float v : d) nonzero += v != 0.0f;
      EXPECT_LE(nonzero, static_cast<std::size_t>(n) * topk_count(d.size(), o.topk_ratio));
      EXPECT_GT(nonzero, 0u);
    }
    const auto s = red.last_gradient_stats();
    if (n > 1) {
      EXPECT_LT(s.wire_bytes, s.raw_bytes * static_cast<std::size_t>(n) / 2);
    }
  }
}

// finish_gradients_each(): every buffer named exactly once, one group per
// bucket, the groups in the same order on every rank, and each group's
// buffers already hold their final means when it is named (the bits
// finish_gradients() gives), with and without codecs (top-k's error feedback
// carried over three steps), in private buffers and in the node-shared
// gradient storage; the statistics are those of finish_gradients().
TEST(Reducer, FinishEachNamesEveryBufferOnceWithItsFinalMean) {
  Communicator comm = dup_world();
  struct Setup {
    Codec codec;
    bool storage;
  };
  for (const Setup s : {Setup{Codec::kNone, false}, Setup{Codec::kNone, true},
                        Setup{Codec::kFp16, false}, Setup{Codec::kTopk, false}}) {
    const std::string what = std::string(to_string(s.codec)) + (s.storage ? " storage" : "");
    ReducerOptions o;
    o.compression = s.codec;
    o.topk_ratio = 0.05;
    o.fusion_mb = 0.02;
    GradientReducer each(comm, o), whole(comm, o);
    std::span<float> storage;
    if (s.storage) storage = each.gradient_storage(total_size(make_grads(comm.rank(), 1)));
    // The same buffers every step: the reducers keep their plan (and top-k's
    // residuals) only while the buffers stay where they are.
    Grads g = make_grads(comm.rank(), 1), ref = g;
    for (unsigned step = 1; step <= 3; ++step) {
      const Grads fresh = make_grads(comm.rank(), step);
      for (std::size_t k = 0; k < fresh.data.size(); ++k) {
        std::copy(fresh.data[k].begin(), fresh.data[k].end(), g.data[k].begin());
        std::copy(fresh.data[k].begin(), fresh.data[k].end(), ref.data[k].begin());
      }
      const std::vector<std::span<float>> spans = storage.empty() ? g.spans() : lay_out(g, storage);
      each.begin_gradients(spans);
      for (std::size_t i = spans.size(); i-- > 0;) each.gradient_ready(i);
      std::vector<int> named(spans.size(), 0);
      std::vector<std::vector<float>> at_ready(spans.size());
      std::vector<unsigned long long> sequence;  // indices as named, ~0 after each group
      std::size_t groups = 0;
      each.finish_gradients_each([&](std::span<const std::size_t> indices) {
        ++groups;
        for (std::size_t i : indices) {
          ASSERT_LT(i, spans.size());
          ++named[i];
          at_ready[i].assign(spans[i].begin(), spans[i].end());
          sequence.push_back(i);
        }
        sequence.push_back(~0ULL);
      });
      reduce_step(whole, ref, false);
      EXPECT_EQ(groups, each.bucket_count()) << what;
      EXPECT_GE(groups, 3u) << what;
      for (std::size_t k = 0; k < spans.size(); ++k) {
        EXPECT_EQ(named[k], 1) << what << " buffer " << k;
        ASSERT_EQ(at_ready[k].size(), ref.data[k].size()) << what;
        EXPECT_EQ(
            std::memcmp(at_ready[k].data(), ref.data[k].data(), ref.data[k].size() * sizeof(float)),
            0)
            << what << " step " << step << ": buffer " << k << " not final when named";
      }
      std::vector<unsigned long long> root = sequence;
      MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_UNSIGNED_LONG_LONG, 0,
                MPI_COMM_WORLD);
      EXPECT_EQ(root, sequence) << what << ": groups in another order than on rank 0";
      const auto a = each.last_gradient_stats(), b = whole.last_gradient_stats();
      EXPECT_EQ(a.raw_bytes, b.raw_bytes) << what;
      EXPECT_EQ(a.wire_bytes, b.wire_bytes) << what;
      EXPECT_GE(a.overlapped_s, 0.0) << what;
      EXPECT_GE(each.last_wait_s(), 0.0) << what;
    }
  }
}

TEST(Reducer, ReadsConfigKeys) {
  auto doc = hpcml::ConfigDoc::parse(
      "[parallel]\nalgo = \"ring\"\nfusion_mb = 0\ncompression = \"int8\"\nstall_timeout_s = 5\n"
      "allreduce_thresholds = \"small_max_bytes=2K\"\n",
      "test.toml");
  const auto o = read_reducer_options(doc);
  EXPECT_EQ(o.algo, Algo::kRing);
  EXPECT_EQ(o.fusion_mb, 0);
  EXPECT_EQ(o.compression, Codec::kInt8);
  EXPECT_EQ(o.stall_timeout_s, 5);
  doc.check_unknown();
  auto bad = hpcml::ConfigDoc::parse("[parallel]\ncompression = \"zip\"\n", "bad.toml");
  EXPECT_THROW(read_reducer_options(bad), hpcml::ConfigError);
  auto bad2 = hpcml::ConfigDoc::parse("[parallel]\nallreduce_thresholds = \"tiny=1\"\n", "b.toml");
  EXPECT_THROW(read_reducer_options(bad2), hpcml::ConfigError);
}

#ifndef HPCML_HAS_NCCL
// 'nccl' is a valid spelling whose transport this build lacks: the config key
// is refused with the transport registry's one message, naming the key.
TEST(Reducer, NcclAlgoIsRefusedWhenReadingTheConfig) {
  auto doc = hpcml::ConfigDoc::parse("[parallel]\nalgo = \"nccl\"\n", "n.toml");
  try {
    (void)read_reducer_options(doc);
    ADD_FAILURE() << "parallel.algo = nccl accepted";
  } catch (const hpcml::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "n.toml: key 'parallel.algo': 'nccl' is not available in this build (no NCCL "
              "backend yet)");
  }
  Communicator comm = Communicator::world();
  ReducerOptions o;
  o.algo = Algo::kNccl;
  EXPECT_THROW(GradientReducer(comm, o), hpcml::NotAvailableError);
}
#endif

}  // namespace

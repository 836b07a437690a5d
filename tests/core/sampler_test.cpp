#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "hpcml/core/data.hpp"

TEST(Sampler, RanksPartitionEachGlobalBatch) {
  const std::size_t n = 1000, b = 7;
  for (int ranks : {1, 2, 3, 5}) {
    const std::size_t steps = hpcml::steps_per_epoch(n, ranks, b);
    EXPECT_EQ(steps, n / (ranks * b));
    std::vector<std::vector<std::size_t>> per_rank;
    for (int r = 0; r < ranks; ++r) per_rank.push_back(hpcml::epoch_indices(n, 9, 0, r, ranks, b));
    std::set<std::size_t> all;
    for (const auto& v : per_rank) {
      ASSERT_EQ(v.size(), steps * b);
      for (auto i : v) {
        EXPECT_LT(i, n);
        all.insert(i);
      }
    }
    EXPECT_EQ(all.size(), steps * b * ranks) << "indices overlap between ranks";
    // The global batch of step s is the same set whatever the rank count: 1 rank
    // with batch ranks*b sees exactly the union of the ranks' step-s slices.
    auto single = hpcml::epoch_indices(n, 9, 0, 0, 1, b * ranks);
    for (std::size_t s = 0; s < steps; ++s) {
      std::vector<std::size_t> u;
      for (const auto& v : per_rank) u.insert(u.end(), v.begin() + s * b, v.begin() + (s + 1) * b);
      std::vector<std::size_t> w(single.begin() + s * b * ranks,
                                 single.begin() + (s + 1) * b * ranks);
      EXPECT_EQ(u, w);
    }
  }
}

TEST(Sampler, SeedAndEpochChangeTheOrderDeterministically) {
  auto a = hpcml::epoch_indices(500, 1, 0, 0, 2, 10);
  EXPECT_EQ(a, hpcml::epoch_indices(500, 1, 0, 0, 2, 10));
  EXPECT_NE(a, hpcml::epoch_indices(500, 1, 1, 0, 2, 10));
  EXPECT_NE(a, hpcml::epoch_indices(500, 2, 0, 0, 2, 10));
}

TEST(Sampler, TooFewSamplesGiveZeroSteps) {
  EXPECT_EQ(hpcml::steps_per_epoch(10, 4, 3), 0u);
  EXPECT_TRUE(hpcml::epoch_indices(10, 0, 0, 1, 4, 3).empty());
}

TEST(Sampler, BlockRangeCoversExactlyOnce) {
  for (std::size_t n : {0u, 1u, 7u, 100u}) {
    for (int ranks : {1, 2, 3, 8}) {
      std::size_t expect = 0;
      for (int r = 0; r < ranks; ++r) {
        auto [b, e] = hpcml::block_range(n, r, ranks);
        EXPECT_EQ(b, expect);
        EXPECT_LE(e - b, n / ranks + 1);
        expect = e;
      }
      EXPECT_EQ(expect, n);
    }
  }
}

// The shard plan of parameter-server mode: whole tensors, balanced by size.
#include <gtest/gtest.h>

#include <vector>

#include "hpcml/comm/ps.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::comm {
namespace {

using Bounds = std::vector<std::size_t>;

TEST(PlanShards, OneServerHoldsEverything) {
  EXPECT_EQ(plan_shards({10, 2, 30}, 1), (Bounds{0, 42}));
}

TEST(PlanShards, BoundsAreTensorBoundariesNearestTheEqualSplit) {
  // Tensors of 10, 10, 10, 10: two servers take two each.
  EXPECT_EQ(plan_shards({10, 10, 10, 10}, 2), (Bounds{0, 20, 40}));
  // A 784x64 layer, its bias, a 64x10 layer and its bias: the big layer alone.
  EXPECT_EQ(plan_shards({50176, 64, 640, 10}, 2), (Bounds{0, 50176, 50890}));
  EXPECT_EQ(plan_shards({1, 1, 100, 1, 1}, 3), (Bounds{0, 2, 102, 104}));
}

TEST(PlanShards, EveryServerGetsATensor) {
  // The nearest boundaries would leave the last servers empty.
  EXPECT_EQ(plan_shards({100, 1, 1}, 3), (Bounds{0, 100, 101, 102}));
  EXPECT_EQ(plan_shards({1, 1, 100}, 3), (Bounds{0, 1, 2, 102}));
}

TEST(PlanShards, MoreServersThanTensorsIsAConfigError) {
  EXPECT_THROW((void)plan_shards({5, 5}, 3), ConfigError);
  EXPECT_THROW((void)plan_shards({5, 5}, 0), ConfigError);
}

}  // namespace
}  // namespace hpcml::comm

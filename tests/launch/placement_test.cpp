// The per-rank layout lines and their warnings (launch/placement.hpp).
#include "hpcml/launch/placement.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "hpcml/core/error.hpp"

namespace {

using hpcml::launch::format_cpu_list;
using hpcml::launch::parse_cpu_list;
using hpcml::launch::placement_warnings;
using hpcml::launch::RankPlacement;

TEST(Placement, CpuListsAreFormattedAsRanges) {
  EXPECT_EQ(format_cpu_list({}), "none");
  EXPECT_EQ(format_cpu_list({5}), "5");
  EXPECT_EQ(format_cpu_list({0, 1, 2, 3}), "0-3");
  EXPECT_EQ(format_cpu_list({3, 1, 0, 2, 8, 10, 11, 11}), "0-3,8,10-11");
  EXPECT_EQ(format_cpu_list({0, 2, 4}), "0,2,4");
  EXPECT_EQ(format_cpu_list({6, 7}), "6-7");
}

TEST(Placement, CpuListsParseTheKernelFormat) {
  EXPECT_EQ(parse_cpu_list("0-3,8,10-11\n"), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_cpu_list("7"), (std::vector<int>{7}));
  EXPECT_EQ(parse_cpu_list("4-4"), (std::vector<int>{4}));
  for (const char* bad : {"", "\n", "a", "3-1", "1,,2", "-1", "1-", "0-3,x", "1 2"})
    EXPECT_FALSE(parse_cpu_list(bad)) << "'" << bad << "'";
  // Round trip.
  const std::vector<int> cpus{0, 1, 2, 5, 9, 10};
  EXPECT_EQ(parse_cpu_list(format_cpu_list(cpus)), cpus);
}

TEST(Placement, AffinityIsNonEmptyAndSorted) {
  const auto cpus = hpcml::launch::affinity_cpus();
  ASSERT_FALSE(cpus.empty());
  EXPECT_TRUE(std::is_sorted(cpus.begin(), cpus.end()));
}

RankPlacement rank(int r, const std::string& node, std::vector<int> cpus, int threads,
                   int node_cpus, int gpu = -1, const std::string& bus = "none",
                   std::optional<std::vector<int>> near = std::nullopt) {
  RankPlacement p;
  p.rank = r;
  p.node = node;
  p.cpus = std::move(cpus);
  p.threads = threads;
  p.node_cpus = node_cpus;
  p.gpu = gpu;
  p.gpu_bus = bus;
  p.gpu_local_cpus = std::move(near);
  if (gpu >= 0 && !p.gpu_local_cpus) p.gpu_topology_note = "/sys/x/local_cpulist: No such file";
  return p;
}

TEST(Placement, DescribeLineNamesNodeCoresThreadsAndGpu) {
  EXPECT_EQ(hpcml::launch::describe_placement(rank(1, "n1", {2, 3}, 2, 8)),
            "rank 1 on n1: cores 2-3, 2 OpenMP thread(s), GPU none");
  EXPECT_EQ(
      hpcml::launch::describe_placement(rank(0, "n1", {0, 1}, 1, 8, 0, "0000:3b:00.0", {{0}})),
      "rank 0 on n1: cores 0-1, 1 OpenMP thread(s), GPU 0 0000:3b:00.0");
}

TEST(Placement, NoWarningsForASoundLayout) {
  const std::vector<RankPlacement> ranks{
      rank(0, "a", {0, 1}, 2, 4, 0, "0000:01:00.0", std::vector<int>{0, 1}),
      rank(1, "a", {2, 3}, 2, 4, 1, "0000:02:00.0", std::vector<int>{2, 3}),
      rank(2, "b", {0, 1}, 4, 4)};
  EXPECT_TRUE(placement_warnings(ranks).empty());
}

TEST(Placement, OversubscribedNodeIsWarnedPerNode) {
  const std::vector<RankPlacement> ranks{rank(0, "a", {0, 1}, 3, 4), rank(1, "a", {2, 3}, 2, 4),
                                         rank(2, "b", {0}, 1, 4)};
  const auto w = placement_warnings(ranks);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], "node a is oversubscribed: 2 rank(s) run 5 thread(s) on 4 CPU(s)");
}

TEST(Placement, SharedGpuIsWarnedOncePerNodeAndGpu) {
  const std::vector<int> near{0, 1, 2, 3};
  const std::vector<RankPlacement> ranks{rank(0, "a", {0}, 1, 4, 0, "0000:01:00.0", near),
                                         rank(1, "a", {1}, 1, 4, 0, "0000:01:00.0", near),
                                         rank(2, "a", {2}, 1, 4, 0, "0000:01:00.0", near),
                                         // Same bus id on another node: another GPU.
                                         rank(3, "b", {0}, 1, 4, 0, "0000:01:00.0", near)};
  const auto w = placement_warnings(ranks);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], "ranks 0, 1, 2 share GPU 0000:01:00.0 on a");
}

TEST(Placement, CoresFarFromTheGpuAreWarned) {
  const std::vector<RankPlacement> ranks{
      rank(0, "a", {0, 1}, 1, 32, 0, "0000:01:00.0", std::vector<int>{16, 17, 18}),
      // Partly near: not far.
      rank(1, "a", {15, 16}, 1, 32, 1, "0000:02:00.0", std::vector<int>{16, 17, 18})};
  const auto w = placement_warnings(ranks);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0],
            "rank 0 runs on cores 0-1, far from its GPU 0000:01:00.0 (local CPUs 16-18): bind the "
            "rank near its GPU");
}

TEST(Placement, UnreadableGpuTopologyIsSaid) {
  const auto w = placement_warnings({rank(0, "a", {0}, 1, 4, 0, "0000:01:00.0")});
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0],
            "rank 0: the CPUs near GPU 0000:01:00.0 cannot be read (/sys/x/local_cpulist: No such "
            "file); core-to-GPU distance not checked");
}

TEST(Placement, SerializeRoundTrips) {
  for (const auto& p : {rank(3, "node-7", {0, 1, 2, 9}, 4, 16),
                        rank(1, "n", {}, 1, 1, 2, "0000:3b:00.0", std::vector<int>{0, 1}),
                        rank(0, "n", {5}, 1, 8, 0, "0000:3b:00.0")}) {
    const RankPlacement q = hpcml::launch::parse_placement(hpcml::launch::serialize(p));
    EXPECT_EQ(q.rank, p.rank);
    EXPECT_EQ(q.node, p.node);
    EXPECT_EQ(q.cpus, p.cpus);
    EXPECT_EQ(q.threads, p.threads);
    EXPECT_EQ(q.node_cpus, p.node_cpus);
    EXPECT_EQ(q.gpu, p.gpu);
    EXPECT_EQ(q.gpu_bus, p.gpu_bus);
    EXPECT_EQ(q.gpu_local_cpus, p.gpu_local_cpus);
    EXPECT_EQ(q.gpu_topology_note, p.gpu_topology_note);
  }
  EXPECT_THROW(hpcml::launch::parse_placement("garbage"), hpcml::Error);
}

TEST(Placement, PciLocalCpusAreReadFromSysfs) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("hpcml-sysfs-" + std::to_string(::getpid()));
  const fs::path dev = root / "bus/pci/devices/0000:3b:00.0";
  fs::create_directories(dev);
  std::ofstream(dev / "local_cpulist") << "0-3,8\n";
  std::string why;
  EXPECT_EQ(hpcml::launch::read_pci_local_cpus("0000:3b:00.0", &why, root.string()),
            (std::vector<int>{0, 1, 2, 3, 8}));
  EXPECT_FALSE(hpcml::launch::read_pci_local_cpus("0000:99:00.0", &why, root.string()));
  EXPECT_NE(why.find("0000:99:00.0/local_cpulist"), std::string::npos) << why;
  std::ofstream(dev / "local_cpulist") << "zz\n";
  EXPECT_FALSE(hpcml::launch::read_pci_local_cpus("0000:3b:00.0", &why, root.string()));
  EXPECT_NE(why.find("not a CPU list"), std::string::npos) << why;
  fs::remove_all(root);
}

}  // namespace

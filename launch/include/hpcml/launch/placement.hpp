// The multi-level layout of a job, per rank: node, core set (affinity mask),
// OpenMP threads, GPU and its PCI bus id, and the warnings about it (threads x
// ranks oversubscribe a node, two ranks share a GPU, a rank's cores are far
// from its GPU). MPI-free: the caller gathers one RankPlacement per rank
// (serialize/parse below) and prints describe_placement() and
// placement_warnings() on rank 0 (`hpcml info --ranks`, `hpcml train`).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace hpcml::launch {

/// "0-3,8,10-11": sorted, duplicates dropped, runs of 2 or more as a range
/// ("0-1"), "none" for an empty set.
std::string format_cpu_list(std::vector<int> cpus);
/// Parses the kernel's list format ("0-3,8,10-11", optional trailing newline,
/// as in /sys/.../local_cpulist); nullopt when malformed or empty.
std::optional<std::vector<int>> parse_cpu_list(const std::string& text);
/// This process's CPUs (sched_getaffinity), sorted; the online CPUs when the
/// mask cannot be read.
std::vector<int> affinity_cpus();

/// The CPUs local to the PCI device `bus_id` ("0000:3b:00.0"), read from
/// `sysfs_root`/bus/pci/devices/<bus_id>/local_cpulist; nullopt with `why`
/// set (path and reason) when it cannot be read or parsed.
std::optional<std::vector<int>> read_pci_local_cpus(const std::string& bus_id, std::string* why,
                                                    const std::string& sysfs_root = "/sys");

struct RankPlacement {
  int rank = 0;
  std::string node;                                // host name
  std::vector<int> cpus;                           // affinity mask
  int threads = 1;                                 // OpenMP threads of the rank
  int node_cpus = 1;                               // online CPUs of the node
  int gpu = -1;                                    // device index, -1 = none
  std::string gpu_bus = "none";                    // PCI bus id or "none"
  std::optional<std::vector<int>> gpu_local_cpus;  // nullopt: unknown (see gpu_topology_note)
  std::string gpu_topology_note;                   // why the GPU's local CPUs are unknown
};

/// One line (no newline): "rank 1 on node-a: cores 2-3, 2 OpenMP thread(s), GPU 1 0000:3b:00.0"
/// or "..., GPU none".
std::string describe_placement(const RankPlacement& placement);

/// Warnings (not errors), one line each, in a fixed order: per node when the
/// threads of its ranks exceed its CPUs; per GPU (bus id) shared by two or
/// more ranks of one node; per rank whose cores do not meet its GPU's local
/// CPUs; per rank whose GPU's local CPUs are unknown ("... cannot be read: ...;
/// not checked").
std::vector<std::string> placement_warnings(const std::vector<RankPlacement>& ranks);

/// One line (no tabs or newlines in the fields) and back, for gathering to rank 0.
std::string serialize(const RankPlacement& placement);
/// Throws hpcml::Error for a line serialize() did not write.
RankPlacement parse_placement(const std::string& line);

}  // namespace hpcml::launch

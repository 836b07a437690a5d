#include "layout.hpp"

#include <unistd.h>

#include <vector>

#include "hpcml/comm/nccl.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/kernels/cuda.hpp"
#include "hpcml/launch/placement.hpp"

namespace hpcml::jobs {

int nccl_device(const comm::Communicator& local, Backend* backend) {
  if (backend != nullptr && backend->name() == "cuda") return kernels::cuda_device_of(*backend);
  const kernels::CudaInfo info = kernels::cuda_info();
  if (info.devices.empty()) return -1;
  try {
    return kernels::cuda_choose_device(kernels::DevicePlacement{local.rank(), local.size(), false},
                                       static_cast<int>(info.devices.size()));
  } catch (const ConfigError&) {
    return -1;
  }
}

std::string layout_report(const comm::Communicator& world, const launch::RuntimeLayout& layout,
                          const LayoutReportOptions& options) {
  launch::RankPlacement mine;
  mine.rank = world.rank();
  mine.node = layout.hostname;
  mine.cpus = launch::affinity_cpus();
  mine.threads = layout.threads_per_rank;
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  mine.node_cpus = online > 0 ? static_cast<int>(online) : 1;
  if (options.with_gpu) {
    const comm::GpuPlacement gpu = comm::gpu_for_local_rank(layout.local_rank);
    mine.gpu = gpu.device;
    mine.gpu_bus = gpu.pci_bus_id;
    if (gpu.device >= 0)
      mine.gpu_local_cpus = launch::read_pci_local_cpus(gpu.pci_bus_id, &mine.gpu_topology_note);
  }
  // Gather the serialized lines to rank 0.
  const std::string line = launch::serialize(mine);
  int len = static_cast<int>(line.size());
  const int n = world.size();
  std::vector<int> lens(world.rank() == 0 ? static_cast<std::size_t>(n) : 0);
  HPCML_CHECK_MPI(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, world.get()));
  std::vector<int> displs(lens.size(), 0);
  int total = 0;
  for (std::size_t i = 0; i < lens.size(); ++i) {
    displs[i] = total;
    total += lens[i];
  }
  std::string all(static_cast<std::size_t>(total), '\0');
  HPCML_CHECK_MPI(MPI_Gatherv(line.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(),
                              MPI_CHAR, 0, world.get()));
  if (world.rank() != 0) return "";
  std::vector<launch::RankPlacement> ranks;
  for (std::size_t i = 0; i < lens.size(); ++i)
    ranks.push_back(launch::parse_placement(
        all.substr(static_cast<std::size_t>(displs[i]), static_cast<std::size_t>(lens[i]))));
  std::string out;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    if (i == options.max_rank_lines) {
      out += options.indent + "... and " + std::to_string(ranks.size() - i) + " more rank(s)\n";
      break;
    }
    out += options.indent + launch::describe_placement(ranks[i]) + "\n";
  }
  if (!options.transport.empty()) out += options.indent + "transport " + options.transport + "\n";
  for (const auto& w : launch::placement_warnings(ranks)) out += "hpcml: warning: " + w + "\n";
  return out;
}

}  // namespace hpcml::jobs

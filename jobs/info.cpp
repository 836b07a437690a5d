// `hpcml info`: what this binary was built with and how this launch is laid out.
#include <H5public.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/comm/nccl.hpp"
#include "hpcml/config.hpp"
#include "hpcml/kernels/cuda.hpp"
#include "hpcml/kernels/factory.hpp"
#include "hpcml/launch/environment.hpp"
#include "layout.hpp"

#ifdef HPCML_HAS_OPENMP
#include <omp.h>
#endif

namespace hpcml::jobs {

namespace {

std::string hdf5_description() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  std::ostringstream os;
  os << maj << "." << min << "." << rel;
#ifdef H5_HAVE_PARALLEL
  os << " (parallel, MPI-IO)";
#else
  os << " (serial)";
#endif
  return os.str();
}

// The multi-level layout (launch/placement.hpp): every rank's node, cores,
// OpenMP threads and GPU, the transport by message size and the warnings.
// Collective; rank 0 prints.
void print_layout_lines(comm::Communicator& world, const launch::RuntimeLayout& layout) {
  LayoutReportOptions options;
  options.indent = "  ";
  options.transport =
      comm::describe_transport_by_size(world, comm::Transport::kMpi, comm::Algo::kAuto);
  const std::string report = layout_report(world, layout, options);
  if (world.rank() == 0) {
    std::fputs(("layout (parallel.transport = \"auto\" on a CPU backend: mpi)\n" + report).c_str(),
               stdout);
    std::fflush(stdout);
  }
}

// MPICH 4 (mpi-ext.h, MPIX_Query_cuda_support) says whether it moves device
// buffers itself; Debian's MPICH is built without CUDA, so gradients of the
// cuda backend are staged through pinned host memory for MPI.
std::string mpi_cuda_awareness() {
#if defined(MPIX_GPU_SUPPORT_CUDA)
  int supported = 0;
  if (MPIX_GPU_query_support(MPIX_GPU_SUPPORT_CUDA, &supported) == MPI_SUCCESS && supported)
    return "CUDA-aware (MPIX_GPU_query_support)";
  return "not CUDA-aware (MPIX_GPU_query_support: no; device gradients are staged through pinned "
         "host memory)";
#elif defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
  return MPIX_Query_cuda_support() ? "CUDA-aware (MPIX_Query_cuda_support)"
                                   : "not CUDA-aware at run time (MPIX_Query_cuda_support)";
#else
  return "not CUDA-aware (no MPIX CUDA query in this MPI; device gradients are staged through "
         "pinned host memory)";
#endif
}

// The cuda section: "compiled, no device", or one line per visible device.
std::string cuda_description() {
  const auto info = kernels::cuda_info();
  if (!info.compiled) return "not compiled in (HPCML_ENABLE_CUDA=AUTO finds nvcc)\n";
  std::ostringstream os;
  const std::string versions =
      "runtime " + kernels::cuda_version_string(info.runtime_version) + ", driver " +
      (info.driver_version ? kernels::cuda_version_string(info.driver_version) : "none");
  if (info.devices.empty()) {
    os << "compiled, no device (" << info.error << "; " << versions << ")\n";
    return os.str();
  }
  os << "compiled, " << info.devices.size() << " device(s), " << versions << "\n";
  for (const auto& d : info.devices) {
    char mem[32];
    std::snprintf(mem, sizeof mem, "%.1f", static_cast<double>(d.memory_bytes) / (1 << 30));
    os << "    device " << d.index << "        " << d.name << ", compute capability " << d.cc_major
       << "." << d.cc_minor << ", " << mem << " GiB, " << d.multiprocessors << " SMs, PCI "
       << d.pci_bus_id << "\n";
  }
  return os.str();
}

// ", GPU 0 (0000:3b:00.0)" for the rank -> GPU map of `hpcml info --ranks`;
// "" without CUDA devices.
std::string gpu_of_rank(int local_rank, int local_size) {
  const auto info = kernels::cuda_info();
  if (info.devices.empty()) return "";
  try {
    const int d = kernels::cuda_choose_device({local_rank, local_size, false, false},
                                              static_cast<int>(info.devices.size()));
    return ", GPU " + std::to_string(d) + " (" +
           info.devices[static_cast<std::size_t>(d)].pci_bus_id + ")";
  } catch (const Error&) {
    return ", no GPU of its own (" + std::to_string(local_size) + " ranks, " +
           std::to_string(info.devices.size()) + " GPUs on this node)";
  }
}

int run_info(bool all_ranks) {
  comm::MpiEnvironment env;
  auto world = comm::Communicator::world();
  auto local = world.split_shared();
  const int nodes = world.node_count();
  auto layout =
      launch::detect_layout(world.rank(), world.size(), local.rank(), local.size(), nodes, 0);
  if (world.rank() == 0) {
    std::ostringstream os;
    os << "hpcml " << HPCML_VERSION << " (" << HPCML_BUILD_TYPE << ")\n";
    os << "build\n";
    os << "  compiler          " << HPCML_CXX_COMPILER << ", C++" << (__cplusplus / 100) % 100
       << "\n";
    os << "  MPI library       " << comm::MpiEnvironment::library_version() << " (MPI "
       << MPI_VERSION << "." << MPI_SUBVERSION << ")\n";
    os << "  HDF5              " << hdf5_description() << "\n";
    os << "  BLAS              " << kernels::blas_description() << "\n";
#ifdef HPCML_HAS_OPENMP
    os << "  OpenMP            yes (spec " << _OPENMP << ", max threads " << omp_get_max_threads()
       << ")\n";
#else
    os << "  OpenMP            no\n";
#endif
    std::string backends;
    for (const auto& b : kernels::available_backends())
      backends += (backends.empty() ? "" : ", ") + b;
    for (const auto& b : kernels::device_backends()) backends += ", " + b + " (device)";
    os << "  backends          " << backends << "\n";
    os << "  CUDA              " << cuda_description();
    os << "  MPI and CUDA      " << mpi_cuda_awareness() << "\n";
    os << "  NCCL              " << comm::nccl_description() << "\n";
    os << "  Kokkos            " << kernels::kokkos_description() << "\n";
#ifdef HPCML_HAS_SLURM
    os << "  libslurm          yes\n";
#else
    os << "  libslurm          no (submission through sbatch)\n";
#endif
    os << "runtime\n" << launch::describe(layout);
    std::cout << os.str() << std::flush;
  }
  if (all_ranks) {
    // One line per rank, in rank order.
    for (int r = 0; r < world.size(); ++r) {
      world.barrier();
      if (r == world.rank()) {
        std::printf("rank %d/%d on %s: local rank %d/%d, %d thread(s) (%s)%s%s\n", layout.rank,
                    layout.size, layout.hostname.c_str(), layout.local_rank, layout.local_size,
                    layout.threads_per_rank, layout.threads_source.c_str(),
                    layout.array_task_id >= 0
                        ? (", array task " + std::to_string(layout.array_task_id)).c_str()
                        : "",
                    gpu_of_rank(layout.local_rank, layout.local_size).c_str());
        std::fflush(stdout);
      }
    }
    world.barrier();
    print_layout_lines(world, layout);
  }
  return 0;
}

}  // namespace

void add_info(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("info", "Print the build and this launch's layout");
  auto per_rank = std::make_shared<bool>(false);
  cmd->add_flag("--ranks", *per_rank, "Also print one line per rank");
  cmd->callback([&action, per_rank] { action = [per_rank] { return run_info(*per_rank); }; });
}

}  // namespace hpcml::jobs

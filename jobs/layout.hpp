// The per-rank layout report of `hpcml info --ranks` and the first lines of
// `hpcml train` (launch/placement.hpp formats it; this gathers it over MPI).
#pragma once

#include <string>

#include "hpcml/comm/mpi.hpp"
#include "hpcml/core/backend.hpp"
#include "hpcml/launch/environment.hpp"

namespace hpcml::jobs {

struct LayoutReportOptions {
  std::string indent;               // before every line
  bool with_gpu = true;             // look up this rank's GPU (local rank -> device)
  std::string transport;            // "mpi: <= 64K ..." line, or "" for none
  std::size_t max_rank_lines = 64;  // more ranks: the first ones and "... N more"
};

/// The GPU the NCCL transport uses on this rank: the device of `backend` when
/// it is a cuda backend; otherwise the one a cuda backend would take
/// (kernels::cuda_choose_device: Slurm's GPU binding honoured), or -1 when
/// none can be chosen (no device, more ranks than GPUs), so that the NCCL
/// transport refuses with its own reason. Not collective.
int nccl_device(const comm::Communicator& local, Backend* backend);

/// Collective over `world`. On rank 0: one line per rank (node, cores, OpenMP
/// threads, GPU + PCI bus id), the transport line and "hpcml: warning: ..."
/// lines (launch::placement_warnings); "" on the other ranks.
std::string layout_report(const comm::Communicator& world, const launch::RuntimeLayout& layout,
                          const LayoutReportOptions& options);

}  // namespace hpcml::jobs

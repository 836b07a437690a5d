#include "nccl_comm.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "hpcml/comm/mpi.hpp"
#include "hpcml/comm/nccl.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/exit_codes.hpp"

namespace hpcml::comm {

namespace {

std::string cuda_error_text(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")";
}

std::string nccl_version_string(int code) {
  // NCCL_VERSION_CODE: major*10000 + minor*100 + patch since 2.9.
  return std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." +
         std::to_string(code % 100);
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

}  // namespace

std::string nccl_unavailable_reason() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return "no GPU for the NCCL transport: cudaGetDeviceCount returned " + cuda_error_text(e);
  }
  if (count <= 0) return "no GPU for the NCCL transport: cudaGetDeviceCount found 0 devices";
  return "";
}

std::string nccl_description() {
  int runtime = 0;
  std::string s = HPCML_NCCL_VERSION;
  if (ncclGetVersion(&runtime) == ncclSuccess)
    s += " (library " + nccl_version_string(runtime) + ")";
  int cuda = 0;
  if (cudaRuntimeGetVersion(&cuda) == cudaSuccess)
    s += ", CUDA runtime " + std::to_string(cuda / 1000) + "." + std::to_string(cuda % 1000 / 10);
  const std::string reason = nccl_unavailable_reason();
  if (!reason.empty()) return s + "; " + reason;
  int count = 0;
  (void)cudaGetDeviceCount(&count);
  return s + ", " + std::to_string(count) + " GPU(s)";
}

GpuPlacement gpu_for_local_rank(int local_rank) {
  GpuPlacement g;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count <= 0) {
    (void)cudaGetLastError();
    return g;
  }
  g.device = local_rank % count;
  char bus[32] = {};
  if (cudaDeviceGetPCIBusId(bus, sizeof bus, g.device) == cudaSuccess) g.pci_bus_id = lower(bus);
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, g.device) == cudaSuccess) g.name = prop.name;
  (void)cudaGetLastError();
  return g;
}

namespace nccl {

void fail_cuda(cudaError_t error, const char* call, const char* file, int line) {
  (void)cudaGetLastError();
  throw Error(std::string("CUDA error in ") + call + ": " + cuda_error_text(error) + " at " + file +
                  ":" + std::to_string(line),
              file, line);
}

bool is_device_pointer(const void* p) {
  if (!p) return false;
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

NcclComm::NcclComm(const Communicator& world, const Communicator& local, double stall_timeout_s,
                   int device)
    : rank_(world.rank()), size_(world.size()), stall_timeout_s_(stall_timeout_s) {
  // Decide together whether every rank can run NCCL before any rank waits in
  // a collective the others would not reach.
  std::string reason = nccl_unavailable_reason();
  int count = 0;
  if (reason.empty()) {
    HPCML_NCCL_CUDA(cudaGetDeviceCount(&count));
    if (device < 0 && local.size() > count) {
      reason = std::to_string(local.size()) + " ranks on this node but " + std::to_string(count) +
               " GPU(s): the NCCL transport needs one GPU per rank (start at most " +
               std::to_string(count) + " ranks per node)";
    } else if (device >= count) {
      reason = "device " + std::to_string(device) + " chosen but only " + std::to_string(count) +
               " GPU(s) visible";
    }
  }
  device_ = device < 0 ? local.rank() : device;
  // Two ranks of a node on one GPU (a launcher binding several tasks to the
  // same device, or parallel.gpu_sharing): NCCL refuses that at init with a
  // less helpful message. PCI bus ids, since bound tasks all call theirs 0.
  constexpr int kBusIdLen = 32;
  std::vector<char> ids(
      static_cast<std::size_t>(kBusIdLen) * static_cast<std::size_t>(local.size()), '\0');
  char* mine =
      ids.data() + static_cast<std::size_t>(kBusIdLen) * static_cast<std::size_t>(local.rank());
  if (reason.empty() && cudaDeviceGetPCIBusId(mine, kBusIdLen, device_) != cudaSuccess) {
    (void)cudaGetLastError();
    mine[0] = '\0';
  }
  HPCML_CHECK_MPI(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, ids.data(), kBusIdLen, MPI_CHAR,
                                local.get()));
  for (int r = 0; reason.empty() && mine[0] != '\0' && r < local.rank(); ++r) {
    const char* other =
        ids.data() + static_cast<std::size_t>(kBusIdLen) * static_cast<std::size_t>(r);
    if (std::strncmp(other, mine, kBusIdLen) == 0)
      reason = "node-local ranks " + std::to_string(r) + " and " + std::to_string(local.rank()) +
               " share GPU " + std::string(mine) +
               ": the NCCL transport needs one GPU per rank (parallel.gpu_sharing works with "
               "parallel.transport = \"mpi\" only)";
  }
  int ok = reason.empty() ? 1 : 0, all_ok = 0;
  HPCML_CHECK_MPI(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, world.get()));
  if (!ok) HPCML_THROW(NotAvailableError, "parallel.transport = \"nccl\": " + reason);
  if (!all_ok)
    HPCML_THROW(NotAvailableError,
                "parallel.transport = \"nccl\": NCCL cannot run on another rank of the job");

  HPCML_NCCL_CUDA(cudaSetDevice(device_));
  init(world.get());
  HPCML_NCCL_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

NcclComm::NcclComm(const Communicator& group, const NcclComm& parent)
    : stream_(parent.stream_),
      device_(parent.device_),
      rank_(group.rank()),
      size_(group.size()),
      stall_timeout_s_(parent.stall_timeout_s_),
      owns_stream_(false) {
  HPCML_NCCL_CUDA(cudaSetDevice(device_));
  init(group.get());
}

void NcclComm::init(MPI_Comm group) {
  // Rank 0's unique id over MPI, with its success: a failure is every rank's.
  struct {
    int ok;
    ncclUniqueId id;
  } msg{};
  char error[256] = {};
  if (rank_ == 0) {
    const ncclResult_t r = ncclGetUniqueId(&msg.id);
    msg.ok = r == ncclSuccess;
    if (!msg.ok) std::snprintf(error, sizeof error, "ncclGetUniqueId: %s", ncclGetErrorString(r));
  }
  HPCML_CHECK_MPI(MPI_Bcast(&msg, sizeof msg, MPI_BYTE, 0, group));
  HPCML_CHECK_MPI(MPI_Bcast(error, sizeof error, MPI_CHAR, 0, group));
  if (!msg.ok) HPCML_THROW(Error, std::string("NCCL transport: ") + error);

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // calls return ncclInProgress; wait() polls, so a dead peer cannot hang us
  HPCML_CHECK_NCCL(*this, ncclCommInitRankConfig(&comm_, size_, msg.id, rank_, &config));
}

NcclComm::~NcclComm() {
  if (comm_) {
    if (!aborted_) {
      // Drain the stream and finalize (non-blocking: poll), never waiting
      // unboundedly: a peer that died must not hang the exit. Any failure aborts.
      const double limit = stall_timeout_s_ > 0 ? stall_timeout_s_ : 60.0;
      const auto t0 = std::chrono::steady_clock::now();
      auto expired = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > limit;
      };
      bool clean = true;
      for (;;) {
        const cudaError_t q = cudaStreamQuery(stream_);
        if (q == cudaSuccess) break;
        ncclResult_t state = ncclSuccess;
        if (q != cudaErrorNotReady || ncclCommGetAsyncError(comm_, &state) != ncclSuccess ||
            (state != ncclSuccess && state != ncclInProgress) || expired()) {
          clean = false;
          break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      if (clean) {
        ncclResult_t r = ncclCommFinalize(comm_);
        while (r == ncclInProgress) {
          std::this_thread::sleep_for(std::chrono::microseconds(50));
          if (ncclCommGetAsyncError(comm_, &r) != ncclSuccess || expired()) r = ncclInternalError;
        }
        clean = r == ncclSuccess;
      }
      if (clean)
        (void)ncclCommDestroy(comm_);
      else
        (void)ncclCommAbort(comm_);
    }
    comm_ = nullptr;
  }
  if (stream_ && owns_stream_) (void)cudaStreamDestroy(stream_);
  (void)cudaGetLastError();
}

void NcclComm::abort_all() noexcept {
  for (NcclComm* c : {this, watched_}) {
    if (c && c->comm_ && !c->aborted_) {
      c->aborted_ = true;
      (void)ncclCommAbort(c->comm_);
    }
  }
}

ncclResult_t NcclComm::async_state(std::string& message) {
  for (NcclComm* c : {this, watched_}) {
    if (!c || !c->comm_) continue;
    ncclResult_t state = ncclSuccess;
    const ncclResult_t r = ncclCommGetAsyncError(c->comm_, &state);
    if (r != ncclSuccess) state = r;
    if (state != ncclSuccess && state != ncclInProgress) {
      const char* last = ncclGetLastError(c->comm_);
      message = std::string(ncclGetErrorString(state)) +
                (last && *last ? std::string(" (") + last + ")" : std::string()) +
                (c == this ? "" : " [node communicator]");
      return state;
    }
  }
  return ncclSuccess;
}

void NcclComm::stalled(const char* what, double waited_s) {
  // The stall inspector's outcome for NCCL: the communicator is aborted and the
  // job ends with the stall exit status, as for an MPI collective.
  abort_all();
  char line[512];
  std::snprintf(line, sizeof line,
                "hpcml: stall: NCCL %s waited %.1f s (parallel.stall_timeout_s) on rank %d: a peer "
                "has failed or stalled; NCCL communicator aborted (aborting the job)",
                what, waited_s, rank_);
  abort_job(line, exit_code::kStalled);
}

void NcclComm::ensure_alive() const {
  HPCML_REQUIRE(!aborted_, Error,
                "NCCL transport: the communicator was aborted after an earlier error");
}

void NcclComm::abort_with(const std::string& message) {
  abort_all();
  throw Error(message);
}

void NcclComm::check(ncclResult_t result, const char* call, const char* file, int line) {
  if (result == ncclInProgress) {
    settle(call);
    return;
  }
  if (result == ncclSuccess) return;
  const char* last = comm_ ? ncclGetLastError(comm_) : ncclGetLastError(nullptr);
  abort_with(std::string("NCCL error in ") + call + ": " + ncclGetErrorString(result) +
             (last && *last ? std::string(" (") + last + ")" : std::string()) + " at " + file +
             ":" + std::to_string(line) + "; communicator aborted");
}

void NcclComm::settle(const char* what) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
    if (r != ncclSuccess) state = r;
    if (state == ncclSuccess) return;
    if (state != ncclInProgress) {
      const char* last = ncclGetLastError(comm_);
      abort_with(std::string("NCCL error in ") + what + ": " + ncclGetErrorString(state) +
                 (last && *last ? std::string(" (") + last + ")" : std::string()) +
                 "; communicator aborted");
    }
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (timed_out(waited)) stalled(what, waited);
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

void NcclComm::wait(const char* what, cudaEvent_t until) {
  ensure_alive();
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    const cudaError_t q = until ? cudaEventQuery(until) : cudaStreamQuery(stream_);
    if (q == cudaSuccess) return;
    if (q != cudaErrorNotReady) {
      (void)cudaGetLastError();
      abort_with(std::string("CUDA error while waiting for ") + what + ": " + cuda_error_text(q) +
                 "; communicator aborted");
    }
    std::string message;
    if (async_state(message) != ncclSuccess)
      abort_with(std::string("NCCL error during ") + what + ": " + message +
                 "; a peer may have failed; communicator aborted");
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (timed_out(waited)) stalled(what, waited);
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

}  // namespace nccl

}  // namespace hpcml::comm

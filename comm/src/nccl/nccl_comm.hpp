// The NCCL communicator shared by the NCCL Collectives and the NCCL bench:
// device choice, unique id over MPI, non-blocking init, a communication stream,
// every call checked, and the polling wait that turns a failed or stalled peer
// into an error (and an aborted communicator) instead of a hang.
// Compiled only with HPCML_HAS_NCCL.
#pragma once

#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include <cstddef>
#include <string>

#include "hpcml/core/error.hpp"

namespace hpcml::comm {
class Communicator;
}

namespace hpcml::comm::nccl {

[[noreturn]] void fail_cuda(cudaError_t error, const char* call, const char* file, int line);

/// Checks a CUDA runtime call: an Error naming the call, CUDA's error name and
/// string, the file and the line.
#define HPCML_NCCL_CUDA(call)                                                       \
  do {                                                                              \
    const cudaError_t hpcml_cuda_error_ = (call);                                   \
    if (hpcml_cuda_error_ != cudaSuccess)                                           \
      ::hpcml::comm::nccl::fail_cuda(hpcml_cuda_error_, #call, __FILE__, __LINE__); \
  } while (0)

/// Checks an NCCL call on communicator object `c` (NcclComm): ncclInProgress
/// (non-blocking communicator) is waited for with the polling loop; any error
/// aborts the communicator and throws, naming the call, NCCL's error string,
/// its last-error text, the file and the line.
#define HPCML_CHECK_NCCL(c, call) (c).check((call), #call, __FILE__, __LINE__)

/// True when `p` is device (or managed) memory of the CUDA runtime.
bool is_device_pointer(const void* p);

/// The NCCL data type of float / double.
template <class T>
constexpr ncclDataType_t data_type() {
  return sizeof(T) == sizeof(double) ? ncclDouble : ncclFloat;
}

class NcclComm {
 public:
  /// Collective over `world`: checks on every rank that NCCL can run
  /// (require_nccl; agreed with MPI first so no rank is left in a collective),
  /// uses `device` (the compute backend's GPU, chosen by the same rules:
  /// kernels::cuda_choose_device) or, when it is -1, device local.rank(),
  /// refusing more ranks on a node than GPUs; refuses two ranks of a node on
  /// one GPU (same PCI bus id: NCCL cannot), sends rank 0's unique id and
  /// creates a non-blocking communicator.
  /// `stall_timeout_s` bounds every wait (0 = wait forever, still polling).
  NcclComm(const Communicator& world, const Communicator& local, double stall_timeout_s,
           int device = -1);
  /// A second communicator over `group` (a subset of `parent`'s ranks, e.g.
  /// one node's ranks for the hierarchical path), on `parent`'s device and
  /// stream (so its work is ordered with the parent's on one stream, and
  /// parent.wait() covers it), with the group's rank 0's unique id sent over
  /// `group`. Collective over `group`. `parent` must outlive it; call
  /// parent.watch(*this) so the parent's waits poll its errors too.
  NcclComm(const Communicator& group, const NcclComm& parent);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  ncclComm_t get() const { return comm_; }
  cudaStream_t stream() const { return stream_; }
  int device() const { return device_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

  void check(ncclResult_t result, const char* call, const char* file, int line);
  /// Waits for everything queued on stream() (or, given `until`, for that
  /// event), polling the stream and ncclCommGetAsyncError of this and every
  /// watched communicator (an error aborts them and throws); after
  /// stall_timeout_s the communicators and the job are aborted (stalled()).
  void wait(const char* what, cudaEvent_t until = nullptr);
  /// Polls `other`'s asynchronous errors in wait() too (it shares the
  /// stream); nullptr stops that.
  void watch(NcclComm* other) { watched_ = other; }
  /// Throws (and aborts the communicator first) with `message`.
  [[noreturn]] void abort_with(const std::string& message);
  /// Throws if an earlier error aborted the communicator.
  void ensure_alive() const;

 private:
  /// Rank 0 of `group`'s unique id over `group`, then the non-blocking
  /// communicator of rank_ among size_ (set by the caller).
  void init(MPI_Comm group);
  void settle(const char* what);
  /// The asynchronous error state of this communicator, or of the watched one
  /// when that has failed (its message in `message`): ncclSuccess,
  /// ncclInProgress, or the error.
  ncclResult_t async_state(std::string& message);
  void abort_all() noexcept;
  /// After stall_timeout_s: aborts the communicator and the job (exit status
  /// kStalled, one "hpcml: stall: NCCL ..." line).
  [[noreturn]] void stalled(const char* what, double waited_s);
  bool timed_out(double waited_s) const {
    return stall_timeout_s_ > 0 && waited_s > stall_timeout_s_;
  }

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int device_ = -1;
  int rank_ = 0;
  int size_ = 1;
  double stall_timeout_s_ = 0;
  bool aborted_ = false;
  bool owns_stream_ = true;
  NcclComm* watched_ = nullptr;
};

/// cudaMalloc'ed array, freed on destruction. Move-only.
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(std::size_t count) : count_(count) {
    if (count > 0) HPCML_NCCL_CUDA(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T)));
  }
  ~DeviceArray() {
    if (data_) (void)cudaFree(data_);
  }
  DeviceArray(DeviceArray&& o) noexcept : data_(o.data_), count_(o.count_) {
    o.data_ = nullptr;
    o.count_ = 0;
  }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      if (data_) (void)cudaFree(data_);
      data_ = o.data_;
      count_ = o.count_;
      o.data_ = nullptr;
      o.count_ = 0;
    }
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* data() const { return data_; }
  std::size_t size() const { return count_; }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace hpcml::comm::nccl

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
  /// selects device local.rank(), refuses more ranks on a node than GPUs,
  /// sends rank 0's unique id and creates a non-blocking communicator.
  /// `stall_timeout_s` bounds every wait (0 = wait forever, still polling).
  NcclComm(const Communicator& world, const Communicator& local, double stall_timeout_s);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  ncclComm_t get() const { return comm_; }
  cudaStream_t stream() const { return stream_; }
  int device() const { return device_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

  void check(ncclResult_t result, const char* call, const char* file, int line);
  /// Waits for everything queued on stream(), polling the stream and
  /// ncclCommGetAsyncError (an error aborts the communicator and throws);
  /// after stall_timeout_s the communicator and the job are aborted (stalled()).
  void wait(const char* what);
  /// Throws (and aborts the communicator first) with `message`.
  [[noreturn]] void abort_with(const std::string& message);
  /// Throws if an earlier error aborted the communicator.
  void ensure_alive() const;

 private:
  void settle(const char* what);
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

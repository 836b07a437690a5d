// Checked CUDA and cuBLAS calls and RAII owners of their handles (kernels/cuda
// only). Every failure throws hpcml::Error naming the call, the error string,
// and the file and line of the call.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

namespace hpcml::kernels::cuda {

[[noreturn]] void throw_cuda_error(const char* call, cudaError_t err, const char* file, int line);
[[noreturn]] void throw_cublas_error(const char* call, cublasStatus_t status, const char* file,
                                     int line);

}  // namespace hpcml::kernels::cuda

#define HPCML_CHECK_CUDA(call)                                                         \
  do {                                                                                 \
    const cudaError_t hpcml_err_ = (call);                                             \
    if (hpcml_err_ != cudaSuccess)                                                     \
      ::hpcml::kernels::cuda::throw_cuda_error(#call, hpcml_err_, __FILE__, __LINE__); \
  } while (0)

#define HPCML_CHECK_CUBLAS(call)                                                            \
  do {                                                                                      \
    const cublasStatus_t hpcml_status_ = (call);                                            \
    if (hpcml_status_ != CUBLAS_STATUS_SUCCESS)                                             \
      ::hpcml::kernels::cuda::throw_cublas_error(#call, hpcml_status_, __FILE__, __LINE__); \
  } while (0)

namespace hpcml::kernels::cuda {

/// One owned handle: `Traits::destroy(h)` in the destructor (errors ignored:
/// destructors never throw). Move-only.
template <class Handle, class Traits>
class Owned {
 public:
  Owned() = default;
  explicit Owned(Handle h) : h_(h) {}
  ~Owned() { reset(); }
  Owned(Owned&& o) noexcept : h_(std::exchange(o.h_, Handle{})) {}
  Owned& operator=(Owned&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, Handle{});
    }
    return *this;
  }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  Handle get() const { return h_; }
  explicit operator bool() const { return h_ != Handle{}; }
  void reset() noexcept {
    if (h_ != Handle{}) Traits::destroy(h_);
    h_ = Handle{};
  }

 private:
  Handle h_{};
};

struct StreamTraits {
  static void destroy(cudaStream_t s) noexcept { (void)cudaStreamDestroy(s); }
};
struct EventTraits {
  static void destroy(cudaEvent_t e) noexcept { (void)cudaEventDestroy(e); }
};
struct CublasTraits {
  static void destroy(cublasHandle_t h) noexcept { (void)cublasDestroy(h); }
};
struct DeviceMemoryTraits {
  static void destroy(void* p) noexcept { (void)cudaFree(p); }
};
struct PinnedMemoryTraits {
  static void destroy(void* p) noexcept { (void)cudaFreeHost(p); }
};

using Stream = Owned<cudaStream_t, StreamTraits>;
using Event = Owned<cudaEvent_t, EventTraits>;
using CublasHandle = Owned<cublasHandle_t, CublasTraits>;
using DeviceMemory = Owned<void*, DeviceMemoryTraits>;
using PinnedMemory = Owned<void*, PinnedMemoryTraits>;

/// A stream that does not synchronize with the legacy default stream.
Stream make_stream();
/// An event for ordering (timing off) or, with `timing`, for cudaEventElapsedTime.
Event make_event(bool timing = false);
/// `bytes` of device memory (at least 256, so never null), not initialized.
DeviceMemory make_device_memory(std::size_t bytes);
/// `bytes` of pinned host memory (at least 64), not initialized.
PinnedMemory make_pinned_memory(std::size_t bytes);

/// Device memory that only grows; the contents are not kept when it does.
/// Growing waits for the device first: queued kernels may still use the old
/// memory, and cudaFree only "may" synchronize.
class Scratch {
 public:
  void* get(std::size_t bytes) {
    if (bytes > size_ || !mem_) {
      if (mem_) {
        HPCML_CHECK_CUDA(cudaDeviceSynchronize());
        mem_.reset();  // before the new allocation: the peak stays one buffer
      }
      mem_ = make_device_memory(bytes);
      size_ = bytes;
    }
    return mem_.get();
  }

 private:
  DeviceMemory mem_;
  std::size_t size_ = 0;
};

}  // namespace hpcml::kernels::cuda

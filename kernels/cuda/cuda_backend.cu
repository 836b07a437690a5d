// The cuda backend (docs/gpu.md): every buffer in device memory, GEMMs through
// cuBLAS, the other kernels as CUDA kernels below.
//
// Streams: all kernels, cuBLAS calls and copies that the Backend contract
// orders with kernels run on one compute stream. A second (copy) stream moves
// the next batch in from pinned memory while the current step computes
// (prefetch_batch); events order the two. The host waits only where a value
// must come back: softmax_xent's loss, sum_squares, copy_to_host, synchronize.
//
// Determinism: no atomics. Every reduction has a fixed shape (a fixed grid and
// a fixed tree in shared memory, or one thread summing in index order), so the
// same inputs give the same bits on the same GPU. Built with --fmad=false, so
// elementwise kernels round as the host does (the same bits as the reference
// backend for the optimizer, bias and ReLU kernels).
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends.hpp"
#include "cuda_check.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/kernels/cuda.hpp"

namespace hpcml::kernels::cuda {

void throw_cuda_error(const char* call, cudaError_t err, const char* file, int line) {
  HPCML_THROW(Error, std::string("cuda: ") + call + " failed: " + cudaGetErrorString(err) + " (" +
                         cudaGetErrorName(err) + ") at " + file + ":" + std::to_string(line));
}

void throw_cublas_error(const char* call, cublasStatus_t status, const char* file, int line) {
  HPCML_THROW(Error, std::string("cuda: ") + call + " failed: " + cublasGetStatusString(status) +
                         " (" + cublasGetStatusName(status) + ") at " + file + ":" +
                         std::to_string(line));
}

Stream make_stream() {
  cudaStream_t s = nullptr;
  HPCML_CHECK_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return Stream(s);
}

Event make_event(bool timing) {
  cudaEvent_t e = nullptr;
  HPCML_CHECK_CUDA(
      cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return Event(e);
}

DeviceMemory make_device_memory(std::size_t bytes) {
  void* p = nullptr;
  HPCML_CHECK_CUDA(cudaMalloc(&p, bytes < 256 ? 256 : bytes));
  return DeviceMemory(p);
}

PinnedMemory make_pinned_memory(std::size_t bytes) {
  void* p = nullptr;
  HPCML_CHECK_CUDA(cudaMallocHost(&p, bytes < 64 ? 64 : bytes));
  return PinnedMemory(p);
}

namespace {

constexpr int kBlock = 256;
// Fixed grid of the two-pass reductions: the result does not depend on the GPU.
constexpr int kReduceBlocks = 256;

unsigned grid_for(std::size_t n) {
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  return static_cast<unsigned>(blocks < 65535 * 64 ? (blocks == 0 ? 1 : blocks) : 65535 * 64);
}

// ---- elementwise kernels (grid-stride loops) ---------------------------------

#define HPCML_GRID_LOOP(i, n)                                                                    \
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)

__global__ void add_bias_kernel(float* y, const float* bias, std::size_t rows, std::size_t cols) {
  HPCML_GRID_LOOP(i, rows * cols) { y[i] += bias[i % cols]; }
}

__global__ void relu_kernel(float* y, std::size_t n) {
  HPCML_GRID_LOOP(i, n) { y[i] = y[i] > 0.0f ? y[i] : 0.0f; }
}

__global__ void relu_backward_kernel(float* dy, const float* y, std::size_t n) {
  HPCML_GRID_LOOP(i, n) { dy[i] = y[i] > 0.0f ? dy[i] : 0.0f; }
}

// One thread per column, rows in order: the reference backend's order.
__global__ void column_sums_kernel(const float* x, std::size_t rows, std::size_t cols, float* out) {
  HPCML_GRID_LOOP(j, cols) {
    float sum = 0.0f;
    for (std::size_t i = 0; i < rows; ++i) sum += x[i * cols + j];
    out[j] = sum;
  }
}

// Tall matrices: blockIdx.y = a chunk of kColumnChunk rows, summed in order per
// column; then column_sums_kernel over the chunk partials, in chunk order. The
// shape depends on rows and cols only, so the bits do not depend on the GPU.
constexpr std::size_t kColumnChunk = 256;
__global__ void column_chunk_sums_kernel(const float* x, std::size_t rows, std::size_t cols,
                                         float* partial) {
  const std::size_t j = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  // gridDim.y is at most 65535: a block strides over the chunks beyond.
  const std::size_t chunks = (rows + kColumnChunk - 1) / kColumnChunk;
  for (std::size_t c = blockIdx.y; c < chunks; c += gridDim.y) {
    const std::size_t begin = c * kColumnChunk;
    const std::size_t end = begin + kColumnChunk < rows ? begin + kColumnChunk : rows;
    float sum = 0.0f;
    for (std::size_t i = begin; i < end; ++i) sum += x[i * cols + j];
    partial[c * cols + j] = sum;
  }
}

__global__ void sgd_momentum_kernel(float* w, const float* g, float* v, std::size_t n, float lr,
                                    float momentum, float weight_decay) {
  HPCML_GRID_LOOP(i, n) {
    const float grad = g[i] + weight_decay * w[i];
    v[i] = momentum * v[i] + grad;
    w[i] -= lr * v[i];
  }
}

__global__ void sgd_nesterov_kernel(float* w, const float* g, float* v, std::size_t n, float lr,
                                    float momentum, float weight_decay) {
  HPCML_GRID_LOOP(i, n) {
    const float grad = g[i] + weight_decay * w[i];
    v[i] = momentum * v[i] + grad;
    w[i] -= lr * (grad + momentum * v[i]);
  }
}

__global__ void adam_direction_kernel(const float* w, const float* g, float* m, float* v, float* u,
                                      std::size_t n, float b1, float b2, float eps, float c1,
                                      float c2, float l2, float decoupled) {
  HPCML_GRID_LOOP(i, n) {
    const float grad = g[i] + l2 * w[i];
    m[i] = b1 * m[i] + (1.0f - b1) * grad;
    v[i] = b2 * v[i] + (1.0f - b2) * grad * grad;
    u[i] = (m[i] / c1) / (sqrtf(v[i] / c2) + eps) + decoupled * w[i];
  }
}

__global__ void axpy_kernel(float* w, const float* x, std::size_t n, float alpha) {
  HPCML_GRID_LOOP(i, n) { w[i] += alpha * x[i]; }
}

__global__ void lars_momentum_kernel(float* w, const float* g, float* v, std::size_t n,
                                     float local_lr, float momentum, float weight_decay) {
  HPCML_GRID_LOOP(i, n) {
    v[i] = momentum * v[i] + local_lr * (g[i] + weight_decay * w[i]);
    w[i] -= v[i];
  }
}

__global__ void scale_kernel(float* x, std::size_t n, float alpha) {
  HPCML_GRID_LOOP(i, n) { x[i] *= alpha; }
}

// C = beta * C for a GEMM with k == 0 (beta == 0 writes zeros, as BLAS does).
__global__ void scale_matrix_kernel(float* c, std::size_t m, std::size_t n, std::size_t ldc,
                                    float beta) {
  HPCML_GRID_LOOP(i, m * n) {
    float& x = c[(i / n) * ldc + i % n];
    x = beta == 0.0f ? 0.0f : beta * x;
  }
}

__global__ void to_bf16_kernel(const float* x, __nv_bfloat16* y, std::size_t n) {
  HPCML_GRID_LOOP(i, n) { y[i] = __float2bfloat16_rn(x[i]); }
}

__global__ void to_fp16_kernel(const float* x, __half* y, std::size_t n) {
  HPCML_GRID_LOOP(i, n) { y[i] = __float2half_rn(x[i]); }
}

// The hash of Backend::dropout (core/src/backend.cpp): the same mask bits.
__global__ void dropout_kernel(float* y, std::size_t n, float scale, std::uint64_t threshold,
                               std::uint64_t seed) {
  HPCML_GRID_LOOP(i, n) {
    std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    y[i] = (z >> 11) >= threshold ? y[i] * scale : 0.0f;
  }
}

// ---- convolution kernels -------------------------------------------------------

__global__ void im2col_kernel(const float* x, Backend::ConvShape s, float* cols) {
  const std::size_t row = s.k * s.k * s.c;
  HPCML_GRID_LOOP(i, s.n * s.oh * s.ow * row) {
    const std::size_t r = i / row, q = i % row;
    const std::size_t ci = q % s.c, kx = (q / s.c) % s.k, ky = q / (s.c * s.k);
    const std::size_t ox = r % s.ow, oy = (r / s.ow) % s.oh, n = r / (s.ow * s.oh);
    const long long iy = static_cast<long long>(oy * s.stride + ky) - static_cast<long long>(s.pad);
    const long long ix = static_cast<long long>(ox * s.stride + kx) - static_cast<long long>(s.pad);
    float v = 0.0f;
    if (iy >= 0 && ix >= 0 && iy < static_cast<long long>(s.h) && ix < static_cast<long long>(s.w))
      v = x[((n * s.h + static_cast<std::size_t>(iy)) * s.w + static_cast<std::size_t>(ix)) * s.c +
            ci];
    cols[i] = v;
  }
}

// Gather form of col2im: each dx element sums its contributions in the order
// the host adds them (output position (oy, ox) ascending), from 0.
__global__ void col2im_kernel(const float* cols, Backend::ConvShape s, float* dx) {
  const std::size_t row = s.k * s.k * s.c;
  HPCML_GRID_LOOP(i, s.n * s.h * s.w * s.c) {
    const std::size_t ci = i % s.c, x = (i / s.c) % s.w, y = (i / (s.c * s.w)) % s.h,
                      n = i / (s.c * s.w * s.h);
    float sum = 0.0f;
    const long long ys = static_cast<long long>(y + s.pad), xs = static_cast<long long>(x + s.pad);
    const long long k = static_cast<long long>(s.k), st = static_cast<long long>(s.stride);
    for (long long oy = 0; oy < static_cast<long long>(s.oh); ++oy) {
      const long long ky = ys - oy * st;
      if (ky < 0) break;
      if (ky >= k) continue;
      for (long long ox = 0; ox < static_cast<long long>(s.ow); ++ox) {
        const long long kx = xs - ox * st;
        if (kx < 0) break;
        if (kx >= k) continue;
        const std::size_t r =
            (n * s.oh + static_cast<std::size_t>(oy)) * s.ow + static_cast<std::size_t>(ox);
        sum += cols[r * row +
                    (static_cast<std::size_t>(ky) * s.k + static_cast<std::size_t>(kx)) * s.c + ci];
      }
    }
    dx[i] = sum;
  }
}

__global__ void maxpool_kernel(const float* x, std::size_t n, std::size_t h, std::size_t w,
                               std::size_t c, std::size_t size, float* y, std::uint32_t* argmax) {
  const std::size_t oh = h / size, ow = w / size;
  HPCML_GRID_LOOP(o, n * oh * ow * c) {
    const std::size_t ci = o % c, ox = (o / c) % ow, oy = (o / (c * ow)) % oh,
                      s = o / (c * ow * oh);
    std::size_t best = ((s * h + oy * size) * w + ox * size) * c + ci;
    for (std::size_t ky = 0; ky < size; ++ky) {
      for (std::size_t kx = 0; kx < size; ++kx) {
        const std::size_t i = ((s * h + oy * size + ky) * w + ox * size + kx) * c + ci;
        if (x[i] > x[best]) best = i;
      }
    }
    y[o] = x[best];
    argmax[o] = static_cast<std::uint32_t>(best);
  }
}

// Max-pool windows do not overlap, so no two outputs name the same input: each
// thread owns its target and the result needs no atomics.
__global__ void maxpool_backward_kernel(const float* dy, const std::uint32_t* argmax,
                                        std::size_t count, float* dx) {
  HPCML_GRID_LOOP(i, count) { dx[argmax[i]] += dy[i]; }
}

// ---- reductions ----------------------------------------------------------------

// Fixed-shape tree over one block's shared values (blockDim.x == kBlock).
template <class T>
__device__ T block_sum(T* shared, T v) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  return shared[0];
}

// Pass 1: block b sums x[i]^2 for i = b*kBlock + t + j*(kReduceBlocks*kBlock), in order.
__global__ void sum_squares_partial_kernel(const float* x, std::size_t n, double* partial) {
  __shared__ double shared[kBlock];
  double s = 0.0;
  HPCML_GRID_LOOP(i, n) { s += static_cast<double>(x[i]) * x[i]; }
  const double total = block_sum(shared, s);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// Pass 2 (one block): the kReduceBlocks partials, fixed tree.
__global__ void sum_partials_kernel(const double* partial, int count, double* out) {
  __shared__ double shared[kBlock];
  double s = 0.0;
  for (int i = static_cast<int>(threadIdx.x); i < count; i += kBlock) s += partial[i];
  const double total = block_sum(shared, s);
  if (threadIdx.x == 0) *out = total;
}

struct XentResult {
  double loss;
  unsigned long long hits;
  unsigned long long bad_row;  // first row with a label outside [0, classes), or ~0
  std::int32_t bad_label;
};

constexpr unsigned long long kNoBadRow = ~0ULL;

// One block: the first row whose label is out of range, before anything is written.
__global__ void check_labels_kernel(const std::int32_t* labels, std::size_t rows,
                                    std::size_t classes, XentResult* result) {
  __shared__ unsigned long long shared[kBlock];
  unsigned long long first = kNoBadRow;
  for (std::size_t i = threadIdx.x; i < rows; i += kBlock) {
    if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= classes) {
      first = i;
      break;
    }
  }
  shared[threadIdx.x] = first;
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride &&
        shared[threadIdx.x + stride] < shared[threadIdx.x])
      shared[threadIdx.x] = shared[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    result->bad_row = shared[0];
    result->bad_label = shared[0] == kNoBadRow ? 0 : labels[shared[0]];
  }
}

// One thread per row, in double as the reference backend computes it.
__global__ void softmax_xent_rows_kernel(const float* logits, const std::int32_t* labels,
                                         std::size_t rows, std::size_t classes, float grad_scale,
                                         float* dlogits, double* row_loss, unsigned* row_hit,
                                         const XentResult* result) {
  if (result->bad_row != kNoBadRow) return;
  HPCML_GRID_LOOP(i, rows) {
    const float* x = logits + i * classes;
    const auto label = static_cast<std::size_t>(labels[i]);
    std::size_t argmax = 0;
    for (std::size_t j = 1; j < classes; ++j)
      if (x[j] > x[argmax]) argmax = j;
    row_hit[i] = argmax == label ? 1u : 0u;
    const double max = x[argmax];
    double denom = 0.0;
    for (std::size_t j = 0; j < classes; ++j) denom += exp(static_cast<double>(x[j]) - max);
    row_loss[i] = log(denom) - (static_cast<double>(x[label]) - max);
    if (dlogits != nullptr) {
      for (std::size_t j = 0; j < classes; ++j) {
        double p = exp(static_cast<double>(x[j]) - max) / denom;
        if (j == label) p -= 1.0;
        dlogits[i * classes + j] = static_cast<float>(p * static_cast<double>(grad_scale));
      }
    }
  }
}

// One block: thread t sums rows t, t + kBlock, ... in order, then a fixed tree.
__global__ void softmax_xent_sum_kernel(const double* row_loss, const unsigned* row_hit,
                                        std::size_t rows, XentResult* result) {
  __shared__ double shared_loss[kBlock];
  __shared__ unsigned long long shared_hits[kBlock];
  if (result->bad_row != kNoBadRow) return;  // uniform across the block
  double loss = 0.0;
  unsigned long long hits = 0;
  for (std::size_t i = threadIdx.x; i < rows; i += kBlock) {
    loss += row_loss[i];
    hits += row_hit[i];
  }
  const double total = block_sum(shared_loss, loss);
  const unsigned long long total_hits = block_sum(shared_hits, hits);
  if (threadIdx.x == 0) {
    result->loss = total;
    result->hits = total_hits;
  }
}

#undef HPCML_GRID_LOOP

// ---- the backend -----------------------------------------------------------------

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const DevicePlacement& placement) {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
      (void)cudaGetLastError();  // clear the sticky "no device" state
      HPCML_THROW(
          NotAvailableError,
          std::string("cuda: compiled, but no CUDA device is visible (cudaGetDeviceCount: ") +
              (err != cudaSuccess ? cudaGetErrorString(err) : "0 devices") + ")");
    }
    device_ = cuda_choose_device(placement, count);
    HPCML_CHECK_CUDA(cudaSetDevice(device_));
    compute_ = make_stream();
    copy_ = make_stream();
    cublasHandle_t h = nullptr;
    HPCML_CHECK_CUBLAS(cublasCreate(&h));
    cublas_ = CublasHandle(h);
    HPCML_CHECK_CUBLAS(cublasSetStream(cublas_.get(), compute_.get()));
    // An explicit workspace for the one stream cuBLAS runs on keeps its
    // results reproducible (cuBLAS docs, "Results reproducibility").
    workspace_ = make_device_memory(kCublasWorkspace);
    HPCML_CHECK_CUBLAS(cublasSetWorkspace(cublas_.get(), workspace_.get(), kCublasWorkspace));
    // Default math: fp32 GEMMs stay fp32 (TF32 only through GemmPrecision::kTf32).
    HPCML_CHECK_CUBLAS(cublasSetMathMode(cublas_.get(), CUBLAS_DEFAULT_MATH));
    result_host_ = make_pinned_memory(sizeof(XentResult));
    result_dev_ = make_device_memory(sizeof(XentResult));
    partial_dev_ = make_device_memory(kReduceBlocks * sizeof(double));
    for (auto& slot : slots_) {
      slot.ready = make_event();
      slot.consumed = make_event();
    }
  }

  ~CudaBackend() override {
    // The destroying thread may not be the constructing one: the frees below
    // belong to this device. Nothing may still be reading or writing memory
    // that is about to be freed.
    (void)cudaSetDevice(device_);
    (void)cudaStreamSynchronize(copy_.get());
    (void)cudaStreamSynchronize(compute_.get());
  }

  std::string name() const override { return "cuda"; }
  int threads() const override { return 1; }
  MemorySpace memory_space() const override { return MemorySpace::kDevice; }
  int device() const { return device_; }
  cudaStream_t compute_stream() const { return compute_.get(); }

  // ---- memory ---------------------------------------------------------------
  void* allocate(std::size_t bytes) override {
    HPCML_CHECK_CUDA(cudaSetDevice(device_));
    void* p = nullptr;
    HPCML_CHECK_CUDA(cudaMalloc(&p, bytes == 0 ? 256 : bytes));
    HPCML_CHECK_CUDA(cudaMemsetAsync(p, 0, bytes == 0 ? 256 : bytes, compute_.get()));
    return p;
  }
  // cudaFree and cudaFreeHost "may" synchronize (CUDA docs), so not surely:
  // kernels or copies queued on either stream may still use the memory
  // (a buffer that grows frees its old storage right after queuing work on it).
  void deallocate(void* p) noexcept override {
    if (!p) return;
    (void)cudaSetDevice(device_);
    (void)cudaStreamSynchronize(copy_.get());
    (void)cudaStreamSynchronize(compute_.get());
    (void)cudaFree(p);
  }
  void* allocate_host(std::size_t bytes) override {
    HPCML_CHECK_CUDA(cudaSetDevice(device_));
    void* p = nullptr;
    HPCML_CHECK_CUDA(cudaMallocHost(&p, bytes == 0 ? 64 : bytes));
    std::memset(p, 0, bytes == 0 ? 64 : bytes);
    return p;
  }
  void deallocate_host(void* p) noexcept override {
    if (!p) return;
    (void)cudaSetDevice(device_);
    (void)cudaStreamSynchronize(copy_.get());
    (void)cudaStreamSynchronize(compute_.get());
    (void)cudaFreeHost(p);
  }
  void copy_from_host(void* dst, const void* src, std::size_t bytes) override {
    if (bytes == 0) return;
    HPCML_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, compute_.get()));
    // From pageable memory the call returns once the source is staged; from
    // pinned memory it may not have been read yet, and the caller may reuse it.
    cudaPointerAttributes attr{};
    if (cudaPointerGetAttributes(&attr, src) == cudaSuccess && attr.type == cudaMemoryTypeHost)
      HPCML_CHECK_CUDA(cudaStreamSynchronize(compute_.get()));
    (void)cudaGetLastError();
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    if (bytes == 0) return;
    HPCML_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, compute_.get()));
    HPCML_CHECK_CUDA(cudaStreamSynchronize(compute_.get()));
  }
  void copy(void* dst, const void* src, std::size_t bytes) override {
    if (bytes == 0) return;
    HPCML_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, compute_.get()));
  }
  void fill_zero(void* p, std::size_t bytes) override {
    if (bytes == 0) return;
    HPCML_CHECK_CUDA(cudaMemsetAsync(p, 0, bytes, compute_.get()));
  }
  void synchronize() override {
    HPCML_CHECK_CUDA(cudaStreamSynchronize(copy_.get()));
    HPCML_CHECK_CUDA(cudaStreamSynchronize(compute_.get()));
  }

  // ---- batches --------------------------------------------------------------
  // Three slots, each a pinned host buffer and a device buffer: the one the
  // last upload_batch() returned (current_), and two for prefetches. Callers
  // prefetch the next batch either after uploading the current one (upload,
  // prefetch, compute, upload) or, as core's trainer does, before it (prefetch
  // next, upload current, compute): with two slots the second order made every
  // upload miss and overwrite the slot the prefetch had just filled.
  // Both calls come from one thread at a time (not concurrently).
  void prefetch_batch(const Batch& batch) override {
    // The caller may be a reader thread, whose current device is its own.
    HPCML_CHECK_CUDA(cudaSetDevice(device_));
    const int s = free_slot();
    Slot& slot = slots_[s];
    // The pinned buffer may still feed this slot's previous copy.
    wait_copy(slot);
    stage(slot, batch);
    if (!batch.x.empty())
      std::memcpy(slot.host_x.get(), batch.x.data(), batch.x.size() * sizeof(float));
    if (!batch.y.empty())
      std::memcpy(slot.host_y.get(), batch.y.data(), batch.y.size() * sizeof(std::int32_t));
    // The device buffers may still be read by kernels of the step that used this slot.
    HPCML_CHECK_CUDA(cudaStreamWaitEvent(copy_.get(), slot.consumed.get(), 0));
    HPCML_CHECK_CUDA(cudaMemcpyAsync(slot.dev_x.get(), slot.host_x.get(),
                                     batch.x.size() * sizeof(float), cudaMemcpyHostToDevice,
                                     copy_.get()));
    HPCML_CHECK_CUDA(cudaMemcpyAsync(slot.dev_y.get(), slot.host_y.get(),
                                     batch.y.size() * sizeof(std::int32_t), cudaMemcpyHostToDevice,
                                     copy_.get()));
    HPCML_CHECK_CUDA(cudaEventRecord(slot.ready.get(), copy_.get()));
    slot.copy_recorded = true;
    slot.prefetched = ++prefetch_seq_;
    slot.batch = &batch;
    slot.x_data = batch.x.data();
    slot.x_size = batch.x.size();
    slot.y_size = batch.y.size();
  }

  BatchView upload_batch(const Batch& batch) override {
    int s = -1;
    for (int i = 0; i < kSlots; ++i) {
      const Slot& slot = slots_[i];
      if (i != current_ && slot.prefetched != 0 && slot.batch == &batch &&
          slot.x_data == batch.x.data() && slot.x_size == batch.x.size() &&
          slot.y_size == batch.y.size())
        s = i;
    }
    if (s >= 0) {
      HPCML_CHECK_CUDA(cudaStreamWaitEvent(compute_.get(), slots_[s].ready.get(), 0));
      ++prefetch_hits_;
    } else {
      // Nothing (or another batch) was prefetched: copy on the compute stream.
      s = free_slot();
      Slot& slot = slots_[s];
      wait_copy(slot);  // a prefetch into this slot's device buffer may be in flight
      stage(slot, batch);
      HPCML_CHECK_CUDA(cudaMemcpyAsync(slot.dev_x.get(), batch.x.data(),
                                       batch.x.size() * sizeof(float), cudaMemcpyHostToDevice,
                                       compute_.get()));
      HPCML_CHECK_CUDA(cudaMemcpyAsync(slot.dev_y.get(), batch.y.data(),
                                       batch.y.size() * sizeof(std::int32_t),
                                       cudaMemcpyHostToDevice, compute_.get()));
      // A copy from pageable memory returns once the source is staged: the
      // caller may change the batch afterwards.
    }
    // Work queued so far is all that reads the previous current slot's batch.
    if (current_ >= 0)
      HPCML_CHECK_CUDA(cudaEventRecord(slots_[current_].consumed.get(), compute_.get()));
    slots_[s].prefetched = 0;
    slots_[s].batch = nullptr;
    current_ = s;
    return {static_cast<const float*>(slots_[s].dev_x.get()),
            static_cast<const std::int32_t*>(slots_[s].dev_y.get())};
  }

  std::size_t prefetch_hits() const { return prefetch_hits_; }

  // ---- GEMM -----------------------------------------------------------------
  void set_gemm_precision(GemmPrecision p) override { gemm_precision_ = p; }

  void set_gemm_timing(bool on) {
    if (!on) take_gemm_ms();
    timing_ = on;
  }

  double take_gemm_ms() {
    HPCML_CHECK_CUDA(cudaStreamSynchronize(compute_.get()));
    double ms = 0;
    for (std::size_t i = 0; i < timed_; ++i) {
      float t = 0;
      HPCML_CHECK_CUDA(cudaEventElapsedTime(&t, timers_[i].first.get(), timers_[i].second.get()));
      ms += t;
    }
    timed_ = 0;
    return ms;
  }

  void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
            const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
            std::size_t ldc) override {
    detail::check_gemm_args("cuda", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    if (m == 0 || n == 0) return;
    if (k == 0) {
      scale_matrix_kernel<<<grid_for(m * n), kBlock, 0, compute_.get()>>>(c, m, n, ldc, beta);
      HPCML_CHECK_CUDA(cudaGetLastError());
      return;
    }
    // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
    const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int im = to_int(m), in = to_int(n), ik = to_int(k);
    const int ilda = to_int(lda), ildb = to_int(ldb), ildc = to_int(ldc);
    // Elements the stored matrices span (the last row needs only its columns).
    const std::size_t a_elems = ((trans_a ? k : m) - 1) * lda + (trans_a ? m : k);
    const std::size_t b_elems = ((trans_b ? n : k) - 1) * ldb + (trans_b ? k : n);
    cudaEvent_t start = nullptr, stop = nullptr;
    if (timing_) next_timer(start, stop);
    if (start) HPCML_CHECK_CUDA(cudaEventRecord(start, compute_.get()));
    switch (gemm_precision_) {
      case GemmPrecision::kFp32:
        HPCML_CHECK_CUBLAS(cublasSgemm(cublas_.get(), op_b, op_a, in, im, ik, &alpha, b, ildb, a,
                                       ilda, &beta, c, ildc));
        break;
      case GemmPrecision::kTf32:
        HPCML_CHECK_CUBLAS(cublasGemmEx(cublas_.get(), op_b, op_a, in, im, ik, &alpha, b,
                                        CUDA_R_32F, ildb, a, CUDA_R_32F, ilda, &beta, c, CUDA_R_32F,
                                        ildc, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
        break;
      case GemmPrecision::kBf16:
      case GemmPrecision::kFp16: {
        // Low-precision copies of the inputs; fp32 output and accumulation.
        const bool bf16 = gemm_precision_ == GemmPrecision::kBf16;
        void* a16 = scratch_a_.get(a_elems * 2);
        void* b16 = scratch_b_.get(b_elems * 2);
        if (bf16) {
          to_bf16_kernel<<<grid_for(a_elems), kBlock, 0, compute_.get()>>>(
              a, static_cast<__nv_bfloat16*>(a16), a_elems);
          to_bf16_kernel<<<grid_for(b_elems), kBlock, 0, compute_.get()>>>(
              b, static_cast<__nv_bfloat16*>(b16), b_elems);
        } else {
          to_fp16_kernel<<<grid_for(a_elems), kBlock, 0, compute_.get()>>>(
              a, static_cast<__half*>(a16), a_elems);
          to_fp16_kernel<<<grid_for(b_elems), kBlock, 0, compute_.get()>>>(
              b, static_cast<__half*>(b16), b_elems);
        }
        HPCML_CHECK_CUDA(cudaGetLastError());
        const cudaDataType_t t = bf16 ? CUDA_R_16BF : CUDA_R_16F;
        HPCML_CHECK_CUBLAS(cublasGemmEx(cublas_.get(), op_b, op_a, in, im, ik, &alpha, b16, t, ildb,
                                        a16, t, ilda, &beta, c, CUDA_R_32F, ildc,
                                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        break;
      }
    }
    if (stop) HPCML_CHECK_CUDA(cudaEventRecord(stop, compute_.get()));
  }

  // ---- kernels --------------------------------------------------------------
  void add_bias(float* y, const float* bias, std::size_t rows, std::size_t cols) override {
    if (rows * cols == 0) return;
    add_bias_kernel<<<grid_for(rows * cols), kBlock, 0, compute_.get()>>>(y, bias, rows, cols);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }
  void relu(float* y, std::size_t n) override {
    if (n == 0) return;
    relu_kernel<<<grid_for(n), kBlock, 0, compute_.get()>>>(y, n);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }
  void relu_backward(float* dy, const float* y, std::size_t n) override {
    if (n == 0) return;
    relu_backward_kernel<<<grid_for(n), kBlock, 0, compute_.get()>>>(dy, y, n);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }
  void column_sums(const float* x, std::size_t rows, std::size_t cols, float* out) override {
    if (cols == 0) return;
    if (rows <= kColumnChunk) {  // the reference's order: the same bits
      column_sums_kernel<<<grid_for(cols), kBlock, 0, compute_.get()>>>(x, rows, cols, out);
    } else {
      const std::size_t chunks = (rows + kColumnChunk - 1) / kColumnChunk;
      auto* partial = static_cast<float*>(column_partial_.get(chunks * cols * sizeof(float)));
      const dim3 grid(static_cast<unsigned>((cols + kBlock - 1) / kBlock),
                      static_cast<unsigned>(chunks < 65535 ? chunks : 65535));
      column_chunk_sums_kernel<<<grid, kBlock, 0, compute_.get()>>>(x, rows, cols, partial);
      column_sums_kernel<<<grid_for(cols), kBlock, 0, compute_.get()>>>(partial, chunks, cols, out);
    }
    HPCML_CHECK_CUDA(cudaGetLastError());
  }

  double softmax_xent(const float* logits, const std::int32_t* labels, std::size_t rows,
                      std::size_t classes, float grad_scale, float* dlogits,
                      std::size_t* correct) override {
    if (rows == 0) {
      if (correct) *correct = 0;
      return 0.0;
    }
    auto* result = static_cast<XentResult*>(result_dev_.get());
    auto* row_loss = static_cast<double*>(row_loss_.get(rows * sizeof(double)));
    auto* row_hit = static_cast<unsigned*>(row_hit_.get(rows * sizeof(unsigned)));
    HPCML_CHECK_CUDA(cudaMemsetAsync(result, 0, sizeof(XentResult), compute_.get()));
    check_labels_kernel<<<1, kBlock, 0, compute_.get()>>>(labels, rows, classes, result);
    softmax_xent_rows_kernel<<<grid_for(rows), kBlock, 0, compute_.get()>>>(
        logits, labels, rows, classes, grad_scale, dlogits, row_loss, row_hit, result);
    softmax_xent_sum_kernel<<<1, kBlock, 0, compute_.get()>>>(row_loss, row_hit, rows, result);
    HPCML_CHECK_CUDA(cudaGetLastError());
    // The one place a step waits for the device: the loss comes back.
    auto* host = static_cast<XentResult*>(result_host_.get());
    HPCML_CHECK_CUDA(
        cudaMemcpyAsync(host, result, sizeof(XentResult), cudaMemcpyDeviceToHost, compute_.get()));
    HPCML_CHECK_CUDA(cudaStreamSynchronize(compute_.get()));
    if (host->bad_row != kNoBadRow)
      HPCML_THROW(DataError, "backend 'cuda': softmax_xent label " +
                                 std::to_string(host->bad_label) + " at row " +
                                 std::to_string(host->bad_row) + " is outside [0, " +
                                 std::to_string(classes) + ")");
    if (correct) *correct = static_cast<std::size_t>(host->hits);
    return host->loss;
  }

  void sgd_momentum(float* w, const float* g, float* v, std::size_t n, float lr, float momentum,
                    float weight_decay) override {
    if (n == 0) return;
    sgd_momentum_kernel<<<grid_for(n), kBlock, 0, compute_.get()>>>(w, g, v, n, lr, momentum,
                                                                    weight_decay);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }

  double sum_squares(const float* x, std::size_t n) override {
    if (n == 0) return 0.0;
    auto* partial = static_cast<double*>(partial_dev_.get());
    sum_squares_partial_kernel<<<kReduceBlocks, kBlock, 0, compute_.get()>>>(x, n, partial);
    sum_partials_kernel<<<1, kBlock, 0, compute_.get()>>>(
        partial, kReduceBlocks, &static_cast<XentResult*>(result_dev_.get())->loss);
    HPCML_CHECK_CUDA(cudaGetLastError());
    double out = 0;
    HPCML_CHECK_CUDA(cudaMemcpyAsync(result_host_.get(),
                                     &static_cast<XentResult*>(result_dev_.get())->loss,
                                     sizeof(double), cudaMemcpyDeviceToHost, compute_.get()));
    HPCML_CHECK_CUDA(cudaStreamSynchronize(compute_.get()));
    std::memcpy(&out, result_host_.get(), sizeof(double));
    return out;
  }

  void sgd_nesterov(float* w, const float* g, float* v, std::size_t n, float lr, float momentum,
                    float weight_decay) override {
    if (n == 0) return;
    sgd_nesterov_kernel<<<grid_for(n), kBlock, 0, compute_.get()>>>(w, g, v, n, lr, momentum,
                                                                    weight_decay);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }

  void adam_direction(const float* w, const float* g, float* m, float* v, float* u, std::size_t n,
                      float b1, float b2, float eps, float c1, float c2, float l2,
                      float decoupled) override {
    if (n == 0) return;
    adam_direction_kernel<<<grid_for(n), kBlock, 0, compute_.get()>>>(w, g, m, v, u, n, b1, b2, eps,
                                                                      c1, c2, l2, decoupled);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }

  void axpy(float* w, const float* x, std::size_t n, float alpha) override {
    if (n == 0) return;
    axpy_kernel<<<grid_for(n), kBlock, 0, compute_.get()>>>(w, x, n, alpha);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }

  void lars_momentum(float* w, const float* g, float* v, std::size_t n, float local_lr,
                     float momentum, float weight_decay) override {
    if (n == 0) return;
    lars_momentum_kernel<<<grid_for(n), kBlock, 0, compute_.get()>>>(w, g, v, n, local_lr, momentum,
                                                                     weight_decay);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }

  void im2col(const float* x, const ConvShape& s, float* cols) override {
    const std::size_t total = s.n * s.oh * s.ow * s.k * s.k * s.c;
    if (total == 0) return;
    im2col_kernel<<<grid_for(total), kBlock, 0, compute_.get()>>>(x, s, cols);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }

  void col2im(const float* cols, const ConvShape& s, float* dx) override {
    const std::size_t total = s.n * s.h * s.w * s.c;
    if (total == 0) return;
    col2im_kernel<<<grid_for(total), kBlock, 0, compute_.get()>>>(cols, s, dx);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }

  void maxpool(const float* x, std::size_t n, std::size_t h, std::size_t w, std::size_t c,
               std::size_t size, float* y, std::uint32_t* argmax) override {
    const std::size_t total = n * (h / size) * (w / size) * c;
    if (total == 0) return;
    maxpool_kernel<<<grid_for(total), kBlock, 0, compute_.get()>>>(x, n, h, w, c, size, y, argmax);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }

  void maxpool_backward(const float* dy, const std::uint32_t* argmax, std::size_t count, float* dx,
                        std::size_t dx_count) override {
    fill_zero(dx, dx_count * sizeof(float));
    if (count == 0) return;
    maxpool_backward_kernel<<<grid_for(count), kBlock, 0, compute_.get()>>>(dy, argmax, count, dx);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }

  void dropout(float* y, std::size_t n, float rate, std::uint64_t seed) override {
    if (n == 0) return;
    const float scale = 1.0f / (1.0f - rate);
    const auto threshold = static_cast<std::uint64_t>(static_cast<double>(rate) * 0x1.0p53);
    dropout_kernel<<<grid_for(n), kBlock, 0, compute_.get()>>>(y, n, scale, threshold, seed);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }

  void scale(float* x, std::size_t n, float alpha) override {
    if (n == 0) return;
    scale_kernel<<<grid_for(n), kBlock, 0, compute_.get()>>>(x, n, alpha);
    HPCML_CHECK_CUDA(cudaGetLastError());
  }

 private:
  static constexpr std::size_t kCublasWorkspace = std::size_t{32} << 20;

  struct Slot {
    PinnedMemory host_x, host_y;
    DeviceMemory dev_x, dev_y;
    std::size_t cap_x = 0, cap_y = 0;  // elements
    Event ready;                       // the slot's last H2D copy is done (copy stream)
    Event consumed;                // the kernels that read the slot's batch are queued before this
    bool copy_recorded = false;    // `ready` was recorded at least once
    std::uint64_t prefetched = 0;  // prefetch order of a batch not yet uploaded (0: none)
    const Batch* batch = nullptr;
    const float* x_data = nullptr;
    std::size_t x_size = 0, y_size = 0;
  };
  static constexpr int kSlots = 3;

  // A slot that is not current_: one without a waiting prefetch, else the
  // oldest waiting prefetch (which is then dropped).
  int free_slot() const {
    int oldest = -1;
    for (int i = 0; i < kSlots; ++i) {
      if (i == current_) continue;
      if (slots_[i].prefetched == 0) return i;
      if (oldest < 0 || slots_[i].prefetched < slots_[oldest].prefetched) oldest = i;
    }
    return oldest;
  }

  // The host waits until the slot's last copy from its pinned buffer (and
  // into its device buffer) is done; before the host rewrites either.
  void wait_copy(Slot& slot) {
    if (slot.copy_recorded) HPCML_CHECK_CUDA(cudaEventSynchronize(slot.ready.get()));
  }

  // Grows a slot's buffers to hold `batch` (reallocation waits for the device).
  void stage(Slot& slot, const Batch& batch) {
    if (batch.x.size() > slot.cap_x || !slot.dev_x) {
      HPCML_CHECK_CUDA(cudaDeviceSynchronize());
      slot.host_x = make_pinned_memory(batch.x.size() * sizeof(float));
      slot.dev_x = make_device_memory(batch.x.size() * sizeof(float));
      slot.cap_x = batch.x.size();
    }
    if (batch.y.size() > slot.cap_y || !slot.dev_y) {
      HPCML_CHECK_CUDA(cudaDeviceSynchronize());
      slot.host_y = make_pinned_memory(batch.y.size() * sizeof(std::int32_t));
      slot.dev_y = make_device_memory(batch.y.size() * sizeof(std::int32_t));
      slot.cap_y = batch.y.size();
    }
  }

  static int to_int(std::size_t v) {
    if (v > 0x7fffffffu)
      HPCML_THROW(Error, "backend 'cuda': gemm dimension " + std::to_string(v) +
                             " exceeds cuBLAS's 32-bit int");
    return static_cast<int>(v);
  }

  void next_timer(cudaEvent_t& start, cudaEvent_t& stop) {
    if (timed_ == timers_.size()) timers_.emplace_back(make_event(true), make_event(true));
    start = timers_[timed_].first.get();
    stop = timers_[timed_].second.get();
    ++timed_;
  }

  int device_ = 0;
  Stream compute_, copy_;
  DeviceMemory workspace_;  // declared before cublas_: the handle goes first
  CublasHandle cublas_;
  PinnedMemory result_host_;
  DeviceMemory result_dev_, partial_dev_;
  Scratch row_loss_, row_hit_, scratch_a_, scratch_b_, column_partial_;
  Slot slots_[kSlots];
  int current_ = -1;  // the slot the last upload_batch() returned
  std::uint64_t prefetch_seq_ = 0;
  std::size_t prefetch_hits_ = 0;
  bool timing_ = false;
  std::vector<std::pair<Event, Event>> timers_;
  std::size_t timed_ = 0;
};

CudaBackend& as_cuda(Backend& backend) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  if (!cuda) HPCML_THROW(Error, "backend '" + backend.name() + "' is not the cuda backend");
  return *cuda;
}

}  // namespace
}  // namespace hpcml::kernels::cuda

namespace hpcml::kernels {

namespace detail {
std::unique_ptr<Backend> make_cuda_backend(const DevicePlacement& placement) {
  return std::make_unique<cuda::CudaBackend>(placement);
}
}  // namespace detail

CudaInfo cuda_info() {
  CudaInfo info;
  info.compiled = true;
  (void)cudaDriverGetVersion(&info.driver_version);
  (void)cudaRuntimeGetVersion(&info.runtime_version);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    info.error = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err);
    return info;
  }
  if (count == 0) {
    info.error = "cudaGetDeviceCount: 0 devices";
    return info;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) {
      (void)cudaGetLastError();
      continue;
    }
    CudaDevice dev;
    dev.index = d;
    dev.name = prop.name;
    dev.cc_major = prop.major;
    dev.cc_minor = prop.minor;
    dev.memory_bytes = prop.totalGlobalMem;
    dev.multiprocessors = prop.multiProcessorCount;
    char bus[32] = {};
    if (cudaDeviceGetPCIBusId(bus, sizeof bus, d) == cudaSuccess) dev.pci_bus_id = bus;
    info.devices.push_back(dev);
  }
  return info;
}

int cuda_device_of(Backend& backend) { return cuda::as_cuda(backend).device(); }
void* cuda_compute_stream(Backend& backend) {
  return static_cast<void*>(cuda::as_cuda(backend).compute_stream());
}
std::size_t cuda_prefetch_hits(Backend& backend) { return cuda::as_cuda(backend).prefetch_hits(); }
void cuda_set_gemm_timing(Backend& backend, bool on) { cuda::as_cuda(backend).set_gemm_timing(on); }
double cuda_take_gemm_ms(Backend& backend) { return cuda::as_cuda(backend).take_gemm_ms(); }

}  // namespace hpcml::kernels

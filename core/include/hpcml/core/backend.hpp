// The compute-backend interface: the few kernels the trainer needs, declared
// once. Implementations live in kernels/ (reference = serial test oracle,
// omp = OpenMP + CBLAS). All matrices are dense, row-major float32.
//
// Contract for every backend:
// - results of a kernel depend only on its inputs and the backend's thread
//   count, never on timing (no atomics-order or racy reductions), so training
//   is bit-reproducible for a fixed configuration;
// - pointers do not alias unless stated; sizes may be zero.
#pragma once

#include <cstddef>
#include <cstdint>
#if __cplusplus >= 202002L  // nvcc compiles kernels/cuda as C++17: no std::span there
#include <span>
#endif
#include <string>

#include "hpcml/core/data.hpp"

namespace hpcml {

/// Where a backend's buffers live. Kernels take pointers into the backend's
/// own memory only; host code reaches that memory through copy_to_host() /
/// copy_from_host() (host backends: plain memcpy, so nothing changes for them).
enum class MemorySpace { kHost, kDevice };

/// Arithmetic of the GEMMs (train.precision). fp32 everywhere is the default;
/// bf16 / fp16 round the GEMM inputs and accumulate in fp32 (master weights
/// and every other kernel stay fp32). Host backends implement fp32 only.
enum class GemmPrecision { kFp32, kTf32, kBf16, kFp16 };

/// The batch's inputs where the backend's kernels can read them.
struct BatchView {
  const float* x = nullptr;
  const std::int32_t* y = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // ---- memory ---------------------------------------------------------------
  // Host defaults: 64-byte aligned, zeroed host memory and memcpy. A device
  // backend overrides all of them (and every kernel below).

  virtual MemorySpace memory_space() const { return MemorySpace::kHost; }
  /// `bytes` of zeroed memory in this backend's space (never null; bytes may be 0).
  virtual void* allocate(std::size_t bytes);
  virtual void deallocate(void* p) noexcept;
  /// Host memory to stage transfers through (device backends: pinned).
  virtual void* allocate_host(std::size_t bytes);
  virtual void deallocate_host(void* p) noexcept;
  /// Copies in ordered with the kernels: a copy to the host returns when the
  /// values are there (it waits for the kernels queued before it).
  virtual void copy_from_host(void* dst, const void* src, std::size_t bytes);
  virtual void copy_to_host(void* dst, const void* src, std::size_t bytes);
  virtual void copy(void* dst, const void* src, std::size_t bytes);
  virtual void fill_zero(void* p, std::size_t bytes);
  /// Waits for every kernel and copy queued so far (host backends: nothing).
  virtual void synchronize() {}
  /// The batch's x and y in this backend's memory, valid until the next call.
  /// Host backends return the batch's own vectors. Device backends copy them in
  /// (reusing a copy prefetch_batch() started for this very batch).
  virtual BatchView upload_batch(const Batch& batch);
  /// Starts copying `batch` in ahead of its upload_batch() (device backends: on
  /// a copy stream from pinned memory, overlapping the current step). The batch
  /// must stay unchanged until then. Host backends: nothing.
  virtual void prefetch_batch(const Batch& /*batch*/) {}

  /// GEMM arithmetic; throws NotAvailableError for a precision this backend
  /// does not implement (host backends: everything but fp32).
  virtual void set_gemm_precision(GemmPrecision p);
  GemmPrecision gemm_precision() const { return gemm_precision_; }

  /// Short name as used in configs: "reference", "omp", ...
  virtual std::string name() const = 0;
  /// Threads this backend uses for one kernel (1 for reference).
  virtual int threads() const = 0;

  /// C[m x n] = alpha * op(A) * op(B) + beta * C, row-major.
  /// op(A) is m x k (A is k x m when trans_a), op(B) is k x n (B is n x k when trans_b).
  /// lda/ldb/ldc are row strides of the stored matrices.
  virtual void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
                    float alpha, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                    float beta, float* c, std::size_t ldc) = 0;

  /// y[i, j] += bias[j] for a rows x cols matrix y.
  virtual void add_bias(float* y, const float* bias, std::size_t rows, std::size_t cols) = 0;

  /// In place y = max(y, 0).
  virtual void relu(float* y, std::size_t n) = 0;

  /// Backward of relu given the forward output y: dy[i] = y[i] > 0 ? dy[i] : 0.
  virtual void relu_backward(float* dy, const float* y, std::size_t n) = 0;

  /// out[j] = sum_i x[i, j] (column sums of a rows x cols matrix), summed in row order.
  virtual void column_sums(const float* x, std::size_t rows, std::size_t cols, float* out) = 0;

  /// Softmax cross-entropy over a rows x classes logits matrix and integer labels.
  /// Writes dlogits = (softmax(logits) - onehot(label)) * grad_scale and returns the
  /// sum (not mean) of per-row losses, accumulated in double in row order. If
  /// correct is non-null, *correct receives the number of rows whose argmax equals
  /// the label (ties resolve to the lowest index). dlogits may be null (evaluation).
  virtual double softmax_xent(const float* logits, const std::int32_t* labels, std::size_t rows,
                              std::size_t classes, float grad_scale, float* dlogits,
                              std::size_t* correct) = 0;

  /// SGD with momentum and decoupled-from-nothing (L2) weight decay, elementwise:
  ///   g' = g + weight_decay * w;  v = momentum * v + g';  w -= lr * v.
  virtual void sgd_momentum(float* w, const float* g, float* v, std::size_t n, float lr,
                            float momentum, float weight_decay) = 0;

  // The kernels of the other optimizers (core/optimizer.hpp). Each has a
  // serial host implementation here (core/src/backend.cpp), which the
  // reference backend uses as its oracle; faster backends override them. A
  // backend whose buffers are not host memory must override all of them.

  /// Sum of x[i]^2, accumulated in double in index order (layer-wise norms).
  virtual double sum_squares(const float* x, std::size_t n);

  /// SGD with Nesterov momentum: g' = g + wd*w; v = mu*v + g'; w -= lr*(g' + mu*v).
  virtual void sgd_nesterov(float* w, const float* g, float* v, std::size_t n, float lr,
                            float momentum, float weight_decay);

  /// Adam's moments and update direction, elementwise:
  ///   g' = g + l2*w;  m = b1*m + (1-b1)*g';  v = b2*v + (1-b2)*g'^2;
  ///   u = (m / c1) / (sqrt(v / c2) + eps) + decoupled*w
  /// with c1 = 1 - b1^t and c2 = 1 - b2^t the bias corrections of update t.
  /// l2 is Adam's L2 penalty, decoupled AdamW's / LAMB's weight decay.
  virtual void adam_direction(const float* w, const float* g, float* m, float* v, float* u,
                              std::size_t n, float b1, float b2, float eps, float c1, float c2,
                              float l2, float decoupled);

  /// w += alpha * x.
  virtual void axpy(float* w, const float* x, std::size_t n, float alpha);

  /// LARS momentum with a layer's local rate: v = mu*v + local_lr*(g + wd*w); w -= v.
  virtual void lars_momentum(float* w, const float* g, float* v, std::size_t n, float local_lr,
                             float momentum, float weight_decay);

  // The kernels of convolutional models (core/layers.hpp), with serial host
  // implementations like the optimizer kernels above. Images are channels-last
  // (HWC) per sample, samples one after another.

  /// Convolution geometry: n samples of h x w x c, a k x k window moved by
  /// `stride`, `pad` zeros around; the output is oh x ow.
  struct ConvShape {
    std::size_t n, h, w, c, k, stride, pad, oh, ow;
  };
  /// cols[(s, oy, ox), (ky, kx, ci)] = x[s, oy*stride + ky - pad, ox*stride + kx - pad, ci]
  /// (0 outside the image): a (n*oh*ow) x (k*k*c) matrix, so a convolution is one GEMM.
  virtual void im2col(const float* x, const ConvShape& s, float* cols);
  /// The adjoint of im2col: dx = 0, then every cols entry is added to the pixel
  /// it was taken from, in row order (deterministic).
  virtual void col2im(const float* cols, const ConvShape& s, float* dx);
  /// Max pooling over size x size windows with stride size (h, w divisible by
  /// size): y[s, oy, ox, ci] = max of the window, argmax[...] = the flat index
  /// into x of the first maximum.
  virtual void maxpool(const float* x, std::size_t n, std::size_t h, std::size_t w, std::size_t c,
                       std::size_t size, float* y, std::uint32_t* argmax);
  /// dx = 0, then dx[argmax[i]] += dy[i] for the `count` outputs.
  virtual void maxpool_backward(const float* dy, const std::uint32_t* argmax, std::size_t count,
                                float* dx, std::size_t dx_count);
  /// Inverted dropout in place: y[i] = keep(i) ? y[i] / (1 - rate) : 0, with
  /// keep(i) a hash of (seed, i) >= rate, so the same seed gives the same mask
  /// (forward and backward use it, and a resumed run draws the same masks).
  virtual void dropout(float* y, std::size_t n, float rate, std::uint64_t seed);

  /// x *= alpha (loss-scale removal, accumulation averaging).
  virtual void scale(float* x, std::size_t n, float alpha);

 protected:
  GemmPrecision gemm_precision_ = GemmPrecision::kFp32;
};

/// Which of a backend's allocators a BufferArray uses: allocate() (the backend's
/// own memory, device memory for a device backend) or allocate_host() (host
/// memory to stage transfers through, pinned for a device backend).
enum class ArrayPlacement { kBackend, kHost };

/// An array of T from one of a backend's allocators (RAII; move-only). Empty
/// when default constructed. The backend must outlive the array (it frees it).
/// Use the two names below.
template <class T, ArrayPlacement P>
class BufferArray {
 public:
  BufferArray() = default;
  BufferArray(Backend& be, std::size_t n)
      : be_(&be), p_(static_cast<T*>(allocate(be, n * sizeof(T)))), n_(n) {}
  ~BufferArray() { reset(); }
  BufferArray(BufferArray&& o) noexcept : be_(o.be_), p_(o.p_), n_(o.n_) {
    o.p_ = nullptr;
    o.n_ = 0;
  }
  BufferArray& operator=(BufferArray&& o) noexcept {
    if (this != &o) {
      reset();
      be_ = o.be_;
      p_ = o.p_;
      n_ = o.n_;
      o.p_ = nullptr;
      o.n_ = 0;
    }
    return *this;
  }
  BufferArray(const BufferArray&) = delete;
  BufferArray& operator=(const BufferArray&) = delete;

  T* data() { return p_; }
  const T* data() const { return p_; }
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
#if __cplusplus >= 202002L
  /// Host memory only: host code may read and write it directly.
  std::span<T> span() requires(P == ArrayPlacement::kHost) { return {p_, n_}; }
#endif
  /// Grows (never shrinks) to at least n elements; contents are not kept.
  void reserve_discard(Backend& be, std::size_t n) {
    if (n > n_ || be_ != &be) *this = BufferArray(be, n);
  }
  void reset() noexcept {
    if (p_ && be_) {
      if constexpr (P == ArrayPlacement::kHost) {
        be_->deallocate_host(p_);
      } else {
        be_->deallocate(p_);
      }
    }
    p_ = nullptr;
    n_ = 0;
  }

 private:
  static void* allocate(Backend& be, std::size_t bytes) {
    if constexpr (P == ArrayPlacement::kHost) {
      return be.allocate_host(bytes);
    } else {
      return be.allocate(bytes);
    }
  }

  Backend* be_ = nullptr;
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

/// An array of T in a backend's memory. data() is a backend pointer: only
/// kernels and the backend's copies may touch it.
template <class T>
using BackendArray = BufferArray<T, ArrayPlacement::kBackend>;

/// An array of T in host memory to stage transfers through:
/// Backend::allocate_host(), pinned for a device backend.
template <class T>
using HostArray = BufferArray<T, ArrayPlacement::kHost>;

/// The memory of a model or optimizer that no backend has been bound to yet
/// (Model::bind): the host defaults above. Its kernels throw Error; use it
/// for allocation and copies only.
Backend& host_memory();

}  // namespace hpcml

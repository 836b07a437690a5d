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
#include <string>

namespace hpcml {

class Backend {
 public:
  virtual ~Backend() = default;

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
};

}  // namespace hpcml

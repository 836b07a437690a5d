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
};

}  // namespace hpcml

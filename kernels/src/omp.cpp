// The omp backend: GEMM through OpenBLAS's CBLAS, every other kernel an
// OpenMP `parallel for` with a static schedule over rows, columns or
// elements. Each output element is produced by exactly one thread with the
// same arithmetic in the same order whatever the schedule, so results depend
// only on the inputs (and, for GEMM, on the OpenBLAS thread count).
#include <cblas.h>

#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends.hpp"
#include "hpcml/config.hpp"

#if defined(HPCML_HAS_OPENMP) && defined(_OPENMP)
#define HPCML_KERNELS_PRAGMA(x) _Pragma(#x)
// `if(cond)` keeps tiny kernels serial: starting a team costs a few
// microseconds, more than the work below the thresholds.
#define HPCML_OMP_FOR(nthreads, cond) \
  HPCML_KERNELS_PRAGMA(omp parallel for schedule(static) num_threads(nthreads) if(cond))
#else
#define HPCML_OMP_FOR(nthreads, cond)
#endif

namespace hpcml::kernels::detail {
namespace {

// Below these sizes a kernel runs on the calling thread only (see docs/kernels.md
// for how they were chosen). Elementwise kernels touch ~8-12 bytes per element.
constexpr std::size_t kMinParallelElements = std::size_t{1} << 15;
// softmax_xent does two exp() per element, ~20x the work of an add.
constexpr std::size_t kMinParallelSoftmaxElements = std::size_t{1} << 12;
// column_sums hands each thread whole blocks of this many adjacent columns,
// so each thread streams contiguous row segments.
constexpr std::size_t kColumnBlock = 64;

int to_blas_int(std::size_t value, const char* what) {
  if (value > static_cast<std::size_t>(INT_MAX))
    HPCML_THROW(Error, std::string("backend 'omp': gemm ") + what + "=" + std::to_string(value) +
                           " exceeds the 32-bit index range of this OpenBLAS build");
  return static_cast<int>(value);
}

class OmpBackend final : public Backend {
 public:
  explicit OmpBackend(int threads) : threads_(threads) {
    openblas_set_num_threads(threads_);
    // OpenBLAS may cap the count (at its MAX_THREADS or the CPU count); remember
    // what it settled on so sync_blas_threads() does not re-set it every call.
    blas_threads_ = openblas_get_num_threads();
  }

  std::string name() const override { return "omp"; }
  int threads() const override { return threads_; }

  void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
            const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
            std::size_t ldc) override {
    check_gemm_args("omp", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    if (m == 0 || n == 0) return;
    if (k == 0 || alpha == 0.0f) {
      // No product to form; OpenBLAS would also reject lda = 0 here.
      scale_rows(c, m, n, ldc, beta);
      return;
    }
    const int bm = to_blas_int(m, "m");
    const int bn = to_blas_int(n, "n");
    const int bk = to_blas_int(k, "k");
    const int blda = to_blas_int(lda, "lda");
    const int bldb = to_blas_int(ldb, "ldb");
    const int bldc = to_blas_int(ldc, "ldc");
    sync_blas_threads();
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, bm, bn, bk, alpha, a, blda, b, bldb, beta, c,
                bldc);
  }

  void add_bias(float* y, const float* bias, std::size_t rows, std::size_t cols) override {
    [[maybe_unused]] const bool par = rows > 1 && rows * cols >= kMinParallelElements;
    HPCML_OMP_FOR(threads_, par)
    for (std::size_t i = 0; i < rows; ++i) {
      float* row = y + i * cols;
      for (std::size_t j = 0; j < cols; ++j) row[j] += bias[j];
    }
  }

  void relu(float* y, std::size_t n) override {
    HPCML_OMP_FOR(threads_, n >= kMinParallelElements)
    for (std::size_t i = 0; i < n; ++i) y[i] = y[i] < 0.0f ? 0.0f : y[i];
  }

  void relu_backward(float* dy, const float* y, std::size_t n) override {
    HPCML_OMP_FOR(threads_, n >= kMinParallelElements)
    for (std::size_t i = 0; i < n; ++i) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
  }

  void column_sums(const float* x, std::size_t rows, std::size_t cols, float* out) override {
    const std::size_t blocks = (cols + kColumnBlock - 1) / kColumnBlock;
    [[maybe_unused]] const bool par = blocks > 1 && rows * cols >= kMinParallelElements;
    HPCML_OMP_FOR(threads_, par)
    for (std::size_t blk = 0; blk < blocks; ++blk) {
      const std::size_t begin = blk * kColumnBlock;
      const std::size_t end = begin + kColumnBlock < cols ? begin + kColumnBlock : cols;
      for (std::size_t j = begin; j < end; ++j) out[j] = 0.0f;
      // Row order per column, as the reference: identical float results.
      for (std::size_t i = 0; i < rows; ++i) {
        const float* row = x + i * cols;
        for (std::size_t j = begin; j < end; ++j) out[j] += row[j];
      }
    }
  }

  double softmax_xent(const float* logits, const std::int32_t* labels, std::size_t rows,
                      std::size_t classes, float grad_scale, float* dlogits,
                      std::size_t* correct) override {
    check_labels("omp", labels, rows, classes);
    // Per-row results go to buffers and are reduced serially in row order below,
    // so the loss does not depend on how rows were split between threads.
    row_loss_.resize(rows);
    row_hit_.resize(rows);
    [[maybe_unused]] const bool par = rows > 1 && rows * classes >= kMinParallelSoftmaxElements;
    HPCML_OMP_FOR(threads_, par)
    for (std::size_t i = 0; i < rows; ++i) {
      const float* x = logits + i * classes;
      const auto label = static_cast<std::size_t>(labels[i]);
      std::size_t argmax = 0;
      for (std::size_t j = 1; j < classes; ++j)
        if (x[j] > x[argmax]) argmax = j;
      row_hit_[i] = argmax == label ? 1 : 0;
      const double max = x[argmax];
      double denom = 0.0;
      for (std::size_t j = 0; j < classes; ++j) denom += std::exp(static_cast<double>(x[j]) - max);
      row_loss_[i] = std::log(denom) - (static_cast<double>(x[label]) - max);
      if (dlogits != nullptr) {
        // p - 1 for the label is formed in double: in float it would cancel
        // badly when the model is confident (p close to 1).
        float* d = dlogits + i * classes;
        for (std::size_t j = 0; j < classes; ++j) {
          double p = std::exp(static_cast<double>(x[j]) - max) / denom;
          if (j == label) p -= 1.0;
          d[j] = static_cast<float>(p * static_cast<double>(grad_scale));
        }
      }
    }
    double total = 0.0;
    std::size_t hits = 0;
    for (std::size_t i = 0; i < rows; ++i) {
      total += row_loss_[i];
      hits += row_hit_[i];
    }
    if (correct != nullptr) *correct = hits;
    return total;
  }

  void sgd_momentum(float* w, const float* g, float* v, std::size_t n, float lr, float momentum,
                    float weight_decay) override {
    HPCML_OMP_FOR(threads_, n >= kMinParallelElements)
    for (std::size_t i = 0; i < n; ++i) {
      const float grad = g[i] + weight_decay * w[i];
      const float vel = momentum * v[i] + grad;
      v[i] = vel;
      w[i] -= lr * vel;
    }
  }

 private:
  // OpenBLAS's thread count is process-global: another omp backend (other
  // thread count) may have changed it since our last call.
  void sync_blas_threads() {
    if (openblas_get_num_threads() != blas_threads_) openblas_set_num_threads(threads_);
  }

  void scale_rows(float* c, std::size_t m, std::size_t n, std::size_t ldc, float beta) {
    HPCML_OMP_FOR(threads_, m > 1 && m * n >= kMinParallelElements)
    for (std::size_t i = 0; i < m; ++i) {
      float* row = c + i * ldc;
      for (std::size_t j = 0; j < n; ++j) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
    }
  }

  int threads_;
  int blas_threads_ = 1;
  std::vector<double> row_loss_;
  std::vector<unsigned char> row_hit_;
};

}  // namespace

std::unique_ptr<Backend> make_omp_backend(int threads) {
  return std::make_unique<OmpBackend>(threads);
}

}  // namespace hpcml::kernels::detail

// The omp backend: GEMM through OpenBLAS's CBLAS, every other kernel an
// OpenMP `parallel for` with a static schedule over rows, columns or
// elements. Each output element is produced by exactly one thread with the
// same arithmetic in the same order whatever the schedule, so results depend
// only on the inputs (and, for GEMM, on the thread count).
//
// Thread model: one pool. Debian's OpenBLAS is the pthreads build, whose
// worker threads poll for a while after each call; alternating its pool with
// OpenMP's on the same cores made a GEMM followed by elementwise kernels
// 10-100x slower on the shared development machine (docs/kernels.md). So by
// default OpenBLAS is set to one thread and the omp backend splits a large
// GEMM into `threads` column (or row) panels, one single-threaded cblas_sgemm
// per OpenMP thread.
#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
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
constexpr std::size_t kMinParallelSoftmaxElements = std::size_t{1} << 10;
// A GEMM is split between threads only above this many multiply-adds (about
// 10 us at one core's ~100 GFLOP/s); OpenBLAS's own threshold is similar.
constexpr std::size_t kMinParallelGemmMacs = std::size_t{1} << 20;
// Panels are multiples of this many rows/columns so no thread gets a sliver
// that the SIMD micro-kernel handles only through its edge code.
constexpr std::size_t kGemmPanelAlign = 16;
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
  OmpBackend(int threads, GemmThreading gemm_threading)
      : threads_(threads), gemm_threading_(gemm_threading) {
#if !(defined(HPCML_HAS_OPENMP) && defined(_OPENMP))
    // Without OpenMP there is no second pool to collide with: let OpenBLAS thread.
    gemm_threading_ = GemmThreading::kOpenblas;
#endif
    blas_threads_wanted_ = gemm_threading_ == GemmThreading::kOpenblas ? threads_ : 1;
    openblas_set_num_threads(blas_threads_wanted_);
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
    for (const auto& [value, what] :
         {std::pair{m, "m"}, std::pair{n, "n"}, std::pair{k, "k"}, std::pair{lda, "lda"},
          std::pair{ldb, "ldb"}, std::pair{ldc, "ldc"}})
      to_blas_int(value, what);
    sync_blas_threads();
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    const auto call = [&](std::size_t rows, std::size_t cols, const float* a0, const float* b0,
                          float* c0) {
      cblas_sgemm(CblasRowMajor, ta, tb, static_cast<int>(rows), static_cast<int>(cols),
                  static_cast<int>(k), alpha, a0, static_cast<int>(lda), b0, static_cast<int>(ldb),
                  beta, c0, static_cast<int>(ldc));
    };
    // Split the longer of C's two sides into aligned panels; the partition
    // depends only on (m, n, threads), so results are reproducible.
    const bool split_cols = n >= m;
    const std::size_t side = split_cols ? n : m;
    std::size_t panel =
        (side + static_cast<std::size_t>(threads_) - 1) / static_cast<std::size_t>(threads_);
    panel = (panel + kGemmPanelAlign - 1) / kGemmPanelAlign * kGemmPanelAlign;
    const std::size_t panels = (side + panel - 1) / panel;
    if (gemm_threading_ == GemmThreading::kOpenblas || panels < 2 ||
        m * n * k < kMinParallelGemmMacs) {
      call(m, n, a, b, c);
      return;
    }
    HPCML_OMP_FOR(threads_, true)
    for (std::size_t p = 0; p < panels; ++p) {
      const std::size_t begin = p * panel;
      const std::size_t len = std::min(panel, side - begin);
      if (split_cols) {
        // C[:, begin:begin+len] = op(A) * op(B)[:, begin:begin+len]
        call(m, len, a, trans_b ? b + begin * ldb : b + begin, c + begin);
      } else {
        // C[begin:begin+len, :] = op(A)[begin:begin+len, :] * op(B)
        call(len, n, trans_a ? a + begin : a + begin * lda, b, c + begin * ldc);
      }
    }
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

  // The other optimizers' elementwise kernels: the serial loops of
  // core/src/backend.cpp split over threads (the same bits per element).
  // sum_squares stays serial: a reduction's order must not depend on threads.
  void sgd_nesterov(float* w, const float* g, float* v, std::size_t n, float lr, float momentum,
                    float weight_decay) override {
    HPCML_OMP_FOR(threads_, n >= kMinParallelElements)
    for (std::size_t i = 0; i < n; ++i) {
      const float grad = g[i] + weight_decay * w[i];
      v[i] = momentum * v[i] + grad;
      w[i] -= lr * (grad + momentum * v[i]);
    }
  }

  void adam_direction(const float* w, const float* g, float* m, float* v, float* u, std::size_t n,
                      float b1, float b2, float eps, float c1, float c2, float l2,
                      float decoupled) override {
    HPCML_OMP_FOR(threads_, n >= kMinParallelElements)
    for (std::size_t i = 0; i < n; ++i) {
      const float grad = g[i] + l2 * w[i];
      m[i] = b1 * m[i] + (1.0f - b1) * grad;
      v[i] = b2 * v[i] + (1.0f - b2) * grad * grad;
      u[i] = (m[i] / c1) / (std::sqrt(v[i] / c2) + eps) + decoupled * w[i];
    }
  }

  void axpy(float* w, const float* x, std::size_t n, float alpha) override {
    HPCML_OMP_FOR(threads_, n >= kMinParallelElements)
    for (std::size_t i = 0; i < n; ++i) w[i] += alpha * x[i];
  }

  void lars_momentum(float* w, const float* g, float* v, std::size_t n, float local_lr,
                     float momentum, float weight_decay) override {
    HPCML_OMP_FOR(threads_, n >= kMinParallelElements)
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = momentum * v[i] + local_lr * (g[i] + weight_decay * w[i]);
      w[i] -= v[i];
    }
  }

 private:
  // OpenBLAS's thread count is process-global: another omp backend (other
  // thread count) may have changed it since our last call.
  void sync_blas_threads() {
    if (openblas_get_num_threads() != blas_threads_) openblas_set_num_threads(blas_threads_wanted_);
  }

  void scale_rows(float* c, std::size_t m, std::size_t n, std::size_t ldc, float beta) {
    HPCML_OMP_FOR(threads_, m > 1 && m * n >= kMinParallelElements)
    for (std::size_t i = 0; i < m; ++i) {
      float* row = c + i * ldc;
      for (std::size_t j = 0; j < n; ++j) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
    }
  }

  int threads_;
  GemmThreading gemm_threading_;
  int blas_threads_wanted_ = 1;
  int blas_threads_ = 1;
  std::vector<double> row_loss_;
  std::vector<unsigned char> row_hit_;
};

}  // namespace

std::unique_ptr<Backend> make_omp_backend(int threads, GemmThreading gemm_threading) {
  return std::make_unique<OmpBackend>(threads, gemm_threading);
}

}  // namespace hpcml::kernels::detail

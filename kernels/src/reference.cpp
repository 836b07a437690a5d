// The reference backend: serial loops written to be obviously right, the
// oracle every other backend is tested against. Speed is not a goal here.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "backends.hpp"

namespace hpcml::kernels::detail {
namespace {

class ReferenceBackend final : public Backend {
 public:
  std::string name() const override { return "reference"; }
  int threads() const override { return 1; }

  // Each C element is one dot product accumulated in double in k order and
  // rounded to float once, so the oracle is more accurate than any float
  // blocked GEMM it is compared with. beta == 0 means C is not read (BLAS
  // convention: NaN or garbage in C is overwritten).
  void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
            const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
            std::size_t ldc) override {
    check_gemm_args("reference", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        double sum = 0.0;
        if (alpha != 0.0f) {
          for (std::size_t p = 0; p < k; ++p) {
            const float a_ip = trans_a ? a[p * lda + i] : a[i * lda + p];
            const float b_pj = trans_b ? b[j * ldb + p] : b[p * ldb + j];
            sum += static_cast<double>(a_ip) * static_cast<double>(b_pj);
          }
        }
        double result = static_cast<double>(alpha) * sum;
        if (beta != 0.0f) result += static_cast<double>(beta) * static_cast<double>(c[i * ldc + j]);
        c[i * ldc + j] = static_cast<float>(result);
      }
    }
  }

  void add_bias(float* y, const float* bias, std::size_t rows, std::size_t cols) override {
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) y[i * cols + j] += bias[j];
  }

  // NaN stays NaN (a diverged run must stay visible); -0.0 stays -0.0.
  void relu(float* y, std::size_t n) override {
    for (std::size_t i = 0; i < n; ++i)
      if (y[i] < 0.0f) y[i] = 0.0f;
  }

  void relu_backward(float* dy, const float* y, std::size_t n) override {
    for (std::size_t i = 0; i < n; ++i)
      if (!(y[i] > 0.0f)) dy[i] = 0.0f;
  }

  void column_sums(const float* x, std::size_t rows, std::size_t cols, float* out) override {
    for (std::size_t j = 0; j < cols; ++j) {
      float sum = 0.0f;
      for (std::size_t i = 0; i < rows; ++i) sum += x[i * cols + j];
      out[j] = sum;
    }
  }

  // Softmax in double with the row maximum subtracted (exp never overflows);
  // loss_row = log(sum_j exp(x_j - max)) - (x_label - max).
  double softmax_xent(const float* logits, const std::int32_t* labels, std::size_t rows,
                      std::size_t classes, float grad_scale, float* dlogits,
                      std::size_t* correct) override {
    check_labels("reference", labels, rows, classes);
    double total = 0.0;
    std::size_t hits = 0;
    for (std::size_t i = 0; i < rows; ++i) {
      const float* x = logits + i * classes;
      const auto label = static_cast<std::size_t>(labels[i]);
      std::size_t argmax = 0;
      for (std::size_t j = 1; j < classes; ++j)
        if (x[j] > x[argmax]) argmax = j;
      if (argmax == label) ++hits;
      const double max = x[argmax];
      double denom = 0.0;
      for (std::size_t j = 0; j < classes; ++j) denom += std::exp(static_cast<double>(x[j]) - max);
      total += std::log(denom) - (static_cast<double>(x[label]) - max);
      if (dlogits != nullptr) {
        for (std::size_t j = 0; j < classes; ++j) {
          double p = std::exp(static_cast<double>(x[j]) - max) / denom;
          if (j == label) p -= 1.0;
          dlogits[i * classes + j] = static_cast<float>(p * static_cast<double>(grad_scale));
        }
      }
    }
    if (correct != nullptr) *correct = hits;
    return total;
  }

  void sgd_momentum(float* w, const float* g, float* v, std::size_t n, float lr, float momentum,
                    float weight_decay) override {
    for (std::size_t i = 0; i < n; ++i) {
      const float grad = g[i] + weight_decay * w[i];
      v[i] = momentum * v[i] + grad;
      w[i] -= lr * v[i];
    }
  }
};

}  // namespace

std::unique_ptr<Backend> make_reference_backend() { return std::make_unique<ReferenceBackend>(); }

}  // namespace hpcml::kernels::detail

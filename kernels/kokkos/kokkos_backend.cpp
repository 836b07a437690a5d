// The kokkos backend: every kernel written once with Kokkos parallel_for /
// parallel_reduce over unmanaged Views of the caller's buffers, run on
// Kokkos::DefaultHostExecutionSpace (the trainer's buffers are host memory).
// GEMM goes through KokkosBlas::gemm when Kokkos Kernels was found
// (HPCML_HAS_KOKKOS_KERNELS), else through CBLAS.
//
// Determinism: every output element is written by one iteration with the same
// arithmetic in the same order as the reference backend; the only reductions
// are an integer count (exact in any order) and the softmax loss, which is
// summed over per-row values in row order, never through a scheduling- or
// atomics-dependent tree. So results depend on the inputs only (GEMM: and on
// the BLAS thread count).
//
// Lifetime: Kokkos is initialized by the first kokkos backend (with its thread
// count) and finalized once, by kernels::finalize_backends() (BackendRuntime in
// main, before MPI_Finalize) or at process exit; an application that had
// initialized Kokkos itself keeps it (hpcml then never finalizes it).
#include <cblas.h>

#include <Kokkos_Core.hpp>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "backends.hpp"
#include "hpcml/config.hpp"

#if defined(HPCML_HAS_KOKKOS_KERNELS)
#include <KokkosBlas3_gemm.hpp>
#endif

namespace hpcml::kernels::detail {
namespace {

using ExecSpace = Kokkos::DefaultHostExecutionSpace;
using Device = Kokkos::Device<ExecSpace, Kokkos::HostSpace>;
using Unmanaged = Kokkos::MemoryTraits<Kokkos::Unmanaged>;
template <class T>
using Vec = Kokkos::View<T*, Kokkos::LayoutRight, Device, Unmanaged>;
template <class T>
using Mat = Kokkos::View<T**, Kokkos::LayoutRight, Device, Unmanaged>;
using Range = Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>;

// column_sums gives each iteration a block of adjacent columns, summed in row
// order, so one iteration streams contiguous row segments (as the omp backend).
constexpr std::size_t kColumnBlock = 64;

// Kokkos::initialize once per process, by the first kokkos backend, and
// Kokkos::finalize once: by finalize_kokkos() (kernels::BackendRuntime, which
// main() holds so that it runs before MPI_Finalize) or, failing that, at exit.
// Never finalize-then-initialize: Kokkos 3.4's Serial space corrupts memory in
// parallel_reduce after a re-initialization, and Kokkos 4 forbids it.
enum class SessionState { kNotStarted, kRunning, kFinalized };

std::mutex& session_mutex() {
  static std::mutex mutex;  // trivial teardown: nothing runs at static destruction
  return mutex;
}
SessionState session_state = SessionState::kNotStarted;
bool session_owns_kokkos = false;  // false when the application initialized Kokkos

void finalize_locked() {
  if (session_state == SessionState::kRunning && session_owns_kokkos && Kokkos::is_initialized())
    Kokkos::finalize();
  if (session_state == SessionState::kRunning) session_state = SessionState::kFinalized;
}

void finalize_at_exit() {
  std::lock_guard<std::mutex> lock(session_mutex());
  finalize_locked();
}

void start_session(int threads) {
  std::lock_guard<std::mutex> lock(session_mutex());
  HPCML_REQUIRE(session_state != SessionState::kFinalized, Error,
                "backend 'kokkos': Kokkos was already finalized in this process (after "
                "kernels::finalize_backends / BackendRuntime); it cannot be started again");
  if (session_state == SessionState::kRunning) return;
  if (Kokkos::is_initialized()) {
    session_owns_kokkos = false;  // the application's Kokkos: used, never finalized by hpcml
  } else {
#if KOKKOS_VERSION >= 40000
    HPCML_REQUIRE(!Kokkos::is_finalized(), Error,
                  "backend 'kokkos': the application finalized Kokkos; it cannot be started "
                  "again");
#endif
#if KOKKOS_VERSION >= 30700
    Kokkos::initialize(Kokkos::InitializationSettings().set_num_threads(threads));
#else
    Kokkos::InitArguments args;
    args.num_threads = threads;
    Kokkos::initialize(args);
#endif
    session_owns_kokkos = true;
    // Registered after Kokkos' own static objects exist, so it runs before they
    // are destroyed; a no-op when finalize_kokkos() already ran.
    std::atexit(finalize_at_exit);
  }
  session_state = SessionState::kRunning;
}

class KokkosBackend final : public Backend {
 public:
  explicit KokkosBackend(int threads) {
    start_session(threads);
    threads_ = ExecSpace().concurrency();
  }

  std::string name() const override { return "kokkos"; }
  int threads() const override { return threads_; }

  void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
            const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
            std::size_t ldc) override {
    check_gemm_args("kokkos", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    if (m == 0 || n == 0) return;
    if (k == 0 || alpha == 0.0f) {
      // No product to form: C = beta * C (beta == 0 overwrites without reading).
      Mat<float> cv(c, m, ldc);
      Kokkos::parallel_for(
          "hpcml::kokkos::gemm_scale", Range(0, m), KOKKOS_LAMBDA(const std::size_t i) {
            for (std::size_t j = 0; j < n; ++j) cv(i, j) = beta == 0.0f ? 0.0f : beta * cv(i, j);
          });
      Kokkos::fence();
      return;
    }
    check_int_range(m, n, k, lda, ldb, ldc);
    sync_blas_threads();
#if defined(HPCML_HAS_KOKKOS_KERNELS)
    // Row-major matrices with row strides lda/ldb/ldc: LayoutRight views of the
    // stored (rows x ld) arrays, cut to their used columns. KokkosBlas hands
    // LayoutRight host views to its BLAS TPL (here OpenBLAS's sgemm).
    const std::size_t a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
    const std::size_t b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
    using Cols = std::pair<std::size_t, std::size_t>;
    const auto av = Kokkos::subview(Mat<const float>(a, a_rows, lda), Kokkos::ALL, Cols(0, a_cols));
    const auto bv = Kokkos::subview(Mat<const float>(b, b_rows, ldb), Kokkos::ALL, Cols(0, b_cols));
    const auto cv = Kokkos::subview(Mat<float>(c, m, ldc), Kokkos::ALL, Cols(0, n));
    KokkosBlas::gemm(trans_a ? "T" : "N", trans_b ? "T" : "N", alpha, av, bv, beta, cv);
    Kokkos::fence();
#else
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb),
                beta, c, static_cast<int>(ldc));
#endif
  }

  void add_bias(float* y, const float* bias, std::size_t rows, std::size_t cols) override {
    if (rows == 0 || cols == 0) return;
    Mat<float> yv(y, rows, cols);
    Vec<const float> bv(bias, cols);
    Kokkos::parallel_for(
        "hpcml::kokkos::add_bias", Range(0, rows), KOKKOS_LAMBDA(const std::size_t i) {
          for (std::size_t j = 0; j < cols; ++j) yv(i, j) += bv(j);
        });
    Kokkos::fence();
  }

  // NaN stays NaN (the comparison is false); -0.0 stays -0.0.
  void relu(float* y, std::size_t n) override {
    if (n == 0) return;
    Vec<float> yv(y, n);
    Kokkos::parallel_for(
        "hpcml::kokkos::relu", Range(0, n), KOKKOS_LAMBDA(const std::size_t i) {
          if (yv(i) < 0.0f) yv(i) = 0.0f;
        });
    Kokkos::fence();
  }

  void relu_backward(float* dy, const float* y, std::size_t n) override {
    if (n == 0) return;
    Vec<float> dv(dy, n);
    Vec<const float> yv(y, n);
    Kokkos::parallel_for(
        "hpcml::kokkos::relu_backward", Range(0, n), KOKKOS_LAMBDA(const std::size_t i) {
          if (!(yv(i) > 0.0f)) dv(i) = 0.0f;
        });
    Kokkos::fence();
  }

  // One iteration per block of columns, each column summed in row order: a
  // fixed-order reduction per column, identical to the reference in float.
  void column_sums(const float* x, std::size_t rows, std::size_t cols, float* out) override {
    if (cols == 0) return;
    Vec<float> ov(out, cols);
    const float* xp = x;
    const std::size_t blocks = (cols + kColumnBlock - 1) / kColumnBlock;
    Kokkos::parallel_for(
        "hpcml::kokkos::column_sums", Range(0, blocks), KOKKOS_LAMBDA(const std::size_t blk) {
          const std::size_t begin = blk * kColumnBlock;
          const std::size_t end = begin + kColumnBlock < cols ? begin + kColumnBlock : cols;
          for (std::size_t j = begin; j < end; ++j) ov(j) = 0.0f;
          for (std::size_t i = 0; i < rows; ++i)
            for (std::size_t j = begin; j < end; ++j) ov(j) += xp[i * cols + j];
        });
    Kokkos::fence();
  }

  double softmax_xent(const float* logits, const std::int32_t* labels, std::size_t rows,
                      std::size_t classes, float grad_scale, float* dlogits,
                      std::size_t* correct) override {
    check_labels("kokkos", labels, rows, classes);
    if (rows == 0) {
      if (correct != nullptr) *correct = 0;
      return 0.0;
    }
    row_loss_.resize(rows);
    Mat<const float> xv(logits, rows, classes);
    Vec<const std::int32_t> lv(labels, rows);
    Vec<double> lossv(row_loss_.data(), rows);
    float* const dp = dlogits;
    // Per-row loss, gradient and hit; the hit count is an integer
    // parallel_reduce (exact in any order).
    std::size_t hits = 0;
    Kokkos::parallel_reduce(
        "hpcml::kokkos::softmax_xent", Range(0, rows),
        KOKKOS_LAMBDA(const std::size_t i, std::size_t& hit_sum) {
          const auto label = static_cast<std::size_t>(lv(i));
          std::size_t argmax = 0;
          for (std::size_t j = 1; j < classes; ++j)
            if (xv(i, j) > xv(i, argmax)) argmax = j;
          if (argmax == label) ++hit_sum;
          const double max = xv(i, argmax);
          double denom = 0.0;
          for (std::size_t j = 0; j < classes; ++j)
            denom += std::exp(static_cast<double>(xv(i, j)) - max);
          lossv(i) = std::log(denom) - (static_cast<double>(xv(i, label)) - max);
          if (dp != nullptr) {
            // p - 1 for the label in double: in float it would cancel when p ~ 1.
            for (std::size_t j = 0; j < classes; ++j) {
              double p = std::exp(static_cast<double>(xv(i, j)) - max) / denom;
              if (j == label) p -= 1.0;
              dp[i * classes + j] = static_cast<float>(p * static_cast<double>(grad_scale));
            }
          }
        },
        hits);
    Kokkos::fence();
    // The loss is summed in row order here, not in a Kokkos reduction tree whose
    // shape (and so rounding) would depend on the execution space and threads.
    double total = 0.0;
    for (std::size_t i = 0; i < rows; ++i) total += row_loss_[i];
    if (correct != nullptr) *correct = hits;
    return total;
  }

  void sgd_momentum(float* w, const float* g, float* v, std::size_t n, float lr, float momentum,
                    float weight_decay) override {
    if (n == 0) return;
    Vec<float> wv(w, n);
    Vec<const float> gv(g, n);
    Vec<float> vv(v, n);
    Kokkos::parallel_for(
        "hpcml::kokkos::sgd_momentum", Range(0, n), KOKKOS_LAMBDA(const std::size_t i) {
          const float grad = gv(i) + weight_decay * wv(i);
          vv(i) = momentum * vv(i) + grad;
          wv(i) -= lr * vv(i);
        });
    Kokkos::fence();
  }

 private:
  static void check_int_range(std::size_t m, std::size_t n, std::size_t k, std::size_t lda,
                              std::size_t ldb, std::size_t ldc) {
    for (const auto& [value, what] :
         {std::pair{m, "m"}, std::pair{n, "n"}, std::pair{k, "k"}, std::pair{lda, "lda"},
          std::pair{ldb, "ldb"}, std::pair{ldc, "ldc"}}) {
      if (value > static_cast<std::size_t>(INT_MAX))
        HPCML_THROW(Error, std::string("backend 'kokkos': gemm ") + what + "=" +
                               std::to_string(value) +
                               " exceeds the 32-bit index range of the BLAS");
    }
  }

  // GEMM ends in OpenBLAS (directly or as Kokkos Kernels' BLAS TPL), whose
  // thread count is process-global: one BLAS thread per execution-space thread,
  // set again if another backend changed it.
  void sync_blas_threads() const {
    if (openblas_get_num_threads() != threads_) openblas_set_num_threads(threads_);
  }

  int threads_ = 1;
  std::vector<double> row_loss_;
};

}  // namespace

std::unique_ptr<Backend> make_kokkos_backend(int threads) {
  return std::make_unique<KokkosBackend>(threads);
}

void finalize_kokkos() {
  std::lock_guard<std::mutex> lock(session_mutex());
  finalize_locked();
}

std::string kokkos_description() {
  std::string out = "Kokkos " + std::to_string(KOKKOS_VERSION / 10000) + "." +
                    std::to_string(KOKKOS_VERSION / 100 % 100) + "." +
                    std::to_string(KOKKOS_VERSION % 100) + ", execution space " +
                    ExecSpace::name() + " (DefaultHostExecutionSpace), GEMM through ";
#if defined(HPCML_HAS_KOKKOS_KERNELS)
  out += "KokkosBlas::gemm (Kokkos Kernels)";
#else
  out += "CBLAS (built without Kokkos Kernels)";
#endif
  return out;
}

}  // namespace hpcml::kernels::detail

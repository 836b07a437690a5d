// gemm: the reference on hand-checked products, then omp (and kokkos, when built)
// against reference over sizes, transposes, leading dimensions and alpha/beta.
//
// Tolerance. The reference forms each dot product in double and rounds once;
// OpenBLAS accumulates in float in a blocked order. A float sum of k products
// has error at most ~k*u*sum|a*b| (u = 2^-24), so we accept
//   |c_omp - c_ref| <= (k + 2) * FLT_EPSILON * (|alpha| * sum_p |a_ip*b_pj| + |beta*c_ij|)
// i.e. twice that worst-case bound (FLT_EPSILON = 2u). A wrong index, transpose
// or stride gives errors of the order of sum|a*b| itself, far above this.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "../../kernels/src/backends.hpp"  // white-box: the GEMM threading modes
#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/kernels/factory.hpp"
#include "kernels_test_util.hpp"

namespace hpcml::kernels::test {
namespace {

constexpr float kSentinel = 12345.0f;

struct GemmCase {
  bool ta, tb;
  std::size_t m, n, k;
  float alpha, beta;
  std::size_t pad;  // extra elements at the end of every stored row
};

std::string describe(const GemmCase& g) {
  return std::string("ta=") + (g.ta ? "T" : "N") + " tb=" + (g.tb ? "T" : "N") +
         " m=" + std::to_string(g.m) + " n=" + std::to_string(g.n) + " k=" + std::to_string(g.k) +
         " alpha=" + std::to_string(g.alpha) + " beta=" + std::to_string(g.beta) +
         " pad=" + std::to_string(g.pad);
}

// Runs one case on both backends and checks `omp` (the backend under test: omp
// or kokkos) against reference, and that neither wrote into the padding of C.
void check_case(Backend& ref, Backend& omp, const GemmCase& g, std::uint32_t seed) {
  SCOPED_TRACE(describe(g));
  const std::size_t a_rows = g.ta ? g.k : g.m, a_cols = g.ta ? g.m : g.k;
  const std::size_t b_rows = g.tb ? g.n : g.k, b_cols = g.tb ? g.k : g.n;
  const std::size_t lda = a_cols + g.pad, ldb = b_cols + g.pad, ldc = g.n + g.pad;
  const auto a = random_floats(a_rows * lda, seed);
  const auto b = random_floats(b_rows * ldb, seed + 1);
  auto c0 = random_floats(g.m * ldc, seed + 2);
  for (std::size_t i = 0; i < g.m; ++i)
    for (std::size_t j = g.n; j < ldc; ++j) c0[i * ldc + j] = kSentinel;
  auto c_ref = c0, c_omp = c0;
  ref.gemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, a.data(), lda, b.data(), ldb, g.beta, c_ref.data(),
           ldc);
  omp.gemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, a.data(), lda, b.data(), ldb, g.beta, c_omp.data(),
           ldc);
  int reported = 0;
  for (std::size_t i = 0; i < g.m; ++i) {
    for (std::size_t j = 0; j < ldc; ++j) {
      const std::size_t at = i * ldc + j;
      if (j >= g.n) {
        ASSERT_EQ(c_ref[at], kSentinel) << "reference wrote padding at " << i << "," << j;
        ASSERT_EQ(c_omp[at], kSentinel) << "omp wrote padding at " << i << "," << j;
        continue;
      }
      double abs_sum = 0.0;
      for (std::size_t p = 0; p < g.k; ++p) {
        const float aip = g.ta ? a[p * lda + i] : a[i * lda + p];
        const float bpj = g.tb ? b[j * ldb + p] : b[p * ldb + j];
        abs_sum += std::fabs(static_cast<double>(aip) * bpj);
      }
      const double scale = std::fabs(g.alpha) * abs_sum + std::fabs(g.beta * c0[at]);
      const double tol = static_cast<double>(g.k + 2) * FLT_EPSILON * scale;
      const double err = std::fabs(static_cast<double>(c_omp[at]) - c_ref[at]);
      if (err > tol && reported++ < 5)
        ADD_FAILURE() << "C(" << i << "," << j << "): omp " << c_omp[at] << " reference "
                      << c_ref[at] << " error " << err << " > tolerance " << tol;
    }
  }
}

TEST(KernelsGemm, ReferenceAndOmpOnHandCheckedProducts) {
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};  // 2 x 3
  const std::vector<float> b = {1, 0, 0, 1, 1, 1};  // 3 x 2
  const std::vector<float> s = {1, 2, 3, 4};        // 2 x 2
  for (const std::string& name : available_backends()) {
    SCOPED_TRACE(name);
    auto be = make_backend(name, 2);
    std::vector<float> c(4, 0.0f);
    be->gemm(false, false, 2, 2, 3, 1.0f, a.data(), 3, b.data(), 2, 0.0f, c.data(), 2);
    EXPECT_EQ(c, (std::vector<float>{4, 5, 10, 11}));
    // alpha = 2, beta = -1 on C = ones: 2*[4 5; 10 11] - 1
    c.assign(4, 1.0f);
    be->gemm(false, false, 2, 2, 3, 2.0f, a.data(), 3, b.data(), 2, -1.0f, c.data(), 2);
    EXPECT_EQ(c, (std::vector<float>{7, 9, 19, 21}));
    // A * A^T
    c.assign(4, 0.0f);
    be->gemm(false, true, 2, 2, 3, 1.0f, a.data(), 3, a.data(), 3, 0.0f, c.data(), 2);
    EXPECT_EQ(c, (std::vector<float>{14, 32, 32, 77}));
    // A^T * A (3 x 3)
    std::vector<float> c3(9, 0.0f);
    be->gemm(true, false, 3, 3, 2, 1.0f, a.data(), 3, a.data(), 3, 0.0f, c3.data(), 3);
    EXPECT_EQ(c3, (std::vector<float>{17, 22, 27, 22, 29, 36, 27, 36, 45}));
    // A^T * S^T (3 x 2)
    std::vector<float> c32(6, 0.0f);
    be->gemm(true, true, 3, 2, 2, 1.0f, a.data(), 3, s.data(), 2, 0.0f, c32.data(), 2);
    EXPECT_EQ(c32, (std::vector<float>{9, 19, 12, 26, 15, 33}));
  }
}

// m, n, k over {0, 1, 7, 33, 129}, all four transposes, four alpha/beta pairs.
void check_small_sizes(Backend& ref, Backend& other) {
  const std::size_t sizes[] = {0, 1, 7, 33, 129};
  const float alphas[] = {1.0f, 0.5f, -2.0f, 0.0f};
  const float betas[] = {0.0f, -1.25f, 0.75f, 2.0f};
  std::uint32_t seed = 1;
  for (int t = 0; t < 4; ++t)
    for (std::size_t m : sizes)
      for (std::size_t n : sizes)
        for (std::size_t k : sizes) {
          const int ab = static_cast<int>(seed % 4);
          const GemmCase g{(t & 1) != 0, (t & 2) != 0,           m, n, k, alphas[ab],
                           betas[ab],    seed % 3 == 0 ? 0u : 3u};
          check_case(ref, other, g, seed);
          seed += 3;
        }
}

TEST(KernelsGemm, OmpMatchesReferenceOverSmallSizes) {
  auto ref = make_backend("reference", 1);
  auto omp = make_backend("omp", 2);
  check_small_sizes(*ref, *omp);
}

// batch 128, 784 inputs, 512 hidden, 10 classes: the MLP's forward and backward products
const std::vector<GemmCase>& training_shapes() {
  static const std::vector<GemmCase> cases = {
      {false, true, 128, 512, 784, 1.0f, 0.0f, 0},   // X * W1^T
      {true, false, 512, 784, 128, 1.0f, 0.0f, 5},   // dY^T * X
      {false, false, 128, 784, 512, 1.0f, 0.0f, 0},  // dY * W1
      {true, true, 10, 128, 512, 0.5f, 1.5f, 7},
      {false, true, 128, 10, 512, -1.0f, 0.25f, 2},
      // m > n: the omp backend splits rows of C instead of columns
      {true, false, 784, 128, 512, 1.0f, 0.0f, 3},
      {false, false, 700, 90, 33, 0.5f, -1.0f, 1},
      {false, true, 300, 40, 100, 2.0f, 0.5f, 0},
  };
  return cases;
}

TEST(KernelsGemm, OmpMatchesReferenceOnTrainingShapes) {
  auto ref = make_backend("reference", 1);
  auto omp = make_backend("omp", 2);
  const auto& cases = training_shapes();
  std::uint32_t seed = 1000;
  for (const auto& g : cases) check_case(*ref, *omp, g, seed += 7);
  // OpenBLAS's own thread pool (the mode a build without OpenMP uses).
  auto omp_blas = detail::make_omp_backend(2, detail::GemmThreading::kOpenblas);
  for (const auto& g : cases) check_case(*ref, *omp_blas, g, seed += 7);
}

TEST(KernelsGemm, BetaZeroOverwritesNaNInC) {
  const auto a = random_floats(5 * 4, 7);
  const auto b = random_floats(4 * 6, 8);
  for (const std::string& name : available_backends()) {
    SCOPED_TRACE(name);
    auto be = make_backend(name, 2);
    std::vector<float> c(5 * 6, std::numeric_limits<float>::quiet_NaN());
    be->gemm(false, false, 5, 6, 4, 1.0f, a.data(), 4, b.data(), 6, 0.0f, c.data(), 6);
    for (float x : c) EXPECT_FALSE(std::isnan(x));
    // k = 0: C = beta * C, and beta = 0 gives exact zeros even over NaN.
    std::vector<float> d(6, std::numeric_limits<float>::quiet_NaN());
    be->gemm(false, false, 2, 3, 0, 1.0f, nullptr, 0, nullptr, 3, 0.0f, d.data(), 3);
    EXPECT_EQ(d, std::vector<float>(6, 0.0f));
    std::vector<float> e = {1, 2, 3};
    be->gemm(false, false, 1, 3, 0, 1.0f, nullptr, 0, nullptr, 3, -2.0f, e.data(), 3);
    EXPECT_EQ(e, (std::vector<float>{-2, -4, -6}));
  }
}

TEST(KernelsGemm, RejectsLeadingDimensionsSmallerThanRows) {
  const std::vector<float> a(64, 1.0f), b(64, 1.0f);
  std::vector<float> c(64, 0.0f);
  for (const std::string& name : available_backends()) {
    SCOPED_TRACE(name);
    auto be = make_backend(name, 1);
    EXPECT_THROW(be->gemm(false, false, 2, 2, 3, 1.0f, a.data(), 2, b.data(), 2, 0.0f, c.data(), 2),
                 Error);  // lda 2 < k 3
    EXPECT_THROW(be->gemm(false, true, 2, 4, 3, 1.0f, a.data(), 3, b.data(), 2, 0.0f, c.data(), 4),
                 Error);  // ldb 2 < k 3 (B is n x k)
    EXPECT_THROW(be->gemm(true, false, 2, 4, 3, 1.0f, a.data(), 2, b.data(), 4, 0.0f, c.data(), 3),
                 Error);  // ldc 3 < n 4
  }
}

TEST(KernelsGemm, TwoThreadsGiveBitIdenticalResultsTwice) {
  auto omp = make_backend("omp", 2);
  auto omp1 = make_backend("omp", 1);
  const std::size_t m = 257, n = 300, k = 520;
  const auto a = random_floats(m * k, 21);
  const auto b = random_floats(n * k, 22);
  const auto c0 = random_floats(m * n, 23);
  auto run = [&](Backend& be) {
    auto c = c0;
    be.gemm(false, true, m, n, k, 0.75f, a.data(), k, b.data(), k, 0.5f, c.data(), n);
    return c;
  };
  const auto first = run(*omp);
  const auto second = run(*omp);
  EXPECT_TRUE(bit_identical(first, second));
  // A one-thread backend in between changes OpenBLAS's global thread count;
  // the two-thread backend must set it back and reproduce its own result.
  (void)run(*omp1);
  EXPECT_TRUE(bit_identical(first, run(*omp)));
}

#if defined(HPCML_HAS_KOKKOS)
// The kokkos backend's GEMM (KokkosBlas::gemm, or CBLAS without Kokkos Kernels)
// against the reference, with the same float tolerance as omp: it is a float
// GEMM in some blocked order, like OpenBLAS's.
TEST(KernelsGemm, KokkosMatchesReferenceOverSmallSizes) {
  auto ref = make_backend("reference", 1);
  auto kokkos = make_backend("kokkos", 1);
  check_small_sizes(*ref, *kokkos);
}

TEST(KernelsGemm, KokkosMatchesReferenceOnTrainingShapes) {
  auto ref = make_backend("reference", 1);
  auto kokkos = make_backend("kokkos", 1);
  std::uint32_t seed = 3000;
  for (const auto& g : training_shapes()) check_case(*ref, *kokkos, g, seed += 7);
}

TEST(KernelsGemm, KokkosIsBitIdenticalRunToRun) {
  auto kokkos = make_backend("kokkos", 1);
  auto omp = make_backend("omp", 2);
  const std::size_t m = 257, n = 300, k = 520;
  const auto a = random_floats(m * k, 31);
  const auto b = random_floats(n * k, 32);
  const auto c0 = random_floats(m * n, 33);
  auto run = [&](Backend& be) {
    auto c = c0;
    be.gemm(false, true, m, n, k, 0.75f, a.data(), k, b.data(), k, 0.5f, c.data(), n);
    return c;
  };
  const auto first = run(*kokkos);
  EXPECT_TRUE(bit_identical(first, run(*kokkos)));
  // A two-thread omp backend in between changes OpenBLAS's global thread count.
  (void)run(*omp);
  EXPECT_TRUE(bit_identical(first, run(*kokkos)));
  // A second kokkos backend (same Kokkos session) gives the same bits.
  auto kokkos2 = make_backend("kokkos", 1);
  EXPECT_TRUE(bit_identical(first, run(*kokkos2)));
}
#endif

}  // namespace
}  // namespace hpcml::kernels::test

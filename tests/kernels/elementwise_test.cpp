// add_bias, relu, relu_backward, column_sums and sgd_momentum: hand-checked
// values on both backends, then omp against reference on sizes below and above
// the OpenMP thresholds. These kernels do the same float operations in the same
// order per element on both backends, so they must agree bit for bit (except
// sgd_momentum, where a compiler may fuse a multiply-add: 2 ulp there).
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "hpcml/config.hpp"
#include "hpcml/kernels/factory.hpp"
#include "kernels_test_util.hpp"

namespace hpcml::kernels::test {
namespace {

// Every backend of this build: reference, omp and kokkos when compiled in.
const std::vector<std::string> kBackends = available_backends();
// Shapes (rows, cols) below and above the omp backend's 2^15-element threshold.
const std::vector<std::pair<std::size_t, std::size_t>> kShapes = {
    {0, 5}, {5, 0}, {1, 1}, {7, 33}, {129, 7}, {33, 129}, {300, 257}, {1, 70001}};

TEST(KernelsElementwise, AddBiasByHand) {
  for (const auto& name : kBackends) {
    SCOPED_TRACE(name);
    auto be = make_backend(name, 2);
    std::vector<float> y = {1, 2, 3, 4, 5, 6};
    const std::vector<float> bias = {10, -20, 0.5f};
    be->add_bias(y.data(), bias.data(), 2, 3);
    EXPECT_EQ(y, (std::vector<float>{11, -18, 3.5f, 14, -15, 6.5f}));
  }
}

TEST(KernelsElementwise, ReluAndBackwardEdgeCases) {
  const float tiny = std::numeric_limits<float>::denorm_min();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const auto& name : kBackends) {
    SCOPED_TRACE(name);
    auto be = make_backend(name, 2);
    std::vector<float> y = {-1.0f, -tiny, 0.0f, tiny, 2.5f, nan};
    be->relu(y.data(), y.size());
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_EQ(y[1], 0.0f);
    EXPECT_EQ(y[2], 0.0f);
    EXPECT_EQ(y[3], tiny);
    EXPECT_EQ(y[4], 2.5f);
    EXPECT_TRUE(std::isnan(y[5])) << "relu must not hide a NaN";
    // The forward output exactly 0 (or -0) blocks the gradient; any y > 0 passes it.
    const std::vector<float> out = {0.0f, -0.0f, tiny, 3.0f, -1.0f, nan};
    std::vector<float> dy = {5.0f, 6.0f, 7.0f, -8.0f, 9.0f, 10.0f};
    be->relu_backward(dy.data(), out.data(), dy.size());
    EXPECT_EQ(dy, (std::vector<float>{0.0f, 0.0f, 7.0f, -8.0f, 0.0f, 0.0f}));
    be->relu(nullptr, 0);
    be->relu_backward(nullptr, nullptr, 0);
  }
}

TEST(KernelsElementwise, ColumnSumsByHand) {
  for (const auto& name : kBackends) {
    SCOPED_TRACE(name);
    auto be = make_backend(name, 2);
    const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};  // 3 x 4
    std::vector<float> out(4, -1.0f);
    be->column_sums(x.data(), 3, 4, out.data());
    EXPECT_EQ(out, (std::vector<float>{15, 18, 21, 24}));
    // rows = 0: sums of nothing are 0, not left unwritten
    be->column_sums(x.data(), 0, 4, out.data());
    EXPECT_EQ(out, std::vector<float>(4, 0.0f));
  }
}

TEST(KernelsElementwise, SgdMomentumFollowsTheFormula) {
  // g' = g + wd*w; v = mu*v + g'; w -= lr*v, iterated, against a double recurrence.
  const float lr = 0.1f, mu = 0.9f, wd = 0.01f;
  for (const auto& name : kBackends) {
    SCOPED_TRACE(name);
    auto be = make_backend(name, 2);
    std::vector<float> w = {1.0f, -2.0f, 0.0f}, v = {0.25f, 0.0f, -1.0f};
    const std::vector<float> g = {0.5f, 0.125f, 3.0f};
    std::vector<double> wd_ = {1.0, -2.0, 0.0}, vd = {0.25, 0.0, -1.0};
    for (int step = 0; step < 3; ++step) {
      be->sgd_momentum(w.data(), g.data(), v.data(), w.size(), lr, mu, wd);
      for (std::size_t i = 0; i < w.size(); ++i) {
        vd[i] = double{mu} * vd[i] + (double{g[i]} + double{wd} * wd_[i]);
        wd_[i] -= double{lr} * vd[i];
      }
    }
    for (std::size_t i = 0; i < w.size(); ++i) {
      EXPECT_NEAR(w[i], wd_[i], 1e-6 * (1.0 + std::fabs(wd_[i]))) << "w[" << i << "]";
      EXPECT_NEAR(v[i], vd[i], 1e-6 * (1.0 + std::fabs(vd[i]))) << "v[" << i << "]";
    }
    // First step of element 0 by hand: g' = 0.51, v = 0.225 + 0.51 = 0.735, w = 1 - 0.0735.
    std::vector<float> w1 = {1.0f}, v1 = {0.25f};
    const std::vector<float> g1 = {0.5f};
    be->sgd_momentum(w1.data(), g1.data(), v1.data(), 1, lr, mu, wd);
    EXPECT_NEAR(v1[0], 0.735f, 1e-6f);
    EXPECT_NEAR(w1[0], 0.9265f, 1e-6f);
  }
}

// `omp` is the backend under test (omp or kokkos).
void expect_bit_for_bit_with_reference(Backend& ref_be, Backend& omp_be) {
  Backend* ref = &ref_be;
  Backend* omp = &omp_be;
  std::uint32_t seed = 100;
  for (const auto& [rows, cols] : kShapes) {
    SCOPED_TRACE("rows=" + std::to_string(rows) + " cols=" + std::to_string(cols));
    const std::size_t n = rows * cols;
    // Values around zero, with exact zeros mixed in for relu's boundary.
    auto x = random_floats(n, ++seed, -2.0f, 2.0f);
    for (std::size_t i = 0; i < n; i += 7) x[i] = 0.0f;
    const auto bias = random_floats(cols, ++seed);

    auto y_ref = x, y_omp = x;
    ref->add_bias(y_ref.data(), bias.data(), rows, cols);
    omp->add_bias(y_omp.data(), bias.data(), rows, cols);
    EXPECT_TRUE(bit_identical(y_ref, y_omp)) << "add_bias";

    auto r_ref = x, r_omp = x;
    ref->relu(r_ref.data(), n);
    omp->relu(r_omp.data(), n);
    EXPECT_TRUE(bit_identical(r_ref, r_omp)) << "relu";

    const auto grad = random_floats(n, ++seed);
    auto d_ref = grad, d_omp = grad;
    ref->relu_backward(d_ref.data(), r_ref.data(), n);
    omp->relu_backward(d_omp.data(), r_ref.data(), n);
    EXPECT_TRUE(bit_identical(d_ref, d_omp)) << "relu_backward";

    std::vector<float> s_ref(cols, -7.0f), s_omp(cols, -7.0f);
    ref->column_sums(x.data(), rows, cols, s_ref.data());
    omp->column_sums(x.data(), rows, cols, s_omp.data());
    EXPECT_TRUE(bit_identical(s_ref, s_omp)) << "column_sums";

    auto w_ref = x, w_omp = x;
    auto v_ref = grad, v_omp = grad;
    ref->sgd_momentum(w_ref.data(), y_ref.data(), v_ref.data(), n, 0.05f, 0.9f, 1e-4f);
    omp->sgd_momentum(w_omp.data(), y_ref.data(), v_omp.data(), n, 0.05f, 0.9f, 1e-4f);
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_LE(ulp_distance(w_ref[i], w_omp[i]), 2) << "sgd_momentum w[" << i << "]";
      ASSERT_LE(ulp_distance(v_ref[i], v_omp[i]), 2) << "sgd_momentum v[" << i << "]";
    }
  }
}

TEST(KernelsElementwise, OmpMatchesReferenceBitForBit) {
  auto ref = make_backend("reference", 1);
  auto omp = make_backend("omp", 2);
  expect_bit_for_bit_with_reference(*ref, *omp);
}

#if defined(HPCML_HAS_KOKKOS)
TEST(KernelsElementwise, KokkosMatchesReferenceBitForBit) {
  auto ref = make_backend("reference", 1);
  auto kokkos = make_backend("kokkos", 1);
  expect_bit_for_bit_with_reference(*ref, *kokkos);
}
#endif

TEST(KernelsElementwise, TwoThreadsAreDeterministicAndMatchOneThread) {
  auto omp2 = make_backend("omp", 2);
  auto omp1 = make_backend("omp", 1);
  const std::size_t rows = 300, cols = 257, n = rows * cols;  // above the thresholds
  const auto x = random_floats(n, 5, -2.0f, 2.0f);
  const auto bias = random_floats(cols, 6);
  const auto g = random_floats(n, 7);
  auto run = [&](Backend& be) {
    std::vector<float> out;
    auto y = x;
    be.add_bias(y.data(), bias.data(), rows, cols);
    be.relu(y.data(), n);
    auto dy = g;
    be.relu_backward(dy.data(), y.data(), n);
    std::vector<float> sums(cols);
    be.column_sums(dy.data(), rows, cols, sums.data());
    auto w = x, v = g;
    be.sgd_momentum(w.data(), dy.data(), v.data(), n, 0.01f, 0.9f, 5e-4f);
    out.insert(out.end(), y.begin(), y.end());
    out.insert(out.end(), dy.begin(), dy.end());
    out.insert(out.end(), sums.begin(), sums.end());
    out.insert(out.end(), w.begin(), w.end());
    out.insert(out.end(), v.begin(), v.end());
    return out;
  };
  const auto first = run(*omp2);
  EXPECT_TRUE(bit_identical(first, run(*omp2)));
  EXPECT_TRUE(bit_identical(first, run(*omp1)));
}

}  // namespace
}  // namespace hpcml::kernels::test

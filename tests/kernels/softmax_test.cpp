// softmax_xent: a 2 x 3 example computed by hand, stability on large logits,
// the gradient against central finite differences of the returned loss, label
// checks, and omp against reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/kernels/factory.hpp"
#include "kernels_test_util.hpp"

namespace hpcml::kernels::test {
namespace {

// Every backend of this build: reference, omp and kokkos when compiled in.
const std::vector<std::string> kBackends = available_backends();

TEST(KernelsSoftmaxXent, HandComputedTwoByThree) {
  // Row 0: logits 1 2 3, label 2. softmax = e^(x-3) / (1 + e^-1 + e^-2)
  //   = 0.0900305732, 0.2447284711, 0.6652409558; loss = -log(0.6652409558) = 0.4076059644.
  // Row 1: logits 0 0 0, label 0. softmax = 1/3 each; loss = log 3 = 1.0986122887.
  //   Its argmax is a three-way tie, resolved to index 0 = the label: counted correct.
  // dlogits = (softmax - onehot) * 0.5.
  const std::vector<float> logits = {1, 2, 3, 0, 0, 0};
  const std::vector<std::int32_t> labels = {2, 0};
  const std::vector<double> expected = {0.0450152866,  0.1223642355, -0.1673795221,
                                        -0.3333333333, 0.1666666667, 0.1666666667};
  for (const auto& name : kBackends) {
    SCOPED_TRACE(name);
    auto be = make_backend(name, 2);
    std::vector<float> d(6, 99.0f);
    std::size_t correct = 99;
    const double loss =
        be->softmax_xent(logits.data(), labels.data(), 2, 3, 0.5f, d.data(), &correct);
    EXPECT_NEAR(loss, 1.5062182531, 1e-9);
    EXPECT_EQ(correct, 2u);
    for (std::size_t i = 0; i < 6; ++i) EXPECT_NEAR(d[i], expected[i], 1e-7) << "dlogits " << i;
    // Evaluation form: no gradient, no accuracy requested, same loss.
    EXPECT_NEAR(be->softmax_xent(logits.data(), labels.data(), 2, 3, 0.5f, nullptr, nullptr),
                1.5062182531, 1e-9);
    // Row 1 labelled 1 instead: the tie goes to index 0, so it is not correct.
    const std::vector<std::int32_t> labels2 = {2, 1};
    be->softmax_xent(logits.data(), labels2.data(), 2, 3, 1.0f, nullptr, &correct);
    EXPECT_EQ(correct, 1u);
  }
}

TEST(KernelsSoftmaxXent, LargeLogitsStayFinite) {
  const std::vector<float> logits = {1000.0f, 0.0f, -1000.0f, -1000.0f, 0.0f, 1000.0f};
  const std::vector<std::int32_t> labels = {0, 0};
  for (const auto& name : kBackends) {
    SCOPED_TRACE(name);
    auto be = make_backend(name, 1);
    std::vector<float> d(6);
    const double loss =
        be->softmax_xent(logits.data(), labels.data(), 2, 3, 1.0f, d.data(), nullptr);
    EXPECT_NEAR(loss, 2000.0, 1e-9);  // row 0 contributes ~e^-1000, row 1 exactly 2000
    const std::vector<float> expected = {0, 0, 0, -1, 0, 1};
    EXPECT_EQ(d, expected);
  }
}

TEST(KernelsSoftmaxXent, ZeroRowsAndBadLabels) {
  for (const auto& name : kBackends) {
    SCOPED_TRACE(name);
    auto be = make_backend(name, 1);
    std::size_t correct = 5;
    EXPECT_EQ(be->softmax_xent(nullptr, nullptr, 0, 10, 1.0f, nullptr, &correct), 0.0);
    EXPECT_EQ(correct, 0u);
    const std::vector<float> logits(6, 0.0f);
    std::vector<float> d(6, 42.0f);
    for (const std::int32_t bad : {-1, 3}) {
      const std::vector<std::int32_t> labels = {0, bad};
      try {
        be->softmax_xent(logits.data(), labels.data(), 2, 3, 1.0f, d.data(), nullptr);
        ADD_FAILURE() << "label " << bad << " accepted";
      } catch (const DataError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("label " + std::to_string(bad) + " at row 1"), std::string::npos) << msg;
      }
      EXPECT_EQ(d, std::vector<float>(6, 42.0f)) << "dlogits written before the label check";
    }
  }
}

// The loss is returned in double from float logits, so differences of it are
// accurate; steps are powers of two so x +- h is exact in float for |x| < 4
// (h a multiple of the float spacing there, 2^-22), i.e. the step really taken
// is 2h. Central differences have error ~h^2/6 * |third derivative| (< 1 for
// softmax-xent): with h = 2^-8 that is < 3e-6, with h = 2^-12 < 1e-8; float
// rounding of the analytic gradient adds ~1e-7. Tolerance 2e-5 absolute on
// gradients of magnitude <= 1, checked for both step sizes.
TEST(KernelsSoftmaxXent, GradientMatchesCentralFiniteDifferences) {
  const std::size_t rows = 4, classes = 5;
  const auto logits = random_floats(rows * classes, 77, -3.0f, 3.0f);
  const auto labels = random_labels(rows, classes, 78);
  const float grad_scale = 1.0f;  // dlogits = d(sum of losses)/dlogits
  for (const auto& name : kBackends) {
    SCOPED_TRACE(name);
    auto be = make_backend(name, 2);
    std::vector<float> d(rows * classes);
    be->softmax_xent(logits.data(), labels.data(), rows, classes, grad_scale, d.data(), nullptr);
    for (const float h : {0.00390625f /* 2^-8 */, 0.000244140625f /* 2^-12 */}) {
      for (std::size_t i = 0; i < logits.size(); ++i) {
        auto plus = logits, minus = logits;
        plus[i] += h;
        minus[i] -= h;
        ASSERT_EQ(static_cast<double>(plus[i]) - minus[i], 2.0 * h) << "step not exact";
        const double lp =
            be->softmax_xent(plus.data(), labels.data(), rows, classes, 1.0f, nullptr, nullptr);
        const double lm =
            be->softmax_xent(minus.data(), labels.data(), rows, classes, 1.0f, nullptr, nullptr);
        const double fd = (lp - lm) / (2.0 * h);
        EXPECT_NEAR(d[i], fd, 2e-5) << "logit " << i << " h=" << h;
      }
    }
  }
}

TEST(KernelsSoftmaxXent, OmpMatchesReferenceAndIsDeterministic) {
  auto ref = make_backend("reference", 1);
  auto omp = make_backend("omp", 2);
  auto omp1 = make_backend("omp", 1);
  // (rows, classes) below and above the omp threshold of 1024 elements.
  const std::size_t shapes[][2] = {{1, 1}, {7, 10}, {33, 3}, {129, 10}, {1000, 10}, {257, 33}};
  std::uint32_t seed = 300;
  for (const auto& shape : shapes) {
    const std::size_t rows = shape[0], classes = shape[1];
    SCOPED_TRACE("rows=" + std::to_string(rows) + " classes=" + std::to_string(classes));
    const auto logits = random_floats(rows * classes, ++seed, -5.0f, 5.0f);
    const auto labels = random_labels(rows, classes, ++seed);
    const float scale = 1.0f / static_cast<float>(rows);
    std::vector<float> d_ref(rows * classes), d_omp(rows * classes), d_again(rows * classes),
        d_one(rows * classes);
    std::size_t c_ref = 0, c_omp = 0, c_again = 0, c_one = 0;
    const double l_ref =
        ref->softmax_xent(logits.data(), labels.data(), rows, classes, scale, d_ref.data(), &c_ref);
    const double l_omp =
        omp->softmax_xent(logits.data(), labels.data(), rows, classes, scale, d_omp.data(), &c_omp);
    const double l_again = omp->softmax_xent(logits.data(), labels.data(), rows, classes, scale,
                                             d_again.data(), &c_again);
    const double l_one = omp1->softmax_xent(logits.data(), labels.data(), rows, classes, scale,
                                            d_one.data(), &c_one);
    // Same double arithmetic per row and the same row-order sum: 1e-12 relative
    // leaves room only for a libm that rounds exp/log differently between calls.
    EXPECT_NEAR(l_omp, l_ref, 1e-12 * l_ref);
    EXPECT_EQ(c_omp, c_ref);
    for (std::size_t i = 0; i < d_ref.size(); ++i)
      ASSERT_LE(ulp_distance(d_ref[i], d_omp[i]), 1) << "dlogits " << i;
    // Two threads twice, and one thread: bit-identical.
    EXPECT_EQ(l_again, l_omp);
    EXPECT_EQ(l_one, l_omp);
    EXPECT_EQ(c_again, c_omp);
    EXPECT_TRUE(bit_identical(d_again, d_omp));
    EXPECT_TRUE(bit_identical(d_one, d_omp));
  }
}

#if defined(HPCML_HAS_KOKKOS)
// Same per-row double arithmetic and row-order loss sum as the reference; the
// hit count is an integer parallel_reduce (exact in any order).
TEST(KernelsSoftmaxXent, KokkosMatchesReferenceAndIsDeterministic) {
  auto ref = make_backend("reference", 1);
  auto kokkos = make_backend("kokkos", 1);
  const std::size_t shapes[][2] = {{1, 1}, {7, 10}, {33, 3}, {129, 10}, {1000, 10}, {257, 33}};
  std::uint32_t seed = 500;
  for (const auto& shape : shapes) {
    const std::size_t rows = shape[0], classes = shape[1];
    SCOPED_TRACE("rows=" + std::to_string(rows) + " classes=" + std::to_string(classes));
    const auto logits = random_floats(rows * classes, ++seed, -5.0f, 5.0f);
    const auto labels = random_labels(rows, classes, ++seed);
    const float scale = 1.0f / static_cast<float>(rows);
    std::vector<float> d_ref(rows * classes), d_k(rows * classes), d_again(rows * classes);
    std::size_t c_ref = 0, c_k = 0, c_again = 0;
    const double l_ref =
        ref->softmax_xent(logits.data(), labels.data(), rows, classes, scale, d_ref.data(), &c_ref);
    const double l_k =
        kokkos->softmax_xent(logits.data(), labels.data(), rows, classes, scale, d_k.data(), &c_k);
    const double l_again = kokkos->softmax_xent(logits.data(), labels.data(), rows, classes, scale,
                                                d_again.data(), &c_again);
    EXPECT_NEAR(l_k, l_ref, 1e-12 * l_ref);
    EXPECT_EQ(c_k, c_ref);
    for (std::size_t i = 0; i < d_ref.size(); ++i)
      ASSERT_LE(ulp_distance(d_ref[i], d_k[i]), 1) << "dlogits " << i;
    EXPECT_EQ(l_again, l_k);
    EXPECT_EQ(c_again, c_k);
    EXPECT_TRUE(bit_identical(d_again, d_k));
  }
}
#endif

}  // namespace
}  // namespace hpcml::kernels::test

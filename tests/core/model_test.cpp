#include <gtest/gtest.h>

#include <cmath>

#include "hpcml/core/model.hpp"
#include "hpcml/core/optimizer.hpp"
#include "hpcml/kernels/factory.hpp"
#include "memory_dataset.hpp"

using hpcml::Batch;
using hpcml::Model;

namespace {

Batch make_batch(std::size_t rows, std::size_t cols, int classes) {
  auto d = hpcml::testing::MemoryDataset::blobs(rows, cols, classes, 5);
  std::vector<std::size_t> idx(rows);
  for (std::size_t i = 0; i < rows; ++i) idx[i] = i;
  Batch b;
  d->read(idx, rows)->next(b);
  return b;
}

}  // namespace

// Analytic gradients of the mean loss against central finite differences.
TEST(Model, GradientsMatchFiniteDifferences) {
  auto be = hpcml::kernels::make_backend("reference", 1);
  Model m(6, {5, 4}, 3);
  m.init(3);
  // Zero biases put rows whose inputs are all dead exactly on a ReLU kink, where
  // finite differences are one-sided: move biases off zero.
  for (const auto& t : m.tensors()) {
    if (!t.is_bias) continue;
    for (std::size_t j = 0; j < t.size(); ++j)
      m.parameters()[t.offset + j] = 0.1f + 0.01f * static_cast<float>(j);
  }
  Batch b = make_batch(8, 6, 3);
  m.train_batch(*be, b, 1.0f / static_cast<float>(b.rows));
  std::vector<float> g(m.gradients().begin(), m.gradients().end());
  auto p = m.parameters();
  const float eps = 1e-3f;
  std::size_t checked = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const float saved = p[i];
    p[i] = saved + eps;
    const double up = m.evaluate(*be, b).loss_sum / static_cast<double>(b.rows);
    p[i] = saved - eps;
    const double down = m.evaluate(*be, b).loss_sum / static_cast<double>(b.rows);
    p[i] = saved;
    const double fd = (up - down) / (2.0 * eps);
    EXPECT_NEAR(g[i], fd, 2e-3 + 2e-2 * std::fabs(fd)) << "parameter " << i;
    ++checked;
  }
  EXPECT_EQ(checked, m.parameters().size());
  EXPECT_EQ(m.parameters().size(), 6u * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3);
}

TEST(Model, ReadyIsCalledLastLayerFirstForEveryTensor) {
  auto be = hpcml::kernels::make_backend("reference", 1);
  Model m(4, {3}, 2);
  m.init(1);
  Batch b = make_batch(5, 4, 2);
  std::vector<std::size_t> order;
  m.train_batch(*be, b, 0.2f, [&](std::size_t i) { order.push_back(i); });
  EXPECT_EQ(order, (std::vector<std::size_t>{3, 2, 1, 0}));
}

TEST(Model, InitIsDeterministicAndHeScaled) {
  Model a(784, {512}, 10), b(784, {512}, 10);
  a.init(42);
  b.init(42);
  ASSERT_TRUE(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
  const auto& w = a.tensors()[0];
  double ss = 0;
  for (std::size_t i = 0; i < w.size(); ++i)
    ss += a.parameters()[w.offset + i] * a.parameters()[w.offset + i];
  const double std_dev = std::sqrt(ss / static_cast<double>(w.size()));
  EXPECT_NEAR(std_dev, std::sqrt(2.0 / 784), 0.002);
  const auto& bias = a.tensors()[1];
  for (std::size_t i = 0; i < bias.size(); ++i) EXPECT_EQ(a.parameters()[bias.offset + i], 0.0f);
}

TEST(SgdMomentum, MatchesTheFormulaAndSkipsDecayOnBiases) {
  auto be = hpcml::kernels::make_backend("reference", 1);
  Model m(2, {}, 2);  // one layer: weight 2x2, bias 2
  auto p = m.parameters();
  auto g = m.gradients();
  for (std::size_t i = 0; i < p.size(); ++i) {
    p[i] = 1.0f;
    g[i] = 0.5f;
  }
  hpcml::SgdMomentum opt(m, 0.9, 0.1);
  opt.step(*be, 0.1);
  opt.step(*be, 0.1);
  // weights: v1 = 0.5+0.1*1 = 0.6, w1 = 0.94; v2 = 0.9*0.6 + 0.5 + 0.094 = 1.134, w2 = 0.8266
  EXPECT_NEAR(p[0], 0.8266f, 1e-6);
  // biases: v1 = 0.5, b1 = 0.95; v2 = 0.95, b2 = 0.855
  EXPECT_NEAR(p[4], 0.855f, 1e-6);
}

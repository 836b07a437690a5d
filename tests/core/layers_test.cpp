// Models from a layer list: the conv/pool kernels on known values, every
// layer's backward pass against finite differences of its forward pass,
// shapes checked with errors naming the layer, and the config keys.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/model.hpp"
#include "hpcml/core/random.hpp"
#include "hpcml/kernels/factory.hpp"

namespace hpcml {
namespace {

LayerSpec layer(const std::string& type, std::int64_t a = 0) {
  LayerSpec s;
  s.type = type;
  if (type == "dense") s.units = a;
  if (type == "conv2d") s.filters = a;
  if (type == "maxpool2d" && a) s.size = a;
  return s;
}

LayerSpec conv(std::int64_t filters, std::int64_t k, std::int64_t stride, std::int64_t pad) {
  LayerSpec s = layer("conv2d", filters);
  s.kernel = k;
  s.stride = stride;
  s.padding = pad;
  return s;
}

TEST(Layers, Im2colAndMaxpoolOnKnownValues) {
  auto be = kernels::make_backend("reference", 1);
  // One 3x3 single-channel image 1..9, 3x3 window, padding 1: the centre
  // output's row is the whole image, the corner's has zeros.
  std::vector<float> x{1, 2, 3, 4, 5, 6, 7, 8, 9};
  const Backend::ConvShape s{1, 3, 3, 1, 3, 1, 1, 3, 3};
  std::vector<float> cols(9 * 9);
  be->im2col(x.data(), s, cols.data());
  for (int i = 0; i < 9; ++i) EXPECT_EQ(cols[4 * 9 + i], x[i]);
  EXPECT_EQ(std::vector<float>(cols.begin(), cols.begin() + 9),
            (std::vector<float>{0, 0, 0, 0, 1, 2, 0, 4, 5}));
  // col2im is its adjoint: <im2col(x), c> = <x, col2im(c)> for c = cols.
  std::vector<float> back(9);
  be->col2im(cols.data(), s, back.data());
  double lhs = 0, rhs = 0;
  for (float v : cols) lhs += double(v) * v;
  for (int i = 0; i < 9; ++i) rhs += double(x[i]) * back[i];
  EXPECT_DOUBLE_EQ(lhs, rhs);
  // 2x2 max pooling of a 4x4x2 image (channels interleaved).
  std::vector<float> img(32);
  for (int i = 0; i < 32; ++i) img[i] = static_cast<float>((i * 7) % 32);
  std::vector<float> y(8);
  std::vector<std::uint32_t> arg(8);
  be->maxpool(img.data(), 1, 4, 4, 2, 2, y.data(), arg.data());
  for (int o = 0; o < 8; ++o) EXPECT_EQ(y[o], img[arg[o]]);
  EXPECT_EQ(y[0], std::max({img[0], img[2], img[8], img[10]}));
  std::vector<float> dy(8, 1.0f), dx(32);
  be->maxpool_backward(dy.data(), arg.data(), 8, dx.data(), 32);
  double total = 0;
  for (float v : dx) total += v;
  EXPECT_EQ(total, 8.0);
}

TEST(Layers, DropoutMaskDependsOnlyOnTheSeed) {
  auto be = kernels::make_backend("reference", 1);
  std::vector<float> a(10000, 1.0f), b(10000, 1.0f), c(10000, 1.0f);
  be->dropout(a.data(), a.size(), 0.25f, 99);
  be->dropout(b.data(), b.size(), 0.25f, 99);
  be->dropout(c.data(), c.size(), 0.25f, 100);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::size_t kept = 0;
  for (float v : a) {
    if (v != 0) {
      ++kept;
      EXPECT_FLOAT_EQ(v, 1.0f / 0.75f);
    }
  }
  EXPECT_NEAR(static_cast<double>(kept) / 10000, 0.75, 0.02);
}

Batch random_batch(std::size_t rows, std::size_t cols, std::size_t classes, std::uint64_t seed) {
  SplitMix64 rng(seed);
  Batch b;
  b.rows = rows;
  b.cols = cols;
  for (std::size_t i = 0; i < rows * cols; ++i) b.x.push_back(static_cast<float>(rng.normal()));
  for (std::size_t i = 0; i < rows; ++i)
    b.y.push_back(static_cast<std::int32_t>(rng.below(classes)));
  return b;
}

// Every parameter's gradient (and so every layer's backward pass, which
// carries the input gradient down) against a central difference of the loss.
TEST(Layers, GradientsMatchFiniteDifferences) {
  auto dropout = layer("dropout");
  dropout.rate = 0.2;
  const std::vector<LayerSpec> specs{conv(3, 3, 1, 1),  layer("relu"), layer("maxpool2d", 2),
                                     conv(4, 3, 2, 1),  layer("relu"), layer("flatten"),
                                     layer("dense", 6), layer("relu"), dropout};
  Model m(Shape{6, 6, 2}, specs, 3);
  m.init(5);
  auto be = kernels::make_backend("reference", 1);
  const Batch batch = random_batch(4, 72, 3, 17);
  m.set_dropout_seed(1234);
  m.train_batch(*be, batch, 1.0f);  // gradients of the summed loss
  const std::vector<float> grad(m.gradients().begin(), m.gradients().end());
  auto loss = [&] { return m.train_batch(*be, batch, 1.0f).loss_sum; };
  // Small enough that few max-pool windows change their maximum within ±h
  // (at 1e-2 about 4 % of the differences cross such a kink), large enough
  // for float rounding of a loss of about 4 to stay near 1e-3.
  const float h = 1e-4f;
  std::size_t checked = 0, bad = 0;
  std::string first_bad;
  for (const auto& t : m.tensors()) {
    for (std::size_t i = t.offset; i < t.offset + t.size(); ++i) {
      float& p = m.parameters()[i];
      const float keep = p;
      p = keep + h;
      const double up = loss();
      p = keep - h;
      const double down = loss();
      p = keep;
      const double numeric = (up - down) / (2.0 * h);
      ++checked;
      // A difference across a ReLU or max-pool kink is meaningless: allow 2 % of them.
      if (std::fabs(numeric - grad[i]) > 2e-2 * std::max(1.0, std::fabs(numeric))) {
        if (first_bad.empty())
          first_bad = t.name + "[" + std::to_string(i - t.offset) + "]: analytic " +
                      std::to_string(grad[i]) + ", numeric " + std::to_string(numeric);
        ++bad;
      }
    }
  }
  EXPECT_EQ(checked, m.parameters().size());
  EXPECT_LE(bad, checked / 50) << bad << " of " << checked << " differ, first " << first_bad;
}

TEST(Layers, OmpMatchesReferenceOnAConvolutionalModel) {
  const std::vector<LayerSpec> specs{conv(8, 5, 1, 2), layer("relu"),      layer("maxpool2d", 2),
                                     layer("flatten"), layer("dense", 16), layer("relu")};
  const Batch batch = random_batch(16, 12 * 12, 4, 3);
  std::vector<float> grads[2];
  double losses[2];
  const char* names[] = {"reference", "omp"};
  for (int b = 0; b < 2; ++b) {
    Model m(Shape{12, 12, 1}, specs, 4);
    m.init(9);
    auto be = kernels::make_backend(names[b], 2);
    losses[b] = m.train_batch(*be, batch, 1.0f / 16).loss_sum;
    grads[b].assign(m.gradients().begin(), m.gradients().end());
  }
  EXPECT_NEAR(losses[0], losses[1], 1e-5 * std::fabs(losses[0]));
  for (std::size_t i = 0; i < grads[0].size(); ++i)
    ASSERT_NEAR(grads[0][i], grads[1][i], 1e-4 * (1 + std::fabs(grads[0][i]))) << i;
}

TEST(Layers, TheMlpIsItsLayerList) {
  Model a(20, {8, 5}, 3);
  Model b(Shape{1, 1, 20}, mlp_layers({8, 5}), 3);
  a.init(1);
  b.init(1);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  EXPECT_EQ(a.tensors()[2].name, "fc2.weight");
  EXPECT_EQ(a.describe(), "20 -> dense 8 -> relu -> dense 5 -> relu -> dense 3");
  auto be = kernels::make_backend("reference", 1);
  const Batch batch = random_batch(7, 20, 3, 4);
  EXPECT_EQ(a.train_batch(*be, batch, 1.0f).loss_sum, b.train_batch(*be, batch, 1.0f).loss_sum);
  EXPECT_TRUE(std::equal(a.gradients().begin(), a.gradients().end(), b.gradients().begin()));
  EXPECT_DOUBLE_EQ(a.train_flops_per_sample(), 4.0 * 20 * 8 + 6.0 * 8 * 5 + 6.0 * 5 * 3);
}

void expect_layer_error(Shape in, const std::vector<LayerSpec>& specs, const std::string& what) {
  try {
    Model m(in, specs, 10);
    ADD_FAILURE() << "accepted a model that should fail with: " << what;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(Layers, ShapesAreCheckedNamingTheLayer) {
  expect_layer_error({28, 28, 1}, {conv(8, 5, 1, 0), layer("maxpool2d", 5)},
                     "model.layers[1] (maxpool2d 5): the 24x24x8 input is not divisible");
  expect_layer_error({1, 1, 784}, {conv(8, 5, 1, 0)},
                     "model.layers[0] (conv2d 5x5x8 s1 p0): the 5x5 window does not fit the 784 "
                     "input (a flat input: set model.input_shape)");
  expect_layer_error({8, 8, 1}, {conv(8, 3, 1, 3)}, "padding must be in [0, kernel)");
  expect_layer_error({8, 8, 1}, {layer("softmax")}, "unknown type 'softmax'");
}

TrainConfig read(const std::string& toml) {
  ConfigDoc doc = ConfigDoc::parse(toml, "cnn.toml");
  return read_train_config(doc);
}

void expect_config_error(const std::string& toml, const std::string& what) {
  try {
    read(toml);
    ADD_FAILURE() << "accepted: " << toml;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(Layers, ConfigKeys) {
  const TrainConfig c = read(
      "[model]\ninput_shape = [28, 28, 1]\n"
      "[[model.layers]]\ntype = \"conv2d\"\nfilters = 32\nkernel = 5\npadding = 2\n"
      "[[model.layers]]\ntype = \"relu\"\n"
      "[[model.layers]]\ntype = \"maxpool2d\"\n"
      "[[model.layers]]\ntype = \"dropout\"\nrate = 0.25\n");
  ASSERT_EQ(c.model.layers.size(), 4u);
  EXPECT_EQ(c.model.layers[0].describe(), "conv2d 5x5x32 s1 p2");
  EXPECT_EQ(c.model.layers[2].size, 2);
  EXPECT_DOUBLE_EQ(c.model.layers[3].rate, 0.25);
  EXPECT_EQ(build_model(c.model, 784, 10).describe(),
            "28x28x1 -> conv2d 5x5x32 s1 p2 -> relu -> maxpool2d 2 -> dropout 0.25 -> dense 10");
  EXPECT_THROW(build_model(c.model, 785, 10), ConfigError);
  expect_config_error("[[model.layers]]\ntype = \"dense\"\n",
                      "cnn.toml: model.layers[0]: key 'units': missing");
  expect_config_error("[[model.layers]]\nunits = 3\n", "model.layers[0]: key 'type': missing");
  expect_config_error("[[model.layers]]\ntype = \"dense\"\nunits = 3\nfilters = 4\n",
                      "model.layers[0]: key 'filters': unknown key");
  expect_config_error("[model]\nhidden = [4]\n[[model.layers]]\ntype = \"relu\"\n", "not both");
  expect_config_error("[model]\ninput_shape = [28, 28]\n", "expected [height, width, channels]");
  expect_config_error("[model]\nlayers = 3\n", "expected an array of tables");
}

}  // namespace
}  // namespace hpcml

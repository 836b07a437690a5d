// The optimizers (core/optimizer.hpp): each against its formula written out
// in double precision, omp against reference bit for bit, the sharded range
// update against the full step, LARS/LAMB's layer-wise trust ratios, and a
// short training run with each.
#include "hpcml/core/optimizer.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "hpcml/core/error.hpp"
#include "hpcml/core/trainer.hpp"
#include "hpcml/kernels/factory.hpp"
#include "memory_dataset.hpp"

namespace hpcml {
namespace {

using testing::MemoryDataset;
using testing::SelfCollectives;

const char* const kNames[] = {"sgd", "adam", "adamw", "lars", "lamb"};

TrainConfig::Optimizer options(const std::string& name) {
  TrainConfig::Optimizer o;
  o.name = name;
  o.momentum = 0.9;
  o.weight_decay = 0.01;
  o.lars_eta = 0.02;
  return o;
}

// Fills the model's parameters and gradients with a deterministic pattern
// that differs per step.
void fill(Model& m, int step) {
  auto p = m.parameters();
  auto g = m.gradients();
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (step == 0) p[i] = std::sin(0.37 * static_cast<double>(i) + 1.0) * 0.5f;
    g[i] = static_cast<float>(std::cos(0.11 * static_cast<double>(i) + step) * 0.1);
  }
}

// The formulas, in double, per tensor (biases: no decay; LARS/LAMB: trust 1).
struct Oracle {
  TrainConfig::Optimizer o;
  std::vector<double> w, m, v;
  void step(const Model& model, const std::vector<float>& g, double lr, int t) {
    for (const auto& tv : model.tensors()) {
      const std::size_t a = tv.offset, n = tv.size();
      const double wd = tv.is_bias ? 0.0 : o.weight_decay;
      const double b1 = o.beta1, b2 = o.beta2;
      const double c1 = 1 - std::pow(b1, t), c2 = 1 - std::pow(b2, t);
      if (o.name == "sgd") {
        for (std::size_t i = a; i < a + n; ++i) {
          const double gg = g[i] + wd * w[i];
          m[i] = o.momentum * m[i] + gg;
          w[i] -= lr * (o.nesterov ? gg + o.momentum * m[i] : m[i]);
        }
      } else if (o.name == "adam" || o.name == "adamw") {
        const bool dec = o.name == "adamw";
        for (std::size_t i = a; i < a + n; ++i) {
          const double gg = g[i] + (dec ? 0 : wd) * w[i];
          m[i] = b1 * m[i] + (1 - b1) * gg;
          v[i] = b2 * v[i] + (1 - b2) * gg * gg;
          w[i] -= lr * ((m[i] / c1) / (std::sqrt(v[i] / c2) + o.eps) + (dec ? wd : 0) * w[i]);
        }
      } else if (o.name == "lars") {
        double wn = 0, gn = 0;
        for (std::size_t i = a; i < a + n; ++i) wn += w[i] * w[i], gn += double(g[i]) * g[i];
        wn = std::sqrt(wn), gn = std::sqrt(gn);
        const double local = tv.is_bias ? 1.0 : o.lars_eta * wn / (gn + wd * wn);
        for (std::size_t i = a; i < a + n; ++i) {
          m[i] = o.momentum * m[i] + lr * local * (g[i] + wd * w[i]);
          w[i] -= m[i];
        }
      } else {  // lamb
        std::vector<double> u(n);
        double wn = 0, un = 0;
        for (std::size_t i = a; i < a + n; ++i) {
          m[i] = b1 * m[i] + (1 - b1) * g[i];
          v[i] = b2 * v[i] + (1 - b2) * double(g[i]) * g[i];
          u[i - a] = (m[i] / c1) / (std::sqrt(v[i] / c2) + o.eps) + wd * w[i];
          wn += w[i] * w[i], un += u[i - a] * u[i - a];
        }
        const double trust = tv.is_bias ? 1.0 : std::sqrt(wn) / std::sqrt(un);
        for (std::size_t i = a; i < a + n; ++i) w[i] -= lr * trust * u[i - a];
      }
    }
  }
};

TEST(Optimizer, EachFollowsItsFormula) {
  for (const char* name : kNames) {
    for (bool nesterov : {false, true}) {
      if (nesterov && std::string(name) != "sgd") continue;
      Model model(5, {7}, 3);
      auto be = kernels::make_backend("reference", 1);
      auto o = options(name);
      o.nesterov = nesterov;
      auto opt = make_optimizer(o, model);
      Oracle ref{o, {}, {}, {}};
      const std::size_t n = model.parameters().size();
      ref.m.assign(n, 0);
      ref.v.assign(n, 0);
      for (int t = 1; t <= 4; ++t) {
        fill(model, t - 1);
        if (t == 1) ref.w.assign(model.parameters().begin(), model.parameters().end());
        const std::vector<float> g(model.gradients().begin(), model.gradients().end());
        const double lr = 0.1 / t;
        opt->step(*be, lr, static_cast<std::size_t>(t));
        ref.step(model, g, lr, t);
      }
      for (std::size_t i = 0; i < n; ++i)
        ASSERT_NEAR(model.parameters()[i], ref.w[i], 2e-6 * (1 + std::fabs(ref.w[i])))
            << name << (nesterov ? " nesterov" : "") << " parameter " << i;
      EXPECT_EQ(opt->state().size(), optimizer_slots(name) * n) << name;
    }
  }
}

// More parameters than the omp backend's parallel threshold (2^15), so its
// threaded loops run.
TEST(Optimizer, OmpMatchesReferenceBitForBit) {
  for (const char* name : kNames) {
    std::vector<float> result[2];
    const char* backends[] = {"reference", "omp"};
    for (int b = 0; b < 2; ++b) {
      Model model(200, {200}, 10);
      auto be = kernels::make_backend(backends[b], 2);
      auto opt = make_optimizer(options(name), model);
      for (int t = 1; t <= 3; ++t) {
        fill(model, t - 1);
        opt->step(*be, 0.05, static_cast<std::size_t>(t));
      }
      result[b].assign(model.parameters().begin(), model.parameters().end());
      result[b].insert(result[b].end(), opt->state().begin(), opt->state().end());
    }
    EXPECT_EQ(result[0], result[1]) << name;
  }
}

// The sharded update: ranges that cut tensors give the full step's bits;
// LARS and LAMB refuse (they need whole layers).
TEST(Optimizer, RangeUpdatesEqualTheFullStep) {
  for (const char* name : kNames) {
    const auto o = options(name);
    Model full(6, {5}, 4), cut(6, {5}, 4);
    auto be = kernels::make_backend("reference", 1);
    auto a = make_optimizer(o, full), b = make_optimizer(o, cut);
    ASSERT_EQ(a->layer_wise(), optimizer_is_layer_wise(name));
    const std::size_t n = full.parameters().size();
    for (int t = 1; t <= 3; ++t) {
      fill(full, t - 1);
      fill(cut, t - 1);
      a->step(*be, 0.1, static_cast<std::size_t>(t));
      const std::vector<float> g(cut.gradients().begin(), cut.gradients().end());
      if (b->layer_wise()) {
        EXPECT_THROW(b->step_range(*be, 0.1, t, 0, n, g.data()), Error) << name;
        break;
      }
      for (std::size_t lo : {std::size_t{0}, std::size_t{13}, std::size_t{31}}) {
        const std::size_t hi = lo == 0 ? 13 : lo == 13 ? 31 : n;
        b->step_range(*be, 0.1, static_cast<std::size_t>(t), lo, hi, g.data() + lo);
      }
    }
    if (b->layer_wise()) continue;
    EXPECT_TRUE(
        std::equal(full.parameters().begin(), full.parameters().end(), cut.parameters().begin()))
        << name;
    EXPECT_TRUE(std::equal(a->state().begin(), a->state().end(), b->state().begin())) << name;
  }
}

// step_tensors over groups of tensors (as the trainer's fusion buckets name
// them: last tensors first, in uneven groups) gives the whole step's bits for
// every optimizer, LARS and LAMB included (their norms are per tensor); a
// tensor left out is not touched, an index beyond the tensors is an Error.
TEST(Optimizer, TensorGroupUpdatesEqualTheFullStep) {
  for (const char* name : kNames) {
    for (bool nesterov : {false, true}) {
      if (nesterov && std::string(name) != "sgd") continue;
      auto o = options(name);
      o.nesterov = nesterov;
      Model full(6, {5, 3}, 4), parts(6, {5, 3}, 4);
      auto be = kernels::make_backend("reference", 1);
      auto a = make_optimizer(o, full), b = make_optimizer(o, parts);
      const std::size_t tensors = parts.tensors().size();
      ASSERT_EQ(tensors, 6u);
      const std::vector<std::vector<std::size_t>> groups = {{5, 4, 3}, {2}, {1, 0}};
      for (int t = 1; t <= 3; ++t) {
        fill(full, t - 1);
        fill(parts, t - 1);
        a->step(*be, 0.1, static_cast<std::size_t>(t));
        for (const auto& g : groups) b->step_tensors(*be, 0.1, static_cast<std::size_t>(t), g);
      }
      const std::string what = std::string(name) + (nesterov ? " nesterov" : "");
      EXPECT_TRUE(std::equal(full.parameters().begin(), full.parameters().end(),
                             parts.parameters().begin()))
          << what;
      EXPECT_TRUE(std::equal(a->state().begin(), a->state().end(), b->state().begin())) << what;
      // Only the named tensors move.
      const std::vector<float> before(parts.parameters().begin(), parts.parameters().end());
      const std::size_t one[] = {2};
      b->step_tensors(*be, 0.1, 4, one);
      const TensorView& tv = parts.tensors()[2];
      for (std::size_t i = 0; i < before.size(); ++i) {
        const bool inside = i >= tv.offset && i < tv.offset + tv.size();
        if (!inside) {
          ASSERT_EQ(before[i], parts.parameters()[i]) << what << " element " << i;
        }
      }
      EXPECT_FALSE(std::equal(before.begin() + static_cast<std::ptrdiff_t>(tv.offset),
                              before.begin() + static_cast<std::ptrdiff_t>(tv.offset + tv.size()),
                              parts.parameters().begin() + static_cast<std::ptrdiff_t>(tv.offset)))
          << what << ": tensor 2 was not updated";
      const std::size_t bad[] = {tensors};
      EXPECT_THROW(b->step_tensors(*be, 0.1, 4, bad), Error) << what;
    }
  }
}

TEST(Optimizer, TrustRatioIsOneForZeroNorms) {
  EXPECT_DOUBLE_EQ(trust_ratio(0, 3), 1.0);
  EXPECT_DOUBLE_EQ(trust_ratio(2, 0), 1.0);
  EXPECT_DOUBLE_EQ(trust_ratio(2, 4), 0.5);
  // LARS on a zero-initialised layer: local rate 1, a plain momentum step.
  Model model(3, {2}, 2);
  auto be = kernels::make_backend("reference", 1);
  std::fill(model.parameters().begin(), model.parameters().end(), 0.0f);
  std::fill(model.gradients().begin(), model.gradients().end(), 0.5f);
  auto o = options("lars");
  o.weight_decay = 0;
  make_optimizer(o, model)->step(*be, 0.1, 1);
  for (float w : model.parameters()) EXPECT_FLOAT_EQ(w, -0.05f);
}

TEST(Optimizer, UnknownNamesAreConfigErrors) {
  Model model(3, {2}, 2);
  auto o = options("rmsprop");
  EXPECT_THROW(make_optimizer(o, model), ConfigError);
  EXPECT_THROW(optimizer_slots("rmsprop"), ConfigError);
  EXPECT_FALSE(is_optimizer_name("rmsprop"));
}

TEST(Optimizer, EachTrainsASeparableProblem) {
  auto train = MemoryDataset::blobs(2000, 20, 4, 11);
  auto test = MemoryDataset::blobs(500, 20, 4, 11);
  for (const char* name : kNames) {
    TrainConfig c;
    c.model.hidden = {16};
    c.train.epochs = 3;
    c.train.batch_size = 32;
    c.optimizer = options(name);
    // Rates of the usual order for each family.
    c.optimizer.lr = std::string(name).rfind("adam", 0) == 0 ? 0.003
                     : std::string(name) == "lamb"           ? 0.01
                     : std::string(name) == "lars"           ? 1.0
                                                             : 0.05;
    c.run.progress = "never";
    auto be = kernels::make_backend("omp", 1);
    SelfCollectives comm;
    Trainer t(c, *be, comm, *train, test.get(), "", nullptr);
    const auto s = t.run();
    EXPECT_GT(s.final_test_acc, 0.9) << name;
  }
}

}  // namespace
}  // namespace hpcml

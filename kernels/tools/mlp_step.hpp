// A plain MLP training step written against the Backend interface alone
// (forward GEMM + bias + ReLU, softmax cross-entropy, backward GEMMs, column
// sums, SGD with momentum), every buffer in the backend's memory. Shared by the
// gpu tests (cuda against reference) and the gpu benchmark (kernels/tools/
// gpu_bench.cpp); independent of core's Model so it measures the backend only.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "hpcml/core/backend.hpp"

namespace hpcml::kernels::tools {

class MlpStep {
 public:
  /// dims = {inputs, hidden..., classes}; weights drawn from `seed` on the host
  /// (the same for every backend) and copied in.
  MlpStep(Backend& be, std::vector<std::size_t> dims, std::size_t batch, std::uint32_t seed)
      : be_(be), dims_(std::move(dims)), batch_(batch) {
    std::mt19937 gen(seed);
    for (std::size_t l = 0; l + 1 < dims_.size(); ++l) {
      const std::size_t in = dims_[l], out = dims_[l + 1];
      std::normal_distribution<float> dist(0.0f, std::sqrt(2.0f / static_cast<float>(in)));
      std::vector<float> w(in * out);
      for (auto& x : w) x = dist(gen);
      w_.emplace_back(be, in * out);
      be.copy_from_host(w_.back().data(), w.data(), w.size() * sizeof(float));
      b_.emplace_back(be, out);
      gw_.emplace_back(be, in * out);
      gb_.emplace_back(be, out);
      vw_.emplace_back(be, in * out);
      vb_.emplace_back(be, out);
      act_.emplace_back(be, batch * out);
      dact_.emplace_back(be, batch * out);
    }
  }

  /// One step on x (batch x inputs) and y (batch) in the backend's memory;
  /// returns the summed loss (a sync point on device backends).
  double step(const float* x, const std::int32_t* y, float lr, std::size_t* correct = nullptr) {
    const std::size_t layers = w_.size();
    for (std::size_t l = 0; l < layers; ++l) {
      const float* in = l == 0 ? x : act_[l - 1].data();
      be_.gemm(false, false, batch_, dims_[l + 1], dims_[l], 1.0f, in, dims_[l], w_[l].data(),
               dims_[l + 1], 0.0f, act_[l].data(), dims_[l + 1]);
      be_.add_bias(act_[l].data(), b_[l].data(), batch_, dims_[l + 1]);
      if (l + 1 < layers) be_.relu(act_[l].data(), batch_ * dims_[l + 1]);
    }
    const double loss =
        be_.softmax_xent(act_[layers - 1].data(), y, batch_, dims_.back(),
                         1.0f / static_cast<float>(batch_), dact_[layers - 1].data(), correct);
    for (std::size_t l = layers; l-- > 0;) {
      const float* in = l == 0 ? x : act_[l - 1].data();
      be_.gemm(true, false, dims_[l], dims_[l + 1], batch_, 1.0f, in, dims_[l], dact_[l].data(),
               dims_[l + 1], 0.0f, gw_[l].data(), dims_[l + 1]);
      be_.column_sums(dact_[l].data(), batch_, dims_[l + 1], gb_[l].data());
      if (l > 0) {
        be_.gemm(false, true, batch_, dims_[l], dims_[l + 1], 1.0f, dact_[l].data(), dims_[l + 1],
                 w_[l].data(), dims_[l + 1], 0.0f, dact_[l - 1].data(), dims_[l]);
        be_.relu_backward(dact_[l - 1].data(), act_[l - 1].data(), batch_ * dims_[l]);
      }
    }
    for (std::size_t l = 0; l < layers; ++l) {
      be_.sgd_momentum(w_[l].data(), gw_[l].data(), vw_[l].data(), w_[l].size(), lr, 0.9f, 0.0f);
      be_.sgd_momentum(b_[l].data(), gb_[l].data(), vb_[l].data(), b_[l].size(), lr, 0.9f, 0.0f);
    }
    return loss;
  }

  /// Floating-point operations of the GEMMs of one step (2 per multiply-add).
  double gemm_flops() const {
    double f = 0;
    for (std::size_t l = 0; l + 1 < dims_.size(); ++l) {
      const double mnk = 2.0 * static_cast<double>(batch_) * static_cast<double>(dims_[l]) *
                         static_cast<double>(dims_[l + 1]);
      f += (l == 0 ? 2.0 : 3.0) * mnk;  // forward, dW, and dX except for the input layer
    }
    return f;
  }

  /// Every weight and bias, copied to the host, layer by layer.
  std::vector<float> parameters() {
    std::vector<float> out;
    for (std::size_t l = 0; l < w_.size(); ++l) {
      for (auto* a : {&w_[l], &b_[l]}) {
        std::vector<float> h(a->size());
        be_.copy_to_host(h.data(), a->data(), h.size() * sizeof(float));
        out.insert(out.end(), h.begin(), h.end());
      }
    }
    return out;
  }

  std::size_t batch() const { return batch_; }
  const std::vector<std::size_t>& dims() const { return dims_; }

 private:
  Backend& be_;
  std::vector<std::size_t> dims_;
  std::size_t batch_;
  std::vector<BackendArray<float>> w_, b_, gw_, gb_, vw_, vb_, act_, dact_;
};

/// A learnable synthetic task: class c has a random centre; a sample is its
/// centre plus noise. Same data for every backend.
inline void synthetic_batch(std::size_t batch, std::size_t features, std::size_t classes,
                            std::uint32_t seed, std::vector<float>& x,
                            std::vector<std::int32_t>& y) {
  std::mt19937 centres_gen(12345);
  std::normal_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> centres(classes * features);
  for (auto& c : centres) c = unit(centres_gen);
  std::mt19937 gen(seed);
  std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(classes) - 1);
  x.resize(batch * features);
  y.resize(batch);
  for (std::size_t i = 0; i < batch; ++i) {
    y[i] = pick(gen);
    for (std::size_t f = 0; f < features; ++f)
      x[i * features + f] =
          centres[static_cast<std::size_t>(y[i]) * features + f] + 1.5f * unit(gen);
  }
}

}  // namespace hpcml::kernels::tools

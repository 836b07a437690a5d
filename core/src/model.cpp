#include "hpcml/core/model.hpp"

#include <algorithm>
#include <cmath>

#include "hpcml/core/error.hpp"
#include "hpcml/core/random.hpp"

namespace hpcml {

Mlp::Mlp(std::size_t inputs, const std::vector<std::int64_t>& hidden, std::size_t classes)
    : inputs_(inputs), classes_(classes) {
  HPCML_REQUIRE(inputs >= 1 && classes >= 2, Error, "an MLP needs >= 1 input and >= 2 classes");
  widths_.push_back(inputs);
  for (auto h : hidden) {
    HPCML_REQUIRE(h >= 1, Error, "hidden layer widths must be >= 1");
    widths_.push_back(static_cast<std::size_t>(h));
  }
  widths_.push_back(classes);
  std::size_t off = 0;
  for (std::size_t l = 0; l + 1 < widths_.size(); ++l) {
    const std::string base = "fc" + std::to_string(l + 1);
    tensors_.push_back({base + ".weight", off, widths_[l], widths_[l + 1], false});
    off += widths_[l] * widths_[l + 1];
    tensors_.push_back({base + ".bias", off, 1, widths_[l + 1], true});
    off += widths_[l + 1];
  }
  own_params_.assign(off, 0.0f);
  params_ = own_params_;
  own_grads_.assign(off, 0.0f);
  grads_ = own_grads_;
  acts_.resize(widths_.size() - 1);
}

void Mlp::init(std::uint64_t seed) {
  SplitMix64 rng(seed * 0x2545f4914f6cdd1dULL + 1);
  for (const auto& t : tensors_) {
    float* p = params_.data() + t.offset;
    if (t.is_bias) {
      std::fill(p, p + t.size(), 0.0f);
      continue;
    }
    const double std_dev = std::sqrt(2.0 / static_cast<double>(t.rows));
    for (std::size_t i = 0; i < t.size(); ++i) p[i] = static_cast<float>(rng.normal() * std_dev);
  }
}

void Mlp::adopt_storage(std::vector<float>& own, std::span<float>& view, std::span<float> storage,
                        const char* what) {
  HPCML_REQUIRE(storage.size() == params_.size(), Error,
                std::string(what) + " storage of " + std::to_string(storage.size()) +
                    " elements given to a model with " + std::to_string(params_.size()) +
                    " parameters");
  std::copy(view.begin(), view.end(), storage.begin());
  view = storage;
  own.clear();
  own.shrink_to_fit();
}

void Mlp::use_gradient_storage(std::span<float> storage) {
  adopt_storage(own_grads_, grads_, storage, "gradient");
}

void Mlp::use_parameter_storage(std::span<float> storage) {
  adopt_storage(own_params_, params_, storage, "parameter");
}

std::vector<std::span<float>> Mlp::gradient_buffers() {
  std::vector<std::span<float>> out;
  for (const auto& t : tensors_) out.emplace_back(grads_.data() + t.offset, t.size());
  return out;
}

double Mlp::train_flops_per_sample() const {
  // Per dense layer: forward x·W (2·in·out), dW = xᵀ·δ (2·in·out), δ·Wᵀ (2·in·out,
  // skipped for the first layer whose input gradient is not needed).
  double f = 0;
  for (std::size_t l = 0; l + 1 < widths_.size(); ++l) {
    const double io = static_cast<double>(widths_[l]) * static_cast<double>(widths_[l + 1]);
    f += (l == 0 ? 4.0 : 6.0) * io;
  }
  return f;
}

void Mlp::forward(Backend& be, const Batch& batch) {
  HPCML_REQUIRE(batch.cols == inputs_, DataError,
                "batch has " + std::to_string(batch.cols) + " features, the model expects " +
                    std::to_string(inputs_));
  const std::size_t n = batch.rows;
  const float* in = batch.x.data();
  const std::size_t layers = widths_.size() - 1;
  for (std::size_t l = 0; l < layers; ++l) {
    const TensorView& w = tensors_[2 * l];
    const TensorView& b = tensors_[2 * l + 1];
    auto& out = acts_[l];
    out.resize(n * w.cols);
    be.gemm(false, false, n, w.cols, w.rows, 1.0f, in, w.rows, params_.data() + w.offset, w.cols,
            0.0f, out.data(), w.cols);
    be.add_bias(out.data(), params_.data() + b.offset, n, w.cols);
    if (l + 1 < layers) be.relu(out.data(), out.size());
    in = out.data();
  }
}

BatchResult Mlp::train_batch(Backend& be, const Batch& batch, float grad_scale,
                             const std::function<void(std::size_t)>& ready) {
  forward(be, batch);
  const std::size_t n = batch.rows;
  const std::size_t layers = widths_.size() - 1;
  BatchResult r;
  r.rows = n;
  delta_.resize(n * classes_);
  r.loss_sum = be.softmax_xent(acts_.back().data(), batch.y.data(), n, classes_, grad_scale,
                               delta_.data(), &r.correct);
  for (std::size_t li = layers; li-- > 0;) {
    const TensorView& w = tensors_[2 * li];
    const TensorView& b = tensors_[2 * li + 1];
    const float* input = li == 0 ? batch.x.data() : acts_[li - 1].data();
    // dW = inputᵀ · δ  (fan_in x fan_out), db = column sums of δ
    be.gemm(true, false, w.rows, w.cols, n, 1.0f, input, w.rows, delta_.data(), w.cols, 0.0f,
            grads_.data() + w.offset, w.cols);
    be.column_sums(delta_.data(), n, w.cols, grads_.data() + b.offset);
    if (li > 0) {
      // δ_prev = δ · Wᵀ, masked by the ReLU of the previous layer's output.
      delta_prev_.resize(n * w.rows);
      be.gemm(false, true, n, w.rows, w.cols, 1.0f, delta_.data(), w.cols,
              params_.data() + w.offset, w.cols, 0.0f, delta_prev_.data(), w.rows);
      be.relu_backward(delta_prev_.data(), acts_[li - 1].data(), delta_prev_.size());
    }
    if (ready) {
      ready(2 * li + 1);
      ready(2 * li);
    }
    if (li > 0) std::swap(delta_, delta_prev_);
  }
  return r;
}

BatchResult Mlp::evaluate(Backend& be, const Batch& batch) {
  forward(be, batch);
  BatchResult r;
  r.rows = batch.rows;
  r.loss_sum = be.softmax_xent(acts_.back().data(), batch.y.data(), batch.rows, classes_, 1.0f,
                               nullptr, &r.correct);
  return r;
}

}  // namespace hpcml

#include "hpcml/core/optimizer.hpp"

#include <algorithm>
#include <cmath>

#include "hpcml/core/error.hpp"

namespace hpcml {

Optimizer::Optimizer(Model& model, std::size_t slots)
    : model_(model),
      slots_(slots),
      memory_(&model.memory()),
      state_(model.memory(), slots * model.parameters().size()),
      all_tensors_(model.tensors().size()) {
  for (std::size_t i = 0; i < all_tensors_.size(); ++i) all_tensors_[i] = i;
}

void Optimizer::check_memory() const {
  Backend& now = model_.memory();
  const bool same = &now == memory_ || (now.memory_space() == MemorySpace::kHost &&
                                        memory_->memory_space() == MemorySpace::kHost);
  HPCML_REQUIRE(same, Error,
                "optimizer " + name() + ": its state is in the " + memory_->name() +
                    " backend's memory, the model's buffers in the " + now.name() +
                    " backend's (bind the model before creating the optimizer)");
}

void Optimizer::copy_state_to_host(std::span<float> out) const {
  HPCML_REQUIRE(out.size() == state_.size(), Error,
                "copy_state_to_host: " + std::to_string(out.size()) + " values for " +
                    std::to_string(state_.size()) + " state values");
  memory_->copy_to_host(out.data(), state_.data(), out.size_bytes());
}

void Optimizer::load_state(std::span<const float> in) {
  HPCML_REQUIRE(in.size() == state_.size(), Error,
                "load_state: " + std::to_string(in.size()) + " values for " +
                    std::to_string(state_.size()) + " state values");
  memory_->copy_from_host(state_.data(), in.data(), in.size_bytes());
}

template <class F>
void Optimizer::for_each_cut(std::size_t lo, std::size_t hi, F&& f) const {
  for (const auto& t : model_.tensors()) {
    const std::size_t a = std::max(lo, t.offset), b = std::min(hi, t.offset + t.size());
    if (a < b) f(t, a, b);
  }
}

void Optimizer::update_elementwise(Backend&, const TensorView&, std::size_t, std::size_t,
                                   const float*, double, std::size_t) {
  HPCML_THROW(Error, "optimizer " + name() + ": no elementwise update (a layer-wise optimizer)");
}

void Optimizer::step_range(Backend& be, double lr, std::size_t t, std::size_t lo, std::size_t hi,
                           const float* mean_grad) {
  const std::size_t n = model_.parameters().size();
  HPCML_REQUIRE(lo <= hi && hi <= n, Error,
                "step_range [" + std::to_string(lo) + ", " + std::to_string(hi) + ") outside the " +
                    std::to_string(n) + " parameters");
  HPCML_REQUIRE(!layer_wise(), Error,
                "optimizer " + name() + " needs whole tensors and cannot take a sharded update");
  check_memory();
  for_each_cut(lo, hi, [&](const TensorView& tv, std::size_t a, std::size_t b) {
    update_elementwise(be, tv, a, b, mean_grad + (a - lo), lr, t);
  });
}

void Optimizer::update_tensor(Backend& be, const TensorView& tv, double lr, std::size_t t) {
  update_elementwise(be, tv, tv.offset, tv.offset + tv.size(),
                     model_.gradients().data() + tv.offset, lr, t);
}

void Optimizer::step(Backend& be, double lr, std::size_t t) {
  step_tensors(be, lr, t, all_tensors_);
}

void Optimizer::step_tensors(Backend& be, double lr, std::size_t t,
                             std::span<const std::size_t> tensors) {
  check_memory();
  const auto& all = model_.tensors();
  for (const std::size_t i : tensors) {
    HPCML_REQUIRE(i < all.size(), Error,
                  "optimizer " + name() + ": tensor " + std::to_string(i) + " of " +
                      std::to_string(all.size()));
    update_tensor(be, all[i], lr, t);
  }
}

double trust_ratio(double w_norm, double d_norm) {
  return w_norm > 0 && d_norm > 0 ? w_norm / d_norm : 1.0;
}

// ---- SGD -------------------------------------------------------------------

SgdMomentum::SgdMomentum(Model& model, double momentum, double weight_decay, bool nesterov)
    : Optimizer(model, 1),
      momentum_(static_cast<float>(momentum)),
      weight_decay_(static_cast<float>(weight_decay)),
      nesterov_(nesterov) {}

void SgdMomentum::update_elementwise(Backend& be, const TensorView& t, std::size_t a, std::size_t b,
                                     const float* g, double lr, std::size_t) {
  float* w = model_.parameters().data() + a;
  float* v = slot(0) + a;
  const float wd = t.is_bias ? 0.0f : weight_decay_;
  if (nesterov_)
    be.sgd_nesterov(w, g, v, b - a, static_cast<float>(lr), momentum_, wd);
  else
    be.sgd_momentum(w, g, v, b - a, static_cast<float>(lr), momentum_, wd);
}

// ---- Adam / AdamW ----------------------------------------------------------

namespace {

// 1 - beta^t, the bias correction of update t (>= 1).
float correction(float beta, std::size_t t) {
  return static_cast<float>(1.0 - std::pow(static_cast<double>(beta), static_cast<double>(t)));
}

}  // namespace

Adam::Adam(Model& model, const TrainConfig::Optimizer& o, bool decoupled)
    : Optimizer(model, 2),
      b1_(static_cast<float>(o.beta1)),
      b2_(static_cast<float>(o.beta2)),
      eps_(static_cast<float>(o.eps)),
      weight_decay_(static_cast<float>(o.weight_decay)),
      decoupled_(decoupled),
      dir_(model.memory(), model.parameters().size()) {}

void Adam::update_elementwise(Backend& be, const TensorView& tv, std::size_t a, std::size_t b,
                              const float* g, double lr, std::size_t t) {
  HPCML_REQUIRE(t >= 1, Error, "adam: update numbers start at 1");
  float* w = model_.parameters().data() + a;
  const float wd = tv.is_bias ? 0.0f : weight_decay_;
  be.adam_direction(w, g, slot(0) + a, slot(1) + a, dir_.data() + a, b - a, b1_, b2_, eps_,
                    correction(b1_, t), correction(b2_, t), decoupled_ ? 0.0f : wd,
                    decoupled_ ? wd : 0.0f);
  be.axpy(w, dir_.data() + a, b - a, -static_cast<float>(lr));
}

// ---- LARS ------------------------------------------------------------------

Lars::Lars(Model& model, const TrainConfig::Optimizer& o)
    : Optimizer(model, 1),
      momentum_(static_cast<float>(o.momentum)),
      weight_decay_(static_cast<float>(o.weight_decay)),
      eta_(static_cast<float>(o.lars_eta)),
      exclude_bias_(o.exclude_bias) {}

void Lars::update_tensor(Backend& be, const TensorView& tv, double lr, std::size_t) {
  float* w = model_.parameters().data();
  const float* g = model_.gradients().data();
  const std::size_t a = tv.offset, n = tv.size();
  const float wd = tv.is_bias ? 0.0f : weight_decay_;
  double local = 1.0;
  if (!(tv.is_bias && exclude_bias_)) {
    const double wn = std::sqrt(be.sum_squares(w + a, n));
    const double gn = std::sqrt(be.sum_squares(g + a, n));
    const double d = gn + wd * wn;
    if (wn > 0 && d > 0) local = eta_ * wn / d;
  }
  be.lars_momentum(w + a, g + a, slot(0) + a, n, static_cast<float>(lr * local), momentum_, wd);
}

// ---- LAMB ------------------------------------------------------------------

Lamb::Lamb(Model& model, const TrainConfig::Optimizer& o)
    : Optimizer(model, 2),
      b1_(static_cast<float>(o.beta1)),
      b2_(static_cast<float>(o.beta2)),
      eps_(static_cast<float>(o.eps)),
      weight_decay_(static_cast<float>(o.weight_decay)),
      exclude_bias_(o.exclude_bias),
      dir_(model.memory(), model.parameters().size()) {}

void Lamb::update_tensor(Backend& be, const TensorView& tv, double lr, std::size_t t) {
  HPCML_REQUIRE(t >= 1, Error, "lamb: update numbers start at 1");
  float* w = model_.parameters().data();
  const float* g = model_.gradients().data();
  const std::size_t a = tv.offset, n = tv.size();
  const float wd = tv.is_bias ? 0.0f : weight_decay_;
  float* u = dir_.data() + a;
  be.adam_direction(w + a, g + a, slot(0) + a, slot(1) + a, u, n, b1_, b2_, eps_,
                    correction(b1_, t), correction(b2_, t), 0.0f, wd);
  double trust = 1.0;
  if (!(tv.is_bias && exclude_bias_))
    trust = trust_ratio(std::sqrt(be.sum_squares(w + a, n)), std::sqrt(be.sum_squares(u, n)));
  be.axpy(w + a, u, n, -static_cast<float>(lr * trust));
}

// ---- factory ---------------------------------------------------------------

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig::Optimizer& o, Model& model) {
  if (o.name == "sgd")
    return std::make_unique<SgdMomentum>(model, o.momentum, o.weight_decay, o.nesterov);
  if (o.name == "adam") return std::make_unique<Adam>(model, o, false);
  if (o.name == "adamw") return std::make_unique<Adam>(model, o, true);
  if (o.name == "lars") return std::make_unique<Lars>(model, o);
  if (o.name == "lamb") return std::make_unique<Lamb>(model, o);
  HPCML_THROW(ConfigError, "optimizer.name: unknown optimizer '" + o.name +
                               "' (choices: sgd, adam, adamw, lars, lamb)");
}

bool is_optimizer_name(const std::string& name) {
  return name == "sgd" || name == "adam" || name == "adamw" || name == "lars" || name == "lamb";
}

std::size_t optimizer_slots(const std::string& name) {
  HPCML_REQUIRE(
      is_optimizer_name(name), ConfigError,
      "optimizer.name: unknown optimizer '" + name + "' (choices: sgd, adam, adamw, lars, lamb)");
  return name == "sgd" || name == "lars" ? 1 : 2;
}

bool optimizer_is_layer_wise(const std::string& name) { return name == "lars" || name == "lamb"; }

}  // namespace hpcml

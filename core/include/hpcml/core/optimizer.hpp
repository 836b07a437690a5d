// The optimizers (optimizer.name): SGD with momentum (optionally Nesterov),
// Adam, AdamW, LARS and LAMB. Each keeps its state in one flat buffer of
// slots() x parameters floats, slot-major (slot k of parameter i at
// k * n + i), so a checkpoint saves and restores it as one array and a sharded
// update owns the same [lo, hi) range in every slot. Biases are never decayed;
// LARS and LAMB leave them out of the trust ratio too (optimizer.exclude_bias).
// The arithmetic is in the backend's kernels (backend.hpp), so every backend
// runs every optimizer. The state lives where the model's buffers live
// (Model::memory(), fixed when the optimizer is created: bind the model
// first); host code reaches it through copy_state_to_host() / load_state().
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hpcml/core/backend.hpp"
#include "hpcml/core/model.hpp"
#include "hpcml/core/train_config.hpp"

namespace hpcml {

class Optimizer {
 public:
  explicit Optimizer(Model& model, std::size_t slots);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual std::string name() const = 0;
  /// True when an update needs whole tensors (layer-wise norms): such an
  /// optimizer cannot take the sharded update, which gives a rank ranges
  /// that cut tensors.
  virtual bool layer_wise() const { return false; }

  /// Floats of state per parameter.
  std::size_t slots() const { return slots_; }
  /// All state, slots() x parameters, slot-major, in the model's memory
  /// (host code may touch it only when that is host memory).
  std::span<float> state() { return {state_.data(), state_.size()}; }
  /// Host copies of the state (slots() x parameters floats).
  void copy_state_to_host(std::span<float> out) const;
  void load_state(std::span<const float> in);

  /// The update number `t` (1-based: Adam's bias correction) with rate `lr`,
  /// on the model's own (averaged) gradients: step_tensors() of every tensor.
  void step(Backend& be, double lr, std::size_t t = 1);
  /// The update of the tensors with these indices into Model::tensors() only
  /// (any order; each at most once), on their (averaged) gradients: what the
  /// trainer runs for one fusion bucket as soon as its means are final. Same
  /// bits per element as step(), for every optimizer: the layer-wise norms of
  /// LARS and LAMB are per tensor, so a tensor's update needs nothing else.
  void step_tensors(Backend& be, double lr, std::size_t t, std::span<const std::size_t> tensors);
  /// The update of parameters [lo, hi) only, mean_grad[0, hi - lo) their
  /// averaged gradients (the sharded update). Same bits per element as
  /// step(). Throws for layer-wise optimizers.
  virtual void step_range(Backend& be, double lr, std::size_t t, std::size_t lo, std::size_t hi,
                          const float* mean_grad);

 protected:
  /// Calls f(tensor, a, b) for every tensor cutting [lo, hi), with [a, b) the
  /// cut, in tensor order.
  template <class F>
  void for_each_cut(std::size_t lo, std::size_t hi, F&& f) const;
  /// The update of one whole tensor on the model's gradients. Default: the
  /// elementwise update of all its parameters. Layer-wise optimizers override.
  virtual void update_tensor(Backend& be, const TensorView& t, double lr, std::size_t step);
  /// An elementwise update of parameters [a, b) with gradients g (g[0] is
  /// parameter a's), for tensor t.
  virtual void update_elementwise(Backend& be, const TensorView& t, std::size_t a, std::size_t b,
                                  const float* g, double lr, std::size_t step);
  float* slot(std::size_t k) { return state_.data() + k * model_.parameters().size(); }
  /// Throws Error unless the model's buffers are still in the memory the
  /// state was allocated in (the model was bound after the optimizer was made).
  void check_memory() const;

  Model& model_;
  std::size_t slots_;
  Backend* memory_;  // Model::memory() when the state was allocated
  BackendArray<float> state_;
  std::vector<std::size_t> all_tensors_;  // 0 .. tensors-1: step() is step_tensors of these
};

/// Plain SGD with momentum and L2 weight decay on weights:
///   g' = g + wd*w;  v = mu*v + g';  w -= lr*v   (Nesterov: w -= lr*(g' + mu*v)).
class SgdMomentum : public Optimizer {
 public:
  SgdMomentum(Model& model, double momentum, double weight_decay, bool nesterov = false);
  std::string name() const override { return nesterov_ ? "sgd (nesterov)" : "sgd"; }
  /// The momentum buffer (the state's one slot).
  std::span<float> velocity() { return state(); }

 protected:
  void update_elementwise(Backend& be, const TensorView& t, std::size_t a, std::size_t b,
                          const float* g, double lr, std::size_t step) override;

 private:
  float momentum_, weight_decay_;
  bool nesterov_;
};

/// Adam (L2 penalty added to the gradient) or AdamW (decoupled weight decay):
/// slot 0 = first moment, slot 1 = second moment.
class Adam : public Optimizer {
 public:
  Adam(Model& model, const TrainConfig::Optimizer& o, bool decoupled);
  std::string name() const override { return decoupled_ ? "adamw" : "adam"; }

 protected:
  void update_elementwise(Backend& be, const TensorView& t, std::size_t a, std::size_t b,
                          const float* g, double lr, std::size_t step) override;

 private:
  float b1_, b2_, eps_, weight_decay_;
  bool decoupled_;
  BackendArray<float> dir_;  // scratch: the update direction
};

/// LARS (You, Gitman, Ginsburg 2017): per layer a local rate
///   eta * ||w|| / (||g|| + wd * ||w||)
/// then v = mu*v + lr*local*(g + wd*w); w -= v. Slot 0 = v.
class Lars : public Optimizer {
 public:
  Lars(Model& model, const TrainConfig::Optimizer& o);
  std::string name() const override { return "lars"; }
  bool layer_wise() const override { return true; }

 protected:
  void update_tensor(Backend& be, const TensorView& t, double lr, std::size_t step) override;

 private:
  float momentum_, weight_decay_, eta_;
  bool exclude_bias_;
};

/// LAMB (You et al. 2019): Adam's direction u plus decoupled weight decay,
/// scaled per layer by the trust ratio ||w|| / ||u||; w -= lr*trust*u.
/// Slot 0 = first moment, slot 1 = second moment.
class Lamb : public Optimizer {
 public:
  Lamb(Model& model, const TrainConfig::Optimizer& o);
  std::string name() const override { return "lamb"; }
  bool layer_wise() const override { return true; }

 protected:
  void update_tensor(Backend& be, const TensorView& t, double lr, std::size_t step) override;

 private:
  float b1_, b2_, eps_, weight_decay_;
  bool exclude_bias_;
  BackendArray<float> dir_;
};

/// The optimizer optimizer.name names ("sgd", "adam", "adamw", "lars", "lamb").
std::unique_ptr<Optimizer> make_optimizer(const TrainConfig::Optimizer& o, Model& model);

/// Whether `name` is an optimizer this build has.
bool is_optimizer_name(const std::string& name);
/// Floats of state per parameter of optimizer `name` (sgd, lars: 1; adam,
/// adamw, lamb: 2). Throws ConfigError for an unknown name.
std::size_t optimizer_slots(const std::string& name);

/// Whether optimizer `name` needs whole tensors (no sharded update).
bool optimizer_is_layer_wise(const std::string& name);

/// The trust ratio ||w|| / d of LARS and LAMB (d the denominator's norm), 1
/// when either norm is 0 (a zero-initialised or zero-gradient layer).
double trust_ratio(double w_norm, double d_norm);

}  // namespace hpcml

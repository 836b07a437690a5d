// A multi-layer perceptron (dense + ReLU, softmax cross-entropy head) whose
// parameters and gradients live in two flat float buffers, so that the
// optimizer, the gradient all-reduce and checkpoints see one contiguous array.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "hpcml/core/backend.hpp"
#include "hpcml/core/data.hpp"

namespace hpcml {

/// One parameter tensor inside the flat buffers.
struct TensorView {
  std::string name;  // "fc1.weight", "fc1.bias", ...
  std::size_t offset = 0;
  std::size_t rows = 0;  // weights: fan-in x fan-out (row-major); biases: 1 x fan-out
  std::size_t cols = 0;
  bool is_bias = false;
  std::size_t size() const { return rows * cols; }
};

struct BatchResult {
  double loss_sum = 0;      // sum of per-sample losses
  std::size_t correct = 0;  // samples whose argmax is the label
  std::size_t rows = 0;
};

class Mlp {
 public:
  /// inputs -> hidden[0] -> ... -> classes. All sizes >= 1.
  Mlp(std::size_t inputs, const std::vector<std::int64_t>& hidden, std::size_t classes);
  // Gradients may live in storage the model does not own: no copies.
  Mlp(const Mlp&) = delete;
  Mlp& operator=(const Mlp&) = delete;

  /// He-normal weights (std = sqrt(2 / fan_in)) from a splitmix64 stream seeded by
  /// `seed`, zero biases. Same seed, same weights, on every platform.
  void init(std::uint64_t seed);

  std::size_t inputs() const { return inputs_; }
  std::size_t classes() const { return classes_; }
  std::span<float> parameters() { return params_; }
  std::span<const float> parameters() const { return params_; }
  std::span<float> gradients() { return grads_; }
  /// Keeps the gradients in `storage` (parameters().size() elements, owned by
  /// the caller and alive as long as this model) instead of own memory, so a
  /// communication layer can reduce them where they lie. Current gradients
  /// are copied over.
  void use_gradient_storage(std::span<float> storage);
  /// The same for the parameters (current values copied over).
  void use_parameter_storage(std::span<float> storage);
  const std::vector<TensorView>& tensors() const { return tensors_; }
  /// Gradient buffer of each tensor, in tensors() order.
  std::vector<std::span<float>> gradient_buffers();
  /// Floating-point operations of one training sample (forward + backward GEMMs).
  double train_flops_per_sample() const;

  /// Forward and backward pass on a batch. Gradients (overwritten, not
  /// accumulated) are of the mean loss times `grad_scale * rows` — pass
  /// grad_scale = 1/rows for the batch mean. `ready(i)` is called as soon as the
  /// gradient of tensor i is final (last layer first), so communication can start.
  BatchResult train_batch(Backend& be, const Batch& batch, float grad_scale,
                          const std::function<void(std::size_t)>& ready = {});

  /// Forward pass only (no gradients).
  BatchResult evaluate(Backend& be, const Batch& batch);

 private:
  void forward(Backend& be, const Batch& batch);
  // Moves `view` (which shows `own`) to `storage`, copying the values over.
  void adopt_storage(std::vector<float>& own, std::span<float>& view, std::span<float> storage,
                     const char* what);

  std::size_t inputs_, classes_;
  std::vector<std::size_t> widths_;  // inputs, hidden..., classes
  std::vector<TensorView> tensors_;
  std::vector<float> own_params_, own_grads_;
  std::span<float> params_;               // own_params_ or storage given by use_parameter_storage
  std::span<float> grads_;                // own_grads_ or storage given by use_gradient_storage
  std::vector<std::vector<float>> acts_;  // per layer output (post-ReLU for hidden)
  std::vector<float> delta_, delta_prev_;
};

}  // namespace hpcml

// A feed-forward model from a list of layers (dense, conv2d, maxpool2d, relu,
// flatten, dropout) with a softmax cross-entropy head, whose parameters and
// gradients live in two flat float buffers, so that the optimizer, the
// gradient all-reduce and checkpoints see one contiguous array. Activations
// are channels-last (HWC) per sample; a convolution is im2col + one GEMM, so
// every backend that has the interface's kernels runs every layer.
//
// Memory: parameters, gradients and activations live in the memory of the
// backend the model is bound to (bind(); train_batch() and evaluate() bind
// it to the backend they are given). Before that they live in host memory
// (host_memory()), so a model can be built, checked and initialised without
// a backend. parameters() and gradients() are spans of that memory: with a
// device backend (Backend::memory_space() == device) only its kernels and
// copies may touch them; host code goes through copy_parameters_to_host() /
// load_parameters() and their gradient twins.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hpcml/core/backend.hpp"
#include "hpcml/core/data.hpp"
#include "hpcml/core/train_config.hpp"

namespace hpcml {

/// One parameter tensor inside the flat buffers.
struct TensorView {
  std::string name;  // "fc1.weight", "fc1.bias", "conv1.weight", ...
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

/// The shape of one sample's activations: height x width x channels (a flat
/// vector of n features is 1 x 1 x n).
struct Shape {
  std::size_t h = 1, w = 1, c = 1;
  std::size_t size() const { return h * w * c; }
  std::string text() const;  // "28x28x1", or "784" when flat
};

class Model;
/// The model `m` describes for data of `features` features and `classes`
/// classes: [[model.layers]] when given (on model.input_shape, else flat), else
/// the MLP of model.hidden. ConfigError names the key or layer that does not fit.
Model build_model(const TrainConfig::Model& m, std::size_t features, std::size_t classes);

/// dense + relu for each hidden width: the MLP of model.hidden as a layer list.
std::vector<LayerSpec> mlp_layers(const std::vector<std::int64_t>& hidden);

class Layer;  // core/src/layers.hpp

class Model {
 public:
  /// `layers` on samples of shape `input`, then the classifier (a dense layer
  /// to `classes` outputs, "fc<N>") and the softmax cross-entropy head. Throws
  /// ConfigError naming the layer ("model.layers[2] (maxpool2d 3)") when a
  /// shape does not fit.
  Model(Shape input, const std::vector<LayerSpec>& layers, std::size_t classes);
  /// The MLP: inputs -> hidden[0] -> ... -> classes, ReLU between.
  Model(std::size_t inputs, const std::vector<std::int64_t>& hidden, std::size_t classes);
  ~Model();
  // Gradients may live in storage the model does not own: no copies.
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  /// He-normal weights (std = sqrt(2 / fan_in)) from a splitmix64 stream seeded by
  /// `seed`, zero biases. Same seed, same weights, on every platform. Computed
  /// on the host and copied in.
  void init(std::uint64_t seed);

  /// Keeps parameters, gradients and activations in `be`'s memory from now on
  /// (the current values are copied over when the memory space changes; a
  /// host backend keeps the host buffers as they are). Bind before creating
  /// the optimizer (its state is allocated where the model's memory is).
  /// Throws Error when the model uses storage given by use_*_storage() and
  /// `be` is a device backend.
  void bind(Backend& be);
  /// Allocates and copies the buffers: the bound backend when its memory is
  /// device memory, else host_memory() (host memory is host memory: a model
  /// on a host backend does not depend on the backend object's lifetime; on
  /// a device backend, the backend must outlive the model).
  Backend& memory() const {
    return be_ && be_->memory_space() == MemorySpace::kDevice ? *be_ : host_memory();
  }

  /// Host copies of the backend buffers (out/in: parameters().size() floats).
  /// A copy to the host waits for the kernels queued before it.
  void copy_parameters_to_host(std::span<float> out) const;
  void load_parameters(std::span<const float> in);
  void copy_gradients_to_host(std::span<float> out) const;
  void load_gradients(std::span<const float> in);

  std::size_t inputs() const { return input_.size(); }
  std::size_t classes() const { return classes_; }
  /// The flat parameters and gradients, in the memory of memory(): host code
  /// may read or write them only when memory().memory_space() is host.
  std::span<float> parameters() { return params_; }
  std::span<const float> parameters() const { return params_; }
  std::span<float> gradients() { return grads_; }
  /// Keeps the gradients in `storage` (parameters().size() elements, owned by
  /// the caller and alive as long as this model) instead of own memory, so a
  /// communication layer can reduce them where they lie. Current gradients
  /// are copied over. Host memory only (Error when bound to a device backend).
  void use_gradient_storage(std::span<float> storage);
  /// The same for the parameters (current values copied over).
  void use_parameter_storage(std::span<float> storage);
  const std::vector<TensorView>& tensors() const { return tensors_; }
  /// Gradient buffer of each tensor, in tensors() order (backend memory).
  std::vector<std::span<float>> gradient_buffers();
  /// Floating-point operations of one training sample (forward + backward GEMMs).
  double train_flops_per_sample() const;
  /// One line: "28x28x1 -> conv2d 5x5x32 s1 p2 -> relu -> ... -> dense 10".
  std::string describe() const;
  /// Output shape of every layer (the classifier's last), for the run's log.
  std::vector<Shape> shapes() const;

  /// The seed of this batch's dropout masks (the trainer sets it from the run's
  /// seed, the step and the rank, so a resumed run draws the same masks).
  void set_dropout_seed(std::uint64_t seed) { dropout_seed_ = seed; }

  /// Forward and backward pass on a batch (bind(be) first, then the batch
  /// through be.upload_batch()). Gradients (overwritten, not
  /// accumulated) are of the mean loss times `grad_scale * rows` — pass
  /// grad_scale = 1/rows for the batch mean. `ready(i)` is called as soon as the
  /// gradient of tensor i is final (last layer first), so communication can
  /// start; only the loss and the correct count come back to the host.
  BatchResult train_batch(Backend& be, const Batch& batch, float grad_scale,
                          const std::function<void(std::size_t)>& ready = {});

  /// Forward pass only (no gradients, no dropout).
  BatchResult evaluate(Backend& be, const Batch& batch);

 private:
  void build(const std::vector<LayerSpec>& layers);
  void check_batch(const Batch& batch) const;
  void forward(Backend& be, const BatchView& in, std::size_t rows, bool training);
  // Moves `view` (which shows `own`) to `storage`, copying the values over.
  void adopt_storage(BackendArray<float>& own, std::span<float>& view, std::span<float> storage,
                     const char* what);

  Shape input_;
  std::size_t classes_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<TensorView> tensors_;
  Backend* be_ = nullptr;  // bound backend (memory()); null: host_memory()
  BackendArray<float> own_params_, own_grads_;
  std::span<float> params_;  // own_params_ or storage given by use_parameter_storage
  std::span<float> grads_;   // own_grads_ or storage given by use_gradient_storage
  BackendArray<float> delta_, delta_prev_;
  std::vector<float*> outs_;        // each layer's output of the last forward pass
  BackendArray<float> input_copy_;  // the batch, when the first layer works in place
  std::uint64_t dropout_seed_ = 0;
};

}  // namespace hpcml

// The layers of Model (model.hpp). Internal to hpcml_core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hpcml/core/backend.hpp"
#include "hpcml/core/model.hpp"

namespace hpcml {

/// The parameters and gradients a layer's tensors live in (Model's flat
/// buffers, in the backend's memory).
struct LayerParams {
  const std::vector<TensorView>* tensors;
  float* params;
  float* grads;
  Backend* memory;  // where buffers are allocated: Model::memory()
  const TensorView& t(std::size_t i) const { return (*tensors)[i]; }
  float* p(std::size_t i) const { return params + t(i).offset; }
  float* g(std::size_t i) const { return grads + t(i).offset; }
};

class Layer {
 public:
  virtual ~Layer() = default;
  Shape in, out;
  /// Indices into Model::tensors() of this layer's weight and bias (empty if none).
  std::vector<std::size_t> tensors;

  virtual std::string describe() const = 0;
  /// Works in place on its input buffer (relu, flatten, dropout).
  virtual bool in_place() const { return false; }
  /// Training FLOPs per sample (forward + backward GEMMs); `first`: no input gradient.
  virtual double flops_per_sample(bool /*first*/) const { return 0; }

  /// Forward on n samples: x is n x in.size(); returns the output (n x out.size()),
  /// which is x itself for in-place layers.
  virtual float* forward(Backend& be, float* x, std::size_t n, bool training, const LayerParams& p,
                         std::uint64_t seed) = 0;
  /// Backward: x is the forward input, y the forward output, dy the output
  /// gradient; writes parameter gradients, and the input gradient into dx when
  /// need_dx. In-place layers transform dy itself and return dy; the others
  /// return dx.
  virtual float* backward(Backend& be, const float* x, const float* y, float* dy, float* dx,
                          std::size_t n, bool need_dx, const LayerParams& p,
                          std::uint64_t seed) = 0;

 protected:
  BackendArray<float> y_;  // the output of layers that are not in place (backend memory)
};

}  // namespace hpcml

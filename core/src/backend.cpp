// Serial host implementations of the optimizer kernels (backend.hpp): the
// reference backend's oracle, and the fallback of any host-memory backend
// that does not override them.
#include "hpcml/core/backend.hpp"

#include <cmath>

namespace hpcml {

double Backend::sum_squares(const float* x, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return s;
}

void Backend::sgd_nesterov(float* w, const float* g, float* v, std::size_t n, float lr,
                           float momentum, float weight_decay) {
  for (std::size_t i = 0; i < n; ++i) {
    const float grad = g[i] + weight_decay * w[i];
    v[i] = momentum * v[i] + grad;
    w[i] -= lr * (grad + momentum * v[i]);
  }
}

void Backend::adam_direction(const float* w, const float* g, float* m, float* v, float* u,
                             std::size_t n, float b1, float b2, float eps, float c1, float c2,
                             float l2, float decoupled) {
  for (std::size_t i = 0; i < n; ++i) {
    const float grad = g[i] + l2 * w[i];
    m[i] = b1 * m[i] + (1.0f - b1) * grad;
    v[i] = b2 * v[i] + (1.0f - b2) * grad * grad;
    u[i] = (m[i] / c1) / (std::sqrt(v[i] / c2) + eps) + decoupled * w[i];
  }
}

void Backend::axpy(float* w, const float* x, std::size_t n, float alpha) {
  for (std::size_t i = 0; i < n; ++i) w[i] += alpha * x[i];
}

void Backend::lars_momentum(float* w, const float* g, float* v, std::size_t n, float local_lr,
                            float momentum, float weight_decay) {
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = momentum * v[i] + local_lr * (g[i] + weight_decay * w[i]);
    w[i] -= v[i];
  }
}

}  // namespace hpcml

// Serial host implementations of the optimizer kernels (backend.hpp): the
// reference backend's oracle, and the fallback of any host-memory backend
// that does not override them.
#include "hpcml/core/backend.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "hpcml/core/error.hpp"

namespace hpcml {

namespace {
void* aligned_zeroed(std::size_t bytes) {
  const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  return p;
}
}  // namespace

void* Backend::allocate(std::size_t bytes) { return aligned_zeroed(bytes); }
void Backend::deallocate(void* p) noexcept { std::free(p); }
void* Backend::allocate_host(std::size_t bytes) { return aligned_zeroed(bytes); }
void Backend::deallocate_host(void* p) noexcept { std::free(p); }
void Backend::copy_from_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes) std::memmove(dst, src, bytes);
}
void Backend::copy_to_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes) std::memmove(dst, src, bytes);
}
void Backend::copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes) std::memmove(dst, src, bytes);
}
void Backend::fill_zero(void* p, std::size_t bytes) {
  if (bytes) std::memset(p, 0, bytes);
}
BatchView Backend::upload_batch(const Batch& batch) { return {batch.x.data(), batch.y.data()}; }

void Backend::set_gemm_precision(GemmPrecision p) {
  if (p == GemmPrecision::kTf32) {
    HPCML_THROW(NotAvailableError, "train.tf32: the " + name() +
                                       " backend computes in fp32 only; TF32 GEMMs need "
                                       "parallel.backend = \"cuda\"");
  }
  if (p != GemmPrecision::kFp32) {
    HPCML_THROW(NotAvailableError, "train.precision: the " + name() +
                                       " backend computes in fp32 only; bf16 and fp16 need "
                                       "parallel.backend = \"cuda\"");
  }
  gemm_precision_ = p;
}

namespace {
// Host memory with no kernels: where a model's buffers live before it is bound.
class HostMemory final : public Backend {
 public:
  std::string name() const override { return "host memory"; }
  int threads() const override { return 1; }
  [[noreturn]] static void no_kernels(const char* kernel) {
    HPCML_THROW(Error, std::string("host_memory(): no kernels (") + kernel +
                           "); bind the model to a backend first");
  }
  void gemm(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
            const float*, std::size_t, float, float*, std::size_t) override {
    no_kernels("gemm");
  }
  void add_bias(float*, const float*, std::size_t, std::size_t) override { no_kernels("add_bias"); }
  void relu(float*, std::size_t) override { no_kernels("relu"); }
  void relu_backward(float*, const float*, std::size_t) override { no_kernels("relu_backward"); }
  void column_sums(const float*, std::size_t, std::size_t, float*) override {
    no_kernels("column_sums");
  }
  double softmax_xent(const float*, const std::int32_t*, std::size_t, std::size_t, float, float*,
                      std::size_t*) override {
    no_kernels("softmax_xent");
  }
  void sgd_momentum(float*, const float*, float*, std::size_t, float, float, float) override {
    no_kernels("sgd_momentum");
  }
};
}  // namespace

Backend& host_memory() {
  static HostMemory m;
  return m;
}

void Backend::scale(float* x, std::size_t n, float alpha) {
  for (std::size_t i = 0; i < n; ++i) x[i] *= alpha;
}

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

void Backend::im2col(const float* x, const ConvShape& s, float* cols) {
  const std::size_t row = s.k * s.k * s.c;
  for (std::size_t n = 0; n < s.n; ++n) {
    const float* img = x + n * s.h * s.w * s.c;
    for (std::size_t oy = 0; oy < s.oh; ++oy) {
      for (std::size_t ox = 0; ox < s.ow; ++ox) {
        float* out = cols + ((n * s.oh + oy) * s.ow + ox) * row;
        for (std::size_t ky = 0; ky < s.k; ++ky) {
          const std::ptrdiff_t iy =
              static_cast<std::ptrdiff_t>(oy * s.stride + ky) - static_cast<std::ptrdiff_t>(s.pad);
          for (std::size_t kx = 0; kx < s.k; ++kx) {
            const std::ptrdiff_t ix = static_cast<std::ptrdiff_t>(ox * s.stride + kx) -
                                      static_cast<std::ptrdiff_t>(s.pad);
            float* o = out + (ky * s.k + kx) * s.c;
            if (iy < 0 || ix < 0 || iy >= static_cast<std::ptrdiff_t>(s.h) ||
                ix >= static_cast<std::ptrdiff_t>(s.w)) {
              std::fill(o, o + s.c, 0.0f);
            } else {
              const float* p =
                  img + (static_cast<std::size_t>(iy) * s.w + static_cast<std::size_t>(ix)) * s.c;
              std::copy(p, p + s.c, o);
            }
          }
        }
      }
    }
  }
}

void Backend::col2im(const float* cols, const ConvShape& s, float* dx) {
  const std::size_t row = s.k * s.k * s.c;
  std::fill(dx, dx + s.n * s.h * s.w * s.c, 0.0f);
  for (std::size_t n = 0; n < s.n; ++n) {
    float* img = dx + n * s.h * s.w * s.c;
    for (std::size_t oy = 0; oy < s.oh; ++oy) {
      for (std::size_t ox = 0; ox < s.ow; ++ox) {
        const float* in = cols + ((n * s.oh + oy) * s.ow + ox) * row;
        for (std::size_t ky = 0; ky < s.k; ++ky) {
          const std::ptrdiff_t iy =
              static_cast<std::ptrdiff_t>(oy * s.stride + ky) - static_cast<std::ptrdiff_t>(s.pad);
          if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(s.h)) continue;
          for (std::size_t kx = 0; kx < s.k; ++kx) {
            const std::ptrdiff_t ix = static_cast<std::ptrdiff_t>(ox * s.stride + kx) -
                                      static_cast<std::ptrdiff_t>(s.pad);
            if (ix < 0 || ix >= static_cast<std::ptrdiff_t>(s.w)) continue;
            float* p =
                img + (static_cast<std::size_t>(iy) * s.w + static_cast<std::size_t>(ix)) * s.c;
            const float* v = in + (ky * s.k + kx) * s.c;
            for (std::size_t ci = 0; ci < s.c; ++ci) p[ci] += v[ci];
          }
        }
      }
    }
  }
}

void Backend::maxpool(const float* x, std::size_t n, std::size_t h, std::size_t w, std::size_t c,
                      std::size_t size, float* y, std::uint32_t* argmax) {
  const std::size_t oh = h / size, ow = w / size;
  for (std::size_t s = 0; s < n; ++s) {
    for (std::size_t oy = 0; oy < oh; ++oy) {
      for (std::size_t ox = 0; ox < ow; ++ox) {
        for (std::size_t ci = 0; ci < c; ++ci) {
          std::size_t best = ((s * h + oy * size) * w + ox * size) * c + ci;
          for (std::size_t ky = 0; ky < size; ++ky) {
            for (std::size_t kx = 0; kx < size; ++kx) {
              const std::size_t i = ((s * h + oy * size + ky) * w + ox * size + kx) * c + ci;
              if (x[i] > x[best]) best = i;
            }
          }
          const std::size_t o = ((s * oh + oy) * ow + ox) * c + ci;
          y[o] = x[best];
          argmax[o] = static_cast<std::uint32_t>(best);
        }
      }
    }
  }
}

void Backend::maxpool_backward(const float* dy, const std::uint32_t* argmax, std::size_t count,
                               float* dx, std::size_t dx_count) {
  std::fill(dx, dx + dx_count, 0.0f);
  for (std::size_t i = 0; i < count; ++i) dx[argmax[i]] += dy[i];
}

void Backend::dropout(float* y, std::size_t n, float rate, std::uint64_t seed) {
  const float scale = 1.0f / (1.0f - rate);
  const auto threshold = static_cast<std::uint64_t>(static_cast<double>(rate) * 0x1.0p53);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    y[i] = (z >> 11) >= threshold ? y[i] * scale : 0.0f;
  }
}

}  // namespace hpcml

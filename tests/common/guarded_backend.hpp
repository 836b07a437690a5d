// A test-only "device" backend: the reference backend's kernels on memory that
// host code cannot touch. It reports MemorySpace::kDevice and allocates every
// buffer with its own mmap, kept PROT_NONE except while one of its own kernels
// or copies runs (then PROT_READ | PROT_WRITE, and back to PROT_NONE after).
// Host code that reads or writes "device" memory directly (instead of through
// copy_to_host / copy_from_host) therefore dies of SIGSEGV, with a line naming
// the address. Every kernel and copy also checks that each pointer argument,
// with the extent the kernel will touch, lies inside one of its allocations,
// and throws hpcml::Error naming the kernel otherwise (a host pointer handed to
// a kernel, a buffer too small).
//
// So a training run on it proves that core/ keeps to the backend memory
// contract (docs/kernels.md, "Backend memory"); its results must equal the
// reference backend's bit for bit (same kernels, same order).
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>

#include "hpcml/core/backend.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/kernels/factory.hpp"

namespace hpcml::testing {

class GuardedBackend : public Backend {
 public:
  GuardedBackend() : ref_(kernels::make_backend("reference", 1)) { install_segv_reporter(); }
  ~GuardedBackend() override {
    x_.reset();
    y_.reset();
    for (auto& [base, r] : regions_) ::munmap(reinterpret_cast<void*>(base), r.mapped);
  }
  GuardedBackend(const GuardedBackend&) = delete;
  GuardedBackend& operator=(const GuardedBackend&) = delete;

  // ---- memory ---------------------------------------------------------------
  MemorySpace memory_space() const override { return MemorySpace::kDevice; }
  void* allocate(std::size_t bytes) override {
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t mapped = (std::max<std::size_t>(bytes, 1) + page - 1) / page * page;
    void* p = ::mmap(nullptr, mapped, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();  // anonymous memory is zeroed
    regions_[reinterpret_cast<std::uintptr_t>(p)] = {bytes, mapped};
    ++allocations_;
    return p;
  }
  void deallocate(void* p) noexcept override {
    auto it = regions_.find(reinterpret_cast<std::uintptr_t>(p));
    if (it == regions_.end()) return;
    ::munmap(p, it->second.mapped);
    regions_.erase(it);
  }
  void copy_from_host(void* dst, const void* src, std::size_t bytes) override {
    check("copy_from_host", dst, bytes);
    ++host_copies_;
    Open open(*this);
    if (bytes) std::memmove(dst, src, bytes);
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    check("copy_to_host", src, bytes);
    ++host_copies_;
    Open open(*this);
    if (bytes) std::memmove(dst, src, bytes);
  }
  void copy(void* dst, const void* src, std::size_t bytes) override {
    check("copy", dst, bytes);
    check("copy", src, bytes);
    Open open(*this);
    if (bytes) std::memmove(dst, src, bytes);
  }
  void fill_zero(void* p, std::size_t bytes) override {
    check("fill_zero", p, bytes);
    Open open(*this);
    if (bytes) std::memset(p, 0, bytes);
  }
  BatchView upload_batch(const Batch& batch) override {
    x_.reserve_discard(*this, batch.x.size());
    y_.reserve_discard(*this, batch.y.size());
    copy_from_host(x_.data(), batch.x.data(), batch.x.size() * sizeof(float));
    copy_from_host(y_.data(), batch.y.data(), batch.y.size() * sizeof(std::int32_t));
    ++uploads_;
    return {x_.data(), y_.data()};
  }

  std::string name() const override { return "guarded"; }
  int threads() const override { return 1; }

  // ---- kernels: check, open, run the reference kernel, close -----------------
  void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha,
            const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
            std::size_t ldc) override {
    check("gemm", a, extent(ta ? k : m, ta ? m : k, lda) * sizeof(float));
    check("gemm", b, extent(tb ? n : k, tb ? k : n, ldb) * sizeof(float));
    check("gemm", c, extent(m, n, ldc) * sizeof(float));
    Open open(*this);
    ref_->gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  void add_bias(float* y, const float* bias, std::size_t rows, std::size_t cols) override {
    check("add_bias", y, rows * cols * 4);
    check("add_bias", bias, cols * 4);
    Open open(*this);
    ref_->add_bias(y, bias, rows, cols);
  }
  void relu(float* y, std::size_t n) override {
    check("relu", y, n * 4);
    Open open(*this);
    ref_->relu(y, n);
  }
  void relu_backward(float* dy, const float* y, std::size_t n) override {
    check("relu_backward", dy, n * 4);
    check("relu_backward", y, n * 4);
    Open open(*this);
    ref_->relu_backward(dy, y, n);
  }
  void column_sums(const float* x, std::size_t rows, std::size_t cols, float* out) override {
    check("column_sums", x, rows * cols * 4);
    check("column_sums", out, cols * 4);
    Open open(*this);
    ref_->column_sums(x, rows, cols, out);
  }
  double softmax_xent(const float* logits, const std::int32_t* labels, std::size_t rows,
                      std::size_t classes, float grad_scale, float* dlogits,
                      std::size_t* correct) override {
    check("softmax_xent", logits, rows * classes * 4);
    check("softmax_xent", labels, rows * sizeof(std::int32_t));
    if (dlogits) check("softmax_xent", dlogits, rows * classes * 4);
    // `correct` is a host scalar (the result that comes back).
    Open open(*this);
    const double loss =
        ref_->softmax_xent(logits, labels, rows, classes, grad_scale, dlogits, correct);
    if (dlogits) after_loss_gradient(dlogits, rows * classes);
    return loss;
  }
  void sgd_momentum(float* w, const float* g, float* v, std::size_t n, float lr, float momentum,
                    float weight_decay) override {
    check3("sgd_momentum", w, g, v, n);
    Open open(*this);
    ref_->sgd_momentum(w, g, v, n, lr, momentum, weight_decay);
  }
  double sum_squares(const float* x, std::size_t n) override {
    check("sum_squares", x, n * 4);
    Open open(*this);
    return ref_->sum_squares(x, n);
  }
  void sgd_nesterov(float* w, const float* g, float* v, std::size_t n, float lr, float momentum,
                    float weight_decay) override {
    check3("sgd_nesterov", w, g, v, n);
    Open open(*this);
    ref_->sgd_nesterov(w, g, v, n, lr, momentum, weight_decay);
  }
  void adam_direction(const float* w, const float* g, float* m, float* v, float* u, std::size_t n,
                      float b1, float b2, float eps, float c1, float c2, float l2,
                      float decoupled) override {
    check3("adam_direction", w, g, m, n);
    check3("adam_direction", v, u, u, n);
    Open open(*this);
    ref_->adam_direction(w, g, m, v, u, n, b1, b2, eps, c1, c2, l2, decoupled);
  }
  void axpy(float* w, const float* x, std::size_t n, float alpha) override {
    check3("axpy", w, x, x, n);
    Open open(*this);
    ref_->axpy(w, x, n, alpha);
  }
  void lars_momentum(float* w, const float* g, float* v, std::size_t n, float local_lr,
                     float momentum, float weight_decay) override {
    check3("lars_momentum", w, g, v, n);
    Open open(*this);
    ref_->lars_momentum(w, g, v, n, local_lr, momentum, weight_decay);
  }
  void im2col(const float* x, const ConvShape& s, float* cols) override {
    check("im2col", x, s.n * s.h * s.w * s.c * 4);
    check("im2col", cols, s.n * s.oh * s.ow * s.k * s.k * s.c * 4);
    Open open(*this);
    ref_->im2col(x, s, cols);
  }
  void col2im(const float* cols, const ConvShape& s, float* dx) override {
    check("col2im", cols, s.n * s.oh * s.ow * s.k * s.k * s.c * 4);
    check("col2im", dx, s.n * s.h * s.w * s.c * 4);
    Open open(*this);
    ref_->col2im(cols, s, dx);
  }
  void maxpool(const float* x, std::size_t n, std::size_t h, std::size_t w, std::size_t c,
               std::size_t size, float* y, std::uint32_t* argmax) override {
    const std::size_t out = n * (h / size) * (w / size) * c;
    check("maxpool", x, n * h * w * c * 4);
    check("maxpool", y, out * 4);
    check("maxpool", argmax, out * 4);
    Open open(*this);
    ref_->maxpool(x, n, h, w, c, size, y, argmax);
  }
  void maxpool_backward(const float* dy, const std::uint32_t* argmax, std::size_t count, float* dx,
                        std::size_t dx_count) override {
    check("maxpool_backward", dy, count * 4);
    check("maxpool_backward", argmax, count * 4);
    check("maxpool_backward", dx, dx_count * 4);
    Open open(*this);
    ref_->maxpool_backward(dy, argmax, count, dx, dx_count);
  }
  void dropout(float* y, std::size_t n, float rate, std::uint64_t seed) override {
    check("dropout", y, n * 4);
    Open open(*this);
    ref_->dropout(y, n, rate, seed);
  }
  void scale(float* x, std::size_t n, float alpha) override {
    check("scale", x, n * 4);
    Open open(*this);
    ref_->scale(x, n, alpha);
  }

  // ---- what the tests look at ------------------------------------------------
  std::size_t live_allocations() const { return regions_.size(); }
  std::size_t allocations() const { return allocations_; }
  std::size_t host_copies() const { return host_copies_; }
  std::size_t uploads() const { return uploads_; }
  /// True when [p, p + bytes) lies inside one allocation.
  bool owns(const void* p, std::size_t bytes) const {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    auto it = regions_.upper_bound(a);
    if (it == regions_.begin()) return false;
    --it;
    return a >= it->first && a + bytes <= it->first + it->second.bytes;
  }

 protected:
  /// Called inside softmax_xent (memory open) with the loss gradient just
  /// written: a subclass may change it (tests/core: injected overflows).
  virtual void after_loss_gradient(float* /*dlogits*/, std::size_t /*n*/) {}

 private:
  struct Region {
    std::size_t bytes = 0, mapped = 0;
  };
  // Opens every allocation for reading and writing while it lives.
  class Open {
   public:
    explicit Open(GuardedBackend& be) : be_(be) { be_.protect(PROT_READ | PROT_WRITE); }
    ~Open() { be_.protect(PROT_NONE); }
    Open(const Open&) = delete;
    Open& operator=(const Open&) = delete;

   private:
    GuardedBackend& be_;
  };

  void protect(int prot) {
    for (auto& [base, r] : regions_) ::mprotect(reinterpret_cast<void*>(base), r.mapped, prot);
  }
  static std::size_t extent(std::size_t rows, std::size_t cols, std::size_t ld) {
    return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols;
  }
  void check(const char* kernel, const void* p, std::size_t bytes) const {
    if (!owns(p, bytes)) {
      HPCML_THROW(Error,
                  std::string("guarded backend: ") + kernel + " was given " +
                      (owns(p, 0) ? "a buffer too small for " + std::to_string(bytes) + " bytes"
                                  : "a pointer outside its allocations") +
                      " (" + std::to_string(reinterpret_cast<std::uintptr_t>(p)) + ")");
    }
  }
  void check3(const char* kernel, const float* a, const float* b, const float* c, std::size_t n) {
    check(kernel, a, n * 4);
    check(kernel, b, n * 4);
    check(kernel, c, n * 4);
  }
  static void install_segv_reporter() {
    static bool installed = false;
    if (installed) return;
    installed = true;
    struct sigaction sa {};
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sa.sa_sigaction = [](int, siginfo_t* info, void*) {
      char line[160];
      const int len = std::snprintf(line, sizeof line,
                                    "guarded backend: SIGSEGV at %p: host code touched device "
                                    "memory directly (or a real crash)\n",
                                    info->si_addr);
      if (len > 0) (void)!::write(2, line, static_cast<std::size_t>(len));
    };  // SA_RESETHAND: returning re-runs the access, which then dies of SIGSEGV
    sigaction(SIGSEGV, &sa, nullptr);
  }

  std::unique_ptr<Backend> ref_;
  std::map<std::uintptr_t, Region> regions_;
  std::size_t allocations_ = 0, host_copies_ = 0, uploads_ = 0;
  BackendArray<float> x_;
  BackendArray<std::int32_t> y_;
};

}  // namespace hpcml::testing

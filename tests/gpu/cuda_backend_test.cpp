// The cuda backend against the reference backend (label gpu). Every test skips
// with the reason when no CUDA device is visible (or CUDA is not compiled in).
//
// Tolerances: elementwise kernels, column sums, im2col/col2im, max pooling and
// dropout are built with --fmad=false and sum in the reference's order: the
// same bits (optimizers with a division or sqrt: at most 1 ulp). GEMMs: fp32
// |c - ref| <= 1e-5 * k (cuBLAS sums in another order); tf32/fp16
// 4e-3 * sqrt(k); bf16 against a reference GEMM of bf16-rounded inputs
// 1e-5 * k. Softmax loss 1e-12 relative (device exp/log in double). Ten MLP
// steps against reference: losses 1e-4 relative, parameters 5e-4 absolute.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "hpcml/core/backend.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/kernels/cuda.hpp"
#include "hpcml/kernels/factory.hpp"
#include "kernels_test_util.hpp"
#include "mlp_step.hpp"

namespace hpcml::kernels {
namespace {

using test::bit_identical;
using test::random_floats;
using test::random_labels;
using test::ulp_distance;

// HPCML_REQUIRE_GPU=1 (scripts/device-check.sh on a GPU machine) turns the
// skip into a failure: there, no device means something is broken.
bool gpu_required() {
  const char* v = std::getenv("HPCML_REQUIRE_GPU");
  return v != nullptr && std::string(v) == "1";
}

#define HPCML_SKIP_WITHOUT_GPU()                                                        \
  do {                                                                                  \
    const auto info_ = cuda_info();                                                     \
    const std::string why_ =                                                            \
        !info_.compiled ? std::string("cuda backend not compiled in") : info_.error;    \
    if (info_.devices.empty()) {                                                        \
      if (gpu_required()) FAIL() << "HPCML_REQUIRE_GPU=1 but no CUDA device: " << why_; \
      GTEST_SKIP() << "no CUDA device: " << why_;                                       \
    }                                                                                   \
  } while (0)

// Device copies of host vectors, and back.
template <class T>
struct Dev {
  Dev(Backend& be, const std::vector<T>& host) : arr(be, host.size()), be_(&be) {
    be.copy_from_host(arr.data(), host.data(), host.size() * sizeof(T));
  }
  Dev(Backend& be, std::size_t n) : arr(be, n), be_(&be) {}
  std::vector<T> host() {
    std::vector<T> out(arr.size());
    be_->copy_to_host(out.data(), arr.data(), out.size() * sizeof(T));
    return out;
  }
  T* get() { return arr.data(); }
  BackendArray<T> arr;
  Backend* be_;
};

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HPCML_SKIP_WITHOUT_GPU();
    cuda_ = make_backend("cuda", 1);
    ref_ = make_backend("reference", 1);
  }
  std::unique_ptr<Backend> cuda_, ref_;
};

void expect_max_ulp(const std::vector<float>& got, const std::vector<float>& want, int ulps,
                    const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_LE(ulp_distance(got[i], want[i]), ulps)
        << what << " at " << i << ": " << got[i] << " vs " << want[i];
}

TEST_F(CudaBackendTest, MemoryIsZeroedAndCopiesRoundTrip) {
  EXPECT_EQ(cuda_->memory_space(), MemorySpace::kDevice);
  Dev<float> z(*cuda_, std::size_t{1000});
  EXPECT_EQ(z.host(), std::vector<float>(1000, 0.0f));
  const auto v = random_floats(1000, 1);
  Dev<float> a(*cuda_, v);
  Dev<float> b(*cuda_, std::size_t{1000});
  cuda_->copy(b.get(), a.get(), 1000 * sizeof(float));
  EXPECT_TRUE(bit_identical(b.host(), v));
  cuda_->fill_zero(b.get(), 500 * sizeof(float));
  auto h = b.host();
  EXPECT_EQ(h[499], 0.0f);
  EXPECT_EQ(h[500], v[500]);
  void* pinned = cuda_->allocate_host(4096);
  ASSERT_NE(pinned, nullptr);
  std::memcpy(pinned, v.data(), 1000 * sizeof(float));
  cuda_->copy_from_host(b.get(), pinned, 1000 * sizeof(float));
  std::memset(pinned, 0, 4096);  // the copy must not read it any more
  EXPECT_TRUE(bit_identical(b.host(), v));
  cuda_->deallocate_host(pinned);
  EXPECT_EQ(cuda_device_of(*cuda_), 0);
}

struct GemmCase {
  bool ta, tb;
  std::size_t m, n, k, pad;
  float alpha, beta;
};

std::vector<float> run_gemm(Backend& be, const GemmCase& g, const std::vector<float>& a,
                            const std::vector<float>& b, const std::vector<float>& c0) {
  const std::size_t lda = (g.ta ? g.m : g.k) + g.pad, ldb = (g.tb ? g.k : g.n) + g.pad,
                    ldc = g.n + g.pad;
  Dev<float> da(be, a), db(be, b), dc(be, c0);
  be.gemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, da.get(), lda, db.get(), ldb, g.beta, dc.get(), ldc);
  return dc.host();
}

std::vector<GemmCase> gemm_cases() {
  std::vector<GemmCase> cases;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      cases.push_back({ta, tb, 37, 29, 53, 0, 1.0f, 0.0f});
      cases.push_back({ta, tb, 64, 128, 256, 3, 0.5f, 0.25f});
      cases.push_back({ta, tb, 5, 7, 0, 1, 1.0f, 0.5f});  // k == 0: C = beta * C
    }
  return cases;
}

std::vector<float> gemm_inputs(const GemmCase& g, char which, std::uint32_t seed) {
  const std::size_t lda = (g.ta ? g.m : g.k) + g.pad, ldb = (g.tb ? g.k : g.n) + g.pad;
  if (which == 'a') return random_floats((g.ta ? g.k : g.m) * lda + 1, seed);
  if (which == 'b') return random_floats((g.tb ? g.n : g.k) * ldb + 1, seed);
  return random_floats(g.m * (g.n + g.pad) + 1, seed);
}

TEST_F(CudaBackendTest, GemmFp32MatchesReference) {
  for (const auto& g : gemm_cases()) {
    const auto a = gemm_inputs(g, 'a', 1), b = gemm_inputs(g, 'b', 2), c = gemm_inputs(g, 'c', 3);
    const auto got = run_gemm(*cuda_, g, a, b, c), want = run_gemm(*ref_, g, a, b, c);
    const double tol = 1e-5 * static_cast<double>(g.k) + 1e-6;
    for (std::size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i], tol)
          << "ta=" << g.ta << " tb=" << g.tb << " k=" << g.k << " at " << i;
  }
}

float round_bf16(float x) {
  std::uint32_t u = 0;
  std::memcpy(&u, &x, 4);
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  u &= 0xffff0000u;
  std::memcpy(&x, &u, 4);
  return x;
}

TEST_F(CudaBackendTest, GemmLowPrecisionModes) {
  for (auto p : {GemmPrecision::kTf32, GemmPrecision::kFp16, GemmPrecision::kBf16}) {
    cuda_->set_gemm_precision(p);
    EXPECT_EQ(cuda_->gemm_precision(), p);
    for (const auto& g : gemm_cases()) {
      auto a = gemm_inputs(g, 'a', 4), b = gemm_inputs(g, 'b', 5);
      const auto c = gemm_inputs(g, 'c', 6);
      const auto got = run_gemm(*cuda_, g, a, b, c);
      double tol = 4e-3 * std::sqrt(static_cast<double>(g.k)) + 1e-6;
      if (p == GemmPrecision::kBf16) {
        // bf16 inputs, fp32 accumulation: an fp32 GEMM of the rounded inputs.
        for (auto& x : a) x = round_bf16(x);
        for (auto& x : b) x = round_bf16(x);
        tol = 1e-5 * static_cast<double>(g.k) + 1e-6;
      }
      const auto want = run_gemm(*ref_, g, a, b, c);
      for (std::size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], tol) << "precision " << static_cast<int>(p) << " ta=" << g.ta
                                          << " tb=" << g.tb << " k=" << g.k << " at " << i;
    }
  }
  cuda_->set_gemm_precision(GemmPrecision::kFp32);
}

TEST_F(CudaBackendTest, ElementwiseKernelsMatchReferenceBits) {
  const std::size_t rows = 37, cols = 300, n = rows * cols;
  const auto y0 = random_floats(n, 10), bias = random_floats(cols, 11), dy0 = random_floats(n, 12);
  auto run = [&](Backend& be) {
    std::vector<std::vector<float>> out;
    Dev<float> y(be, y0), b(be, bias), dy(be, dy0), sums(be, cols);
    be.add_bias(y.get(), b.get(), rows, cols);
    out.push_back(y.host());
    be.column_sums(y.get(), rows, cols, sums.get());
    out.push_back(sums.host());
    be.relu(y.get(), n);
    out.push_back(y.host());
    be.relu_backward(dy.get(), y.get(), n);
    out.push_back(dy.host());
    be.scale(dy.get(), n, 0.37f);
    out.push_back(dy.host());
    be.dropout(y.get(), n, 0.3f, 987654321ULL);
    out.push_back(y.host());
    return out;
  };
  const auto got = run(*cuda_), want = run(*ref_);
  const char* names[] = {"add_bias", "column_sums", "relu", "relu_backward", "scale", "dropout"};
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_TRUE(bit_identical(got[i], want[i])) << names[i];
}

// More than 256 rows: chunks of 256 rows, then the chunks in order (fixed
// shape). Within 2e-3 of reference's row-order float sums of 4099 values in
// [-1, 1] (both orders round; the sums are about 40 in size).
TEST_F(CudaBackendTest, ColumnSumsOfTallMatrices) {
  for (std::size_t cols : {std::size_t{10}, std::size_t{300}}) {
    const std::size_t rows = 4099;
    const auto x = random_floats(rows * cols, 13);
    Dev<float> dx(*cuda_, x), out(*cuda_, cols);
    cuda_->column_sums(dx.get(), rows, cols, out.get());
    const auto got = out.host();
    std::vector<float> want(cols);
    ref_->column_sums(x.data(), rows, cols, want.data());
    for (std::size_t j = 0; j < cols; ++j) ASSERT_NEAR(got[j], want[j], 2e-3) << j;
    cuda_->column_sums(dx.get(), rows, cols, out.get());
    EXPECT_TRUE(bit_identical(out.host(), got)) << "not deterministic";
  }
}

// More row chunks than gridDim.y allows (65535): blocks stride over the rest.
// Small integers: every partial sum is exact, so the result is exact too.
TEST_F(CudaBackendTest, ColumnSumsOfMoreRowChunksThanAGridDimension) {
  const std::size_t rows = 65537 * 256 + 3, cols = 2;
  std::vector<float> x(rows * cols);
  std::vector<long long> want(cols, 0);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) {
      const long long v = static_cast<long long>((i * 7 + j * 3) % 9) - 4 + (i % 1000 == 0);
      x[i * cols + j] = static_cast<float>(v);
      want[j] += v;
    }
  Dev<float> dx(*cuda_, x), out(*cuda_, cols);
  cuda_->column_sums(dx.get(), rows, cols, out.get());
  const auto got = out.host();
  for (std::size_t j = 0; j < cols; ++j) EXPECT_EQ(got[j], static_cast<float>(want[j])) << j;
}

TEST_F(CudaBackendTest, OptimizerKernelsMatchReference) {
  const std::size_t n = 10007;
  const auto w0 = random_floats(n, 20), g0 = random_floats(n, 21), v0 = random_floats(n, 22, 0, 1),
             m0 = random_floats(n, 23);
  auto run = [&](Backend& be) {
    std::vector<std::vector<float>> out;
    Dev<float> w(be, w0), g(be, g0), v(be, v0), m(be, m0), u(be, n);
    be.sgd_momentum(w.get(), g.get(), v.get(), n, 0.1f, 0.9f, 1e-4f);
    out.push_back(w.host());
    out.push_back(v.host());
    be.sgd_nesterov(w.get(), g.get(), v.get(), n, 0.05f, 0.9f, 1e-4f);
    out.push_back(w.host());
    be.adam_direction(w.get(), g.get(), m.get(), v.get(), u.get(), n, 0.9f, 0.999f, 1e-8f, 0.1f,
                      0.001f, 1e-4f, 0.01f);
    out.push_back(m.host());
    out.push_back(v.host());
    out.push_back(u.host());
    be.axpy(w.get(), u.get(), n, -0.01f);
    out.push_back(w.host());
    be.lars_momentum(w.get(), g.get(), v.get(), n, 0.02f, 0.9f, 5e-4f);
    out.push_back(w.host());
    out.push_back(v.host());
    return out;
  };
  const auto got = run(*cuda_), want = run(*ref_);
  for (std::size_t i = 0; i < got.size(); ++i)
    expect_max_ulp(got[i], want[i], 1, ("optimizer output " + std::to_string(i)).c_str());
  Dev<float> w(*cuda_, w0);
  const double ss = cuda_->sum_squares(w.get(), n), ss_ref = ref_->sum_squares(w0.data(), n);
  EXPECT_NEAR(ss, ss_ref, 1e-12 * ss_ref);
  EXPECT_EQ(cuda_->sum_squares(w.get(), n), ss) << "sum_squares is not deterministic";
}

TEST_F(CudaBackendTest, SoftmaxXentMatchesReference) {
  const std::size_t rows = 1000, classes = 10;
  const auto logits = random_floats(rows * classes, 30, -4, 4);
  const auto labels = random_labels(rows, classes, 31);
  Dev<float> dl(*cuda_, logits), dd(*cuda_, rows * classes);
  Dev<std::int32_t> dy(*cuda_, labels);
  std::size_t correct = 0, correct_ref = 0;
  const double loss =
      cuda_->softmax_xent(dl.get(), dy.get(), rows, classes, 0.001f, dd.get(), &correct);
  std::vector<float> dref(rows * classes);
  const double loss_ref = ref_->softmax_xent(logits.data(), labels.data(), rows, classes, 0.001f,
                                             dref.data(), &correct_ref);
  EXPECT_NEAR(loss, loss_ref, 1e-12 * loss_ref);
  EXPECT_EQ(correct, correct_ref);
  expect_max_ulp(dd.host(), dref, 2, "dlogits");
  // Evaluation form: no dlogits, same loss bits.
  EXPECT_EQ(cuda_->softmax_xent(dl.get(), dy.get(), rows, classes, 1.0f, nullptr, nullptr), loss);
  // A bad label: DataError naming it, dlogits untouched.
  auto bad = labels;
  bad[417] = 10;
  Dev<std::int32_t> dbad(*cuda_, bad);
  Dev<float> untouched(*cuda_, rows * classes);
  try {
    cuda_->softmax_xent(dl.get(), dbad.get(), rows, classes, 1.0f, untouched.get(), nullptr);
    FAIL() << "no error for label 10";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("label 10 at row 417 is outside [0, 10)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(untouched.host(), std::vector<float>(rows * classes, 0.0f));
}

TEST_F(CudaBackendTest, ConvolutionKernelsMatchReferenceBits) {
  for (const Backend::ConvShape& s : {Backend::ConvShape{2, 9, 7, 3, 3, 1, 1, 9, 7},
                                      Backend::ConvShape{3, 8, 8, 4, 3, 2, 1, 4, 4},
                                      Backend::ConvShape{1, 6, 6, 2, 5, 1, 0, 2, 2}}) {
    const std::size_t xs = s.n * s.h * s.w * s.c, cs = s.n * s.oh * s.ow * s.k * s.k * s.c;
    const auto x = random_floats(xs, 40), cols = random_floats(cs, 41);
    Dev<float> dx(*cuda_, x), dcols(*cuda_, cs), din(*cuda_, cols), dback(*cuda_, xs);
    cuda_->im2col(dx.get(), s, dcols.get());
    std::vector<float> rcols(cs), rback(xs);
    ref_->im2col(x.data(), s, rcols.data());
    EXPECT_TRUE(bit_identical(dcols.host(), rcols)) << "im2col k=" << s.k;
    cuda_->col2im(din.get(), s, dback.get());
    ref_->col2im(cols.data(), s, rback.data());
    EXPECT_TRUE(bit_identical(dback.host(), rback)) << "col2im k=" << s.k;
  }
  const std::size_t n = 2, h = 8, w = 6, c = 3, size = 2, out = n * (h / size) * (w / size) * c;
  const auto x = random_floats(n * h * w * c, 42), dy = random_floats(out, 43);
  Dev<float> dx(*cuda_, x), dyv(*cuda_, dy), y(*cuda_, out), back(*cuda_, x.size());
  Dev<std::uint32_t> arg(*cuda_, out);
  cuda_->maxpool(dx.get(), n, h, w, c, size, y.get(), arg.get());
  cuda_->maxpool_backward(dyv.get(), arg.get(), out, back.get(), x.size());
  std::vector<float> ry(out), rback(x.size());
  std::vector<std::uint32_t> rarg(out);
  ref_->maxpool(x.data(), n, h, w, c, size, ry.data(), rarg.data());
  ref_->maxpool_backward(dy.data(), rarg.data(), out, rback.data(), x.size());
  EXPECT_TRUE(bit_identical(y.host(), ry));
  EXPECT_EQ(arg.host(), rarg);
  EXPECT_TRUE(bit_identical(back.host(), rback));
}

TEST_F(CudaBackendTest, PrefetchedBatchesArriveIntactAndInOrder) {
  std::vector<Batch> batches(4);
  for (std::size_t i = 0; i < batches.size(); ++i) {
    batches[i].x = random_floats(512 * 784, static_cast<std::uint32_t>(50 + i));
    batches[i].y = random_labels(512, 10, static_cast<std::uint32_t>(60 + i));
  }
  const std::size_t hits0 = cuda_prefetch_hits(*cuda_);
  // Unprefetched first batch, then each next one prefetched during the current.
  BatchView v = cuda_->upload_batch(batches[0]);
  for (std::size_t i = 0; i < batches.size(); ++i) {
    if (i + 1 < batches.size()) cuda_->prefetch_batch(batches[i + 1]);
    std::vector<float> x(batches[i].x.size());
    std::vector<std::int32_t> y(batches[i].y.size());
    cuda_->copy_to_host(x.data(), v.x, x.size() * sizeof(float));
    cuda_->copy_to_host(y.data(), v.y, y.size() * sizeof(std::int32_t));
    EXPECT_TRUE(bit_identical(x, batches[i].x)) << "batch " << i;
    EXPECT_EQ(y, batches[i].y) << "batch " << i;
    if (i + 1 < batches.size()) v = cuda_->upload_batch(batches[i + 1]);
  }
  EXPECT_EQ(cuda_prefetch_hits(*cuda_) - hits0, batches.size() - 1);
  // A prefetch of another batch is not used for this one.
  cuda_->prefetch_batch(batches[1]);
  v = cuda_->upload_batch(batches[2]);
  std::vector<float> x(batches[2].x.size());
  cuda_->copy_to_host(x.data(), v.x, x.size() * sizeof(float));
  EXPECT_TRUE(bit_identical(x, batches[2].x));
}

// core's trainer prefetches the next batch before it uploads the current one,
// into two Batch objects it takes turns with (trainer.cpp, train_step).
TEST_F(CudaBackendTest, BatchesPrefetchedBeforeTheCurrentUploadAreUsed) {
  std::vector<Batch> src(5);
  for (std::size_t i = 0; i < src.size(); ++i) {
    src[i].x = random_floats(256 * 784, static_cast<std::uint32_t>(70 + i));
    src[i].y = random_labels(256, 10, static_cast<std::uint32_t>(80 + i));
  }
  const std::size_t hits0 = cuda_prefetch_hits(*cuda_);
  Batch buf[2];
  int cur = 0;
  buf[cur] = src[0];
  for (std::size_t i = 0; i < src.size(); ++i) {
    if (i + 1 < src.size()) {
      buf[cur ^ 1] = src[i + 1];
      cuda_->prefetch_batch(buf[cur ^ 1]);
    }
    const BatchView v = cuda_->upload_batch(buf[cur]);
    std::vector<float> x(src[i].x.size());
    std::vector<std::int32_t> y(src[i].y.size());
    cuda_->copy_to_host(x.data(), v.x, x.size() * sizeof(float));
    cuda_->copy_to_host(y.data(), v.y, y.size() * sizeof(std::int32_t));
    EXPECT_TRUE(bit_identical(x, src[i].x)) << "batch " << i;
    EXPECT_EQ(y, src[i].y) << "batch " << i;
    cur ^= 1;
  }
  // Every batch but the first was prefetched and found.
  EXPECT_EQ(cuda_prefetch_hits(*cuda_) - hits0, src.size() - 1);
}

std::vector<float> train(Backend& be, GemmPrecision p, int steps, std::vector<double>* losses) {
  be.set_gemm_precision(p);
  tools::MlpStep mlp(be, {64, 128, 64, 10}, 256, 7);
  std::vector<float> xh;
  std::vector<std::int32_t> yh;
  for (int s = 0; s < steps; ++s) {
    tools::synthetic_batch(256, 64, 10, static_cast<std::uint32_t>(100 + s), xh, yh);
    Batch b;
    b.x = xh;
    b.y = yh;
    const BatchView v = be.upload_batch(b);
    const double loss = mlp.step(v.x, v.y, 0.05f);
    if (losses) losses->push_back(loss / 256.0);
  }
  return mlp.parameters();
}

TEST_F(CudaBackendTest, TrainingStepsMatchReference) {
  std::vector<double> lc, lr;
  const auto pc = train(*cuda_, GemmPrecision::kFp32, 10, &lc);
  const auto pr = train(*ref_, GemmPrecision::kFp32, 10, &lr);
  ASSERT_EQ(pc.size(), pr.size());
  for (std::size_t s = 0; s < lc.size(); ++s) EXPECT_NEAR(lc[s], lr[s], 1e-4 * lr[s]) << s;
  for (std::size_t i = 0; i < pc.size(); ++i) ASSERT_NEAR(pc[i], pr[i], 5e-4) << i;
  EXPECT_LT(lc.back(), lc.front());
}

TEST_F(CudaBackendTest, SameSeedSameBits) {
  for (auto p : {GemmPrecision::kFp32, GemmPrecision::kBf16, GemmPrecision::kFp16}) {
    auto again = make_backend("cuda", 1);
    std::vector<double> l1, l2;
    const auto a = train(*cuda_, p, 5, &l1), b = train(*again, p, 5, &l2);
    EXPECT_TRUE(bit_identical(a, b)) << "precision " << static_cast<int>(p);
    EXPECT_EQ(l1, l2);
  }
  cuda_->set_gemm_precision(GemmPrecision::kFp32);
}

TEST_F(CudaBackendTest, LowPrecisionTrainingFollowsFp32) {
  std::vector<double> l32, l16, lb16;
  train(*cuda_, GemmPrecision::kFp32, 30, &l32);
  train(*cuda_, GemmPrecision::kFp16, 30, &l16);
  train(*cuda_, GemmPrecision::kBf16, 30, &lb16);
  cuda_->set_gemm_precision(GemmPrecision::kFp32);
  EXPECT_LT(lb16.back(), 0.5 * lb16.front());
  EXPECT_NEAR(lb16.back(), l32.back(), 0.05 * l32.front());
  EXPECT_NEAR(l16.back(), l32.back(), 0.05 * l32.front());
}

TEST_F(CudaBackendTest, GemmTimingCountsCublasTime) {
  cuda_set_gemm_timing(*cuda_, true);
  Dev<float> a(*cuda_, std::size_t{1024 * 1024}), c(*cuda_, std::size_t{1024 * 1024});
  for (int i = 0; i < 3; ++i)
    cuda_->gemm(false, false, 1024, 1024, 1024, 1.0f, a.get(), 1024, a.get(), 1024, 0.0f, c.get(),
                1024);
  EXPECT_GT(cuda_take_gemm_ms(*cuda_), 0.0);
  EXPECT_EQ(cuda_take_gemm_ms(*cuda_), 0.0);
  cuda_set_gemm_timing(*cuda_, false);
}

}  // namespace
}  // namespace hpcml::kernels

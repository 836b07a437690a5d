// The device fp16/bf16 codec kernels (comm/src/nccl/device_codec.cu, label
// gpu) against the host codec comm::encode / comm::decode_add, bit for bit:
// about a million values (edges, a sweep of rounding positions, random), every
// 16-bit pattern decoded, sizes 0, 1 and odd ones, with prescales. Skips with
// "no CUDA device: ..." where there is none (HPCML_REQUIRE_GPU=1: fails).
#include "device_codec.hpp"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "half_cases.hpp"
#include "half_convert.hpp"
#include "hpcml/comm/codec.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::comm {
namespace {

using test::bits_float;

bool gpu_required() {
  const char* v = std::getenv("HPCML_REQUIRE_GPU");
  return v != nullptr && std::string(v) == "1";
}

#define SKIP_WITHOUT_GPU()                                                                   \
  do {                                                                                       \
    int count_ = 0;                                                                          \
    const cudaError_t e_ = cudaGetDeviceCount(&count_);                                      \
    if (e_ != cudaSuccess || count_ == 0) {                                                  \
      const std::string why_ = e_ != cudaSuccess ? std::string(cudaGetErrorString(e_))       \
                                                 : std::string("cudaGetDeviceCount says 0"); \
      (void)cudaGetLastError();                                                              \
      if (gpu_required()) FAIL() << "HPCML_REQUIRE_GPU=1 but no CUDA device: " << why_;      \
      GTEST_SKIP() << "no CUDA device: " << why_;                                            \
    }                                                                                        \
  } while (0)

#define CHECK_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

template <class T>
struct Device {
  explicit Device(std::size_t count) : n(count) {
    if (cudaMalloc(reinterpret_cast<void**>(&p), (n + 1) * sizeof(T)) != cudaSuccess) p = nullptr;
  }
  ~Device() { (void)cudaFree(p); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  T* p = nullptr;
  std::size_t n;
};

std::vector<float> inputs() { return test::all_floats(100000); }  // about 1.0M

class DeviceCodec : public ::testing::TestWithParam<Codec> {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_GPU();
    ASSERT_EQ(cudaStreamCreate(&stream_), cudaSuccess);
  }
  void TearDown() override {
    if (stream_) (void)cudaStreamDestroy(stream_);
  }
  cudaStream_t stream_ = nullptr;
};

// Device encode of in[0, n) * prescale against the host codec of the host
// product; the 16-bit word after the n-th stays as it was.
void check_encode(Codec codec, const std::vector<float>& in, std::size_t n, float prescale,
                  cudaStream_t stream) {
  SCOPED_TRACE(to_string(codec) + " encode n=" + std::to_string(n) +
               " prescale=" + std::to_string(prescale));
  Device<float> din(n);
  Device<std::uint16_t> dout(n);
  ASSERT_TRUE(din.p && dout.p);
  CHECK_CUDA(cudaMemcpy(din.p, in.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemset(dout.p, 0xa5, (n + 1) * sizeof(std::uint16_t)));
  nccl::device_encode(codec, din.p, n, prescale, dout.p, stream);
  CHECK_CUDA(cudaStreamSynchronize(stream));
  std::vector<std::uint16_t> got(n + 1);
  CHECK_CUDA(
      cudaMemcpy(got.data(), dout.p, (n + 1) * sizeof(std::uint16_t), cudaMemcpyDeviceToHost));

  std::vector<float> scaled(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
  if (prescale != 1.0f)
    for (float& x : scaled) x *= prescale;
  std::vector<std::uint8_t> bytes(encoded_bytes(codec, n, 0) + 2);
  encode(codec, scaled.data(), n, 0, nullptr, bytes.data());
  std::vector<std::uint16_t> want(n);
  std::memcpy(want.data(), bytes.data(), n * 2);

  int bad = 0;
  for (std::size_t i = 0; i < n && bad < 10; ++i) {
    if (got[i] != want[i]) {
      ADD_FAILURE() << "element " << i << " (" << std::hex << bits_float(in[i]) << "): device "
                    << got[i] << ", host " << want[i] << std::dec;
      ++bad;
    }
  }
  EXPECT_EQ(got[n], 0xa5a5) << "written past n";
}

TEST_P(DeviceCodec, EncodesAsTheHostCodec) {
  const std::vector<float> in = inputs();
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1001},
                              std::size_t{65537}, in.size()})
    check_encode(GetParam(), in, n, 1.0f, stream_);
  for (const float p : {0.25f, 1.0f / 3.0f})  // 1 / ranks, as the NCCL average uses it
    check_encode(GetParam(), in, in.size(), p, stream_);
}

TEST_P(DeviceCodec, DecodesEveryPatternAsTheHostCodec) {
  const Codec codec = GetParam();
  // Every pattern, then again to an odd total.
  std::vector<std::uint16_t> patterns(65536 + 4097);
  for (std::size_t b = 0; b < patterns.size(); ++b)
    patterns[b] = static_cast<std::uint16_t>(b * 40503u);  // odd multiplier: a permutation
  const std::size_t n = patterns.size();
  Device<std::uint16_t> din(n);
  Device<float> dout(n);
  ASSERT_TRUE(din.p && dout.p);
  CHECK_CUDA(cudaMemcpy(din.p, patterns.data(), n * 2, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemset(dout.p, 0xa5, (n + 1) * sizeof(float)));
  nccl::device_decode(codec, din.p, n, dout.p, stream_);
  CHECK_CUDA(cudaStreamSynchronize(stream_));
  std::vector<float> got(n + 1);
  CHECK_CUDA(cudaMemcpy(got.data(), dout.p, (n + 1) * sizeof(float), cudaMemcpyDeviceToHost));

  std::vector<float> host(n, -0.0f);  // -0 + y == y, signed zeros included
  decode_add(codec, reinterpret_cast<const std::uint8_t*>(patterns.data()), n, 0, host.data());
  int bad = 0;
  for (std::size_t i = 0; i < n && bad < 10; ++i) {
    const std::uint32_t g = bits_float(got[i]), h = bits_float(host[i]);
    // The conversion keeps a NaN's payload; the host's accumulate (an add)
    // sets the quiet bit of a signalling one: compare NaNs without that bit,
    // and with the host build of the same conversion exactly.
    const std::uint32_t own = bits_float(codec == Codec::kFp16 ? half::from_fp16(patterns[i])
                                                               : half::from_bf16(patterns[i]));
    const bool ok = std::isnan(host[i]) ? (g | 0x400000u) == (h | 0x400000u) && g == own : g == h;
    if (!ok) {
      ADD_FAILURE() << to_string(codec) << " pattern " << std::hex << patterns[i] << ": device "
                    << g << ", host " << h << std::dec;
      ++bad;
    }
  }
  EXPECT_EQ(bits_float(got[n]), 0xa5a5a5a5u) << "written past n";

  // n = 0 and n = 1.
  nccl::device_decode(codec, din.p, 0, dout.p, stream_);
  nccl::device_decode(codec, din.p + 1, 1, dout.p, stream_);
  CHECK_CUDA(cudaStreamSynchronize(stream_));
  float one = 0;
  CHECK_CUDA(cudaMemcpy(&one, dout.p, sizeof one, cudaMemcpyDeviceToHost));
  EXPECT_EQ(bits_float(one), bits_float(got[1]));
}

TEST_P(DeviceCodec, RoundTripOnTheDefaultStream) {
  const Codec codec = GetParam();
  std::vector<float> in(12345);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = std::sin(static_cast<float>(i)) * 1e-2f;
  Device<float> d(in.size());
  Device<std::uint16_t> h(in.size());
  ASSERT_TRUE(d.p && h.p);
  CHECK_CUDA(cudaMemcpy(d.p, in.data(), in.size() * sizeof(float), cudaMemcpyHostToDevice));
  nccl::device_encode(codec, d.p, in.size(), 0.5f, h.p, nullptr);
  nccl::device_decode(codec, h.p, in.size(), d.p, nullptr);
  std::vector<float> out(in.size());
  CHECK_CUDA(cudaMemcpy(out.data(), d.p, in.size() * sizeof(float), cudaMemcpyDeviceToHost));
  std::vector<std::uint8_t> bytes(in.size() * 2);
  std::vector<float> half_in(in);
  for (float& x : half_in) x *= 0.5f;
  encode(codec, half_in.data(), in.size(), 0, nullptr, bytes.data());
  std::vector<float> want(in.size(), -0.0f);
  decode_add(codec, bytes.data(), in.size(), 0, want.data());
  for (std::size_t i = 0; i < in.size(); ++i)
    ASSERT_EQ(bits_float(out[i]), bits_float(want[i])) << i;
}

INSTANTIATE_TEST_SUITE_P(Codecs, DeviceCodec, ::testing::Values(Codec::kFp16, Codec::kBf16),
                         [](const auto& p) { return to_string(p.param); });

TEST(DeviceCodecErrors, OtherCodecsAreRefusedByName) {
  // Checked before any launch: no device needed.
  for (const Codec c : {Codec::kNone, Codec::kInt8, Codec::kTopk}) {
    try {
      nccl::device_encode(c, nullptr, 4, 1.0f, nullptr, nullptr);
      ADD_FAILURE() << "device_encode accepted " << to_string(c);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'" + to_string(c) + "' is not built on the device"),
                std::string::npos)
          << e.what();
    }
    EXPECT_THROW(nccl::device_decode(c, nullptr, 4, nullptr, nullptr), Error);
  }
}

}  // namespace
}  // namespace hpcml::comm

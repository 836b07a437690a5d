// Each codec's error within its stated bound (see comm/codec.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "hpcml/comm/codec.hpp"
#include "hpcml/core/error.hpp"

using namespace hpcml::comm;

namespace {

std::vector<float> sample(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::uniform_int_distribution<int> e(-12, 8);
  std::vector<float> x(n);
  for (auto& v : x) v = d(gen) * std::ldexp(1.0f, e(gen));  // magnitudes 2^-12 .. 2^8
  if (n > 3) x[3] = 0.0f;
  return x;
}

std::vector<float> roundtrip(Codec c, const std::vector<float>& x, double ratio,
                             std::vector<float>* residual = nullptr) {
  std::vector<std::uint8_t> enc(encoded_bytes(c, x.size(), ratio));
  std::vector<float> res(x.size(), 0.0f);
  encode(c, x.data(), x.size(), ratio, residual ? residual->data() : res.data(), enc.data());
  std::vector<float> y(x.size(), 0.0f);
  decode_add(c, enc.data(), x.size(), ratio, y.data());
  return y;
}

TEST(Codec, Fp16WithinBound) {
  const auto x = sample(10007, 1);
  const auto y = roundtrip(Codec::kFp16, x, 0);
  for (std::size_t i = 0; i < x.size(); ++i)
    ASSERT_LE(std::fabs(y[i] - x[i]), std::ldexp(std::fabs(x[i]), -11) + std::ldexp(1.0f, -25))
        << i << ": " << x[i] << " -> " << y[i];
  EXPECT_EQ(encoded_bytes(Codec::kFp16, 1000, 0), 2000u);
  const auto big = roundtrip(Codec::kFp16, {1e6f, -1e6f}, 0);
  EXPECT_EQ(big[0], 65504.0f);
  EXPECT_EQ(big[1], -65504.0f);
}

// The integer conversion must agree bit for bit with the compiler's _Float16
// (round to nearest even) over normal, subnormal and tie cases.
TEST(Codec, Fp16MatchesCompilerConversion) {
  std::vector<float> x = sample(20011, 7);
  for (int e = -26; e <= 15; ++e)
    for (float m : {1.0f, 1.00048828125f, 1.0009765625f, 1.5f, 1.99951171875f})
      x.push_back(std::ldexp(m, e) * (e % 2 ? -1.0f : 1.0f));
  std::vector<std::uint8_t> enc(encoded_bytes(Codec::kFp16, x.size(), 0));
  encode(Codec::kFp16, x.data(), x.size(), 0, nullptr, enc.data());
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::fabs(x[i]) > 65504.0f) continue;  // we saturate where the cast gives inf
    const _Float16 h = static_cast<_Float16>(x[i]);
    std::uint16_t want, got;
    std::memcpy(&want, &h, 2);
    std::memcpy(&got, enc.data() + 2 * i, 2);
    ASSERT_EQ(got, want) << x[i];
  }
  std::vector<float> y(x.size(), 0.0f);
  decode_add(Codec::kFp16, enc.data(), x.size(), 0, y.data());
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::fabs(x[i]) <= 65504.0f) {
      ASSERT_EQ(y[i], static_cast<float>(static_cast<_Float16>(x[i]))) << x[i];
    }
  }
}

TEST(Codec, Bf16WithinBound) {
  const auto x = sample(10007, 2);
  const auto y = roundtrip(Codec::kBf16, x, 0);
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    ASSERT_LE(std::fabs(y[i] - x[i]), std::ldexp(std::fabs(x[i]), -8)) << i;
    if (x[i] != 0) worst = std::max(worst, double(std::fabs(y[i] - x[i]) / std::fabs(x[i])));
  }
  EXPECT_GT(worst, std::ldexp(1.0, -10));  // it really rounds (not a copy)
}

TEST(Codec, Int8WithinChunkScaleBound) {
  const auto x = sample(3 * kInt8Chunk + 17, 3);
  const auto y = roundtrip(Codec::kInt8, x, 0);
  for (std::size_t c = 0; c * kInt8Chunk < x.size(); ++c) {
    const std::size_t lo = c * kInt8Chunk, hi = std::min(x.size(), lo + kInt8Chunk);
    float m = 0;
    for (std::size_t i = lo; i < hi; ++i) m = std::max(m, std::fabs(x[i]));
    const float s = m / 127.0f;
    for (std::size_t i = lo; i < hi; ++i)
      ASSERT_LE(std::fabs(y[i] - x[i]), s / 2 * (1 + 1e-5f) + std::ldexp(std::fabs(x[i]), -22))
          << i;
  }
  EXPECT_EQ(encoded_bytes(Codec::kInt8, 3 * kInt8Chunk + 17, 0), 3 * kInt8Chunk + 17 + 4 * 4);
  const auto zeros = roundtrip(Codec::kInt8, std::vector<float>(10, 0.0f), 0);
  for (float v : zeros) EXPECT_EQ(v, 0.0f);
}

TEST(Codec, TopkKeepsLargestAndFeedsBackTheRest) {
  const auto x = sample(1000, 4);
  std::vector<float> residual(x.size());
  for (std::size_t i = 0; i < residual.size(); ++i) residual[i] = 0.01f * static_cast<float>(i % 7);
  std::vector<float> acc(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) acc[i] = residual[i] + x[i];
  const double ratio = 0.05;
  const std::size_t k = topk_count(x.size(), ratio);
  EXPECT_EQ(k, 50u);
  const auto y = roundtrip(Codec::kTopk, x, ratio, &residual);
  std::size_t sent = 0;
  float smallest_sent = INFINITY, largest_kept = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    // Nothing is lost: what was sent plus what is kept is exactly in + old residual.
    ASSERT_EQ(y[i] + residual[i], acc[i]) << i;
    ASSERT_TRUE(y[i] == 0.0f || residual[i] == 0.0f) << i;
    if (y[i] != 0.0f) {
      ++sent;
      smallest_sent = std::min(smallest_sent, std::fabs(y[i]));
    } else {
      largest_kept = std::max(largest_kept, std::fabs(residual[i]));
    }
  }
  EXPECT_LE(sent, k);
  EXPECT_GE(smallest_sent, largest_kept);
  EXPECT_EQ(encoded_bytes(Codec::kTopk, 1000, ratio), 50u * 8u);
  EXPECT_EQ(topk_count(0, 0.5), 0u);
  EXPECT_EQ(topk_count(3, 1e-6), 1u);
}

TEST(Codec, NamesRoundTrip) {
  for (Codec c : {Codec::kNone, Codec::kFp16, Codec::kBf16, Codec::kInt8, Codec::kTopk})
    EXPECT_EQ(parse_codec(to_string(c)), c);
  EXPECT_THROW(parse_codec("zip"), hpcml::ConfigError);
}

}  // namespace

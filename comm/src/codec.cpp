#include "hpcml/comm/codec.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>

#include "hpcml/core/error.hpp"

namespace hpcml::comm {

Codec parse_codec(const std::string& name, const std::string& what) {
  if (name == "none") return Codec::kNone;
  if (name == "fp16") return Codec::kFp16;
  if (name == "bf16") return Codec::kBf16;
  if (name == "int8") return Codec::kInt8;
  if (name == "topk") return Codec::kTopk;
  HPCML_THROW(ConfigError, what + ": unknown compression '" + name +
                               "' (expected none, fp16, bf16, int8, topk)");
}

std::string to_string(Codec codec) {
  switch (codec) {
    case Codec::kNone:
      return "none";
    case Codec::kFp16:
      return "fp16";
    case Codec::kBf16:
      return "bf16";
    case Codec::kInt8:
      return "int8";
    case Codec::kTopk:
      return "topk";
  }
  return "?";
}

std::size_t topk_count(std::size_t n, double ratio) {
  if (n == 0) return 0;
  const auto k = static_cast<std::size_t>(std::ceil(ratio * static_cast<double>(n)));
  return std::clamp<std::size_t>(k, 1, n);
}

std::size_t encoded_bytes(Codec codec, std::size_t n, double topk_ratio) {
  switch (codec) {
    case Codec::kNone:
      return n * sizeof(float);
    case Codec::kFp16:
    case Codec::kBf16:
      return n * 2;
    case Codec::kInt8:
      return n + (n + kInt8Chunk - 1) / kInt8Chunk * sizeof(float);
    case Codec::kTopk:
      return topk_count(n, topk_ratio) * (sizeof(std::uint32_t) + sizeof(float));
  }
  return 0;
}

namespace {

std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// float -> IEEE half, round to nearest even, saturating at +-65504 (NaN stays
// NaN). Integer arithmetic instead of the compiler's soft-float call: the
// exponent is rebiased and the 13 dropped mantissa bits rounded in one add.
std::uint16_t to_fp16(float f) {
  std::uint32_t x = bits_of(f);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return sign | 0x7e00u;  // NaN
  if (x > 0x477fe000u) return sign | 0x7bffu;  // beyond 65504: saturate
  if (x < 0x38800000u) {                       // below 2^-14: half subnormal or zero
    // Adding 0.5 puts the value's 2^-24 multiples in the low mantissa bits,
    // rounded to nearest even by the FPU.
    const std::uint32_t t = bits_of(float_of(x) + 0.5f);
    return sign | static_cast<std::uint16_t>(t - 0x3f000000u);
  }
  x += 0xc8000fffu + ((x >> 13) & 1u);  // exponent -112, round half to even
  return sign | static_cast<std::uint16_t>(x >> 13);
}

float from_fp16(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t em = h & 0x7fffu;
  if (em >= 0x7c00u) return float_of(sign | 0x7f800000u | ((em & 0x3ffu) << 13));  // inf, NaN
  if (em < 0x400u) {  // subnormal or zero: exact in float
    const float v = static_cast<float>(em) * 5.9604644775390625e-08f;  // 2^-24
    return sign ? -v : v;
  }
  return float_of(sign | ((em << 13) + 0x38000000u));
}

std::uint16_t to_bf16(float x) {
  std::uint32_t u = bits_of(x);
  if (std::isnan(x)) return static_cast<std::uint16_t>((u >> 16) | 0x40);  // stays a quiet NaN
  u += 0x7FFF + ((u >> 16) & 1);  // round to nearest, ties to even
  return static_cast<std::uint16_t>(u >> 16);
}

float from_bf16(std::uint16_t bits) { return float_of(static_cast<std::uint32_t>(bits) << 16); }

}  // namespace

void encode(Codec codec, const float* in, std::size_t n, double topk_ratio, float* residual,
            std::uint8_t* out) {
  switch (codec) {
    case Codec::kNone:
      std::memcpy(out, in, n * sizeof(float));
      return;
    case Codec::kFp16:
    case Codec::kBf16:
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint16_t b = codec == Codec::kFp16 ? to_fp16(in[i]) : to_bf16(in[i]);
        std::memcpy(out + 2 * i, &b, 2);
      }
      return;
    case Codec::kInt8: {
      std::uint8_t* scales = out + n;
      for (std::size_t c = 0; c * kInt8Chunk < n; ++c) {
        const std::size_t lo = c * kInt8Chunk, hi = std::min(n, lo + kInt8Chunk);
        float m = 0;
        for (std::size_t i = lo; i < hi; ++i) m = std::max(m, std::fabs(in[i]));
        const float s = m / 127.0f;
        std::memcpy(scales + c * sizeof(float), &s, sizeof(float));
        for (std::size_t i = lo; i < hi; ++i) {
          const float q = s > 0 ? std::nearbyint(in[i] / s) : 0.0f;
          out[i] =
              static_cast<std::uint8_t>(static_cast<std::int8_t>(std::clamp(q, -127.0f, 127.0f)));
        }
      }
      return;
    }
    case Codec::kTopk: {
      HPCML_REQUIRE(residual != nullptr || n == 0, Error, "topk encode: no residual buffer");
      const std::size_t k = topk_count(n, topk_ratio);
      for (std::size_t i = 0; i < n; ++i) residual[i] += in[i];
      if (k == 0) return;
      // The k-th largest magnitude by selection on plain floats (much faster
      // than sorting indices), then one pass in index order: entries above it,
      // and as many equal to it as fit, lowest index first. Deterministic.
      std::vector<float> mag(n);
      for (std::size_t i = 0; i < n; ++i) mag[i] = std::fabs(residual[i]);
      std::nth_element(mag.begin(), mag.begin() + static_cast<std::ptrdiff_t>(k - 1), mag.end(),
                       std::greater<float>());
      const float kth = mag[k - 1];
      std::size_t above = 0;
      for (std::size_t i = 0; i < n; ++i) above += std::fabs(residual[i]) > kth;
      std::size_t ties = k - above, j = 0;
      for (std::size_t i = 0; i < n && j < k; ++i) {
        const float a = std::fabs(residual[i]);
        if (a < kth || (a == kth && ties == 0)) continue;
        if (a == kth) --ties;
        const auto idx = static_cast<std::uint32_t>(i);
        const float v = residual[i];
        residual[i] = 0;
        std::memcpy(out + j * 8, &idx, 4);
        std::memcpy(out + j * 8 + 4, &v, 4);
        ++j;
      }
      std::memset(out + j * 8, 0, (k - j) * 8);  // only with NaNs about: adds 0 at index 0
      return;
    }
  }
}

void decode_add(Codec codec, const std::uint8_t* in, std::size_t n, double topk_ratio, float* acc) {
  switch (codec) {
    case Codec::kNone:
      for (std::size_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, in + 4 * i, 4);
        acc[i] += v;
      }
      return;
    case Codec::kFp16:
    case Codec::kBf16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t b;
        std::memcpy(&b, in + 2 * i, 2);
        acc[i] += codec == Codec::kFp16 ? from_fp16(b) : from_bf16(b);
      }
      return;
    case Codec::kInt8: {
      const std::uint8_t* scales = in + n;
      for (std::size_t c = 0; c * kInt8Chunk < n; ++c) {
        const std::size_t lo = c * kInt8Chunk, hi = std::min(n, lo + kInt8Chunk);
        float s;
        std::memcpy(&s, scales + c * sizeof(float), sizeof(float));
        for (std::size_t i = lo; i < hi; ++i)
          acc[i] += static_cast<float>(static_cast<std::int8_t>(in[i])) * s;
      }
      return;
    }
    case Codec::kTopk: {
      const std::size_t k = topk_count(n, topk_ratio);
      for (std::size_t j = 0; j < k; ++j) {
        std::uint32_t i;
        float v;
        std::memcpy(&i, in + j * 8, 4);
        std::memcpy(&v, in + j * 8 + 4, 4);
        HPCML_REQUIRE(i < n, Error, "topk decode: index " + std::to_string(i) + " out of range");
        acc[i] += v;
      }
      return;
    }
  }
}

}  // namespace hpcml::comm

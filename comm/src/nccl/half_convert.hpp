// Element conversions of the fp16 and bf16 gradient codecs, written once for
// the host and the device: the CUDA kernels of device_codec.cu call them, and a
// host unit test (tests/comm/half_convert_test.cpp) checks them bit for bit
// against comm::encode / comm::decode_add (comm/src/codec.cpp). Plain C++ when
// not compiled by nvcc.
//
// Semantics (the host codec's, kept on the device too):
//   fp16 encode  round to nearest even; |x| > 65504 (including +-inf) saturates
//                to +-65504 (0x7bff); NaN becomes the quiet NaN sign|0x7e00
//                (payload dropped); half subnormals rounded to nearest even
//                with one float add, which needs IEEE subnormals (no
//                flush-to-zero: nvcc's default, never --use_fast_math here).
//   bf16 encode  round to nearest even on the upper 16 bits; no saturation
//                (values that round past the largest bf16 become +-inf);
//                NaN keeps its sign and upper payload and gets the quiet bit.
//   decode       exact: every 16-bit pattern to its float value; NaN keeps its
//                sign and payload (the conversion sets no quiet bit).
//   prescale     device_encode multiplies first (x * prescale, one IEEE float
//                multiply, never fused); a NaN input passes unchanged (the
//                host's multiply keeps a NaN operand, the GPU's would return
//                its canonical NaN); a NaN made by the product (0 * inf, a NaN
//                prescale) is the quiet NaN 0x7fc00000 on host and device.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define HPCML_HD __host__ __device__ __forceinline__
#else
#define HPCML_HD inline
#endif

namespace hpcml::comm::half {

HPCML_HD std::uint32_t bits_of(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

HPCML_HD float float_of(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

HPCML_HD bool is_nan_bits(std::uint32_t u) { return (u & 0x7fffffffu) > 0x7f800000u; }

/// x * prescale as the device codec defines it (see the header comment).
HPCML_HD float prescaled(float x, float prescale) {
  if (is_nan_bits(bits_of(x))) return x;
#if defined(__CUDA_ARCH__)
  const float y = __fmul_rn(x, prescale);
#else
  const float y = x * prescale;
#endif
  return is_nan_bits(bits_of(y)) ? float_of(0x7fc00000u) : y;
}

/// float -> IEEE half bits: round to nearest even, saturating at +-65504.
HPCML_HD std::uint16_t to_fp16(float f) {
  std::uint32_t x = bits_of(f);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);  // NaN
  if (x > 0x477fe000u) return static_cast<std::uint16_t>(sign | 0x7bffu);  // > 65504: saturate
  if (x < 0x38800000u) {  // below 2^-14: half subnormal or zero
                          // Adding 0.5 puts the value's 2^-24 multiples in the low mantissa bits,
                          // rounded to nearest even by the floating-point add.
#if defined(__CUDA_ARCH__)
    const std::uint32_t t = bits_of(__fadd_rn(float_of(x), 0.5f));
#else
    const std::uint32_t t = bits_of(float_of(x) + 0.5f);
#endif
    return static_cast<std::uint16_t>(sign | (t - 0x3f000000u));
  }
  x += 0xc8000fffu + ((x >> 13) & 1u);  // exponent -112, round half to even
  return static_cast<std::uint16_t>(sign | (x >> 13));
}

/// IEEE half bits -> float (exact).
HPCML_HD float from_fp16(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t em = h & 0x7fffu;
  if (em >= 0x7c00u) return float_of(sign | 0x7f800000u | ((em & 0x3ffu) << 13));  // inf, NaN
  if (em < 0x400u) {  // subnormal or zero: em * 2^-24 is exact in float
    const float v = static_cast<float>(em) * 5.9604644775390625e-08f;
    return float_of(sign | bits_of(v));
  }
  return float_of(sign | ((em << 13) + 0x38000000u));
}

/// float -> bfloat16 bits: round to nearest even; NaN stays a quiet NaN.
HPCML_HD std::uint16_t to_bf16(float f) {
  std::uint32_t u = bits_of(f);
  if (is_nan_bits(u)) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<std::uint16_t>(u >> 16);
}

/// bfloat16 bits -> float (exact).
HPCML_HD float from_bf16(std::uint16_t b) { return float_of(static_cast<std::uint32_t>(b) << 16); }

}  // namespace hpcml::comm::half

#undef HPCML_HD

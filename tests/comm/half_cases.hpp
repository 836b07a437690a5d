// Inputs for the fp16/bf16 conversion tests (half_convert_test, the gpu
// device_codec_test): the edge values of both formats and a dense sweep of
// rounding positions, plus random bit patterns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <random>
#include <vector>

namespace hpcml::comm::test {

inline float float_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline std::uint32_t bits_float(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

/// Named edges, each with both signs: zeros, float and half subnormals and
/// their boundaries, 65504/65520 (fp16 saturation), bf16 overflow, inf, NaNs
/// (quiet, signalling, with payloads), and ties that round to even.
inline std::vector<float> edge_floats() {
  const std::uint32_t pos[] = {
      0x00000000u, 0x00000001u, 0x00000002u, 0x007fffffu, 0x00800000u,  // float zero, subnormals
      0x33000000u,                            // 2^-25: half of the fp16 min subnormal (tie to 0)
      0x33000001u, 0x337fffffu, 0x33800000u,  // just above 2^-25, 2^-24 (fp16 min subnormal)
      0x33c00000u,                            // 1.5 * 2^-24: tie, to even (2 * 2^-24)
      0x34200000u,                            // 2.5 * 2^-24: tie, to even (2 * 2^-24)
      0x387fc000u, 0x387fe000u, 0x387fffffu, 0x38800000u,  // around 2^-14 (fp16 min normal)
      0x38801000u, 0x38803000u,                            // normal ties
      0x3f800000u, 0x3f801000u, 0x3f802000u, 0x3f803000u, 0x3f801001u,  // 1 and fp16 ties near 1
      0x3f808000u, 0x3f818000u, 0x3f808001u, 0x3f807fffu,               // bf16 ties near 1
      0x477fe000u,                                                      // 65504 (fp16 max)
      0x477fe001u, 0x477fefffu, 0x477ff000u,               // up to 65520 (would round to inf)
      0x477ff001u, 0x47800000u, 0x4f000000u, 0x7f7fffffu,  // beyond: saturate (fp16)
      0x7f7f7fffu, 0x7f7f8000u, 0x7f7f8001u,               // bf16 max and its overflow tie
      0x7f800000u,                                         // inf
      0x7fc00000u, 0x7fffffffu, 0x7fc00001u, 0x7fa00000u,  // quiet NaNs
      0x7f800001u, 0x7f810000u, 0x7fbfffffu,               // signalling NaNs
  };
  std::vector<float> out;
  for (const std::uint32_t u : pos) {
    out.push_back(float_bits(u));
    out.push_back(float_bits(u | 0x80000000u));
  }
  return out;
}

/// For every upper half (2^16 patterns), low halves that sit on the rounding
/// positions of fp16 (bit 12 ties, bit 13 the kept lsb) and bf16 (bit 15).
inline std::vector<float> sweep_floats() {
  const std::uint32_t lows[] = {0x0000u, 0x0001u, 0x0fffu, 0x1000u, 0x1001u, 0x2000u,
                                0x3000u, 0x7fffu, 0x8000u, 0x8001u, 0xefffu, 0xffffu};
  std::vector<float> out;
  out.reserve(65536 * std::size(lows));
  for (std::uint32_t hi = 0; hi < 65536; ++hi)
    for (const std::uint32_t lo : lows) out.push_back(float_bits(hi << 16 | lo));
  return out;
}

/// n random bit patterns (every float equally likely, NaNs included), and
/// n random values of gradient size (normal, scale 1e-3), fixed seed.
inline std::vector<float> random_floats(std::size_t n, std::uint32_t seed = 12) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1e-3f);
  std::vector<float> out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(float_bits(static_cast<std::uint32_t>(gen())));
  for (std::size_t i = 0; i < n; ++i) out.push_back(normal(gen));
  return out;
}

/// The edges, the sweep and random_floats(n_random): the encode tests' input.
inline std::vector<float> all_floats(std::size_t n_random) {
  std::vector<float> in = edge_floats();
  const std::vector<float> sweep = sweep_floats();
  const std::vector<float> random = random_floats(n_random);
  in.insert(in.end(), sweep.begin(), sweep.end());
  in.insert(in.end(), random.begin(), random.end());
  return in;
}

}  // namespace hpcml::comm::test

// Helpers shared by the kernel tests: seeded random data and the two backends.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "hpcml/kernels/factory.hpp"

namespace hpcml::kernels::test {

inline std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

inline std::vector<std::int32_t> random_labels(std::size_t n, std::size_t classes,
                                               std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<std::int32_t> dist(0, static_cast<std::int32_t>(classes) - 1);
  std::vector<std::int32_t> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

/// Bitwise equality (distinguishes -0.0 from 0.0 and compares NaN payloads).
inline bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
  // memcmp's pointers must not be null, even for 0 bytes (UBSan): an empty
  // vector's data() may be.
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

/// Number of representable floats between a and b (0 when equal, -0 == +0).
inline std::int64_t ulp_distance(float a, float b) {
  const auto ordered = [](float x) {
    std::int32_t bits = 0;
    std::memcpy(&bits, &x, sizeof bits);
    // Negative floats count down from -0 so the integer order matches the float order.
    return bits < 0 ? std::int64_t{INT32_MIN} - bits : std::int64_t{bits};
  };
  const std::int64_t d = ordered(a) - ordered(b);
  return d < 0 ? -d : d;
}

}  // namespace hpcml::kernels::test

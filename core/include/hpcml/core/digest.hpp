// A portable 64-bit digest of bytes (FNV-1a), written as "fnv1a64:<16 hex>":
// summary.json's params_digest and the checkpoint's parameter and momentum
// digests. Not cryptographic: it detects accidental change (a flipped bit, a
// truncated array, a different run), which is all these fields promise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace hpcml {

inline constexpr std::uint64_t kFnv1a64Offset = 0xcbf29ce484222325ULL;

/// Continues an FNV-1a 64 hash over `bytes` bytes at `data`.
inline std::uint64_t fnv1a64(const void* data, std::size_t bytes,
                             std::uint64_t hash = kFnv1a64Offset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) {
    hash ^= p[i];
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

/// "fnv1a64:" and 16 lower-case hex digits.
inline std::string digest_string(std::uint64_t hash) {
  char text[32];
  std::snprintf(text, sizeof text, "fnv1a64:%016llx", static_cast<unsigned long long>(hash));
  return text;
}

/// The digest of a float array's bytes (host byte order, as stored in memory).
inline std::string digest_of(std::span<const float> values) {
  return digest_string(fnv1a64(values.data(), values.size_bytes()));
}

}  // namespace hpcml

// Compression codecs for gradient buckets. A codec turns n floats into a
// fixed number of bytes (the same on every rank for the same n), so buckets
// can be exchanged with an all-gather and decoded by every rank in rank order,
// which keeps the decoded sum bit-identical on all ranks.
//
// Stated error bounds (per element x, decoded value y), tested in tests/comm:
//   fp16  |y - x| <= 2^-11 |x| + 2^-25  for |x| <= 65504 (larger values saturate to +-65504)
//   bf16  |y - x| <= 2^-8 |x|           (finite x; round to nearest even)
//   int8  |y - x| <= s / 2  with s = max|x| over the element's chunk of 256 / 127
//   topk  sent entries exact; every other entry is 0 on the wire and kept in the
//         caller's residual, which is added to the next step's gradient
//         (error feedback): after the call, input + old residual == sent + new residual.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hpcml::comm {

enum class Codec { kNone, kFp16, kBf16, kInt8, kTopk };

/// Parses "none", "fp16", "bf16", "int8", "topk"; ConfigError naming `what` otherwise.
Codec parse_codec(const std::string& name, const std::string& what = "compression");
std::string to_string(Codec codec);

/// Elements per int8 scale.
inline constexpr std::size_t kInt8Chunk = 256;

/// Entries top-k keeps for n elements: ceil(ratio * n), at least 1 when n > 0.
std::size_t topk_count(std::size_t n, double ratio);

/// Bytes encode() writes for n elements.
std::size_t encoded_bytes(Codec codec, std::size_t n, double topk_ratio);

/// Encodes n floats into `out` (encoded_bytes() long). For topk, `residual`
/// (n floats) is the error-feedback memory: in + residual is what is
/// compressed, and residual becomes what was left out. Other codecs ignore it.
void encode(Codec codec, const float* in, std::size_t n, double topk_ratio, float* residual,
            std::uint8_t* out);

/// acc[i] += decoded element i, for an encoding of n elements.
void decode_add(Codec codec, const std::uint8_t* in, std::size_t n, double topk_ratio, float* acc);

}  // namespace hpcml::comm

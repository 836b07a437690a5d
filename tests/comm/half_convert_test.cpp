// half_convert.hpp (the element conversions of the device fp16/bf16 codec
// kernels, compiled here for the host) against the host codec
// comm::encode / comm::decode_add, bit for bit: every 16-bit pattern decoded,
// edges, a sweep of rounding positions and random values encoded, with and
// without a prescale. The gpu test device_codec_test runs the same header on
// a device.
#include "half_convert.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include "half_cases.hpp"
#include "hpcml/comm/codec.hpp"

namespace hpcml::comm {
namespace {

using test::bits_float;
using test::float_bits;

std::vector<float> all_inputs() { return test::all_floats(200000); }

std::string hex(std::uint32_t u, int width = 8) {
  std::ostringstream s;
  s << "0x" << std::hex << std::setw(width) << std::setfill('0') << u;
  return s.str();
}

/// The host codec's 16-bit encodings of `in`.
std::vector<std::uint16_t> host_encode(Codec codec, const std::vector<float>& in) {
  std::vector<std::uint8_t> bytes(encoded_bytes(codec, in.size(), 0));
  encode(codec, in.data(), in.size(), 0, nullptr, bytes.data());
  std::vector<std::uint16_t> out(in.size());
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

std::uint16_t header_encode(Codec codec, float x) {
  return codec == Codec::kFp16 ? half::to_fp16(x) : half::to_bf16(x);
}
float header_decode(Codec codec, std::uint16_t b) {
  return codec == Codec::kFp16 ? half::from_fp16(b) : half::from_bf16(b);
}

class HalfConvert : public ::testing::TestWithParam<Codec> {};

TEST_P(HalfConvert, DecodesEveryPatternAsTheHostCodec) {
  const Codec codec = GetParam();
  std::vector<std::uint16_t> patterns(65536);
  for (std::uint32_t b = 0; b < 65536; ++b) patterns[b] = static_cast<std::uint16_t>(b);
  // decode_add onto -0: -0 + y == y for every y, signed zeros included.
  std::vector<float> host(patterns.size(), -0.0f);
  decode_add(codec, reinterpret_cast<const std::uint8_t*>(patterns.data()), patterns.size(), 0,
             host.data());
  int bad = 0;
  for (std::uint32_t b = 0; b < 65536 && bad < 10; ++b) {
    const std::uint32_t mine = bits_float(header_decode(codec, static_cast<std::uint16_t>(b)));
    const std::uint32_t ref = bits_float(host[b]);
    if (std::isnan(host[b])) {
      // A NaN keeps its sign and payload in the conversion; the host's
      // accumulate (an add) sets the quiet bit of a signalling one.
      const std::uint32_t expected =
          codec == Codec::kFp16 ? (b & 0x8000u) << 16 | 0x7f800000u | (b & 0x3ffu) << 13 : b << 16;
      if (mine != expected || (mine | 0x400000u) != (ref | 0x400000u)) {
        ADD_FAILURE() << to_string(codec) << " NaN pattern " << hex(b, 4) << ": header "
                      << hex(mine) << ", host " << hex(ref) << ", expected " << hex(expected);
        ++bad;
      }
    } else if (mine != ref) {
      ADD_FAILURE() << to_string(codec) << " pattern " << hex(b, 4) << ": header " << hex(mine)
                    << ", host " << hex(ref);
      ++bad;
    }
  }
}

TEST_P(HalfConvert, EncodesAsTheHostCodec) {
  const Codec codec = GetParam();
  const std::vector<float> in = all_inputs();
  const std::vector<std::uint16_t> host = host_encode(codec, in);
  int bad = 0;
  for (std::size_t i = 0; i < in.size() && bad < 10; ++i) {
    const std::uint16_t mine = header_encode(codec, in[i]);
    if (mine != host[i]) {
      ADD_FAILURE() << to_string(codec) << " encode " << hex(bits_float(in[i])) << ": header "
                    << hex(mine, 4) << ", host " << hex(host[i], 4);
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << "of " << in.size() << " values";
}

TEST_P(HalfConvert, PrescaledEncodeIsTheHostCodecOfTheHostProduct) {
  const Codec codec = GetParam();
  const std::vector<float> in = all_inputs();
  for (const float p : {1.0f, 0.5f, 0.25f, 1.0f / 3.0f, 3.0f, 1e-30f, 1e30f}) {
    std::vector<float> scaled(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) scaled[i] = in[i] * p;
    const std::vector<std::uint16_t> host = host_encode(codec, scaled);
    int bad = 0;
    for (std::size_t i = 0; i < in.size() && bad < 10; ++i) {
      const std::uint16_t mine = header_encode(codec, half::prescaled(in[i], p));
      if (mine != host[i]) {
        ADD_FAILURE() << to_string(codec) << " encode " << hex(bits_float(in[i])) << " * " << p
                      << ": header " << hex(mine, 4) << ", host " << hex(host[i], 4);
        ++bad;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Codecs, HalfConvert, ::testing::Values(Codec::kFp16, Codec::kBf16),
                         [](const auto& p) { return to_string(p.param); });

// Fixed points, independent of the host codec (so a change to both is seen).
TEST(HalfConvertValues, Fp16) {
  EXPECT_EQ(half::to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(half::to_fp16(-2.0f), 0xc000);
  EXPECT_EQ(half::to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(half::to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(half::to_fp16(65520.0f), 0x7bff);  // IEEE would give inf: saturated
  EXPECT_EQ(half::to_fp16(INFINITY), 0x7bff);
  EXPECT_EQ(half::to_fp16(-INFINITY), 0xfbff);
  EXPECT_EQ(half::to_fp16(std::ldexp(1.0f, -24)), 0x0001);    // min subnormal
  EXPECT_EQ(half::to_fp16(std::ldexp(1.0f, -25)), 0x0000);    // tie to even: 0
  EXPECT_EQ(half::to_fp16(std::ldexp(1.5f, -24)), 0x0002);    // tie to even: 2
  EXPECT_EQ(half::to_fp16(std::ldexp(1.0f, -14)), 0x0400);    // min normal
  EXPECT_EQ(half::to_fp16(float_bits(0x3f801000u)), 0x3c00);  // 1 + 2^-11: tie to even
  EXPECT_EQ(half::to_fp16(float_bits(0x3f803000u)), 0x3c02);  // 1 + 3 * 2^-11: tie to even
  EXPECT_EQ(half::to_fp16(NAN), 0x7e00);
  EXPECT_EQ(half::to_fp16(float_bits(0xff800001u)), 0xfe00);  // signalling, negative
  EXPECT_EQ(bits_float(half::from_fp16(0x0001)), bits_float(std::ldexp(1.0f, -24)));
  EXPECT_EQ(half::from_fp16(0x7bff), 65504.0f);
  EXPECT_EQ(bits_float(half::from_fp16(0x8000)), 0x80000000u);
  EXPECT_EQ(bits_float(half::from_fp16(0x7c00)), 0x7f800000u);
  EXPECT_EQ(bits_float(half::from_fp16(0xfc01)), 0xff802000u);  // signalling NaN stays one
}

TEST(HalfConvertValues, Bf16) {
  EXPECT_EQ(half::to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(half::to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(half::to_bf16(float_bits(0x3f808000u)), 0x3f80);  // tie to even
  EXPECT_EQ(half::to_bf16(float_bits(0x3f818000u)), 0x3f82);  // tie to even
  EXPECT_EQ(half::to_bf16(float_bits(0x3f808001u)), 0x3f81);
  EXPECT_EQ(half::to_bf16(float_bits(0x7f7f8000u)), 0x7f80);  // rounds to inf: no saturation
  EXPECT_EQ(half::to_bf16(INFINITY), 0x7f80);
  EXPECT_EQ(half::to_bf16(float_bits(0x7f800001u)), 0x7fc0);  // signalling NaN made quiet
  EXPECT_EQ(half::to_bf16(float_bits(0xffa12345u)), 0xffe1);  // sign and upper payload kept
  EXPECT_EQ(bits_float(half::from_bf16(0x0001)), 0x00010000u);
  EXPECT_EQ(bits_float(half::from_bf16(0xff81)), 0xff810000u);
}

TEST(HalfConvertValues, PrescaleKeepsNaNsAndMakesOtherNaNsCanonical) {
  EXPECT_EQ(bits_float(half::prescaled(float_bits(0xff800001u), 0.5f)), 0xff800001u);
  EXPECT_EQ(bits_float(half::prescaled(INFINITY, 0.0f)), 0x7fc00000u);
  EXPECT_EQ(bits_float(half::prescaled(1.0f, NAN)), 0x7fc00000u);
  EXPECT_EQ(half::prescaled(3.0f, 0.25f), 0.75f);
  EXPECT_EQ(bits_float(half::prescaled(-0.0f, 0.5f)), 0x80000000u);
}

}  // namespace
}  // namespace hpcml::comm

#include <gtest/gtest.h>

#include <string>

#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"

using hpcml::parse_byte_count;

namespace {

std::string error_of(const std::string& text) {
  try {
    parse_byte_count(text, "--max-bytes");
  } catch (const hpcml::ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST(ByteCount, PlainAndSuffixedCounts) {
  EXPECT_EQ(parse_byte_count("4", "x"), 4u);
  EXPECT_EQ(parse_byte_count("0", "x"), 0u);
  EXPECT_EQ(parse_byte_count("12B", "x"), 12u);
  EXPECT_EQ(parse_byte_count("64K", "x"), 64u << 10);
  EXPECT_EQ(parse_byte_count("64k", "x"), 64u << 10);
  EXPECT_EQ(parse_byte_count("3KiB", "x"), 3u << 10);
  EXPECT_EQ(parse_byte_count("256M", "x"), 256u << 20);
  EXPECT_EQ(parse_byte_count("2MiB", "x"), 2u << 20);
  EXPECT_EQ(parse_byte_count("1m", "x"), 1u << 20);
  EXPECT_EQ(parse_byte_count("2G", "x"), std::size_t{2} << 30);
  EXPECT_EQ(parse_byte_count("1GiB", "x"), std::size_t{1} << 30);
}

TEST(ByteCount, ErrorsNameTheSettingAndTheValue) {
  EXPECT_EQ(error_of("lots"), "--max-bytes: expected a byte count like 4, 64K, 256M, got 'lots'");
  EXPECT_EQ(error_of(""), "--max-bytes: expected a byte count like 4, 64K, 256M, got ''");
  EXPECT_EQ(error_of("-4"), "--max-bytes: expected a byte count like 4, 64K, 256M, got '-4'");
  EXPECT_EQ(error_of("4T"), "--max-bytes: unknown size suffix in '4T'");
  EXPECT_EQ(error_of("99999999999999999999"),
            "--max-bytes: expected a byte count like 4, 64K, 256M, got '99999999999999999999'");
  EXPECT_EQ(error_of("17179869184G"), "--max-bytes: byte count '17179869184G' is too large");
}

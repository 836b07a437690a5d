// Small string helpers shared by every module.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace hpcml {

/// Splits on every `sep`; empty fields are kept ("a,,b" -> {"a", "", "b"}; "" -> {""}).
std::vector<std::string> split(const std::string& text, char sep);

/// A byte count: digits with an optional suffix B, K/k/KiB, M/m/MiB or
/// G/g/GiB (powers of 1024), e.g. "4", "64K", "256MiB". Throws ConfigError
/// "<what>: expected a byte count like 4, 64K, 256M, got '<text>'" (or naming
/// an unknown suffix, or a value that does not fit in 64 bits).
std::size_t parse_byte_count(const std::string& text, const std::string& what);

/// The current UTC time as "YYYYmmdd-HHMMSS" (for run and study directory names).
std::string utc_timestamp();

/// Raw input as it may be echoed in a message: control characters escaped
/// (\n, \r, \t, \xNN) and, past `max_bytes` bytes of input, cut at a character
/// boundary with "…" and the full size appended, so a 2 MB field gives one short line.
std::string printable(std::string_view value, std::size_t max_bytes = 80);

}  // namespace hpcml

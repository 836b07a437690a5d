// Small string helpers shared by every module.
#pragma once

#include <string>
#include <vector>

namespace hpcml {

/// Splits on every `sep`; empty fields are kept ("a,,b" -> {"a", "", "b"}; "" -> {""}).
std::vector<std::string> split(const std::string& text, char sep);

/// The current UTC time as "YYYYmmdd-HHMMSS" (for run and study directory names).
std::string utc_timestamp();

}  // namespace hpcml

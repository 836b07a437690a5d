// Internal: typed, allowlisted reads from a ConfigDoc for launch/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "hpcml/core/config_doc.hpp"
#include "hpcml/launch/script_safety.hpp"

namespace hpcml::launch {

/// Concatenates by appending (GCC 12 warns falsely, -Wrestrict, on "literal" + std::string).
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string s;
  (s.append(std::string_view(parts)), ...);
  return s;
}

/// Fails through doc.fail(key, ...) when `value` is outside `field`'s allowlist.
inline void require_field(const ConfigDoc& doc, const std::string& key, const std::string& value,
                          Field field) {
  if (auto why = check_field(field, value); !why.empty())
    doc.fail(key, cat("'", printable(value), "' ", why, " (allowed: ", describe(field), ")"));
}

/// A string key checked against `field`; empty allowed only if `allow_empty`.
inline std::string get_checked(ConfigDoc& doc, const std::string& key, const std::string& def,
                               Field field, bool allow_empty) {
  std::string v = doc.get_string(key, def);
  if (v.empty() && allow_empty) return v;
  require_field(doc, key, v, field);
  return v;
}

}  // namespace hpcml::launch

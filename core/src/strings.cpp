#include "hpcml/core/strings.hpp"

#include <cstdio>
#include <ctime>
#include <limits>

#include "hpcml/core/error.hpp"

namespace hpcml {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::size_t parse_byte_count(const std::string& text, const std::string& what) {
  std::size_t pos = 0;
  unsigned long long n = 0;
  if (text.empty() || text[0] < '0' || text[0] > '9') pos = std::string::npos;
  try {
    if (pos == 0) n = std::stoull(text, &pos);
  } catch (const std::exception&) {
    pos = std::string::npos;
  }
  if (pos == std::string::npos)
    HPCML_THROW(ConfigError,
                what + ": expected a byte count like 4, 64K, 256M, got '" + text + "'");
  const std::string s = text.substr(pos);
  int shift = 0;
  if (s == "K" || s == "k" || s == "KiB")
    shift = 10;
  else if (s == "M" || s == "m" || s == "MiB")
    shift = 20;
  else if (s == "G" || s == "g" || s == "GiB")
    shift = 30;
  else if (!s.empty() && s != "B")
    HPCML_THROW(ConfigError, what + ": unknown size suffix in '" + text + "'");
  if (n > (std::numeric_limits<std::size_t>::max() >> shift))
    HPCML_THROW(ConfigError, what + ": byte count '" + text + "' is too large");
  return static_cast<std::size_t>(n) << shift;
}

std::string utc_timestamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", &tm);
  return ts;
}

std::string printable(std::string_view value, std::size_t max_bytes) {
  std::size_t n = value.size();
  if (n > max_bytes) {
    n = max_bytes;
    // Do not split a UTF-8 sequence: back up over continuation bytes.
    while (n > 0 && (static_cast<unsigned char>(value[n]) & 0xC0) == 0x80) --n;
  }
  std::string out;
  out.reserve(n + 16);
  for (char c : value.substr(0, n)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  if (n < value.size()) out += "… (" + std::to_string(value.size()) + " bytes)";
  return out;
}

}  // namespace hpcml

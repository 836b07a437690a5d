#include "hpcml/core/strings.hpp"

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

}  // namespace hpcml

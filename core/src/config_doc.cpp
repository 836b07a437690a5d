#include "hpcml/core/config_doc.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <toml.hpp>

#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"

namespace hpcml {

namespace {

std::vector<std::string> split_key(const std::string& key) { return split(key, '.'); }

std::string join_key(const std::string& prefix, const std::string& k) {
  return prefix.empty() ? k : prefix + "." + k;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  // collapse runs of spaces
  std::string out;
  for (char c : s) {
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// First line of a toml11 error without its "[error] toml::function:" prefix.
std::string toml_reason(const std::string& what) {
  std::string first = what.substr(0, what.find('\n'));
  const std::string tag = "[error] ";
  if (first.rfind(tag, 0) == 0) first = first.substr(tag.size());
  auto colon = first.find(": ");
  if (first.rfind("toml::", 0) == 0 && colon != std::string::npos) first = first.substr(colon + 2);
  return first;
}

std::string type_name(const toml::value& v) {
  switch (v.type()) {
    case toml::value_t::boolean:
      return "a boolean";
    case toml::value_t::integer:
      return "an integer";
    case toml::value_t::floating:
      return "a float";
    case toml::value_t::string:
      return "a string";
    case toml::value_t::array:
      return "an array";
    case toml::value_t::table:
      return "a table";
    default:
      return "a date/time";
  }
}

std::string render(const toml::value& v) {
  if (v.is_table()) return "a table";
  std::ostringstream os;
  os << v;
  return printable(one_line(os.str()));
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1] ? 1 : 0)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// toml11's parser recurses once per nested array or inline table, and its
// stack runs out long before 10,000 levels; a dotted key of 300,000 parts takes
// it minutes. Measure both before parsing.
constexpr int kMaxNesting = 64;

struct Nesting {
  int depth = 0;       // deepest nesting of [ ] and { } outside strings and comments
  int depth_line = 1;  // where the nesting first went past kMaxNesting
  int key_parts = 0;   // most parts of one dotted key (a.b.c: 3)
  int key_line = 1;    // where a key first had more than kMaxNesting parts
};

Nesting measure_nesting(std::string_view text) {
  Nesting r;
  int depth = 0, line = 1, parts = 1;
  bool in_key = true;  // before '=' on a line, or after '{' or ','
  auto new_key = [&] {
    in_key = true;
    parts = 1;
  };
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      ++i;
      new_key();
    } else if (c == '#') {
      while (i < n && text[i] != '\n') ++i;
    } else if ((c == '"' || c == '\'') && text.substr(i, 3) == std::string(3, c)) {
      const std::string delim(3, c);  // multi-line string
      i += 3;
      while (i < n && text.substr(i, 3) != delim) {
        if (text[i] == '\n') ++line;
        if (c == '"' && text[i] == '\\') ++i;
        ++i;
      }
      i += 3;
    } else if (c == '"' || c == '\'') {
      ++i;
      while (i < n && text[i] != c && text[i] != '\n') {
        if (c == '"' && text[i] == '\\') ++i;
        ++i;
      }
      ++i;
    } else {
      if (c == '[' || c == '{') {
        if (++depth > r.depth) {
          r.depth = depth;
          if (depth == kMaxNesting + 1) r.depth_line = line;
        }
        if (c == '{') new_key();
      } else if ((c == ']' || c == '}') && depth > 0) {
        --depth;
      } else if (c == ',') {
        new_key();
      } else if (c == '=') {
        in_key = false;
      } else if (c == '.' && in_key && ++parts > r.key_parts) {
        r.key_parts = parts;
        if (parts == kMaxNesting + 1) r.key_line = line;
      }
      ++i;
    }
  }
  return r;
}

// toml11 3.7 reads past its buffer (heap-buffer-overflow, location::reset
// with an iterator of another buffer) when a literal string ('...' or
// '''...''') holds an invalid UTF-8 sequence. A TOML document must be valid
// UTF-8 anyway, so the whole text is checked before parsing: the first invalid
// byte's line and column (1-based, in bytes), or nullopt when it is valid.
struct Utf8Error {
  int line = 1;
  std::size_t column = 1;
  unsigned byte = 0;
};

std::optional<Utf8Error> find_invalid_utf8(std::string_view text) {
  int line = 1;
  std::size_t line_start = 0;
  const std::size_t n = text.size();
  auto at = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  std::size_t i = 0;
  while (i < n) {
    const unsigned c = at(i);
    std::size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c < 0x80) {
      if (c == '\n') {
        ++line;
        line_start = i + 1;
      }
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    }
    bool ok = len > 0 && i + len <= n;
    for (std::size_t k = 1; ok && k < len; ++k) {
      const unsigned b = at(i + k);
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    if (!ok) return Utf8Error{line, i - line_start + 1, c};
    i += len;
  }
  return std::nullopt;
}

std::string hex_byte(unsigned b) {
  char s[8];
  std::snprintf(s, sizeof s, "0x%02X", b & 0xFFu);
  return s;
}

// A decimal, hex, octal or binary TOML integer literal read exactly; false
// when its value does not fit in 64 bits (toml11 clamps or wraps such values).
bool integer_literal_fits(std::string token) {
  token.erase(std::remove(token.begin(), token.end(), '_'), token.end());
  bool negative = false;
  if (!token.empty() && (token[0] == '+' || token[0] == '-')) {
    negative = token[0] == '-';
    token.erase(0, 1);
  }
  int base = 10;
  if (token.size() > 2 && token[0] == '0' &&
      (token[1] == 'x' || token[1] == 'o' || token[1] == 'b')) {
    base = token[1] == 'x' ? 16 : token[1] == 'o' ? 8 : 2;
    token.erase(0, 2);
  }
  std::uint64_t magnitude = 0;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), magnitude, base);
  if (ec == std::errc::result_out_of_range) return false;
  if (ec != std::errc() || ptr != token.data() + token.size()) return true;  // not a literal
  const std::uint64_t limit = std::uint64_t{1} << 63;                        // |INT64_MIN|
  return negative ? magnitude <= limit : magnitude < limit;
}

// The first integer under `v` whose literal does not fit in 64 bits: its key and literal.
std::optional<std::pair<std::string, toml::source_location>> find_overflow(const toml::value& v,
                                                                           const std::string& key) {
  if (v.is_table()) {
    for (const auto& [k, child] : v.as_table())
      if (auto r = find_overflow(child, join_key(key, k))) return r;
  } else if (v.is_array()) {
    for (const auto& e : v.as_array())
      if (auto r = find_overflow(e, key)) return r;
  } else if (v.is_integer()) {
    const toml::source_location loc = v.location();
    const std::string& l = loc.line_str();
    if (loc.column() >= 1 && loc.column() - 1 < l.size()) {
      if (!integer_literal_fits(l.substr(loc.column() - 1, loc.region())))
        return std::make_pair(key, loc);
    }
  }
  return std::nullopt;
}

}  // namespace

struct ConfigDoc::Impl {
  std::string source;
  toml::value doc = toml::table{};
  toml::value effective = toml::table{};
  std::set<std::string> read;
  std::set<std::string> overridden;

  const toml::value* find(const std::string& key) const {
    const toml::value* cur = &doc;
    for (const auto& part : split_key(key)) {
      if (!cur->is_table()) return nullptr;
      const auto& t = cur->as_table();
      auto it = t.find(part);
      if (it == t.end()) return nullptr;
      cur = &it->second;
    }
    return cur;
  }

  // Walks/creates tables down to the parent of `key` in `root`; returns the parent table.
  toml::table* parent_table(toml::value& root, const std::string& key, std::string* leaf,
                            std::string* blocking) {
    auto parts = split_key(key);
    toml::value* cur = &root;
    std::string path;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      path = join_key(path, parts[i]);
      auto& t = cur->as_table();
      auto it = t.find(parts[i]);
      if (it == t.end()) it = t.emplace(parts[i], toml::table{}).first;
      if (!it->second.is_table()) {
        if (blocking) *blocking = path;
        return nullptr;
      }
      cur = &it->second;
    }
    *leaf = parts.back();
    return &cur->as_table();
  }

  void record(const std::string& key, const toml::value& v) {
    read.insert(key);
    std::string leaf;
    if (auto* t = parent_table(effective, key, &leaf, nullptr)) (*t)[leaf] = v;
  }

  void collect_leaves(const toml::value& v, const std::string& prefix,
                      std::vector<std::string>& out) const {
    if (v.is_table()) {
      for (const auto& [k, child] : v.as_table()) collect_leaves(child, join_key(prefix, k), out);
    } else {
      out.push_back(prefix);
    }
  }
};

ConfigDoc::ConfigDoc() : impl_(std::make_unique<Impl>()) {}
ConfigDoc::~ConfigDoc() = default;
ConfigDoc::ConfigDoc(ConfigDoc&&) noexcept = default;
ConfigDoc& ConfigDoc::operator=(ConfigDoc&&) noexcept = default;
ConfigDoc::ConfigDoc(const ConfigDoc& o) : impl_(std::make_unique<Impl>(*o.impl_)) {}
ConfigDoc& ConfigDoc::operator=(const ConfigDoc& o) {
  if (this != &o) impl_ = std::make_unique<Impl>(*o.impl_);
  return *this;
}

ConfigDoc ConfigDoc::load(const std::string& path) {
  // A directory opens as an ifstream and reads as empty text: refuse it by name
  // rather than train on built-in defaults.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    HPCML_THROW(ConfigError, path + ": is a directory, not a config file");
  std::ifstream in(path, std::ios::binary);
  if (!in) HPCML_THROW(ConfigError, path + ": cannot open config file (missing or unreadable)");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) HPCML_THROW(ConfigError, path + ": cannot read config file (read error)");
  return parse(ss.str(), path);
}

ConfigDoc ConfigDoc::parse(const std::string& text, const std::string& name) {
  ConfigDoc d;
  d.impl_->source = name;
  if (const auto bad = find_invalid_utf8(text)) {
    HPCML_THROW(ConfigError, name + ":" + std::to_string(bad->line) + ": byte " +
                                 hex_byte(bad->byte) + " at column " + std::to_string(bad->column) +
                                 " is not valid UTF-8 (a TOML file must be UTF-8)");
  }
  const Nesting nest = measure_nesting(text);
  if (nest.depth > kMaxNesting) {
    HPCML_THROW(ConfigError, name + ":" + std::to_string(nest.depth_line) +
                                 ": arrays or inline tables nested deeper than " +
                                 std::to_string(kMaxNesting) + " levels");
  }
  if (nest.key_parts > kMaxNesting) {
    HPCML_THROW(ConfigError, name + ":" + std::to_string(nest.key_line) +
                                 ": a dotted key with more than " + std::to_string(kMaxNesting) +
                                 " parts");
  }
  std::istringstream is(text);
  try {
    d.impl_->doc = toml::parse(is, name);
  } catch (const toml::syntax_error& e) {
    HPCML_THROW(ConfigError, name + ":" + std::to_string(e.location().line()) +
                                 ": TOML syntax error: " + printable(toml_reason(e.what()), 200));
  } catch (const std::exception& e) {
    HPCML_THROW(ConfigError,
                name + ": cannot parse TOML: " + printable(toml_reason(e.what()), 200));
  }
  if (auto bad = find_overflow(d.impl_->doc, "")) {
    const auto& [key, loc] = *bad;
    HPCML_THROW(ConfigError, name + ":" + std::to_string(loc.line()) + ": key '" + printable(key) +
                                 "': integer " +
                                 printable(loc.line_str().substr(loc.column() - 1, loc.region())) +
                                 " does not fit in 64 bits");
  }
  return d;
}

void ConfigDoc::set(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    HPCML_THROW(ConfigError,
                "--set " + printable(assignment) + ": expected KEY=VALUE (e.g. train.epochs=3)");
  }
  std::string key = assignment.substr(0, eq);
  std::string text = assignment.substr(eq + 1);
  for (const auto& part : split_key(key)) {
    if (part.empty())
      HPCML_THROW(ConfigError, "--set " + printable(assignment) + ": empty key component");
  }
  if (split_key(key).size() > static_cast<std::size_t>(kMaxNesting)) {
    HPCML_THROW(ConfigError, "--set " + printable(key) + ": a dotted key with more than " +
                                 std::to_string(kMaxNesting) + " parts");
  }
  if (const auto bad = find_invalid_utf8(assignment)) {
    HPCML_THROW(ConfigError, "--set " + printable(key) + ": byte " + hex_byte(bad->byte) +
                                 " at column " + std::to_string(bad->column) +
                                 " is not valid UTF-8");
  }
  const Nesting nest = measure_nesting(text);
  if (nest.depth > kMaxNesting) {
    HPCML_THROW(ConfigError, "--set " + printable(key) +
                                 ": value has arrays or inline tables nested deeper than " +
                                 std::to_string(kMaxNesting) + " levels");
  }
  if (nest.key_parts > kMaxNesting) {
    HPCML_THROW(ConfigError, "--set " + printable(key) +
                                 ": value has a dotted key with more than " +
                                 std::to_string(kMaxNesting) + " parts");
  }
  toml::value value;
  bool parsed = false;
  try {
    std::istringstream is("v = " + text);
    value = toml::parse(is, "--set").as_table().at("v");
    parsed = true;
  } catch (const std::exception&) {
    value = toml::value(text);  // bare word: a string
  }
  if (parsed) {
    if (auto bad = find_overflow(value, key)) {
      const auto& loc = bad->second;
      HPCML_THROW(ConfigError,
                  "--set " + printable(key) + ": integer " +
                      printable(loc.line_str().substr(loc.column() - 1, loc.region())) +
                      " does not fit in 64 bits");
    }
  }
  std::string leaf, blocking;
  toml::table* t = impl_->parent_table(impl_->doc, key, &leaf, &blocking);
  if (!t) {
    HPCML_THROW(ConfigError, "--set " + printable(assignment) + ": '" + printable(blocking) +
                                 "' is a value, not a table");
  }
  (*t)[leaf] = value;
  impl_->overridden.insert(key);
}

bool ConfigDoc::has(const std::string& key) const { return impl_->find(key) != nullptr; }

void ConfigDoc::fail(const std::string& key, const std::string& what) const {
  if (impl_->overridden.count(key))
    HPCML_THROW(ConfigError, "--set " + printable(key) + ": " + what);
  HPCML_THROW(ConfigError, impl_->source + ": key '" + printable(key) + "': " + what);
}

std::int64_t ConfigDoc::get_int(const std::string& key, std::int64_t def, std::int64_t min,
                                std::int64_t max) {
  const toml::value* v = impl_->find(key);
  std::int64_t x = def;
  if (v) {
    if (!v->is_integer()) fail(key, "expected an integer, got " + type_name(*v) + " " + render(*v));
    x = v->as_integer();
  }
  if (x < min || x > max) {
    std::string range = max == std::numeric_limits<std::int64_t>::max()
                            ? ">= " + std::to_string(min)
                            : "in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    fail(key, "expected an integer " + range + ", got " + std::to_string(x));
  }
  impl_->record(key, toml::value(x));
  return x;
}

std::int64_t ConfigDoc::get_int_or_auto(const std::string& key, std::int64_t def, std::int64_t min,
                                        std::int64_t max, std::int64_t auto_value) {
  const toml::value* v = impl_->find(key);
  std::int64_t x = def;
  const std::string expected = "expected an integer in [" + std::to_string(min) + ", " +
                               std::to_string(max) + "] or \"auto\"";
  if (v) {
    if (v->is_string() && v->as_string() == "auto")
      x = auto_value;
    else if (v->is_integer())
      x = v->as_integer();
    else
      fail(key, expected + ", got " + type_name(*v) + " " + render(*v));
  }
  if (x == auto_value) {
    impl_->record(key, toml::value("auto"));
    return x;
  }
  if (x < min || x > max) fail(key, expected + ", got " + std::to_string(x));
  impl_->record(key, toml::value(x));
  return x;
}

double ConfigDoc::get_double(const std::string& key, double def, double min, double max) {
  const toml::value* v = impl_->find(key);
  double x = def;
  if (v) {
    if (v->is_floating()) {
      x = v->as_floating();
    } else if (v->is_integer()) {
      x = static_cast<double>(v->as_integer());
    } else {
      fail(key, "expected a number, got " + type_name(*v) + " " + render(*v));
    }
  }
  if (!std::isfinite(x)) fail(key, "expected a finite number, got " + render(toml::value(x)));
  if (x < min || x > max) {
    std::ostringstream os;
    os << "expected a number in [" << min << ", " << max << "], got " << x;
    fail(key, os.str());
  }
  impl_->record(key, toml::value(x));
  return x;
}

bool ConfigDoc::get_bool(const std::string& key, bool def) {
  const toml::value* v = impl_->find(key);
  bool x = def;
  if (v) {
    if (!v->is_boolean())
      fail(key, "expected true or false, got " + type_name(*v) + " " + render(*v));
    x = v->as_boolean();
  }
  impl_->record(key, toml::value(x));
  return x;
}

std::string ConfigDoc::get_string(const std::string& key, const std::string& def) {
  const toml::value* v = impl_->find(key);
  std::string x = def;
  if (v) {
    if (!v->is_string()) fail(key, "expected a string, got " + type_name(*v) + " " + render(*v));
    x = v->as_string().str;
  }
  impl_->record(key, toml::value(x));
  return x;
}

std::string ConfigDoc::get_choice(const std::string& key, const std::string& def,
                                  const std::vector<std::string>& allowed) {
  std::string x = get_string(key, def);
  if (std::find(allowed.begin(), allowed.end(), x) == allowed.end()) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + ("'" + a + "'");
    fail(key, "expected one of " + list + ", got '" + printable(x) + "'");
  }
  return x;
}

std::vector<std::int64_t> ConfigDoc::get_int_list(const std::string& key,
                                                  const std::vector<std::int64_t>& def,
                                                  std::int64_t min) {
  const toml::value* v = impl_->find(key);
  std::vector<std::int64_t> x = def;
  if (v) {
    if (!v->is_array()) fail(key, "expected an array of integers, got " + type_name(*v));
    x.clear();
    for (const auto& e : v->as_array()) {
      if (!e.is_integer()) fail(key, "expected an array of integers, found " + type_name(e));
      x.push_back(e.as_integer());
    }
  }
  for (auto e : x) {
    if (e < min)
      fail(key, "expected integers >= " + std::to_string(min) + ", got " + std::to_string(e));
  }
  toml::array arr;
  for (auto e : x) arr.push_back(toml::value(e));
  impl_->record(key, toml::value(arr));
  return x;
}

std::vector<std::string> ConfigDoc::get_string_list(const std::string& key,
                                                    const std::vector<std::string>& def) {
  const toml::value* v = impl_->find(key);
  std::vector<std::string> x = def;
  if (v) {
    if (!v->is_array()) fail(key, "expected an array of strings, got " + type_name(*v));
    x.clear();
    for (const auto& e : v->as_array()) {
      if (!e.is_string()) fail(key, "expected an array of strings, found " + type_name(e));
      x.push_back(e.as_string().str);
    }
  }
  toml::array arr;
  for (const auto& e : x) arr.push_back(toml::value(e));
  impl_->record(key, toml::value(arr));
  return x;
}

std::vector<ConfigDoc> ConfigDoc::get_table_array(const std::string& key) {
  std::vector<ConfigDoc> out;
  const toml::value* v = impl_->find(key);
  if (!v) return out;
  if (!v->is_array())
    fail(key, "expected an array of tables ([[" + key + "]]), got " + type_name(*v));
  const auto& arr = v->as_array();
  for (std::size_t i = 0; i < arr.size(); ++i) {
    if (!arr[i].is_table())
      fail(key, "entry " + std::to_string(i) + " is " + type_name(arr[i]) + ", expected a table");
    ConfigDoc entry;
    entry.impl_->doc = arr[i];
    entry.impl_->source =
        (impl_->overridden.count(key) ? "--set " + printable(key) : impl_->source + ": " + key) +
        "[" + std::to_string(i) + "]";
    out.push_back(std::move(entry));
  }
  impl_->record(key, *v);
  return out;
}

std::vector<std::string> ConfigDoc::leaf_keys(const std::string& table) const {
  std::vector<std::string> out;
  const toml::value* start = table.empty() ? &impl_->doc : impl_->find(table);
  if (start) impl_->collect_leaves(*start, table, out);
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string> ConfigDoc::raw(const std::string& key) const {
  const toml::value* v = impl_->find(key);
  if (!v) return std::nullopt;
  std::ostringstream os;
  os << *v;
  return one_line(os.str());
}

void ConfigDoc::check_unknown(const std::vector<std::string>& skip_tables) const {
  for (const auto& key : leaf_keys()) {
    if (impl_->read.count(key)) continue;
    bool skipped = false;
    for (const auto& t : skip_tables) {
      if (key == t || key.rfind(t + ".", 0) == 0) skipped = true;
    }
    if (skipped) continue;
    std::string best;
    std::size_t best_d = 3;
    for (const auto& known : impl_->read) {
      std::size_t d = edit_distance(key, known);
      if (d < best_d) {
        best_d = d;
        best = known;
      }
    }
    fail(key, best.empty() ? "unknown key" : "unknown key (did you mean '" + best + "'?)");
  }
}

std::string ConfigDoc::effective_toml() const {
  std::ostringstream os;
  os << impl_->effective;
  return os.str();
}

const std::string& ConfigDoc::source() const { return impl_->source; }

}  // namespace hpcml

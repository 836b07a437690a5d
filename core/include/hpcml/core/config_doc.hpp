// A TOML configuration document with strict, typed access.
//
// - Every key read is recorded; check_unknown() then rejects keys nobody read
//   (typos are errors, not silently ignored), with a suggestion when one is close.
// - Errors name the file, the dotted key and what was expected, on one line:
//     configs/x.toml: key 'train.batch_size': expected an integer >= 1, got 0
//   Keys that came from --set say so instead of naming the file.
// - effective_toml() is the document as used: defaults of every key read filled in.
// The TOML library stays inside the .cpp: this header pulls in no parser.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hpcml {

class ConfigDoc {
 public:
  /// Parses a file. Throws ConfigError naming the file for I/O and syntax errors.
  static ConfigDoc load(const std::string& path);
  /// Parses text; `name` stands for the file in error messages.
  static ConfigDoc parse(const std::string& text, const std::string& name);

  ConfigDoc();
  ~ConfigDoc();
  ConfigDoc(ConfigDoc&&) noexcept;
  ConfigDoc& operator=(ConfigDoc&&) noexcept;
  ConfigDoc(const ConfigDoc&);
  ConfigDoc& operator=(const ConfigDoc&);

  /// Applies `--set a.b.c=value`. The value is parsed as a TOML value (42, 0.1,
  /// true, [1,2], "x"); anything that does not parse is taken as a bare string.
  /// Throws ConfigError if the assignment has no '=' or an empty key, or if a
  /// prefix of the key is a value rather than a table.
  void set(const std::string& assignment);

  bool has(const std::string& key) const;

  std::int64_t get_int(const std::string& key, std::int64_t def,
                       std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                       std::int64_t max = std::numeric_limits<std::int64_t>::max());
  double get_double(const std::string& key, double def,
                    double min = -std::numeric_limits<double>::infinity(),
                    double max = std::numeric_limits<double>::infinity());
  /// An integer in [min, max] or the string "auto" (returned as `auto_value`,
  /// which must lie outside [min, max]); absent gives `def`.
  std::int64_t get_int_or_auto(const std::string& key, std::int64_t def, std::int64_t min,
                               std::int64_t max, std::int64_t auto_value);
  bool get_bool(const std::string& key, bool def);
  std::string get_string(const std::string& key, const std::string& def);
  /// A string that must be one of `allowed`.
  std::string get_choice(const std::string& key, const std::string& def,
                         const std::vector<std::string>& allowed);
  std::vector<std::int64_t> get_int_list(
      const std::string& key, const std::vector<std::int64_t>& def,
      std::int64_t min = std::numeric_limits<std::int64_t>::min());
  std::vector<std::string> get_string_list(const std::string& key,
                                           const std::vector<std::string>& def);
  /// An array of tables (`[[key]]` or `key = [{...}, ...]`): one document per
  /// entry, read with the same typed getters, whose errors name the entry
  /// ("file: key[2]: key 'filters': ..."); call check_unknown() on each.
  /// Absent gives an empty list.
  std::vector<ConfigDoc> get_table_array(const std::string& key);
  /// Dotted keys of the leaves (non-table values) under `table` ("" = whole document), sorted.
  std::vector<std::string> leaf_keys(const std::string& table = "") const;
  /// The raw value at a key rendered as TOML (for sweep manifests and logs).
  std::optional<std::string> raw(const std::string& key) const;

  /// Throws ConfigError for the first key (sorted order) that was never read,
  /// unless it lies under one of `skip_tables` (tables owned by another command).
  void check_unknown(const std::vector<std::string>& skip_tables = {}) const;

  /// Builds the error message for `key` (file or --set origin) and throws it.
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

  /// The document as used, with defaults filled in, as TOML text.
  std::string effective_toml() const;
  /// File name (or the name given to parse()).
  const std::string& source() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hpcml

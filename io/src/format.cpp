#include "hpcml/io/format.hpp"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "hpcml/core/error.hpp"

namespace hpcml::io {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Validates one field of manifest.json; every error is one line that names the
// manifest path and the field.
class FieldReader {
 public:
  explicit FieldReader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    HPCML_THROW(DataError, path_ + ": field '" + field + "': " + what);
  }

  const json& get(const json& obj, const std::string& key, const std::string& field) const {
    if (!obj.is_object()) fail(field, "parent is not a JSON object");
    auto it = obj.find(key);
    if (it == obj.end()) fail(field, "missing");
    return *it;
  }

  std::string string(const json& obj, const std::string& key, const std::string& field) const {
    const json& v = get(obj, key, field);
    if (!v.is_string()) fail(field, "expected a string, got " + printable(v.dump()));
    return v.get<std::string>();
  }

  std::uint64_t unsigned_int(const json& obj, const std::string& key, const std::string& field,
                             std::uint64_t min_value = 0) const {
    return unsigned_value(get(obj, key, field), field, min_value);
  }

  std::uint64_t unsigned_value(const json& v, const std::string& field,
                               std::uint64_t min_value = 0) const {
    if (!v.is_number_integer() ||
        (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0))
      fail(field, "expected a non-negative integer, got " + printable(v.dump()));
    const auto x = v.get<std::uint64_t>();
    if (x < min_value)
      fail(field, "must be >= " + std::to_string(min_value) + ", got " + printable(v.dump()));
    return x;
  }

 private:
  std::string path_;
};

}  // namespace

std::size_t checked_mul(std::size_t a, std::size_t b, const std::string& what) {
  std::size_t r = 0;
  if (__builtin_mul_overflow(a, b, &r))
    HPCML_THROW(DataError, what + ": " + std::to_string(a) + " x " + std::to_string(b) +
                               " overflows a 64-bit size");
  return r;
}

std::string shard_file_name_problem(const std::string& file) {
  std::string why;
  if (file.empty())
    why = "is empty";
  else if (file.size() > kMaxShardFileName)
    why = "is longer than " + std::to_string(kMaxShardFileName) + " bytes";
  else if (file.find('\0') != std::string::npos)
    why = "contains a NUL byte";
  else if (std::any_of(file.begin(), file.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
    why = "contains a control character";
  else if (file.front() == '/')
    why = "is an absolute path";
  else if (file.find('/') != std::string::npos || file.find('\\') != std::string::npos)
    why = "contains a path separator (path traversal is not allowed)";
  else if (file == "." || file == "..")
    why = "names a directory";
  else if (file == kManifestName || file == std::string(kManifestName) + ".tmp")
    why = "names the manifest itself";
  if (why.empty()) return why;
  return "\"" + printable(file) + "\" " + why +
         "; it must be a plain file name inside the dataset directory";
}

bool is_shard_file_name(const std::string& file, const std::string& split) {
  // <split>-ddddd-of-ddddd.h5
  constexpr std::size_t kTail = 1 + 5 + 4 + 5 + 3;
  if (file.size() != split.size() + kTail || file.compare(0, split.size(), split) != 0)
    return false;
  const std::string_view t = std::string_view(file).substr(split.size());
  auto digits = [&](std::size_t pos) {
    return std::all_of(t.begin() + static_cast<std::ptrdiff_t>(pos),
                       t.begin() + static_cast<std::ptrdiff_t>(pos + 5),
                       [](char c) { return c >= '0' && c <= '9'; });
  };
  return t[0] == '-' && digits(1) && t.substr(6, 4) == "-of-" && digits(10) &&
         t.substr(15) == ".h5";
}

const char* layout_name(Layout layout) {
  return layout == Layout::kSingleFile ? "single-file" : "shards";
}

std::string single_file_name(const std::string& split) { return split + ".h5"; }

std::string shard_file_name(const std::string& split, std::size_t index, std::size_t count) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "-%05zu-of-%05zu.h5", index, count);
  return split + buf;
}

void check_split_name(const std::string& split) {
  bool ok = !split.empty() && split.size() <= 64 && split.front() != '.';
  for (char c : split)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-' || c == '.');
  if (!ok)
    HPCML_THROW(DataError, "split name '" + printable(split) +
                               "' is not allowed: use 1-64 characters from [A-Za-z0-9_.-], not "
                               "starting with '.'");
}

std::string checksum_string(std::uint32_t crc) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "crc32:%08x", static_cast<unsigned>(crc));
  return buf;
}

std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t bytes) {
  auto* p = static_cast<const Bytef*>(data);
  uLong c = crc;
  while (bytes > 0) {
    const uInt chunk = static_cast<uInt>(std::min<std::size_t>(bytes, 1u << 30));
    c = ::crc32(c, p, chunk);
    p += chunk;
    bytes -= chunk;
  }
  return static_cast<std::uint32_t>(c);
}

std::pair<std::size_t, std::size_t> shard_rows(std::size_t samples, std::size_t shards,
                                               std::size_t shard) {
  const std::size_t base = samples / shards, extra = samples % shards;
  const std::size_t begin = shard * base + std::min(shard, extra);
  return {begin, begin + base + (shard < extra ? 1 : 0)};
}

Manifest read_manifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / kManifestName).string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) HPCML_THROW(DataError, dir + ": no such dataset directory");
  if (!fs::is_regular_file(path, ec))
    HPCML_THROW(DataError,
                path + ": missing (not a shard directory? create it with 'hpcml shard')");
  // A manifest of 99999 shards per split is a few MB; refuse to parse a huge file.
  constexpr std::uintmax_t kMaxManifestBytes = std::uintmax_t{256} << 20;
  if (const auto size = fs::file_size(path, ec); !ec && size > kMaxManifestBytes)
    HPCML_THROW(DataError, path + ": is " + std::to_string(size) +
                               " bytes, more than a manifest can be (256 MiB)");
  std::ifstream in(path);
  if (!in) HPCML_THROW(DataError, path + ": cannot open");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    std::string msg = e.what();
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    HPCML_THROW(DataError, path + ": not valid JSON: " + printable(msg, 200));
  }
  FieldReader r(path);
  if (!j.is_object()) HPCML_THROW(DataError, path + ": top level is not a JSON object");

  const std::string format = r.string(j, "format", "format");
  if (format != kShardFormat)
    r.fail("format",
           "expected \"" + std::string(kShardFormat) + "\", got \"" + printable(format) + "\"");
  const json& version = r.get(j, "format_version", "format_version");
  if (!version.is_number_integer())
    r.fail("format_version", "expected an integer, got " + printable(version.dump()));
  Manifest m;
  const auto v = version.get<std::int64_t>();
  if (v > kShardFormatVersion)
    r.fail("format_version", "is " + std::to_string(v) +
                                 ": written by a newer hpcml; this build reads version " +
                                 std::to_string(kShardFormatVersion));
  if (v != kShardFormatVersion)
    r.fail("format_version",
           "is " + std::to_string(v) + ", expected " + std::to_string(kShardFormatVersion));
  m.format_version = static_cast<int>(v);
  m.dataset = r.string(j, "dataset", "dataset");
  if (m.dataset.empty()) r.fail("dataset", "must not be empty");
  m.features = r.unsigned_int(j, "features", "features", 1);
  if (m.features > kMaxFeatures)
    r.fail("features", "is " + std::to_string(m.features) + ", more than the " +
                           std::to_string(kMaxFeatures) + " per sample hpcml supports");
  const json& shape = r.get(j, "feature_shape", "feature_shape");
  if (!shape.is_array() || shape.empty())
    r.fail("feature_shape",
           "expected a non-empty array of positive integers, got " + printable(shape.dump()));
  if (shape.size() > 32)
    r.fail("feature_shape", "has " + std::to_string(shape.size()) + " dimensions (at most 32)");
  std::size_t prod = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const std::string f = "feature_shape[" + std::to_string(i) + "]";
    m.feature_shape.push_back(r.unsigned_value(shape[i], f, 1));
    if (__builtin_mul_overflow(prod, m.feature_shape.back(), &prod))
      r.fail("feature_shape", "multiplies out to more than 2^64");
  }
  if (prod != m.features)
    r.fail("feature_shape", printable(shape.dump()) + " multiplies out to " + std::to_string(prod) +
                                " but 'features' is " + std::to_string(m.features));
  const auto classes = r.unsigned_int(j, "classes", "classes", 1);
  if (classes > static_cast<std::uint64_t>(kMaxClasses))
    r.fail("classes", "is " + std::to_string(classes) + ", more than the " +
                          std::to_string(kMaxClasses) + " hpcml supports");
  m.classes = static_cast<int>(classes);
  if (auto d = r.string(j, "feature_dtype", "feature_dtype"); d != "float32")
    r.fail("feature_dtype", "expected \"float32\", got \"" + printable(d) + "\"");
  if (auto d = r.string(j, "label_dtype", "label_dtype"); d != "int32")
    r.fail("label_dtype", "expected \"int32\", got \"" + printable(d) + "\"");

  const json& splits = r.get(j, "splits", "splits");
  if (!splits.is_object())
    r.fail("splits", "expected an object of splits, got " + printable(splits.dump()));
  const std::uint64_t row_bytes = 4 * m.features + 4;
  std::set<std::string> files;  // every shard file of every split, to refuse duplicates
  for (const auto& [name, sj] : splits.items()) {
    const std::string sf = "splits." + printable(name);
    try {
      check_split_name(name);
    } catch (const DataError& e) {
      r.fail(sf, e.what());
    }
    SplitInfo s;
    s.samples = r.unsigned_int(sj, "samples", sf + ".samples", 1);
    if (sj.is_object() && sj.contains("layout")) {
      const std::string layout = r.string(sj, "layout", sf + ".layout");
      if (layout == "single-file")
        s.layout = Layout::kSingleFile;
      else if (layout != "shards")
        r.fail(sf + ".layout",
               "expected \"shards\" or \"single-file\", got \"" + printable(layout) + "\"");
    }
    const json& shards = r.get(sj, "shards", sf + ".shards");
    if (!shards.is_array() || shards.empty())
      r.fail(sf + ".shards", "expected a non-empty array of shards");
    if (s.layout == Layout::kSingleFile && shards.size() != 1)
      r.fail(sf + ".shards",
             "a single-file split lists exactly one file, got " + std::to_string(shards.size()));
    std::size_t next_first = 0;
    for (std::size_t i = 0; i < shards.size(); ++i) {
      const std::string f = sf + ".shards[" + std::to_string(i) + "]";
      const json& sh = shards[i];
      if (!sh.is_object()) r.fail(f, "expected an object, got " + printable(sh.dump()));
      ShardInfo info;
      info.file = r.string(sh, "file", f + ".file");
      if (const std::string why = shard_file_name_problem(info.file); !why.empty())
        r.fail(f + ".file", why);
      if (!files.insert(info.file).second)
        r.fail(f + ".file", "\"" + printable(info.file) + "\" is listed more than once");
      info.samples = r.unsigned_int(sh, "samples", f + ".samples", 1);
      info.first_index = r.unsigned_int(sh, "first_index", f + ".first_index");
      if (info.samples > (std::uint64_t{1} << 62) / row_bytes)
        r.fail(f + ".samples", "is " + std::to_string(info.samples) + ": that many rows of " +
                                   std::to_string(m.features) + " features do not fit in a file");
      if (info.first_index != next_first)
        r.fail(f + ".first_index", "is " + std::to_string(info.first_index) + ", expected " +
                                       std::to_string(next_first) +
                                       " (shards must be contiguous and in order)");
      next_first += info.samples;
      if (next_first > (std::uint64_t{1} << 62))
        r.fail(f + ".samples", "the split's shards hold more than 2^62 samples");
      const std::string cs = r.string(sh, "checksum", f + ".checksum");
      bool ok = cs.size() == 14 && cs.rfind("crc32:", 0) == 0;
      for (std::size_t k = 6; ok && k < cs.size(); ++k)
        ok = std::isxdigit(static_cast<unsigned char>(cs[k]));
      if (!ok)
        r.fail(f + ".checksum", "expected \"crc32:<8 hex digits>\", got \"" + printable(cs) + "\"");
      info.crc32 = static_cast<std::uint32_t>(std::stoul(cs.substr(6), nullptr, 16));
      info.bytes = r.unsigned_int(sh, "bytes", f + ".bytes");
      if (info.bytes != info.samples * row_bytes)
        r.fail(f + ".bytes", "is " + std::to_string(info.bytes) + ", expected " +
                                 std::to_string(info.samples * row_bytes) + " for " +
                                 std::to_string(info.samples) + " samples of " +
                                 std::to_string(m.features) + " float32 features + int32 label");
      s.shards.push_back(std::move(info));
    }
    if (next_first != s.samples)
      r.fail(sf + ".samples", "is " + std::to_string(s.samples) + " but its shards hold " +
                                  std::to_string(next_first));
    m.splits.emplace(name, std::move(s));
  }
  return m;
}

void write_manifest(const std::string& dir, const Manifest& m) {
  json j;
  j["format"] = kShardFormat;
  j["format_version"] = m.format_version;
  j["dataset"] = m.dataset;
  j["features"] = m.features;
  j["feature_shape"] = m.feature_shape;
  j["classes"] = m.classes;
  j["feature_dtype"] = "float32";
  j["label_dtype"] = "int32";
  json splits = json::object();
  for (const auto& [name, s] : m.splits) {
    json shards = json::array();
    for (const auto& sh : s.shards)
      shards.push_back({{"file", sh.file},
                        {"samples", sh.samples},
                        {"first_index", sh.first_index},
                        {"checksum", checksum_string(sh.crc32)},
                        {"bytes", sh.bytes}});
    splits[name] = {{"samples", s.samples}, {"shards", std::move(shards)}};
    if (s.layout == Layout::kSingleFile) splits[name]["layout"] = layout_name(s.layout);
  }
  j["splits"] = std::move(splits);
  const fs::path final_path = fs::path(dir) / kManifestName;
  const fs::path tmp = fs::path(dir) / (std::string(kManifestName) + ".tmp");
  {
    std::ofstream out(tmp);
    if (!out) HPCML_THROW(DataError, tmp.string() + ": cannot create");
    out << j.dump(2) << '\n';
    out.flush();
    if (!out) HPCML_THROW(DataError, tmp.string() + ": write failed (disk full?)");
  }
  std::error_code ec;
  fs::rename(tmp, final_path, ec);
  if (ec)
    HPCML_THROW(DataError, final_path.string() + ": cannot rename from temp file: " + ec.message());
}

}  // namespace hpcml::io

#include "hpcml/io/inputs.hpp"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <numeric>
#include <sstream>

#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/io/format.hpp"

namespace hpcml::io {

static_assert(std::endian::native == std::endian::little,
              "hpcml's readers and shard format assume a little-endian host");

namespace {

std::string shape_string(const std::vector<std::size_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + ")";
}

std::size_t product(const std::vector<std::size_t>& v) {
  return std::accumulate(v.begin(), v.end(), std::size_t{1}, std::multiplies<>());
}

// The size of `path`, which must be a regular file.
std::uintmax_t require_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (std::filesystem::is_directory(status))
    HPCML_THROW(DataError, path + ": is a directory, expected a file");
  if (!std::filesystem::is_regular_file(status)) HPCML_THROW(DataError, path + ": no such file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) HPCML_THROW(DataError, path + ": cannot read its size: " + ec.message());
  return size;
}

// Product of `dims`, or a DataError naming the file when it overflows.
std::size_t checked_product(const std::vector<std::size_t>& dims, const std::string& path,
                            const std::string& what) {
  std::size_t p = 1;
  for (std::size_t d : dims)
    if (__builtin_mul_overflow(p, d, &p))
      HPCML_THROW(DataError, path + ": " + what + " " + shape_string(dims) +
                                 " multiplies out to more than 2^64 elements");
  return p;
}

std::int32_t checked_label(long long value, std::size_t sample, const std::string& path) {
  if (value < std::numeric_limits<std::int32_t>::min() ||
      value > std::numeric_limits<std::int32_t>::max())
    HPCML_THROW(DataError, path + ": label " + std::to_string(value) + " of sample " +
                               std::to_string(sample) + " does not fit in int32");
  return static_cast<std::int32_t>(value);
}

// ---- IDX --------------------------------------------------------------------

struct GzCloser {
  void operator()(gzFile f) const noexcept { gzclose(f); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

void gz_read_exact(gzFile f, void* dst, std::size_t n, const std::string& path, const char* what) {
  auto* p = static_cast<unsigned char*>(dst);
  while (n > 0) {
    const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n, 1u << 30));
    const int got = gzread(f, p, chunk);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      HPCML_THROW(DataError, path + ": cannot read " + what + ": " + (msg ? msg : "zlib error"));
    }
    if (got == 0)
      HPCML_THROW(DataError, path + ": file ends early while reading " + what + " (truncated?)");
    p += got;
    n -= static_cast<std::size_t>(got);
  }
}

struct IdxArray {
  std::vector<std::size_t> dims;
  std::vector<unsigned char> data;
};

IdxArray read_idx_ubyte(const std::string& path) {
  const std::uintmax_t file_bytes = require_file(path);
  bool gzipped = false;
  {
    unsigned char head[2] = {0, 0};
    std::ifstream probe(path, std::ios::binary);
    probe.read(reinterpret_cast<char*>(head), 2);
    gzipped = probe.gcount() == 2 && head[0] == 0x1f && head[1] == 0x8b;
  }
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f) HPCML_THROW(DataError, path + ": cannot open: " + std::strerror(errno));
  gzbuffer(f.get(), 1 << 20);
  unsigned char magic[4];
  gz_read_exact(f.get(), magic, 4, path, "the IDX magic number");
  if (magic[0] != 0 || magic[1] != 0)
    HPCML_THROW(DataError, path + ": not an IDX file (magic number does not start with 0x0000)");
  if (magic[2] != 0x08) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02X", magic[2]);
    HPCML_THROW(DataError, path + ": IDX element type " + buf +
                               " is not supported (only unsigned byte, 0x08)");
  }
  const int ndims = magic[3];
  if (ndims < 1) HPCML_THROW(DataError, path + ": IDX header has 0 dimensions");
  IdxArray a;
  for (int d = 0; d < ndims; ++d) {
    unsigned char b[4];
    gz_read_exact(f.get(), b, 4, path, "the IDX dimensions");
    const std::uint32_t v = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                            (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
    a.dims.push_back(v);
  }
  for (std::size_t d = 0; d < a.dims.size(); ++d)
    if (a.dims[d] == 0)
      HPCML_THROW(DataError, path + ": IDX dimension " + std::to_string(d) + " of shape " +
                                 shape_string(a.dims) + " is 0 (no data)");
  const std::size_t total = checked_product(a.dims, path, "IDX shape");
  // Check the declared size against the file before allocating: a plain file
  // must hold the bytes; deflate cannot compress better than 1032:1.
  const std::uintmax_t header = 4 + 4 * static_cast<std::uintmax_t>(ndims);
  const std::uintmax_t room =
      gzipped ? (file_bytes > (std::numeric_limits<std::uintmax_t>::max() / 1032)
                     ? std::numeric_limits<std::uintmax_t>::max()
                     : file_bytes * 1032)
              : (file_bytes > header ? file_bytes - header : 0);
  if (total > room)
    HPCML_THROW(DataError, path + ": IDX header declares shape " + shape_string(a.dims) + " = " +
                               std::to_string(total) + " bytes, but the " +
                               (gzipped ? "compressed " : "") + "file holds only " +
                               std::to_string(file_bytes) + " bytes (truncated or corrupt)");
  // Grow the buffer as data arrives (64 MiB at a time), so that a small gzip
  // file cannot make us allocate its whole declared size up front.
  constexpr std::size_t kChunk = std::size_t{64} << 20;
  while (a.data.size() < total) {
    const std::size_t have = a.data.size(), n = std::min(kChunk, total - have);
    a.data.resize(have + n);
    gz_read_exact(f.get(), a.data.data() + have, n, path, "the IDX data");
  }
  unsigned char extra;
  if (gzread(f.get(), &extra, 1) > 0)
    HPCML_THROW(DataError,
                path + ": unexpected bytes after the IDX data of shape " + shape_string(a.dims));
  return a;
}

// ---- npy --------------------------------------------------------------------

struct NpyArray {
  std::string descr;
  std::vector<std::size_t> shape;
  std::vector<char> data;
};

std::size_t npy_item_size(const std::string& descr) {
  if (descr == "<f4" || descr == "<i4" || descr == "<u4") return 4;
  if (descr == "<f8" || descr == "<i8") return 8;
  if (descr == "<i2" || descr == "<u2") return 2;
  if (descr == "|u1" || descr == "|i1" || descr == "|b1") return 1;
  return 0;
}

// Finds the value text after 'key': in a numpy header dict literal.
std::string npy_field(const std::string& header, const std::string& key, const std::string& path) {
  const std::string quoted[] = {"'" + key + "'", "\"" + key + "\""};
  std::size_t pos = std::string::npos;
  for (const auto& q : quoted) {
    pos = header.find(q);
    if (pos != std::string::npos) {
      pos += q.size();
      break;
    }
  }
  if (pos == std::string::npos)
    HPCML_THROW(DataError, path + ": npy header has no '" + key + "' field");
  pos = header.find(':', pos);
  if (pos == std::string::npos)
    HPCML_THROW(DataError, path + ": malformed npy header near '" + key + "'");
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  std::size_t end;
  if (header[pos] == '(') {
    end = header.find(')', pos);
    if (end == std::string::npos) HPCML_THROW(DataError, path + ": malformed npy shape");
    ++end;
  } else if (header[pos] == '\'' || header[pos] == '"') {
    end = header.find(header[pos], pos + 1);
    if (end == std::string::npos) HPCML_THROW(DataError, path + ": malformed npy header");
    ++end;
  } else {
    end = header.find_first_of(",}", pos);
    if (end == std::string::npos) HPCML_THROW(DataError, path + ": malformed npy header");
  }
  return header.substr(pos, end - pos);
}

NpyArray read_npy_file(const std::string& path) {
  const std::uintmax_t file_bytes = require_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) HPCML_THROW(DataError, path + ": cannot open: " + std::strerror(errno));
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    HPCML_THROW(DataError, path + ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(magic[6]);
  std::size_t header_len = 0;
  if (major == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2))
      HPCML_THROW(DataError, path + ": truncated npy header");
    header_len = b[0] | (std::size_t{b[1]} << 8);
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4))
      HPCML_THROW(DataError, path + ": truncated npy header");
    header_len =
        b[0] | (std::size_t{b[1]} << 8) | (std::size_t{b[2]} << 16) | (std::size_t{b[3]} << 24);
  } else {
    HPCML_THROW(DataError, path + ": npy format version " + std::to_string(major) +
                               " is not supported (1, 2 or 3)");
  }
  const std::uintmax_t preamble = major == 1 ? 10 : 12;
  if (header_len > file_bytes - std::min(file_bytes, preamble))
    HPCML_THROW(DataError, path + ": npy header length " + std::to_string(header_len) +
                               " is larger than the file (" + std::to_string(file_bytes) +
                               " bytes): truncated or corrupt");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(header_len)))
    HPCML_THROW(DataError, path + ": truncated npy header");

  NpyArray a;
  std::string descr = npy_field(header, "descr", path);
  if (descr.size() < 2 || (descr.front() != '\'' && descr.front() != '"'))
    HPCML_THROW(DataError, path + ": npy 'descr' " + printable(descr) +
                               " is not a simple dtype (structured arrays are not supported)");
  a.descr = descr.substr(1, descr.size() - 2);
  // numpy writes single-byte types with '|'; accept '<' too.
  if (a.descr.size() == 3 && a.descr[0] == '<' && a.descr[2] == '1') a.descr[0] = '|';
  if (npy_item_size(a.descr) == 0)
    HPCML_THROW(DataError, path + ": npy dtype '" + printable(a.descr) +
                               "' is not supported (little-endian '<f4', '<f8', '|u1', '|i1', "
                               "'<i2', '<u2', '<i4', '<u4', '<i8')");
  const std::string fortran = npy_field(header, "fortran_order", path);
  if (fortran.rfind("True", 0) == 0)
    HPCML_THROW(DataError, path +
                               ": npy array is in Fortran order; save it in C order "
                               "(numpy.ascontiguousarray) first");
  if (fortran.rfind("False", 0) != 0)
    HPCML_THROW(DataError, path + ": npy 'fortran_order' is neither True nor False");
  const std::string shape = npy_field(header, "shape", path);
  if (shape.empty() || shape.front() != '(')
    HPCML_THROW(DataError, path + ": malformed npy 'shape'");
  std::size_t pos = 1;
  while (pos < shape.size()) {
    while (pos < shape.size() && (shape[pos] == ' ' || shape[pos] == ',')) ++pos;
    if (pos >= shape.size() || shape[pos] == ')') break;
    std::size_t value = 0;
    auto [ptr, ec] = std::from_chars(shape.data() + pos, shape.data() + shape.size(), value);
    if (ec != std::errc())
      HPCML_THROW(DataError, path + ": malformed npy 'shape' " + printable(shape));
    a.shape.push_back(value);
    pos = static_cast<std::size_t>(ptr - shape.data());
    while (pos < shape.size() && shape[pos] == 'L') ++pos;
  }
  if (a.shape.empty())
    HPCML_THROW(DataError, path + ": npy array is a scalar; expected one row per sample");
  if (a.shape.size() > 32)
    HPCML_THROW(DataError, path + ": npy shape has " + std::to_string(a.shape.size()) +
                               " dimensions (at most 32)");
  if (a.shape[0] == 0)
    HPCML_THROW(DataError,
                path + ": npy array of shape " + shape_string(a.shape) + " contains no samples");
  for (std::size_t d = 1; d < a.shape.size(); ++d)
    if (a.shape[d] == 0)
      HPCML_THROW(DataError, path + ": npy array of shape " + shape_string(a.shape) +
                                 " has zero-width samples (dimension " + std::to_string(d) +
                                 " is 0)");
  const std::size_t bytes =
      checked_mul(checked_product(a.shape, path, "npy shape"), npy_item_size(a.descr), path);
  const std::uintmax_t data_bytes = file_bytes - std::min(file_bytes, preamble + header_len);
  if (bytes > data_bytes)
    HPCML_THROW(DataError, path + ": file ends early: shape " + shape_string(a.shape) + " of '" +
                               a.descr + "' needs " + std::to_string(bytes) +
                               " data bytes, the file holds " + std::to_string(data_bytes) +
                               " (truncated or corrupt header?)");
  a.data.resize(bytes);
  if (!in.read(a.data.data(), static_cast<std::streamsize>(bytes)))
    HPCML_THROW(DataError, path + ": file ends early: shape " + shape_string(a.shape) + " of '" +
                               a.descr + "' needs " + std::to_string(bytes) +
                               " data bytes (truncated?)");
  return a;
}

template <typename T>
T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Element i of an npy array as double (exact for every supported type but i8
// values beyond 2^53, which cannot be sensible features anyway).
double npy_value(const NpyArray& a, std::size_t i) {
  const char* p = a.data.data();
  const std::string& d = a.descr;
  if (d == "<f4") return load<float>(p + 4 * i);
  if (d == "<f8") return load<double>(p + 8 * i);
  if (d == "|u1" || d == "|b1") return load<std::uint8_t>(p + i);
  if (d == "|i1") return load<std::int8_t>(p + i);
  if (d == "<i2") return load<std::int16_t>(p + 2 * i);
  if (d == "<u2") return load<std::uint16_t>(p + 2 * i);
  if (d == "<i4") return load<std::int32_t>(p + 4 * i);
  if (d == "<u4") return load<std::uint32_t>(p + 4 * i);
  return static_cast<double>(load<std::int64_t>(p + 8 * i));
}

long long npy_integer(const NpyArray& a, std::size_t i) {
  if (a.descr == "<i8") return load<std::int64_t>(a.data.data() + 8 * i);
  return static_cast<long long>(npy_value(a, i));
}

// ---- CSV --------------------------------------------------------------------

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = line.find(',', start);
    std::string_view f =
        line.substr(start, comma == std::string_view::npos ? line.npos : comma - start);
    while (!f.empty() && (f.front() == ' ' || f.front() == '\t')) f.remove_prefix(1);
    while (!f.empty() && (f.back() == ' ' || f.back() == '\t')) f.remove_suffix(1);
    out.push_back(f);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

bool parse_float(std::string_view f, float& value) {
  if (!f.empty() && f.front() == '+') f.remove_prefix(1);
  if (f.empty()) return false;
  auto [ptr, ec] = std::from_chars(f.data(), f.data() + f.size(), value);
  // out-of-range gives ec == result_out_of_range; report it as non-finite later.
  if (ec == std::errc::result_out_of_range) {
    value = std::numeric_limits<float>::infinity();
    return ptr == f.data() + f.size();
  }
  return ec == std::errc() && ptr == f.data() + f.size();
}

bool parse_label(std::string_view f, long long& value) {
  if (!f.empty() && f.front() == '+') f.remove_prefix(1);
  if (f.empty()) return false;
  auto [ptr, ec] = std::from_chars(f.data(), f.data() + f.size(), value);
  if (ec == std::errc() && ptr == f.data() + f.size()) return true;
  // Labels written as floats ("3.0") are accepted when integral.
  double d = 0;
  auto [ptr2, ec2] = std::from_chars(f.data(), f.data() + f.size(), d);
  if (ec2 != std::errc() || ptr2 != f.data() + f.size() || !std::isfinite(d) ||
      d != std::floor(d) || std::fabs(d) > 9.0e18)
    return false;
  value = static_cast<long long>(d);
  return true;
}

}  // namespace

// ---- public -----------------------------------------------------------------

void validate(const LabeledData& data, int classes) {
  const std::string& xs = data.features_source;
  const std::string& ys = data.labels_source;
  if (classes < 1)
    HPCML_THROW(DataError, ys + ": class count must be >= 1, got " + std::to_string(classes));
  if (data.x.size() != data.samples * data.features)
    HPCML_THROW(DataError, xs + ": holds " + std::to_string(data.x.size()) +
                               " feature values, expected " + std::to_string(data.samples) + " x " +
                               std::to_string(data.features));
  if (data.y.size() != data.samples)
    HPCML_THROW(DataError, ys + ": holds " + std::to_string(data.y.size()) + " labels, expected " +
                               std::to_string(data.samples));
  for (std::size_t i = 0; i < data.x.size(); ++i) {
    if (!std::isfinite(data.x[i])) {
      const std::size_t s = i / data.features;
      HPCML_THROW(DataError, xs + ": feature " + std::to_string(i % data.features) + " of sample " +
                                 std::to_string(s) + " is " +
                                 (std::isnan(data.x[i]) ? "NaN" : "infinite") +
                                 " (first bad sample: " + std::to_string(s) + ")");
    }
  }
  for (std::size_t i = 0; i < data.y.size(); ++i) {
    if (data.y[i] < 0 || data.y[i] >= classes)
      HPCML_THROW(DataError, ys + ": label " + std::to_string(data.y[i]) + " of sample " +
                                 std::to_string(i) + " is outside [0, " + std::to_string(classes) +
                                 ") (first bad sample: " + std::to_string(i) + ")");
  }
}

LabeledData read_idx(const std::string& images_path, const std::string& labels_path) {
  IdxArray images = read_idx_ubyte(images_path);
  IdxArray labels = read_idx_ubyte(labels_path);
  if (images.dims.size() < 2)
    HPCML_THROW(DataError, images_path + ": IDX images need >= 2 dimensions, got shape " +
                               shape_string(images.dims));
  if (labels.dims.size() != 1)
    HPCML_THROW(DataError, labels_path + ": IDX labels need 1 dimension, got shape " +
                               shape_string(labels.dims));
  if (labels.dims[0] != images.dims[0])
    HPCML_THROW(DataError, labels_path + ": holds " + std::to_string(labels.dims[0]) +
                               " labels but " + images_path + " holds " +
                               std::to_string(images.dims[0]) + " images");
  LabeledData d;
  d.samples = images.dims[0];
  d.feature_shape.assign(images.dims.begin() + 1, images.dims.end());
  d.features = product(d.feature_shape);
  d.features_source = images_path;
  d.labels_source = labels_path;
  d.x.resize(images.data.size());
  for (std::size_t i = 0; i < images.data.size(); ++i)
    d.x[i] = static_cast<float>(images.data[i]) / 255.0f;
  d.y.assign(labels.data.begin(), labels.data.end());
  return d;
}

LabeledData read_npy(const std::string& features_path, const std::string& labels_path,
                     float scale) {
  NpyArray x = read_npy_file(features_path);
  NpyArray y = read_npy_file(labels_path);
  if (y.descr == "<f4" || y.descr == "<f8")
    HPCML_THROW(DataError, labels_path + ": labels have dtype '" + y.descr +
                               "'; an integer dtype is required");
  if (!(y.shape.size() == 1 || (y.shape.size() == 2 && y.shape[1] == 1)))
    HPCML_THROW(DataError, labels_path + ": labels must have shape (n,) or (n, 1), got " +
                               shape_string(y.shape));
  if (y.shape[0] != x.shape[0])
    HPCML_THROW(DataError, labels_path + ": holds " + std::to_string(y.shape[0]) + " labels but " +
                               features_path + " holds " + std::to_string(x.shape[0]) + " samples");
  LabeledData d;
  d.samples = x.shape[0];
  if (x.shape.size() == 1)
    d.feature_shape = {1};
  else
    d.feature_shape.assign(x.shape.begin() + 1, x.shape.end());
  d.features = product(d.feature_shape);
  d.features_source = features_path;
  d.labels_source = labels_path;
  const std::size_t n = d.samples * d.features;
  d.x.resize(n);
  if (x.descr == "<f4" && scale == 1.0f) {
    std::memcpy(d.x.data(), x.data.data(), n * sizeof(float));
  } else {
    for (std::size_t i = 0; i < n; ++i)
      d.x[i] = static_cast<float>(npy_value(x, i) * static_cast<double>(scale));
  }
  d.y.resize(d.samples);
  for (std::size_t i = 0; i < d.samples; ++i)
    d.y[i] = checked_label(npy_integer(y, i), i, labels_path);
  return d;
}

LabeledData read_csv(const std::string& path, const CsvOptions& options) {
  require_file(path);
  std::ifstream in(path);
  if (!in) HPCML_THROW(DataError, path + ": cannot open: " + std::strerror(errno));
  LabeledData d;
  d.features_source = d.labels_source = path;
  std::string line;
  std::size_t line_no = 0, columns = 0, label_col = 0;
  bool first = true;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const auto fields = split_fields(line);
    const std::string where = path + ":" + std::to_string(line_no);
    if (first) {
      first = false;
      columns = fields.size();
      if (columns < 2)
        HPCML_THROW(DataError, where + ": need a label column and at least one feature column");
      const long long lc = options.label_column < 0
                               ? static_cast<long long>(columns) + options.label_column
                               : options.label_column;
      if (lc < 0 || lc >= static_cast<long long>(columns))
        HPCML_THROW(DataError, where + ": label column " + std::to_string(options.label_column) +
                                   " does not exist (the file has " + std::to_string(columns) +
                                   " columns)");
      label_col = static_cast<std::size_t>(lc);
      d.features = columns - 1;
      d.feature_shape = {d.features};
      bool header = options.header == CsvOptions::Header::kYes;
      if (options.header == CsvOptions::Header::kAuto) {
        for (auto f : fields) {
          float v;
          if (!parse_float(f, v)) header = true;
        }
      }
      if (header) {
        // Auto-detection must not drop a data row in silence: say which row it took.
        if (options.header == CsvOptions::Header::kAuto)
          std::fprintf(stderr,
                       "hpcml: note: %s: first row taken as the header (a field is not a "
                       "number): '%s'; pass --no-header if it is data\n",
                       where.c_str(), printable(line).c_str());
        continue;
      }
    }
    if (fields.size() != columns)
      HPCML_THROW(DataError, where + ": has " + std::to_string(fields.size()) +
                                 " columns, expected " + std::to_string(columns));
    const std::size_t sample = d.samples;
    for (std::size_t c = 0; c < columns; ++c) {
      if (c == label_col) {
        long long label;
        if (!parse_label(fields[c], label))
          HPCML_THROW(DataError, where + ": label '" + printable(fields[c], 40) + "' (sample " +
                                     std::to_string(sample) + ") is not an integer");
        d.y.push_back(checked_label(label, sample, path));
      } else {
        float v;
        if (!parse_float(fields[c], v))
          HPCML_THROW(DataError, where + ": column " + std::to_string(c) + " value '" +
                                     printable(fields[c], 40) + "' (sample " +
                                     std::to_string(sample) + ") is not a number");
        d.x.push_back(v * options.scale);
      }
    }
    ++d.samples;
  }
  if (in.bad()) HPCML_THROW(DataError, path + ": read error");
  if (d.samples == 0) HPCML_THROW(DataError, path + ": contains no samples");
  return d;
}

LabeledData read_raw(const std::string& features_path, const std::string& labels_path,
                     std::size_t num_features, RawLabelType label_type,
                     std::vector<std::size_t> feature_shape, float scale) {
  if (num_features == 0) HPCML_THROW(DataError, features_path + ": feature count must be > 0");
  if (num_features > kMaxFeatures)
    HPCML_THROW(DataError, features_path + ": " + std::to_string(num_features) +
                               " features per sample is more than the " +
                               std::to_string(kMaxFeatures) + " hpcml supports");
  if (feature_shape.empty()) feature_shape = {num_features};
  if (checked_product(feature_shape, features_path, "feature shape") != num_features)
    HPCML_THROW(DataError, features_path + ": feature shape " + shape_string(feature_shape) +
                               " does not multiply out to " + std::to_string(num_features) +
                               " features");
  const std::size_t xbytes = require_file(features_path);
  const std::size_t ybytes = require_file(labels_path);
  const std::size_t row = num_features * sizeof(float);
  if (xbytes % row != 0)
    HPCML_THROW(DataError, features_path + ": size " + std::to_string(xbytes) +
                               " bytes is not a multiple of " + std::to_string(row) +
                               " (num_features x 4-byte float32)");
  const std::size_t label_size = label_type == RawLabelType::kUint8 ? 1 : 4;
  if (ybytes % label_size != 0)
    HPCML_THROW(DataError, labels_path + ": size " + std::to_string(ybytes) +
                               " bytes is not a multiple of 4 (int32 labels)");
  LabeledData d;
  d.samples = xbytes / row;
  if (ybytes / label_size != d.samples)
    HPCML_THROW(DataError, labels_path + ": holds " + std::to_string(ybytes / label_size) +
                               " labels but " + features_path + " holds " +
                               std::to_string(d.samples) + " samples");
  if (d.samples == 0) HPCML_THROW(DataError, features_path + ": contains no samples");
  d.features = num_features;
  d.feature_shape = std::move(feature_shape);
  d.features_source = features_path;
  d.labels_source = labels_path;
  d.x.resize(d.samples * num_features);
  {
    std::ifstream in(features_path, std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(d.x.data()), static_cast<std::streamsize>(xbytes)))
      HPCML_THROW(DataError, features_path + ": read error");
  }
  if (scale != 1.0f)
    for (float& v : d.x) v *= scale;
  std::vector<char> raw(ybytes);
  {
    std::ifstream in(labels_path, std::ios::binary);
    if (!in.read(raw.data(), static_cast<std::streamsize>(ybytes)))
      HPCML_THROW(DataError, labels_path + ": read error");
  }
  d.y.resize(d.samples);
  for (std::size_t i = 0; i < d.samples; ++i)
    d.y[i] = label_type == RawLabelType::kUint8 ? static_cast<std::uint8_t>(raw[i])
                                                : load<std::int32_t>(raw.data() + 4 * i);
  return d;
}

}  // namespace hpcml::io

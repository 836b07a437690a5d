// The hpcml shard format: a directory with manifest.json plus one HDF5 file per
// shard (see docs/data-format.md for the full description).
//
//   <dir>/manifest.json
//   <dir>/<split>-<iiiii>-of-<NNNNN>.h5   datasets /features float32 [n_i, F]
//                                         and /labels int32 [n_i], attributes on /
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "hpcml/core/strings.hpp"  // printable(): echoed input in errors

namespace hpcml::io {

inline constexpr const char* kShardFormat = "hpcml-shards";
/// Readers accept exactly this version; a manifest with a higher version was
/// written by a newer hpcml and is refused with a message saying so.
inline constexpr int kShardFormatVersion = 1;
inline constexpr const char* kManifestName = "manifest.json";

/// Largest class count a manifest or `hpcml shard --classes` may declare. Larger
/// counts are refused before anything is allocated for them (an output layer
/// of that width does not fit a data-parallel MLP, and a hostile manifest must
/// not make the trainer allocate gigabytes).
inline constexpr int kMaxClasses = 1 << 20;
/// Largest feature count per sample (one row of float32 is then at most 1 GiB).
inline constexpr std::size_t kMaxFeatures = std::size_t{1} << 28;
/// Longest shard file name a manifest may hold (the usual NAME_MAX).
inline constexpr std::size_t kMaxShardFileName = 255;

/// One shard file as recorded in the manifest.
struct ShardInfo {
  std::string file;             ///< name relative to the dataset directory
  std::size_t samples = 0;      ///< rows in this shard (> 0)
  std::size_t first_index = 0;  ///< global index of its first row
  std::uint32_t crc32 = 0;      ///< zlib crc32 of the features bytes, then the labels bytes
  std::uint64_t bytes = 0;      ///< payload bytes: samples * (4 * features + 4)
};

/// How a split is stored on disk (manifest key "layout" of the split).
/// kShards: any number of shard files, each rank preads its rows (the default;
/// a manifest without "layout" means this).
/// kSingleFile: one HDF5 file per split (one entry in "shards", any valid
/// file name, by default "<split>.h5"), read with collective MPI-IO hyperslab
/// reads when opened with a communicator (see dataset.hpp).
enum class Layout { kShards, kSingleFile };

/// "shards" / "single-file" (the manifest spelling).
const char* layout_name(Layout layout);

struct SplitInfo {
  std::size_t samples = 0;
  Layout layout = Layout::kShards;
  std::vector<ShardInfo> shards;  ///< in global index order, contiguous
};

struct Manifest {
  int format_version = kShardFormatVersion;
  std::string dataset;
  std::size_t features = 0;
  std::vector<std::size_t> feature_shape;
  int classes = 0;
  std::map<std::string, SplitInfo> splits;
};

/// Reads and validates <dir>/manifest.json: every field, types, ranges, shard
/// sizes summing to the split size and contiguous first indices. Throws
/// DataError "<path>: field '<name>': <what is wrong>" on the first problem.
Manifest read_manifest(const std::string& dir);

/// Writes <dir>/manifest.json atomically (temp file + rename).
void write_manifest(const std::string& dir, const Manifest& manifest);

/// "<split>-<iiiii>-of-<NNNNN>.h5"
std::string shard_file_name(const std::string& split, std::size_t index, std::size_t count);

/// Why `file` may not name a shard in a manifest, or "" when it may: it must be
/// a plain file name inside the dataset directory, 1-255 bytes, with no '/',
/// '\\', NUL or other control characters, not "." or "..", not the manifest
/// itself. (Path traversal such as "../x" or "/etc/passwd" is refused.)
std::string shard_file_name_problem(const std::string& file);

/// "<split>.h5": the file of a single-file split written by `hpcml shard`.
std::string single_file_name(const std::string& split);

/// True if `file` has the exact form shard_file_name(split, i, n) produces:
/// "<split>-<5 digits>-of-<5 digits>.h5". `hpcml shard` deletes an old shard
/// of a split it replaces only when its name has this form.
bool is_shard_file_name(const std::string& file, const std::string& split);

/// a * b, or throws DataError "<what>: <a> x <b> overflows" when it does not fit.
std::size_t checked_mul(std::size_t a, std::size_t b, const std::string& what);

/// Throws DataError unless `split` is a usable split name: 1-64 characters
/// from [A-Za-z0-9_.-], not starting with '.' (it becomes part of file names).
void check_split_name(const std::string& split);

/// "crc32:%08x"
std::string checksum_string(std::uint32_t crc);

/// Running zlib crc32 over any number of bytes (zlib takes 32-bit lengths).
std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t bytes);

/// Rows [begin, end) of the near-equal contiguous split of `samples` into
/// `shards` blocks (sizes differ by at most one, larger blocks first).
std::pair<std::size_t, std::size_t> shard_rows(std::size_t samples, std::size_t shards,
                                               std::size_t shard);

}  // namespace hpcml::io

// Readers for the input formats `hpcml shard` converts into HDF5 shards.
//
// Every reader returns the whole file in memory as LabeledData: float32
// features (row-major, samples x features) and int32 labels. Any problem --
// missing file, bad magic/header, truncated data, unsupported dtype, a label
// that does not fit in int32 -- throws DataError with one line naming the file.
// Semantic checks (finite features, labels in [0, classes)) are separate:
// call validate() once the class count is known.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hpcml::io {

/// Samples held in memory, ready to be written as shards.
struct LabeledData {
  std::size_t samples = 0;
  std::size_t features = 0;                ///< product of feature_shape
  std::vector<std::size_t> feature_shape;  ///< shape of one sample, e.g. {28, 28}
  std::vector<float> x;                    ///< samples * features, row-major
  std::vector<std::int32_t> y;             ///< samples
  std::string features_source;             ///< file the features came from (for messages)
  std::string labels_source;               ///< file the labels came from (for messages)
};

/// Throws DataError naming the source file and the first bad sample index if a
/// feature is NaN/Inf or a label lies outside [0, classes). Also checks that the
/// sizes of x and y agree with samples/features.
void validate(const LabeledData& data, int classes);

/// IDX files (the MNIST/Fashion-MNIST format), gzip-compressed or plain (zlib
/// detects which). Images must be unsigned-byte IDX with >= 2 dimensions (the
/// first is the sample count) and are scaled to [0, 1] by x/255; labels must be
/// unsigned-byte IDX with one dimension and the same sample count.
LabeledData read_idx(const std::string& images_path, const std::string& labels_path);

/// .npy files (format versions 1-3), C order, little-endian. Feature dtypes
/// '<f4', '<f8', '|u1', '|i1', '<i2', '<u2', '<i4', '<i8' are converted to
/// float32 and multiplied by `scale` (no implicit scaling of integer pixels).
/// Label dtypes: any of the integer ones above, shape (n,) or (n, 1).
/// Features of shape (n, d1, d2, ...) give feature_shape {d1, d2, ...};
/// shape (n,) gives feature_shape {1}.
LabeledData read_npy(const std::string& features_path, const std::string& labels_path,
                     float scale = 1.0f);

struct CsvOptions {
  /// Column holding the integer label; negative counts from the end (-1 = last).
  int label_column = 0;
  enum class Header { kAuto, kYes, kNo };
  /// kAuto: the first line is a header if any of its fields is not a number.
  Header header = Header::kAuto;
  float scale = 1.0f;
};

/// Comma-separated values: one sample per line, every column except the label
/// column is a float feature. Empty lines are skipped; every other line must
/// have the same number of columns. feature_shape is {features}.
LabeledData read_csv(const std::string& path, const CsvOptions& options = {});

enum class RawLabelType { kUint8, kInt32 };

/// Headerless little-endian binaries: float32 features (num_features per
/// sample) and labels as uint8 or int32. The sample count is implied by the
/// file sizes, which must agree. feature_shape defaults to {num_features}; a
/// given shape must multiply out to num_features.
LabeledData read_raw(const std::string& features_path, const std::string& labels_path,
                     std::size_t num_features, RawLabelType label_type,
                     std::vector<std::size_t> feature_shape = {}, float scale = 1.0f);

}  // namespace hpcml::io

// Shard writer: turns one split held in memory into HDF5 shard files plus an
// entry in the directory's manifest.json (format: format.hpp, docs/data-format.md).
#pragma once

#include <mpi.h>

#include <cstddef>
#include <functional>
#include <string>

#include "hpcml/io/format.hpp"
#include "hpcml/io/inputs.hpp"

namespace hpcml::io {

struct ShardWriteOptions {
  std::string out_dir;     ///< created if missing
  std::string dataset;     ///< dataset name recorded in the manifest
  std::string split;       ///< "train", "test", ... (see check_split_name)
  std::size_t shards = 4;  ///< ignored (1) for Layout::kSingleFile
  /// kSingleFile writes the split as one file "<split>.h5" (rank 0 writes it;
  /// the data is in memory on every rank and a local disk gains nothing from
  /// a parallel write) and marks the split "layout": "single-file".
  Layout layout = Layout::kShards;
  int classes = 0;  ///< labels must lie in [0, classes)
  /// Called with one line per written shard/manifest (on the rank that did it).
  std::function<void(const std::string&)> progress;
};

/// Serial version of the collective write_split below (no MPI calls).
SplitInfo write_split(const LabeledData& data, const ShardWriteOptions& options);

/// Collective over `comm`; every rank passes the same data and options.
/// Validates the data (finite features, labels in range) and the options
/// (1 <= shards <= samples; an existing manifest in out_dir must agree on
/// dataset name, features, feature_shape and classes), then rank r writes
/// shards r, r+R, ... (each to a temp name, renamed when complete), and rank 0
/// gathers their checksums and writes manifest.json (temp + rename), replacing
/// this split's entry and keeping the others. Afterwards, a file of the old
/// entry for this split that the new one does not use is deleted only if its
/// name has the exact shard form (is_shard_file_name), no other split lists it
/// and it is a regular file: nothing else in out_dir is ever deleted. (The same
/// holds for an old single-file "<split>.h5" when the split is rewritten.)
/// classes <= kMaxClasses; 1 <= features <= kMaxFeatures.
/// Any failure on any rank throws the same collective DataError on every rank.
/// Returns the split's manifest entry on every rank.
SplitInfo write_split(const LabeledData& data, const ShardWriteOptions& options, MPI_Comm comm);

}  // namespace hpcml::io

// Reading a split of a shard directory: the io implementation of core's
// hpcml::Dataset (core/include/hpcml/core/data.hpp).
//
// How the trainer uses it: every rank opens the split (open_dataset is not
// collective), computes its own indices with core's epoch_indices() and calls
// read(indices, local_batch). Only the rows a rank trains on are read; a
// background thread reads ahead up to prefetch_depth() batches (depth 0: read
// on the caller's thread).
//
// Checks, and where they happen:
// - open_dataset(): manifest.json fully validated; every shard opened; dataset
//   names, shapes, dtypes and shard attributes compared with the manifest.
// - every batch returned by read(): labels in [0, classes) and features finite
//   (cheap: proportional to the batch). A bad row throws DataError from next().
// - verify()/check_shard(): reads whole shards and compares the crc32 with the
//   manifest (detects silent corruption of bytes the per-batch checks accept).
//   Not done on open because it reads everything; the trainer spreads the
//   shards over ranks and agrees on failure.
//
// Single-file splits (Layout::kSingleFile, one HDF5 file per split): opened
// with open_dataset(dir, split, comm), the file is opened with HDF5's MPI-IO
// driver and every read is a collective hyperslab read (H5FD_MPIO_COLLECTIVE):
// read() and each next() of its reader, and read_rows(), must then be called by
// every rank of comm, in the same order (each rank passes its own indices; a
// rank with fewer or no rows still calls them; see CollectiveReader). Such
// reads run on the caller's thread: prefetch_depth() does not apply. Opened
// without a communicator, a single-file split is read per rank like a split of
// one shard (rows copied from its mapping, see ReadMethod).
#pragma once

#include <mpi.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hpcml/core/data.hpp"
#include "hpcml/io/format.hpp"

namespace hpcml::io {

/// Result of checking one shard fully; never throws for data problems.
struct ShardCheck {
  std::size_t shard = 0;
  std::string file;  ///< path of the shard file
  std::size_t samples = 0;
  bool ok = false;
  std::string problem;  ///< one line naming the file; empty when ok
  double seconds = 0;
};

/// How rows are read.
/// kAuto: shards whose datasets are contiguous and unfiltered (everything
/// hpcml writes) have their data bytes mapped read-only at open (mmap of the
/// byte range HDF5 reports for the datasets, H5Dget_offset) and a batch's rows
/// are memcpy'd from the mapping, one copy per run of consecutive rows: no
/// system call per row (one fstat per shard and batch checks the file still
/// holds the rows; a truncation racing with the copy is caught as SIGBUS and
/// reported as DataError). Where mmap fails, kPread; other layouts (e.g.
/// chunked shards written by other tools) fall back to kHyperslab. None of
/// these needs an HDF5 call, hence the HDF5 lock, per batch.
/// kPread: the same byte ranges, one pread() per run of consecutive rows.
/// kHyperslab: one HDF5 hyperslab selection (union of the row runs) per shard
/// and H5Dread, under the HDF5 lock.
/// On a collective single-file split kAuto and kPread both read with MPI-IO
/// directly (MPI_File_read_at_all), kHyperslab with a collective H5Dread.
enum class ReadMethod { kAuto, kPread, kHyperslab };

struct DatasetState;  // shared by the dataset and its readers

class ShardDataset final : public Dataset {
 public:
  explicit ShardDataset(std::shared_ptr<const DatasetState> state);
  ~ShardDataset() override;

  std::size_t samples() const override;
  /// True when reads are collective over the communicator given at open.
  bool collective() const;
  Layout layout() const;
  std::size_t features() const override;
  int classes() const override;
  std::string describe() const override;
  /// Starts a pass over `indices` (each in [0, samples()), any order, repeats
  /// allowed) in batches of batch_rows. Out-of-range indices or batch_rows == 0
  /// throw here. The returned reader may outlive this object.
  std::unique_ptr<BatchReader> read(std::vector<std::size_t> indices,
                                    std::size_t batch_rows) override;

  /// Batches read ahead by read()'s background thread (default 2); 0 reads
  /// each batch on the caller's thread inside next(), with no thread at all.
  void set_prefetch_depth(std::size_t depth);
  std::size_t prefetch_depth() const { return prefetch_depth_; }
  /// Applies to later read()/read_rows() calls (default kAuto).
  void set_read_method(ReadMethod method) { method_ = method; }

  /// Synchronous read of the given rows, in this order, into `out` (what the
  /// prefetch thread does per batch, including the label/finite checks).
  void read_rows(std::span<const std::size_t> indices, Batch& out) const;
  /// Every sample of the split in index order (for small data and tests).
  Batch read_all() const;

  std::size_t shard_count() const;
  /// Reads shard `shard` fully: crc32 against the manifest, finite features,
  /// labels in range. Not collective.
  ShardCheck check_shard(std::size_t shard) const;
  /// check_shard() for each id; throws the first problem as DataError.
  void verify(std::span<const std::size_t> shard_ids) const;

  const Manifest& manifest() const;
  const std::string& split() const;
  const std::string& directory() const;
  const std::vector<std::size_t>& feature_shape() const;

 private:
  std::shared_ptr<const DatasetState> state_;
  std::size_t prefetch_depth_ = 2;
  ReadMethod method_ = ReadMethod::kAuto;
};

/// Opens shard `shard` of `split` alone (not the rest of the split) and checks
/// it like open_dataset() + ShardDataset::check_shard(). Never throws for data
/// problems: they are reported in the result. For `hpcml shard verify`.
ShardCheck check_shard_file(const std::string& dir, const Manifest& manifest,
                            const std::string& split, std::size_t shard);

namespace detail {
/// Test hook: shards with more rows than this (default 4 Mi) read labels from
/// the file per batch instead of keeping them in memory. Affects later opens.
void set_label_cache_max_rows(std::size_t rows);
/// Test hook: false skips the file-size check before rows are copied from a
/// mapping, so that a shard truncated after open is caught by the SIGBUS guard
/// alone. Affects later reads.
void set_mapped_size_check(bool on);
}  // namespace detail

/// Opens split `split` of the shard directory `dir` (see the checks above).
/// Throws DataError naming the manifest field or the shard file on any problem.
std::unique_ptr<ShardDataset> open_dataset(const std::string& dir, const std::string& split);

/// As above, collective over `comm`: every rank validates the split, failures
/// are agreed on (mpi::agree), and a single-file split is then opened with the
/// MPI-IO driver for collective reads (see the top of this file). Shard splits
/// are read per rank as with the overload above. The returned dataset must be
/// destroyed on every rank of comm together (closing the file is collective).
std::unique_ptr<ShardDataset> open_dataset(const std::string& dir, const std::string& split,
                                           MPI_Comm comm);

}  // namespace hpcml::io

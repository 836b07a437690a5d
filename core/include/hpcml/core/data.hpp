// What the trainer needs from a dataset, independent of the storage format.
// io/ implements it over sharded HDF5; tests implement it over memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hpcml {

/// A mini-batch: rows samples of cols float32 features (row-major) and labels.
struct Batch {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<float> x;
  std::vector<std::int32_t> y;
};

/// Yields the batches of one pass over a list of sample indices, in order.
/// Implementations may read ahead on a background thread.
class BatchReader {
 public:
  virtual ~BatchReader() = default;
  /// Fills `batch` with the next batch; returns false when the pass is over.
  /// Throws DataError if the data turns out to be bad (I/O error, NaN, bad label).
  virtual bool next(Batch& batch) = 0;
};

/// One split (train or test) of a dataset.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::size_t samples() const = 0;
  virtual std::size_t features() const = 0;
  virtual int classes() const = 0;
  /// Short description for logs ("fashion-mnist/train: 60000 x 784 in 4 shards").
  virtual std::string describe() const = 0;
  /// Reads the samples with the given global indices, in this order, in batches of
  /// batch_rows (the last batch may be smaller). Called by one rank for its own
  /// indices only; not collective.
  virtual std::unique_ptr<BatchReader> read(std::vector<std::size_t> indices,
                                            std::size_t batch_rows) = 0;
};

/// The sample indices rank `rank` of `ranks` trains on in `epoch` (0-based):
/// a permutation of [0, samples) seeded by (seed, epoch), identical on every rank,
/// cut into steps of ranks * local_batch; rank r takes positions
/// [s*G + r*b, s*G + (r+1)*b) of step s. Samples that do not fill a whole global
/// batch are dropped for that epoch (a different set each epoch).
/// Returns steps * local_batch indices. Pure function: no I/O, no MPI.
std::vector<std::size_t> epoch_indices(std::size_t samples, std::uint64_t seed, int epoch, int rank,
                                       int ranks, std::size_t local_batch);

/// Number of optimizer steps per epoch for that layout.
std::size_t steps_per_epoch(std::size_t samples, int ranks, std::size_t local_batch);

/// Contiguous block [begin, end) of [0, samples) owned by rank for evaluation;
/// blocks differ in size by at most one and cover every sample exactly once.
std::pair<std::size_t, std::size_t> block_range(std::size_t samples, int rank, int ranks);

}  // namespace hpcml

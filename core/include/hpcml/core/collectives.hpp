// What the trainer needs from inter-rank communication. comm/ implements it
// over MPI; core itself knows nothing of MPI. Every method is collective: all
// ranks of the group call it in the same order with the same sizes.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace hpcml {

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  /// Replaces each buffer by its element-wise mean over all ranks. Buffers are
  /// given in the same order on every rank. After the call every rank holds
  /// bit-identical values.
  virtual void average(const std::vector<std::span<float>>& buffers) = 0;
  /// Element-wise sum over ranks, result on every rank.
  virtual void sum(std::span<double> values) = 0;
  /// Element-wise max over ranks, result on every rank.
  virtual void max(std::span<double> values) = 0;
  /// Copies root's values to every rank.
  virtual void broadcast(std::span<float> values, int root) = 0;
  /// Gathers equal-sized blocks to rank 0 (rank-major). Other ranks get {}.
  virtual std::vector<double> gather(std::span<const double> local) = 0;
};

}  // namespace hpcml

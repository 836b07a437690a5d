// Epoch sampling: one global permutation per epoch, identical on every rank,
// built with a portable generator (splitmix64) so the order does not depend on
// the standard library's distributions.
#include <algorithm>
#include <numeric>

#include "hpcml/core/data.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/random.hpp"

namespace hpcml {

std::size_t steps_per_epoch(std::size_t samples, int ranks, std::size_t local_batch) {
  HPCML_REQUIRE(ranks >= 1 && local_batch >= 1, Error,
                "steps_per_epoch: ranks and batch must be >= 1");
  return samples / (static_cast<std::size_t>(ranks) * local_batch);
}

std::vector<std::size_t> epoch_indices(std::size_t samples, std::uint64_t seed, int epoch, int rank,
                                       int ranks, std::size_t local_batch) {
  HPCML_REQUIRE(rank >= 0 && rank < ranks, Error, "epoch_indices: rank out of range");
  const std::size_t steps = steps_per_epoch(samples, ranks, local_batch);
  std::vector<std::size_t> perm(samples);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  SplitMix64 rng(seed ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(epoch + 1)));
  for (std::size_t i = samples; i > 1; --i) {
    std::size_t j = static_cast<std::size_t>(rng.below(i));
    std::swap(perm[i - 1], perm[j]);
  }
  const std::size_t global = static_cast<std::size_t>(ranks) * local_batch;
  std::vector<std::size_t> mine;
  mine.reserve(steps * local_batch);
  for (std::size_t s = 0; s < steps; ++s) {
    auto first = perm.begin() + static_cast<std::ptrdiff_t>(
                                    s * global + static_cast<std::size_t>(rank) * local_batch);
    mine.insert(mine.end(), first, first + static_cast<std::ptrdiff_t>(local_batch));
  }
  return mine;
}

std::pair<std::size_t, std::size_t> block_range(std::size_t samples, int rank, int ranks) {
  const std::size_t r = static_cast<std::size_t>(rank), n = static_cast<std::size_t>(ranks);
  const std::size_t base = samples / n, extra = samples % n;
  const std::size_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

}  // namespace hpcml

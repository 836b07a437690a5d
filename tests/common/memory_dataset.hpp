// Test helpers: an in-memory Dataset and a single-process Collectives, so core
// can be tested without HDF5 or MPI.
#pragma once

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "hpcml/core/collectives.hpp"
#include "hpcml/core/data.hpp"
#include "hpcml/core/random.hpp"

namespace hpcml::testing {

class MemoryDataset final : public Dataset {
 public:
  MemoryDataset(std::size_t features, int classes) : features_(features), classes_(classes) {}

  /// A learnable synthetic problem: class c has its mean at a random point.
  static std::unique_ptr<MemoryDataset> blobs(std::size_t n, std::size_t features, int classes,
                                              std::uint64_t seed, double noise = 0.7) {
    auto d = std::make_unique<MemoryDataset>(features, classes);
    SplitMix64 rng(seed);
    std::vector<double> centers(static_cast<std::size_t>(classes) * features);
    for (auto& c : centers) c = rng.normal();
    SplitMix64 rng2(seed + 1);
    for (std::size_t i = 0; i < n; ++i) {
      auto c = static_cast<std::int32_t>(rng2.below(static_cast<std::uint64_t>(classes)));
      d->y_.push_back(c);
      for (std::size_t f = 0; f < features; ++f) {
        d->x_.push_back(static_cast<float>(centers[static_cast<std::size_t>(c) * features + f] +
                                           noise * rng2.normal()));
      }
    }
    return d;
  }

  std::size_t samples() const override { return y_.size(); }
  std::size_t features() const override { return features_; }
  int classes() const override { return classes_; }
  std::string describe() const override { return "memory"; }

  std::unique_ptr<BatchReader> read(std::vector<std::size_t> indices,
                                    std::size_t batch_rows) override {
    return std::make_unique<Reader>(*this, std::move(indices), batch_rows);
  }

 private:
  class Reader final : public BatchReader {
   public:
    Reader(const MemoryDataset& d, std::vector<std::size_t> idx, std::size_t rows)
        : d_(d), idx_(std::move(idx)), rows_(rows) {}
    bool next(Batch& b) override {
      if (pos_ >= idx_.size()) return false;
      const std::size_t n = std::min(rows_, idx_.size() - pos_);
      b.rows = n;
      b.cols = d_.features_;
      b.x.resize(n * b.cols);
      b.y.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t s = idx_[pos_ + i];
        std::memcpy(&b.x[i * b.cols], &d_.x_[s * b.cols], b.cols * sizeof(float));
        b.y[i] = d_.y_[s];
      }
      pos_ += n;
      return true;
    }

   private:
    const MemoryDataset& d_;
    std::vector<std::size_t> idx_;
    std::size_t rows_, pos_ = 0;
  };

  std::size_t features_;
  int classes_;
  std::vector<float> x_;
  std::vector<std::int32_t> y_;
};

/// Collectives of a group of one: every operation is the identity.
class SelfCollectives final : public Collectives {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void average(const std::vector<std::span<float>>&) override {}
  void sum(std::span<double>) override {}
  void max(std::span<double>) override {}
  void broadcast(std::span<float>, int) override {}
  std::vector<double> gather(std::span<const double> local) override {
    return {local.begin(), local.end()};
  }
};

}  // namespace hpcml::testing

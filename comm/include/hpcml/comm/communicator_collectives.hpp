// The part of core's Collectives that the comm layer's gradient reducers
// (GradientReducer, PsWorker) take unchanged from a Communicator: rank, size
// and the plain collectives. A reducer derives from it and adds the gradient
// hooks.
#pragma once

#include <span>
#include <vector>

#include "hpcml/comm/mpi.hpp"
#include "hpcml/core/collectives.hpp"

namespace hpcml::comm {

class CommunicatorCollectives : public Collectives {
 public:
  /// `comm` must outlive this object.
  explicit CommunicatorCollectives(Communicator& comm) : comm_(comm) {}

  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  void average(const std::vector<std::span<float>>& buffers) override { comm_.average(buffers); }
  void sum(std::span<double> values) override { comm_.sum(values); }
  void max(std::span<double> values) override { comm_.max(values); }
  void broadcast(std::span<float> values, int root) override { comm_.broadcast(values, root); }
  std::vector<double> gather(std::span<const double> local) override { return comm_.gather(local); }

 protected:
  Communicator& comm_;
};

}  // namespace hpcml::comm

// The NCCL transport on a GPU (label gpu; run under mpiexec -n 1 here, more
// ranks need one GPU each). Skips, naming the reason, without NCCL or a GPU.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "hpcml/comm/nccl.hpp"
#include "hpcml/config.hpp"

#ifdef HPCML_HAS_NCCL
#include <cuda_runtime_api.h>
#endif

namespace {

using hpcml::comm::Communicator;

#define SKIP_WITHOUT_NCCL()                                             \
  do {                                                                  \
    const std::string reason_ = hpcml::comm::nccl_unavailable_reason(); \
    if (!reason_.empty()) GTEST_SKIP() << reason_;                      \
  } while (0)

#ifdef HPCML_HAS_NCCL

// Device copy of host values, freed at scope exit.
struct DeviceFloats {
  float* p = nullptr;
  std::size_t n = 0;
  explicit DeviceFloats(const std::vector<float>& host) : n(host.size()) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p), n * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, host.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceFloats() { cudaFree(p); }
  std::vector<float> host() const {
    std::vector<float> h(n);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
  std::span<float> span() const { return {p, n}; }
};

std::vector<float> values(std::size_t n, int rank) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>((i * 13 + rank * 7) % 17) / 8.0f;
  return v;
}

// The exact mean over `ranks` ranks of values(n, r) (multiples of 1/8: exact sums).
std::vector<float> mean(std::size_t n, int ranks) {
  std::vector<float> m(n, 0.0f);
  for (int r = 0; r < ranks; ++r) {
    const auto v = values(n, r);
    for (std::size_t i = 0; i < n; ++i) m[i] += v[i];
  }
  for (float& x : m) x /= static_cast<float>(ranks);
  return m;
}

#endif

TEST(Nccl, CommunicatorAveragesDeviceBuffers) {
  SKIP_WITHOUT_NCCL();
#ifdef HPCML_HAS_NCCL
  Communicator world = Communicator::world();
  Communicator local = world.split_shared();
  auto nccl = hpcml::comm::make_nccl_collectives(world, local, {.stall_timeout_s = 60});
  EXPECT_TRUE(nccl->accepts_device_memory());
  EXPECT_EQ(nccl->size(), world.size());
  DeviceFloats a(values(1000, world.rank())), b(values(37, world.rank()));
  nccl->average({a.span(), b.span()});
  EXPECT_EQ(a.host(), mean(1000, world.size()));
  EXPECT_EQ(b.host(), mean(37, world.size()));
  // Host buffers are staged through the device.
  std::vector<float> h = values(50, world.rank());
  nccl->average({std::span<float>(h)});
  EXPECT_EQ(h, mean(50, world.size()));
  // Broadcast from rank 0, on the device.
  DeviceFloats c(values(64, world.rank()));
  nccl->broadcast(c.span(), 0);
  EXPECT_EQ(c.host(), values(64, 0));
  // Host scalars go through MPI.
  std::vector<double> s{1.0, 2.0};
  nccl->sum(s);
  EXPECT_EQ(s[0], world.size());
#endif
}

TEST(Nccl, GradientBucketsAreAveragedInPlaceAndPacked) {
  SKIP_WITHOUT_NCCL();
#ifdef HPCML_HAS_NCCL
  Communicator world = Communicator::world();
  Communicator local = world.split_shared();
  // Small buckets: several per step, some packed (separate allocations).
  auto nccl =
      hpcml::comm::make_nccl_collectives(world, local, {.fusion_mb = 0.001, .stall_timeout_s = 60});
  // One flat buffer split in three tensors (in place) and a separate one (packed).
  DeviceFloats flat(values(900, world.rank()));
  DeviceFloats other(values(300, world.rank()));
  std::vector<std::span<float>> grads{flat.span().subspan(0, 100), flat.span().subspan(100, 300),
                                      flat.span().subspan(400, 500), other.span()};
  for (int step = 0; step < 2; ++step) {
    if (step == 1) {
      // Second step: fresh values, same buffers (the plan is reused).
      DeviceFloats f2(values(900, world.rank())), o2(values(300, world.rank()));
      cudaMemcpy(flat.p, f2.p, 900 * sizeof(float), cudaMemcpyDeviceToDevice);
      cudaMemcpy(other.p, o2.p, 300 * sizeof(float), cudaMemcpyDeviceToDevice);
    }
    nccl->begin_gradients(grads);
    for (std::size_t i = grads.size(); i-- > 0;) nccl->gradient_ready(i);
    nccl->finish_gradients();
    EXPECT_EQ(flat.host(), mean(900, world.size())) << "step " << step;
    EXPECT_EQ(other.host(), mean(300, world.size())) << "step " << step;
    const auto stats = nccl->last_gradient_stats();
    EXPECT_EQ(stats.raw_bytes, 1200 * sizeof(float));
  }
#endif
}

}  // namespace

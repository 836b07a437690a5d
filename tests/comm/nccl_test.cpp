// The NCCL transport on a GPU (label gpu; run under mpiexec -n 1 here, more
// ranks need one GPU each). Skips, naming the reason, without NCCL or a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "hpcml/comm/codec.hpp"
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

#ifdef HPCML_HAS_NCCL
// Values fp16 and bf16 cannot hold exactly (so a codec changes them).
std::vector<float> inexact(std::size_t n, int rank) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = (static_cast<float>(i % 97) + 1.0f / 3.0f) * (i % 2 ? -0.013f : 0.7f) +
           static_cast<float>(rank) * 0.001f;
  return v;
}

// The host codec's result for one rank: decode(encode(x)).
std::vector<float> host_codec(hpcml::comm::Codec codec, const std::vector<float>& x) {
  std::vector<std::uint8_t> wire(hpcml::comm::encoded_bytes(codec, x.size(), 0));
  hpcml::comm::encode(codec, x.data(), x.size(), 0, nullptr, wire.data());
  std::vector<float> y(x.size(), 0.0f);
  hpcml::comm::decode_add(codec, wire.data(), x.size(), 0, y.data());
  return y;
}

// One step of the bucketed path through finish_gradients_each(): records the
// groups handed on and, for each, a copy of its buffers queued on `stream`
// (the compute stream) at that moment.
struct EachStep {
  std::vector<std::vector<std::size_t>> groups;
  std::vector<std::vector<float>> snapshots;  // per buffer index, host copy of the snapshot
};

EachStep finish_each(hpcml::Collectives& c, const std::vector<std::span<float>>& grads,
                     cudaStream_t stream) {
  EachStep step;
  std::vector<float*> snap(grads.size(), nullptr);
  for (std::size_t i = 0; i < grads.size(); ++i)
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&snap[i]), grads[i].size_bytes()), cudaSuccess);
  c.begin_gradients(grads);
  for (std::size_t i = grads.size(); i-- > 0;) c.gradient_ready(i);
  c.finish_gradients_each([&](std::span<const std::size_t> group) {
    step.groups.emplace_back(group.begin(), group.end());
    for (std::size_t i : group)
      EXPECT_EQ(cudaMemcpyAsync(snap[i], grads[i].data(), grads[i].size_bytes(),
                                cudaMemcpyDeviceToDevice, stream),
                cudaSuccess);
  });
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  for (std::size_t i = 0; i < grads.size(); ++i) {
    std::vector<float> h(grads[i].size());
    EXPECT_EQ(cudaMemcpy(h.data(), snap[i], grads[i].size_bytes(), cudaMemcpyDeviceToHost),
              cudaSuccess);
    step.snapshots.push_back(std::move(h));
    cudaFree(snap[i]);
  }
  return step;
}

std::vector<float> slice(const std::vector<float>& v, std::size_t at, std::size_t n) {
  return {v.begin() + static_cast<std::ptrdiff_t>(at),
          v.begin() + static_cast<std::ptrdiff_t>(at + n)};
}
#endif

// finish_gradients_each: every buffer named once, groups in launch order (the
// last buffers first), and work queued on the compute stream in the callback
// sees the reduced values.
TEST(Nccl, FinishEachHandsOnBucketsInLaunchOrderWithTheirMeans) {
  SKIP_WITHOUT_NCCL();
#ifdef HPCML_HAS_NCCL
  Communicator world = Communicator::world();
  Communicator local = world.split_shared();
  cudaStream_t compute = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking), cudaSuccess);
  hpcml::comm::NcclOptions o;
  o.fusion_mb = 0.002;  // 2097 bytes (524 floats) per bucket: 3 buckets below
  o.stall_timeout_s = 60;
  o.compute_stream = compute;
  auto nccl = hpcml::comm::make_nccl_collectives(world, local, o);
  DeviceFloats flat(values(900, world.rank()));
  DeviceFloats other(values(300, world.rank()));
  std::vector<std::span<float>> grads{flat.span().subspan(0, 100), flat.span().subspan(100, 300),
                                      flat.span().subspan(400, 500), other.span()};
  for (int step = 0; step < 2; ++step) {
    const EachStep got = finish_each(*nccl, grads, compute);
    // Buckets are filled from the last buffer: {3}, {2}, {1, 0} (300 + 100 floats fit).
    const std::vector<std::vector<std::size_t>> want{{3}, {2}, {1, 0}};
    EXPECT_EQ(got.groups, want) << "step " << step;
    const auto m = mean(900, world.size());
    EXPECT_EQ(got.snapshots[0], slice(m, 0, 100));
    EXPECT_EQ(got.snapshots[1], slice(m, 100, 300));
    EXPECT_EQ(got.snapshots[2], slice(m, 400, 500));
    EXPECT_EQ(got.snapshots[3], mean(300, world.size()));
    EXPECT_EQ(nccl->last_gradient_stats().raw_bytes, 1200 * sizeof(float));
  }
  // Host buffers (staged): handed on after the host waited and copied them back.
  std::vector<float> h = values(70, world.rank());
  nccl->begin_gradients({std::span<float>(h)});
  int calls = 0;
  nccl->finish_gradients_each([&](std::span<const std::size_t> group) {
    ++calls;
    EXPECT_EQ(std::vector<std::size_t>(group.begin(), group.end()), std::vector<std::size_t>{0});
    EXPECT_EQ(h, mean(70, world.size()));  // already final on the host
  });
  EXPECT_EQ(calls, 1);
  nccl.reset();
  cudaStreamDestroy(compute);
#endif
}

// parallel.compression fp16 / bf16 on NCCL: on one rank the result is the host
// codec's decode(encode(x)), bit for bit, and finish_gradients_each's compute
// stream work sees the decoded values (which differ from the inputs).
TEST(Nccl, CompressedBucketsMatchTheHostCodec) {
  SKIP_WITHOUT_NCCL();
#ifdef HPCML_HAS_NCCL
  if (!hpcml::comm::nccl_device_codecs_built())
    GTEST_SKIP() << "this build has no CUDA device codecs (comm/src/nccl/device_codec.cu)";
  Communicator world = Communicator::world();
  if (world.size() != 1) GTEST_SKIP() << "compares with the host codec on one rank";
  Communicator local = world.split_shared();
  cudaStream_t compute = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking), cudaSuccess);
  for (auto codec : {hpcml::comm::Codec::kFp16, hpcml::comm::Codec::kBf16}) {
    SCOPED_TRACE(hpcml::comm::to_string(codec));
    hpcml::comm::NcclOptions o;
    o.fusion_mb = 0.001;
    o.stall_timeout_s = 60;
    o.compute_stream = compute;
    o.codec = codec;
    auto nccl = hpcml::comm::make_nccl_collectives(world, local, o);
    const auto x = inexact(1000, 0);
    DeviceFloats flat(x);
    std::vector<std::span<float>> grads{flat.span().subspan(0, 200), flat.span().subspan(200, 800)};
    const EachStep got = finish_each(*nccl, grads, compute);
    const auto want = host_codec(codec, x);
    ASSERT_NE(want, x);  // the codec does change these values
    EXPECT_EQ(got.snapshots[0], slice(want, 0, 200));
    EXPECT_EQ(got.snapshots[1], slice(want, 200, 800));
    EXPECT_EQ(flat.host(), want);
    EXPECT_EQ(nccl->last_gradient_stats().raw_bytes, 1000 * sizeof(float));
    // finish_gradients() gives the same.
    DeviceFloats again(x);
    nccl->begin_gradients({again.span()});
    nccl->gradient_ready(0);
    nccl->finish_gradients();
    EXPECT_EQ(again.host(), want);
  }
  cudaStreamDestroy(compute);
#endif
}

// The hierarchical path, degenerate on one rank (one node, its own leader):
// ncclReduce to the leader, pinned copy, MPI among the leaders, the division,
// ncclBroadcast; device and staged host buffers, both finishes.
TEST(Nccl, HierarchicalPathRunsOnOneNode) {
  SKIP_WITHOUT_NCCL();
#ifdef HPCML_HAS_NCCL
  Communicator world = Communicator::world();
  Communicator local = world.split_shared();
  hpcml::comm::NcclOptions o;
  o.fusion_mb = 0.001;
  o.stall_timeout_s = 60;
  o.force_hierarchical = true;
  o.emulate_node_size = 1;  // every rank its own node (one GPU per rank all the same)
  auto nccl = hpcml::comm::make_nccl_collectives(world, local, o);
  DeviceFloats flat(values(900, world.rank()));
  std::vector<float> h = values(50, world.rank());
  std::vector<std::span<float>> grads{flat.span().subspan(0, 400), flat.span().subspan(400, 500),
                                      std::span<float>(h)};
  nccl->begin_gradients(grads);
  for (std::size_t i = grads.size(); i-- > 0;) nccl->gradient_ready(i);
  nccl->finish_gradients();
  EXPECT_EQ(flat.host(), mean(900, world.size()));
  EXPECT_EQ(h, mean(50, world.size()));
  // Second step through finish_gradients_each.
  DeviceFloats f2(values(900, world.rank()));
  cudaMemcpy(flat.p, f2.p, 900 * sizeof(float), cudaMemcpyDeviceToDevice);
  h = values(50, world.rank());
  std::size_t named = 0;
  nccl->begin_gradients(grads);
  for (std::size_t i = grads.size(); i-- > 0;) nccl->gradient_ready(i);
  nccl->finish_gradients_each([&](std::span<const std::size_t> group) { named += group.size(); });
  EXPECT_EQ(named, grads.size());
  cudaDeviceSynchronize();
  EXPECT_EQ(flat.host(), mean(900, world.size()));
  EXPECT_EQ(h, mean(50, world.size()));
#endif
}

}  // namespace

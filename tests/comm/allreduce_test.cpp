// Every all-reduce algorithm against a reference, for awkward sizes, both
// element types, sum/average/max, in place and out of place, blocking and
// non-blocking; plus broadcast/all-gather/barrier and cross-rank bit identity.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "hpcml/comm/mpi.hpp"
#include "hpcml/comm/transport.hpp"
#include "hpcml/config.hpp"

using hpcml::comm::Algo;
using hpcml::comm::CommOptions;
using hpcml::comm::Communicator;
using hpcml::comm::ReduceOp;
using hpcml::comm::Request;

namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}
// Nodes the world spans as MPI sees them (tests/multinode runs this suite on
// 2 virtual hosts): the number of local rank 0s.
int world_nodes() {
  MPI_Comm local = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank(), MPI_INFO_NULL, &local);
  int local_rank = 0, nodes = 0;
  MPI_Comm_rank(local, &local_rank);
  MPI_Comm_free(&local);
  int leader = local_rank == 0 ? 1 : 0;
  MPI_Allreduce(&leader, &nodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  return nodes;
}

// Multiples of 1/8 in [-1, 1]: sums over <= 4 ranks are exact in float, so the
// reference is exact whatever the reduction order.
template <class T>
T value(int rank, std::size_t i) {
  return static_cast<T>(static_cast<int>((static_cast<std::size_t>(rank) * 7 + i * 13) % 17) - 8) /
         T(8);
}

template <class T>
std::vector<T> reference(std::size_t count, ReduceOp op, int ranks) {
  std::vector<T> ref(count);
  for (std::size_t i = 0; i < count; ++i) {
    T acc = value<T>(0, i);
    for (int p = 1; p < ranks; ++p) {
      const T v = value<T>(p, i);
      if (op == ReduceOp::kMax)
        acc = std::max(acc, v);
      else if (op == ReduceOp::kMin)
        acc = std::min(acc, v);
      else
        acc += v;
    }
    if (op == ReduceOp::kAverage) acc /= static_cast<T>(ranks);
    ref[i] = acc;
  }
  return ref;
}

std::vector<std::size_t> counts(int ranks) {
  // 0, 1, 7, a prime, one not divisible by the rank count, and ~2 MiB of floats.
  return {0, 1, 7, 1009, static_cast<std::size_t>(ranks) * 1000 + 1, (2u << 20) / 4 + 3};
}

Communicator dup_world(const CommOptions& options) {
  MPI_Comm c;
  MPI_Comm_dup(MPI_COMM_WORLD, &c);
  Communicator comm = Communicator::adopt(c);
  comm.set_options(options);
  return comm;
}

// Options that force many ring pieces and shared-memory segments even for
// small messages, so the pipelining paths run in every size class.
CommOptions tiny_segments() {
  CommOptions o;
  o.ring_piece_bytes = 256;
  o.shm_slot_bytes = 4096;
  return o;
}

// `max_count` keeps the many-segment variants quick on a loaded machine.
// Send and receive buffers: private vectors, or node-shared memory from
// Communicator::allocate_shared (the hierarchical algorithm's zero-copy path).
template <class T>
struct Buffers {
  std::vector<T> private_send, private_recv;
  hpcml::comm::SharedBuffer shared_send, shared_recv;
  T* send = nullptr;
  T* recv = nullptr;
  Buffers(Communicator& comm, std::size_t count, bool shared) {
    if (shared) {
      // At an offset inside the allocation, as a bucket of a gradient buffer is.
      shared_send = comm.allocate_shared((count + 5) * sizeof(T));
      shared_recv = comm.allocate_shared((count + 9) * sizeof(T));
      send = shared_send.as<T>().data() + 5;
      recv = shared_recv.as<T>().data() + 9;
    } else {
      private_send.resize(count);
      private_recv.resize(count);
      send = private_send.data();
      recv = private_recv.data();
    }
  }
};

template <class T>
void check_all(Communicator& comm, Algo algo, bool nonblocking,
               std::size_t max_count = std::size_t(-1), bool shared = false) {
  const int n = comm.size();
  for (std::size_t count : counts(n)) {
    if (count > max_count) continue;
    Buffers<T> buffers(comm, count, shared);
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAverage, ReduceOp::kMax}) {
      const auto ref = reference<T>(count, op, n);
      for (bool in_place : {false, true}) {
        T* send = buffers.send;
        T* recv = buffers.recv;
        std::fill(recv, recv + count, T(-99));
        for (std::size_t i = 0; i < count; ++i) send[i] = value<T>(comm.rank(), i);
        T* out = in_place ? send : recv;
        if (nonblocking) {
          Request r = comm.iallreduce(send, out, count, op, algo);
          r.wait();
        } else {
          comm.allreduce(send, out, count, op, algo);
        }
        std::size_t wrong = 0, first = 0;
        for (std::size_t i = 0; i < count; ++i)
          if (std::memcmp(&out[i], &ref[i], sizeof(T)) != 0 && wrong++ == 0) first = i;
        EXPECT_EQ(wrong, 0u) << "algo " << to_string(algo) << " count " << count << " op "
                             << to_string(op) << (in_place ? " in place" : " out of place")
                             << (nonblocking ? " non-blocking" : "")
                             << (shared ? " node-shared buffers" : "") << " type size " << sizeof(T)
                             << " first wrong index " << first << " on rank " << comm.rank();
        if (!in_place) {
          for (std::size_t i = 0; i < count; ++i)
            ASSERT_EQ(send[i], value<T>(comm.rank(), i)) << "send buffer modified";
        }
      }
    }
  }
}

class AllreduceAlgo : public ::testing::TestWithParam<Algo> {};

TEST_P(AllreduceAlgo, FloatMatchesReference) {
  Communicator comm = dup_world(CommOptions{});
  check_all<float>(comm, GetParam(), false);
}

TEST_P(AllreduceAlgo, DoubleMatchesReference) {
  Communicator comm = dup_world(CommOptions{});
  check_all<double>(comm, GetParam(), false);
}

TEST_P(AllreduceAlgo, TinySegmentsMatchReference) {
  Communicator comm = dup_world(tiny_segments());
  check_all<float>(comm, GetParam(), false, 100000);
}

TEST_P(AllreduceAlgo, NonBlockingMatchesReference) {
  Communicator comm = dup_world(CommOptions{});
  check_all<double>(comm, GetParam(), true);
}

TEST_P(AllreduceAlgo, SharedBuffersMatchReference) {
  Communicator comm = dup_world(CommOptions{});
  check_all<float>(comm, GetParam(), false, std::size_t(-1), true);
  check_all<double>(comm, GetParam(), true, std::size_t(-1), true);
}

TEST_P(AllreduceAlgo, ResultsBitIdenticalAcrossRanksAndRuns) {
  Communicator comm = dup_world(CommOptions{});
  std::mt19937 gen(1234u + static_cast<unsigned>(comm.rank()));
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (std::size_t count : {std::size_t{1009}, std::size_t{300001}}) {
    std::vector<float> send(count), a(count), b(count);
    for (auto& x : send) x = dist(gen) * 1e3f;
    comm.allreduce(send.data(), a.data(), count, ReduceOp::kAverage, GetParam());
    comm.allreduce(send.data(), b.data(), count, ReduceOp::kAverage, GetParam());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), count * sizeof(float)), 0) << "run-to-run";
    // Rank 0's result, broadcast, must equal every rank's bit for bit.
    std::vector<float> root = a;
    MPI_Bcast(root.data(), static_cast<int>(count), MPI_FLOAT, 0, MPI_COMM_WORLD);
    EXPECT_EQ(std::memcmp(root.data(), a.data(), count * sizeof(float)), 0)
        << "rank " << comm.rank() << " differs from rank 0, count " << count;
  }
}

TEST_P(AllreduceAlgo, SeveralRequestsInFlight) {
  Communicator comm = dup_world(tiny_segments());
  const int n = comm.size();
  std::vector<std::vector<float>> bufs;
  std::vector<Request> reqs;
  const std::size_t sizes[] = {5, 4099, 70001};
  for (std::size_t count : sizes) {
    bufs.emplace_back(count);
    for (std::size_t i = 0; i < count; ++i) bufs.back()[i] = value<float>(comm.rank(), i);
  }
  for (auto& b : bufs)
    reqs.push_back(comm.iallreduce(b.data(), b.data(), b.size(), ReduceOp::kSum, GetParam()));
  hpcml::comm::wait_all(reqs);
  for (auto& b : bufs) {
    const auto ref = reference<float>(b.size(), ReduceOp::kSum, n);
    EXPECT_EQ(std::memcmp(b.data(), ref.data(), b.size() * sizeof(float)), 0)
        << "count " << b.size();
  }
}

INSTANTIATE_TEST_SUITE_P(Algos, AllreduceAlgo,
                         ::testing::Values(Algo::kAuto, Algo::kMpi, Algo::kRing,
                                           Algo::kRecursiveDoubling, Algo::kHierarchical),
                         [](const ::testing::TestParamInfo<Algo>& p) {
                           return to_string(p.param);
                         });

// Blocks of two ranks pretend to be nodes, so the leader ring runs.
TEST(Hierarchical, EmulatedNodesMatchReference) {
  CommOptions o = tiny_segments();
  o.emulate_node_size = 2;
  Communicator comm = dup_world(o);
  check_all<float>(comm, Algo::kHierarchical, false, 100000);
  check_all<double>(comm, Algo::kHierarchical, true, 100000);
  CommOptions big;
  big.emulate_node_size = 2;
  comm.set_options(big);  // segments as in production, several MiB
  check_all<float>(comm, Algo::kHierarchical, false);
}

// The zero-copy path gives the same bits as the staged one.
TEST(Hierarchical, SharedEqualsPrivateBitForBit) {
  Communicator comm = dup_world(CommOptions{});
  std::mt19937 gen(99u + static_cast<unsigned>(comm.rank()));
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const std::size_t count = 300001;
  hpcml::comm::SharedBuffer shared = comm.allocate_shared(count * sizeof(float));
  std::vector<float> priv(count);
  for (std::size_t i = 0; i < count; ++i) priv[i] = shared.as<float>()[i] = dist(gen) * 1e3f;
  comm.allreduce(priv.data(), priv.data(), count, ReduceOp::kAverage, Algo::kHierarchical);
  float* s = shared.as<float>().data();
  comm.allreduce(s, s, count, ReduceOp::kAverage, Algo::kHierarchical);
  EXPECT_EQ(std::memcmp(priv.data(), s, count * sizeof(float)), 0);
}

// One rank passes node-shared buffers, the others private ones: every rank
// gets an error naming the mismatch, nobody hangs, and the node stays usable.
TEST(Hierarchical, MixedBufferKindsFailOnEveryRank) {
  Communicator comm = dup_world(CommOptions{});
  if (comm.size() < 2) GTEST_SKIP() << "needs two ranks";
  const std::size_t count = 5000;  // above the size where the zero-copy path starts
  hpcml::comm::SharedBuffer shared = comm.allocate_shared(count * sizeof(float));
  std::vector<float> priv(count, 1.0f);
  float* buf = comm.rank() == 0 ? shared.as<float>().data() : priv.data();
  if (world_nodes() > 1) {
    // Several nodes: the zero-copy path (one node only) is not taken, every
    // buffer is staged, so mixed kinds are fine and reduce correctly.
    for (std::size_t i = 0; i < count; ++i) buf[i] = 1.0f;
    comm.allreduce(buf, buf, count, ReduceOp::kSum, Algo::kHierarchical);
    EXPECT_EQ(buf[count - 1], static_cast<float>(comm.size()));
  } else {
    try {
      comm.allreduce(buf, buf, count, ReduceOp::kSum, Algo::kHierarchical);
      ADD_FAILURE() << "no error on rank " << comm.rank();
    } catch (const hpcml::Error& e) {
      EXPECT_NE(std::string(e.what()).find("different kinds of buffers"), std::string::npos)
          << e.what();
    }
  }
  std::vector<float> ok(count, 1.0f);
  comm.allreduce(ok.data(), ok.data(), count, ReduceOp::kSum, Algo::kHierarchical);
  EXPECT_EQ(ok[0], static_cast<float>(comm.size()));
}

TEST(Allreduce, NcclIsNotAvailable) {
  Communicator comm = dup_world(CommOptions{});
  std::vector<float> x(4, 1.0f);
  EXPECT_THROW(comm.allreduce(x.data(), x.data(), x.size(), ReduceOp::kSum, Algo::kNccl),
               hpcml::NotAvailableError);
}

#ifndef HPCML_HAS_NCCL
// The NCCL transport is not built: every way of selecting it ends in the
// registry's one refusal, with one message.
TEST(Transport, UnbuiltTransportIsRefusedWithOneMessage) {
  using hpcml::comm::Transport;
  const std::string message = "'nccl' is not available in this build (no NCCL backend yet)";
  EXPECT_TRUE(hpcml::comm::is_built(Transport::kMpi));
  EXPECT_FALSE(hpcml::comm::is_built(Transport::kNccl));
  EXPECT_NO_THROW(hpcml::comm::require_built(Transport::kMpi));
  auto refused = [&](const std::function<void()>& fn) {
    try {
      fn();
      ADD_FAILURE() << "nccl accepted";
    } catch (const hpcml::NotAvailableError& e) {
      EXPECT_EQ(std::string(e.what()), message);
    }
  };
  refused([] { hpcml::comm::require_built(Transport::kNccl); });
  Communicator comm = dup_world(CommOptions{});
  std::vector<float> x(4, 1.0f);
  std::vector<double> y(4, 1.0);
  refused([&] { comm.allreduce(x.data(), x.data(), x.size(), ReduceOp::kSum, Algo::kNccl); });
  refused([&] { comm.allreduce(y.data(), y.data(), y.size(), ReduceOp::kAverage, Algo::kNccl); });
  refused(
      [&] { (void)comm.iallreduce(x.data(), x.data(), x.size(), ReduceOp::kSum, Algo::kNccl); });
  // The spelling is known (configs stay valid); the algorithm belongs to the
  // NCCL transport and is not offered among the ones that run here.
  EXPECT_EQ(hpcml::comm::parse_algo("nccl"), Algo::kNccl);
  EXPECT_EQ(hpcml::comm::transport_of(Algo::kNccl), Transport::kNccl);
  for (Algo a : hpcml::comm::concrete_algos()) EXPECT_NE(a, Algo::kNccl);
  // The collective still works afterwards on every rank.
  comm.allreduce(x.data(), x.data(), x.size(), ReduceOp::kSum, Algo::kMpi);
  EXPECT_EQ(x[0], static_cast<float>(comm.size()));
}
#endif

TEST(Transport, AlgorithmNamesComeFromOneTable) {
  using namespace hpcml::comm;
  std::vector<std::string> names;
  for (const AlgoInfo& a : algo_table()) {
    EXPECT_EQ(parse_algo(std::string(a.name)), a.algo);
    if (!a.alias.empty()) {
      EXPECT_EQ(parse_algo(std::string(a.alias)), a.algo);
    }
    EXPECT_EQ(to_string(a.algo), a.name);
    names.emplace_back(a.name);
  }
  EXPECT_EQ(algo_names(), names);
  EXPECT_EQ(names, (std::vector<std::string>{"auto", "mpi", "ring", "recursive_doubling",
                                             "hierarchical", "nccl"}));
  EXPECT_EQ(parse_algo("automatic"), Algo::kAuto);
  EXPECT_EQ(parse_algo("rd"), Algo::kRecursiveDoubling);
  EXPECT_EQ(parse_algo("shm"), Algo::kHierarchical);
  try {
    (void)parse_algo("butterfly", "--algo");
    ADD_FAILURE() << "unknown algorithm accepted";
  } catch (const hpcml::ConfigError& e) {
    // The list names what runs in this build: nccl only with the NCCL transport.
    EXPECT_EQ(std::string(e.what()),
              std::string("--algo: unknown all-reduce algorithm 'butterfly' (expected auto, mpi, "
                          "ring, recursive_doubling, hierarchical") +
                  (is_built(Transport::kNccl) ? ", nccl)" : ")"));
  }
  // Thresholds name algorithms the automatic choice (MPI transport) can pick.
  EXPECT_THROW(Thresholds::parse("small_algo=nccl", Thresholds{}, "t"), hpcml::ConfigError);
  EXPECT_THROW(Thresholds::parse("small_algo=auto", Thresholds{}, "t"), hpcml::ConfigError);
  EXPECT_EQ(Thresholds::parse("small_algo=rd", Thresholds{}, "t").small_algo,
            Algo::kRecursiveDoubling);
}

TEST(Allreduce, PartiallyOverlappingBuffersAreRejected) {
  Communicator comm = dup_world(CommOptions{});
  std::vector<float> x(8, 1.0f);
  EXPECT_THROW(comm.allreduce(x.data(), x.data() + 1, 4, ReduceOp::kSum, Algo::kRing),
               hpcml::Error);
}

TEST(Allreduce, AutomaticFollowsThresholds) {
  CommOptions o;
  o.thresholds = hpcml::comm::Thresholds::parse(
      "small_max_bytes=1K,small_algo=recursive_doubling,single_node_algo=ring", o.thresholds,
      "test");
  Communicator comm = dup_world(o);
  const int n = comm.size();
  // One node (the usual test run): single_node_algo, unless nodes are emulated.
  // Several nodes (tests/multinode): small_algo up to small_max_bytes.
  EXPECT_EQ(comm.choose(1024),
            n > 1 && world_nodes() == 1 ? Algo::kRing : Algo::kRecursiveDoubling);
  o.emulate_node_size = 1;  // every rank its own "node": the multi-node rules apply
  Communicator multi = dup_world(o);
  if (n > 1) {
    EXPECT_EQ(multi.choose(1024), Algo::kRecursiveDoubling);
    EXPECT_EQ(multi.choose(1025), Algo::kRing);  // large_multinode_algo: one rank per node
  }
  // Nodes of 2 ranks (emulated; with 3 ranks the second node has 1): the default
  // multi-node bands, the same choice on every rank also when nodes are uneven.
  CommOptions pairs_options;
  pairs_options.emulate_node_size = 2;
  Communicator pairs = dup_world(pairs_options);
  if (n > 2) {
    const hpcml::comm::Thresholds d;
    EXPECT_EQ(pairs.choose(d.small_max_bytes), d.small_algo);
    EXPECT_EQ(pairs.choose(d.small_max_bytes + 4), Algo::kHierarchical);
    EXPECT_EQ(pairs.choose(d.medium_max_bytes), Algo::kHierarchical);
    EXPECT_EQ(pairs.choose(d.medium_max_bytes + 4), Algo::kRing);
    std::vector<float> x(d.small_max_bytes / sizeof(float) + 1, 1.0f);  // hierarchical, uneven
    pairs.allreduce(x.data(), x.data(), x.size(), ReduceOp::kSum, Algo::kAuto);
    EXPECT_EQ(x.back(), static_cast<float>(n));
  }
  EXPECT_EQ(
      hpcml::comm::Thresholds::parse("medium_max_bytes=2M,medium_algo=ring", o.thresholds, "test")
          .medium_max_bytes,
      std::size_t{2} << 20);
  EXPECT_THROW(hpcml::comm::Thresholds::parse("small_max=3", o.thresholds, "test"),
               hpcml::ConfigError);
  EXPECT_THROW(hpcml::comm::Thresholds::parse("small_algo=fast", o.thresholds, "test"),
               hpcml::ConfigError);
}

TEST(Collectives, BroadcastAllgatherBarrier) {
  Communicator comm = dup_world(CommOptions{});
  const int n = comm.size(), r = comm.rank();
  for (int root = 0; root < n; ++root) {
    std::vector<double> x(1001, r == root ? 3.5 + root : -1.0);
    comm.broadcast(x.data(), x.size(), root);
    for (double v : x) ASSERT_EQ(v, 3.5 + root);
    std::vector<float> y(17, r == root ? 1.25f : 0.0f);
    Request req = comm.ibroadcast(y.data(), y.size(), root);
    req.wait();
    for (float v : y) ASSERT_EQ(v, 1.25f);
  }
  std::vector<float> mine(3, static_cast<float>(r)), all(3 * static_cast<std::size_t>(n));
  comm.allgather(mine.data(), mine.size(), all.data());
  for (int p = 0; p < n; ++p)
    for (int k = 0; k < 3; ++k) EXPECT_EQ(all[static_cast<std::size_t>(p * 3 + k)], float(p));
  Request b = comm.ibarrier();
  while (!b.test()) {
  }
  EXPECT_FALSE(b.pending());
}

TEST(Collectives, CoreInterfaceAverageSumMax) {
  Communicator comm = dup_world(CommOptions{});
  const int n = comm.size(), r = comm.rank();
  std::vector<float> a(5, static_cast<float>(r)), b(3, 2.0f * static_cast<float>(r));
  comm.average({std::span<float>(a), std::span<float>(b)});
  const float mean = static_cast<float>(n - 1) / 2.0f;
  for (float v : a) EXPECT_FLOAT_EQ(v, mean);
  for (float v : b) EXPECT_FLOAT_EQ(v, 2.0f * mean);
  std::vector<double> s{1.0, static_cast<double>(r)};
  comm.sum(s);
  EXPECT_EQ(s[0], n);
  EXPECT_EQ(s[1], n * (n - 1) / 2.0);
  std::vector<double> m{static_cast<double>(r)};
  comm.max(m);
  EXPECT_EQ(m[0], n - 1);
}

TEST(Collectives, ProgressThreadAvailableUnderThreadMultiple) {
  Communicator comm = dup_world(CommOptions{});
  int level = 0;
  MPI_Query_thread(&level);
  EXPECT_EQ(comm.has_progress_thread(), level == MPI_THREAD_MULTIPLE);
  (void)world_rank();
  (void)world_size();
}

}  // namespace

// parallel.transport: parsing, the auto rule, and the config errors (one line
// naming the key). The NCCL-specific refusals depend on the build: without
// NCCL "not compiled in"; with NCCL, the combinations it cannot run.
#include <gtest/gtest.h>

#include "hpcml/comm/nccl.hpp"
#include "hpcml/comm/reducer.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"

namespace {

using hpcml::comm::Algo;
using hpcml::comm::Transport;
using hpcml::comm::TransportChoice;

std::string config_error(const std::string& toml) {
  auto doc = hpcml::ConfigDoc::parse(toml, "t.toml");
  try {
    (void)hpcml::comm::read_reducer_options(doc);
  } catch (const hpcml::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(TransportChoice, ParsesTheThreeNames) {
  using hpcml::comm::parse_transport_choice;
  EXPECT_EQ(parse_transport_choice("auto"), TransportChoice::kAuto);
  EXPECT_EQ(parse_transport_choice("mpi"), TransportChoice::kMpi);
  EXPECT_EQ(parse_transport_choice("nccl"), TransportChoice::kNccl);
  for (auto c : {TransportChoice::kAuto, TransportChoice::kMpi, TransportChoice::kNccl})
    EXPECT_EQ(parse_transport_choice(hpcml::comm::to_string(c)), c);
  try {
    (void)parse_transport_choice("gloo", "--transport");
    ADD_FAILURE() << "gloo accepted";
  } catch (const hpcml::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "--transport: unknown transport 'gloo' (expected auto, mpi or nccl)");
  }
}

TEST(TransportChoice, AutoIsNcclOnlyForCudaWithNcclBuilt) {
  using hpcml::comm::resolve_transport;
  EXPECT_EQ(resolve_transport(TransportChoice::kAuto, "cuda", true), Transport::kNccl);
  EXPECT_EQ(resolve_transport(TransportChoice::kAuto, "cuda", false), Transport::kMpi);
  for (const char* b : {"omp", "reference", "kokkos"}) {
    EXPECT_EQ(resolve_transport(TransportChoice::kAuto, b, true), Transport::kMpi) << b;
    EXPECT_EQ(resolve_transport(TransportChoice::kAuto, b, false), Transport::kMpi) << b;
  }
  // Explicit choices stay as they are (their errors come from require_nccl).
  EXPECT_EQ(resolve_transport(TransportChoice::kNccl, "omp", false), Transport::kNccl);
  EXPECT_EQ(resolve_transport(TransportChoice::kMpi, "cuda", true), Transport::kMpi);
}

TEST(TransportChoice, DefaultIsAutoAndMpiStaysValid) {
  EXPECT_EQ(config_error(""), "");
  EXPECT_EQ(config_error("[parallel]\ntransport = \"mpi\"\nalgo = \"ring\"\n"), "");
  auto doc = hpcml::ConfigDoc::parse("", "t.toml");
  EXPECT_EQ(hpcml::comm::read_reducer_options(doc).transport, TransportChoice::kAuto);
  EXPECT_NE(config_error("[parallel]\ntransport = \"tcp\"\n").find("parallel.transport"),
            std::string::npos);
}

TEST(NcclCodec, RefusalNamesTheCodecAndWhatRuns) {
  using hpcml::comm::Codec;
  using hpcml::comm::nccl_codec_refusal;
  EXPECT_EQ(nccl_codec_refusal(Codec::kNone), "");
  EXPECT_EQ(nccl_codec_refusal(Codec::kInt8),
            "\"int8\" is not built for parallel.transport = \"nccl\"; use none, fp16 or bf16");
  EXPECT_EQ(nccl_codec_refusal(Codec::kTopk),
            "\"topk\" is not built for parallel.transport = \"nccl\"; use none, fp16 or bf16");
  for (Codec c : {Codec::kFp16, Codec::kBf16})
    EXPECT_EQ(nccl_codec_refusal(c).empty(), hpcml::comm::nccl_device_codecs_built());
#ifndef HPCML_HAS_NCCL
  EXPECT_FALSE(hpcml::comm::nccl_device_codecs_built());
#endif
}

TEST(NcclThresholds, ParsesTheNcclEntries) {
  using hpcml::comm::NcclPath;
  using hpcml::comm::Thresholds;
  const Thresholds d;
  EXPECT_EQ(d.nccl_multinode_algo, NcclPath::kFlat);  // the unmeasured default
  EXPECT_EQ(d.nccl_hierarchical_max_bytes, 0u);
  const Thresholds t =
      Thresholds::parse("nccl_multinode_algo=hierarchical,nccl_hierarchical_max_bytes=4M", d, "T");
  EXPECT_EQ(t.nccl_multinode_algo, NcclPath::kHierarchical);
  EXPECT_EQ(t.nccl_hierarchical_max_bytes, 4u << 20);
  EXPECT_EQ(t.small_algo, d.small_algo);  // the MPI entries stay
  // to_string() round-trips.
  const Thresholds back = Thresholds::parse(t.to_string(), Thresholds{}, "T");
  EXPECT_EQ(back.nccl_multinode_algo, NcclPath::kHierarchical);
  EXPECT_EQ(back.nccl_hierarchical_max_bytes, 4u << 20);
  EXPECT_EQ(Thresholds::parse("nccl_multinode_algo=flat", t, "T").nccl_multinode_algo,
            NcclPath::kFlat);
  try {
    (void)Thresholds::parse("nccl_multinode_algo=tree", d, "HPCML_ALLREDUCE_THRESHOLDS");
    ADD_FAILURE() << "tree accepted";
  } catch (const hpcml::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "HPCML_ALLREDUCE_THRESHOLDS: 'nccl_multinode_algo' must be flat or hierarchical, got "
              "'tree'");
  }
  EXPECT_THROW((void)Thresholds::parse("nccl_hierarchical_max_bytes=lots", d, "T"),
               hpcml::ConfigError);
}

TEST(NcclThresholds, ChoosesFlatOnOneNodeAndByTheTableAcross) {
  using hpcml::comm::choose_nccl_path;
  using hpcml::comm::NcclPath;
  hpcml::comm::Thresholds t;
  for (int nodes : {1, 2, 8}) EXPECT_EQ(choose_nccl_path(t, 1024, nodes), NcclPath::kFlat);
  t.nccl_multinode_algo = NcclPath::kHierarchical;
  EXPECT_EQ(choose_nccl_path(t, 1024, 1), NcclPath::kFlat);  // one node: always flat
  EXPECT_EQ(choose_nccl_path(t, std::size_t{1} << 40, 2), NcclPath::kHierarchical);  // no limit
  t.nccl_hierarchical_max_bytes = 1 << 20;
  EXPECT_EQ(choose_nccl_path(t, 1 << 20, 2), NcclPath::kHierarchical);
  EXPECT_EQ(choose_nccl_path(t, (1 << 20) + 4, 2), NcclPath::kFlat);
  EXPECT_EQ(choose_nccl_path(t, 4, 3), NcclPath::kHierarchical);
  EXPECT_EQ(choose_nccl_path(t, 4, 1), NcclPath::kFlat);
}

TEST(NcclThresholds, LayoutLineShowsTheChoicePerSize) {
  using hpcml::comm::Codec;
  using hpcml::comm::describe_nccl_by_size;
  using hpcml::comm::NcclPath;
  hpcml::comm::Thresholds t;
  EXPECT_EQ(describe_nccl_by_size(t, 1, Codec::kNone),
            "nccl: every size ncclAllReduce (NCCL picks ring or tree), one node");
  EXPECT_EQ(describe_nccl_by_size(t, 2, Codec::kNone),
            "nccl: every size ncclAllReduce (NCCL picks ring or tree)");
  t.nccl_multinode_algo = NcclPath::kHierarchical;
  EXPECT_EQ(describe_nccl_by_size(t, 1, Codec::kNone),
            "nccl: every size ncclAllReduce (NCCL picks ring or tree), one node");
  EXPECT_EQ(describe_nccl_by_size(t, 3, Codec::kNone),
            "nccl: every size hierarchical (NCCL in the node, MPI between 3 node leaders)");
  t.nccl_hierarchical_max_bytes = 4 << 20;
  EXPECT_EQ(describe_nccl_by_size(t, 2, Codec::kNone),
            "nccl: <= 4M hierarchical (NCCL in the node, MPI between 2 node leaders), larger "
            "ncclAllReduce (NCCL picks ring or tree)");
  EXPECT_EQ(describe_nccl_by_size(t, 2, Codec::kBf16),
            "nccl: every size bf16 ncclAllReduce (parallel.compression; NCCL picks ring or tree)");
}

TEST(NcclNodes, EmulatedSplitNamesNodeLeaderAndSizes) {
  using hpcml::comm::emulated_node_split;
  // 5 ranks in blocks of 2: nodes {0,1} {2,3} {4}.
  const int node[] = {0, 0, 1, 1, 2}, local[] = {0, 1, 0, 1, 0}, lsize[] = {2, 2, 2, 2, 1};
  for (int r = 0; r < 5; ++r) {
    const auto s = emulated_node_split(r, 5, 2);
    EXPECT_EQ(s.node, node[r]) << r;
    EXPECT_EQ(s.local_rank, local[r]) << r;
    EXPECT_EQ(s.local_size, lsize[r]) << r;
    EXPECT_EQ(s.nodes, 3) << r;
    EXPECT_EQ(s.leader(), r % 2 == 0) << r;
  }
  // Blocks of 1: every rank its own node and leader.
  for (int r = 0; r < 4; ++r) {
    const auto s = emulated_node_split(r, 4, 1);
    EXPECT_EQ(s.node, r);
    EXPECT_TRUE(s.leader());
    EXPECT_EQ(s.local_size, 1);
    EXPECT_EQ(s.nodes, 4);
  }
  // A block larger than the job: one node.
  const auto one = emulated_node_split(2, 3, 8);
  EXPECT_EQ(one.nodes, 1);
  EXPECT_EQ(one.local_rank, 2);
  EXPECT_EQ(one.local_size, 3);
}

TEST(TransportChoice, ChooseTransportDecidesOrGivesTheOneRefusal) {
  using hpcml::comm::choose_transport;
  using hpcml::comm::Codec;
  auto doc = hpcml::ConfigDoc::parse("", "t.toml");
  // mpi, and auto off the cuda backend: no NCCL check, whatever the codec.
  for (Codec c : {Codec::kNone, Codec::kInt8, Codec::kTopk}) {
    EXPECT_EQ(choose_transport(TransportChoice::kMpi, "cuda", c, &doc), Transport::kMpi);
    EXPECT_EQ(choose_transport(TransportChoice::kAuto, "omp", c, &doc), Transport::kMpi);
  }
  // A codec NCCL does not run: the parallel.compression line, before require_nccl.
  try {
    choose_transport(TransportChoice::kNccl, "omp", Codec::kInt8, &doc);
    ADD_FAILURE() << "int8 on nccl passed";
  } catch (const hpcml::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "t.toml: key 'parallel.compression': \"int8\" is not built for parallel.transport "
              "= \"nccl\"; use none, fp16 or bf16");
  }
  try {
    choose_transport(TransportChoice::kNccl, "", Codec::kTopk, nullptr);
    ADD_FAILURE() << "topk on nccl passed";
  } catch (const hpcml::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "parallel.compression: \"topk\" is not built for parallel.transport = \"nccl\"; "
              "use none, fp16 or bf16");
  }
  // An explicit nccl: require_nccl's line with the caller's prefix, or nccl.
  const std::string reason = hpcml::comm::nccl_unavailable_reason();
  try {
    EXPECT_EQ(choose_transport(TransportChoice::kNccl, "", Codec::kNone, nullptr, "--x nccl: "),
              Transport::kNccl);
    EXPECT_EQ(reason, "");
  } catch (const hpcml::NotAvailableError& e) {
    EXPECT_EQ(std::string(e.what()), "--x nccl: " + reason);
  }
  // auto on cuda: nccl exactly when built (a missing GPU is the backend's line).
  EXPECT_EQ(choose_transport(TransportChoice::kAuto, "cuda", Codec::kNone, &doc),
            hpcml::comm::is_built(Transport::kNccl) ? Transport::kNccl : Transport::kMpi);
}

#ifndef HPCML_HAS_NCCL
TEST(TransportChoice, NcclIsNotCompiledIn) {
  EXPECT_EQ(config_error("[parallel]\ntransport = \"nccl\"\n"),
            "t.toml: key 'parallel.transport': 'nccl' is not compiled in (this hpcml was built "
            "without NCCL: configure with -DHPCML_ENABLE_NCCL=ON and NCCL_ROOT; "
            "docs/communication.md)");
  EXPECT_FALSE(hpcml::comm::is_built(Transport::kNccl));
  const std::string reason = hpcml::comm::nccl_unavailable_reason();
  EXPECT_NE(reason.find("not compiled in"), std::string::npos) << reason;
  try {
    hpcml::comm::require_nccl("parallel.transport = \"nccl\": ");
    ADD_FAILURE() << "require_nccl passed";
  } catch (const hpcml::NotAvailableError& e) {
    EXPECT_EQ(std::string(e.what()), "parallel.transport = \"nccl\": " + reason);
  }
}
#else
TEST(TransportChoice, NcclCombinationsItCannotRunAreRefused) {
  EXPECT_TRUE(hpcml::comm::is_built(Transport::kNccl));
  EXPECT_EQ(config_error("[parallel]\ntransport = \"nccl\"\n"), "");
  EXPECT_EQ(config_error("[parallel]\ntransport = \"nccl\"\nalgo = \"nccl\"\n"), "");
  // algo nccl picks the transport.
  auto doc = hpcml::ConfigDoc::parse("[parallel]\nalgo = \"nccl\"\n", "t.toml");
  EXPECT_EQ(hpcml::comm::read_reducer_options(doc).transport, TransportChoice::kNccl);
  EXPECT_EQ(config_error("[parallel]\ntransport = \"mpi\"\nalgo = \"nccl\"\n"),
            "t.toml: key 'parallel.algo': 'nccl' reduces GPU buffers through NCCL: it needs "
            "parallel.transport = \"nccl\" or \"auto\", not \"mpi\"");
  EXPECT_EQ(config_error("[parallel]\ntransport = \"nccl\"\nalgo = \"hierarchical\"\n"),
            "t.toml: key 'parallel.algo': 'hierarchical' is an MPI algorithm; with "
            "parallel.transport = \"nccl\" use \"auto\" or \"nccl\" (NCCL inside the node with MPI "
            "between node leaders: nccl_multinode_algo in parallel.allreduce_thresholds)");
  // int8 and topk have no NCCL form; fp16 and bf16 run where the device codecs are built.
  EXPECT_EQ(config_error("[parallel]\ntransport = \"nccl\"\ncompression = \"int8\"\n"),
            "t.toml: key 'parallel.compression': \"int8\" is not built for parallel.transport = "
            "\"nccl\"; use none, fp16 or bf16");
  EXPECT_EQ(config_error("[parallel]\ntransport = \"nccl\"\ncompression = \"topk\"\n"),
            "t.toml: key 'parallel.compression': \"topk\" is not built for parallel.transport = "
            "\"nccl\"; use none, fp16 or bf16");
  for (const char* codec : {"fp16", "bf16"}) {
    const std::string error = config_error(
        std::string("[parallel]\ntransport = \"nccl\"\ncompression = \"") + codec + "\"\n");
    if (hpcml::comm::nccl_device_codecs_built()) {
      EXPECT_EQ(error, "") << codec;
    } else {
      EXPECT_EQ(error, std::string("t.toml: key 'parallel.compression': \"") + codec +
                           "\" is not built for parallel.transport = \"nccl\" (this build has "
                           "no CUDA device codecs); use none");
    }
  }
  // The host communicator never runs the NCCL algorithm.
  for (Algo a : hpcml::comm::concrete_algos()) EXPECT_NE(a, Algo::kNccl);
}

// Without a GPU (this build machine) the reason names cudaGetDeviceCount's answer.
TEST(TransportChoice, NoGpuIsOneLineNamingCudaGetDeviceCount) {
  const std::string reason = hpcml::comm::nccl_unavailable_reason();
  if (reason.empty()) GTEST_SKIP() << "a GPU is visible: nothing to refuse";
  EXPECT_EQ(reason.rfind("no GPU for the NCCL transport: cudaGetDeviceCount ", 0), 0u) << reason;
  EXPECT_EQ(reason.find('\n'), std::string::npos) << reason;
  EXPECT_NE(hpcml::comm::nccl_description().find(reason), std::string::npos);
  EXPECT_EQ(hpcml::comm::gpu_for_local_rank(0).device, -1);
  EXPECT_EQ(hpcml::comm::gpu_for_local_rank(0).pci_bus_id, "none");
}
#endif

}  // namespace

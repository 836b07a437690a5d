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
            "between node leaders is not built yet)");
  EXPECT_EQ(config_error("[parallel]\ntransport = \"nccl\"\ncompression = \"fp16\"\n"),
            "t.toml: key 'parallel.compression': 'fp16' is not available with parallel.transport "
            "= \"nccl\" (the GPU codecs are not built yet): use \"none\"");
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

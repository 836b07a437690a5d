// The transport registry and the algorithm table: which transports this build
// has, the one refusal of the others, and every algorithm's names.
#include "transport.hpp"

#include <array>
#include <cctype>

#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::comm {

namespace {

constexpr std::array<AlgoInfo, 6> kAlgoTable{{
    {Algo::kAuto, "auto", "automatic", Transport::kMpi},
    {Algo::kMpi, "mpi", "", Transport::kMpi},
    {Algo::kRing, "ring", "", Transport::kMpi},
    {Algo::kRecursiveDoubling, "recursive_doubling", "rd", Transport::kMpi},
    {Algo::kHierarchical, "hierarchical", "shm", Transport::kMpi},
    {Algo::kNccl, "nccl", "", Transport::kNccl},
}};

constexpr bool in_enum_order() {
  for (std::size_t i = 0; i < kAlgoTable.size(); ++i)
    if (kAlgoTable[i].algo != static_cast<Algo>(i)) return false;
  return true;
}
static_assert(in_enum_order(), "kAlgoTable must list the algorithms in enum order");

// Built transports by Transport value; null where this build lacks one.
detail::TransportImpl* find(Transport transport) {
  switch (transport) {
    case Transport::kMpi:
      return &detail::mpi_transport();
    case Transport::kNccl:
#ifdef HPCML_HAS_NCCL
      return &detail::nccl_transport();
#else
      return nullptr;
#endif
  }
  return nullptr;
}

}  // namespace

std::string to_string(Transport transport) {
  switch (transport) {
    case Transport::kMpi:
      return "mpi";
    case Transport::kNccl:
      return "nccl";
  }
  return "?";
}

bool is_built(Transport transport) { return find(transport) != nullptr; }

void require_built(Transport transport) {
  if (is_built(transport)) return;
  std::string library = to_string(transport);
  for (char& c : library) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  HPCML_THROW(NotAvailableError, "'" + to_string(transport) +
                                     "' is not available in this build (no " + library +
                                     " backend yet)");
}

namespace detail {
TransportImpl& transport(Transport transport) {
  require_built(transport);
  return *find(transport);
}
}  // namespace detail

std::span<const AlgoInfo> algo_table() { return kAlgoTable; }

const AlgoInfo& info(Algo algo) {
  for (const AlgoInfo& a : kAlgoTable)
    if (a.algo == algo) return a;
  HPCML_THROW(Error,
              "unknown all-reduce algorithm value " + std::to_string(static_cast<int>(algo)));
}

Algo parse_algo(const std::string& name, const std::string& what) {
  for (const AlgoInfo& a : kAlgoTable)
    if (name == a.name || (!a.alias.empty() && name == a.alias)) return a.algo;
  // The list names what runs here (an unbuilt transport's name is accepted
  // above and refused when used).
  std::string expected;
  for (const AlgoInfo& a : kAlgoTable) {
    if (!is_built(a.transport)) continue;
    expected += (expected.empty() ? "" : ", ") + std::string(a.name);
  }
  HPCML_THROW(ConfigError,
              what + ": unknown all-reduce algorithm '" + name + "' (expected " + expected + ")");
}

std::string to_string(Algo algo) { return std::string(info(algo).name); }

std::vector<std::string> algo_names() {
  std::vector<std::string> names;
  for (const AlgoInfo& a : kAlgoTable) names.emplace_back(a.name);
  return names;
}

std::vector<Algo> concrete_algos() {
  std::vector<Algo> algos;
  // The NCCL transport's algorithm reduces device buffers through its own
  // Collectives (hpcml/comm/nccl.hpp), never the host communicator's calls.
  for (const AlgoInfo& a : kAlgoTable)
    if (a.algo != Algo::kAuto && is_built(a.transport) && a.transport != Transport::kNccl)
      algos.push_back(a.algo);
  return algos;
}

}  // namespace hpcml::comm

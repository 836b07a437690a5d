#include "hpcml/launch/placement.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"

namespace hpcml::launch {

namespace {

bool parse_int(const std::string& s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

std::string clean(std::string s) {
  for (char& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

std::string format_cpu_list(std::vector<int> cpus) {
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  if (cpus.empty()) return "none";
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(cpus[i]);
    if (j > i) out += "-" + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

std::optional<std::vector<int>> parse_cpu_list(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  if (t.empty()) return std::nullopt;
  std::vector<int> cpus;
  for (const std::string& part : split(t, ',')) {
    const auto dash = part.find('-');
    int a = 0, b = 0;
    if (dash == std::string::npos) {
      if (!parse_int(part, a)) return std::nullopt;
      b = a;
    } else if (!parse_int(part.substr(0, dash), a) || !parse_int(part.substr(dash + 1), b) ||
               b < a || b - a > 1 << 20) {
      return std::nullopt;
    }
    for (int c = a; c <= b; ++c) cpus.push_back(c);
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

std::vector<int> affinity_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  if (cpus.empty()) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long c = 0; c < std::max(n, 1L); ++c) cpus.push_back(static_cast<int>(c));
  }
  return cpus;
}

std::optional<std::vector<int>> read_pci_local_cpus(const std::string& bus_id, std::string* why,
                                                    const std::string& sysfs_root) {
  const std::string path = sysfs_root + "/bus/pci/devices/" + bus_id + "/local_cpulist";
  std::ifstream in(path);
  if (!in) {
    if (why) *why = path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string line;
  std::getline(in, line);
  auto cpus = parse_cpu_list(line);
  if (!cpus && why) *why = path + ": not a CPU list ('" + printable(line, 40) + "')";
  return cpus;
}

std::string describe_placement(const RankPlacement& p) {
  std::ostringstream os;
  os << "rank " << p.rank << " on " << p.node << ": cores " << format_cpu_list(p.cpus) << ", "
     << p.threads << " OpenMP thread(s), GPU ";
  if (p.gpu < 0)
    os << "none";
  else
    os << p.gpu << " " << p.gpu_bus;
  return os.str();
}

std::vector<std::string> placement_warnings(const std::vector<RankPlacement>& ranks) {
  std::vector<std::string> out;
  // Nodes in order of first appearance.
  std::vector<std::string> nodes;
  std::map<std::string, std::pair<int, int>> load;  // node -> (threads, node cpus)
  std::map<std::string, int> rank_count;
  for (const auto& r : ranks) {
    if (!load.count(r.node)) nodes.push_back(r.node);
    auto& l = load[r.node];
    l.first += r.threads;
    l.second = std::max(l.second, r.node_cpus);
    ++rank_count[r.node];
  }
  for (const auto& n : nodes) {
    const auto [threads, cpus] = load[n];
    if (threads > cpus)
      out.push_back("node " + n + " is oversubscribed: " + std::to_string(rank_count[n]) +
                    " rank(s) run " + std::to_string(threads) + " thread(s) on " +
                    std::to_string(cpus) + " CPU(s)");
  }
  std::map<std::pair<std::string, std::string>, std::vector<int>> by_gpu;
  std::vector<std::pair<std::string, std::string>> gpu_order;
  for (const auto& r : ranks) {
    if (r.gpu < 0) continue;
    auto key = std::make_pair(r.node, r.gpu_bus);
    if (!by_gpu.count(key)) gpu_order.push_back(key);
    by_gpu[key].push_back(r.rank);
  }
  for (const auto& key : gpu_order) {
    const auto& rs = by_gpu[key];
    if (rs.size() < 2) continue;
    std::string list;
    for (int r : rs) list += (list.empty() ? "" : ", ") + std::to_string(r);
    out.push_back("ranks " + list + " share GPU " + key.second + " on " + key.first);
  }
  for (const auto& r : ranks) {
    if (r.gpu < 0) continue;
    if (!r.gpu_local_cpus) {
      out.push_back("rank " + std::to_string(r.rank) + ": the CPUs near GPU " + r.gpu_bus +
                    " cannot be read (" + r.gpu_topology_note +
                    "); core-to-GPU distance not checked");
      continue;
    }
    const std::set<int> near(r.gpu_local_cpus->begin(), r.gpu_local_cpus->end());
    std::size_t inside = 0;
    for (int c : r.cpus) inside += near.count(c);
    if (inside == 0)
      out.push_back("rank " + std::to_string(r.rank) + " runs on cores " + format_cpu_list(r.cpus) +
                    ", far from its GPU " + r.gpu_bus + " (local CPUs " +
                    format_cpu_list(*r.gpu_local_cpus) + "): bind the rank near its GPU");
  }
  return out;
}

std::string serialize(const RankPlacement& p) {
  std::ostringstream os;
  os << p.rank << '\t' << clean(p.node) << '\t' << format_cpu_list(p.cpus) << '\t' << p.threads
     << '\t' << p.node_cpus << '\t' << p.gpu << '\t' << clean(p.gpu_bus) << '\t'
     << (p.gpu_local_cpus ? format_cpu_list(*p.gpu_local_cpus) : std::string("?")) << '\t'
     << clean(p.gpu_topology_note);
  return os.str();
}

RankPlacement parse_placement(const std::string& line) {
  const auto f = split(line, '\t');
  RankPlacement p;
  int gpu = 0;
  const bool ok = f.size() == 9 && parse_int(f[0], p.rank) && parse_int(f[3], p.threads) &&
                  parse_int(f[4], p.node_cpus) &&
                  (f[5] == "-1" ? (gpu = -1, true) : parse_int(f[5], gpu));
  HPCML_REQUIRE(ok, Error, "layout line not understood: '" + printable(line, 80) + "'");
  p.node = f[1];
  p.gpu = gpu;
  p.gpu_bus = f[6];
  if (f[2] != "none") {
    auto cpus = parse_cpu_list(f[2]);
    HPCML_REQUIRE(cpus, Error, "layout line: bad core list '" + printable(f[2], 40) + "'");
    p.cpus = *cpus;
  }
  if (f[7] != "?") p.gpu_local_cpus = f[7] == "none" ? std::vector<int>{} : parse_cpu_list(f[7]);
  p.gpu_topology_note = f[8];
  return p;
}

}  // namespace hpcml::launch

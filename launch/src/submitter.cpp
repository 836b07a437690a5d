#include "hpcml/launch/submitter.hpp"

#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/launch/process.hpp"
#include "submitter_impl.hpp"

namespace hpcml::launch {

namespace {

std::string first_line(const std::string& s) {
  std::string l = s.substr(0, s.find('\n'));
  while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.pop_back();
  return l;
}

class SbatchSubmitter final : public Submitter {
 public:
  std::string name() const override { return "sbatch"; }

  std::string submit(const SubmitRequest& r) override {
    std::vector<std::string> argv{"sbatch", "--parsable"};
    if (!r.dependency.empty()) argv.push_back("--dependency=" + r.dependency);
    if (r.hold) argv.push_back("--hold");
    argv.push_back(r.script_path);
    ProcessResult p = run_process(argv);
    if (p.exit_code != 0) {
      HPCML_THROW(Error, "sbatch refused " + r.script_path + ": " +
                             first_line(p.err.empty() ? p.out : p.err));
    }
    // --parsable prints "jobid" or "jobid;cluster".
    std::string id = first_line(p.out);
    id = id.substr(0, id.find(';'));
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
      HPCML_THROW(Error, "sbatch printed no job id for " + r.script_path + " (got '" +
                             printable(id) + "')");
    return id;
  }

  std::map<int, QueueState> states(const std::string& job_id) override {
    std::map<int, QueueState> out;
    ProcessResult p = run_process({"squeue", "-h", "-r", "-j", job_id, "-o", "%A|%a|%T|%r"});
    if (p.exit_code != 0) {
      // Only a job Slurm has forgotten (MinJobAge passed) means "no live tasks"; any
      // other failure must not be mistaken for it (tasks would look lost).
      if (p.err.find("Invalid job id") != std::string::npos) return out;
      HPCML_THROW(Error, "squeue -j " + job_id + " failed: " + first_line(p.err));
    }
    std::istringstream in(p.out);
    std::string line;
    while (std::getline(in, line)) {
      auto f = split(line, '|');
      if (f.size() < 4) continue;
      int task = -1;
      if (f[1] != "N/A" && f[1] != "(null)") {
        for (int t : parse_array_task_list(f[1])) out[t] = {f[2], f[3] == "None" ? "" : f[3]};
        continue;
      }
      out[task] = {f[2], f[3] == "None" ? "" : f[3]};
    }
    return out;
  }

  long max_array_size() override {
    ProcessResult p = run_process({"scontrol", "show", "config"});
    if (p.exit_code != 0) HPCML_THROW(Error, "scontrol show config failed: " + first_line(p.err));
    std::istringstream in(p.out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("MaxArraySize", 0) != 0) continue;
      auto eq = line.find('=');
      if (eq != std::string::npos) return std::atol(line.c_str() + eq + 1);
    }
    HPCML_THROW(Error, "scontrol show config printed no MaxArraySize");
  }
};

}  // namespace

std::vector<int> parse_array_task_list(const std::string& text) {
  std::vector<int> ids;
  std::string t = text.substr(0, text.find('%'));
  for (const auto& part : split(t, ',')) {
    if (part.empty()) continue;
    auto colon = part.find(':');
    int step = colon == std::string::npos ? 1 : std::atoi(part.c_str() + colon + 1);
    std::string range = part.substr(0, colon);
    auto dash = range.find('-');
    int lo = std::atoi(range.c_str());
    int hi = dash == std::string::npos ? lo : std::atoi(range.c_str() + dash + 1);
    if (step < 1 || hi < lo || hi - lo > 10000000) continue;
    for (int i = lo; i <= hi; i += step) ids.push_back(i);
  }
  return ids;
}

bool libslurm_available() {
#ifdef HPCML_HAS_SLURM
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Submitter> make_submitter(const std::string& kind) {
  if (kind == "sbatch") return std::make_unique<SbatchSubmitter>();
  if (kind == "libslurm" || kind == "auto") {
#ifdef HPCML_HAS_SLURM
    // slurm_init() ends the process (fatal) when it finds no slurm.conf, so look first.
    // Configless clusters (no local slurm.conf) go through the sbatch commands.
    const char* conf = std::getenv("SLURM_CONF");
    const std::string path = conf && *conf ? conf : "/etc/slurm/slurm.conf";
    if (::access(path.c_str(), R_OK) != 0) {
      if (kind == "auto") return std::make_unique<SbatchSubmitter>();
      HPCML_THROW(NotAvailableError,
                  "--submitter libslurm: no readable slurm.conf at " + path +
                      " (set SLURM_CONF; on a configless cluster use --submitter sbatch)");
    }
    return make_libslurm_submitter();
#else
    if (kind == "auto") return std::make_unique<SbatchSubmitter>();
    HPCML_THROW(
        NotAvailableError,
        "--submitter libslurm: this hpcml was built without libslurm (install libslurm-dev and "
        "configure with -DHPCML_ENABLE_SLURM=ON)");
#endif
  }
  HPCML_THROW(ConfigError,
              "unknown submitter '" + printable(kind) + "' (expected auto, sbatch or libslurm)");
}

}  // namespace hpcml::launch

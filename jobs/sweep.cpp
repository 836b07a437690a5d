// `hpcml sweep status DIR` and `hpcml sweep collect DIR`: the state of every
// task of a submitted sweep, and its results gathered into results.csv and
// results.md (sorted by the sweep's metric, best configuration named, failed
// tasks listed with the reason). Runs on the login node: no MPI.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/launch/submitter.hpp"
#include "hpcml/launch/sweep.hpp"

namespace hpcml::jobs {

namespace {

struct SweepArgs {
  std::string dir;
  std::string submitter = "auto";
  std::string metric;
  std::string goal;
};

// Queue states of every task, by manifest task id; empty when Slurm is unreachable.
std::map<int, launch::QueueState> queue_states(const SweepArgs& a) {
  std::map<int, launch::QueueState> out;
  std::ifstream f(a.dir + "/sweep.json");
  if (!f) HPCML_THROW(DataError, a.dir + "/sweep.json: not a sweep directory (no sweep.json)");
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(f);
  } catch (const std::exception&) {
    HPCML_THROW(DataError, a.dir + "/sweep.json: not valid JSON");
  }
  std::unique_ptr<launch::Submitter> sub;
  try {
    sub = launch::make_submitter(a.submitter);
  } catch (const Error& e) {
    std::cerr << "hpcml: cannot ask Slurm (" << e.what() << "); using what the tasks wrote\n";
    return out;
  }
  for (const auto& job : meta.value("jobs", nlohmann::json::array())) {
    const std::string id = job.value("job_id", std::string());
    const int offset = job.value("offset", 0);
    for (const auto& [task, state] : sub->states(id)) {
      if (task >= 0) out[offset + task] = state;
    }
  }
  return out;
}

int run_status(const SweepArgs& a) {
  auto status = launch::sweep_status(a.dir, queue_states(a));
  std::map<std::string, int> counts;
  std::cout << std::left << std::setw(6) << "task" << std::setw(12) << "state"
            << "parameters / reason\n";
  for (const auto& s : status) {
    ++counts[s.state];
    std::cout << std::left << std::setw(6) << s.task.id << std::setw(12) << s.state;
    for (const auto& [k, v] : s.task.params) std::cout << k << "=" << v << " ";
    if (!s.reason.empty()) std::cout << "(" << s.reason << ")";
    std::cout << "\n";
  }
  std::cout << status.size() << " tasks:";
  for (const auto& [state, n] : counts) std::cout << " " << n << " " << state;
  std::cout << "\n";
  return 0;
}

int run_collect(const SweepArgs& a) {
  auto status = launch::sweep_status(a.dir, queue_states(a));
  std::cout << launch::collect_sweep(a.dir, status, a.metric, a.goal);
  std::cerr << "hpcml: wrote " << a.dir << "/results.csv and " << a.dir << "/results.md\n";
  return 0;
}

}  // namespace

void add_sweep(CLI::App& app, Action& action) {
  auto* cmd =
      app.add_subcommand("sweep", "Inspect a submitted sweep (hpcml submit with a [sweep] table)");
  cmd->require_subcommand(1);
  auto args = std::make_shared<SweepArgs>();

  auto* status = cmd->add_subcommand("status", "state of every task of the sweep in DIR");
  status->add_option("dir", args->dir, "the sweep's run directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  status->add_option("--submitter", args->submitter, "how to ask Slurm: auto, libslurm or sbatch")
      ->check(one_of({"auto", "libslurm", "sbatch"}));
  status->callback([args, &action] { action = [args] { return run_status(*args); }; });

  auto* collect = cmd->add_subcommand(
      "collect", "gather every task's summary.json into DIR/results.csv and DIR/results.md");
  collect->add_option("dir", args->dir, "the sweep's run directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  collect->add_option("--metric", args->metric, "metric to sort by (default: sweep.metric)");
  collect->add_option("--goal", args->goal, "max or min (default: sweep.goal)")
      ->check(one_of({"max", "min"}));
  collect->add_option("--submitter", args->submitter, "how to ask Slurm: auto, libslurm or sbatch")
      ->check(one_of({"auto", "libslurm", "sbatch"}));
  collect->callback([args, &action] { action = [args] { return run_collect(*args); }; });
}

}  // namespace hpcml::jobs

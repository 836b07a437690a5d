// The workload of `hpcml bench synthetic`: an MPI job whose parallel fraction
// is known, for validating scaling studies (`hpcml scale` + `hpcml report`
// must recover it).
//
// One step of "work" W seconds (as measured on one processing element) has a
// serial part f*W, done by rank 0 while the others wait, and a parallel part
// (1-f)*W split evenly over N = ranks x threads: every rank does (1-f)*W/N
// (strong scaling; weak: (1-f)*W/threads). Then the ranks all-reduce a
// gradient-sized buffer. Work is emulated by sleeping, not by computing: on a
// machine with fewer cores than ranks (oversubscribed, as in the tests on 2
// cores) CPU-bound work could not speed up beyond the core count, while a
// sleep takes the same time however many processes share a core. Waiting
// (barrier, all-reduce) polls with short sleeps for the same reason: busy-
// polling ranks would steal the cores. So the job's Amdahl fraction is P = 1 - f
// by construction (plus small MPI and sleep overheads), which is what
// docs/scaling.md says it measures, and nothing more: it says nothing about
// the machine's compute speed.
//
// Its records follow the training run format (metrics.jsonl lines and
// summary.json, docs/run-directory.md), so `hpcml report` reads it as any run.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "hpcml/comm/mpi.hpp"

namespace hpcml {
class ConfigDoc;
}

namespace hpcml::comm {

struct SyntheticConfig {
  double serial_fraction = 0.1;    // synthetic.serial_fraction
  double work_s = 0.2;             // synthetic.work_s
  std::string scaling = "strong";  // synthetic.scaling: strong (W global) or weak (W per rank)
  double grad_bytes = 65536;       // synthetic.grad_bytes
  long steps = 10;                 // train.max_steps (0 there means 10 here)
  long local_batch = 32;           // train.batch_size
  int threads = 0;                 // parallel.threads (0 = detect)
  std::string run_dir = "runs";    // run.dir
  std::string run_name;            // run.name ("" = synthetic-<UTC time>)
};

/// Reads the keys above, validating each. Only [synthetic] belongs to this
/// job: a training config's other tables are allowed and ignored, unknown keys
/// inside [synthetic] are not. Throws ConfigError naming the key.
SyntheticConfig read_synthetic_config(ConfigDoc& doc);

/// One step as rank 0 records it: step_s is the slowest rank's time, the parts
/// are means over ranks (as the trainer reports them).
struct SyntheticStep {
  double step_s = 0, compute_s = 0, comm_s = 0, idle_s = 0;
};

/// What a run measured. Only rank 0's has steps and sums.
struct SyntheticResult {
  double serial_s = 0, parallel_s = 0;  // the model's time per step
  std::size_t grad_bytes = 0;           // bytes all-reduced per step
  std::vector<SyntheticStep> steps;
  double compute_s = 0, comm_s = 0, idle_s = 0;  // sums over steps
  double wall_s = 0;
  double step_s_median() const;
};

/// Runs cfg.steps steps on `comm` with `threads` threads per rank, calling
/// `on_step(step, record)` on rank 0 after each (step counts from 1). Every MPI
/// call is checked. Collective.
SyntheticResult run_synthetic(const Communicator& comm, const SyntheticConfig& cfg, int threads,
                              const std::function<void(long, const SyntheticStep&)>& on_step = {});

/// Where the job ran, for summary.json.
struct SyntheticPlacement {
  int ranks = 1, threads = 1, nodes = 1;
  bool oversubscribed = false;
  std::string hostname;
};

/// The metrics.jsonl line of one step and of the (single) epoch, and the text
/// of summary.json, in the training run format. No trailing newlines.
std::string synthetic_step_record(long step, const SyntheticStep& s);
std::string synthetic_epoch_record(const SyntheticConfig& cfg, const SyntheticResult& r, int ranks);
std::string synthetic_summary(const SyntheticConfig& cfg, const SyntheticResult& r,
                              const SyntheticPlacement& where, const std::string& version);
/// Global samples per second of the run.
double synthetic_samples_per_s(const SyntheticConfig& cfg, const SyntheticResult& r, int ranks);

}  // namespace hpcml::comm

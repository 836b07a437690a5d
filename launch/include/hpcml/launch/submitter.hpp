// Talking to Slurm: submit a batch script, ask for job and array-task states,
// read MaxArraySize. Two implementations with one contract:
//   - "sbatch":   runs sbatch / squeue / scontrol (argument vectors, no shell);
//   - "libslurm": Slurm's C API (slurm_init, slurm_init_job_desc_msg,
//                 slurm_submit_batch_job, slurm_load_job, slurm_load_ctl_conf),
//                 only in builds with HPCML_HAS_SLURM.
// libslurm does not read #SBATCH lines (sbatch does that client-side), so that
// path fills the job descriptor from the same ScriptPlan the directives come from.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hpcml/launch/batch_script.hpp"
#include "hpcml/launch/sweep.hpp"

namespace hpcml::launch {

struct SubmitRequest {
  const ScriptPlan* plan = nullptr;  // what the script was rendered from
  std::string script_path;           // the script file, already written
  std::string script_text;           // its content
  std::string dependency;            // "" or "afterany:12:13" (type:id[:id...])
  bool hold = false;                 // submit held (priority 0): for inspection and tests
};

class Submitter {
 public:
  virtual ~Submitter() = default;
  /// "sbatch" or "libslurm".
  virtual std::string name() const = 0;
  /// Submits; returns the job id. Throws Error with Slurm's message on refusal.
  virtual std::string submit(const SubmitRequest& request) = 0;
  /// States of a job's tasks keyed by array task id (-1 for a job that is not an
  /// array); empty when Slurm no longer knows the job. Throws Error when Slurm
  /// cannot be asked (so a failed query is never read as "no live tasks").
  virtual std::map<int, QueueState> states(const std::string& job_id) = 0;
  /// The cluster's MaxArraySize (largest array index + 1).
  virtual long max_array_size() = 0;
};

/// `kind`: "sbatch", "libslurm", or "auto" (libslurm when built with it, else
/// sbatch). "libslurm" in a build without it is a NotAvailableError.
std::unique_ptr<Submitter> make_submitter(const std::string& kind);

/// Whether this binary was built with libslurm.
bool libslurm_available();

/// Parses Slurm's array task list ("0-5%2", "1,3-7:2") into ids.
std::vector<int> parse_array_task_list(const std::string& text);

}  // namespace hpcml::launch

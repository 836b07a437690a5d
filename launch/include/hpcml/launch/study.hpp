// Scaling studies (`hpcml scale`): run one job at several rank x thread counts
// and repeats, each point in its own run directory under one study directory,
// with study.json listing the points.
//
//   plan_study        reads the job config and decides every point (pure: no
//                     directory is created, nothing runs);
//   run_study_local   runs the points one after another on this machine with
//                     `mpiexec -n R <hpcml> ...` (launch's run_process);
//   submit_study_slurm submits one batch job per point (submit_single_job),
//                     then one report job that waits (afterany) on all of them.
//
// The points write their run directories to the same place in both modes, so
// `hpcml report <study>` reads either. launch knows nothing of the report: the
// caller passes the report job's hpcml arguments in as strings.
#pragma once

#include <functional>
#include <iosfwd>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "hpcml/launch/submit.hpp"

namespace hpcml::launch {

enum class StudyMode {
  kStrong,  // fixed global batch, split over the ranks
  kWeak,    // fixed batch per rank
};

/// "strong" or "weak".
const char* to_string(StudyMode mode);
/// Parses "strong" or "weak"; ConfigError otherwise.
StudyMode parse_study_mode(const std::string& text);

/// What the user asked for (the `hpcml scale` command line).
struct StudyRequest {
  std::string config;             // job config: training, or one with a [synthetic] table
  std::vector<std::string> sets;  // --set key=value, applied to every run
  std::vector<int> ranks;         // rank counts, each >= 1
  std::vector<int> threads{1};    // threads per rank, each >= 1
  StudyMode mode = StudyMode::kStrong;
  int repeats = 1;
  std::string job = "auto";  // train | synthetic | auto ([synthetic] table -> synthetic)
  std::string out;           // study directory; "" = <run.dir>/scale-<UTC time>
  long global_batch = 0;     // strong: 0 = train.batch_size x the smallest rank count
  long steps = -1;           // train.max_steps of every run; < 0 = the config's
  bool local = false;        // --local and --slurm exclude each other
  bool slurm = false;
  bool dry_run = false;  // print what would run or be submitted; run and submit nothing
  // --slurm only.
  std::string site;                // site profile, name or path; "" = the config's site.name
  std::string sites_dir;           // "" = default_sites_dir()
  std::string submitter = "auto";  // auto | sbatch | libslurm
  std::string command;             // the command line recorded in study.json
};

/// The config's [scale] table: parameters of the report's communication model
/// (the trainer ignores the table). NaN, 0 or "" where a key is absent.
struct StudyModelKeys {
  static constexpr double kAbsent = std::numeric_limits<double>::quiet_NaN();
  double alpha_s = kAbsent;                // scale.alpha_s
  double beta_s_per_byte = kAbsent;        // scale.beta_s_per_byte
  double intra_alpha_s = kAbsent;          // scale.intra_alpha_s
  double intra_beta_s_per_byte = kAbsent;  // scale.intra_beta_s_per_byte
  double grad_bytes = kAbsent;             // scale.grad_bytes
  double ranks_per_node = 0;               // scale.ranks_per_node
  std::string allreduce_csv;               // scale.allreduce_csv
};

/// One run of the study: its directory <study_dir>/<name>, name r{R}-t{T}-k{k}.
struct StudyPoint {
  std::string name;
  int ranks = 1;
  int threads = 1;
  int repeat = 0;
  long local_batch = 0;  // train.batch_size of the run
};

struct StudyPlan {
  StudyRequest request;
  std::string job;        // "train" or "synthetic"
  long config_batch = 0;  // the config's train.batch_size (weak: the batch per rank)
  long global_batch = 0;  // strong: the fixed global batch (every rank count divides it)
  long steps = 0;         // train.max_steps of every run (0 = the config's epochs decide)
  // --out, else <run.dir>/scale-<UTC time>; under --slurm made absolute and normal.
  std::string study_dir;
  bool default_dir = false;  // no --out: created with -2, -3 suffixes on a collision
  StudyModelKeys model;
  // Repeats outermost, then threads, then ranks: slow drifts of a shared
  // machine spread over all points instead of biasing one.
  std::vector<StudyPoint> points;
};

/// Validates the request, reads the config (with --set) and plans the points.
/// Reads and checks the [scale] table strictly; other tables belong to the
/// job. ConfigError (prefixed "scale: ") for bad counts, both --local and
/// --slurm, or a strong-scaling global batch some rank count cannot share.
StudyPlan plan_study(const StudyRequest& request);

/// hpcml's arguments for one point (after `mpiexec -n R <hpcml>` locally, or in
/// the Slurm job's args file): `train CONFIG` or `bench synthetic CONFIG`, the
/// request's --set, then run.dir / run.name (the run lands in
/// <study_dir>/<point.name>), train.batch_size, parallel.threads and, where
/// needed, train.max_steps and synthetic.scaling. `config` is the file the run
/// reads (the Slurm jobs read a copy).
std::vector<std::string> point_args(const StudyPlan& plan, const StudyPoint& point,
                                    const std::string& config);

/// The local command of a point: `mpiexec -n R <hpcml> point_args...`.
std::vector<std::string> local_point_command(const StudyPlan& plan, const StudyPoint& point,
                                             const std::string& mpiexec, const std::string& hpcml);

/// Nodes x tasks per node for `ranks`: one node unless `cap` (> 0, the
/// config's slurm.ntasks_per_node) is smaller, then as few nodes as the cap
/// allows, evenly filled. ConfigError naming `config` when they cannot be.
std::pair<int, int> slurm_geometry(int ranks, int cap, const std::string& config);

/// Creates the study directory: --out with its parents (ConfigError if it
/// already holds a study.json), or the default one with a suffix on a
/// collision. Returns its path.
std::string create_study_dir(const StudyPlan& plan);

struct LocalStudyResult {
  std::string study_dir;
  int hardware_threads = 1;  // of this machine; points with more ranks x threads are flagged
  int points = 0;            // points run (0 in a dry run)
  int failed = 0;            // of those, the ones without exit code 0 and a summary.json
};

/// Runs the plan here: creates the study directory, writes study.json (again
/// after every point), prints each point's command to `out` and runs it with
/// OMP_NUM_THREADS set, its output passed through; a failed point is reported
/// to `err` and left out. A dry run creates the directory and study.json but
/// runs nothing. NotAvailableError when mpiexec is not on PATH; Error when
/// every point failed.
LocalStudyResult run_study_local(const StudyPlan& plan, std::ostream& out, std::ostream& err);

/// The report job's hpcml arguments for a study directory (for example
/// `report <study_dir> --out <study_dir>/report ...`).
using ReportArgs = std::function<std::vector<std::string>(const std::string& study_dir)>;

/// What `scale --slurm` submits, decided before anything is written.
struct SlurmStudyJobs {
  std::string study_dir;    // absolute
  std::string slurm_dir;    // <study_dir>/slurm: one directory per job
  std::string config_copy;  // <slurm_dir>/config.toml: what every point reads
  SiteProfile site;
  std::vector<SingleJob> points;  // parallel to plan.points
  SingleJob report;               // 1 task in the batch shell; `after` is filled on submission
};

/// Reads the config's [slurm] and [site] tables as `hpcml submit` does (with
/// the request's --set, --site and sites_dir) and builds every job for
/// `study_dir`: per point the geometry, cpus_per_task = threads, job name
/// <job_name>-<point>, run directory <slurm_dir>/<point>; the report job runs
/// `report_args(study_dir)`. Validates the study directory's path.
SlurmStudyJobs plan_slurm_study(const StudyPlan& plan, const std::string& study_dir,
                                const ReportArgs& report_args);

struct SlurmStudyResult {
  std::string study_dir;
  std::vector<std::string> job_ids;  // one per point; empty in a dry run
  std::string report_job_id;
};

/// Submits the plan: one job per point, study.json, then the report job after
/// all of them (afterany). A dry run prints every script and args file to
/// `out` and writes nothing. If any submission fails the jobs already
/// submitted are cancelled (a study missing points would fit the wrong curve)
/// and the error is rethrown.
SlurmStudyResult submit_study_slurm(const StudyPlan& plan, const ReportArgs& report_args,
                                    std::ostream& out, std::ostream& err);

}  // namespace hpcml::launch

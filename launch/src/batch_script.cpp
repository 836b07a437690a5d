#include "hpcml/launch/batch_script.hpp"

#include <sstream>

#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/launch/script_safety.hpp"

namespace hpcml::launch {

namespace {

void require(Field f, const std::string& what, const std::string& value) {
  if (auto why = check_field(f, value); !why.empty())
    HPCML_THROW(ConfigError, what + " '" + printable(value) + "' " + why +
                                 " (allowed: " + std::string(describe(f)) + ")");
}

std::string default_log(const ScriptPlan& p) {
  return p.run_dir + (p.array_count > 0 ? "/slurm-%A_%a.out" : "/slurm-%j.out");
}

// Absolute path for a log given relative to the run directory.
std::string in_run_dir(const ScriptPlan& p, const std::string& path) {
  return path.front() == '/' ? path : p.run_dir + "/" + path;
}

}  // namespace

std::vector<std::string> batch_directives(const ScriptPlan& p) {
  const JobSpec& j = p.job;
  require(Field::kPath, "run directory", p.run_dir);
  std::vector<std::string> d;
  d.push_back("--job-name=" + j.job_name);
  if (!p.work_dir.empty()) {
    require(Field::kPath, "working directory", p.work_dir);
    d.push_back("--chdir=" + p.work_dir);
  }
  d.push_back("--nodes=" + std::to_string(j.nodes));
  d.push_back("--ntasks-per-node=" + std::to_string(j.ntasks_per_node));
  d.push_back("--cpus-per-task=" + std::to_string(j.cpus_per_task));
  if (j.gpus_per_node > 0) d.push_back("--gpus-per-node=" + std::to_string(j.gpus_per_node));
  if (!j.gres.empty()) d.push_back("--gres=" + j.gres);
  if (j.mem_mb > 0)
    d.push_back(std::string(j.mem_per_cpu ? "--mem-per-cpu=" : "--mem=") +
                std::to_string(j.mem_mb) + "M");
  d.push_back("--time=" + format_time(j.time_minutes));
  if (!j.partition.empty()) d.push_back("--partition=" + j.partition);
  if (!j.account.empty()) d.push_back("--account=" + j.account);
  if (!j.qos.empty()) d.push_back("--qos=" + j.qos);
  if (!j.constraint.empty()) d.push_back("--constraint=" + j.constraint);
  if (j.exclusive) d.push_back("--exclusive");
  const std::string out = j.output.empty() ? default_log(p) : in_run_dir(p, j.output);
  require(Field::kPath, "slurm.output", out);
  d.push_back("--output=" + out);
  if (!j.error.empty()) {
    const std::string err = in_run_dir(p, j.error);
    require(Field::kPath, "slurm.error", err);
    d.push_back("--error=" + err);
  }
  if (!j.mail_type.empty()) {
    std::string t;
    for (const auto& m : j.mail_type) t += (t.empty() ? "" : ",") + m;
    d.push_back("--mail-type=" + t);
  }
  if (!j.mail_user.empty()) d.push_back("--mail-user=" + j.mail_user);
  if (j.signal_seconds > 0) d.push_back("--signal=B:USR1@" + std::to_string(j.signal_seconds));
  if (j.requeue) {
    d.push_back("--requeue");
    // A requeued job starts again with the same output file: keep the first run's log.
    d.push_back("--open-mode=append");
  }
  if (p.array_count > 0) {
    std::string a = "--array=0-" + std::to_string(p.array_count - 1);
    if (p.throttle > 0) a += "%" + std::to_string(p.throttle);
    d.push_back(a);
  }
  for (const auto& e : j.extra) d.push_back(e);
  return d;
}

std::string render_batch_script(const ScriptPlan& p) {
  const JobSpec& j = p.job;
  const SiteProfile& s = p.site;
  require(Field::kPath, "hpcml executable", p.hpcml);
  std::ostringstream o;
  o << "#!/bin/bash\n";
  o << "# Written by hpcml " HPCML_VERSION " `submit` for site '" << s.name << "'";
  if (!p.source_config.empty()) {
    // The config path is shown for the reader only; comment text cannot end the line.
    o << " from " << (has_control_char(p.source_config) ? "(config)" : p.source_config);
  }
  o << ".\n# Change the config and resubmit rather than editing this file.\n";
  for (const auto& d : batch_directives(p)) o << "#SBATCH " << d << "\n";
  o << "\nset -u\n";
  o << "HPCML=" << shell_quote(p.hpcml) << "\n";
  o << "RUN_DIR=" << shell_quote(p.run_dir) << "\n";

  o << "\n# Site environment\n";
  if (!s.module_init.empty()) o << "source " << shell_quote(s.module_init) << "\n";
  if (s.module_purge) o << "module purge\n";
  for (const auto& m : s.modules) o << "module load " << shell_quote(m) << "\n";
  if (!s.env_script.empty()) o << "source " << shell_quote(s.env_script) << "\n";
  for (const auto& [k, v] : s.env) o << "export " << k << "=" << shell_quote(v) << "\n";
  for (const auto& [k, v] : j.env) o << "export " << k << "=" << shell_quote(v) << "\n";
  o << "export OMP_NUM_THREADS=" << j.cpus_per_task << "\n";
  o << "export OMP_PLACES=" << shell_quote(j.omp_places) << "\n";
  o << "export OMP_PROC_BIND=" << shell_quote(j.omp_proc_bind) << "\n";

  o << "\n# Which run this is\n";
  if (p.array_count > 0) {
    o << "case \"${SLURM_ARRAY_TASK_ID:-}\" in\n"
         "  '' | *[!0-9]*) echo \"hpcml: not an array task "
         "(SLURM_ARRAY_TASK_ID='${SLURM_ARRAY_TASK_ID:-}')\" >&2; exit 2 ;;\n"
         "esac\n";
    o << "TASK=$((10#$SLURM_ARRAY_TASK_ID + " << p.array_offset << "))\n";
    o << "TASK_NAME=$(awk -F '\\t' -v t=\"$TASK\" '$1 == t { print $2; exit }' \"$RUN_DIR/"
      << p.manifest << "\")\n";
    o << "case \"$TASK_NAME\" in\n"
         "  task-[0-9]*) ;;\n"
         "  *) echo \"hpcml: sweep task $TASK is not in $RUN_DIR/"
      << p.manifest << "\" >&2; exit 2 ;;\nesac\n";
    o << "TASK_DIR=\"$RUN_DIR/$TASK_NAME\"\n";
    o << "exec >>\"$TASK_DIR/job.log\" 2>&1\n";
  } else {
    o << "TASK_DIR=\"$RUN_DIR\"\n";
  }
  o << "mapfile -t ARGS <\"$TASK_DIR/args\"\n";
  o << "# A requeued training job continues from the newest checkpoint of its run\n"
       "# (run.dir and run.name are fixed in args), not from the first step.\n"
       "if [ \"${SLURM_RESTART_COUNT:-0}\" -gt 0 ] && [ \"${ARGS[0]:-}\" = train ]; then\n"
       "  ARGS+=(--resume auto)\n"
       "fi\n";
  o << "hpcml_state() {\n"
       "  printf '%s %s job=%s restart=%s\\n' \"$1\" \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" "
       "\"${SLURM_JOB_ID:-}\" \"${SLURM_RESTART_COUNT:-0}\" >\"$TASK_DIR/state\"\n"
       "}\n";
  o << "hpcml_state running\n";

  o << "\n# Slurm's --signal=B:USR1 reaches only this shell: pass it on to the job step,\n"
       "# which stops after its current training step and exits with "
    << kPreemptedExitCode << ".\n";
  o << "STEP_PID=\n";
  o << "hpcml_forward_usr1() {\n"
       "  echo \"hpcml: SIGUSR1 (time limit or preemption): asking the job step to stop\" >&2\n"
       "  [ -n \"$STEP_PID\" ] && kill -USR1 \"$STEP_PID\" 2>/dev/null\n"
       "}\n"
       "trap hpcml_forward_usr1 USR1\n";

  o << "\n";
  const int n = j.total_tasks();
  // GPUs: srun binds one GPU per task (each task then sees only its own, as
  // device 0, and hpcml is told so); without a binding hpcml picks GPU
  // SLURM_LOCALID among the node's, and refuses more ranks than GPUs.
  std::string gpu_bind;
  if (j.gpus_per_node > 0 && j.launcher == "srun") {
    gpu_bind = j.gpu_bind;
    if (gpu_bind == "auto") gpu_bind = j.ntasks_per_node <= j.gpus_per_node ? "single:1" : "none";
    if (gpu_bind == "none") gpu_bind.clear();
    if (!gpu_bind.empty())
      o << "# Each task sees only the GPU srun bound to it (CUDA_VISIBLE_DEVICES).\n"
           "export HPCML_GPU_BOUND=1\n";
  }
  if (j.launcher == "srun") {
    // Since Slurm 22.05 srun does not inherit --cpus-per-task from the allocation: pass -c.
    // --kill-on-bad-exit=1: a rank that dies ends the whole step at once instead of
    // leaving the others blocked in a collective until the stall inspector fires.
    o << "srun -n " << n << " --ntasks-per-node=" << j.ntasks_per_node << " -c " << j.cpus_per_task
      << " --cpu-bind=" << shell_quote(j.cpu_bind) << " --mpi=" << shell_quote(j.mpi)
      << " --kill-on-bad-exit=1";
    if (j.gpus_per_node > 0) o << " --gpus-per-node=" << j.gpus_per_node;
    if (!gpu_bind.empty()) o << " --gpu-bind=" << shell_quote(gpu_bind);
    o << " \"$HPCML\" \"${ARGS[@]}\" &\n";
  } else if (j.launcher == "mpiexec") {
    o << shell_quote(j.mpiexec) << " -n " << n << " -ppn " << j.ntasks_per_node
      << " -bind-to core:" << j.cpus_per_task << " \"$HPCML\" \"${ARGS[@]}\" &\n";
  } else {
    o << "\"$HPCML\" \"${ARGS[@]}\" &\n";
  }
  o << "STEP_PID=$!\n";
  o << "# A trapped signal interrupts `wait`; wait again until the step has really ended.\n";
  o << "while kill -0 \"$STEP_PID\" 2>/dev/null; do wait \"$STEP_PID\"; done\n";
  o << "wait \"$STEP_PID\"\nrc=$?\n";
  // Hydra's mpiexec often exits 0 after SIGUSR1 although every rank exited with the
  // preemption code: what the ranks recorded decides, not the launcher's exit code.
  // Rank 0 writes summary.json atomically in the run directory the trainer created
  // under $TASK_DIR; one not older than the state file written just before the step
  // counts (not older, rather than newer: file times tick in jiffies, so a fast step
  // can leave both with the same time).
  o << "# The launcher's exit code is not trusted for a stop: Hydra's mpiexec often exits 0\n"
       "# after SIGUSR1 although every rank exited "
    << kPreemptedExitCode
    << ". Rank 0's summary.json, written after\n"
       "# this step started, says whether the ranks stopped on a signal.\n";
  o << "hpcml_stopped_by_signal() {\n"
       "  local f\n"
       "  for f in \"$TASK_DIR\"/*/summary.json; do\n"
       "    if [ -f \"$f\" ] && ! [ \"$TASK_DIR/state\" -nt \"$f\" ] &&\n"
       "      grep -Eq '\"stopped_by_signal\"[[:space:]]*:[[:space:]]*true' \"$f\"; then\n"
       "      return 0\n"
       "    fi\n"
       "  done\n"
       "  return 1\n"
       "}\n";
  o << "if [ \"$rc\" -ne " << kPreemptedExitCode
    << " ] && hpcml_stopped_by_signal; then\n"
       "  echo \"hpcml: the launcher exited $rc but the ranks recorded a stop on a signal "
       "(summary.json stopped_by_signal); taking it as exit "
    << kPreemptedExitCode
    << "\" >&2\n"
       "  rc="
    << kPreemptedExitCode << "\nfi\n";
  o << "if [ \"$rc\" -eq " << kPreemptedExitCode << " ]; then\n";
  if (j.requeue) {
    o << "  echo \"hpcml: the job step stopped early (exit " << kPreemptedExitCode
      << "); requeueing job $SLURM_JOB_ID\" >&2\n"
         "  hpcml_state requeued\n"
         "  if scontrol requeue \"$SLURM_JOB_ID\"; then exit 0; fi\n"
         "  echo \"hpcml: scontrol requeue failed\" >&2\n";
  } else {
    o << "  echo \"hpcml: the job step stopped early (exit " << kPreemptedExitCode
      << "); not requeued (slurm.requeue = false)\" >&2\n";
  }
  o << "fi\n";
  o << "hpcml_state \"exited $rc\"\n";
  o << "exit \"$rc\"\n";
  return o.str();
}

}  // namespace hpcml::launch

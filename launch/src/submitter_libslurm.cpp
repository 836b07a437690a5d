// Submission through libslurm's C API. Compiled only with HPCML_HAS_SLURM.
//
// Version notes (SchedMD's API changes that matter here):
//  - slurm_init(NULL) must run before any other call since 20.11 (it loads
//    slurm.conf and the plugins); we call it once, and slurm_fini() at exit.
//  - GPUs go in tres_per_node as "gres:gpu:N" (the "gres:" prefix since 21.08).
//  - There is no public job_state/reason to-string function: the names below
//    follow squeue's spelling for 22.05.
#include "hpcml/config.hpp"

#ifdef HPCML_HAS_SLURM

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <slurm/slurm_version.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "hpcml/core/error.hpp"
#include "submitter_impl.hpp"

extern char** environ;

namespace hpcml::launch {

namespace {

void ensure_slurm_init() {
  static std::once_flag once;
  std::call_once(once, [] {
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(20, 11, 0)
    slurm_init(nullptr);
    std::atexit([] { slurm_fini(); });
#endif
  });
}

std::string slurm_error(const std::string& what) {
  const int e = slurm_get_errno();
  return what + ": " + slurm_strerror(e) + " (slurm errno " + std::to_string(e) + ")";
}

const char* state_name(uint32_t state) {
  if (state & JOB_COMPLETING) return "COMPLETING";
  if (state & JOB_REQUEUE) return "REQUEUED";
  switch (state & JOB_STATE_BASE) {
    case JOB_PENDING:
      return "PENDING";
    case JOB_RUNNING:
      return "RUNNING";
    case JOB_SUSPENDED:
      return "SUSPENDED";
    case JOB_COMPLETE:
      return "COMPLETED";
    case JOB_CANCELLED:
      return "CANCELLED";
    case JOB_FAILED:
      return "FAILED";
    case JOB_TIMEOUT:
      return "TIMEOUT";
    case JOB_NODE_FAIL:
      return "NODE_FAIL";
    case JOB_PREEMPTED:
      return "PREEMPTED";
    case JOB_BOOT_FAIL:
      return "BOOT_FAIL";
    case JOB_DEADLINE:
      return "DEADLINE";
    case JOB_OOM:
      return "OUT_OF_MEMORY";
    default:
      return "UNKNOWN";
  }
}

std::string reason_name(uint16_t r) {
  switch (r) {
    case WAIT_NO_REASON:
      return "";
    case WAIT_PRIORITY:
      return "Priority";
    case WAIT_DEPENDENCY:
      return "Dependency";
    case WAIT_RESOURCES:
      return "Resources";
    case WAIT_HELD:
      return "JobHeldAdmin";
    case WAIT_TIME:
      return "BeginTime";
    case WAIT_HELD_USER:
      return "JobHeldUser";
    case WAIT_ARRAY_TASK_LIMIT:
      return "JobArrayTaskLimit";
    case WAIT_DEP_INVALID:
      return "DependencyNeverSatisfied";
    case FAIL_LAUNCH:
      return "JobLaunchFailure";
    case FAIL_EXIT_CODE:
      return "NonZeroExitCode";
    case FAIL_TIMEOUT:
      return "TimeLimit";
    default:
      return "reason " + std::to_string(r);
  }
}

uint16_t mail_bits(const std::vector<std::string>& types) {
  uint16_t m = 0;
  for (const auto& t : types) {
    if (t == "BEGIN")
      m |= MAIL_JOB_BEGIN;
    else if (t == "END")
      m |= MAIL_JOB_END;
    else if (t == "FAIL")
      m |= MAIL_JOB_FAIL;
    else if (t == "REQUEUE")
      m |= MAIL_JOB_REQUEUE;
    else if (t == "ALL")
      m |= MAIL_JOB_BEGIN | MAIL_JOB_END | MAIL_JOB_FAIL | MAIL_JOB_REQUEUE | MAIL_JOB_STAGE_OUT;
    else if (t == "TIME_LIMIT")
      m |= MAIL_JOB_TIME100;
    else if (t == "TIME_LIMIT_90")
      m |= MAIL_JOB_TIME90;
    else if (t == "TIME_LIMIT_80")
      m |= MAIL_JOB_TIME80;
    else if (t == "TIME_LIMIT_50")
      m |= MAIL_JOB_TIME50;
    else if (t == "STAGE_OUT")
      m |= MAIL_JOB_STAGE_OUT;
    else if (t == "ARRAY_TASKS")
      m |= MAIL_ARRAY_TASKS;
    else if (t == "INVALID_DEPEND")
      m |= MAIL_INVALID_DEPEND;
  }
  return m;
}

// Owns the strings the job descriptor points into.
struct DescStrings {
  std::vector<std::string> s;
  char* keep(const std::string& v) {
    s.push_back(v);
    return s.back().data();
  }
};

class LibslurmSubmitter final : public Submitter {
 public:
  LibslurmSubmitter() { ensure_slurm_init(); }

  std::string name() const override { return "libslurm"; }

  std::string submit(const SubmitRequest& r) override {
    const ScriptPlan& p = *r.plan;
    const JobSpec& j = p.job;
    if (!j.extra.empty())
      HPCML_THROW(NotAvailableError,
                  "slurm.extra directives are passed to sbatch verbatim; libslurm cannot "
                  "apply them: use --submitter sbatch");
    // batch_directives() validates the same fields the script carries.
    const auto directives = batch_directives(p);
    std::string out, err;
    for (const auto& d : directives) {
      if (d.rfind("--output=", 0) == 0) out = d.substr(9);
      if (d.rfind("--error=", 0) == 0) err = d.substr(8);
    }
    DescStrings keep;
    keep.s.reserve(32);
    job_desc_msg_t desc;
    slurm_init_job_desc_msg(&desc);
    desc.name = keep.keep(j.job_name);
    desc.min_nodes = static_cast<uint32_t>(j.nodes);
    desc.max_nodes = static_cast<uint32_t>(j.nodes);
    desc.ntasks_per_node = static_cast<uint16_t>(j.ntasks_per_node);
    desc.num_tasks = static_cast<uint32_t>(j.total_tasks());
    desc.cpus_per_task = static_cast<uint16_t>(j.cpus_per_task);
    if (j.gpus_per_node > 0)
      desc.tres_per_node = keep.keep("gres:gpu:" + std::to_string(j.gpus_per_node));
    if (!j.gres.empty()) desc.tres_per_node = keep.keep("gres:" + j.gres);
    if (j.mem_mb > 0)
      desc.pn_min_memory = static_cast<uint64_t>(j.mem_mb) | (j.mem_per_cpu ? MEM_PER_CPU : 0);
    desc.time_limit = static_cast<uint32_t>(j.time_minutes);
    if (!j.partition.empty()) desc.partition = keep.keep(j.partition);
    if (!j.account.empty()) desc.account = keep.keep(j.account);
    if (!j.qos.empty()) desc.qos = keep.keep(j.qos);
    if (!j.constraint.empty()) desc.features = keep.keep(j.constraint);
    if (j.exclusive) desc.shared = JOB_SHARED_NONE;
    desc.std_out = keep.keep(out);
    if (!err.empty()) desc.std_err = keep.keep(err);
    if (!j.mail_type.empty()) desc.mail_type = mail_bits(j.mail_type);
    if (!j.mail_user.empty()) desc.mail_user = keep.keep(j.mail_user);
    if (j.signal_seconds > 0) {
      desc.warn_signal = SIGUSR1;
      desc.warn_time = static_cast<uint16_t>(j.signal_seconds);
      desc.warn_flags = KILL_JOB_BATCH;  // B: the batch shell only, as sbatch --signal=B:
    }
    desc.requeue = j.requeue ? 1 : 0;
    if (j.requeue) desc.open_mode = OPEN_MODE_APPEND;
    if (p.array_count > 0) {
      std::string a = "0-";
      a += std::to_string(p.array_count - 1);
      if (p.throttle > 0) {
        a += '%';
        a += std::to_string(p.throttle);
      }
      desc.array_inx = keep.keep(a);
    }
    if (!r.dependency.empty()) desc.dependency = keep.keep(r.dependency);
    if (r.hold) desc.priority = 0;
    desc.work_dir = keep.keep(p.work_dir.empty() ? p.run_dir : p.work_dir);
    desc.script = keep.keep(r.script_text);
    desc.user_id = getuid();
    desc.group_id = getgid();
    // A batch job needs an environment; like sbatch's default --export=ALL.
    std::vector<char*> env;
    for (char** e = environ; e && *e; ++e) env.push_back(*e);
    if (env.empty()) env.push_back(keep.keep("HPCML_EMPTY_ENV=1"));
    desc.environment = env.data();
    desc.env_size = static_cast<uint32_t>(env.size());

    submit_response_msg_t* resp = nullptr;
    if (slurm_submit_batch_job(&desc, &resp) != SLURM_SUCCESS || resp == nullptr)
      HPCML_THROW(Error, slurm_error("slurm_submit_batch_job refused " + r.script_path));
    std::string id = std::to_string(resp->job_id);
    slurm_free_submit_response_response_msg(resp);
    return id;
  }

  std::map<int, QueueState> states(const std::string& job_id) override {
    std::map<int, QueueState> out;
    job_info_msg_t* msg = nullptr;
    const auto id = static_cast<uint32_t>(std::strtoul(job_id.c_str(), nullptr, 10));
    if (slurm_load_job(&msg, id, SHOW_ALL) != SLURM_SUCCESS || msg == nullptr) {
      // Only a job Slurm has forgotten means "no live tasks"; other failures are errors.
      if (slurm_get_errno() == ESLURM_INVALID_JOB_ID) return out;
      HPCML_THROW(Error, slurm_error("slurm_load_job " + job_id));
    }
    for (uint32_t i = 0; i < msg->record_count; ++i) {
      const slurm_job_info_t& ji = msg->job_array[i];
      QueueState q{state_name(ji.job_state), reason_name(ji.state_reason)};
      if (ji.array_task_str != nullptr) {
        // A pending meta record stands for every task it lists.
        for (int t : parse_array_task_list(ji.array_task_str)) out[t] = q;
      } else if (ji.array_job_id != 0 && ji.array_task_id != NO_VAL) {
        out[static_cast<int>(ji.array_task_id)] = q;
      } else {
        out[-1] = q;
      }
    }
    slurm_free_job_info_msg(msg);
    return out;
  }

  long max_array_size() override {
    slurm_conf_t* conf = nullptr;
    if (slurm_load_ctl_conf(0, &conf) != SLURM_SUCCESS || conf == nullptr)
      HPCML_THROW(Error, slurm_error("slurm_load_ctl_conf"));
    long n = static_cast<long>(conf->max_array_sz);
    slurm_free_ctl_conf(conf);
    return n;
  }
};

}  // namespace

std::unique_ptr<Submitter> make_libslurm_submitter() {
  return std::make_unique<LibslurmSubmitter>();
}

}  // namespace hpcml::launch

#endif  // HPCML_HAS_SLURM

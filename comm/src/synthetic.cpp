#include "hpcml/comm/synthetic.hpp"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/config_tables.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::comm {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Sleeps until `seconds` from now have passed (absolute deadline, so an early
// wake-up by a signal does not shorten the work).
void emulate_work(double seconds) {
  if (!(seconds > 0)) return;
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const double end =
      static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec) + seconds;
  timespec deadline{};
  deadline.tv_sec = static_cast<time_t>(std::floor(end));
  deadline.tv_nsec = static_cast<long>((end - std::floor(end)) * 1e9);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nullptr) == EINTR) {
  }
}

// Completes a request: polls briefly (MPI progresses only inside MPI_Test), then
// sleeps between polls with a growing pause (20 us to 0.5 ms) so that waiting
// ranks leave the cores to the ranks that work, also when oversubscribed.
void polite_wait(MPI_Request* req) {
  int done = 0;
  long pause_ns = 20000;
  for (int polls = 0;; ++polls) {
    HPCML_CHECK_MPI(MPI_Test(req, &done, MPI_STATUS_IGNORE));
    if (done) return;
    if (polls > 100) {
      timespec ts{0, pause_ns};
      nanosleep(&ts, nullptr);
      pause_ns = std::min(2 * pause_ns, 500000L);
    }
  }
}

}  // namespace

SyntheticConfig read_synthetic_config(ConfigDoc& doc) {
  SyntheticConfig c;
  c.serial_fraction = doc.get_double("synthetic.serial_fraction", c.serial_fraction, 0.0, 1.0);
  c.work_s = doc.get_double("synthetic.work_s", c.work_s, 1e-4, 3600.0);
  c.scaling = doc.get_choice("synthetic.scaling", c.scaling, {"strong", "weak"});
  c.grad_bytes = static_cast<double>(doc.get_int("synthetic.grad_bytes", 65536, 0, 1LL << 30));
  c.steps = static_cast<long>(doc.get_int("train.max_steps", c.steps, 0, 1000000));
  if (c.steps == 0) c.steps = 10;  // 0 means "no limit" for training; a bench needs a count
  c.local_batch = static_cast<long>(doc.get_int("train.batch_size", c.local_batch, 1, 1 << 30));
  c.threads = static_cast<int>(doc.get_int("parallel.threads", 0, 0, 4096));
  c.run_dir = doc.get_string("run.dir", c.run_dir);
  c.run_name = doc.get_string("run.name", "");
  // Only [synthetic] belongs to this command; a training config's other tables
  // (model, data, ...) are allowed and ignored, typos inside [synthetic] are not.
  doc.check_unknown(tables_left_to_others(ConfigReader::kSynthetic, doc));
  return c;
}

double SyntheticResult::step_s_median() const {
  std::vector<double> sorted;
  for (const auto& s : steps) sorted.push_back(s.step_s);
  std::sort(sorted.begin(), sorted.end());
  if (sorted.empty()) return 0.0;
  const std::size_t h = sorted.size() / 2;
  return sorted.size() % 2 ? sorted[h] : 0.5 * (sorted[h - 1] + sorted[h]);
}

SyntheticResult run_synthetic(const Communicator& comm, const SyntheticConfig& cfg, int threads,
                              const std::function<void(long, const SyntheticStep&)>& on_step) {
  const int rank = comm.rank(), size = comm.size();
  const double pes = static_cast<double>(size) * threads;
  SyntheticResult r;
  r.serial_s = cfg.serial_fraction * cfg.work_s;
  r.parallel_s = cfg.scaling == "strong" ? (1.0 - cfg.serial_fraction) * cfg.work_s / pes
                                         : (1.0 - cfg.serial_fraction) * cfg.work_s / threads;
  const auto count = static_cast<std::size_t>(cfg.grad_bytes / sizeof(float));
  r.grad_bytes = count * sizeof(float);
  std::vector<float> grad(std::max<std::size_t>(count, 1), 1.0f);
  const MPI_Comm c = comm.get();
  HPCML_CHECK_MPI(MPI_Barrier(c));
  const auto t_start = Clock::now();
  for (long step = 0; step < cfg.steps; ++step) {
    const auto t0 = Clock::now();
    double compute = 0, idle = 0, communicate = 0;
    // Serial part on rank 0; the others wait in a barrier (idle).
    if (rank == 0) {
      const auto t = Clock::now();
      emulate_work(r.serial_s);
      compute += seconds_since(t);
    }
    {
      const auto t = Clock::now();
      MPI_Request req = MPI_REQUEST_NULL;
      HPCML_CHECK_MPI(MPI_Ibarrier(c, &req));
      polite_wait(&req);
      idle += seconds_since(t);
    }
    {
      const auto t = Clock::now();
      emulate_work(r.parallel_s);
      compute += seconds_since(t);
    }
    if (count > 0 && size > 1) {
      const auto t = Clock::now();
      MPI_Request req = MPI_REQUEST_NULL;
      HPCML_CHECK_MPI(MPI_Iallreduce(MPI_IN_PLACE, grad.data(), static_cast<int>(count), MPI_FLOAT,
                                     MPI_SUM, c, &req));
      polite_wait(&req);
      communicate += seconds_since(t);
    }
    const double step_s = seconds_since(t0);
    // step_s: max over ranks; the parts: means over ranks (as the trainer does).
    double local_v[4] = {step_s, compute, communicate, idle};
    double sums[4] = {0, 0, 0, 0}, maxes[4] = {0, 0, 0, 0};
    HPCML_CHECK_MPI(MPI_Reduce(local_v, sums, 4, MPI_DOUBLE, MPI_SUM, 0, c));
    HPCML_CHECK_MPI(MPI_Reduce(local_v, maxes, 4, MPI_DOUBLE, MPI_MAX, 0, c));
    if (rank == 0) {
      const SyntheticStep s{maxes[0], sums[1] / size, sums[2] / size, sums[3] / size};
      r.steps.push_back(s);
      r.compute_s += s.compute_s;
      r.comm_s += s.comm_s;
      r.idle_s += s.idle_s;
      if (on_step) on_step(step + 1, s);
    }
  }
  r.wall_s = seconds_since(t_start);
  return r;
}

double synthetic_samples_per_s(const SyntheticConfig& cfg, const SyntheticResult& r, int ranks) {
  const double global_batch = static_cast<double>(cfg.local_batch) * ranks;
  return global_batch * static_cast<double>(cfg.steps) / r.wall_s;
}

std::string synthetic_step_record(long step, const SyntheticStep& s) {
  nlohmann::json j = {{"type", "step"},
                      {"epoch", 1},
                      {"step", step},
                      {"global_step", step},
                      {"loss", 0.0},
                      {"step_s", s.step_s},
                      {"compute_s", s.compute_s},
                      {"comm_s", s.comm_s},
                      {"comm_overlapped_s", 0.0},
                      {"io_s", 0.0},
                      {"idle_s", s.idle_s}};
  return j.dump();
}

std::string synthetic_epoch_record(const SyntheticConfig& cfg, const SyntheticResult& r,
                                   int ranks) {
  nlohmann::json e = {
      {"type", "epoch"},     {"epoch", 1},
      {"steps", cfg.steps},  {"train_loss", 0.0},
      {"train_acc", 0.0},    {"samples_per_s", synthetic_samples_per_s(cfg, r, ranks)},
      {"epoch_s", r.wall_s}, {"compute_s", r.compute_s},
      {"comm_s", r.comm_s},  {"comm_overlapped_s", 0.0},
      {"io_s", 0.0},         {"idle_s", r.idle_s}};
  return e.dump();
}

std::string synthetic_summary(const SyntheticConfig& cfg, const SyntheticResult& r,
                              const SyntheticPlacement& where, const std::string& version) {
  const double n = static_cast<double>(std::max<long>(cfg.steps, 1));
  const double global_batch = static_cast<double>(cfg.local_batch) * where.ranks;
  nlohmann::json s = {{"hpcml_version", version},
                      {"job", "synthetic"},
                      {"ranks", where.ranks},
                      {"threads_per_rank", where.threads},
                      {"nodes", where.nodes},
                      {"oversubscribed", where.oversubscribed},
                      {"hostname", where.hostname},
                      {"local_batch", cfg.local_batch},
                      {"global_batch", global_batch},
                      {"steps", cfg.steps},
                      {"samples_per_s", synthetic_samples_per_s(cfg, r, where.ranks)},
                      {"step_s_median", r.step_s_median()},
                      {"compute_s_per_step", r.compute_s / n},
                      {"comm_s_per_step", r.comm_s / n},
                      {"comm_exposed_s_per_step", r.comm_s / n},
                      {"comm_overlapped_s_per_step", 0.0},
                      {"io_s_per_step", 0.0},
                      {"idle_s_per_step", r.idle_s / n},
                      {"wall_s", r.wall_s},
                      {"grad_bytes", static_cast<double>(r.grad_bytes)},
                      {"serial_fraction", cfg.serial_fraction},
                      {"work_s", cfg.work_s},
                      {"scaling", cfg.scaling},
                      {"true_parallel_fraction", 1.0 - cfg.serial_fraction}};
  return s.dump(2);
}

}  // namespace hpcml::comm

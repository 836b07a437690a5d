// `hpcml bench synthetic`: an MPI job whose parallel fraction is known, for
// validating scaling studies (`hpcml scale` + `hpcml report` must recover it).
//
// One step of "work" W seconds (as measured on one processing element) has a
// serial part f*W, done by rank 0 while the others wait, and a parallel part
// (1-f)*W split evenly over N = ranks x threads: every rank does (1-f)*W/N.
// Then the ranks all-reduce a gradient-sized buffer. Work is emulated by
// sleeping, not by computing: on a machine with fewer cores than ranks
// (oversubscribed, as in the tests on 2 cores) CPU-bound work could not speed
// up beyond the core count, while a sleep takes the same time however many
// processes share a core. Waiting (barrier, all-reduce) polls with short
// sleeps for the same reason: busy-polling ranks would steal the cores. So the
// job's Amdahl fraction is P = 1 - f by construction (plus small MPI and sleep
// overheads), which is what docs/scaling.md says it measures, and nothing more:
// it says nothing about the machine's compute speed.
//
// It writes a run directory in the training format (config.toml, metrics.jsonl,
// summary.json; see docs/run-directory.md), so `hpcml report` reads it as any run.
#include <mpi.h>
#include <sys/stat.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <vector>

#include "commands.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/launch/environment.hpp"

namespace hpcml::jobs {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct SyntheticArgs {
  std::string config;
  std::vector<std::string> sets;
  std::optional<double> serial_fraction;
  std::optional<double> work_s;
  std::optional<long> steps;
};

struct SyntheticConfig {
  double serial_fraction = 0.1;
  double work_s = 0.2;
  std::string scaling = "strong";  // strong: W is the global work; weak: W is per rank
  double grad_bytes = 65536;
  long steps = 10;
  long local_batch = 32;
  int threads = 0;
  std::string run_dir = "runs";
  std::string run_name;
};

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
    MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (done) return;
    if (polls > 100) {
      timespec ts{0, pause_ns};
      nanosleep(&ts, nullptr);
      pause_ns = std::min(2 * pause_ns, 500000L);
    }
  }
}

std::string create_run_dir(const SyntheticConfig& cfg) {
  const std::string name = cfg.run_name.empty() ? "synthetic-" + utc_timestamp() : cfg.run_name;
  std::error_code ec;
  fs::create_directories(cfg.run_dir, ec);
  HPCML_REQUIRE(!ec, ConfigError,
                "run.dir '" + cfg.run_dir + "': cannot create directory: " + ec.message());
  for (int i = 1; i < 10000; ++i) {
    const fs::path p = fs::path(cfg.run_dir) / (i == 1 ? name : name + "-" + std::to_string(i));
    if (::mkdir(p.c_str(), 0777) == 0) return p.string();
    HPCML_REQUIRE(errno == EEXIST, ConfigError,
                  "run.dir: cannot create '" + p.string() + "': " + std::strerror(errno));
  }
  HPCML_THROW(ConfigError, "run.dir: too many runs named '" + name + "'");
}

SyntheticConfig read_config(ConfigDoc& doc) {
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
  std::set<std::string> tables;
  for (const auto& k : doc.leaf_keys()) tables.insert(k.substr(0, k.find('.')));
  tables.erase("synthetic");
  doc.check_unknown(std::vector<std::string>(tables.begin(), tables.end()));
  return c;
}

int run_synthetic(const SyntheticArgs& args) {
  comm::MpiEnvironment env;
  auto world = comm::Communicator::world();
  const int rank = world.rank();
  const int size = world.size();

  ConfigDoc doc;
  SyntheticConfig cfg;
  comm::agree(world, [&] {
    doc = args.config.empty() ? ConfigDoc::parse("", "(no config)") : ConfigDoc::load(args.config);
    for (const auto& s : args.sets) doc.set(s);
    auto fmt = [](double v) {
      std::ostringstream os;
      os.precision(17);
      os << v;
      std::string t = os.str();
      if (t.find_first_of(".e") == std::string::npos) t += ".0";
      return t;
    };
    if (args.serial_fraction) doc.set("synthetic.serial_fraction=" + fmt(*args.serial_fraction));
    if (args.work_s) doc.set("synthetic.work_s=" + fmt(*args.work_s));
    if (args.steps) doc.set("train.max_steps=" + std::to_string(*args.steps));
    cfg = read_config(doc);
  });

  auto local = world.split_shared();
  const int nodes = world.node_count();
  const auto layout =
      launch::detect_layout(rank, size, local.rank(), local.size(), nodes, cfg.threads);
  const int threads = layout.threads_per_rank;
  const double pes = static_cast<double>(size) * threads;
  const double serial_s = cfg.serial_fraction * cfg.work_s;
  const double parallel_s = cfg.scaling == "strong"
                                ? (1.0 - cfg.serial_fraction) * cfg.work_s / pes
                                : (1.0 - cfg.serial_fraction) * cfg.work_s / threads;

  std::string run_dir;
  comm::agree(world, [&] {
    if (rank == 0) {
      run_dir = create_run_dir(cfg);
      std::ofstream f(run_dir + "/config.toml");
      f << "# effective configuration of this run (defaults filled in)\n"
        << "# source: " << doc.source() << "\n"
        << doc.effective_toml();
      HPCML_REQUIRE(f.good(), Error, run_dir + "/config.toml: write failed");
    }
  });
  run_dir = world.broadcast_string(run_dir, 0);
  if (rank == 0) {
    std::cout << "hpcml " << HPCML_VERSION << " bench synthetic: serial fraction "
              << cfg.serial_fraction << ", work " << cfg.work_s << " s per step (" << cfg.scaling
              << "), " << cfg.steps << " steps, " << size << " rank(s) x " << threads
              << " thread(s) on " << nodes << " node(s)"
              << (layout.oversubscribed ? "  [OVERSUBSCRIBED: ranks x threads > cores]" : "")
              << "\n  run   " << run_dir << "\n"
              << std::flush;
  }

  const std::size_t count = static_cast<std::size_t>(cfg.grad_bytes / sizeof(float));
  std::vector<float> grad(std::max<std::size_t>(count, 1), 1.0f);
  std::ofstream metrics;
  if (rank == 0) {
    metrics.open(run_dir + "/metrics.jsonl");
    HPCML_REQUIRE(metrics.good(), Error, run_dir + "/metrics.jsonl: cannot write");
  }
  std::vector<double> step_times;
  double sum_compute = 0, sum_comm = 0, sum_idle = 0;
  MPI_Barrier(world.get());
  const auto t_start = Clock::now();
  for (long step = 0; step < cfg.steps; ++step) {
    const auto t0 = Clock::now();
    double compute = 0, idle = 0, comm = 0;
    // Serial part on rank 0; the others wait in a barrier (idle).
    if (rank == 0) {
      const auto t = Clock::now();
      emulate_work(serial_s);
      compute += seconds_since(t);
    }
    {
      const auto t = Clock::now();
      MPI_Request req;
      MPI_Ibarrier(world.get(), &req);
      polite_wait(&req);
      idle += seconds_since(t);
    }
    {
      const auto t = Clock::now();
      emulate_work(parallel_s);
      compute += seconds_since(t);
    }
    if (count > 0 && size > 1) {
      const auto t = Clock::now();
      MPI_Request req;
      MPI_Iallreduce(MPI_IN_PLACE, grad.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                     world.get(), &req);
      polite_wait(&req);
      comm += seconds_since(t);
    }
    const double step_s = seconds_since(t0);
    // step_s: max over ranks; the parts: means over ranks (as the trainer does).
    double local_v[4] = {step_s, compute, comm, idle};
    double sums[4] = {0, 0, 0, 0}, maxes[4] = {0, 0, 0, 0};
    MPI_Reduce(local_v, sums, 4, MPI_DOUBLE, MPI_SUM, 0, world.get());
    MPI_Reduce(local_v, maxes, 4, MPI_DOUBLE, MPI_MAX, 0, world.get());
    if (rank == 0) {
      const double c = sums[1] / size, m = sums[2] / size, i = sums[3] / size;
      step_times.push_back(maxes[0]);
      sum_compute += c;
      sum_comm += m;
      sum_idle += i;
      nlohmann::json j = {{"type", "step"},
                          {"epoch", 1},
                          {"step", step + 1},
                          {"global_step", step + 1},
                          {"loss", 0.0},
                          {"step_s", maxes[0]},
                          {"compute_s", c},
                          {"comm_s", m},
                          {"comm_overlapped_s", 0.0},
                          {"io_s", 0.0},
                          {"idle_s", i}};
      metrics << j.dump() << '\n';
    }
  }
  const double train_s = seconds_since(t_start);
  if (rank == 0) {
    const double n = static_cast<double>(std::max<long>(cfg.steps, 1));
    const double global_batch = static_cast<double>(cfg.local_batch) * size;
    const double sps = global_batch * static_cast<double>(cfg.steps) / train_s;
    std::vector<double> sorted = step_times;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted.empty() ? 0.0
                          : sorted.size() % 2
                              ? sorted[sorted.size() / 2]
                              : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
    nlohmann::json e = {{"type", "epoch"},    {"epoch", 1},
                        {"steps", cfg.steps}, {"train_loss", 0.0},
                        {"train_acc", 0.0},   {"samples_per_s", sps},
                        {"epoch_s", train_s}, {"compute_s", sum_compute},
                        {"comm_s", sum_comm}, {"comm_overlapped_s", 0.0},
                        {"io_s", 0.0},        {"idle_s", sum_idle}};
    metrics << e.dump() << '\n';
    metrics.close();
    nlohmann::json s = {{"hpcml_version", HPCML_VERSION},
                        {"job", "synthetic"},
                        {"ranks", size},
                        {"threads_per_rank", threads},
                        {"nodes", nodes},
                        {"oversubscribed", layout.oversubscribed},
                        {"hostname", layout.hostname},
                        {"local_batch", cfg.local_batch},
                        {"global_batch", global_batch},
                        {"steps", cfg.steps},
                        {"samples_per_s", sps},
                        {"step_s_median", median},
                        {"compute_s_per_step", sum_compute / n},
                        {"comm_s_per_step", sum_comm / n},
                        {"comm_exposed_s_per_step", sum_comm / n},
                        {"comm_overlapped_s_per_step", 0.0},
                        {"io_s_per_step", 0.0},
                        {"idle_s_per_step", sum_idle / n},
                        {"wall_s", train_s},
                        {"grad_bytes", static_cast<double>(count * sizeof(float))},
                        {"serial_fraction", cfg.serial_fraction},
                        {"work_s", cfg.work_s},
                        {"scaling", cfg.scaling},
                        {"true_parallel_fraction", 1.0 - cfg.serial_fraction}};
    std::ofstream f(run_dir + "/summary.json.tmp");
    f << s.dump(2) << '\n';
    f.close();
    HPCML_REQUIRE(f.good(), Error, run_dir + "/summary.json: write failed");
    std::rename((run_dir + "/summary.json.tmp").c_str(), (run_dir + "/summary.json").c_str());
    std::cout << "  " << cfg.steps << " steps, median " << median << " s per step (model "
              << serial_s + parallel_s << " s), " << sps << " samples/s\n";
  }
  return 0;
}

}  // namespace

void add_bench_synthetic(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "synthetic", "MPI job with a known serial fraction (sleep-based work) for scaling studies");
  auto a = std::make_shared<SyntheticArgs>();
  cmd->add_option("config", a->config, "Optional TOML config ([synthetic], [train], [run])");
  cmd->add_option("--set", a->sets, "Override a config key (repeatable)");
  cmd->add_option("--serial-fraction", a->serial_fraction,
                  "Serial fraction f of one step's work (synthetic.serial_fraction)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--work", a->work_s,
                  "Work W of one step on one element, seconds (synthetic.work_s)")
      ->check(CLI::Range(1e-4, 3600.0));
  cmd->add_option("--steps", a->steps, "Steps (train.max_steps)")->check(CLI::Range(1L, 1000000L));
  cmd->callback([&action, a] { action = [a] { return run_synthetic(*a); }; });
}

}  // namespace hpcml::jobs

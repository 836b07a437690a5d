// `hpcml bench synthetic`: an MPI job with a known parallel fraction for
// validating scaling studies; the workload and its records are
// comm/synthetic.hpp. It writes a run directory in the training format
// (config.toml, metrics.jsonl, summary.json; see docs/run-directory.md).
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/comm/synthetic.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/run_dir.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/launch/environment.hpp"

namespace hpcml::jobs {

namespace {

struct SyntheticArgs {
  std::string config;
  std::vector<std::string> sets;
  std::optional<double> serial_fraction;
  std::optional<double> work_s;
  std::optional<long> steps;
};

std::string toml_double(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  std::string t = os.str();
  if (t.find_first_of(".e") == std::string::npos) t += ".0";
  return t;
}

int run_synthetic(const SyntheticArgs& args) {
  comm::MpiEnvironment env;
  auto world = comm::Communicator::world();
  const int rank = world.rank(), size = world.size();
  ConfigDoc doc;
  comm::SyntheticConfig cfg;
  comm::agree(world, [&] {
    doc = args.config.empty() ? ConfigDoc::parse("", "(no config)") : ConfigDoc::load(args.config);
    for (const auto& s : args.sets) doc.set(s);
    if (args.serial_fraction)
      doc.set("synthetic.serial_fraction=" + toml_double(*args.serial_fraction));
    if (args.work_s) doc.set("synthetic.work_s=" + toml_double(*args.work_s));
    if (args.steps) doc.set("train.max_steps=" + std::to_string(*args.steps));
    cfg = comm::read_synthetic_config(doc);
  });

  auto local = world.split_shared();
  const int nodes = world.node_count();
  const auto layout =
      launch::detect_layout(rank, size, local.rank(), local.size(), nodes, cfg.threads);
  std::string run_dir;
  comm::agree(world, [&] {
    if (rank != 0) return;
    run_dir = create_unique_dir(
        cfg.run_dir, cfg.run_name.empty() ? "synthetic-" + utc_timestamp() : cfg.run_name);
    write_file_atomic(run_dir + "/config.toml",
                      "# effective configuration of this run (defaults filled in)\n# source: " +
                          doc.source() + "\n" + doc.effective_toml());
  });
  run_dir = world.broadcast_string(run_dir, 0);
  const int threads = layout.threads_per_rank;
  std::ofstream metrics;
  if (rank == 0) {
    std::cout << "hpcml " << HPCML_VERSION << " bench synthetic: serial fraction "
              << cfg.serial_fraction << ", work " << cfg.work_s << " s per step (" << cfg.scaling
              << "), " << cfg.steps << " steps, " << size << " rank(s) x " << threads
              << " thread(s) on " << nodes << " node(s)"
              << (layout.oversubscribed ? "  [OVERSUBSCRIBED: ranks x threads > cores]" : "")
              << "\n  run   " << run_dir << "\n"
              << std::flush;
    metrics.open(run_dir + "/metrics.jsonl");
    HPCML_REQUIRE(metrics.good(), Error, run_dir + "/metrics.jsonl: cannot write");
  }
  const auto result = comm::run_synthetic(world, cfg, threads, [&](long step, const auto& s) {
    metrics << comm::synthetic_step_record(step, s) << '\n';
  });
  if (rank == 0) {
    metrics << comm::synthetic_epoch_record(cfg, result, size) << '\n';
    metrics.close();
    HPCML_REQUIRE(metrics.good(), Error, run_dir + "/metrics.jsonl: write failed");
    const comm::SyntheticPlacement where{size, threads, nodes, layout.oversubscribed,
                                         layout.hostname};
    write_file_atomic(run_dir + "/summary.json",
                      comm::synthetic_summary(cfg, result, where, HPCML_VERSION) + "\n");
    std::cout << "  " << cfg.steps << " steps, median " << result.step_s_median()
              << " s per step (model " << result.serial_s + result.parallel_s << " s), "
              << comm::synthetic_samples_per_s(cfg, result, size) << " samples/s\n";
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

// `hpcml train CONFIG [--set key=value ...] [--resume auto|PATH]`: synchronous
// data-parallel training, with checkpoints and resume (docs/checkpoints.md).
#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "commands.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/comm/reducer.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/config_tables.hpp"
#include "hpcml/core/digest.hpp"
#include "hpcml/core/model.hpp"
#include "hpcml/core/optimizer.hpp"
#include "hpcml/core/run_dir.hpp"
#include "hpcml/core/signals.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/core/train_config.hpp"
#include "hpcml/core/trainer.hpp"
#include "hpcml/io/checkpoint.hpp"
#include "hpcml/io/dataset.hpp"
#include "hpcml/io/resume.hpp"
#include "hpcml/kernels/factory.hpp"
#include "hpcml/launch/environment.hpp"

namespace hpcml::jobs {

namespace {

namespace fs = std::filesystem;

std::string default_run_name(const std::string& config_path) {
  std::string name =
      sanitize_file_name(fs::path(config_path).stem().string()) + "-" + utc_timestamp();
  if (const char* job = std::getenv("SLURM_JOB_ID")) name += std::string("-") + job;
  return name;
}

struct OpenedData {
  std::unique_ptr<io::ShardDataset> train, test;  // test: null when not evaluated
  double open_s = 0;                              // opening and verification, seconds
};

// Every rank opens the splits (metadata only); shard verification is spread
// over the ranks: rank r checks shards r, r+R, ... of each split. Collective.
OpenedData open_data(comm::Communicator& world, const TrainConfig& cfg, std::size_t prefetch) {
  OpenedData d;
  const auto t_open = std::chrono::steady_clock::now();
  comm::agree(world, [&] {
    d.train = io::open_dataset(cfg.data.path, cfg.data.train_split, world.get());
    d.train->set_prefetch_depth(prefetch);
    if (cfg.train.evaluate) {
      d.test = io::open_dataset(cfg.data.path, cfg.data.test_split, world.get());
      d.test->set_prefetch_depth(prefetch);
    }
  });
  if (cfg.data.verify) {
    comm::agree(world, [&] {
      for (io::ShardDataset* ds : {d.train.get(), d.test.get()}) {
        if (!ds) continue;
        std::vector<std::size_t> mine;
        for (std::size_t s = static_cast<std::size_t>(world.rank()); s < ds->shard_count();
             s += static_cast<std::size_t>(world.size())) {
          mine.push_back(s);
        }
        ds->verify(mine);
      }
    });
  }
  comm::agree(world, [&] {
    check_batch_layout(cfg, *d.train, world.size());
    // The layers fit the data (an error names the layer), before any rank builds them.
    build_model(cfg.model, d.train->features(), static_cast<std::size_t>(d.train->classes()));
  });
  d.open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_open).count();
  return d;
}

struct TrainArgs {
  std::string config;
  std::vector<std::string> sets;
  std::string resume;  // "", "auto" or a checkpoint file / run directory
};

int run_train(const TrainArgs& args) {
  comm::MpiEnvironment env;
  kernels::BackendRuntime backend_runtime;  // ends Kokkos after the backend, before MPI_Finalize
  auto world = comm::Communicator::world();
  const int rank = world.rank();
  install_stop_signal_handlers();
  std::ostream* out = rank == 0 ? &std::cout : nullptr;

  ConfigDoc doc;
  TrainConfig cfg;
  comm::ReducerOptions reducer_options;
  comm::agree(world, [&] {
    doc = ConfigDoc::load(args.config);
    for (const auto& s : args.sets) doc.set(s);
    cfg = read_train_config(doc);
    reducer_options = comm::read_reducer_options(doc);
    // LARS and LAMB scale each layer by its norms: a rank needs whole tensors,
    // which the sharded update (ranges that cut tensors) does not give.
    if (optimizer_is_layer_wise(cfg.optimizer.name)) reducer_options.sharded_update = false;
    doc.check_unknown(tables_left_to_others(ConfigReader::kTrain, doc));
  });

  auto local = world.split_shared();
  const int nodes = world.node_count();
  auto layout = launch::detect_layout(rank, world.size(), local.rank(), local.size(), nodes,
                                      cfg.parallel.threads);
  std::unique_ptr<Backend> backend;
  comm::agree(world, [&] {
    backend = kernels::make_backend(cfg.parallel.backend, layout.threads_per_rank,
                                    kernels::DevicePlacement{local.rank(), local.size()});
  });

  const auto prefetch =
      choose_prefetch(cfg.data.prefetch, layout.threads_per_rank, layout.hardware_threads,
                      layout.local_size, static_cast<int>(std::thread::hardware_concurrency()));

  const auto data = open_data(world, cfg, prefetch.depth);
  io::ShardDataset& train = *data.train;
  io::ShardDataset* test = data.test.get();

  std::string run_dir, checkpoint_path;
  std::vector<std::string> notes;  // rank 0's warnings and notices
  RunDirLock run_lock;             // rank 0 holds its run directory for the whole run
  comm::agree(world, [&] {
    if (rank != 0) return;
    io::ResumePlan plan = io::plan_resume(cfg, args.resume);
    bool created = false;
    if (plan.run_dir.empty() && args.resume == "auto") {
      // --resume auto starts fresh in exactly run.dir/run.name (a restart must
      // find it there), so two started at once meet at its lock below.
      plan.run_dir = (fs::path(cfg.run.dir) / cfg.run.name).string();
      created = create_dir_if_missing(plan.run_dir);
    }
    if (!plan.run_dir.empty()) {
      // Continuing in an existing directory: nobody else may be writing there.
      // Plan again under the lock (unless this run just made the directory):
      // the run that held it may have saved since.
      run_lock = RunDirLock(plan.run_dir);
      if (!created) {
        const std::string locked = plan.run_dir;
        plan = io::plan_resume(cfg, args.resume);
        HPCML_REQUIRE(plan.run_dir == locked, Error,
                      "run directory " + locked + " changed while it was being locked");
      }
    }
    notes = std::move(plan.notes);
    checkpoint_path = plan.checkpoint;
    // A fresh run gets a new directory; a resumed one (or --resume auto with
    // no checkpoint yet) continues in its own.
    run_dir =
        !plan.run_dir.empty()
            ? plan.run_dir
            : create_unique_dir(
                  cfg.run.dir, cfg.run.name.empty() ? default_run_name(args.config) : cfg.run.name);
    if (!run_lock.held()) run_lock = RunDirLock(run_dir);
  });
  run_dir = world.broadcast_string(run_dir, 0);
  checkpoint_path = world.broadcast_string(checkpoint_path, 0);

  // What this run's checkpoints record, and the checkpoint to continue from
  // (every rank reads it; a bad file is one agreed error naming it).
  io::CheckpointInfo ckpt_info;
  std::optional<io::LoadedCheckpoint> resume_from;
  comm::agree(world, [&] {
    ckpt_info.layers = io::model_layers(cfg, train);
    ckpt_info.dataset_digest = io::manifest_digest(cfg.data.path, cfg.data.train_split);
    const std::string toml = doc.effective_toml();
    ckpt_info.config_hash = digest_string(fnv1a64(toml.data(), toml.size()));
    ckpt_info.run_dir = fs::absolute(run_dir).string();
    ckpt_info.optimizer = cfg.optimizer.name;
    if (!checkpoint_path.empty()) {
      resume_from = io::read_checkpoint(checkpoint_path);
      ckpt_info.restarts = resume_from->info.restarts + 1;
    }
    if (rank == 0) {
      const std::string name = resume_from
                                   ? "config-resume-" + std::to_string(ckpt_info.restarts) + ".toml"
                                   : "config.toml";
      write_file_atomic(run_dir + "/" + name,
                        "# effective configuration of this run (defaults filled in)\n# source: " +
                            doc.source() + "\n" + doc.effective_toml());
    }
  });

  if (out) {
    std::ostringstream os;
    os << "hpcml " << HPCML_VERSION << " train " << args.config << "\n"
       << "  ranks " << world.size() << " on " << nodes << " node(s) x " << layout.threads_per_rank
       << " thread(s) (" << layout.threads_source << "), backend " << backend->name()
       << (layout.oversubscribed ? "  [OVERSUBSCRIBED: ranks x threads > cores]" : "") << "\n"
       << "  data  " << train.describe() << (test ? "; " + test->describe() : "")
       << (cfg.data.verify ? " (verified" : " (not verified") << ", " << std::fixed;
    os.precision(2);
    os << data.open_s << " s); " << prefetch.description << "\n";
    os << "  batch " << cfg.train.batch_size << "/rank"
       << (cfg.train.accumulate > 1
               ? " x " + std::to_string(cfg.train.accumulate) + " accumulated micro-batches"
               : std::string())
       << " (" << static_cast<long long>(cfg.train.batch_size) * cfg.train.accumulate * world.size()
       << " global), " << cfg.train.epochs << " epoch(s)\n"
       << "  run   " << run_dir << "\n";
    *out << os.str() << std::flush;
  }

  // Gradient averaging with fusion buckets, overlap and optional compression.
  comm::GradientReducer reducer(world, reducer_options);
  if (out) *out << "  " << comm::describe(reducer_options, world) << "\n" << std::flush;

  const LaunchFacts facts{layout.threads_per_rank, nodes, layout.oversubscribed, layout.hostname};
  Trainer trainer(cfg, *backend, reducer, train, test, run_dir, out, facts);
  ckpt_info.model = trainer.model().describe();
  ckpt_info.layer_list = !cfg.model.layers.empty();
  if (out) {
    *out << "  model " << trainer.model().describe() << " (" << trainer.model().parameters().size()
         << " parameters)\n";
    *out << "  optim " << cfg.optimizer.name << (cfg.optimizer.nesterov ? " (nesterov)" : "")
         << "; lr " << trainer.lr_schedule().describe() << "\n"
         << std::flush;
  }
  if (resume_from) {
    trainer.set_resume_facts({fs::absolute(resume_from->path).string(), ckpt_info.restarts});
    comm::agree(world, [&] {
      auto more = io::check_resumable(*resume_from, cfg, ckpt_info, trainer.state());
      notes.insert(notes.end(), more.begin(), more.end());
      trainer.restore(resume_from->state.view(),
                      RestoreOptions{.allow_rank_change = true, .allow_schedule_change = true});
    });
  }
  if (out) {
    std::ostringstream os;
    for (const auto& n : notes) os << "hpcml: " << n << "\n";
    if (resume_from) {
      const TrainState& st = trainer.state();
      os << "  resumed from " << resume_from->path << " at step " << st.global_step << " (epoch "
         << st.epoch + 1 << ", step " << st.step_in_epoch << " of " << st.steps_per_epoch
         << "), restart " << ckpt_info.restarts << "; loaded parameters "
         << digest_of(st.parameters) << ", momentum " << digest_of(st.momentum) << "\n";
    }
    *out << os.str() << std::flush;
  }
  resume_from.reset();  // the trainer holds the state now
  // A requeue after the last step: nothing to train, and the summary of the
  // run that finished (with its final evaluation) stays as it is.
  if (const TrainState& st = trainer.state();
      !checkpoint_path.empty() &&
      (st.epoch >= cfg.train.epochs || st.global_step >= st.total_steps)) {
    if (out) {
      *out << "hpcml: notice: the run is already complete at step " << st.global_step
           << "; nothing to train (summary.json is unchanged)\n"
           << std::flush;
    }
    return 0;
  }

  io::CheckpointOptions ckpt_options;
  ckpt_options.every_steps = static_cast<std::size_t>(cfg.checkpoint.every_steps);
  ckpt_options.every_minutes = cfg.checkpoint.every_minutes;
  ckpt_options.keep = cfg.checkpoint.keep;
  ckpt_options.dir = io::checkpoint_dir(cfg, run_dir);
  ckpt_options.async = cfg.checkpoint.async;
  io::Checkpointer checkpointer(
      world.get(), ckpt_options, ckpt_info,
      [&trainer](const CheckpointMetrics& m) { trainer.record_checkpoint(m); });
  trainer.add_hook(checkpointer);
  if (out && world.size() > 1) {
    *out << "  update: "
         << (reducer.sharded()
                 ? "sharded: gradients averaged in node-shared memory, each rank updates 1/" +
                       std::to_string(world.size()) + " of the parameters"
                 : std::string("all-reduce of the gradients, full optimizer step on every rank") +
                       (optimizer_is_layer_wise(cfg.optimizer.name)
                            ? " (" + cfg.optimizer.name + " needs whole layers: no sharded update)"
                            : std::string()))
         << "\n"
         << std::flush;
  }
  TrainSummary s = trainer.run();

  if (out) {
    std::ostringstream os;
    os << std::fixed;
    os.precision(2);
    if (s.final_test_acc >= 0) os << "final test accuracy " << 100 * s.final_test_acc << "%, ";
    os << s.steps << " steps in " << s.wall_s << " s, " << std::setprecision(0) << s.samples_per_s
       << " samples/s; run directory " << run_dir << "\n";
    if (s.stopped_by_signal) {
      os << "stopped early on signal " << s.stop_signal << " after step " << s.steps
         << "; checkpoint " << checkpointer.last_path() << " (continue with --resume auto"
         << (cfg.run.name.empty() ? " and run.name set, or --resume " + run_dir : std::string())
         << ")\n";
    }
    *out << os.str() << std::flush;
  }
  return s.stopped_by_signal ? kExitPreempted : 0;
}

}  // namespace

void add_train(CLI::App& app, Action& action) {
  auto* cmd =
      app.add_subcommand("train", "Train a model data-parallel (run under mpiexec or srun)");
  auto args = std::make_shared<TrainArgs>();
  cmd->add_option("config", args->config, "TOML job configuration")->required();
  cmd->add_option("--set", args->sets, "Override a config key: --set train.epochs=3 (repeatable)");
  cmd->add_option("--resume", args->resume,
                  "Continue a run: 'auto' = the newest valid checkpoint of run.name in run.dir "
                  "(fresh start if none), or a checkpoint file or run directory");
  cmd->callback([&action, args] { action = [args] { return run_train(*args); }; });
}

}  // namespace hpcml::jobs

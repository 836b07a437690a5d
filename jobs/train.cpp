// `hpcml train CONFIG [--set key=value ...] [--resume auto|PATH]`: synchronous
// data-parallel training, with checkpoints and resume (docs/checkpoints.md).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "commands.hpp"
#include "hpcml/comm/mpi.hpp"
#include "hpcml/comm/nccl.hpp"
#include "hpcml/comm/ps.hpp"
#include "hpcml/comm/reducer.hpp"
#include "hpcml/config.hpp"
#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/config_tables.hpp"
#include "hpcml/core/digest.hpp"
#include "hpcml/core/lr_schedule.hpp"
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
#include "hpcml/kernels/cuda.hpp"
#include "hpcml/kernels/factory.hpp"
#include "hpcml/launch/environment.hpp"
#include "layout.hpp"

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
  // The model's tensor sizes, in order: from the one model start-up builds to
  // check the layers against the data (the parameter-server shard plan).
  std::vector<std::size_t> tensor_sizes;
};

// Every rank opens the splits (metadata only); shard verification is spread
// over the readers: reader r checks shards r, r+R, ... of each split.
// Collective over `world`. The readers are world ranks [0, readers) with
// `data_comm` their communicator (the world, or the workers in ps mode); a
// parameter server (data_comm null) opens the splits for their shapes only.
OpenedData open_data(comm::Communicator& world, const TrainConfig& cfg, std::size_t prefetch,
                     MPI_Comm data_comm, int readers) {
  OpenedData d;
  const auto t_open = std::chrono::steady_clock::now();
  auto open = [&](const std::string& split) {
    return data_comm == MPI_COMM_NULL ? io::open_dataset(cfg.data.path, split)
                                      : io::open_dataset(cfg.data.path, split, data_comm);
  };
  comm::agree(world, [&] {
    d.train = open(cfg.data.train_split);
    d.train->set_prefetch_depth(prefetch);
    if (cfg.train.evaluate) {
      d.test = open(cfg.data.test_split);
      d.test->set_prefetch_depth(prefetch);
    }
  });
  if (cfg.data.verify) {
    comm::agree(world, [&] {
      if (world.rank() >= readers) return;
      for (io::ShardDataset* ds : {d.train.get(), d.test.get()}) {
        if (!ds) continue;
        std::vector<std::size_t> mine;
        for (std::size_t s = static_cast<std::size_t>(world.rank()); s < ds->shard_count();
             s += static_cast<std::size_t>(readers)) {
          mine.push_back(s);
        }
        ds->verify(mine);
      }
    });
  }
  comm::agree(world, [&] {
    check_batch_layout(cfg, *d.train, readers);
    // The layers fit the data (an error names the layer), before any rank builds them.
    const Model m =
        build_model(cfg.model, d.train->features(), static_cast<std::size_t>(d.train->classes()));
    for (const auto& t : m.tensors()) d.tensor_sizes.push_back(t.size());
  });
  d.open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_open).count();
  return d;
}

struct TrainArgs {
  std::string config;
  std::vector<std::string> sets;
  std::string resume;  // "", "auto" or a checkpoint file / run directory
};

// Settings parameter-server mode does not take: one line naming the key.
void check_ps_config(const comm::PsOptions& ps, const comm::ReducerOptions& r,
                     const TrainConfig& cfg, const ConfigDoc& doc, const TrainArgs& args,
                     int world_size) {
  if (!ps.ps()) return;
  comm::check_ps_layout(ps, world_size, doc);
  const std::string in_ps = "is not supported with parallel.mode = \"ps\"";
  if (r.compression != comm::Codec::kNone)
    doc.fail("parallel.compression", in_ps +
                                         " (gradients go to the servers uncompressed); use "
                                         "\"none\"");
  if (cfg.parallel.backend == "cuda") doc.fail("parallel.backend", "\"cuda\" " + in_ps + " yet");
  if (r.transport == comm::TransportChoice::kNccl)
    doc.fail("parallel.transport", "\"nccl\" " + in_ps + " (workers and servers talk over MPI)");
  // Checkpoints hold one consistent state: a synchronous run has one between
  // steps, a stale-synchronous one does not (the workers' parameters differ).
  if (ps.staleness == 0) return;
  const std::string no_ssp =
      "checkpoints are not built for stale-synchronous ps (parallel.staleness > 0)";
  if (cfg.checkpoint.every_steps > 0) doc.fail("checkpoint.every_steps", no_ssp + "; set it to 0");
  if (cfg.checkpoint.every_minutes > 0)
    doc.fail("checkpoint.every_minutes", no_ssp + "; set it to 0");
  if (!args.resume.empty()) HPCML_THROW(ConfigError, "--resume: " + no_ssp);
}

// Synchronous ps: the optimizer state lives on the servers. Before the
// checkpointer (the next hook) saves, world rank 0 fetches it into the
// trainer's state, so a ps checkpoint is the file an all-reduce run writes.
class PsStateFetch final : public StepHook {
 public:
  PsStateFetch(comm::PsWorker& worker, const io::CheckpointOptions& o, std::size_t slots)
      : worker_(worker),
        every_steps_(o.every_steps),
        minutes_(o.every_minutes > 0),
        slots_(slots) {}
  void after_step(const TrainState& state) override {
    if (every_steps_ > 0 && state.global_step % every_steps_ == 0) fetch(state);
  }
  void on_request(const TrainState& state) override {
    if (minutes_) fetch(state);
  }
  void after_training(const TrainState& state, const TrainSummary&) override { fetch(state); }

 private:
  void fetch(const TrainState& state) {
    if (worker_.rank() == 0) worker_.fetch_optimizer_state(state.momentum, slots_);
  }
  comm::PsWorker& worker_;
  std::size_t every_steps_;
  bool minutes_;
  std::size_t slots_;
};

// A parameter server: its shard of the model (the same initial values as the
// workers': built and initialised from the seed), the optimizer and the
// learning-rate schedule of the workers' run.
int run_ps_server(comm::PsGroup& group, const std::vector<std::size_t>& bounds,
                  const TrainConfig& cfg, const io::ShardDataset& train, Backend& backend,
                  const TrainState* resume) {
  Model model = build_model(cfg.model, train.features(), static_cast<std::size_t>(train.classes()));
  model.init(cfg.train.seed);
  auto optimizer = make_optimizer(cfg.optimizer, model);
  const std::size_t local = static_cast<std::size_t>(cfg.train.batch_size) *
                            static_cast<std::size_t>(cfg.train.accumulate);
  const std::size_t spe = steps_per_epoch(train.samples(), group.workers(), local);
  std::size_t total = spe * static_cast<std::size_t>(cfg.train.epochs);
  if (cfg.train.max_steps > 0)
    total = std::min(total, static_cast<std::size_t>(cfg.train.max_steps));
  const LrSchedule schedule(cfg.optimizer, local * static_cast<std::size_t>(group.workers()), spe,
                            total);
  comm::run_server(
      group, bounds,
      comm::PsShard{model, *optimizer, schedule, backend, optimizer->layer_wise(), resume});
  return 0;
}

// World rank 0 after a ps run: the servers' step records to <run>/ps.jsonl,
// and mode, servers, staleness and the PS timings into summary.json.
void write_ps_results(const std::string& run_dir, const comm::PsOptions& ps, int world_size,
                      const std::vector<std::vector<comm::PsStepRecord>>& servers,
                      const double worker_totals[3], std::size_t first_step) {
  using nlohmann::json;
  std::string lines;
  double wait = 0, push = 0, update = 0, pull = 0, stale_sum = 0, replies = 0;
  int stale_max = 0;
  std::size_t steps = 0;
  for (std::size_t k = 0; k < servers.size(); ++k) {
    steps = std::max(steps, servers[k].size());
    for (std::size_t t = 0; t < servers[k].size(); ++t) {
      const comm::PsStepRecord& r = servers[k][t];
      wait += r.wait_s;
      push += r.push_s;
      update += r.update_s;
      pull += r.pull_s;
      stale_sum += r.staleness_sum;
      replies += r.replies;
      stale_max = std::max(stale_max, r.staleness_max);
      json j{{"type", "ps_step"},
             {"global_step", first_step + t + 1},
             {"server", k},
             {"wait_s", r.wait_s},
             {"push_s", r.push_s},
             {"update_s", r.update_s},
             {"pull_s", r.pull_s},
             {"staleness_max", r.staleness_max},
             {"staleness_mean", r.replies > 0 ? r.staleness_sum / r.replies : 0.0}};
      lines += j.dump() + "\n";
    }
  }
  // A resumed run appends, as metrics.jsonl does.
  const std::string ps_path = run_dir + "/ps.jsonl";
  if (first_step > 0) {
    std::ifstream in(ps_path);
    std::ostringstream before;
    if (in) before << in.rdbuf();
    lines = before.str() + lines;
  }
  write_file_atomic(ps_path, lines);
  const double per = static_cast<double>(std::max<std::size_t>(steps, 1)) *
                     static_cast<double>(std::max<std::size_t>(servers.size(), 1));
  const double worker_steps = std::max(worker_totals[2], 1.0);
  const std::string path = run_dir + "/summary.json";
  json summary;
  {
    std::ifstream in(path);
    HPCML_REQUIRE(in, Error, "cannot read " + path + " to add the parameter-server figures");
    summary = json::parse(in);
  }
  summary["mode"] = "ps";
  summary["servers"] = ps.servers;
  summary["workers"] = world_size - ps.servers;
  summary["world_ranks"] = world_size;
  summary["staleness"] = ps.staleness;
  summary["ps"] = {{"server_wait_s_per_step", wait / per},
                   {"server_push_s_per_step", push / per},
                   {"server_update_s_per_step", update / per},
                   {"server_pull_s_per_step", pull / per},
                   {"staleness_max", stale_max},
                   {"staleness_mean", replies > 0 ? stale_sum / replies : 0.0},
                   {"worker_push_s_per_step", worker_totals[0] / worker_steps},
                   {"worker_pull_s_per_step", worker_totals[1] / worker_steps}};
  write_file_atomic(path, summary.dump(2) + "\n");
}

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
  comm::PsOptions ps;
  std::vector<std::string> ps_notes;
  comm::agree(world, [&] {
    doc = ConfigDoc::load(args.config);
    for (const auto& s : args.sets) doc.set(s);
    cfg = read_train_config(doc);
    reducer_options = comm::read_reducer_options(doc);
    // LARS and LAMB scale each layer by its norms: a rank needs whole tensors,
    // which the sharded update (ranges that cut tensors) does not give.
    if (optimizer_is_layer_wise(cfg.optimizer.name)) reducer_options.sharded_update = false;
    ps = comm::read_ps_options(doc);
    check_ps_config(ps, reducer_options, cfg, doc, args, world.size());
    // parallel.sharded_update = false means nothing here (the servers hold
    // the shards): a notice, as the default config sets the key to true.
    if (ps.ps() && !reducer_options.sharded_update && doc.has("parallel.sharded_update") &&
        !optimizer_is_layer_wise(cfg.optimizer.name)) {
      ps_notes.push_back(
          "notice: parallel.sharded_update = false has no effect with parallel.mode = \"ps\" "
          "(the servers hold the shards and update them)");
    }
    doc.check_unknown(tables_left_to_others(ConfigReader::kTrain, doc));
  });

  // parallel.transport: decided (or refused, one line, every rank exits
  // non-zero) here, before any data is opened.
  comm::Transport transport = comm::Transport::kMpi;
  comm::NcclOptions nccl_options;
  comm::agree(world, [&] {
    transport = comm::choose_transport(reducer_options.transport, cfg.parallel.backend,
                                       reducer_options.compression, &doc);
    if (transport != comm::Transport::kNccl) return;
    // The table as GradientReducer reads it: defaults < config < environment.
    nccl_options.thresholds = comm::effective_thresholds(reducer_options);
    nccl_options.codec = reducer_options.compression;
    nccl_options.fusion_mb = reducer_options.fusion_mb;
    nccl_options.stall_timeout_s = reducer_options.stall_timeout_s;
    nccl_options.emulate_node_size = world.options().emulate_node_size;
  });

  auto local = world.split_shared();
  const int nodes = world.node_count();
  auto layout = launch::detect_layout(rank, world.size(), local.rank(), local.size(), nodes,
                                      cfg.parallel.threads);
  std::unique_ptr<Backend> backend;
  comm::agree(world, [&] {
    backend = kernels::make_backend(
        cfg.parallel.backend, layout.threads_per_rank,
        kernels::DevicePlacement{local.rank(), local.size(), cfg.parallel.gpu_sharing});
    backend->set_gemm_precision(gemm_precision(cfg.train));
  });
  // A device backend's buffers are not node-shared memory: no sharded update.
  const bool device_backend = backend->memory_space() == MemorySpace::kDevice;
  if (device_backend) reducer_options.sharded_update = false;

  const auto prefetch =
      choose_prefetch(cfg.data.prefetch, layout.threads_per_rank, layout.hardware_threads,
                      layout.local_size, static_cast<int>(std::thread::hardware_concurrency()));

  // PS mode: the last parallel.servers ranks serve, the others train.
  std::optional<comm::PsGroup> ps_group;
  if (ps.ps()) {
    double stall_s = reducer_options.stall_timeout_s;  // the expert override too, as the reducer
    if (std::getenv("HPCML_STALL_TIMEOUT_S"))
      stall_s = comm::CommOptions::from_environment().stall_timeout_s;
    ps_group.emplace(world, ps, stall_s);
  }
  const bool server = ps_group && ps_group->is_server();
  const int readers = ps_group ? ps_group->workers() : world.size();
  const auto data = open_data(
      world, cfg, prefetch.depth,
      !ps_group ? world.get() : (server ? MPI_COMM_NULL : ps_group->worker_comm().get()), readers);
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
    notes.insert(notes.end(), ps_notes.begin(), ps_notes.end());
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
       << " (" << static_cast<long long>(cfg.train.batch_size) * cfg.train.accumulate * readers
       << " global), " << cfg.train.epochs << " epoch(s)\n"
       << "  mode  " << comm::describe(ps, world.size()) << "\n"
       << "  run   " << run_dir << "\n";
    *out << os.str() << std::flush;
  }

  {
    LayoutReportOptions lo;
    lo.indent = "  ";
    lo.with_gpu = transport == comm::Transport::kNccl || cfg.parallel.backend == "cuda";
    lo.transport =
        comm::describe_transport_by_size(world, transport, reducer_options.algo, &nccl_options);
    const std::string report = layout_report(world, layout, lo);
    if (out) *out << report << std::flush;
  }

  // PS mode: shards of whole tensors, one per server; a server runs its loop
  // instead of the trainer.
  std::vector<std::size_t> bounds;
  if (ps_group) {
    comm::agree(world, [&] { bounds = comm::plan_shards(data.tensor_sizes, ps.servers); });
    if (server) {
      // The workers' setup agreements (making the trainer; the resume), then the loop.
      comm::agree(world, [] {});
      if (resume_from) comm::agree(world, [] {});
      const TrainState* resume = resume_from ? &resume_from->state.view() : nullptr;
      return run_ps_server(*ps_group, bounds, cfg, train, *backend, resume);
    }
  }

  // Gradient averaging: in ps mode pushes to and pulls from the servers; else
  // NCCL on GPU buffers (parallel.transport), or MPI with fusion buckets,
  // overlap and optional compression.
  std::unique_ptr<comm::GradientReducer> mpi_reducer;
  std::unique_ptr<Collectives> nccl_reducer;
  std::unique_ptr<comm::PsWorker> ps_worker;
  Collectives* collectives = nullptr;
  if (ps_group) {
    ps_worker = std::make_unique<comm::PsWorker>(*ps_group, bounds);
    collectives = ps_worker.get();
    if (out) {
      std::ostringstream os;
      os << "  comm: parameter server: shards of";
      for (std::size_t k = 0; k + 1 < bounds.size(); ++k)
        os << (k ? "," : "") << " " << bounds[k + 1] - bounds[k];
      os << " parameters; stall_timeout_s=" << ps_group->stall_timeout_s() << "\n";
      *out << os.str() << std::flush;
    }
  } else if (transport == comm::Transport::kNccl) {
    // Buckets wait for the cuda backend's compute stream (events recorded
    // there); a host backend's buffers are staged (docs/communication.md).
    if (cfg.parallel.backend == "cuda")
      nccl_options.compute_stream = kernels::cuda_compute_stream(*backend);
    comm::agree(world, [&] {
      nccl_options.device = nccl_device(local, backend.get());
      nccl_reducer = comm::make_nccl_collectives(world, local, nccl_options);
    });
    collectives = nccl_reducer.get();
    if (out)
      *out << "  comm: transport=nccl fusion_mb=" << nccl_options.fusion_mb
           << " compression=" << comm::to_string(nccl_options.codec)
           << " stall_timeout_s=" << nccl_options.stall_timeout_s << " nccl_multinode_algo="
           << comm::to_string(nccl_options.thresholds.nccl_multinode_algo)
           << " nccl_hierarchical_max_bytes=" << nccl_options.thresholds.nccl_hierarchical_max_bytes
           << "\n"
           << std::flush;
  } else {
    mpi_reducer = std::make_unique<comm::GradientReducer>(world, reducer_options);
    collectives = mpi_reducer.get();
    if (out) *out << "  " << comm::describe(reducer_options, world) << "\n" << std::flush;
  }

  const LaunchFacts facts{layout.threads_per_rank, nodes, layout.oversubscribed, layout.hostname};
  std::optional<Trainer> made;
  auto make_trainer = [&] {
    made.emplace(cfg, *backend, *collectives, train, test, run_dir, out, facts);
  };
  // In ps mode the servers wait in this agreement, so a failure here ends them too.
  if (ps_group)
    comm::agree(world, make_trainer);
  else
    make_trainer();
  Trainer& trainer = *made;
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
    if (ps_worker) {  // the servers end their loop, with nothing to record
      ps_worker->done();
      if (rank == 0) (void)comm::collect_server_records(*ps_group);
    }
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
  // PS mode: the workers checkpoint (rank 0 writes), with the servers'
  // optimizer state fetched first; a stale-synchronous run keeps none.
  std::optional<io::Checkpointer> checkpointer;
  std::optional<PsStateFetch> ps_fetch;
  const std::size_t first_step = trainer.state().global_step;
  if (!ps_group || ps.staleness == 0) {
    if (ps_worker) {
      ps_fetch.emplace(*ps_worker, ckpt_options, optimizer_slots(cfg.optimizer.name));
      trainer.add_hook(*ps_fetch);
    }
    checkpointer.emplace(ps_group ? ps_group->worker_comm().get() : world.get(), ckpt_options,
                         ckpt_info,
                         [&trainer](const CheckpointMetrics& m) { trainer.record_checkpoint(m); });
    trainer.add_hook(*checkpointer);
  }
  if (out && ps_group) {
    *out << "  update: on the " << ps.servers << " parameter server(s), "
         << (ps.staleness == 0
                 ? "synchronous (the mean of all workers' gradients per step)"
                 : "stale-synchronous (each worker's gradient applied as it arrives at 1/" +
                       std::to_string(readers) + " of the rate, at most " +
                       std::to_string(ps.staleness) + " step(s) stale)")
         << "\n"
         << std::flush;
  } else if (out && world.size() > 1) {
    *out << "  update: "
         << (mpi_reducer && mpi_reducer->sharded()
                 ? "sharded: gradients averaged in node-shared memory, each rank updates 1/" +
                       std::to_string(world.size()) + " of the parameters"
                 : std::string("all-reduce of the gradients, full optimizer step on every rank") +
                       (optimizer_is_layer_wise(cfg.optimizer.name)
                            ? " (" + cfg.optimizer.name + " needs whole layers: no sharded update)"
                        : device_backend
                            ? " (" + backend->name() + " backend: device memory, no sharded update)"
                            : std::string()))
         << "\n"
         << std::flush;
  }
  TrainSummary s = trainer.run();
  if (ps_worker) {
    ps_worker->done();
    double totals[3] = {ps_worker->push_s(), ps_worker->pull_s(),
                        static_cast<double>(ps_worker->steps())};
    ps_worker->sum(totals);
    if (rank == 0) {
      const auto records = comm::collect_server_records(*ps_group);
      write_ps_results(run_dir, ps, world.size(), records, totals, first_step);
    }
  }

  if (out) {
    std::ostringstream os;
    os << std::fixed;
    os.precision(2);
    if (s.final_test_acc >= 0) os << "final test accuracy " << 100 * s.final_test_acc << "%, ";
    os << s.steps << " steps in " << s.wall_s << " s, " << std::setprecision(0) << s.samples_per_s
       << " samples/s; run directory " << run_dir << "\n";
    if (s.stopped_by_signal) {
      os << "stopped early on signal " << s.stop_signal << " after step " << s.steps
         << (checkpointer
                 ? "; checkpoint " + checkpointer->last_path() + " (continue with --resume auto" +
                       (cfg.run.name.empty() ? " and run.name set, or --resume " + run_dir
                                             : std::string()) +
                       ")"
                 : std::string("; stale-synchronous ps runs keep no checkpoint"))
         << "\n";
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

#include "hpcml/core/trainer.hpp"

#include "hpcml/core/random.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "hpcml/core/digest.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/signals.hpp"

namespace hpcml {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Rows [k*rows/K, (k+1)*rows/K) of `batch` into `micro` (micro-batch k of K).
void take_micro_batch(const Batch& batch, std::size_t k, std::size_t parts, Batch& micro) {
  const std::size_t lo = k * batch.rows / parts, hi = (k + 1) * batch.rows / parts;
  micro.rows = hi - lo;
  micro.cols = batch.cols;
  micro.x.assign(batch.x.begin() + static_cast<std::ptrdiff_t>(lo * batch.cols),
                 batch.x.begin() + static_cast<std::ptrdiff_t>(hi * batch.cols));
  micro.y.assign(batch.y.begin() + static_cast<std::ptrdiff_t>(lo),
                 batch.y.begin() + static_cast<std::ptrdiff_t>(hi));
}

}  // namespace

// Dropout masks depend on the run's seed, the step, the rank and the
// micro-batch only: a resumed run draws the same masks.
std::uint64_t Trainer::dropout_seed(std::size_t micro_batch) const {
  SplitMix64 mix(state_.seed ^ (0xd1b54a32d192ed03ULL * (state_.global_step + 1)));
  mix.next();
  return mix.next() ^ (static_cast<std::uint64_t>(comm_.rank()) << 40) ^
         (static_cast<std::uint64_t>(micro_batch) << 20);
}

void check_batch_layout(const TrainConfig& config, const Dataset& train, int ranks) {
  const std::size_t b = static_cast<std::size_t>(config.train.batch_size) *
                        static_cast<std::size_t>(config.train.accumulate);
  const std::size_t global_batch = b * static_cast<std::size_t>(ranks);
  if (steps_per_epoch(train.samples(), ranks, b) == 0) {
    const std::string acc =
        config.train.accumulate > 1
            ? " x " + std::to_string(config.train.accumulate) + " accumulated micro-batches"
            : std::string();
    HPCML_THROW(ConfigError, "train.batch_size: " + std::to_string(config.train.batch_size) +
                                 " per rank" + acc + " x " + std::to_string(ranks) +
                                 " ranks = " + std::to_string(global_batch) + " exceeds the " +
                                 std::to_string(train.samples()) + " samples of " +
                                 train.describe());
  }
}

Trainer::Trainer(const TrainConfig& config, Backend& backend, Collectives& comm, Dataset& train,
                 Dataset* test)
    : config_(config),
      backend_(backend),
      comm_(comm),
      train_(train),
      test_(test),
      model_(
          build_model(config.model, train.features(), static_cast<std::size_t>(train.classes()))) {
  if (test_) {
    HPCML_REQUIRE(test_->features() == train_.features() && test_->classes() == train_.classes(),
                  DataError,
                  "test split (" + test_->describe() + ") does not match the train split (" +
                      train_.describe() + ") in features or classes");
  }
  // Parameters, gradients, activations and the optimizer's state in the
  // backend's memory.
  model_.bind(backend_);
  optimizer_ = make_optimizer(config_.optimizer, model_);
  device_ = backend_.memory_space() == MemorySpace::kDevice;
  stage_ = device_ && !comm_.accepts_device_memory();
  loss_scaling_ = config_.train.precision == "fp16";
  model_.init(config_.train.seed);
  const std::size_t n = model_.parameters().size();
  if (!device_) {  // node-shared storage is host memory
    if (auto storage = comm_.gradient_storage(n); !storage.empty())
      model_.use_gradient_storage(storage);
    if (auto storage = comm_.parameter_storage(n); !storage.empty())
      model_.use_parameter_storage(storage);
  }
  // Identical by construction; the broadcast makes it a guarantee.
  if (stage_) {
    HostArray<float> staged(backend_, n);
    model_.copy_parameters_to_host(staged.span());
    comm_.broadcast(staged.span(), 0);
    model_.load_parameters(staged.span());
    host_grads_ = HostArray<float>(backend_, n);
  } else {
    comm_.broadcast(model_.parameters(), 0);
  }
  grads_ = model_.gradient_buffers();
  if (stage_) {
    for (const TensorView& t : model_.tensors())
      comm_grads_.emplace_back(host_grads_.data() + t.offset, t.size());
  } else {
    comm_grads_ = grads_;
  }

  TrainState& s = state_;
  if (device_) {
    host_params_.resize(n);
    host_momentum_.resize(optimizer_->state().size());
    s.parameters = host_params_;
    s.momentum = host_momentum_;
    sync_state_to_host();
  } else {
    s.parameters = model_.parameters();
    s.momentum = optimizer_->state();
  }
  if (loss_scaling_) s.loss_scale = config_.train.loss_scale;
  s.seed = config_.train.seed;
  s.ranks = comm_.size();
  // Rows a rank takes per optimizer step: accumulate micro-batches of batch_size.
  s.local_batch = static_cast<std::size_t>(config_.train.batch_size) *
                  static_cast<std::size_t>(config_.train.accumulate);
  if (config_.train.accumulate > 1) accumulated_ = BackendArray<float>(model_.memory(), n);
  s.steps_per_epoch = steps_per_epoch(train_.samples(), s.ranks, s.local_batch);
  s.total_steps = s.steps_per_epoch * static_cast<std::size_t>(config_.train.epochs);
  if (config_.train.max_steps > 0)
    s.total_steps = std::min(s.total_steps, static_cast<std::size_t>(config_.train.max_steps));
  lr_schedule_.emplace(config_.optimizer, s.local_batch * static_cast<std::size_t>(s.ranks),
                       s.steps_per_epoch, s.total_steps);
  s.warmup_steps = lr_schedule_->warmup_steps();
}

Trainer::Trainer(const TrainConfig& config, Backend& backend, Collectives& comm, Dataset& train,
                 Dataset* test, std::string run_dir, std::ostream* out, LaunchFacts facts)
    : Trainer(config, backend, comm, train, test) {
  run_dir_ = std::move(run_dir);
  out_ = out;
  facts_ = std::move(facts);
}

void Trainer::add_sink(std::unique_ptr<MetricsSink> sink) { sinks_.push_back(std::move(sink)); }

void Trainer::add_hook(StepHook& hook) { hooks_.push_back(&hook); }

void Trainer::restore(const TrainState& in, RestoreOptions options) {
  const TrainState& s = state_;
  auto check = [](const char* what, auto saved, auto here) {
    if (saved != here) {
      HPCML_THROW(ConfigError, std::string("restore: the state was saved with ") + what + " " +
                                   std::to_string(saved) + ", this run has " +
                                   std::to_string(here));
    }
  };
  check("train.seed", in.seed, s.seed);
  if (options.allow_rank_change) {
    check("a global batch (train.batch_size x ranks) of",
          in.local_batch * static_cast<std::size_t>(in.ranks),
          s.local_batch * static_cast<std::size_t>(s.ranks));
  } else {
    check("ranks", in.ranks, s.ranks);
    check("train.batch_size", in.local_batch, s.local_batch);
  }
  check("steps per epoch", in.steps_per_epoch, s.steps_per_epoch);
  if (!options.allow_schedule_change)
    check("a learning-rate schedule of total steps", in.total_steps, s.total_steps);
  check("warmup steps", in.warmup_steps, s.warmup_steps);
  HPCML_REQUIRE(
      in.parameters.size() == s.parameters.size() && in.momentum.size() == s.momentum.size(), Error,
      "restore: the state holds " + std::to_string(in.parameters.size()) + " parameters and " +
          std::to_string(in.momentum.size()) + " momentum values, the model has " +
          std::to_string(s.parameters.size()));
  HPCML_REQUIRE(in.epoch >= 0 && in.step_in_epoch <= s.steps_per_epoch &&
                    in.global_step ==
                        static_cast<std::size_t>(in.epoch) * s.steps_per_epoch + in.step_in_epoch,
                Error,
                "restore: inconsistent position (step " + std::to_string(in.global_step) +
                    ", epoch " + std::to_string(in.epoch) + ", step in epoch " +
                    std::to_string(in.step_in_epoch) + ")");
  if (in.parameters.data() != s.parameters.data())
    std::copy(in.parameters.begin(), in.parameters.end(), state_.parameters.begin());
  if (in.momentum.data() != s.momentum.data())
    std::copy(in.momentum.begin(), in.momentum.end(), state_.momentum.begin());
  if (device_) {  // the mirrors into the device buffers
    model_.load_parameters(state_.parameters);
    optimizer_->load_state(state_.momentum);
  }
  if (loss_scaling_ && in.loss_scale > 0) {
    state_.loss_scale = in.loss_scale;
    state_.loss_scale_good_steps = in.loss_scale_good_steps;
    state_.skipped_steps = in.skipped_steps;
  }
  state_.momentum_ranges.clear();
  state_.global_step = in.global_step;
  state_.epoch = in.epoch;
  state_.step_in_epoch = in.step_in_epoch;
  // The last step of an epoch: continue with the next one (its evaluation
  // and epoch line belong to the run that took the step).
  if (state_.step_in_epoch == s.steps_per_epoch) {
    ++state_.epoch;
    state_.step_in_epoch = 0;
  }
}

void Trainer::record_checkpoint(const CheckpointMetrics& metrics) {
  if (comm_.rank() != 0) return;
  for (auto& sink : sinks_) sink->checkpoint(metrics);
}

Trainer::Evaluation Trainer::evaluate() {
  auto [begin, end] = block_range(test_->samples(), comm_.rank(), comm_.size());
  std::vector<std::size_t> idx(end - begin);
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = begin + i;
  double local[3] = {0, 0, static_cast<double>(idx.size())};
  // Every rank reads, even with no rows: a dataset may read collectively.
  {
    auto reader = test_->read(std::move(idx), 1024);
    Batch b;
    while (reader->next(b)) {
      BatchResult r = model_.evaluate(backend_, b);
      local[0] += r.loss_sum;
      local[1] += static_cast<double>(r.correct);
    }
  }
  comm_.sum(local);
  Evaluation e;
  if (local[2] > 0) {
    e.loss = local[0] / local[2];
    e.accuracy = local[1] / local[2];
  }
  return e;
}

RunInfo Trainer::run_info() const {
  RunInfo i;
  i.ranks = state_.ranks;
  i.backend = backend_.name();
  i.local_batch = state_.local_batch;
  i.global_batch = state_.local_batch * static_cast<std::size_t>(state_.ranks);
  i.samples = train_.samples();
  i.steps_per_epoch = state_.steps_per_epoch;
  i.train_flops_per_sample = model_.train_flops_per_sample();
  i.parameters = model_.parameters().size();
  return i;
}

void Trainer::sync_state_to_host() {
  if (!device_) return;
  model_.copy_parameters_to_host(host_params_);
  optimizer_->copy_state_to_host(host_momentum_);
}

void Trainer::copy_back(std::span<const std::size_t> tensors) {
  // One copy per run of tensors adjacent in the flat buffer (a fusion bucket's
  // tensors are): as few copies as the whole-buffer copy-back when one group
  // names every tensor.
  std::vector<std::pair<std::size_t, std::size_t>> runs;  // [offset, end) in floats
  for (const std::size_t i : tensors) {
    const TensorView& t = model_.tensors()[i];
    runs.emplace_back(t.offset, t.offset + t.size());
  }
  std::sort(runs.begin(), runs.end());
  const auto g = model_.gradients();
  for (std::size_t k = 0; k < runs.size();) {
    const std::size_t lo = runs[k].first;
    std::size_t hi = runs[k].second;
    while (++k < runs.size() && runs[k].first == hi) hi = runs[k].second;
    backend_.copy_from_host(g.data() + lo, host_grads_.data() + lo, (hi - lo) * sizeof(float));
  }
}

void Trainer::apply_update(double lr) {
  if (!loss_scaling_) {
    optimizer_->step(backend_, lr, state_.global_step + 1);
    return;
  }
  const auto g = model_.gradients();
  const double scale = state_.loss_scale;
  // One reduction; its scalar is the only thing that comes back.
  if (!std::isfinite(backend_.sum_squares(g.data(), g.size()))) {
    ++state_.skipped_steps;  // inf/NaN: no update, a smaller scale
    state_.loss_scale = std::max(scale / 2, 0x1p-24);
    state_.loss_scale_good_steps = 0;
    return;
  }
  backend_.scale(g.data(), g.size(), static_cast<float>(1.0 / scale));
  optimizer_->step(backend_, lr, state_.global_step + 1);
  if (++state_.loss_scale_good_steps >= static_cast<std::size_t>(config_.train.loss_scale_window)) {
    state_.loss_scale = scale * 2;
    state_.loss_scale_good_steps = 0;
  }
}

StepRecord Trainer::train_step(BatchReader& reader, Batch& batch, BatchResult& r, bool have_batch,
                               Batch* ahead, bool* ahead_read) {
  timer_.begin_step();
  auto read = [&](Batch& into, std::size_t step) {
    if (!timer_.measure(Phase::kIo, [&] { return reader.next(into); })) {
      HPCML_THROW(DataError, "rank " + std::to_string(comm_.rank()) + ": the reader of " +
                                 train_.describe() + " ended early at step " +
                                 std::to_string(step));
    }
  };
  if (!have_batch) read(batch, state_.step_in_epoch);
  if (ahead_read) *ahead_read = false;
  // Device backends: the next batch of this epoch starts its way to the device
  // (copy stream) now, while this step computes.
  if (ahead && state_.step_in_epoch + 1 < state_.steps_per_epoch &&
      state_.global_step + 1 < state_.total_steps) {
    read(*ahead, state_.step_in_epoch + 1);
    timer_.measure(Phase::kIo, [&] { backend_.prefetch_batch(*ahead); });
    if (ahead_read) *ahead_read = true;
  }
  // Gradient accumulation: the first K-1 micro-batches' gradients are summed
  // locally; communication starts only in the last one's backprop.
  // fp16: the loss gradient times the loss scale (undone in apply_update).
  const double loss_scale = state_.loss_scale;
  const float grad_scale = loss_scaling_
                               ? static_cast<float>(loss_scale) / static_cast<float>(batch.rows)
                               : 1.0f / static_cast<float>(batch.rows);
  const std::size_t micro_batches = static_cast<std::size_t>(config_.train.accumulate);
  Batch* last = &batch;
  r = BatchResult{};
  if (micro_batches > 1) {
    timer_.measure(Phase::kCompute, [&] {
      for (std::size_t k = 0; k < micro_batches; ++k) {
        take_micro_batch(batch, k, micro_batches, micro_);
        if (k + 1 == micro_batches) break;
        model_.set_dropout_seed(dropout_seed(k));
        const BatchResult part = model_.train_batch(backend_, micro_, grad_scale);
        r.loss_sum += part.loss_sum;
        r.correct += part.correct;
        r.rows += part.rows;
        const auto g = model_.gradients();
        if (k == 0)
          backend_.copy(accumulated_.data(), g.data(), g.size_bytes());
        else
          backend_.axpy(accumulated_.data(), g.data(), g.size(), 1.0f);
      }
    });
    last = &micro_;
  }
  // Compute and communication interleave during backprop: time spent inside
  // the comm hooks counts as communication, the rest as compute.
  timer_.measure(Phase::kComm, [&] { comm_.begin_gradients(comm_grads_); });
  model_.set_dropout_seed(dropout_seed(micro_batches - 1));
  double lr = 0;
  timer_.measure(Phase::kCompute, [&] {
    const BatchResult part = model_.train_batch(backend_, *last, grad_scale, [&](std::size_t i) {
      if (micro_batches > 1) {  // the tensor's gradient is final: add the other micro-batches'
        const TensorView& t = model_.tensors()[i];
        backend_.axpy(grads_[i].data(), accumulated_.data() + t.offset, t.size(), 1.0f);
      }
      timer_.measure(Phase::kComm, [&] {
        if (stage_) {  // the comm layer reduces the host copy
          backend_.copy_to_host(comm_grads_[i].data(), grads_[i].data(), grads_[i].size_bytes());
        }
        comm_.gradient_ready(i);
      });
    });
    r.loss_sum += part.loss_sum;
    r.correct += part.correct;
    r.rows += part.rows;
    lr = lr_schedule_->lr(state_.global_step);
  });
  // Sharded: the comm layer calls the update for this rank's ranges in
  // between reducing and exchanging; that time counts as compute.
  // Not with a device backend (its buffers are not node-shared memory) nor
  // with loss scaling (which checks all gradients): the full update.
  // Otherwise, without loss scaling and with parallel.overlap_update, the
  // update of each fusion bucket's tensors as soon as its means are final
  // (finish_gradients_each), while later buckets are still being reduced:
  // waiting counts as communication, the updates as compute. Loss scaling
  // must see every gradient before any update: the whole update at the end.
  owned_ranges_.clear();
  const bool try_sharded = !device_ && !loss_scaling_;
  const bool per_bucket = !loss_scaling_ && config_.parallel.overlap_update;
  enum class Finish { kSharded, kUpdated, kAveraged };
  const Finish finish = timer_.measure(Phase::kComm, [&] {
    const bool done =
        try_sharded &&
        comm_.finish_gradients_sharded([&](std::size_t lo, std::size_t hi, const float* mean) {
          // The same range in every slot of the optimizer's state.
          const std::size_t n = model_.parameters().size();
          for (std::size_t k = 0; k < optimizer_->slots(); ++k)
            owned_ranges_.emplace_back(lo + k * n, hi + k * n);
          timer_.measure(Phase::kCompute, [&] {
            optimizer_->step_range(backend_, lr, state_.global_step + 1, lo, hi, mean);
          });
        });
    if (done) return Finish::kSharded;
    if (per_bucket) {
      comm_.finish_gradients_each([&](std::span<const std::size_t> tensors) {
        if (stage_) copy_back(tensors);
        timer_.measure(Phase::kCompute, [&] {
          optimizer_->step_tensors(backend_, lr, state_.global_step + 1, tensors);
        });
      });
      return Finish::kUpdated;
    }
    comm_.finish_gradients();
    if (stage_) {  // the averages back into the device buffers
      const auto g = model_.gradients();
      backend_.copy_from_host(g.data(), host_grads_.data(), g.size_bytes());
    }
    return Finish::kAveraged;
  });
  if (finish == Finish::kSharded) {
    state_.momentum_ranges.swap(owned_ranges_);
  } else if (finish == Finish::kUpdated) {
    state_.momentum_ranges.clear();
  } else {
    state_.momentum_ranges.clear();
    if (loss_scaling_) scale_records_.emplace_back(loss_scale, 0);
    timer_.measure(Phase::kCompute, [&] { apply_update(lr); });
    if (loss_scaling_) scale_records_.back().second = state_.skipped_steps;
  }
  StepRecord rec;
  rec.step_s = timer_.step_seconds();
  rec.compute_s = timer_.seconds(Phase::kCompute);
  rec.comm_s = timer_.seconds(Phase::kComm);
  rec.io_s = timer_.seconds(Phase::kIo);
  rec.comm_overlapped_s = comm_.last_gradient_stats().overlapped_s;
  rec.loss = r.loss_sum / static_cast<double>(r.rows);
  return rec;
}

// Ranks agree on stopping at the same step: every rank polls the signal flag
// every 8 steps and they take the maximum. The same all-reduce carries the
// signal number (the largest wins: a job where only one rank got SIGTERM
// names it on rank 0) and the hooks' requests (StepHook::request).
Trainer::Agreement Trainer::agree_at_step() {
  if (state_.global_step % 8 != 0) return {};
  bool request = false;
  for (StepHook* h : hooks_) request = h->request(state_) || request;
  const bool stop = stop_requested();
  double flags[3] = {stop ? 1.0 : 0.0, stop ? static_cast<double>(stop_signal()) : 0.0,
                     request ? 1.0 : 0.0};
  comm_.max(flags);
  return {flags[0] > 0, static_cast<int>(flags[1]), flags[2] > 0};
}

Trainer::EpochOutcome Trainer::train_epoch(EpochTotals& totals, std::vector<double>& records) {
  const std::size_t b = state_.local_batch, spe = state_.steps_per_epoch;
  auto indices =
      epoch_indices(train_.samples(), state_.seed, state_.epoch, comm_.rank(), state_.ranks, b);
  // A restored run starts inside the epoch: skip the batches already taken.
  indices.erase(indices.begin(),
                indices.begin() + static_cast<std::ptrdiff_t>(state_.step_in_epoch * b));
  auto reader = train_.read(std::move(indices), b);
  const bool progress = comm_.rank() == 0 && !sinks_.empty();
  scale_records_.clear();
  EpochOutcome o;
  // Two batches take turns on a device backend: this step's, and the next one,
  // read ahead and already on its way to the device. Host backends use one.
  Batch batches[2];
  std::size_t cur = 0;
  bool have_batch = false;
  const bool read_ahead = device_ && config_.train.accumulate == 1;
  while (state_.step_in_epoch < spe) {
    if (state_.global_step >= state_.total_steps) {
      o.stop = true;
      break;
    }
    BatchResult r;
    bool ahead_read = false;
    train_step(*reader, batches[cur], r, have_batch, read_ahead ? &batches[cur ^ 1] : nullptr,
               &ahead_read)
        .append_to(records);
    if (ahead_read) cur ^= 1;
    have_batch = ahead_read;
    totals.loss_sum += r.loss_sum;
    totals.correct += static_cast<double>(r.correct);
    totals.seen += static_cast<double>(r.rows);
    ++state_.global_step;
    ++state_.step_in_epoch;
    ++o.steps;
    if (device_) {  // host mirrors only for a hook that reads them
      bool needed = false;
      for (StepHook* h : hooks_) needed = h->needs_tensors(state_) || needed;
      if (needed) sync_state_to_host();
    }
    for (StepHook* h : hooks_) h->after_step(state_);
    const Agreement a = agree_at_step();
    if (a.stop) {
      o.stop = o.signal = true;
      o.signal_number = a.signal;
      break;
    }
    if (a.request) {
      sync_state_to_host();
      for (StepHook* h : hooks_) h->on_request(state_);
    }
    if (progress) {
      const StepProgress p{state_.epoch + 1, config_.train.epochs, state_.step_in_epoch, spe,
                           r.loss_sum / static_cast<double>(r.rows)};
      for (auto& sink : sinks_) sink->step_progress(p);
    }
  }
  return o;
}

void Trainer::finish_epoch(const EpochOutcome& o, const EpochTotals& local,
                           const std::vector<double>& records, double epoch_s, TrainSummary& s) {
  double totals[3] = {local.loss_sum, local.correct, local.seen};
  comm_.sum(totals);
  Evaluation ev;
  const bool do_eval = test_ != nullptr && config_.train.evaluate;
  if (do_eval) ev = evaluate();
  auto gathered = comm_.gather(records);

  if (comm_.rank() == 0) {
    const int epoch = state_.epoch + 1;
    const auto steps = combine_ranks(gathered, state_.ranks, o.steps);
    const std::size_t first_step = state_.step_in_epoch - o.steps;
    PhaseTotals e;
    for (std::size_t st = 0; st < steps.size(); ++st) {
      e.add(steps[st]);
      const std::size_t global_step = state_.global_step - o.steps + st + 1;
      StepMetrics m{epoch, first_step + st + 1, global_step, steps[st],
                    lr_schedule_->lr(global_step - 1)};
      if (st < scale_records_.size()) {
        m.loss_scale = scale_records_[st].first;
        m.skipped_steps = scale_records_[st].second;
      }
      for (auto& sink : sinks_) sink->step(m);
    }
    timing_.add_steps(steps, e);
    EpochMetrics m;
    m.epoch = epoch;
    m.epochs = config_.train.epochs;
    m.steps = o.steps;
    m.train_loss = totals[2] > 0 ? totals[0] / totals[2] : 0;
    m.train_acc = totals[2] > 0 ? totals[1] / totals[2] : 0;
    m.evaluated = do_eval;
    m.test_loss = ev.loss;
    m.test_acc = ev.accuracy;
    m.samples_per_s = epoch_s > 0 ? totals[2] / epoch_s : 0;
    m.epoch_s = epoch_s;
    m.phases = e;
    s.final_train_loss = m.train_loss;
    s.final_train_acc = m.train_acc;
    if (do_eval) {
      s.final_test_loss = ev.loss;
      s.final_test_acc = ev.accuracy;
    }
    for (auto& sink : sinks_) sink->epoch(m);
  }
  if (!std::isfinite(totals[0])) {
    HPCML_THROW(Error, "training diverged in epoch " + std::to_string(state_.epoch + 1) +
                           " (loss is not finite); lower optimizer.lr");
  }
}

TrainSummary Trainer::run() {
  check_batch_layout(config_, train_, state_.ranks);
  if (comm_.rank() == 0) {
    std::vector<std::unique_ptr<MetricsSink>> usual;
    if (!run_dir_.empty()) usual.push_back(std::make_unique<RunDirSink>(run_dir_, facts_, resume_));
    if (out_) {
      usual.push_back(
          std::make_unique<ProgressPrinter>(*out_, progress_enabled(config_.run.progress)));
    }
    sinks_.insert(sinks_.begin(), std::make_move_iterator(usual.begin()),
                  std::make_move_iterator(usual.end()));
  }
  run_dir_.clear();  // made once, even if run() is called again
  out_ = nullptr;

  timing_ = RunTiming{};
  TrainSummary s;
  s.epochs_completed = state_.epoch;
  const std::size_t first_step = state_.global_step;
  const auto t_start = Clock::now();
  bool stop = false;
  while (state_.epoch < config_.train.epochs && !stop) {
    if (comm_.rank() == 0)
      for (auto& sink : sinks_) sink->begin_epoch(state_.epoch + 1);
    const auto t_epoch = Clock::now();
    EpochTotals totals;
    std::vector<double> records;  // StepRecord::kFields per step
    records.reserve(state_.steps_per_epoch * StepRecord::kFields);
    const EpochOutcome o = train_epoch(totals, records);
    const double epoch_s = seconds_since(t_epoch);
    timing_.add_train_seconds(epoch_s);
    finish_epoch(o, totals, records, epoch_s, s);
    stop = o.stop;
    if (o.signal) {
      s.stopped_by_signal = true;
      s.stop_signal = o.signal_number;
    }
    if (state_.step_in_epoch == state_.steps_per_epoch) {
      s.epochs_completed = ++state_.epoch;
      state_.step_in_epoch = 0;
      if (!hooks_.empty()) sync_state_to_host();
      for (StepHook* h : hooks_) h->after_epoch(state_);
    }
  }

  const std::size_t steps_run = state_.global_step - first_step;
  const std::size_t global_batch = state_.local_batch * static_cast<std::size_t>(state_.ranks);
  s.steps = state_.global_step;
  s.wall_s = seconds_since(t_start);
  const double nsteps = static_cast<double>(std::max<std::size_t>(steps_run, 1));
  s.samples_per_s =
      timing_.train_s() > 0 ? static_cast<double>(steps_run * global_batch) / timing_.train_s() : 0;
  s.step_s_median = timing_.step_s_median();
  const PhaseTotals& t = timing_.totals();
  s.compute_s_per_step = t.compute_s / nsteps;
  s.comm_s_per_step = t.comm_s / nsteps;
  s.io_s_per_step = t.io_s / nsteps;
  s.idle_s_per_step = t.idle_s / nsteps;
  s.comm_overlapped_s_per_step = t.comm_overlapped_s / nsteps;

  sync_state_to_host();  // the mirrors of a device backend, for the digest and the hooks
  s.params_digest = digest_of(state_.parameters);

  for (StepHook* h : hooks_) h->after_training(state_, s);
  if (comm_.rank() == 0)
    for (auto& sink : sinks_) sink->finish(run_info(), s);
  return s;
}

}  // namespace hpcml

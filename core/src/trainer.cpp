#include "hpcml/core/trainer.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/signals.hpp"

namespace hpcml {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Per-step times of this rank, in the order gathered to rank 0.
enum StepField { kStep = 0, kCompute, kComm, kIo, kOverlap, kLoss, kFields };

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double finite_or_zero(double x) { return std::isfinite(x) ? x : 0.0; }

}  // namespace

void check_batch_layout(const TrainConfig& config, const Dataset& train, int ranks) {
  const std::size_t b = static_cast<std::size_t>(config.train.batch_size);
  const std::size_t global_batch = b * static_cast<std::size_t>(ranks);
  if (steps_per_epoch(train.samples(), ranks, b) == 0) {
    HPCML_THROW(ConfigError,
                "train.batch_size: " + std::to_string(b) + " per rank x " + std::to_string(ranks) +
                    " ranks = " + std::to_string(global_batch) + " exceeds the " +
                    std::to_string(train.samples()) + " samples of " + train.describe());
  }
}

Trainer::Trainer(const TrainConfig& config, Backend& backend, Collectives& comm, Dataset& train,
                 Dataset* test, std::string run_dir, std::ostream* out, LaunchFacts facts)
    : config_(config),
      backend_(backend),
      comm_(comm),
      train_(train),
      test_(test),
      run_dir_(std::move(run_dir)),
      out_(out),
      facts_(std::move(facts)),
      model_(train.features(), config.model.hidden, static_cast<std::size_t>(train.classes())),
      optimizer_(model_, config.optimizer.momentum, config.optimizer.weight_decay) {
  if (test_) {
    HPCML_REQUIRE(test_->features() == train_.features() && test_->classes() == train_.classes(),
                  DataError,
                  "test split (" + test_->describe() + ") does not match the train split (" +
                      train_.describe() + ") in features or classes");
  }
  model_.init(config_.train.seed);
  if (auto storage = comm_.gradient_storage(model_.parameters().size()); !storage.empty())
    model_.use_gradient_storage(storage);
  if (auto storage = comm_.parameter_storage(model_.parameters().size()); !storage.empty())
    model_.use_parameter_storage(storage);
  // Identical by construction; the broadcast makes it a guarantee.
  comm_.broadcast(model_.parameters(), 0);
}

Trainer::Evaluation Trainer::evaluate() {
  auto [begin, end] = block_range(test_->samples(), comm_.rank(), comm_.size());
  std::vector<std::size_t> idx(end - begin);
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = begin + i;
  double local[3] = {0, 0, static_cast<double>(idx.size())};
  if (!idx.empty()) {
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

TrainSummary Trainer::run() {
  const int rank = comm_.rank(), ranks = comm_.size();
  const std::size_t b = static_cast<std::size_t>(config_.train.batch_size);
  const std::size_t global_batch = b * static_cast<std::size_t>(ranks);
  check_batch_layout(config_, train_, ranks);
  const std::size_t spe = steps_per_epoch(train_.samples(), ranks, b);
  std::size_t total_steps = spe * static_cast<std::size_t>(config_.train.epochs);
  if (config_.train.max_steps > 0)
    total_steps = std::min(total_steps, static_cast<std::size_t>(config_.train.max_steps));
  const auto warmup_steps = static_cast<std::size_t>(
      std::llround(config_.optimizer.warmup_epochs * static_cast<double>(spe)));

  const bool writer = rank == 0 && !run_dir_.empty();
  std::ofstream metrics;
  if (writer) {
    metrics.open(run_dir_ + "/metrics.jsonl");
    HPCML_REQUIRE(metrics.good(), Error, run_dir_ + "/metrics.jsonl: cannot open for writing");
  }
  const bool progress =
      out_ != nullptr && (config_.run.progress == "always" ||
                          (config_.run.progress == "auto" && isatty(STDOUT_FILENO)));

  TrainSummary s;
  std::vector<double> all_step_s;
  double sum_compute = 0, sum_comm = 0, sum_io = 0, sum_idle = 0, sum_overlap = 0;
  double train_time = 0;
  const auto t_start = Clock::now();
  std::size_t global_step = 0;
  auto grads = model_.gradient_buffers();
  bool stop = false;

  for (int epoch = 0; epoch < config_.train.epochs && !stop; ++epoch) {
    const auto t_epoch = Clock::now();
    auto indices = epoch_indices(train_.samples(), config_.train.seed, epoch, rank, ranks, b);
    auto reader = train_.read(std::move(indices), b);
    std::vector<double> rec;  // kFields per step
    rec.reserve(spe * kFields);
    double loss_sum = 0, correct = 0, seen = 0;
    auto last_progress = Clock::now();
    Batch batch;
    std::size_t step = 0;
    for (; step < spe; ++step) {
      if (global_step >= total_steps) {
        stop = true;
        break;
      }
      const auto t0 = Clock::now();
      if (!reader->next(batch)) {
        HPCML_THROW(DataError, "rank " + std::to_string(rank) + ": the reader of " +
                                   train_.describe() + " ended early at step " +
                                   std::to_string(step));
      }
      const double io = seconds_since(t0);
      // Compute and communication interleave during backprop: time spent inside
      // the comm hooks counts as communication, the rest as compute.
      double comm = 0;
      const auto t1 = Clock::now();
      comm_.begin_gradients(grads);
      comm += seconds_since(t1);
      BatchResult r = model_.train_batch(backend_, batch, 1.0f / static_cast<float>(batch.rows),
                                         [&](std::size_t i) {
                                           const auto tc = Clock::now();
                                           comm_.gradient_ready(i);
                                           comm += seconds_since(tc);
                                         });
      const double lr = learning_rate(config_.optimizer.schedule, config_.optimizer.lr, global_step,
                                      warmup_steps, total_steps);
      const auto t2 = Clock::now();
      // Backprop: the time since t1 outside the comm hooks so far.
      const double backprop_s =
          std::max(0.0, std::chrono::duration<double>(t2 - t1).count() - comm);
      // Sharded: the comm layer calls the update for this rank's ranges in
      // between reducing and exchanging; that time counts as compute.
      double optimizer_s = 0;
      const bool sharded =
          comm_.finish_gradients_sharded([&](std::size_t lo, std::size_t hi, const float* mean) {
            const auto tu = Clock::now();
            optimizer_.step_range(backend_, lr, lo, hi, mean);
            optimizer_s += seconds_since(tu);
          });
      if (!sharded) comm_.finish_gradients();
      comm += std::max(0.0, seconds_since(t2) - optimizer_s);
      if (!sharded) {
        const auto t3 = Clock::now();
        optimizer_.step(backend_, lr);
        optimizer_s = seconds_since(t3);
      }
      const double step_s = seconds_since(t0);
      const double compute = backprop_s + optimizer_s;
      rec.insert(rec.end(), {step_s, compute, comm, io, comm_.last_gradient_stats().overlapped_s,
                             r.loss_sum / static_cast<double>(r.rows)});
      loss_sum += r.loss_sum;
      correct += static_cast<double>(r.correct);
      seen += static_cast<double>(r.rows);
      ++global_step;
      // Ranks agree on stopping at the same step; poll the signal flag every 8 steps.
      if (global_step % 8 == 0) {
        double flag[1] = {stop_requested() ? 1.0 : 0.0};
        comm_.max(flag);
        if (flag[0] > 0) {
          s.stopped_by_signal = true;
          stop = true;
          ++step;
          break;
        }
      }
      if (progress && seconds_since(last_progress) > 0.25) {
        last_progress = Clock::now();
        char line[160];
        std::snprintf(line, sizeof line, "\r  epoch %d/%d  step %zu/%zu  loss %.4f ", epoch + 1,
                      config_.train.epochs, step + 1, spe,
                      r.loss_sum / static_cast<double>(r.rows));
        *out_ << line << std::flush;
      }
    }
    reader.reset();
    const double epoch_train_s = seconds_since(t_epoch);
    train_time += epoch_train_s;
    const std::size_t steps_done = rec.size() / kFields;

    double totals[3] = {loss_sum, correct, seen};
    comm_.sum(totals);
    Evaluation ev;
    const bool do_eval = test_ != nullptr && config_.train.evaluate;
    if (do_eval) ev = evaluate();
    auto gathered = comm_.gather(rec);

    if (rank == 0) {
      double e_compute = 0, e_comm = 0, e_io = 0, e_idle = 0, e_overlap = 0, e_step = 0;
      for (std::size_t st = 0; st < steps_done; ++st) {
        double step_max = 0, c = 0, m = 0, io = 0, ov = 0, loss = 0;
        for (int rr = 0; rr < ranks; ++rr) {
          const double* f = &gathered[(static_cast<std::size_t>(rr) * steps_done + st) * kFields];
          step_max = std::max(step_max, f[kStep]);
          c += f[kCompute];
          m += f[kComm];
          io += f[kIo];
          ov += f[kOverlap];
          loss += f[kLoss];
        }
        c /= ranks;
        m /= ranks;
        io /= ranks;
        ov /= ranks;
        loss /= ranks;
        const double idle = std::max(0.0, step_max - c - m - io);
        e_step += step_max;
        e_compute += c;
        e_comm += m;
        e_io += io;
        e_idle += idle;
        e_overlap += ov;
        all_step_s.push_back(step_max);
        if (writer) {
          nlohmann::json j = {{"type", "step"},
                              {"epoch", epoch + 1},
                              {"step", st + 1},
                              {"global_step", global_step - steps_done + st + 1},
                              {"loss", finite_or_zero(loss)},
                              {"step_s", step_max},
                              {"compute_s", c},
                              {"comm_s", m},
                              {"comm_overlapped_s", ov},
                              {"io_s", io},
                              {"idle_s", idle}};
          metrics << j.dump() << '\n';
        }
      }
      sum_compute += e_compute;
      sum_comm += e_comm;
      sum_io += e_io;
      sum_idle += e_idle;
      sum_overlap += e_overlap;
      const double train_loss = totals[2] > 0 ? totals[0] / totals[2] : 0;
      const double train_acc = totals[2] > 0 ? totals[1] / totals[2] : 0;
      const double sps = epoch_train_s > 0 ? totals[2] / epoch_train_s : 0;
      s.final_train_loss = train_loss;
      s.final_train_acc = train_acc;
      if (do_eval) {
        s.final_test_loss = ev.loss;
        s.final_test_acc = ev.accuracy;
      }
      const double denom = e_step > 0 ? e_step : 1;
      if (writer) {
        nlohmann::json j = {{"type", "epoch"},
                            {"epoch", epoch + 1},
                            {"steps", steps_done},
                            {"train_loss", finite_or_zero(train_loss)},
                            {"train_acc", train_acc},
                            {"samples_per_s", sps},
                            {"epoch_s", epoch_train_s},
                            {"compute_s", e_compute},
                            {"comm_s", e_comm},
                            {"comm_overlapped_s", e_overlap},
                            {"io_s", e_io},
                            {"idle_s", e_idle}};
        if (do_eval) {
          j["test_loss"] = finite_or_zero(ev.loss);
          j["test_acc"] = ev.accuracy;
        }
        metrics << j.dump() << '\n';
        metrics.flush();
      }
      if (out_) {
        char line[400];
        char test_part[64] = "";
        if (do_eval)
          std::snprintf(test_part, sizeof test_part, "  test acc %6.2f%%", 100 * ev.accuracy);
        std::snprintf(line, sizeof line,
                      "%sepoch %3d/%d  loss %.4f  train acc %6.2f%%%s  %8.0f samples/s  "
                      "compute %3.0f%% comm %3.0f%% io %3.0f%% idle %3.0f%%  %.1f s\n",
                      progress ? "\r\033[K" : "", epoch + 1, config_.train.epochs, train_loss,
                      100 * train_acc, test_part, sps, 100 * e_compute / denom,
                      100 * e_comm / denom, 100 * e_io / denom, 100 * e_idle / denom,
                      epoch_train_s);
        *out_ << line << std::flush;
      }
    }
    if (steps_done == spe) s.epochs_completed = epoch + 1;
    if (!std::isfinite(totals[0])) {
      HPCML_THROW(Error, "training diverged in epoch " + std::to_string(epoch + 1) +
                             " (loss is not finite); lower optimizer.lr");
    }
  }

  s.steps = global_step;
  s.wall_s = seconds_since(t_start);
  const double nsteps = static_cast<double>(std::max<std::size_t>(global_step, 1));
  s.samples_per_s =
      train_time > 0 ? static_cast<double>(global_step * global_batch) / train_time : 0;
  s.step_s_median = median(all_step_s);
  s.compute_s_per_step = sum_compute / nsteps;
  s.comm_s_per_step = sum_comm / nsteps;
  s.io_s_per_step = sum_io / nsteps;
  s.idle_s_per_step = sum_idle / nsteps;
  s.comm_overlapped_s_per_step = sum_overlap / nsteps;

  if (writer) {
    nlohmann::json j = {
        {"hpcml_version", HPCML_VERSION},
        {"ranks", ranks},
        {"threads_per_rank", facts_.threads_per_rank},
        {"nodes", facts_.nodes},
        {"oversubscribed", facts_.oversubscribed},
        {"hostname", facts_.hostname},
        {"backend", backend_.name()},
        {"local_batch", b},
        {"global_batch", global_batch},
        {"samples", train_.samples()},
        {"steps_per_epoch", spe},
        {"steps", s.steps},
        {"epochs_completed", s.epochs_completed},
        {"stopped_by_signal", s.stopped_by_signal},
        {"samples_per_s", s.samples_per_s},
        {"train_flops_per_sample", model_.train_flops_per_sample()},
        {"parameters", model_.parameters().size()},
        {"grad_bytes", model_.parameters().size() * sizeof(float)},
        {"step_s_median", s.step_s_median},
        {"compute_s_per_step", s.compute_s_per_step},
        {"comm_s_per_step", s.comm_s_per_step},
        {"comm_exposed_s_per_step", s.comm_s_per_step},
        {"comm_overlapped_s_per_step", s.comm_overlapped_s_per_step},
        {"io_s_per_step", s.io_s_per_step},
        {"idle_s_per_step", s.idle_s_per_step},
        {"final_train_loss", finite_or_zero(s.final_train_loss)},
        {"final_train_acc", s.final_train_acc},
        {"wall_s", s.wall_s},
    };
    if (s.final_test_acc >= 0) {
      j["final_test_loss"] = finite_or_zero(s.final_test_loss);
      j["final_test_acc"] = s.final_test_acc;
    }
    std::ofstream f(run_dir_ + "/summary.json.tmp");
    f << j.dump(2) << '\n';
    f.close();
    HPCML_REQUIRE(f.good(), Error, run_dir_ + "/summary.json: write failed");
    std::rename((run_dir_ + "/summary.json.tmp").c_str(), (run_dir_ + "/summary.json").c_str());
  }
  return s;
}

}  // namespace hpcml

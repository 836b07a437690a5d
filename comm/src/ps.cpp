#include "hpcml/comm/ps.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <thread>

#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/lr_schedule.hpp"
#include "hpcml/core/model.hpp"
#include "hpcml/core/optimizer.hpp"

namespace hpcml::comm {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Message tags on the PS communicator.
constexpr int kTagGrad = 1;     // worker -> server: the shard's gradients of the worker's next step
constexpr int kTagParams = 2;   // server -> worker: the shard's parameters
constexpr int kTagDone = 3;     // worker -> server: this worker has finished
constexpr int kTagRecords = 4;  // server -> world rank 0: its step records
constexpr int kTagStateReq = 5;  // world rank 0 -> server: send the shard's optimizer state
constexpr int kTagState = 6;     // server -> world rank 0: the shard's optimizer state

int checked_int(std::size_t n) {
  HPCML_REQUIRE(n <= static_cast<std::size_t>(std::numeric_limits<int>::max()), Error,
                "parameter server: message of " + std::to_string(n) + " elements is too large");
  return static_cast<int>(n);
}

// Polling with a back-off: on an oversubscribed node a spinning rank takes the
// core a computing one needs, so after a short spin it sleeps between polls.
class Poller {
 public:
  explicit Poller(double timeout_s) : timeout_s_(timeout_s) {}
  void progressed() {
    last_ = Clock::now();
    idle_polls_ = 0;
  }
  // Sleeps a little when idle for a while; true once the timeout has passed.
  bool idle() {
    if (++idle_polls_ > 2000) std::this_thread::sleep_for(std::chrono::microseconds(100));
    return timeout_s_ > 0 && seconds_since(last_) > timeout_s_;
  }
  double silent_s() const { return seconds_since(last_); }

 private:
  double timeout_s_;
  Clock::time_point last_ = Clock::now();
  long idle_polls_ = 0;
};

std::string rank_list(const std::vector<int>& ranks) {
  std::string s;
  for (int r : ranks) s += (s.empty() ? "" : ", ") + std::to_string(r);
  return s;
}

}  // namespace

PsOptions read_ps_options(ConfigDoc& doc) {
  PsOptions o;
  o.mode = doc.get_choice("parallel.mode", "allreduce", {"allreduce", "ps"}) == "ps"
               ? ParallelMode::kPs
               : ParallelMode::kAllreduce;
  o.servers = static_cast<int>(doc.get_int("parallel.servers", o.servers, 1, 1 << 20));
  o.staleness = static_cast<int>(doc.get_int("parallel.staleness", o.staleness, 0, 1 << 20));
  return o;
}

void check_ps_layout(const PsOptions& o, int world_size, const ConfigDoc& doc) {
  if (!o.ps()) return;
  if (o.servers >= world_size) {
    doc.fail("parallel.servers", std::to_string(o.servers) + " server(s) need at least " +
                                     std::to_string(o.servers + 1) +
                                     " ranks (servers must be fewer than the ranks, leaving a "
                                     "worker); this job has " +
                                     std::to_string(world_size));
  }
}

std::string describe(const PsOptions& o, int world_size) {
  std::ostringstream s;
  if (!o.ps()) return "allreduce";
  s << "ps: servers=" << o.servers << " (world ranks " << world_size - o.servers << "-"
    << world_size - 1 << ") workers=" << world_size - o.servers << " staleness=" << o.staleness
    << (o.staleness == 0 ? " (synchronous)" : " (stale-synchronous)");
  return s.str();
}

std::vector<std::size_t> plan_shards(const std::vector<std::size_t>& sizes, int servers) {
  const std::size_t t = sizes.size(), s = static_cast<std::size_t>(servers);
  if (servers < 1 || s > t) {
    HPCML_THROW(ConfigError, "parallel.servers: " + std::to_string(servers) +
                                 " server(s), but the model has " + std::to_string(t) +
                                 " parameter tensors (shards are whole tensors)");
  }
  std::vector<std::size_t> prefix(t + 1, 0);
  for (std::size_t i = 0; i < t; ++i) prefix[i + 1] = prefix[i] + sizes[i];
  const double total = static_cast<double>(prefix[t]);
  std::vector<std::size_t> cut{0};  // tensor index of each bound
  for (std::size_t k = 1; k < s; ++k) {
    const double target = total * static_cast<double>(k) / static_cast<double>(s);
    // Leave at least one tensor for each server still to come.
    std::size_t best = cut.back() + 1;
    for (std::size_t j = best; j <= t - (s - k); ++j) {
      if (std::abs(static_cast<double>(prefix[j]) - target) <
          std::abs(static_cast<double>(prefix[best]) - target))
        best = j;
    }
    cut.push_back(best);
  }
  cut.push_back(t);
  std::vector<std::size_t> bounds;
  for (std::size_t c : cut) bounds.push_back(prefix[c]);
  return bounds;
}

PsGroup::PsGroup(const Communicator& world, const PsOptions& options, double stall_timeout_s)
    : servers_(options.servers), staleness_(options.staleness), stall_timeout_s_(stall_timeout_s) {
  const int n = world.size(), r = world.rank();
  workers_ = n - servers_;
  HPCML_REQUIRE(workers_ >= 1, ConfigError, "parallel.servers: no worker left");
  if (r >= workers_) server_index_ = r - workers_;
  MPI_Comm dup = MPI_COMM_NULL;
  HPCML_CHECK_MPI(MPI_Comm_dup(world.get(), &dup));
  messages_ = Communicator::adopt(dup);
  MPI_Comm sub = MPI_COMM_NULL;
  HPCML_CHECK_MPI(MPI_Comm_split(world.get(), is_server() ? MPI_UNDEFINED : 0, r, &sub));
  if (sub != MPI_COMM_NULL) workers_comm_ = Communicator::adopt(sub);
}

// ---- server ----------------------------------------------------------------

std::vector<PsStepRecord> run_server(PsGroup& group, const std::vector<std::size_t>& bounds,
                                     PsShard shard) {
  const int k = group.server_index();
  HPCML_REQUIRE(k >= 0, Error, "run_server called on a worker");
  const std::size_t lo = bounds[static_cast<std::size_t>(k)],
                    hi = bounds[static_cast<std::size_t>(k) + 1], n = hi - lo;
  const int W = group.workers(), s = group.staleness();
  const bool sync = s == 0;
  MPI_Comm comm = group.messages().get();
  const int me = group.messages().rank();
  std::span<float> params = shard.model.parameters().subspan(lo, n);
  std::span<float> grads = shard.model.gradients();
  std::fill(grads.begin(), grads.end(), 0.0f);

  // A resumed run starts at the checkpoint's step with its shard of the state.
  const std::size_t first = shard.resume ? shard.resume->global_step : 0;
  if (shard.resume) {
    const TrainState& in = *shard.resume;
    const std::size_t total = shard.model.parameters().size();
    std::span<float> state = shard.optimizer.state();
    HPCML_REQUIRE(in.parameters.size() == total && in.momentum.size() == state.size(), Error,
                  "parameter server: the checkpoint's state does not fit the model");
    std::copy_n(in.parameters.begin() + static_cast<std::ptrdiff_t>(lo), n, params.begin());
    for (std::size_t slot = 0; slot < shard.optimizer.slots(); ++slot) {
      std::copy_n(in.momentum.begin() + static_cast<std::ptrdiff_t>(slot * total + lo), n,
                  state.begin() + static_cast<std::ptrdiff_t>(slot * total + lo));
    }
  }
  std::vector<PsStepRecord> records;
  auto record = [&](std::size_t step) -> PsStepRecord& {
    step -= std::min(step, first);
    if (records.size() <= step) records.resize(step + 1);
    return records[step];
  };
  std::vector<std::vector<float>> incoming(static_cast<std::size_t>(sync ? W : 1),
                                           std::vector<float>(n));
  std::vector<float> mean(n);
  std::vector<bool> have(static_cast<std::size_t>(W), false), done(static_cast<std::size_t>(W));
  std::vector<std::size_t> clock(static_cast<std::size_t>(W), first);  // pushes per worker
  std::vector<long> need(static_cast<std::size_t>(W), -1);             // SSP: pending pull's clock
  std::size_t step = first;  // sync: optimizer steps taken
  int done_count = 0;

  // Outgoing parameter messages: each owns a copy of the shard as sent.
  struct Outgoing {
    std::vector<float> data;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  std::vector<Outgoing> out;
  auto reap = [&] {
    for (auto& o : out) {
      if (o.request == MPI_REQUEST_NULL) continue;
      int flag = 0;
      HPCML_CHECK_MPI(MPI_Test(&o.request, &flag, MPI_STATUS_IGNORE));
    }
    std::erase_if(out, [](const Outgoing& o) { return o.request == MPI_REQUEST_NULL; });
  };
  auto send_params = [&](int worker) {
    Outgoing& o = out.emplace_back();
    o.data.assign(params.begin(), params.end());
    HPCML_CHECK_MPI(
        MPI_Isend(o.data.data(), checked_int(n), MPI_FLOAT, worker, kTagParams, comm, &o.request));
  };
  // SSP applies each worker's gradient as one step at 1/W of the rate: for
  // sgd the same as a step on g/W, and for the optimizers that normalise the
  // gradient (adam, lars, lamb) still 1/W of a synchronous step.
  const double lr_scale = sync ? 1.0 : 1.0 / static_cast<double>(W);
  auto apply = [&](const float* g, std::size_t t) {
    const double lr = shard.schedule.lr(t) * lr_scale;
    if (shard.layer_wise) {
      std::copy_n(g, n, grads.begin() + static_cast<std::ptrdiff_t>(lo));
      shard.optimizer.step(shard.backend, lr, t + 1);
    } else {
      shard.optimizer.step_range(shard.backend, lr, t + 1, lo, hi, g);
    }
  };
  auto min_clock = [&] { return *std::min_element(clock.begin(), clock.end()); };

  Poller poll(group.stall_timeout_s());
  auto idle_start = Clock::now();
  bool idle = false;
  while (done_count < W) {
    int flag = 0;
    MPI_Status st;
    HPCML_CHECK_MPI(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, &st));
    if (!flag) {
      if (!idle) {
        idle = true;
        idle_start = Clock::now();
      }
      reap();
      if (poll.idle()) {
        std::vector<int> silent;
        for (int w = 0; w < W; ++w)
          if (!done[static_cast<std::size_t>(w)] && (!sync || !have[static_cast<std::size_t>(w)]))
            silent.push_back(w);
        HPCML_THROW(Error, "parameter server (rank " + std::to_string(me) + "): no message from " +
                               "worker rank(s) " + rank_list(silent) + " for " +
                               std::to_string(static_cast<int>(poll.silent_s())) +
                               " s (parallel.stall_timeout_s): a worker died or hangs");
      }
      continue;
    }
    poll.progressed();
    const int w = st.MPI_SOURCE;
    const std::size_t wi = static_cast<std::size_t>(w);
    if (idle) {
      idle = false;
      record(sync ? step : min_clock()).wait_s += seconds_since(idle_start);
    }
    HPCML_REQUIRE(w < W, Error,
                  "parameter server (rank " + std::to_string(me) +
                      "): unexpected message from rank " + std::to_string(w) + " (not a worker)");
    if (st.MPI_TAG == kTagStateReq) {
      HPCML_CHECK_MPI(MPI_Recv(nullptr, 0, MPI_BYTE, w, kTagStateReq, comm, MPI_STATUS_IGNORE));
      const std::size_t total = shard.model.parameters().size();
      std::span<const float> state = shard.optimizer.state();
      Outgoing& o = out.emplace_back();
      for (std::size_t slot = 0; slot < shard.optimizer.slots(); ++slot) {
        o.data.insert(o.data.end(), state.begin() + static_cast<std::ptrdiff_t>(slot * total + lo),
                      state.begin() + static_cast<std::ptrdiff_t>(slot * total + hi));
      }
      HPCML_CHECK_MPI(MPI_Isend(o.data.data(), checked_int(o.data.size()), MPI_FLOAT, w, kTagState,
                                comm, &o.request));
      continue;
    }
    if (st.MPI_TAG == kTagDone) {
      HPCML_CHECK_MPI(MPI_Recv(nullptr, 0, MPI_BYTE, w, kTagDone, comm, MPI_STATUS_IGNORE));
      if (!done[wi]) ++done_count;
      done[wi] = true;
      continue;
    }
    HPCML_REQUIRE(st.MPI_TAG == kTagGrad, Error,
                  "parameter server (rank " + std::to_string(me) + "): unexpected message tag " +
                      std::to_string(st.MPI_TAG) + " from rank " + std::to_string(w));
    int count = 0;
    HPCML_CHECK_MPI(MPI_Get_count(&st, MPI_FLOAT, &count));
    HPCML_REQUIRE(static_cast<std::size_t>(count) == n, Error,
                  "parameter server (rank " + std::to_string(me) + "): worker rank " +
                      std::to_string(w) + " sent " + std::to_string(count) +
                      " gradients, the shard has " + std::to_string(n));
    auto t0 = Clock::now();
    if (sync) {
      HPCML_REQUIRE(!have[wi], Error,
                    "parameter server: worker rank " + std::to_string(w) + " pushed step " +
                        std::to_string(step + 2) + " before step " + std::to_string(step + 1) +
                        " finished");
      HPCML_CHECK_MPI(
          MPI_Recv(incoming[wi].data(), count, MPI_FLOAT, w, kTagGrad, comm, MPI_STATUS_IGNORE));
      have[wi] = true;
      ++clock[wi];
      PsStepRecord& rec = record(step);
      if (std::count(have.begin(), have.end(), true) < W) {
        rec.push_s += seconds_since(t0);
        continue;
      }
      // Sum in worker order, then divide: the bits of an all-reduce average
      // (docs/parameter-server.md says where they agree).
      std::copy(incoming[0].begin(), incoming[0].end(), mean.begin());
      for (std::size_t v = 1; v < incoming.size(); ++v)
        for (std::size_t i = 0; i < n; ++i) mean[i] += incoming[v][i];
      const float d = static_cast<float>(W);
      for (std::size_t i = 0; i < n; ++i) mean[i] = mean[i] / d;
      rec.push_s += seconds_since(t0);
      t0 = Clock::now();
      apply(mean.data(), step);
      rec.update_s += seconds_since(t0);
      t0 = Clock::now();
      reap();
      for (int v = 0; v < W; ++v) send_params(v);
      rec.replies += W;
      rec.pull_s += seconds_since(t0);
      std::fill(have.begin(), have.end(), false);
      ++step;
    } else {
      const std::size_t c = clock[wi];
      HPCML_CHECK_MPI(
          MPI_Recv(incoming[0].data(), count, MPI_FLOAT, w, kTagGrad, comm, MPI_STATUS_IGNORE));
      PsStepRecord& rec = record(c);
      rec.push_s += seconds_since(t0);
      t0 = Clock::now();
      apply(incoming[0].data(), c);
      record(c).update_s += seconds_since(t0);
      clock[wi] = c + 1;
      need[wi] = static_cast<long>(c + 1);
      // Answer every pull the slowest worker's clock now allows.
      t0 = Clock::now();
      const long slowest = static_cast<long>(min_clock());
      for (int v = 0; v < W; ++v) {
        const std::size_t vi = static_cast<std::size_t>(v);
        if (need[vi] < 0 || slowest < need[vi] - s) continue;
        PsStepRecord& r = record(static_cast<std::size_t>(need[vi] - 1));
        const int lag = static_cast<int>(std::max(0L, need[vi] - slowest));
        r.staleness_max = std::max(r.staleness_max, lag);
        r.staleness_sum += lag;
        ++r.replies;
        send_params(v);
        need[vi] = -1;
      }
      record(c).pull_s += seconds_since(t0);
    }
  }
  // The idle time after the last step belongs to the last step.
  const std::size_t steps = (sync ? step : *std::max_element(clock.begin(), clock.end())) - first;
  while (records.size() > steps && steps > 0) {
    records[steps - 1].wait_s += records.back().wait_s;
    records.pop_back();
  }
  // Every worker has received its last parameters (it said done after them).
  for (auto& o : out) HPCML_CHECK_MPI(MPI_Wait(&o.request, MPI_STATUS_IGNORE));
  out.clear();

  std::vector<double> flat;
  flat.reserve(records.size() * PsStepRecord::kFields);
  for (const auto& r : records) {
    flat.insert(flat.end(),
                {r.wait_s, r.push_s, r.update_s, r.pull_s, static_cast<double>(r.staleness_max),
                 r.staleness_sum, static_cast<double>(r.replies)});
  }
  HPCML_CHECK_MPI(
      MPI_Send(flat.data(), checked_int(flat.size()), MPI_DOUBLE, 0, kTagRecords, comm));
  return records;
}

std::vector<std::vector<PsStepRecord>> collect_server_records(PsGroup& group) {
  MPI_Comm comm = group.messages().get();
  std::vector<std::vector<PsStepRecord>> all;
  for (int k = 0; k < group.servers(); ++k) {
    const int src = group.workers() + k;
    Poller poll(group.stall_timeout_s());
    MPI_Status st;
    for (;;) {
      int flag = 0;
      HPCML_CHECK_MPI(MPI_Iprobe(src, kTagRecords, comm, &flag, &st));
      if (flag) break;
      if (poll.idle()) {
        HPCML_THROW(Error, "parameter server rank " + std::to_string(src) +
                               " sent no records for " +
                               std::to_string(static_cast<int>(poll.silent_s())) +
                               " s after training (parallel.stall_timeout_s)");
      }
    }
    int count = 0;
    HPCML_CHECK_MPI(MPI_Get_count(&st, MPI_DOUBLE, &count));
    std::vector<double> flat(static_cast<std::size_t>(count));
    HPCML_CHECK_MPI(
        MPI_Recv(flat.data(), count, MPI_DOUBLE, src, kTagRecords, comm, MPI_STATUS_IGNORE));
    auto& recs = all.emplace_back();
    for (std::size_t i = 0; i + PsStepRecord::kFields <= flat.size(); i += PsStepRecord::kFields) {
      PsStepRecord r;
      r.wait_s = flat[i];
      r.push_s = flat[i + 1];
      r.update_s = flat[i + 2];
      r.pull_s = flat[i + 3];
      r.staleness_max = static_cast<int>(flat[i + 4]);
      r.staleness_sum = flat[i + 5];
      r.replies = static_cast<int>(flat[i + 6]);
      recs.push_back(r);
    }
  }
  return all;
}

// ---- worker ----------------------------------------------------------------

PsWorker::PsWorker(PsGroup& group, std::vector<std::size_t> bounds)
    : CommunicatorCollectives(group.worker_comm()), group_(group), bounds_(std::move(bounds)) {
  HPCML_REQUIRE(!group.is_server(), Error, "PsWorker made on a server rank");
  const std::size_t s = bounds_.size() - 1;
  missing_.assign(s, 0);
  sends_.assign(s, MPI_REQUEST_NULL);
}

PsWorker::~PsWorker() {
  // An exception ends the job through the top-level handler (MPI_Abort); a
  // request still in flight is left to it.
  for (auto& r : sends_)
    if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
}

std::span<float> PsWorker::gradient_storage(std::size_t count) {
  HPCML_REQUIRE(count == bounds_.back(), Error,
                "parameter server: the model has " + std::to_string(count) +
                    " parameters, the shard plan " + std::to_string(bounds_.back()));
  grads_.assign(count, 0.0f);
  return grads_;
}

std::span<float> PsWorker::parameter_storage(std::size_t count) {
  HPCML_REQUIRE(count == bounds_.back(), Error,
                "parameter server: the model has " + std::to_string(count) +
                    " parameters, the shard plan " + std::to_string(bounds_.back()));
  params_.assign(count, 0.0f);
  return params_;
}

void PsWorker::begin_gradients(const std::vector<std::span<float>>& buffers) {
  HPCML_REQUIRE(!grads_.empty(), Error, "parameter server: gradient storage was not taken");
  shard_of_.assign(buffers.size(), 0);
  std::fill(missing_.begin(), missing_.end(), 0);
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    const auto off = static_cast<std::size_t>(buffers[i].data() - grads_.data());
    HPCML_REQUIRE(off < grads_.size(), Error,
                  "parameter server: a gradient buffer lies outside the gradient storage");
    const auto k = static_cast<std::size_t>(std::upper_bound(bounds_.begin(), bounds_.end(), off) -
                                            bounds_.begin() - 1);
    shard_of_[i] = k;
    ++missing_[k];
  }
}

void PsWorker::send_shard(std::size_t k) {
  const std::size_t lo = bounds_[k], hi = bounds_[k + 1];
  HPCML_CHECK_MPI(MPI_Isend(grads_.data() + lo, checked_int(hi - lo), MPI_FLOAT,
                            group_.workers() + static_cast<int>(k), kTagGrad,
                            group_.messages().get(), &sends_[k]));
}

void PsWorker::gradient_ready(std::size_t index) {
  const auto t0 = Clock::now();
  const std::size_t k = shard_of_[index];
  if (--missing_[k] == 0) send_shard(k);
  push_s_ += seconds_since(t0);
}

bool PsWorker::finish_gradients_sharded(const RangeUpdate& /*update*/) {
  auto t0 = Clock::now();
  const std::size_t s = sends_.size();
  for (std::size_t k = 0; k < s; ++k)
    if (sends_[k] == MPI_REQUEST_NULL) send_shard(k);  // a shard with no buffer this step
  std::vector<MPI_Request> recvs(s, MPI_REQUEST_NULL);
  for (std::size_t k = 0; k < s; ++k) {
    HPCML_CHECK_MPI(MPI_Irecv(params_.data() + bounds_[k], checked_int(bounds_[k + 1] - bounds_[k]),
                              MPI_FLOAT, group_.workers() + static_cast<int>(k), kTagParams,
                              group_.messages().get(), &recvs[k]));
  }
  // Longer than the servers' limit: a server waiting for a dead worker speaks
  // first, naming the worker.
  Poller poll(1.5 * group_.stall_timeout_s());
  bool sent = false;
  for (;;) {
    int flag = 0;
    if (!sent) {
      HPCML_CHECK_MPI(MPI_Testall(static_cast<int>(s), sends_.data(), &flag, MPI_STATUSES_IGNORE));
      if (flag) {
        sent = true;
        push_s_ += seconds_since(t0);
        t0 = Clock::now();
        continue;
      }
    } else {
      HPCML_CHECK_MPI(MPI_Testall(static_cast<int>(s), recvs.data(), &flag, MPI_STATUSES_IGNORE));
      if (flag) break;
    }
    if (poll.idle()) {
      std::vector<int> silent;
      for (std::size_t k = 0; k < s; ++k)
        if ((sent ? recvs[k] : sends_[k]) != MPI_REQUEST_NULL)
          silent.push_back(group_.workers() + static_cast<int>(k));
      HPCML_THROW(Error,
                  "worker rank " + std::to_string(group_.messages().rank()) + ": " +
                      (sent ? "no parameters from" : "gradients not taken by") +
                      " parameter server rank(s) " + rank_list(silent) + " for " +
                      std::to_string(static_cast<int>(poll.silent_s())) +
                      " s (1.5 x parallel.stall_timeout_s): a server or a worker died or hangs");
    }
  }
  pull_s_ += seconds_since(t0);
  ++steps_;
  std::size_t bytes = 0;
  for (std::size_t k = 0; k < s; ++k) bytes += (bounds_[k + 1] - bounds_[k]) * sizeof(float);
  last_stats_ = {};
  last_stats_.raw_bytes = bytes;
  last_stats_.wire_bytes = bytes;
  return true;
}

void PsWorker::finish_gradients() {
  HPCML_THROW(Error, "parameter server: finish_gradients() is not used in ps mode");
}

void PsWorker::finish_gradients_each(const BuffersReady& /*ready*/) {
  HPCML_THROW(Error, "parameter server: finish_gradients_each() is not used in ps mode");
}

void PsWorker::fetch_optimizer_state(std::span<float> state, std::size_t slots) {
  MPI_Comm comm = group_.messages().get();
  const std::size_t total = bounds_.back();
  HPCML_REQUIRE(state.size() == slots * total, Error,
                "parameter server: an optimizer state of " + std::to_string(state.size()) +
                    " values for " + std::to_string(total) + " parameters x " +
                    std::to_string(slots) + " slots");
  std::vector<MPI_Request> reqs;
  std::vector<std::vector<float>> parts(sends_.size());
  for (std::size_t k = 0; k < sends_.size(); ++k) {
    const int server = group_.workers() + static_cast<int>(k);
    HPCML_CHECK_MPI(MPI_Send(nullptr, 0, MPI_BYTE, server, kTagStateReq, comm));
    parts[k].resize(slots * (bounds_[k + 1] - bounds_[k]));
    HPCML_CHECK_MPI(MPI_Irecv(parts[k].data(), checked_int(parts[k].size()), MPI_FLOAT, server,
                              kTagState, comm, &reqs.emplace_back()));
  }
  Poller poll(1.5 * group_.stall_timeout_s());
  for (;;) {
    int flag = 0;
    HPCML_CHECK_MPI(
        MPI_Testall(static_cast<int>(reqs.size()), reqs.data(), &flag, MPI_STATUSES_IGNORE));
    if (flag) break;
    if (poll.idle()) {
      HPCML_THROW(Error, "worker rank " + std::to_string(group_.messages().rank()) +
                             ": no optimizer state from the parameter servers for " +
                             std::to_string(static_cast<int>(poll.silent_s())) +
                             " s (1.5 x parallel.stall_timeout_s)");
    }
  }
  for (std::size_t k = 0; k < parts.size(); ++k) {
    const std::size_t lo = bounds_[k], m = bounds_[k + 1] - lo;
    for (std::size_t j = 0; j < slots; ++j) {
      std::copy_n(parts[k].begin() + static_cast<std::ptrdiff_t>(j * m), m,
                  state.begin() + static_cast<std::ptrdiff_t>(j * total + lo));
    }
  }
}

void PsWorker::done() {
  if (done_) return;
  done_ = true;
  for (int k = 0; k < group_.servers(); ++k) {
    HPCML_CHECK_MPI(
        MPI_Send(nullptr, 0, MPI_BYTE, group_.workers() + k, kTagDone, group_.messages().get()));
  }
}

}  // namespace hpcml::comm

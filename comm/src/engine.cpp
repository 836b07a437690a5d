// Engine (private communicators, waiting, stall inspector), the progress
// thread, Request, and the parsing of thresholds (algorithm names: transport.cpp).
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "detail.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/exit_codes.hpp"
#include "hpcml/core/strings.hpp"

namespace hpcml::comm {

// ---- names and thresholds ---------------------------------------------------

std::string to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAverage:
      return "average";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "?";
}

ReduceOp parse_reduce_op(const std::string& name, const std::string& what) {
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAverage, ReduceOp::kMax, ReduceOp::kMin})
    if (name == to_string(op)) return op;
  HPCML_THROW(ConfigError, what + ": expected sum, average, max or min");
}

Thresholds Thresholds::parse(const std::string& text, const Thresholds& base,
                             const std::string& origin) {
  Thresholds t = base;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    auto eq = item.find('=');
    HPCML_REQUIRE(eq != std::string::npos, ConfigError,
                  origin + ": expected key=value, got '" + item + "'");
    std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "small_max_bytes") {
      t.small_max_bytes = parse_byte_count(value, origin + ": '" + key + "'");
    } else if (key == "medium_max_bytes") {
      t.medium_max_bytes = parse_byte_count(value, origin + ": '" + key + "'");
    } else if (key == "small_algo" || key == "medium_algo" || key == "large_algo" ||
               key == "large_multinode_algo" || key == "single_node_algo") {
      Algo a = parse_algo(value, origin + ": '" + key + "'");
      // Automatic selection is the MPI transport's: it picks among its algorithms.
      HPCML_REQUIRE(a != Algo::kAuto && transport_of(a) == Transport::kMpi, ConfigError,
                    origin + ": '" + key + "' must name a CPU algorithm, got '" + value + "'");
      (key == "small_algo"         ? t.small_algo
       : key == "medium_algo"      ? t.medium_algo
       : key == "large_algo"       ? t.large_algo
       : key == "single_node_algo" ? t.single_node_algo
                                   : t.large_multinode_algo) = a;
    } else if (key == "nccl_multinode_algo") {
      if (value == "flat") {
        t.nccl_multinode_algo = NcclPath::kFlat;
      } else if (value == "hierarchical") {
        t.nccl_multinode_algo = NcclPath::kHierarchical;
      } else {
        HPCML_THROW(ConfigError,
                    origin + ": '" + key + "' must be flat or hierarchical, got '" + value + "'");
      }
    } else if (key == "nccl_hierarchical_max_bytes") {
      t.nccl_hierarchical_max_bytes = parse_byte_count(value, origin + ": '" + key + "'");
    } else {
      HPCML_THROW(ConfigError, origin + ": unknown threshold key '" + key +
                                   "' (expected single_node_algo, small_max_bytes, small_algo, "
                                   "medium_max_bytes, medium_algo, large_algo, "
                                   "large_multinode_algo, nccl_multinode_algo, "
                                   "nccl_hierarchical_max_bytes)");
    }
  }
  return t;
}

std::string Thresholds::to_string() const {
  return "single_node_algo=" + comm::to_string(single_node_algo) +
         ",small_max_bytes=" + std::to_string(small_max_bytes) +
         ",small_algo=" + comm::to_string(small_algo) +
         ",medium_max_bytes=" + std::to_string(medium_max_bytes) +
         ",medium_algo=" + comm::to_string(medium_algo) +
         ",large_algo=" + comm::to_string(large_algo) +
         ",large_multinode_algo=" + comm::to_string(large_multinode_algo) +
         ",nccl_multinode_algo=" + comm::to_string(nccl_multinode_algo) +
         ",nccl_hierarchical_max_bytes=" + std::to_string(nccl_hierarchical_max_bytes);
}

std::string to_string(NcclPath path) {
  return path == NcclPath::kHierarchical ? "hierarchical" : "flat";
}

NcclPath choose_nccl_path(const Thresholds& t, std::size_t bytes, int nodes) {
  if (nodes <= 1 || t.nccl_multinode_algo == NcclPath::kFlat) return NcclPath::kFlat;
  if (t.nccl_hierarchical_max_bytes == 0 || bytes <= t.nccl_hierarchical_max_bytes)
    return t.nccl_multinode_algo;
  return NcclPath::kFlat;
}

const CommOptions& CommOptions::from_environment() {
  static const CommOptions options = [] {
    CommOptions o;
    if (const char* t = std::getenv("HPCML_ALLREDUCE_THRESHOLDS"))
      o.thresholds = Thresholds::parse(t, o.thresholds, "HPCML_ALLREDUCE_THRESHOLDS");
    if (const char* s = std::getenv("HPCML_STALL_TIMEOUT_S")) {
      char* end = nullptr;
      double v = std::strtod(s, &end);
      HPCML_REQUIRE(end != s && *end == '\0' && v >= 0, ConfigError,
                    std::string("HPCML_STALL_TIMEOUT_S: expected seconds >= 0, got '") + s + "'");
      o.stall_timeout_s = v;
    }
    return o;
  }();
  return options;
}

// ---- Request ----------------------------------------------------------------

Request::~Request() {
  if (!impl_) return;
  try {
    impl_->wait();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hpcml: error in a collective nobody waited for: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "hpcml: unknown error in a collective nobody waited for\n");
  }
}

Request& Request::operator=(Request&& other) noexcept {
  if (this != &other) {
    Request old(std::move(*this));  // completes the request being replaced
    impl_ = std::move(other.impl_);
  }
  return *this;
}

bool Request::test() {
  if (!impl_) return true;
  if (!impl_->test()) return false;
  auto impl = std::move(impl_);
  impl->wait();  // complete: returns at once, rethrows a stored error
  return true;
}

void Request::wait() {
  if (!impl_) return;
  auto impl = std::move(impl_);
  impl->wait();
}

void wait_all(std::vector<Request>& requests) {
  std::exception_ptr first;
  for (auto& r : requests) {
    try {
      r.wait();
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

namespace detail {

int checked_int(std::size_t n) {
  HPCML_REQUIRE(n <= static_cast<std::size_t>(INT_MAX), Error,
                "message of " + std::to_string(n) + " elements exceeds MPI's int count");
  return static_cast<int>(n);
}

// ---- Engine -----------------------------------------------------------------

namespace {
constexpr int kCensusRequestTag = 1;
constexpr int kCensusReplyTag = 2;
// Seconds of waiting between looks at the node's peer processes (/proc reads).
constexpr double kPeerCheckS = 0.25;
}  // namespace

Engine::Engine(MPI_Comm parent, const CommOptions& options, Engine* waiter) : options_(options) {
  if (waiter) {
    MPI_Request reqs[2];
    waiter->begin("setup of the progress thread");
    HPCML_CHECK_MPI(MPI_Comm_idup(parent, &comm_, &reqs[0]));
    HPCML_CHECK_MPI(MPI_Comm_idup(parent, &census_, &reqs[1]));
    waiter->wait_all(2, reqs);
  } else {
    HPCML_CHECK_MPI(MPI_Comm_dup(parent, &comm_));
    HPCML_CHECK_MPI(MPI_Comm_dup(parent, &census_));
  }
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(census_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  started_ = last_census_check_ = Clock::now();
  census_payload_.reserve(1024);
  watch_peers(waiter);
  last_peer_check_ = Clock::now();
}

// Every rank tells the others who it is (world rank, pid, start time, host).
// A peer is watched when it is on this host and its process is visible here
// with the same start time (not the case across pid namespaces, e.g. one
// container per rank): then a lookup in /proc can only say "gone" when it is.
void Engine::watch_peers(Engine* waiter) {
  if (size_ == 1) return;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::uint64_t host_hash = 1469598103934665603ull;  // FNV-1a
  for (const char* c = host; *c; ++c)
    host_hash = (host_hash ^ static_cast<unsigned char>(*c)) * 1099511628211ull;
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  const ProcessIdentity self = this_process();
  const std::uint64_t mine[4] = {static_cast<std::uint64_t>(world_rank),
                                 static_cast<std::uint64_t>(self.pid), self.start_ticks, host_hash};
  std::vector<std::uint64_t> all(4 * static_cast<std::size_t>(size_));
  if (waiter) {
    MPI_Request req;
    HPCML_CHECK_MPI(
        MPI_Iallgather(mine, 4, MPI_UINT64_T, all.data(), 4, MPI_UINT64_T, comm_, &req));
    waiter->wait_all(1, &req);
  } else {
    HPCML_CHECK_MPI(MPI_Allgather(mine, 4, MPI_UINT64_T, all.data(), 4, MPI_UINT64_T, comm_));
  }
  for (int p = 0; p < size_; ++p) {
    const std::uint64_t* v = &all[4 * static_cast<std::size_t>(p)];
    if (p == rank_ || v[3] != host_hash || v[2] == 0) continue;
    WatchedPeer w;
    w.rank = p;
    w.world_rank = static_cast<int>(v[0]);
    w.process.pid = static_cast<long>(v[1]);
    w.process.start_ticks = v[2];
    if (process_liveness(w.process) == Liveness::kAlive) watched_.push_back(w);
  }
}

void Engine::check_peers() {
  last_peer_check_ = Clock::now();
  for (const WatchedPeer& w : watched_) {
    if (process_liveness(w.process) != Liveness::kGone) continue;
    int world_rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    char line[512];
    std::snprintf(
        line, sizeof line,
        "hpcml: rank %d (pid %ld on this node) is gone (killed or crashed) while %s #%llu "
        "waited for it (reported by rank %d; aborting the job)",
        w.world_rank, w.process.pid, what_, static_cast<unsigned long long>(seq_), world_rank);
    abort_job(line, exit_code::kPeerLost);
  }
}

Engine::~Engine() {
  shm_.reset();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  for (auto& r : census_sends_)
    if (r != MPI_REQUEST_NULL) {
      MPI_Cancel(&r);
      MPI_Request_free(&r);
    }
  MPI_Comm_free(&census_);
  MPI_Comm_free(&comm_);
}

void Engine::set_options(const CommOptions& options) {
  if (options.shm_slot_bytes != options_.shm_slot_bytes ||
      options.emulate_node_size != options_.emulate_node_size)
    shm_.reset();  // rebuilt with the new layout at next use
  options_ = options;
}

ShmNode& Engine::shm() {
  if (!shm_) shm_ = std::make_unique<ShmNode>(*this);
  return *shm_;
}

void Engine::begin(const char* what) {
  ++seq_;
  what_ = what;
  started_ = Clock::now();
}

void Engine::idle(unsigned& spins) {
  // Phases by time since this wait began: spin (the partner is usually
  // microseconds away, and MPI progresses only inside our test calls), then
  // yield (ranks may share cores), and only in a long wait (a rank still
  // computing) sleep, so the late rank gets the core.
  if (spins++ == 0) wait_started_ = Clock::now();
  if ((spins & 15) != 0) return;
  const double waiting = seconds_since(wait_started_);
  // A peer on this node that died is noticed within about kPeerCheckS of
  // waiting, long before the stall timeout (a slow peer is alive, a dead one
  // is not: no timeout has to tell them apart).
  if (!watched_.empty() && (spins & 255) == 0 && waiting > kPeerCheckS &&
      seconds_since(last_peer_check_) > kPeerCheckS)
    check_peers();
  if (options_.stall_timeout_s > 0 && (spins & 255) == 0) {
    if (seconds_since(last_census_check_) > 1e-3) {
      last_census_check_ = Clock::now();
      answer_census();
    }
    const double waited = seconds_since(started_);
    if (waited > options_.stall_timeout_s) stall(waited);
  }
  if (waiting < 100e-6) return;
  if (waiting < 20e-3) {
    sched_yield();
  } else {
    ::usleep(50);
  }
}

void Engine::wait_all(int n, MPI_Request* requests) {
  unsigned spins = 0;
  for (;;) {
    int done = 0;
    HPCML_CHECK_MPI(MPI_Testall(n, requests, &done, MPI_STATUSES_IGNORE));
    if (done) return;
    idle(spins);
  }
}

// Census: a rank that waited past the timeout asks every other rank which
// collective it is in. Ranks in a waiting loop answer (see idle()); a rank that
// is computing, sleeping or dead does not, and so is named.
void Engine::answer_census() {
  for (;;) {
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, kCensusRequestTag, census_, &flag, &status);
    if (!flag) break;
    std::uint64_t asked = 0;
    MPI_Recv(&asked, 1, MPI_UINT64_T, status.MPI_SOURCE, kCensusRequestTag, census_,
             MPI_STATUS_IGNORE);
    // Payloads must stay put until their sends complete: the vector was
    // reserved once and never grows past it (a stall needs a handful).
    if (census_payload_.size() == census_payload_.capacity()) continue;
    census_payload_.push_back(seq_);
    census_sends_.emplace_back();
    MPI_Isend(&census_payload_.back(), 1, MPI_UINT64_T, status.MPI_SOURCE, kCensusReplyTag, census_,
              &census_sends_.back());
  }
}

void Engine::stall(double waited) {
  // Ask everyone, then listen for a grace period while still answering others.
  std::vector<MPI_Request> asks;
  std::uint64_t mine = seq_;
  for (int p = 0; p < size_; ++p) {
    if (p == rank_) continue;
    asks.emplace_back();
    MPI_Isend(&mine, 1, MPI_UINT64_T, p, kCensusRequestTag, census_, &asks.back());
  }
  std::vector<std::uint64_t> at(static_cast<std::size_t>(size_), 0);
  std::vector<bool> replied(static_cast<std::size_t>(size_), false);
  const double grace = std::clamp(options_.stall_timeout_s / 2, 0.2, 2.0);
  const auto t0 = Clock::now();
  while (seconds_since(t0) < grace) {
    answer_census();
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, kCensusReplyTag, census_, &flag, &status);
    if (flag) {
      std::uint64_t s = 0;
      MPI_Recv(&s, 1, MPI_UINT64_T, status.MPI_SOURCE, kCensusReplyTag, census_, MPI_STATUS_IGNORE);
      at[static_cast<std::size_t>(status.MPI_SOURCE)] = s;
      replied[static_cast<std::size_t>(status.MPI_SOURCE)] = true;
    } else {
      ::usleep(1000);
    }
  }
  std::string missing;
  int lowest_waiting = rank_;
  for (int p = 0; p < size_; ++p) {
    if (p == rank_) continue;
    const auto i = static_cast<std::size_t>(p);
    if (replied[i] && at[i] >= mine) {
      lowest_waiting = std::min(lowest_waiting, p);
    } else {
      missing += (missing.empty() ? "" : ", ") + std::to_string(p);
    }
  }
  // One report per stall: the lowest waiting rank speaks; the others give it
  // time to abort the job and only speak if it did not.
  if (lowest_waiting != rank_) {
    const auto t1 = Clock::now();
    while (seconds_since(t1) < 2 * grace + 1) {
      answer_census();
      ::usleep(1000);
    }
  }
  char line[512];
  std::snprintf(
      line, sizeof line,
      "hpcml: stall: %s #%llu waited %.1f s; ranks not arrived: %s (reported by rank %d; "
      "aborting the job)",
      what_, static_cast<unsigned long long>(mine), waited,
      missing.empty() ? "none (all waiting: a deadlock in the algorithm)" : missing.c_str(), rank_);
  abort_job(line, exit_code::kStalled);
}

// ---- AsyncEngine -------------------------------------------------------------

class AsyncEngine::JobRequest final : public RequestImpl {
 public:
  explicit JobRequest(std::shared_ptr<State> state) : state_(std::move(state)) {}
  bool test() override {
    std::lock_guard lock(state_->mutex);
    return state_->done;
  }
  void wait() override {
    std::unique_lock lock(state_->mutex);
    state_->cv.wait(lock, [&] { return state_->done; });
    if (state_->error) std::rethrow_exception(state_->error);
  }

 private:
  std::shared_ptr<State> state_;
};

AsyncEngine::AsyncEngine(MPI_Comm parent, const CommOptions& options, Engine& waiter)
    : engine_(parent, options, &waiter), thread_([this] { loop(); }) {}

AsyncEngine::~AsyncEngine() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Request AsyncEngine::submit(std::function<void(Engine&)> job) {
  auto state = std::make_shared<State>();
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(Job{std::move(job), state});
  }
  cv_.notify_one();
  return Request(std::make_unique<JobRequest>(state));
}

void AsyncEngine::set_options(const CommOptions& options) {
  // Ordered with the jobs already queued.
  Request r = submit([options](Engine& e) { e.set_options(options); });
  r.wait();
}

void AsyncEngine::loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop requested and nothing left
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    std::exception_ptr error;
    try {
      job.fn(engine_);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(job.state->mutex);
      job.state->done = true;
      job.state->error = error;
    }
    job.state->cv.notify_all();
  }
}

}  // namespace detail
}  // namespace hpcml::comm

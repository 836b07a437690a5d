#include "hpcml/comm/mpi.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <utility>

#include "detail.hpp"

namespace hpcml::comm {

namespace {

bool mpi_finalized() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalized != 0;
}

int checked_count(std::size_t n) {
  HPCML_REQUIRE(n <= static_cast<std::size_t>(INT_MAX), Error,
                "message of " + std::to_string(n) + " elements exceeds MPI's int count");
  return static_cast<int>(n);
}

}  // namespace

// ---- MpiEnvironment ---------------------------------------------------------

MpiEnvironment::MpiEnvironment(int required) {
  if (initialized()) {
    MPI_Query_thread(&provided_);
    return;
  }
  HPCML_REQUIRE(!mpi_finalized(), Error, "MPI was already finalized; it cannot be started again");
  int rc = MPI_Init_thread(nullptr, nullptr, required, &provided_);
  HPCML_REQUIRE(rc == MPI_SUCCESS, Error, "MPI_Init_thread failed: " + mpi::error_string(rc));
  owns_ = true;
  // Errors come back as codes and become exceptions, instead of aborting inside MPI.
  HPCML_CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  if (provided_ < required) {
    MPI_Finalize();
    owns_ = false;
    HPCML_THROW(Error, "the MPI library provides thread level " + std::to_string(provided_) +
                           ", hpcml needs " + std::to_string(required));
  }
}

MpiEnvironment::~MpiEnvironment() {
  // While an exception unwinds, other ranks may still be inside a collective:
  // finalizing here could hang them. main() decides (MPI_Finalize after a
  // collective error, MPI_Abort otherwise).
  if (owns_ && initialized() && std::uncaught_exceptions() == 0) MPI_Finalize();
}

bool MpiEnvironment::initialized() {
  int init = 0;
  MPI_Initialized(&init);
  return init != 0 && !mpi_finalized();
}

std::string MpiEnvironment::library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(text, &len);
  std::string s(text, static_cast<std::size_t>(len));
  auto nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  for (char& c : s)
    if (c == '\t') c = ' ';
  return s;
}

// ---- Communicator -----------------------------------------------------------

Communicator Communicator::world() { return Communicator(MPI_COMM_WORLD, false); }
Communicator Communicator::wrap(MPI_Comm comm) { return Communicator(comm, false); }
Communicator Communicator::adopt(MPI_Comm comm) { return Communicator(comm, true); }

Communicator::Communicator() : options_(CommOptions::from_environment()) {}
Communicator::Communicator(MPI_Comm comm, bool owning)
    : comm_(comm), owning_(owning), options_(CommOptions::from_environment()) {}

Communicator::~Communicator() { release(); }

void Communicator::release() noexcept {
  // The progress thread and the private duplicates go first: they use comm_'s group.
  async_.reset();
  engine_.reset();
  if (owning_ && comm_ != MPI_COMM_NULL && !mpi_finalized()) MPI_Comm_free(&comm_);
  comm_ = MPI_COMM_NULL;
  owning_ = false;
}

Communicator::Communicator(Communicator&& other) noexcept
    : comm_(other.comm_),
      owning_(other.owning_),
      scratch_(std::move(other.scratch_)),
      options_(other.options_),
      engine_(std::move(other.engine_)),
      async_(std::move(other.async_)) {
  other.comm_ = MPI_COMM_NULL;
  other.owning_ = false;
}

Communicator& Communicator::operator=(Communicator&& other) noexcept {
  if (this != &other) {
    release();
    comm_ = other.comm_;
    owning_ = other.owning_;
    scratch_ = std::move(other.scratch_);
    options_ = other.options_;
    engine_ = std::move(other.engine_);
    async_ = std::move(other.async_);
    other.comm_ = MPI_COMM_NULL;
    other.owning_ = false;
  }
  return *this;
}

int Communicator::rank() const {
  int r = 0;
  HPCML_CHECK_MPI(MPI_Comm_rank(comm_, &r));
  return r;
}

int Communicator::size() const {
  int s = 1;
  HPCML_CHECK_MPI(MPI_Comm_size(comm_, &s));
  return s;
}

// ---- SharedBuffer -----------------------------------------------------------

SharedBuffer::SharedBuffer() = default;
SharedBuffer::~SharedBuffer() = default;
SharedBuffer::SharedBuffer(SharedBuffer&& other) noexcept
    : window_(std::move(other.window_)),
      data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)) {}
SharedBuffer& SharedBuffer::operator=(SharedBuffer&& other) noexcept {
  if (this != &other) {
    window_ = std::move(other.window_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

int SharedBuffer::local_size() const { return window_ ? window_->local_size() : 0; }

SharedBuffer Communicator::allocate_shared(std::size_t bytes) {
  SharedBuffer b;
  b.window_ = std::make_unique<detail::SharedWindow>(comm_, bytes);
  b.data_ = b.window_->data();
  b.bytes_ = bytes;
  return b;
}

Communicator Communicator::split_shared() const {
  MPI_Comm local = MPI_COMM_NULL;
  HPCML_CHECK_MPI(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank(), MPI_INFO_NULL, &local));
  return adopt(local);
}

int Communicator::node_count() const {
  Communicator local = split_shared();
  int leader = local.rank() == 0 ? 1 : 0;
  int nodes = 0;
  HPCML_CHECK_MPI(MPI_Allreduce(&leader, &nodes, 1, MPI_INT, MPI_SUM, comm_));
  return nodes;
}

void Communicator::barrier() const { HPCML_CHECK_MPI(MPI_Barrier(comm_)); }

void Communicator::average(const std::vector<std::span<float>>& buffers) {
  // Pack into one message: one collective per step instead of one per layer.
  std::size_t total = 0;
  for (const auto& b : buffers) total += b.size();
  scratch_.resize(total);
  std::size_t off = 0;
  for (const auto& b : buffers) {
    std::copy(b.begin(), b.end(), scratch_.begin() + static_cast<std::ptrdiff_t>(off));
    off += b.size();
  }
  allreduce(scratch_.data(), scratch_.data(), total, ReduceOp::kAverage);
  off = 0;
  for (const auto& b : buffers) {
    std::copy_n(scratch_.begin() + static_cast<std::ptrdiff_t>(off), b.size(), b.begin());
    off += b.size();
  }
}

void Communicator::sum(std::span<double> values) {
  allreduce(values.data(), values.data(), values.size(), ReduceOp::kSum);
}

void Communicator::max(std::span<double> values) {
  allreduce(values.data(), values.data(), values.size(), ReduceOp::kMax);
}

void Communicator::broadcast(std::span<float> values, int root) {
  broadcast(values.data(), values.size(), root);
}

std::vector<double> Communicator::gather(std::span<const double> local) {
  const int n = checked_count(local.size());
  std::vector<double> all;
  if (rank() == 0) all.resize(local.size() * static_cast<std::size_t>(size()));
  HPCML_CHECK_MPI(MPI_Gather(local.data(), n, MPI_DOUBLE, all.data(), n, MPI_DOUBLE, 0, comm_));
  return all;
}

std::string Communicator::broadcast_string(const std::string& value, int root) const {
  int len = rank() == root ? checked_count(value.size()) : 0;
  HPCML_CHECK_MPI(MPI_Bcast(&len, 1, MPI_INT, root, comm_));
  std::string out = rank() == root ? value : std::string(static_cast<std::size_t>(len), '\0');
  if (len > 0) HPCML_CHECK_MPI(MPI_Bcast(out.data(), len, MPI_CHAR, root, comm_));
  return out;
}

// ---- typed collectives --------------------------------------------------------

namespace {

template <class T>
void validate(const T* send, T* recv, std::size_t count, const char* what) {
  if (count == 0) return;
  HPCML_REQUIRE(send != nullptr && recv != nullptr, Error,
                std::string(what) + ": null buffer for " + std::to_string(count) + " elements");
  const auto s = reinterpret_cast<std::uintptr_t>(send), r = reinterpret_cast<std::uintptr_t>(recv);
  const std::uintptr_t bytes = count * sizeof(T);
  HPCML_REQUIRE(s == r || s + bytes <= r || r + bytes <= s, Error,
                std::string(what) +
                    ": send and receive buffers overlap partially (only "
                    "send == recv, the in-place form, may share memory)");
}

}  // namespace

namespace detail {

MpiRequest::~MpiRequest() {
  if (req_ != MPI_REQUEST_NULL && !mpi_finalized()) {
    // Only reached when wait() threw; the request cannot be cancelled.
    MPI_Wait(&req_, MPI_STATUS_IGNORE);
  }
}

bool MpiRequest::test() {
  if (complete_) return true;
  int done = 0;
  HPCML_CHECK_MPI(MPI_Test(&req_, &done, MPI_STATUS_IGNORE));
  if (done) finish();
  return complete_;
}

void MpiRequest::wait() {
  if (complete_) return;
  engine_.wait_all(1, &req_);
  finish();
}

void MpiRequest::finish() {
  complete_ = true;
  if (finish_) finish_();
}

}  // namespace detail

detail::Engine& Communicator::engine() {
  HPCML_REQUIRE(comm_ != MPI_COMM_NULL, Error, "collective on a null communicator");
  if (!engine_) engine_ = std::make_unique<detail::Engine>(comm_, options_);
  return *engine_;
}

void Communicator::set_options(const CommOptions& options) {
  options_ = options;
  if (engine_) engine_->set_options(options);
  if (async_) async_->set_options(options);
}

bool Communicator::has_progress_thread() const {
  int level = MPI_THREAD_SINGLE;
  MPI_Query_thread(&level);
  return level == MPI_THREAD_MULTIPLE;
}

bool Communicator::reduce_update_gather(
    const float* grads, float* params, std::size_t count,
    const std::function<void(std::size_t, std::size_t, const float*)>& update) {
  validate(grads, params, count, "reduce_update_gather");
  HPCML_REQUIRE(grads != params, Error, "reduce_update_gather: grads and params must differ");
  auto& e = engine();
  e.begin("sharded update");
  return e.shm().reduce_update_gather<float>(grads, params, count, update);
}

Algo Communicator::choose(std::size_t bytes) {
  const Thresholds& t = options_.thresholds;
  auto& shm = engine().shm();
  if (shm.nodes() == 1 && shm.local_size() > 1) return t.single_node_algo;
  if (bytes <= t.small_max_bytes) return t.small_algo;
  // The largest node's rank count, not this node's: nodes may hold different
  // numbers of ranks (srun -N2 -n3), and every rank must pick the same algorithm.
  if (shm.max_local_size() == 1) return t.large_multinode_algo;
  return bytes <= t.medium_max_bytes ? t.medium_algo : t.large_algo;
}

template <class T>
void Communicator::allreduce(const T* send, T* recv, std::size_t count, ReduceOp op, Algo algo) {
  validate(send, recv, count, "allreduce");
  if (algo == Algo::kAuto) algo = choose(count * sizeof(T));
  auto& transport = detail::transport(transport_of(algo));  // refuses unbuilt transports
  auto& e = engine();
  e.begin("allreduce");
  transport.allreduce(send, recv, count, op, algo, e);
}

template <class T>
Request Communicator::iallreduce(const T* send, T* recv, std::size_t count, ReduceOp op,
                                 Algo algo) {
  validate(send, recv, count, "iallreduce");
  if (algo == Algo::kAuto) algo = choose(count * sizeof(T));
  auto& transport = detail::transport(transport_of(algo));  // refuses unbuilt transports
  if (auto started = transport.start_allreduce(send, recv, count, op, algo, engine()))
    return Request(std::move(started));
  return submit([&transport, send, recv, count, op, algo](detail::Engine& pe) {
    pe.begin("iallreduce");
    transport.allreduce(send, recv, count, op, algo, pe);
  });
}

Request Communicator::submit(std::function<void(detail::Engine&)> job) {
  if (!has_progress_thread()) {
    job(engine());
    return Request();
  }
  if (!async_) async_ = std::make_unique<detail::AsyncEngine>(comm_, options_, engine());
  return async_->submit(std::move(job));
}

template <class T>
void Communicator::broadcast(T* data, std::size_t count, int root) {
  validate(data, data, count, "broadcast");
  auto& e = engine();
  e.begin("broadcast");
  MPI_Request req = MPI_REQUEST_NULL;
  HPCML_CHECK_MPI(
      MPI_Ibcast(data, detail::checked_int(count), detail::mpi_type<T>(), root, e.comm(), &req));
  e.wait_all(1, &req);
}

template <class T>
Request Communicator::ibroadcast(T* data, std::size_t count, int root) {
  validate(data, data, count, "ibroadcast");
  auto& e = engine();
  e.begin("ibroadcast");
  auto impl = std::make_unique<detail::MpiRequest>(e, nullptr);
  HPCML_CHECK_MPI(MPI_Ibcast(data, detail::checked_int(count), detail::mpi_type<T>(), root,
                             e.comm(), impl->handle()));
  return Request(std::move(impl));
}

template <class T>
void Communicator::allgather(const T* send, std::size_t count, T* recv) {
  iallgather(send, count, recv).wait();
}

template <class T>
Request Communicator::iallgather(const T* send, std::size_t count, T* recv) {
  auto& e = engine();
  HPCML_REQUIRE(count == 0 || (send && recv), Error, "allgather: null buffer");
  e.begin("allgather");
  auto impl = std::make_unique<detail::MpiRequest>(e, nullptr);
  const int n = detail::checked_int(count);
  HPCML_CHECK_MPI(MPI_Iallgather(send, n, detail::mpi_type<T>(), recv, n, detail::mpi_type<T>(),
                                 e.comm(), impl->handle()));
  return Request(std::move(impl));
}

Request Communicator::ibarrier() {
  auto& e = engine();
  e.begin("barrier");
  auto impl = std::make_unique<detail::MpiRequest>(e, nullptr);
  HPCML_CHECK_MPI(MPI_Ibarrier(e.comm(), impl->handle()));
  return Request(std::move(impl));
}

#define HPCML_COMM_INSTANTIATE_REDUCE(T)                                               \
  template void Communicator::allreduce<T>(const T*, T*, std::size_t, ReduceOp, Algo); \
  template Request Communicator::iallreduce<T>(const T*, T*, std::size_t, ReduceOp, Algo);
HPCML_COMM_INSTANTIATE_REDUCE(float)
HPCML_COMM_INSTANTIATE_REDUCE(double)
#undef HPCML_COMM_INSTANTIATE_REDUCE
#define HPCML_COMM_INSTANTIATE(T)                                      \
  template void Communicator::broadcast<T>(T*, std::size_t, int);      \
  template Request Communicator::ibroadcast<T>(T*, std::size_t, int);  \
  template void Communicator::allgather<T>(const T*, std::size_t, T*); \
  template Request Communicator::iallgather<T>(const T*, std::size_t, T*);
HPCML_COMM_INSTANTIATE(float)
HPCML_COMM_INSTANTIATE(double)
HPCML_COMM_INSTANTIATE(unsigned char)
#undef HPCML_COMM_INSTANTIATE

}  // namespace hpcml::comm

#include "hpcml/comm/mpi.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <utility>

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

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<std::size_t>(len));
}

// ---- MpiEnvironment ---------------------------------------------------------

MpiEnvironment::MpiEnvironment(int required) {
  if (initialized()) {
    MPI_Query_thread(&provided_);
    return;
  }
  HPCML_REQUIRE(!mpi_finalized(), Error, "MPI was already finalized; it cannot be started again");
  int rc = MPI_Init_thread(nullptr, nullptr, required, &provided_);
  HPCML_REQUIRE(rc == MPI_SUCCESS, Error, "MPI_Init_thread failed: " + mpi_error_string(rc));
  owns_ = true;
  // Errors come back as codes and become exceptions, instead of aborting inside MPI.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  if (provided_ < required) {
    MPI_Finalize();
    owns_ = false;
    HPCML_THROW(Error, "the MPI library provides thread level " + std::to_string(provided_) +
                           ", hpcml needs " + std::to_string(required));
  }
}

MpiEnvironment::~MpiEnvironment() {
  if (owns_ && initialized()) MPI_Finalize();
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
  return s;
}

// ---- Communicator -----------------------------------------------------------

Communicator Communicator::world() { return Communicator(MPI_COMM_WORLD, false); }
Communicator Communicator::wrap(MPI_Comm comm) { return Communicator(comm, false); }
Communicator Communicator::adopt(MPI_Comm comm) { return Communicator(comm, true); }

Communicator::~Communicator() { release(); }

void Communicator::release() noexcept {
  if (owning_ && comm_ != MPI_COMM_NULL && !mpi_finalized()) MPI_Comm_free(&comm_);
  comm_ = MPI_COMM_NULL;
  owning_ = false;
}

Communicator::Communicator(Communicator&& other) noexcept
    : comm_(other.comm_), owning_(other.owning_), scratch_(std::move(other.scratch_)) {
  other.comm_ = MPI_COMM_NULL;
  other.owning_ = false;
}

Communicator& Communicator::operator=(Communicator&& other) noexcept {
  if (this != &other) {
    release();
    comm_ = other.comm_;
    owning_ = other.owning_;
    scratch_ = std::move(other.scratch_);
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
  HPCML_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, scratch_.data(), checked_count(total), MPI_FLOAT,
                                MPI_SUM, comm_));
  const float inv = 1.0f / static_cast<float>(size());
  off = 0;
  for (const auto& b : buffers) {
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = scratch_[off + i] * inv;
    off += b.size();
  }
}

void Communicator::sum(std::span<double> values) {
  HPCML_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, values.data(), checked_count(values.size()),
                                MPI_DOUBLE, MPI_SUM, comm_));
}

void Communicator::max(std::span<double> values) {
  HPCML_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, values.data(), checked_count(values.size()),
                                MPI_DOUBLE, MPI_MAX, comm_));
}

void Communicator::broadcast(std::span<float> values, int root) {
  HPCML_CHECK_MPI(MPI_Bcast(values.data(), checked_count(values.size()), MPI_FLOAT, root, comm_));
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

void agree(const Communicator& comm, const std::function<void()>& fn) {
  std::string message;
  int failed_rank = INT_MAX;
  bool not_available = false, config = false, data = false;
  try {
    fn();
  } catch (const NotAvailableError& e) {
    message = e.what();
    not_available = true;
    failed_rank = comm.rank();
  } catch (const ConfigError& e) {
    message = e.what();
    config = true;
    failed_rank = comm.rank();
  } catch (const DataError& e) {
    message = e.what();
    data = true;
    failed_rank = comm.rank();
  } catch (const Error& e) {
    message = e.what();
    failed_rank = comm.rank();
  }
  int first = INT_MAX;
  HPCML_CHECK_MPI(MPI_Allreduce(&failed_rank, &first, 1, MPI_INT, MPI_MIN, comm.get()));
  if (first == INT_MAX) return;
  // Kind of error travels with the message so callers can still catch by type.
  int kind = not_available ? 1 : config ? 2 : data ? 3 : 0;
  HPCML_CHECK_MPI(MPI_Bcast(&kind, 1, MPI_INT, first, comm.get()));
  std::string text = comm.broadcast_string(message, first);
  if (first != 0 && comm.size() > 1) text = "rank " + std::to_string(first) + ": " + text;
  auto raise = [&](auto error) {
    error.set_collective(true);
    throw error;
  };
  switch (kind) {
    case 1:
      raise(NotAvailableError(text, __FILE__, __LINE__));
    case 2:
      raise(ConfigError(text, __FILE__, __LINE__));
    case 3:
      raise(DataError(text, __FILE__, __LINE__));
    default:
      raise(Error(text, __FILE__, __LINE__));
  }
}

}  // namespace hpcml::comm

// RAII over MPI: the environment (init/finalize) and communicators (owning or
// borrowed), plus HPCML_CHECK_MPI. A Communicator implements core's
// Collectives interface so the trainer can use it without knowing MPI.
#pragma once

#include <mpi.h>

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "hpcml/core/collectives.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::comm {

/// Text of an MPI error code ("MPI_ERR_COUNT: invalid count argument").
std::string mpi_error_string(int code);

}  // namespace hpcml::comm

/// Throws hpcml::Error naming the call and MPI's message when an MPI call fails.
/// (MPI_COMM_WORLD is switched to MPI_ERRORS_RETURN by MpiEnvironment.)
#define HPCML_CHECK_MPI(call)                                                          \
  do {                                                                                 \
    const int hpcml_mpi_rc_ = (call);                                                  \
    if (hpcml_mpi_rc_ != MPI_SUCCESS)                                                  \
      HPCML_THROW(::hpcml::Error, std::string(#call " failed: ") +                     \
                                      ::hpcml::comm::mpi_error_string(hpcml_mpi_rc_)); \
  } while (0)

namespace hpcml::comm {

/// Initialises MPI for the lifetime of the object (MPI_Init_thread with
/// `required`), unless MPI is already initialised, in which case it borrows it
/// and does not finalize. Without mpiexec MPICH starts as a singleton (1 rank).
class MpiEnvironment {
 public:
  explicit MpiEnvironment(int required = MPI_THREAD_FUNNELED);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;

  int provided_thread_level() const { return provided_; }
  /// "MPICH Version: 4.0.2 ..." first line of MPI_Get_library_version.
  static std::string library_version();
  static bool initialized();

 private:
  bool owns_ = false;
  int provided_ = MPI_THREAD_SINGLE;
};

/// A communicator. Owning instances free their MPI_Comm on destruction (skipped
/// after MPI_Finalize); borrowed ones (world(), wrap()) never do.
class Communicator final : public Collectives {
 public:
  /// Borrows MPI_COMM_WORLD.
  static Communicator world();
  /// Borrows an existing communicator.
  static Communicator wrap(MPI_Comm comm);
  /// Takes ownership of a communicator created by the caller.
  static Communicator adopt(MPI_Comm comm);

  Communicator() = default;
  ~Communicator() override;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  Communicator(Communicator&& other) noexcept;
  Communicator& operator=(Communicator&& other) noexcept;

  MPI_Comm get() const { return comm_; }
  int rank() const override;
  int size() const override;

  /// The ranks sharing this rank's node (MPI_COMM_TYPE_SHARED), owning.
  Communicator split_shared() const;
  /// Number of distinct nodes among this communicator's ranks. Collective.
  int node_count() const;
  void barrier() const;

  // Collectives (see core/collectives.hpp for the contract).
  void average(const std::vector<std::span<float>>& buffers) override;
  void sum(std::span<double> values) override;
  void max(std::span<double> values) override;
  void broadcast(std::span<float> values, int root) override;
  std::vector<double> gather(std::span<const double> local) override;
  /// Copies root's string to every rank.
  std::string broadcast_string(const std::string& value, int root) const;

 private:
  Communicator(MPI_Comm comm, bool owning) : comm_(comm), owning_(owning) {}
  void release() noexcept;

  MPI_Comm comm_ = MPI_COMM_NULL;
  bool owning_ = false;
  std::vector<float> scratch_;
};

/// Runs `fn` on every rank and agrees on the outcome: if it threw an
/// hpcml::Error on any rank, every rank throws an Error carrying the message of
/// the lowest failing rank (prefixed "rank r: " when r != 0 and size > 1), marked
/// collective() so it is printed once. Use it around every setup phase whose
/// failure may be local to one rank (files, data, memory). Collective.
void agree(const Communicator& comm, const std::function<void()>& fn);

}  // namespace hpcml::comm

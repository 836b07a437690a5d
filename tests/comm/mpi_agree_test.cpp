// The one agree() of hpcml_mpi: whichever ranks fail, every rank throws the
// same collective error, of the failing rank's kind, with the rank named unless
// every rank failed.
#include <gtest/gtest.h>
#include <mpi.h>

#include <functional>
#include <stdexcept>
#include <string>

#include "hpcml/comm/mpi.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/mpi/agree.hpp"
#include "hpcml/mpi/check.hpp"

namespace {

int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

// Runs agree() with `fn` on every rank and returns what it threw (kind checked
// by the caller through `Expected`), failing the test if it returned.
template <class Expected>
std::string agreed_message(const std::function<void()>& fn) {
  try {
    hpcml::mpi::agree(MPI_COMM_WORLD, fn);
  } catch (const Expected& e) {
    EXPECT_TRUE(e.collective());
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "agree() threw the wrong kind: " << e.what();
    return {};
  }
  ADD_FAILURE() << "agree() returned although a rank failed";
  return {};
}

TEST(MpiAgree, NothingFailedReturnsOnEveryRank) {
  EXPECT_NO_THROW(hpcml::mpi::agree(MPI_COMM_WORLD, [] {}));
  EXPECT_NO_THROW(hpcml::mpi::agree(MPI_COMM_WORLD, std::exception_ptr{}));
}

TEST(MpiAgree, OneRankFailingIsNamedOnEveryRank) {
  for (int failing = 0; failing < size(); ++failing) {
    const std::string text = agreed_message<hpcml::DataError>([&] {
      if (rank() == failing) throw hpcml::DataError("shard-3.h5: truncated");
    });
    // With one rank, "one rank failed" is "every rank failed": no prefix.
    const std::string prefix = size() > 1 ? "rank " + std::to_string(failing) + ": " : "";
    EXPECT_EQ(text, prefix + "shard-3.h5: truncated") << "failing rank " << failing;
  }
}

TEST(MpiAgree, LowestFailingRankSpeaks) {
  if (size() < 3) GTEST_SKIP() << "needs 3 ranks";
  const std::string text = agreed_message<hpcml::ConfigError>([] {
    if (rank() >= 1) throw hpcml::ConfigError("bad on " + std::to_string(rank()));
  });
  EXPECT_EQ(text, "rank 1: bad on 1");
}

TEST(MpiAgree, EveryRankFailingGivesRankZerosMessageWithoutPrefix) {
  const std::string text = agreed_message<hpcml::ConfigError>(
      [] { throw hpcml::ConfigError("rank-" + std::to_string(rank())); });
  EXPECT_EQ(text, "rank-0");
}

TEST(MpiAgree, KindsArePreserved) {
  const int last = size() - 1;
  const std::string prefix = size() > 1 ? "rank " + std::to_string(last) + ": " : "";
  EXPECT_EQ(agreed_message<hpcml::NotAvailableError>([&] {
              if (rank() == last) throw hpcml::NotAvailableError("no nccl");
            }),
            prefix + "no nccl");
  EXPECT_EQ(agreed_message<hpcml::DataError>([&] {
              if (rank() == last) throw hpcml::DataError("bad label");
            }),
            prefix + "bad label");
  // Exceptions that are not hpcml errors become a plain Error with their text.
  const std::string plain = agreed_message<hpcml::Error>([&] {
    if (rank() == last) throw std::runtime_error("out of luck");
  });
  EXPECT_EQ(plain, prefix + "out of luck");
  const std::string unknown = agreed_message<hpcml::Error>([&] {
    if (rank() == last) throw 42;
  });
  EXPECT_EQ(unknown, prefix + "unknown exception");
}

TEST(MpiAgree, CommunicatorFormIsTheSameProtocol) {
  auto world = hpcml::comm::Communicator::world();
  try {
    hpcml::comm::agree(world, [&] {
      if (rank() == 0) throw hpcml::DataError("manifest.json: missing");
    });
    ADD_FAILURE() << "agree() returned although rank 0 failed";
  } catch (const hpcml::DataError& e) {
    EXPECT_TRUE(e.collective());
    EXPECT_EQ(std::string(e.what()),
              std::string(size() > 1 ? "rank 0: " : "") + "manifest.json: missing");
  }
}

TEST(MpiCheck, FailedCallThrowsWithMpisMessage) {
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int x = 0;
  try {
    HPCML_CHECK_MPI(MPI_Bcast(&x, -1, MPI_INT, 0, MPI_COMM_WORLD));
    ADD_FAILURE() << "a negative count was accepted";
  } catch (const hpcml::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("MPI_Bcast(&x, -1, MPI_INT, 0, MPI_COMM_WORLD) failed: "),
              std::string::npos)
        << what;
    EXPECT_GT(what.size(),
              std::string("MPI_Bcast(&x, -1, MPI_INT, 0, MPI_COMM_WORLD) failed: ").size());
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
}

}  // namespace

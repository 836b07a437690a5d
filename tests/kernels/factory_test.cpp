// make_backend, available_backends, blas_description and the sgemm rate helper.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/kernels/bench_util.hpp"
#include "hpcml/kernels/factory.hpp"

namespace hpcml::kernels::test {
namespace {

TEST(KernelsFactory, CreatesTheCompiledBackends) {
  const auto names = available_backends();
#if defined(HPCML_HAS_KOKKOS)
  ASSERT_EQ(names, (std::vector<std::string>{"reference", "omp", "kokkos"}));
  auto kokkos = make_backend("kokkos", 1);
  EXPECT_EQ(kokkos->name(), "kokkos");
  EXPECT_GE(kokkos->threads(), 1);  // the execution space's concurrency (Serial: 1)
#else
  ASSERT_EQ(names, (std::vector<std::string>{"reference", "omp"}));
#endif
  auto ref = make_backend("reference", 4);
  EXPECT_EQ(ref->name(), "reference");
  EXPECT_EQ(ref->threads(), 1);  // the oracle is serial whatever it is given
  auto omp = make_backend("omp", 3);
  EXPECT_EQ(omp->name(), "omp");
  EXPECT_EQ(omp->threads(), 3);
}

TEST(KernelsFactory, UnknownNameListsTheChoices) {
  try {
    make_backend("opm", 1);
    FAIL() << "unknown backend accepted";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'opm'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("reference, omp"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message must be one line";
  }
}

// Backends this build lacks: cuda when nvcc was not found (a cuda build without a
// device is tests/gpu/cuda_unit_test.cpp's case), kokkos when Kokkos was not found.
std::vector<std::string> missing_backends() {
  std::vector<std::string> names;
#if !defined(HPCML_HAS_CUDA)
  names.emplace_back("cuda");
#endif
#if !defined(HPCML_HAS_KOKKOS)
  names.emplace_back("kokkos");
#endif
  return names;
}

TEST(KernelsFactory, PlannedBackendsAreNotAvailable) {
  for (const std::string& name : missing_backends()) {
    try {
      make_backend(name, 1);
      FAIL() << name << " accepted";
    } catch (const NotAvailableError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("backend '" + name + "' is not compiled into this build"),
                std::string::npos)
          << msg;
      EXPECT_NE(msg.find("reference, omp"), std::string::npos) << msg;
    }
  }
}

TEST(KernelsFactory, RejectsThreadCountsBelowOne) {
  EXPECT_THROW(make_backend("omp", 0), ConfigError);
  EXPECT_THROW(make_backend("reference", -1), ConfigError);
#if defined(HPCML_HAS_KOKKOS)
  EXPECT_THROW(make_backend("kokkos", 0), ConfigError);
#endif
}

TEST(KernelsFactory, KokkosDescriptionIsOneLine) {
  const std::string d = kokkos_description();
  EXPECT_EQ(d.find('\n'), std::string::npos) << d;
#if defined(HPCML_HAS_KOKKOS)
  EXPECT_EQ(d.rfind("Kokkos ", 0), 0u) << d;
  EXPECT_NE(d.find("execution space"), std::string::npos) << d;
#if defined(HPCML_HAS_KOKKOS_KERNELS)
  EXPECT_NE(d.find("KokkosBlas::gemm"), std::string::npos) << d;
#else
  EXPECT_NE(d.find("CBLAS"), std::string::npos) << d;
#endif
#else
  EXPECT_EQ(d.rfind("not compiled in", 0), 0u) << d;
#endif
}

TEST(KernelsFactory, BlasDescriptionNamesOpenBlas) {
  const std::string d = blas_description();
  EXPECT_NE(d.find("OpenBLAS"), std::string::npos) << d;
  EXPECT_EQ(d.find('\n'), std::string::npos) << d;
}

TEST(KernelsBenchUtil, MeasuresAtLeastThreeCalls) {
  // No speed is asserted (shared machine); only that the measurement is well formed.
  const SgemmRate r = measure_sgemm(16, 24, 8, 1, 0.01);
  EXPECT_GE(r.calls, 3);
  EXPECT_GE(r.seconds, 0.0);
  EXPECT_GT(r.median_gflops, 0.0);
  EXPECT_GE(r.best_gflops, r.median_gflops);
  EXPECT_THROW(measure_sgemm(0, 4, 4, 1), Error);
}

}  // namespace
}  // namespace hpcml::kernels::test

// The cuda backend's parts that run without a GPU (label unit): the rank -> GPU
// choice and its errors, and the one-line error of `make_backend("cuda")` on a
// machine without a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "hpcml/config.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/kernels/cuda.hpp"
#include "hpcml/kernels/factory.hpp"

namespace hpcml::kernels {
namespace {

// Clears the launcher variables cuda_choose_device reads, restoring them after.
class CudaPlacement : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kVars) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::string(v) : std::string("\x01"));
      unsetenv(name);
    }
  }
  void TearDown() override {
    for (const auto& [name, value] : saved_) {
      if (value == "\x01")
        unsetenv(name.c_str());
      else
        setenv(name.c_str(), value.c_str(), 1);
    }
  }
  static constexpr const char* kVars[] = {"SLURM_LOCALID", "SLURM_GPUS_PER_TASK",
                                          "HPCML_GPU_BOUND"};
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST_F(CudaPlacement, OneGpuPerLocalRank) {
  EXPECT_EQ(cuda_choose_device({0, 4, false, false}, 4), 0);
  EXPECT_EQ(cuda_choose_device({3, 4, false, false}, 4), 3);
  EXPECT_EQ(cuda_choose_device({1, 2, false, false}, 8), 1);
}

TEST_F(CudaPlacement, SlurmLocalIdWinsOverTheMpiLocalRank) {
  setenv("SLURM_LOCALID", "2", 1);
  EXPECT_EQ(cuda_local_rank({0, 4, false, false}), 2);
  EXPECT_EQ(cuda_choose_device({0, 4, false, false}, 4), 2);
  setenv("SLURM_LOCALID", "x", 1);  // not a number: the MPI local rank
  EXPECT_EQ(cuda_local_rank({1, 4, false, false}), 1);
}

TEST_F(CudaPlacement, MoreRanksThanGpusIsAnErrorNamingTheCounts) {
  try {
    cuda_choose_device({2, 4, false, false}, 2);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("4 ranks on this node but only 2 CUDA device(s) visible"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("parallel.gpu_sharing"), std::string::npos) << msg;
  }
  EXPECT_EQ(cuda_choose_device({1, 4, false, false}, 2), 1);  // this rank still has one
  EXPECT_EQ(cuda_choose_device({3, 4, true, false}, 2), 1);   // sharing: wrap round
  EXPECT_THROW(cuda_choose_device({0, 1, false, false}, 0), NotAvailableError);
}

TEST_F(CudaPlacement, ALauncherBoundGpuIsDeviceZero) {
  EXPECT_EQ(cuda_choose_device({3, 4, false, true}, 1), 0);
  setenv("SLURM_GPUS_PER_TASK", "1", 1);
  EXPECT_EQ(cuda_choose_device({3, 4, false, false}, 1), 0);
  unsetenv("SLURM_GPUS_PER_TASK");
  setenv("HPCML_GPU_BOUND", "1", 1);
  EXPECT_EQ(cuda_choose_device({2, 4, false, false}, 1), 0);
}

TEST(CudaVersion, ReadsLikeNvidiaSmi) {
  EXPECT_EQ(cuda_version_string(13000), "13.0");
  EXPECT_EQ(cuda_version_string(12080), "12.8");
}

TEST(CudaFactory, WithoutADeviceTheBackendIsOneClearError) {
  const auto names = device_backends();
  const bool listed = std::find(names.begin(), names.end(), "cuda") != names.end();
#if defined(HPCML_HAS_CUDA)
  EXPECT_TRUE(listed);
  const auto info = cuda_info();
  EXPECT_TRUE(info.compiled);
  if (!info.devices.empty()) GTEST_SKIP() << "a CUDA device is visible: the gpu tests cover it";
  try {
    make_backend("cuda", 1);
    FAIL() << "no error";
  } catch (const NotAvailableError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("cuda: compiled, but no CUDA device is visible (cudaGetDeviceCount: ", 0),
              0u)
        << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
#else
  EXPECT_FALSE(listed);
  EXPECT_FALSE(cuda_info().compiled);
  EXPECT_THROW(make_backend("cuda", 1), NotAvailableError);
#endif
}

}  // namespace
}  // namespace hpcml::kernels

// Layout detection from SLURM_* / PMI_* variables, and the MPI/launcher mismatch warning.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "hpcml/launch/environment.hpp"

namespace hpcml::launch {
namespace {

// Sets variables for one test and removes every launcher variable afterwards.
class LaunchEnvironment : public ::testing::Test {
 protected:
  void SetUp() override { clear(); }
  void TearDown() override { clear(); }
  static void clear() {
    for (const char* v :
         {"SLURM_STEP_ID", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_JOB_NUM_NODES",
          "SLURM_STEP_NUM_NODES", "SLURM_CPUS_PER_TASK", "SLURM_ARRAY_TASK_ID",
          "SLURM_ARRAY_JOB_ID", "SLURM_RESTART_COUNT", "SLURM_GPUS_ON_NODE", "SLURM_JOB_ID",
          "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "PMI_FD",
          "HYDRA_CONTROL_FD", "CUDA_VISIBLE_DEVICES"})
      unsetenv(v);
  }
  static void set(const char* k, const char* v) { setenv(k, v, 1); }
};

TEST_F(LaunchEnvironment, SrunStepVariables) {
  set("SLURM_JOB_ID", "77");
  set("SLURM_STEP_ID", "0");
  set("SLURM_PROCID", "1");
  set("SLURM_NTASKS", "2");
  set("SLURM_LOCALID", "1");
  set("SLURM_STEP_NUM_NODES", "1");
  set("SLURM_CPUS_PER_TASK", "3");
  set("SLURM_ARRAY_JOB_ID", "70");
  set("SLURM_ARRAY_TASK_ID", "4");
  set("SLURM_RESTART_COUNT", "2");
  set("SLURM_GPUS_ON_NODE", "2");
  RuntimeLayout l = detect_layout(1, 2, 1, 2, 1, 0);
  EXPECT_EQ(l.launcher, "srun");
  EXPECT_TRUE(l.under_slurm);
  EXPECT_EQ(l.env.source, "SLURM");
  EXPECT_EQ(l.env.rank, 1);
  EXPECT_EQ(l.env.size, 2);
  EXPECT_EQ(l.env.local_rank, 1);
  EXPECT_EQ(l.env.nodes, 1);
  EXPECT_EQ(l.threads_per_rank, 3);
  EXPECT_EQ(l.threads_source, "SLURM_CPUS_PER_TASK");
  EXPECT_EQ(l.array_task_id, 4);
  EXPECT_EQ(l.array_job_id, "70");
  EXPECT_EQ(l.restart_count, 2);
  EXPECT_EQ(l.gpus_on_node, 2);
  EXPECT_EQ(l.mismatch, "");
  const std::string d = describe(l);
  EXPECT_NE(d.find("SLURM: rank 1 of 2, local rank 1, 1 node(s)"), std::string::npos) << d;
  EXPECT_NE(d.find("array             job 70 task 4"), std::string::npos) << d;
}

TEST_F(LaunchEnvironment, SingletonsUnderSrunAreReported) {
  set("SLURM_STEP_ID", "0");
  set("SLURM_PROCID", "1");
  set("SLURM_NTASKS", "2");
  RuntimeLayout l = detect_layout(0, 1, 0, 1, 1, 0);
  EXPECT_NE(l.mismatch.find("singletons"), std::string::npos) << l.mismatch;
  EXPECT_NE(describe(l).find("WARNING"), std::string::npos);
}

TEST_F(LaunchEnvironment, BatchShellIsNotAStep) {
  // In the batch script itself SLURM_PROCID=0 and SLURM_NTASKS is the job's: not this process.
  set("SLURM_JOB_ID", "5");
  set("SLURM_PROCID", "0");
  set("SLURM_NTASKS", "8");
  RuntimeLayout l = detect_layout(0, 1, 0, 1, 1, 0);
  EXPECT_EQ(l.env.source, "");
  EXPECT_EQ(l.mismatch, "");
}

TEST_F(LaunchEnvironment, HydraPmiVariables) {
  set("PMI_RANK", "2");
  set("PMI_SIZE", "3");
  set("MPI_LOCALRANKID", "2");
  set("PMI_FD", "5");
  set("CUDA_VISIBLE_DEVICES", "0,1,3");
  RuntimeLayout l = detect_layout(2, 3, 2, 3, 1, 0);
  EXPECT_EQ(l.launcher, "mpiexec");
  EXPECT_EQ(l.env.source, "PMI");
  EXPECT_EQ(l.env.local_rank, 2);
  EXPECT_EQ(l.gpus_on_node, 3);
  EXPECT_EQ(l.mismatch, "");
  EXPECT_EQ(detect_layout(0, 1, 0, 1, 1, 0).mismatch.empty(), false);
}

TEST_F(LaunchEnvironment, MpiexecInsideAnAllocation) {
  // Hydra inside salloc/sbatch starts one proxy per node with srun: rank 3 of 4 (local
  // rank 1 on the second node) carries the proxy step's SLURM_PROCID=1, not its rank.
  set("SLURM_JOB_ID", "9");
  set("SLURM_STEP_ID", "0");
  set("SLURM_PROCID", "1");
  set("SLURM_NTASKS", "4");
  set("SLURM_LOCALID", "0");
  set("SLURM_STEP_NUM_NODES", "2");
  set("PMI_RANK", "3");
  set("PMI_SIZE", "4");
  set("PMI_FD", "6");
  set("MPI_LOCALRANKID", "1");
  set("MPI_LOCALNRANKS", "2");
  RuntimeLayout l = detect_layout(3, 4, 1, 2, 2, 0);
  EXPECT_EQ(l.launcher, "mpiexec");
  EXPECT_TRUE(l.under_slurm);
  EXPECT_EQ(l.env.source, "PMI");
  EXPECT_EQ(l.env.rank, 3);
  EXPECT_EQ(l.env.size, 4);
  EXPECT_EQ(l.env.local_rank, 1);
  EXPECT_EQ(l.mismatch, "");
  EXPECT_NE(describe(l).find("launcher          mpiexec (inside Slurm job 9)"), std::string::npos);
  // srun --mpi=pmi2 sets PMI_RANK too, but not MPI_LOCALRANKID: still srun.
  unsetenv("MPI_LOCALRANKID");
  set("PMI_RANK", "1");
  l = detect_layout(1, 4, 0, 2, 2, 0);
  EXPECT_EQ(l.launcher, "srun");
  EXPECT_EQ(l.env.source, "SLURM");
  EXPECT_EQ(l.mismatch, "");
}

TEST_F(LaunchEnvironment, MalformedValuesAreIgnored) {
  set("SLURM_STEP_ID", "0");
  set("SLURM_PROCID", "x");
  set("SLURM_NTASKS", "2");
  set("SLURM_CPUS_PER_TASK", "4;id");
  RuntimeLayout l = detect_layout(0, 1, 0, 1, 1, 2);
  EXPECT_EQ(l.env.source, "");
  EXPECT_EQ(l.threads_per_rank, 2);
  EXPECT_EQ(l.threads_source, "config");
}

}  // namespace
}  // namespace hpcml::launch

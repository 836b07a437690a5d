// Sweep expansion, array splitting, manifests, time/memory parsing, status and collect.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/launch/job_spec.hpp"
#include "hpcml/launch/submitter.hpp"
#include "hpcml/launch/sweep.hpp"
#include "test_util.hpp"

namespace hpcml::launch {
namespace {

namespace fs = std::filesystem;

SweepSpec spec_of(const std::string& toml) {
  ConfigDoc doc = ConfigDoc::parse(toml, "test.toml");
  return read_sweep_spec(doc);
}

TEST(LaunchSweep, GridIsTheCartesianProductLastKeyFastest) {
  auto tasks =
      expand_sweep(spec_of("[sweep.params.optimizer]\nlr = [0.1, "
                           "0.01]\n[sweep.params.train]\nbatch_size = [32, 64, 128]\n"));
  ASSERT_EQ(tasks.size(), 6u);
  EXPECT_EQ(tasks[0], (Assignment{{"optimizer.lr", "0.1"}, {"train.batch_size", "32"}}));
  EXPECT_EQ(tasks[1], (Assignment{{"optimizer.lr", "0.1"}, {"train.batch_size", "64"}}));
  EXPECT_EQ(tasks[5], (Assignment{{"optimizer.lr", "0.01"}, {"train.batch_size", "128"}}));
  std::set<Assignment> distinct(tasks.begin(), tasks.end());
  EXPECT_EQ(distinct.size(), 6u);
}

TEST(LaunchSweep, ZipWalksListsInLockStep) {
  auto tasks =
      expand_sweep(spec_of("[sweep]\nmode = \"zip\"\n[sweep.params.optimizer]\nlr = [0.1, 0.2, "
                           "0.3]\nschedule = [\"constant\", "
                           "\"cosine\", \"constant\"]\n"));
  ASSERT_EQ(tasks.size(), 3u);
  EXPECT_EQ(tasks[1], (Assignment{{"optimizer.lr", "0.2"}, {"optimizer.schedule", "\"cosine\""}}));
  EXPECT_THROW(spec_of("[sweep]\nmode = \"zip\"\n[sweep.params.a]\nx = [1, 2]\ny = [1]\n"),
               ConfigError);
}

TEST(LaunchSweep, RandomIsSeededAndStaysInRange) {
  const std::string t =
      "[sweep]\nmode = \"random\"\nsamples = 50\nseed = 7\n[sweep.params.train]\nbatch_size = [32, "
      "64]\n"
      "[sweep.log_uniform.optimizer]\nlr = [1e-4, 1e-1]\n[sweep.uniform.optimizer]\nmomentum = "
      "[0.5, 0.99]\n"
      "[sweep.uniform.train]\nepochs = [1, 3]\n";
  auto a = expand_sweep(spec_of(t));
  auto b = expand_sweep(spec_of(t));
  ASSERT_EQ(a.size(), 50u);
  EXPECT_EQ(a, b);
  auto c = expand_sweep(spec_of(test::replace_all(t, "seed = 7", "seed = 8")));
  EXPECT_NE(a, c);
  std::set<std::string> epochs;
  for (const auto& task : a) {
    for (const auto& [k, v] : task) {
      if (k == "optimizer.lr") {
        double x = std::stod(v);
        EXPECT_GE(x, 1e-4);
        EXPECT_LE(x, 1e-1);
      } else if (k == "optimizer.momentum") {
        double x = std::stod(v);
        EXPECT_GE(x, 0.5);
        EXPECT_LE(x, 0.99);
        EXPECT_NE(v.find_first_of(".e"), std::string::npos)
            << "a float must stay a TOML float: " << v;
      } else if (k == "train.epochs") {
        epochs.insert(v);
      } else {
        EXPECT_TRUE(v == "32" || v == "64") << v;
      }
    }
  }
  EXPECT_EQ(epochs, (std::set<std::string>{"1", "2", "3"}));
  EXPECT_THROW(spec_of("[sweep.uniform.a]\nx = [0, 1]\n"), ConfigError);  // ranges need random mode
  EXPECT_THROW(spec_of("[sweep]\nmode = \"random\"\n[sweep.params.a]\nx = [1]\n"),
               ConfigError);  // no samples
}

TEST(LaunchSweep, BadSweepTablesAreConfigErrors) {
  EXPECT_THROW(spec_of("[sweep]\nmode = \"grid\"\n"), ConfigError);  // no parameters
  EXPECT_THROW(spec_of("[sweep]\nmode = \"mesh\"\n[sweep.params.a]\nx = [1]\n"), ConfigError);
  EXPECT_THROW(spec_of("[sweep.params.a]\nx = []\n"), ConfigError);
  EXPECT_THROW(spec_of("[sweep.params.a]\nx = 3\n"), ConfigError);
  EXPECT_THROW(spec_of("[sweep.params.slurm]\nnodes = [1, 2]\n"), ConfigError);
  EXPECT_THROW(spec_of("[sweep.params.a]\nx = [\"ok\", \"new\\nline\"]\n"), ConfigError);
  EXPECT_THROW(spec_of("[sweep.params.a]\nx = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\ny = [1, 2, 3, 4, 5, "
                       "6, 7, 8, 9, 10]\n"
                       "z = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nw = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
                       "v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nu = [1, 2]\n"),
               ConfigError);  // 100000 tasks is the cap
  EXPECT_TRUE(spec_of("[train]\nepochs = 1\n").empty());
}

TEST(LaunchSweep, ArraysAreSplitBelowMaxArraySizeEachFromZero) {
  auto chunks = split_arrays(2500, 1001);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].offset, 0);
  EXPECT_EQ(chunks[0].count, 1001);
  EXPECT_EQ(chunks[1].offset, 1001);
  EXPECT_EQ(chunks[2].offset, 2002);
  EXPECT_EQ(chunks[2].count, 498);
  EXPECT_EQ(split_arrays(6, 1001).size(), 1u);
  EXPECT_EQ(split_arrays(6, 6).size(), 1u);
  EXPECT_EQ(split_arrays(7, 6).size(), 2u);
}

TEST(LaunchSweep, ArrayTaskListsParseLikeSlurmPrintsThem) {
  EXPECT_EQ(parse_array_task_list("0-5%2"), (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(parse_array_task_list("1,3-7:2"), (std::vector<int>{1, 3, 5, 7}));
  EXPECT_EQ(parse_array_task_list("4"), (std::vector<int>{4}));
}

TEST(LaunchSweep, ManifestRoundTrips) {
  test::TempDir tmp;
  std::vector<Assignment> tasks{{{"optimizer.lr", "0.1"}, {"data.path", "\"a b=c\""}},
                                {{"optimizer.lr", "0.2"}}};
  write_manifest(tmp.path() + "/manifest.tsv", tasks);
  auto back = read_manifest(tmp.path() + "/manifest.tsv");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].name, "task-0000");
  EXPECT_EQ(back[0].params, tasks[0]);
  EXPECT_EQ(back[1].id, 1);
}

TEST(LaunchJobSpec, TimeAndMemoryFormats) {
  ConfigDoc doc = ConfigDoc::parse("", "t.toml");
  EXPECT_EQ(parse_time_minutes(doc, "k", "90"), 90);
  EXPECT_EQ(parse_time_minutes(doc, "k", "10:30"), 11);  // MM:SS rounds up
  EXPECT_EQ(parse_time_minutes(doc, "k", "01:00:00"), 60);
  EXPECT_EQ(parse_time_minutes(doc, "k", "2-00"), 2880);
  EXPECT_EQ(parse_time_minutes(doc, "k", "1-02:03"), 1563);
  EXPECT_EQ(parse_time_minutes(doc, "k", "1-00:00:01"), 1441);
  for (const char* bad : {"", "0", "1:2:3:4", "x", "1-", "-5", "10m", "1;id"})
    EXPECT_THROW(parse_time_minutes(doc, "k", bad), ConfigError) << bad;
  EXPECT_EQ(format_time(1563), "1-02:03:00");
  EXPECT_EQ(format_time(59), "00:59:00");
  EXPECT_EQ(parse_mem_mb(doc, "k", "500"), 500);
  EXPECT_EQ(parse_mem_mb(doc, "k", "4G"), 4096);
  EXPECT_EQ(parse_mem_mb(doc, "k", "2048K"), 2);
  EXPECT_EQ(parse_mem_mb(doc, "k", "1T"), 1048576);
  for (const char* bad : {"", "G", "4X", "0", "4G;id"})
    EXPECT_THROW(parse_mem_mb(doc, "k", bad), ConfigError) << bad;
}

// A sweep directory as the array tasks leave it: two finished, one failed
// with an exit code, one killed while running, one never started, one still queued.
TEST(LaunchSweep, StatusAndCollectReadWhatTasksWrote) {
  test::TempDir tmp;
  const std::string d = tmp.path();
  std::vector<Assignment> tasks;
  for (int i = 0; i < 6; ++i) tasks.push_back({{"optimizer.lr", std::to_string(i) + ".5"}});
  write_manifest(d + "/manifest.tsv", tasks);
  test::write_file(d + "/sweep.json", R"({"metric": "final_test_acc", "goal": "max", "jobs": []})");
  auto task = [&](int i) { return d + "/" + task_name(i); };
  for (int i = 0; i < 6; ++i) fs::create_directories(task(i) + "/train");
  test::write_file(task(0) + "/state", "exited 0 2026-01-01T00:00:00Z job=1 restart=0\n");
  test::write_file(task(0) + "/train/summary.json", R"({"final_test_acc": 0.80, "wall_s": 3.0})");
  test::write_file(task(1) + "/state", "exited 0 2026-01-01T00:00:00Z job=2 restart=0\n");
  test::write_file(task(1) + "/train/summary.json", R"({"final_test_acc": 0.85, "wall_s": 2.0})");
  test::write_file(task(2) + "/state", "exited 1 2026-01-01T00:00:00Z job=3 restart=0\n");
  test::write_file(task(2) + "/job.log", "hpcml: error: data.path 'nowhere': no manifest.json\n");
  test::write_file(task(3) + "/state", "running 2026-01-01T00:00:00Z job=4 restart=0\n");
  std::map<int, QueueState> queue{{5, {"PENDING", "JobArrayTaskLimit"}}};

  auto st = sweep_status(d, queue);
  ASSERT_EQ(st.size(), 6u);
  EXPECT_EQ(st[0].state, "COMPLETED");
  EXPECT_EQ(st[2].state, "FAILED");
  EXPECT_EQ(st[2].exit_code, 1);
  EXPECT_NE(st[2].reason.find("no manifest.json"), std::string::npos) << st[2].reason;
  EXPECT_EQ(st[3].state, "LOST");
  EXPECT_EQ(st[4].state, "NOT_STARTED");
  EXPECT_EQ(st[5].state, "PENDING");
  EXPECT_EQ(st[5].reason, "JobArrayTaskLimit");

  const std::string md = collect_sweep(d, st, "", "");
  EXPECT_NE(md.find("2 of 6 tasks completed"), std::string::npos) << md;
  EXPECT_NE(md.find("Best: task 1 (task-0001), optimizer.lr = 1.5"), std::string::npos) << md;
  EXPECT_LT(md.find("| 1 | 1.5 | 0.85"), md.find("| 0 | 0.5 | 0.8")) << md;
  EXPECT_NE(md.find("- task 2 (task-0002): FAILED: exit code 1: hpcml: error: data.path"),
            std::string::npos)
      << md;
  const std::string csv = test::read_file(d + "/results.csv");
  EXPECT_EQ(csv.rfind("task,optimizer.lr,final_test_acc,wall_s,state\n1,1.5,0.85,2,COMPLETED\n0,0."
                      "5,0.8,3,COMPLETED\n",
                      0),
            0u)
      << csv;
  // Lowest first when asked.
  const std::string md_min = collect_sweep(d, st, "wall_s", "min");
  EXPECT_NE(md_min.find("Best: task 1"), std::string::npos);
}

}  // namespace
}  // namespace hpcml::launch

#include "hpcml/core/config_tables.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"

using hpcml::ConfigDoc;
using hpcml::ConfigReader;
using hpcml::tables_left_to_others;

namespace {

ConfigDoc job_config() {
  return ConfigDoc::parse(R"(
[model]
hidden = [8]
[train]
epochs = 1
[parallel]
algo = "ring"
[slurm]
nodes = 2
[scale]
ranks = [1, 2]
[synthetic]
serial_fraction = 0.2
[sweep.params]
"optimizer.lr" = [0.1, 0.2]
)",
                          "job.toml");
}

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

TEST(ConfigTables, TrainLeavesOnlyTheOtherCommandsTables) {
  const ConfigDoc doc = job_config();
  const auto t = tables_left_to_others(ConfigReader::kTrain, doc);
  for (const char* x : {"slurm", "sweep", "site", "scale"}) EXPECT_TRUE(has(t, x)) << x;
  for (const char* x : {"model", "train", "parallel", "synthetic"}) EXPECT_FALSE(has(t, x)) << x;
}

TEST(ConfigTables, ATrainTypoTableIsStillAnError) {
  ConfigDoc doc = ConfigDoc::parse("[modle]\nhidden = [8]\n[slurm]\nnodes = 1\n", "typo.toml");
  EXPECT_THROW(doc.check_unknown(tables_left_to_others(ConfigReader::kTrain, doc)),
               hpcml::ConfigError);
}

TEST(ConfigTables, ScaleAndSyntheticReadOnlyTheirOwnTables) {
  const ConfigDoc doc = job_config();
  const auto scale = tables_left_to_others(ConfigReader::kScale, doc);
  EXPECT_FALSE(has(scale, "scale"));
  for (const char* x : {"model", "train", "parallel", "slurm", "synthetic", "sweep"})
    EXPECT_TRUE(has(scale, x)) << x;
  const auto synthetic = tables_left_to_others(ConfigReader::kSynthetic, doc);
  EXPECT_FALSE(has(synthetic, "synthetic"));
  EXPECT_TRUE(has(synthetic, "scale"));
  const auto slurm = tables_left_to_others(ConfigReader::kScaleSlurm, doc);
  EXPECT_FALSE(has(slurm, "slurm"));
  EXPECT_FALSE(has(slurm, "site"));
  EXPECT_TRUE(has(slurm, "scale"));
  // Each table is listed once, however many keys it has.
  EXPECT_EQ(std::count(scale.begin(), scale.end(), "sweep"), 1);
}

TEST(ConfigTables, SubmitLeavesCommKeysAndSweepTasksOnlyTraining) {
  const ConfigDoc doc = job_config();
  const auto submit = tables_left_to_others(ConfigReader::kSubmit, doc);
  EXPECT_TRUE(has(submit, "parallel"));
  EXPECT_TRUE(has(submit, "scale"));
  EXPECT_FALSE(has(submit, "slurm"));
  const auto task = tables_left_to_others(ConfigReader::kSweepTask, doc);
  for (const char* x : {"parallel", "scale", "slurm", "sweep", "site"}) EXPECT_TRUE(has(task, x));
}

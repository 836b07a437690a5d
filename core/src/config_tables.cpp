#include "hpcml/core/config_tables.hpp"

#include <algorithm>

#include "hpcml/core/config_doc.hpp"

namespace hpcml {

namespace {

// Every table of the document but `keep`, in order of first appearance.
std::vector<std::string> all_tables_but(const ConfigDoc& doc,
                                        const std::vector<std::string>& keep) {
  std::vector<std::string> others;
  for (const auto& k : doc.leaf_keys()) {
    const std::string t = k.substr(0, k.find('.'));
    if (std::find(keep.begin(), keep.end(), t) == keep.end() &&
        std::find(others.begin(), others.end(), t) == others.end())
      others.push_back(t);
  }
  return others;
}

}  // namespace

std::vector<std::string> tables_left_to_others(ConfigReader reader, const ConfigDoc& doc) {
  switch (reader) {
    case ConfigReader::kTrain:
      return {"slurm", "sweep", "site", "scale"};
    case ConfigReader::kSubmit:
      return {"parallel", "scale"};
    case ConfigReader::kSweepTask:
      return {"parallel", "scale", "slurm", "sweep", "site"};
    case ConfigReader::kScale:
      return all_tables_but(doc, {"scale"});
    case ConfigReader::kScaleSlurm:
      return all_tables_but(doc, {"slurm", "site"});
    case ConfigReader::kSynthetic:
      return all_tables_but(doc, {"synthetic"});
  }
  return {};
}

}  // namespace hpcml

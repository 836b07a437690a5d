// Finding programs on PATH: shared by launch/ (sbatch, mpiexec) and analysis/
// (rsvg-convert), which must not depend on each other.
#pragma once

#include <string>

namespace hpcml {

/// Full path of the first executable named `program` in the directories of
/// $PATH (empty entries skipped), or "" when there is none or PATH is unset.
std::string find_on_path(const std::string& program);

}  // namespace hpcml

// Internal: the libslurm submitter, compiled only with HPCML_HAS_SLURM.
#pragma once

#include <memory>

#include "hpcml/launch/submitter.hpp"

namespace hpcml::launch {
std::unique_ptr<Submitter> make_libslurm_submitter();
}

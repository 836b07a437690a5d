// Creating compute backends by name.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hpcml/core/backend.hpp"

namespace hpcml::kernels {

/// "reference" (serial oracle) or "omp" (OpenMP + CBLAS, `threads` threads).
/// Names of backends not compiled into this build ("kokkos", "cuda") throw
/// NotAvailableError saying so; unknown names throw ConfigError listing the choices.
std::unique_ptr<Backend> make_backend(const std::string& name, int threads);

/// Backend names this build can create.
std::vector<std::string> available_backends();

/// One line describing the BLAS library in use (vendor, version/config string).
std::string blas_description();

}  // namespace hpcml::kernels

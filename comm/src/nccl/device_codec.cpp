// device_codec.hpp where the CUDA compiler is not enabled (NCCL found through
// the CUDA runtime alone, HPCML_ENABLE_CUDA=OFF or no nvcc): no kernels, so
// every call throws NotAvailableError. With nvcc, device_codec.cu has them.
#include "hpcml/config.hpp"

#ifndef HPCML_HAS_CUDA

#include <string>

#include "device_codec.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::comm::nccl {
namespace {
[[noreturn]] void not_built(Codec codec, const char* what) {
  HPCML_THROW(NotAvailableError,
              std::string(what) + ": compression '" + to_string(codec) +
                  "' is not built on the device (this build has NCCL but no CUDA compiler: "
                  "configure with HPCML_ENABLE_CUDA and nvcc)");
}
}  // namespace

void device_encode(Codec codec, const float*, std::size_t, float, std::uint16_t*, void*) {
  not_built(codec, "device_encode");
}
void device_decode(Codec codec, const std::uint16_t*, std::size_t, float*, void*) {
  not_built(codec, "device_decode");
}

}  // namespace hpcml::comm::nccl

#endif

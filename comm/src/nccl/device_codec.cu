// CUDA kernels of the fp16 / bf16 gradient codecs (device_codec.hpp). One
// thread per element in a grid-stride loop; the conversions are
// half_convert.hpp's (--fmad=false, IEEE subnormals: the host's bits).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "device_codec.hpp"
#include "half_convert.hpp"
#include "hpcml/core/error.hpp"
#include "nccl_comm.hpp"

namespace hpcml::comm::nccl {
namespace {

// Checks a kernel launch (cudaGetLastError right after it): an Error naming
// the kernel, CUDA's error, the file and the line (nccl_comm.cpp's fail_cuda).
#define HPCML_CODEC_LAUNCHED(kernel)                                          \
  do {                                                                        \
    const cudaError_t hpcml_codec_error_ = cudaGetLastError();                \
    if (hpcml_codec_error_ != cudaSuccess)                                    \
      fail_cuda(hpcml_codec_error_, "launch of " kernel, __FILE__, __LINE__); \
  } while (0)

constexpr unsigned kThreads = 256;
constexpr std::size_t kMaxBlocks = 65535;

unsigned blocks_for(std::size_t n) {
  return static_cast<unsigned>(std::min<std::size_t>((n + kThreads - 1) / kThreads, kMaxBlocks));
}

template <bool kFp16>
__global__ void encode_kernel(const float* __restrict__ in, std::size_t n, float prescale,
                              std::uint16_t* __restrict__ out) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float x = half::prescaled(in[i], prescale);
    out[i] = kFp16 ? half::to_fp16(x) : half::to_bf16(x);
  }
}

template <bool kFp16>
__global__ void decode_kernel(const std::uint16_t* __restrict__ in, std::size_t n,
                              float* __restrict__ out) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    out[i] = kFp16 ? half::from_fp16(in[i]) : half::from_bf16(in[i]);
}

void require_half_codec(Codec codec, const char* what) {
  if (codec != Codec::kFp16 && codec != Codec::kBf16)
    HPCML_THROW(Error, std::string(what) + ": compression '" + to_string(codec) +
                           "' is not built on the device (only fp16 and bf16 are)");
}

}  // namespace

void device_encode(Codec codec, const float* in, std::size_t n, float prescale, std::uint16_t* out,
                   void* stream) {
  require_half_codec(codec, "device_encode");
  if (n == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  if (codec == Codec::kFp16) {
    encode_kernel<true><<<blocks_for(n), kThreads, 0, s>>>(in, n, prescale, out);
    HPCML_CODEC_LAUNCHED("encode_kernel<fp16>");
  } else {
    encode_kernel<false><<<blocks_for(n), kThreads, 0, s>>>(in, n, prescale, out);
    HPCML_CODEC_LAUNCHED("encode_kernel<bf16>");
  }
}

void device_decode(Codec codec, const std::uint16_t* in, std::size_t n, float* out, void* stream) {
  require_half_codec(codec, "device_decode");
  if (n == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  if (codec == Codec::kFp16) {
    decode_kernel<true><<<blocks_for(n), kThreads, 0, s>>>(in, n, out);
    HPCML_CODEC_LAUNCHED("decode_kernel<fp16>");
  } else {
    decode_kernel<false><<<blocks_for(n), kThreads, 0, s>>>(in, n, out);
    HPCML_CODEC_LAUNCHED("decode_kernel<bf16>");
  }
}

}  // namespace hpcml::comm::nccl

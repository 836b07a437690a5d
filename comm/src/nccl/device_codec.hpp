// The fp16 and bf16 gradient codecs as CUDA kernels, for the NCCL transport's
// compressed buckets (docs/communication.md "Device codecs"). The element
// conversions are half_convert.hpp's, shared with a host unit test: the device
// writes the same bits as comm::encode / comm::decode_add (comm/src/codec.cpp).
//
// Built from device_codec.cu when the CUDA compiler is enabled (HPCML_HAS_CUDA
// with HPCML_HAS_NCCL); an NCCL build without nvcc gets device_codec.cpp, whose
// functions throw NotAvailableError.
#pragma once

#include <cstddef>
#include <cstdint>

#include "hpcml/comm/codec.hpp"

namespace hpcml::comm::nccl {

/// out[i] = the fp16 (codec kFp16) or bf16 (kBf16) encoding of in[i] * prescale, with the
/// rounding and saturation of comm/src/codec.cpp's host codec. Queued on `stream` (a cudaStream_t).
void device_encode(Codec codec, const float* in, std::size_t n, float prescale, std::uint16_t* out,
                   void* stream);
/// out[i] = decoded in[i] (fp32). Queued on `stream`.
void device_decode(Codec codec, const std::uint16_t* in, std::size_t n, float* out, void* stream);

}  // namespace hpcml::comm::nccl

# CUDA detection (docs/gpu.md). Included from HpcmlOptions.cmake at the top
# level, so that enable_language(CUDA) and the CUDA:: targets are visible to
# every folder (kernels/cuda uses CUDA::cublas, comm/ may use CUDA::cudart).
#
# HPCML_ENABLE_CUDA: AUTO (default) builds the cuda backend when nvcc is found
# (CMAKE_CUDA_COMPILER, CUDACXX, PATH, or /usr/local/cuda/bin/nvcc); ON makes
# it required; OFF does not look. Results:
#   HPCML_HAS_CUDA      1 when built (also #defined in hpcml/config.hpp)
#   CUDA::cudart, CUDA::cublas   imported targets (from FindCUDAToolkit)
# CMAKE_CUDA_ARCHITECTURES defaults to Hopper machine code plus its PTX
# ("90-real;90-virtual"), so newer GPUs JIT the PTX; set it to add others.
hpcml_tristate_option(HPCML_ENABLE_CUDA "CUDA backend (kernels/cuda)")

set(HPCML_HAS_CUDA "")
if(NOT HPCML_ENABLE_CUDA_MODE STREQUAL "OFF")
  # nvcc is often not on PATH (Debian, CI images): look where the toolkit installs.
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(_hpcml_nvcc nvcc HINTS ENV CUDA_HOME ENV CUDA_PATH PATH_SUFFIXES bin
                 PATHS /usr/local/cuda/bin)
    if(_hpcml_nvcc)
      set(CMAKE_CUDA_COMPILER "${_hpcml_nvcc}" CACHE FILEPATH "CUDA compiler")
    endif()
  endif()
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
    set(CMAKE_CUDA_ARCHITECTURES "90-real;90-virtual" CACHE STRING "CUDA architectures")
  endif()
  # One shared CUDA runtime for every target (comm's NCCL code links CUDA::cudart
  # too): two copies of the runtime in one process would not share their state.
  if(NOT DEFINED CMAKE_CUDA_RUNTIME_LIBRARY)
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit)
  endif()
  set(_hpcml_cuda_found FALSE)
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND TARGET CUDA::cublas)
    set(_hpcml_cuda_found TRUE)
    set(HPCML_HAS_CUDA 1)
    set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no CUDA20 for nvcc
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  endif()
  hpcml_tristate_result(HPCML_ENABLE_CUDA FOUND ${_hpcml_cuda_found} LABEL "CUDA backend"
    SUMMARY "nvcc ${CMAKE_CUDA_COMPILER_VERSION} (${CMAKE_CUDA_COMPILER}), architectures ${CMAKE_CUDA_ARCHITECTURES}, toolkit ${CUDAToolkit_VERSION}"
    MISSING "no working nvcc with cuBLAS was found"
    HINT "set CMAKE_CUDA_COMPILER (or CUDACXX) to the toolkit's nvcc")
endif()

# hpcml_cuda_options(TARGET): hpcml's nvcc flags for TARGET's CUDA sources.
# --fmad=false: no fused multiply-adds, so elementwise kernels round as the host
# does (the same bits as the host code); the host compiler's warnings, errors
# with HPCML_WERROR (like hpcml_warnings for C++).
function(hpcml_cuda_options target)
  set(_werror "")
  if(HPCML_WERROR)
    set(_werror ",-Werror")
  endif()
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:--fmad=false -Xcompiler=-Wall,-Wextra,-Wshadow${_werror}>)
  if(HPCML_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
  endif()
endfunction()

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
if(DEFINED CACHE{HPCML_ENABLE_CUDA})
  # A build directory configured before the backend existed cached OFF from
  # the old placeholder option: start it at AUTO like a fresh one.
  get_property(_hpcml_cuda_help CACHE HPCML_ENABLE_CUDA PROPERTY HELPSTRING)
  if(_hpcml_cuda_help MATCHES "not implemented yet")
    unset(HPCML_ENABLE_CUDA CACHE)
  endif()
endif()
set(HPCML_ENABLE_CUDA AUTO CACHE STRING "CUDA backend (kernels/cuda): AUTO, ON or OFF")
set_property(CACHE HPCML_ENABLE_CUDA PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${HPCML_ENABLE_CUDA}" _hpcml_cuda_mode)
if(_hpcml_cuda_mode MATCHES "^(ON|YES|TRUE|Y|1)$")
  set(_hpcml_cuda_mode ON)
elseif(_hpcml_cuda_mode MATCHES "^(OFF|NO|FALSE|N|0)$")
  set(_hpcml_cuda_mode OFF)
elseif(NOT _hpcml_cuda_mode STREQUAL "AUTO")
  message(FATAL_ERROR "HPCML_ENABLE_CUDA='${HPCML_ENABLE_CUDA}': expected AUTO, ON or OFF")
endif()

set(HPCML_HAS_CUDA "")
if(NOT _hpcml_cuda_mode STREQUAL "OFF")
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
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND TARGET CUDA::cublas)
    set(HPCML_HAS_CUDA 1)
    set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no CUDA20 for nvcc
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    message(STATUS "CUDA backend: nvcc ${CMAKE_CUDA_COMPILER_VERSION} (${CMAKE_CUDA_COMPILER}), "
                   "architectures ${CMAKE_CUDA_ARCHITECTURES}, toolkit ${CUDAToolkit_VERSION}")
  elseif(_hpcml_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "HPCML_ENABLE_CUDA=ON but no working nvcc with cuBLAS was found: set "
                        "CMAKE_CUDA_COMPILER (or CUDACXX) to the toolkit's nvcc")
  else()
    message(STATUS "CUDA backend: not built (nvcc not found; set CMAKE_CUDA_COMPILER)")
  endif()
endif()

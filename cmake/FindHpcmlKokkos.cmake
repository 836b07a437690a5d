# FindHpcmlKokkos: Kokkos (and, optionally, Kokkos Kernels) for hpcml's kokkos backend.
#
# Result: the imported target HpcmlKokkos::kokkos (headers, libraries and compile
# flags of Kokkos, plus Kokkos Kernels when found) and the variables
#   HpcmlKokkos_FOUND            Kokkos usable
#   HpcmlKokkos_VERSION          Kokkos version (e.g. 3.4.01)
#   HpcmlKokkos_KERNELS_FOUND    Kokkos Kernels usable (GEMM through KokkosBlas::gemm)
#   HpcmlKokkos_SOURCE           "package <dir>" or "fallback <include dir>"
#
# Order:
# 1. find_package(Kokkos CONFIG): a site's own Kokkos wins (point Kokkos_ROOT or
#    CMAKE_PREFIX_PATH at it). Its Kokkos::kokkos target is used as it is, as long
#    as its include directories exist.
# 2. Fallback for Debian's Trilinos Kokkos (libtrilinos-kokkos-dev, Kokkos 3.4):
#    its KokkosConfig.cmake makes Kokkos::kokkos with the include directory
#    /usr/lib/include, which does not exist, so the target is unusable. Then the
#    headers are looked up in <prefix>/include/trilinos and the libraries
#    trilinos_kokkoscore (+ trilinos_kokkoskernels) next to them.
# Kokkos Kernels likewise: find_package(KokkosKernels CONFIG) for Kokkos::kokkoskernels,
# else KokkosBlas3_gemm.hpp + trilinos_kokkoskernels (not looked for when the
# caller set HPCML_KOKKOS_KERNELS=OFF).
#
# Also used by the installed hpcmlConfig.cmake to make the same target again for
# consumers of the static hpcml_kernels.
include(FindPackageHandleStandardArgs)

if(TARGET HpcmlKokkos::kokkos)
  set(HpcmlKokkos_FOUND TRUE)
  return()
endif()

set(HpcmlKokkos_KERNELS_FOUND FALSE)
set(HpcmlKokkos_SOURCE "")
set(_hk_link "")
set(_hk_include "")

# True when every include directory of `target` exists (Debian's does not).
function(_hpcml_kokkos_target_usable target out)
  set(${out} FALSE PARENT_SCOPE)
  if(NOT TARGET ${target})
    return()
  endif()
  get_target_property(_dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  if(NOT _dirs)
    # Kokkos 4 puts its include directories on Kokkos::kokkoscore; follow one level.
    get_target_property(_deps ${target} INTERFACE_LINK_LIBRARIES)
    foreach(_d IN LISTS _deps)
      if(TARGET ${_d})
        get_target_property(_more ${_d} INTERFACE_INCLUDE_DIRECTORIES)
        if(_more)
          list(APPEND _dirs ${_more})
        endif()
      endif()
    endforeach()
  endif()
  foreach(_d IN LISTS _dirs)
    if(_d MATCHES "^\\$<")
      continue()
    endif()
    if(NOT IS_DIRECTORY "${_d}")
      return()
    endif()
  endforeach()
  set(${out} TRUE PARENT_SCOPE)
endfunction()

# The site's CMAKE_CXX_EXTENSIONS stays ours: Debian's KokkosConfig.cmake forces it
# OFF in the cache when it is unset (hpcml sets it OFF anyway).
find_package(Kokkos CONFIG QUIET)
_hpcml_kokkos_target_usable(Kokkos::kokkos _hk_pkg_ok)
if(Kokkos_FOUND AND _hk_pkg_ok)
  set(_hk_link Kokkos::kokkos)
  set(HpcmlKokkos_VERSION "${Kokkos_VERSION}")
  set(HpcmlKokkos_SOURCE "package ${Kokkos_DIR}")
else()
  # Fallback: Debian/Trilinos layout. Kokkos_INCLUDE_DIRS (TriBITS) is a hint when set.
  find_path(HPCML_KOKKOS_INCLUDE_DIR Kokkos_Core.hpp
            HINTS ${Kokkos_INCLUDE_DIRS} PATH_SUFFIXES trilinos kokkos)
  find_library(HPCML_KOKKOS_CORE_LIBRARY NAMES trilinos_kokkoscore kokkoscore
               HINTS ${Kokkos_LIBRARY_DIRS})
  mark_as_advanced(HPCML_KOKKOS_INCLUDE_DIR HPCML_KOKKOS_CORE_LIBRARY)
  if(HPCML_KOKKOS_INCLUDE_DIR AND HPCML_KOKKOS_CORE_LIBRARY
     AND EXISTS "${HPCML_KOKKOS_INCLUDE_DIR}/KokkosCore_config.h")
    file(STRINGS "${HPCML_KOKKOS_INCLUDE_DIR}/KokkosCore_config.h" _hk_ver
         REGEX "^#define KOKKOS_VERSION [0-9]+")
    if(_hk_ver MATCHES "KOKKOS_VERSION ([0-9]+)")
      math(EXPR _hk_major "${CMAKE_MATCH_1} / 10000")
      math(EXPR _hk_minor "(${CMAKE_MATCH_1} / 100) % 100")
      math(EXPR _hk_patch "${CMAKE_MATCH_1} % 100")
      set(HpcmlKokkos_VERSION "${_hk_major}.${_hk_minor}.${_hk_patch}")
    endif()
    set(_hk_include "${HPCML_KOKKOS_INCLUDE_DIR}")
    set(_hk_link "${HPCML_KOKKOS_CORE_LIBRARY}" ${CMAKE_DL_LIBS})
    set(HpcmlKokkos_SOURCE "fallback ${HPCML_KOKKOS_INCLUDE_DIR}")
  endif()
endif()

# HPCML_KOKKOS_KERNELS=OFF skips Kokkos Kernels (GEMM through CBLAS then).
if(_hk_link AND (NOT DEFINED HPCML_KOKKOS_KERNELS OR HPCML_KOKKOS_KERNELS))
  find_package(KokkosKernels CONFIG QUIET)
  _hpcml_kokkos_target_usable(Kokkos::kokkoskernels _hk_kk_ok)
  if(KokkosKernels_FOUND AND _hk_kk_ok)
    list(PREPEND _hk_link Kokkos::kokkoskernels)
    set(HpcmlKokkos_KERNELS_FOUND TRUE)
  else()
    get_filename_component(_hk_libdir "${HPCML_KOKKOS_CORE_LIBRARY}" DIRECTORY)
    find_path(HPCML_KOKKOS_KERNELS_INCLUDE_DIR KokkosBlas3_gemm.hpp
              HINTS ${_hk_include} ${KokkosKernels_INCLUDE_DIRS} PATH_SUFFIXES trilinos)
    find_library(HPCML_KOKKOS_KERNELS_LIBRARY NAMES trilinos_kokkoskernels kokkoskernels
                 HINTS ${_hk_libdir} ${KokkosKernels_LIBRARY_DIRS})
    mark_as_advanced(HPCML_KOKKOS_KERNELS_INCLUDE_DIR HPCML_KOKKOS_KERNELS_LIBRARY)
    if(HPCML_KOKKOS_KERNELS_INCLUDE_DIR AND HPCML_KOKKOS_KERNELS_LIBRARY)
      list(APPEND _hk_include "${HPCML_KOKKOS_KERNELS_INCLUDE_DIR}")
      list(PREPEND _hk_link "${HPCML_KOKKOS_KERNELS_LIBRARY}")
      set(HpcmlKokkos_KERNELS_FOUND TRUE)
    endif()
  endif()
endif()

find_package_handle_standard_args(HpcmlKokkos REQUIRED_VARS _hk_link VERSION_VAR HpcmlKokkos_VERSION)

if(HpcmlKokkos_FOUND AND NOT TARGET HpcmlKokkos::kokkos)
  add_library(HpcmlKokkos::kokkos INTERFACE IMPORTED)
  if(_hk_include)
    list(REMOVE_DUPLICATES _hk_include)
    # SYSTEM: Kokkos' headers are not held to hpcml's -Werror warning set.
    target_include_directories(HpcmlKokkos::kokkos SYSTEM INTERFACE ${_hk_include})
  endif()
  target_link_libraries(HpcmlKokkos::kokkos INTERFACE ${_hk_link})
endif()
unset(_hk_link)
unset(_hk_include)

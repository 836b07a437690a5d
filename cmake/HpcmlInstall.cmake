# Install rules and the exported CMake package, in one place.
#
# `cmake --install build --prefix P` gives
#   P/bin/hpcml
#   P/include/hpcml/<module>/*.hpp and P/include/hpcml/config.hpp
#   P/lib/libhpcml_<module>.a
#   P/lib/cmake/hpcml/{hpcmlConfig,hpcmlConfigVersion,hpcmlTargets*}.cmake
#   P/share/hpcml/{configs,docs}, P/share/hpcml/modulefiles/hpcml/<version>.lua
# and `find_package(hpcml)` then provides hpcml::core, hpcml::kernels, hpcml::comm,
# hpcml::io, hpcml::launch, hpcml::analysis, hpcml::mpi (where built) and the
# executable hpcml::hpcml. Tests, benchmarks and tools are not installed.
#
# The module CMakeLists stay free of install code: this file walks a list of
# library targets (each guarded by if(TARGET), so a module that is absent or has
# moved is simply skipped), makes each one exportable and installs its headers
# from <target SOURCE_DIR>/include. Included at the end of the top-level
# CMakeLists, after every target exists.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(HPCML_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/hpcml
    CACHE STRING "Where the CMake package files go, relative to the prefix")
set(HPCML_INSTALL_DATADIR ${CMAKE_INSTALL_DATADIR}/hpcml)

# Library target -> short exported name (hpcml::<name>). Listed bottom-up.
set(_hpcml_install_libraries
    hpcml_core core
    hpcml_mpi mpi
    hpcml_kernels kernels
    hpcml_comm comm
    hpcml_io io
    hpcml_launch launch
    hpcml_analysis analysis)

# Makes a target's interface relocatable, whatever its CMakeLists wrote:
# - include dirs inside the source or build tree become $<BUILD_INTERFACE:...>,
#   and the installed include dir is added as $<INSTALL_INTERFACE:include>;
# - hpcml_warnings (our warning flags) never reaches the exported interface.
# Entries that are already generator expressions are kept as they are.
function(hpcml_make_exportable target)
  get_target_property(_dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  set(_new_dirs)
  if(_dirs)
    foreach(_d IN LISTS _dirs)
      if(_d MATCHES "^\\$<")
        list(APPEND _new_dirs "${_d}")
      else()
        cmake_path(IS_PREFIX PROJECT_SOURCE_DIR "${_d}" NORMALIZE _in_src)
        cmake_path(IS_PREFIX PROJECT_BINARY_DIR "${_d}" NORMALIZE _in_bin)
        if(_in_src OR _in_bin)
          list(APPEND _new_dirs "$<BUILD_INTERFACE:${_d}>")
        else()
          list(APPEND _new_dirs "${_d}")
        endif()
      endif()
    endforeach()
  endif()
  list(APPEND _new_dirs "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
  list(REMOVE_DUPLICATES _new_dirs)
  set_property(TARGET ${target} PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${_new_dirs}")

  get_target_property(_libs ${target} INTERFACE_LINK_LIBRARIES)
  if(_libs)
    set(_new_libs)
    foreach(_l IN LISTS _libs)
      if(_l STREQUAL "hpcml_warnings" OR _l STREQUAL "$<LINK_ONLY:hpcml_warnings>")
        list(APPEND _new_libs "$<BUILD_INTERFACE:${_l}>")
      else()
        list(APPEND _new_libs "${_l}")
      endif()
    endforeach()
    set_property(TARGET ${target} PROPERTY INTERFACE_LINK_LIBRARIES "${_new_libs}")
  endif()
endfunction()

# Installs the public headers of `target` (everything under `dir`, normally
# the module's include/ folder) into include/.
function(hpcml_install_headers target dir)
  if(IS_DIRECTORY "${dir}")
    install(DIRECTORY "${dir}/" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
            COMPONENT development FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h")
  endif()
endfunction()

set(HPCML_INSTALLED_COMPONENTS)
set(_pairs ${_hpcml_install_libraries})
while(_pairs)
  list(POP_FRONT _pairs _target _short)
  if(NOT TARGET ${_target})
    continue()
  endif()
  hpcml_make_exportable(${_target})
  set_target_properties(${_target} PROPERTIES EXPORT_NAME ${_short})
  install(TARGETS ${_target} EXPORT hpcmlTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
  get_target_property(_src ${_target} SOURCE_DIR)
  hpcml_install_headers(${_target} "${_src}/include")
  list(APPEND HPCML_INSTALLED_COMPONENTS ${_short})
endwhile()

# The generated configuration header every module includes.
install(FILES ${PROJECT_BINARY_DIR}/generated/hpcml/config.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hpcml COMPONENT development)

# The executable, exported too so that a consumer can call $<TARGET_FILE:hpcml::hpcml>.
if(TARGET hpcml)
  set_target_properties(hpcml PROPERTIES EXPORT_NAME hpcml)
  install(TARGETS hpcml EXPORT hpcmlTargets RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
          COMPONENT runtime)
endif()

install(EXPORT hpcmlTargets NAMESPACE hpcml:: DESTINATION ${HPCML_INSTALL_CMAKEDIR}
        COMPONENT development)

# ---- package configuration ---------------------------------------------------
# What hpcmlConfig.cmake must find again: the same choices this build made.
set(HPCML_CONFIG_HAS_OPENMP ${HPCML_ENABLE_OPENMP})
set(HPCML_CONFIG_HDF5_PKGCONFIG ${HPCML_HDF5_PKGCONFIG})
# The kokkos backend links Kokkos privately into the static hpcml_kernels: the
# package makes HpcmlKokkos::kokkos again with the same find module, pointed at
# the Kokkos this build used.
set(HPCML_CONFIG_HAS_KOKKOS ${HPCML_HAS_KOKKOS})
if(NOT HPCML_CONFIG_HAS_KOKKOS)
  set(HPCML_CONFIG_HAS_KOKKOS 0)
endif()
set(HPCML_CONFIG_KOKKOS_DIR "${Kokkos_DIR}")
if(HPCML_HAS_KOKKOS)
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/FindHpcmlKokkos.cmake
          DESTINATION ${HPCML_INSTALL_CMAKEDIR} COMPONENT development)
endif()
# The cuda backend links CUDA::cudart (public) and CUDA::cublas into the static
# hpcml_kernels: the package finds the same CUDA toolkit again.
set(HPCML_CONFIG_HAS_CUDA 0)
set(HPCML_CONFIG_CUDA_ROOT "")
if(HPCML_HAS_CUDA)
  set(HPCML_CONFIG_HAS_CUDA 1)
  get_filename_component(HPCML_CONFIG_CUDA_ROOT "${CUDAToolkit_BIN_DIR}" DIRECTORY)
endif()
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/hpcmlConfig.cmake.in ${PROJECT_BINARY_DIR}/hpcmlConfig.cmake
  INSTALL_DESTINATION ${HPCML_INSTALL_CMAKEDIR})
# 0.x: only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/hpcmlConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/hpcmlConfig.cmake ${PROJECT_BINARY_DIR}/hpcmlConfigVersion.cmake
        DESTINATION ${HPCML_INSTALL_CMAKEDIR} COMPONENT development)

# ---- data: configs, docs ---------------------------------------------------------
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs/ DESTINATION ${HPCML_INSTALL_DATADIR}/configs
        COMPONENT runtime)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${HPCML_INSTALL_DATADIR}/docs
        COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${HPCML_INSTALL_DATADIR}/docs
        COMPONENT runtime)

# ---- Lmod module file --------------------------------------------------------------
# Written at install time, because only then is the prefix known
# (`cmake --install --prefix P` overrides CMAKE_INSTALL_PREFIX).
set(HPCML_MODULEFILE_IN ${PROJECT_SOURCE_DIR}/packaging/modules/hpcml.lua.in)
if(EXISTS ${HPCML_MODULEFILE_IN})
  set(_mod_rel ${HPCML_INSTALL_DATADIR}/modulefiles/hpcml/${PROJECT_VERSION}.lua)
  # FindMPI's cached results (its version strings are not cached, so not reliable here).
  list(JOIN MPI_C_LIB_NAMES ", " _mpi_libs)
  set(HPCML_MPI_DESCRIPTION "library ${_mpi_libs}, launcher ${MPIEXEC_EXECUTABLE}")
  install(CODE "
    set(HPCML_VERSION \"${PROJECT_VERSION}\")
    set(HPCML_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
    set(HPCML_CMAKEDIR \"${HPCML_INSTALL_CMAKEDIR}\")
    set(HPCML_DATADIR \"${HPCML_INSTALL_DATADIR}\")
    set(HPCML_MPI_DESCRIPTION \"${HPCML_MPI_DESCRIPTION}\")
    set(HPCML_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    set(_dst \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${_mod_rel}\")
    message(STATUS \"Installing: \${_dst}\")
    configure_file(\"${HPCML_MODULEFILE_IN}\" \"\${_dst}\" @ONLY)
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${_dst}\")
  " COMPONENT runtime)
endif()

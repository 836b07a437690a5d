# Warnings for our own targets only (third-party headers come in as SYSTEM).
add_library(hpcml_warnings INTERFACE)
target_compile_options(hpcml_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor>)
option(HPCML_WERROR "Treat warnings as errors" OFF)
if(HPCML_WERROR)
  target_compile_options(hpcml_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()
# GCC 12's -Wrestrict reports impossible overlaps inside libstdc++'s
# std::string concatenation at -O2/-O3 (GCC bug 105651, fixed in GCC 13); the
# warning points into char_traits.h, not at our code. Off for GCC 12 only.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
   AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(hpcml_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-restrict>)
endif()

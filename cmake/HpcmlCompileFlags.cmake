# Warnings for our own targets only (third-party headers come in as SYSTEM).
add_library(hpcml_warnings INTERFACE)
target_compile_options(hpcml_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor>)
option(HPCML_WERROR "Treat warnings as errors" OFF)
if(HPCML_WERROR)
  target_compile_options(hpcml_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()

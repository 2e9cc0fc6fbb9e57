# Finds Apache Thrift's C++ library (Debian: libthrift-dev) and compiler (thrift-compiler).
#
# Imported targets:
#   Thrift::thrift    libthrift (transports, protocols, servers, TProcessor)
#   Thrift::thriftnb  libthriftnb + libevent (TNonblockingServer), when both are installed
# Variables: Thrift_FOUND, Thrift_VERSION, THRIFT_COMPILER (the `thrift` program, if any).

find_path(Thrift_INCLUDE_DIR NAMES thrift/Thrift.h)
find_library(Thrift_LIBRARY NAMES thrift)
find_library(Thrift_NB_LIBRARY NAMES thriftnb)
find_library(Thrift_EVENT_LIBRARY NAMES event)
find_program(THRIFT_COMPILER NAMES thrift)

if(Thrift_INCLUDE_DIR AND EXISTS "${Thrift_INCLUDE_DIR}/thrift/config.h")
  file(STRINGS "${Thrift_INCLUDE_DIR}/thrift/config.h" _thrift_version_line
       REGEX "^#define PACKAGE_VERSION ")
  string(REGEX REPLACE ".*\"([0-9.]+)\".*" "\\1" Thrift_VERSION "${_thrift_version_line}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Thrift
  REQUIRED_VARS Thrift_LIBRARY Thrift_INCLUDE_DIR
  VERSION_VAR Thrift_VERSION)

if(Thrift_FOUND AND NOT TARGET Thrift::thrift)
  find_package(Threads REQUIRED)
  add_library(Thrift::thrift UNKNOWN IMPORTED)
  set_target_properties(Thrift::thrift PROPERTIES
    IMPORTED_LOCATION "${Thrift_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Thrift_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
  if(Thrift_NB_LIBRARY AND Thrift_EVENT_LIBRARY)
    add_library(Thrift::thriftnb UNKNOWN IMPORTED)
    set_target_properties(Thrift::thriftnb PROPERTIES
      IMPORTED_LOCATION "${Thrift_NB_LIBRARY}"
      INTERFACE_LINK_LIBRARIES "Thrift::thrift;${Thrift_EVENT_LIBRARY}")
  endif()
endif()
mark_as_advanced(Thrift_INCLUDE_DIR Thrift_LIBRARY Thrift_NB_LIBRARY Thrift_EVENT_LIBRARY)

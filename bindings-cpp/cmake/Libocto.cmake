# Finds the C ABI library (libocto.so / libocto.a, octo.h) and defines the imported targets
#   octo::c         libocto.so with octo.h (the shared library: what the bindings link)
#   octo::c_static  libocto.a with octo.h, when the static archive exists
#
# Where it looks, in order (the first that has libocto.so and octo.h wins):
#   1. -DOCTO_LIB_DIR=... (and -DOCTO_INCLUDE_DIR=..., default <repo>/include): nothing else.
#   2. <repo>/target/release and <repo>/include: the build that CI makes once per run.
#   3. an installed libocto (find_library / find_path over the usual prefixes).
#   4. cargo: `cargo build --release -p octo-ffi` in the repository, then step 2 again
#      (only with OCTO_CARGO_FALLBACK=ON, the default, and only inside a checkout).
# OCTO_LIB_DIR and OCTO_INCLUDE_DIR are set to what was found (cached), for install rules.

set(OCTO_REPO_ROOT "${CMAKE_CURRENT_LIST_DIR}/../.." CACHE PATH "octo repository root")
get_filename_component(OCTO_REPO_ROOT "${OCTO_REPO_ROOT}" ABSOLUTE)
set(OCTO_LIB_DIR "" CACHE PATH "Directory holding libocto.so (default: <repo>/target/release)")
set(OCTO_INCLUDE_DIR "" CACHE PATH "Directory holding octo.h (default: <repo>/include)")
option(OCTO_CARGO_FALLBACK "Build libocto with cargo when no build of it is found" ON)

function(_octo_has_libocto libdir incdir result)
  if(EXISTS "${libdir}/libocto.so" AND EXISTS "${incdir}/octo.h")
    set(${result} TRUE PARENT_SCOPE)
  else()
    set(${result} FALSE PARENT_SCOPE)
  endif()
endfunction()

set(_octo_repo_lib "${OCTO_REPO_ROOT}/target/release")
if(DEFINED ENV{CARGO_TARGET_DIR} AND NOT "$ENV{CARGO_TARGET_DIR}" STREQUAL "")
  set(_octo_cargo_lib "$ENV{CARGO_TARGET_DIR}/release")
else()
  set(_octo_cargo_lib "${_octo_repo_lib}")
endif()
set(_octo_repo_inc "${OCTO_REPO_ROOT}/include")

if(OCTO_LIB_DIR)
  if(NOT OCTO_INCLUDE_DIR)
    set(OCTO_INCLUDE_DIR "${_octo_repo_inc}" CACHE PATH "" FORCE)
  endif()
  _octo_has_libocto("${OCTO_LIB_DIR}" "${OCTO_INCLUDE_DIR}" _found)
  if(NOT _found)
    message(FATAL_ERROR "OCTO_LIB_DIR=${OCTO_LIB_DIR} has no libocto.so, "
                        "or OCTO_INCLUDE_DIR=${OCTO_INCLUDE_DIR} has no octo.h")
  endif()
  set(_octo_how "OCTO_LIB_DIR")
else()
  _octo_has_libocto("${_octo_repo_lib}" "${_octo_repo_inc}" _found)
  if(_found)
    set(OCTO_LIB_DIR "${_octo_repo_lib}" CACHE PATH "" FORCE)
    set(OCTO_INCLUDE_DIR "${_octo_repo_inc}" CACHE PATH "" FORCE)
    set(_octo_how "the repository's release build")
  else()
    find_library(_OCTO_INSTALLED_LIB NAMES octo)
    find_path(_OCTO_INSTALLED_INC NAMES octo.h)
    if(_OCTO_INSTALLED_LIB AND _OCTO_INSTALLED_INC)
      get_filename_component(_dir "${_OCTO_INSTALLED_LIB}" DIRECTORY)
      set(OCTO_LIB_DIR "${_dir}" CACHE PATH "" FORCE)
      set(OCTO_INCLUDE_DIR "${_OCTO_INSTALLED_INC}" CACHE PATH "" FORCE)
      set(_octo_how "an installed libocto")
    elseif(OCTO_CARGO_FALLBACK AND EXISTS "${OCTO_REPO_ROOT}/ffi/Cargo.toml")
      find_program(CARGO_EXECUTABLE cargo HINTS "$ENV{HOME}/.cargo/bin" REQUIRED)
      message(STATUS "octo: no build of libocto found; running cargo build --release -p octo-ffi")
      execute_process(
        COMMAND "${CARGO_EXECUTABLE}" build --release -p octo-ffi
        WORKING_DIRECTORY "${OCTO_REPO_ROOT}"
        RESULT_VARIABLE _rc)
      if(NOT _rc EQUAL 0)
        message(FATAL_ERROR "cargo build --release -p octo-ffi failed (${_rc})")
      endif()
      set(OCTO_LIB_DIR "${_octo_cargo_lib}" CACHE PATH "" FORCE)
      set(OCTO_INCLUDE_DIR "${_octo_repo_inc}" CACHE PATH "" FORCE)
      set(_octo_how "cargo")
    else()
      message(FATAL_ERROR "libocto not found: build it (cargo build --release -p octo-ffi), "
                          "install it, or pass -DOCTO_LIB_DIR=<dir with libocto.so>")
    endif()
  endif()
endif()

_octo_has_libocto("${OCTO_LIB_DIR}" "${OCTO_INCLUDE_DIR}" _found)
if(NOT _found)
  message(FATAL_ERROR "libocto.so or octo.h missing under ${OCTO_LIB_DIR} / ${OCTO_INCLUDE_DIR}")
endif()
message(STATUS "octo: libocto from ${_octo_how}: ${OCTO_LIB_DIR}/libocto.so, ${OCTO_INCLUDE_DIR}/octo.h")

add_library(octo::c SHARED IMPORTED GLOBAL)
set_target_properties(octo::c PROPERTIES
  IMPORTED_LOCATION "${OCTO_LIB_DIR}/libocto.so"
  # cargo's cdylib has no SONAME: link it as -locto, so binaries record "libocto.so" (found
  # through their RPATH) rather than this build directory's absolute path.
  IMPORTED_NO_SONAME TRUE
  INTERFACE_INCLUDE_DIRECTORIES "${OCTO_INCLUDE_DIR}")

if(EXISTS "${OCTO_LIB_DIR}/libocto.a")
  find_package(Threads REQUIRED)
  add_library(octo::c_static STATIC IMPORTED GLOBAL)
  set_target_properties(octo::c_static PROPERTIES
    IMPORTED_LOCATION "${OCTO_LIB_DIR}/libocto.a"
    INTERFACE_INCLUDE_DIRECTORIES "${OCTO_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m")
endif()

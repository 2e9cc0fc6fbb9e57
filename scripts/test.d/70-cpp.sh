#!/usr/bin/env bash
# The C++ binding (bindings-cpp/): configure, build and ctest against the libocto that
# 30-c-abi.sh built once in release (target/release), then the same tests built with
# AddressSanitizer. Cargo runs only for what is missing (libocto, or octo-bench: the Rust Echo
# server the cross tests start).
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LIB_DIR=${OCTO_LIB_DIR:-$TARGET/release}

if [ ! -e "$LIB_DIR/libocto.so" ]; then
  echo "70-cpp: $LIB_DIR/libocto.so is missing; building it"
  cargo build --release -p octo-ffi
fi
if [ ! -x "$LIB_DIR/octo-bench" ]; then
  echo "70-cpp: $LIB_DIR/octo-bench is missing; building it"
  cargo build --release -p octo-bench
fi

GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
JOBS=$(nproc)

run() { # run BUILD_DIR [cmake options...]
  local dir=$1
  shift
  mkdir -p "$dir"
  cmake -S bindings-cpp -B "$dir" "${GEN[@]}" -DOCTO_LIB_DIR="$LIB_DIR" \
    -DOCTO_INCLUDE_DIR="$ROOT/include" "$@" >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log"; exit 1; }
  cmake --build "$dir" -j "$JOBS"
  ctest --test-dir "$dir" -j "$JOBS" --output-on-failure --timeout 180
}

echo "--- release build: examples, bench, tests"
run bindings-cpp/build -DCMAKE_BUILD_TYPE=Release
echo "--- AddressSanitizer build: tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 run bindings-cpp/build-asan -DOCTO_ASAN=ON \
  -DCMAKE_BUILD_TYPE=Debug -DOCTO_BUILD_EXAMPLES=OFF -DOCTO_BUILD_BENCH=OFF

#!/usr/bin/env bash
# The C ABI (ffi/): builds libocto once in release (target/release, which later steps reuse),
# fails if include/octo.h differs from what cbindgen generates, runs the C test programs built
# with AddressSanitizer (leaks checked across C and Rust allocations) and the one that starts no
# engine under valgrind (valgrind 3.19 holds its lock across io_uring_enter, so it cannot run
# shard threads), then builds the C examples and has echo_client and a real Apache Thrift
# client (Python `thrift`, code generated from idl/) call the C Echo server, itself under ASan.
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
unset LD_LIBRARY_PATH
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LIB=$TARGET/release
OUT=$TARGET/c-abi
mkdir -p "$OUT"

echo "--- libocto (release)"
cargo build --release -p octo-ffi --quiet
test -e "$LIB/libocto.so" && test -e "$LIB/libocto.a"

echo "--- include/octo.h against cbindgen"
cargo test -p octo-ffi --test header --quiet

CFLAGS=(-std=c11 -D_GNU_SOURCE -g -Wall -Wextra -Werror -pthread -I include)
LINK=(-L"$LIB" -Wl,-rpath,"$LIB" -locto)
ASAN=(-O1 -fsanitize=address -fno-omit-frame-pointer)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

for t in core engine server client; do
  echo "--- test_$t (AddressSanitizer)"
  gcc "${CFLAGS[@]}" "${ASAN[@]}" "ffi/tests/c/test_$t.c" -o "$OUT/test_$t.asan" "${LINK[@]}"
  timeout 300 "$OUT/test_$t.asan"
done

echo "--- test_core (valgrind)"
gcc "${CFLAGS[@]}" -O1 ffi/tests/c/test_core.c -o "$OUT/test_core" "${LINK[@]}"
timeout 300 valgrind --quiet --error-exitcode=1 --leak-check=full \
  --errors-for-leak-kinds=definite,possible "$OUT/test_core"

echo "--- examples"
gcc "${CFLAGS[@]}" -O2 ffi/examples/echo_client.c -o "$OUT/echo_client" "${LINK[@]}"
gcc "${CFLAGS[@]}" -O2 ffi/examples/echo_server.c -o "$OUT/echo_server" "${LINK[@]}"
gcc "${CFLAGS[@]}" "${ASAN[@]}" ffi/examples/echo_server.c -o "$OUT/echo_server.asan" "${LINK[@]}"

"$OUT/echo_server.asan" --addr 127.0.0.1:0 >"$OUT/echo_server.log" 2>&1 &
SERVER=$!
stop_server() { kill -TERM "$SERVER" 2>/dev/null || true; }
trap stop_server EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$OUT/echo_server.log" && break
  sleep 0.1
done
PORT=$(sed -n 's/^listening on [0-9.]*:\([0-9]*\) .*/\1/p' "$OUT/echo_server.log")
test -n "$PORT" || { cat "$OUT/echo_server.log"; exit 1; }

echo "--- echo_client -> C echo server (OCTO, then plain Thrift)"
timeout 60 "$OUT/echo_client" --addr "127.0.0.1:$PORT" --count 200 "hello over OCTO"
timeout 60 "$OUT/echo_client" --addr "127.0.0.1:$PORT" --thrift --count 200 "hello over Thrift"

echo "--- Apache Thrift (Python) -> C echo server"
GEN=$OUT/gen-py
rm -rf "$GEN" && mkdir -p "$GEN"
thrift --gen py -out "$GEN" idl/octo.thrift 2>/dev/null
thrift --gen py -out "$GEN" idl/echo.thrift 2>/dev/null
timeout 120 python3 engine/tests/server_peer/thrift_client.py --gen "$GEN" --port "$PORT" native
timeout 120 python3 engine/tests/server_peer/thrift_client.py --gen "$GEN" --port "$PORT" octo

trap - EXIT
kill -TERM "$SERVER"
wait "$SERVER" # the ASan build exits non-zero on a leak or memory error at shutdown
cat "$OUT/echo_server.log"
echo "30-c-abi: ok"

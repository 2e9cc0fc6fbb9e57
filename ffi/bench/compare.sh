#!/usr/bin/env bash
# The C Echo server through libocto's C ABI against the Rust Echo server (octo-bench serve), in
# one run: each server pinned to one CPU with one shard, driven by `octo-bench load` pinned to
# another, rounds interleaved (rust, c, rust, c, ...) so drift hits both alike. Prints each
# round and, per scenario, the medians of each and the ratios C / Rust: QPS, and requests per
# server-CPU-second (utime + stime of the server process; steadier than QPS on a shared machine).
#
#   ffi/bench/compare.sh [--secs S] [--rounds R] [--scenarios 8x1,8x16,64x1] [--size BYTES]
#                        [--server-cpu N] [--load-cpu N]
#
# Uses target/release (or $CARGO_TARGET_DIR/release), brought up to date first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
unset LD_LIBRARY_PATH
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
REL=$TARGET/release
SECS=5 ROUNDS=3 SCENARIOS=8x1,8x16,64x1 SIZE=1024 SERVER_CPU=0 LOAD_CPU=1
while [ $# -gt 0 ]; do
  case $1 in
    --secs) SECS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --server-cpu) SERVER_CPU=$2; shift 2 ;;
    --load-cpu) LOAD_CPU=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

cargo build --release -p octo-ffi -p octo-bench --quiet
OUT=$TARGET/c-abi
mkdir -p "$OUT"
gcc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -pthread -I include \
  ffi/examples/echo_server.c -o "$OUT/echo_server" -L"$REL" -Wl,-rpath,"$REL" -locto

HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

SERVER=
stop() { [ -n "$SERVER" ] && kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null; SERVER=; }
trap stop EXIT

start() { # start rust|c -> sets SERVER and PORT
  local log=$OUT/compare-$1.log
  rm -f "$log"
  case $1 in
    rust) "$REL/octo-bench" serve --addr 127.0.0.1:0 --shards 1 --cpus "$SERVER_CPU" >"$log" 2>&1 & ;;
    c) "$OUT/echo_server" --addr 127.0.0.1:0 --shards 1 --cpus "$SERVER_CPU" >"$log" 2>&1 & ;;
  esac
  SERVER=$!
  for _ in $(seq 100); do grep -qs "listening on" "$log" && break; sleep 0.1; done
  PORT=$(sed -n 's/^listening on [0-9.]*:\([0-9]*\) .*/\1/p' "$log")
  [ -n "$PORT" ] || { cat "$log"; exit 1; }
}

RESULTS=$OUT/compare-results.txt
: >"$RESULTS"
IFS=, read -ra SCEN <<<"$SCENARIOS"
for round in $(seq "$ROUNDS"); do
  for sc in "${SCEN[@]}"; do
    conns=${sc%x*} depth=${sc#*x}
    for who in rust c; do
      start "$who"
      # The load counts requests after its 1 s warm-up: sample the server's CPU from then on.
      "$REL/octo-bench" load --addr "127.0.0.1:$PORT" --conns "$conns" --depth "$depth" \
        --size "$SIZE" --secs "$SECS" --warmup 1 --cpu "$LOAD_CPU" --json >"$OUT/compare-load.json" \
        2>>"$OUT/compare-load.err" &
      LOAD=$!
      sleep 1
      cpu0=$(cpu_ticks "$SERVER")
      wait "$LOAD"
      cpu1=$(cpu_ticks "$SERVER")
      json=$(cat "$OUT/compare-load.json")
      stop
      qps=$(sed -n 's/.*"qps":\([0-9.]*\).*/\1/p' <<<"$json")
      errors=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' <<<"$json")
      p99=$(sed -n 's/.*"p99_us":\([0-9]*\).*/\1/p' <<<"$json")
      requests=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<<"$json")
      per_cpu=$(awk -v r="$requests" -v t=$((cpu1 - cpu0)) -v hz="$HZ" 'BEGIN {printf "%.0f", (t > 0) ? r / (t / hz) : 0}')
      printf 'round %d %-5s %-4s qps %8.0f  req/cpu-s %8.0f  p99 %6s us  errors %s\n' \
        "$round" "$sc" "$who" "$qps" "$per_cpu" "$p99" "$errors"
      echo "$sc $who $qps $per_cpu" >>"$RESULTS"
    done
  done
done

echo
echo "medians over $ROUNDS rounds (${SECS}s each, ${SIZE} B, server on CPU $SERVER_CPU, load on CPU $LOAD_CPU):"
for sc in "${SCEN[@]}"; do
  med() { awk -v s="$sc" -v w="$1" -v f="$2" '$1==s && $2==w {print $f}' "$RESULTS" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  awk -v s="$sc" -v r="$(med rust 3)" -v c="$(med c 3)" -v rc="$(med rust 4)" -v cc="$(med c 4)" \
    'BEGIN {printf "  %-5s qps rust %8.0f c-abi %8.0f c/rust %.3f | req/cpu-s rust %8.0f c-abi %8.0f c/rust %.3f\n", s, r, c, c/r, rc, cc, cc/rc}'
done

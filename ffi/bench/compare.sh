#!/usr/bin/env bash
# The C Echo server through libocto's C ABI against the Rust Echo server: bench/compare's
# octo and c-abi rows (each server pinned to one CPU with one shard, octo's client on another,
# rounds interleaved; QPS and requests per server-CPU-second, medians and ratios).
#
#   ffi/bench/compare.sh [--secs S] [--rounds R] [--workloads 8x1,8x16,64x1] [--size BYTES]
#                        [--server-cpu N] [--load-cpu N] [--json FILE]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
exec "$ROOT/bench/compare" --servers octo,c-abi --no-open-loop "$@"

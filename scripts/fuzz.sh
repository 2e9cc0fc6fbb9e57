#!/usr/bin/env bash
# Bounded fuzzing of octo's proto decoders: cargo-fuzz (libFuzzer) on engine/fuzz, target `decode`.
# Needs a nightly toolchain (rustup's `nightly`). Usage: scripts/fuzz.sh [seconds, default 60]
# Starts from the committed seeds (engine/fuzz/corpus/decode/seed-*: the Dorado golden vectors and
# a few Thrift frames); inputs libFuzzer discovers go to a scratch directory that is removed after.
# A crash leaves its input in engine/fuzz/artifacts/decode/ and makes this script fail.
set -euo pipefail
cd "$(dirname "$0")/../engine/fuzz"
SECS=${1:-60}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: no nightly toolchain (rustup toolchain install nightly); skipping" >&2
  exit 0
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cargo +nightly fuzz run decode "$WORK" corpus/decode -- \
  -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1

#!/usr/bin/env bash
# Smoke of the README's main bench command: `octo-bench run` for about a second per workload.
# Asserts only that calls succeeded and that the table and its files were written; never a
# timed figure (the machine is shared and slow).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -p octo-bench --quiet
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$TARGET/release/octo-bench" run --secs 1 --warmup 0.2 --out "$OUT" >"$OUT/stdout" 2>"$OUT/stderr" || {
  cat "$OUT/stdout" "$OUT/stderr"; echo "40-bench-smoke: octo-bench run failed" >&2; exit 1; }
cat "$OUT/stdout"
for w in 8x1 64x1 8x16; do
  # A row per workload with a positive request rate and no errors.
  awk -v w="$w" '$1 == w { found = 1; if ($2 + 0 <= 0 || $NF != "0") bad = 1 }
    END { exit !(found && !bad) }' "$OUT/stdout" || {
    echo "40-bench-smoke: no good row for $w" >&2; exit 1; }
done
grep -q '"requests"' "$OUT/run.json"
# The machine's own stalls and the open loop's floor from them are measured and reported.
grep -q "the machine's own stalls" "$OUT/stdout"
grep -q '"p99_floor_us"' "$OUT/run.json"
grep -q '<polyline' "$OUT/latency.svg"
echo "40-bench-smoke: ok"

#!/usr/bin/env bash
# Generates the Thrift Java code the tests use (run by Maven in generate-test-sources; see pom.xml):
# ../idl/echo.thrift (the reference Echo service), ../idl/octo.thrift (the OCTO Header, for the
# tests' own wire-level OCTO peer) and src/test/thrift/*.thrift, with Debian's
# `thrift` 0.17, into OUT_DIR. Generated code is never committed.
# Usage: generate-thrift.sh OUT_DIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${1:?usage: generate-thrift.sh OUT_DIR}
command -v thrift >/dev/null || { echo "generate-thrift.sh: 'thrift' is missing; run scripts/install-deps.sh" >&2; exit 1; }
stamp=$OUT/.stamp
idls=("$ROOT/idl/echo.thrift" "$ROOT/idl/octo.thrift" "$HERE"/src/test/thrift/*.thrift)
if [ -e "$stamp" ] && [ -z "$(find "${idls[@]}" "$0" -newer "$stamp" -print -quit)" ]; then
  exit 0
fi
rm -rf "$OUT"
mkdir -p "$OUT"
for idl in "${idls[@]}"; do
  # (octo.thrift draws a harmless "byte is an alias for i8" warning on stdout; errors go to stderr)
  thrift --gen java:generated_annotations=suppress -out "$OUT" "$idl" >/dev/null
done
touch "$stamp"

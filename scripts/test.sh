#!/usr/bin/env bash
# README's test command: every test of octo (Rust, Apache Thrift cross-checks, C ABI, Java, C++).
# Works on a fresh machine: it installs what is missing first (scripts/install-deps.sh).
# Build libocto once; later steps reuse target/release rather than compiling it again.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n=== %s ===\n' "$*"; }

step "install missing dependencies"
bash scripts/install-deps.sh

step "rust: format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "rust: unit, property and loopback integration tests"
cargo test --workspace --quiet

for part in scripts/test.d/*.sh; do
  [ -e "$part" ] || continue
  step "$(basename "$part" .sh)"
  ROOT="$ROOT" bash "$part"
done

echo
echo "all test steps passed"

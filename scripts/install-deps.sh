#!/usr/bin/env bash
# Installs what a fresh machine lacks for the full test suite. Idempotent: a machine that has
# everything pays a few `command -v` / `dpkg -s` checks and nothing else.
set -euo pipefail

APT_PACKAGES=(
  thrift-compiler   # Apache Thrift IDL compiler: generates the cross-check code
  libthrift-dev     # Apache Thrift C++ library: real Thrift peers
  libboost-dev      # needed by libthrift-dev's headers
  libevent-dev      # libthriftnb's headers: the TNonblockingServer bench peer (bench/peers)
  libgtest-dev      # GoogleTest for the C++ binding
  libsnappy-dev
  valgrind          # C ABI tests run under it
  cmake
  ninja-build
  maven
  openjdk-17-jdk-headless  # javac and jni.h: the Java binding's glue and tests
  strace
)
PIP_PACKAGES=(thrift cramjam)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
for p in "${PIP_PACKAGES[@]}"; do
  "$PY" -c "import $p" 2>/dev/null || { echo "install-deps: pip install $p"; "$PY" -m pip install -q "$p"; }
done

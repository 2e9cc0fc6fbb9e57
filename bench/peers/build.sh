#!/usr/bin/env bash
# Builds the bench peers from registry packages only (see README.md beside this file):
#   netty       -> netty/target/netty-octo-echo.jar   (Maven Central: Netty 4.1 + epoll, libthrift)
#   thrift-cpp  -> thrift-cpp/build/echo_server       (Debian: libthrift-dev, libevent-dev; g++ -O2)
# Thrift code is generated from ../../idl at build time and never committed.
# Idempotent: a peer whose output is newer than all its inputs is not rebuilt.
# Usage: build.sh [netty] [thrift-cpp]   (no argument: both)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
IDL=$ROOT/idl

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || {
      echo "build.sh: '$tool' is missing; run scripts/install-deps.sh" >&2
      exit 1
    }
  done
}

# True when $1 exists and no input path given after it is newer.
up_to_date() {
  local output=$1
  shift
  [ -e "$output" ] && [ -z "$(find "$@" -newer "$output" -print -quit)" ]
}

build_netty() {
  local dir=$HERE/netty
  local jar=$dir/target/netty-octo-echo.jar
  if up_to_date "$jar" "$dir/pom.xml" "$dir/src" "$IDL/octo.thrift" "$IDL/echo.thrift" "$0"; then
    return
  fi
  need thrift mvn java
  echo "build.sh: building netty peer"
  local gen=$dir/target/generated-sources/thrift
  rm -rf "$gen"
  mkdir -p "$gen"
  # (octo.thrift draws a harmless "byte is an alias for i8" warning on stdout)
  thrift --gen java:generated_annotations=suppress -out "$gen" "$IDL/octo.thrift" >/dev/null
  thrift --gen java:generated_annotations=suppress -out "$gen" "$IDL/echo.thrift"
  # Offline first (the local Maven repository has everything after one build); online otherwise.
  local log=$dir/target/mvn-offline.log
  if ! (cd "$dir" && mvn -B -q -Dstyle.color=never -o package >"$log" 2>&1); then
    (cd "$dir" && mvn -B -q -Dstyle.color=never package)
  fi
  [ -e "$jar" ] && touch "$jar"
}

build_thrift_cpp() {
  local dir=$HERE/thrift-cpp
  local out=$dir/build
  local bin=$out/echo_server
  if up_to_date "$bin" "$dir/echo_server.cpp" "$IDL/echo.thrift" "$0"; then
    return
  fi
  need thrift g++
  [ -e /usr/include/thrift/server/TNonblockingServer.h ] && [ -e /usr/include/event.h ] || {
    echo "build.sh: libthrift-dev or libevent-dev is missing; run scripts/install-deps.sh" >&2
    exit 1
  }
  echo "build.sh: building thrift-cpp peer"
  local gen=$out/gen-cpp
  rm -rf "$gen"
  mkdir -p "$gen"
  thrift --gen cpp -out "$gen" "$IDL/echo.thrift"
  g++ -std=c++17 -O2 -DNDEBUG -Wall -Wextra -I"$gen" \
    -o "$bin.tmp" "$dir/echo_server.cpp" "$gen/Echo.cpp" \
    -lthriftnb -lthrift -levent -lpthread
  mv "$bin.tmp" "$bin"
}

peers=("$@")
[ ${#peers[@]} -gt 0 ] || peers=(netty thrift-cpp)
for peer in "${peers[@]}"; do
  case "$peer" in
    netty) build_netty ;;
    thrift-cpp) build_thrift_cpp ;;
    *)
      echo "build.sh: unknown peer '$peer' (netty, thrift-cpp)" >&2
      exit 2
      ;;
  esac
done

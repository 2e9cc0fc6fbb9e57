#!/usr/bin/env bash
# Smoke test of the bench peers: builds them, starts each on a free loopback port through its
# run.sh, runs smoke_client.py against them (real Apache Thrift Python clients, Dorado's golden
# frames, a bounded 64-connection load), then stops them with SIGTERM and checks they exit.
# Exits non-zero on any failure.
# Usage: smoke.sh [netty] [thrift-cpp]   (no argument: both)
# Environment: OCTO_SHARED (default: ../../../../shared beside the repository), PYTHON.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PEERS=$(cd "$HERE/.." && pwd)
ROOT=$(cd "$PEERS/../.." && pwd)
SHARED=${OCTO_SHARED:-$ROOT/../shared}
PY=${PYTHON:-python3}
BUILD=$HERE/build
READY_SECONDS=120

peers=("$@")
[ ${#peers[@]} -gt 0 ] || peers=(netty thrift-cpp)

[ -f "$SHARED/vectors/dorado/index.json" ] || {
  echo "smoke.sh: golden vectors not found under $SHARED/vectors/dorado (set OCTO_SHARED)" >&2
  exit 1
}
"$PY" -c "import thrift, cramjam" 2>/dev/null || {
  echo "smoke.sh: python packages thrift and cramjam are missing; run scripts/install-deps.sh" >&2
  exit 1
}

bash "$PEERS/build.sh" "${peers[@]}"

# Python client code generated from the same IDL (never committed).
mkdir -p "$BUILD"
if [ ! -e "$BUILD/gen-py/octo_idl/echo/Echo.py" ] ||
  [ -n "$(find "$ROOT/idl/octo.thrift" "$ROOT/idl/echo.thrift" -newer "$BUILD/gen-py/octo_idl/echo/Echo.py" -print -quit)" ]; then
  rm -rf "$BUILD/gen-py"
  mkdir -p "$BUILD/gen-py"
  thrift --gen py -out "$BUILD/gen-py" "$ROOT/idl/octo.thrift" >/dev/null
  thrift --gen py -out "$BUILD/gen-py" "$ROOT/idl/echo.thrift"
fi

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

declare -A PID PORT
stop_all() {
  for peer in "${!PID[@]}"; do
    kill -TERM "${PID[$peer]}" 2>/dev/null || true
  done
}
trap stop_all EXIT

# Starts a peer and waits for its "listening on PORT" line; the pid is the one the line names.
start_peer() {
  local peer=$1 port log
  port=$(free_port)
  log=$BUILD/$peer.log
  : >"$log"
  "$PEERS/$peer/run.sh" "$port" >"$log" 2>&1 &
  PID[$peer]=$!
  local waited=0
  until grep -q "listening on $port" "$log"; do
    if ! kill -0 "${PID[$peer]}" 2>/dev/null || [ $waited -ge $((READY_SECONDS * 10)) ]; then
      echo "smoke.sh: $peer did not start; its output:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  local announced
  announced=$(grep -o "pid [0-9]* listening on $port" "$log" | head -1 | cut -d' ' -f2)
  [ "$announced" = "${PID[$peer]}" ] || {
    echo "smoke.sh: $peer announced pid $announced but run.sh is pid ${PID[$peer]} (no exec?)" >&2
    exit 1
  }
  PORT[$peer]=$port
  echo "smoke.sh: $(grep -m1 "listening on $port" "$log")"
}

# SIGTERM must end the peer (the contract bench/compare relies on).
stop_peer() {
  local peer=$1 pid=${PID[$1]} waited=0
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    if [ $waited -ge 300 ]; then
      echo "smoke.sh: $peer (pid $pid) still running 30 s after SIGTERM" >&2
      kill -KILL "$pid" 2>/dev/null || true
      exit 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  wait "$pid" 2>/dev/null || true
  unset "PID[$peer]"
  echo "smoke.sh: $peer stopped on SIGTERM"
}

client_args=()
for peer in "${peers[@]}"; do
  start_peer "$peer"
  client_args+=("--$peer" "${PORT[$peer]}")
done

status=0
"$PY" "$HERE/smoke_client.py" --gen-py "$BUILD/gen-py" --vectors "$SHARED/vectors/dorado" \
  "${client_args[@]}" || status=$?

for peer in "${peers[@]}"; do
  if ! kill -0 "${PID[$peer]}" 2>/dev/null; then
    echo "smoke.sh: $peer died during the test; its output:" >&2
    cat "$BUILD/$peer.log" >&2
    status=1
    continue
  fi
  stop_peer "$peer"
done
exit $status

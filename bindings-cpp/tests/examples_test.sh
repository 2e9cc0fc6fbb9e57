#!/usr/bin/env bash
# The examples work together: echo_server (HANDLER: thrift or direct) on a free loopback port,
# echo_client calls it over OCTO and plain Thrift from several threads, then the server stops
# on SIGTERM.
#   examples_test.sh DIR_WITH_echo_server_AND_echo_client [HANDLER]
set -euo pipefail
dir=$1
handler=${2:-thrift}
out=$(mktemp)
"$dir/echo_server" --addr 127.0.0.1:0 --handler "$handler" >"$out" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 300); do
  grep -q '^listening on ' "$out" && break
  kill -0 "$server" || { echo "echo_server exited"; exit 1; }
  sleep 0.1
done
addr=$(awk '/^listening on /{print $3; exit}' "$out")
[ -n "$addr" ] || { echo "echo_server did not say where it listens"; exit 1; }
"$dir/echo_client" --addr "$addr" --calls 200 --threads 4 --message "over octo"
"$dir/echo_client" --addr "$addr" --framing thrift --calls 200 --threads 4 --message "over thrift"
if "$dir/echo_client" --addr "$addr" --service NoSuchService 2>/dev/null; then
  echo "a call to an unknown service succeeded"
  exit 1
fi
kill -TERM "$server"
wait "$server"
trap 'rm -f "$out"' EXIT
echo "examples ok"

#!/usr/bin/env bash
# Starts the Apache Thrift C++ TNonblockingServer Echo peer in the foreground (builds it first if
# needed):
#   run.sh PORT [IO_THREADS] [WORKER_THREADS]
#     IO_THREADS      default 1 (one libevent loop, also accepting)
#     WORKER_THREADS  default 0: calls run on the I/O thread; N > 0: a ThreadManager of N threads
# Prints "thrift-cpp-echo pid PID listening on PORT ..." when ready; serves until SIGTERM/SIGINT.
# The server replaces this shell (exec), so the printed pid is the one to signal or pin.
# Environment: OCTO_PEER_BIND (default 127.0.0.1), OCTO_PEER_MAX_FRAME_BYTES (default 16 MiB).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "usage: $0 PORT [IO_THREADS] [WORKER_THREADS]" >&2
  exit 2
fi
bash "$HERE/../build.sh" thrift-cpp >&2
exec "$HERE/build/echo_server" "$@"

#!/usr/bin/env bash
# Starts the Dorado-like Netty OCTO Echo peer in the foreground (builds it first if needed):
#   run.sh PORT [IO_THREADS]        IO_THREADS defaults to 1 (one epoll event loop, also accepting)
# Prints "netty-octo-echo pid PID listening on PORT ..." when ready; serves until SIGTERM/SIGINT.
# The JVM replaces this shell (exec), so the printed pid is the one to signal or pin.
# Environment: OCTO_PEER_BIND (default 127.0.0.1), OCTO_PEER_MAX_FRAME_BYTES (default 16 MiB),
#              JAVA_OPTS (replaces the JVM flags below), JAVA (default: java on PATH).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 PORT [IO_THREADS]" >&2
  exit 2
fi
bash "$HERE/../build.sh" netty >&2

# Tuned the way Netty services are run in production: fixed heap, no leak-detection sampling, and
# the JDK internals opened so Netty can use its cleaner-free pooled direct buffers on Java 17.
# The collector is left to the JVM's ergonomics (pinned to one core it picks Serial GC).
DEFAULT_JAVA_OPTS=(
  -Xms512m -Xmx512m
  -XX:+UseCompressedOops
  -Dio.netty.leakDetection.level=disabled
  -Dio.netty.tryReflectionSetAccessible=true
  --add-opens java.base/java.nio=ALL-UNNAMED
  --add-opens java.base/jdk.internal.misc=ALL-UNNAMED
)
if [ -n "${JAVA_OPTS:-}" ]; then
  read -r -a opts <<<"$JAVA_OPTS"
else
  opts=("${DEFAULT_JAVA_OPTS[@]}")
fi
PROPS=(-Docto.peer.bind="${OCTO_PEER_BIND:-127.0.0.1}")
[ -n "${OCTO_PEER_MAX_FRAME_BYTES:-}" ] && PROPS+=(-Docto.peer.maxFrameBytes="$OCTO_PEER_MAX_FRAME_BYTES")
exec "${JAVA:-java}" "${opts[@]}" "${PROPS[@]}" -jar "$HERE/target/netty-octo-echo.jar" "$@"

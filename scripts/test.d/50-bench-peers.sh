#!/usr/bin/env bash
# The bench peers (Netty OCTO Echo, Apache Thrift C++ Echo) build and answer real clients,
# including Dorado's golden frames, so bench/compare measures working servers.
set -euo pipefail
bash "$ROOT/bench/peers/test/smoke.sh"

#!/usr/bin/env bash
# Hostile input against a live attnd (tests/hostile/cases.py), then against
# its gRPC listener (grpc_hostile.py).  `make test`
# runs   bash tests/hostile/run.sh BUILD_DIR [FILTER] [-v]
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
shift || true
/usr/bin/python3 -B "$HERE/hostile.py" "$BUILD" "$@"
# the gRPC listener: raw HTTP/2 frames and grpcio (tests/hostile/grpc_hostile.py)
exec /usr/bin/python3 -B "$HERE/grpc_hostile.py" "$BUILD" "$@"

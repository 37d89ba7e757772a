#!/usr/bin/env bash
# Soak tests (tests/soak/soak.py).
#   bash tests/soak/run.sh BUILD_DIR [SECONDS]
# SECONDS of mixed load from wrk (default 30: the short soak of `make test`).
# `make soak` runs 300 s, then `soak.py valgrind` on a build without
# -march=native.  The figures go to BUILD_DIR/soak/results-<SECONDS>s.json.
set -euo pipefail
BUILD=${1:-build}
SECONDS_=${2:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 -B "$HERE/soak.py" load "$BUILD" "$SECONDS_" "$BUILD/soak/results-${SECONDS_}s.json"

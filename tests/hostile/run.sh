#!/usr/bin/env bash
# Hostile input against a live attnd (tests/hostile/cases.py).  `make test`
# runs   bash tests/hostile/run.sh BUILD_DIR [FILTER] [-v]
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
shift || true
exec /usr/bin/python3 -B "$HERE/hostile.py" "$BUILD" "$@"

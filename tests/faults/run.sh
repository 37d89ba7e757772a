#!/usr/bin/env bash
# Faults against a live attnd (tests/faults/faults.py).  `make test` runs
#   bash tests/faults/run.sh BUILD_DIR [FILTER]
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 -B "$HERE/faults.py" "$BUILD" "${2:-}"

#!/usr/bin/env bash
# Integration tests: real attnd processes on loopback ports, driven by
# /usr/bin/python3 (standard library and numpy).  `make test` runs
#   bash tests/integration/run.sh BUILD_DIR [FILTER]
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
  echo "integration: $PY with numpy is required" >&2
  exit 2
fi
exec "$PY" -B "$HERE/main.py" "$BUILD" "${2:-}"

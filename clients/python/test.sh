#!/usr/bin/env bash
# Tests the Python client against a live attnd: bash clients/python/test.sh BUILD_DIR
# Runs the suite twice under Debian's python3: with numpy, and with numpy
# made unimportable (the client then uses the standard library only).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${ATTND_PYTHON:-/usr/bin/python3}
source "$HERE/../testlib.sh"
attnd_setup "${1:-build}"

"$PY" -c 'import pytest, numpy' || { echo "python: $PY needs pytest and numpy (make test-deps)" >&2; exit 1; }
cd "$HERE"
export PYTHONDONTWRITEBYTECODE=1
echo "== python client, with numpy"
"$PY" -m pytest -q -p no:cacheprovider tests "${@:2}"
echo "== python client, without numpy"
ATTND_TEST_NO_NUMPY=1 "$PY" -m pytest -q -p no:cacheprovider tests "${@:2}"

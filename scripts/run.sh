#!/usr/bin/env bash
# `make run`: attnd on 127.0.0.1:8000 with the example model repository, in
# the foreground (Ctrl-C drains and stops it).  Flags after BUILD_DIR and
# ATTND_* variables pass through, e.g. `bash scripts/run.sh build --threads 2`.
set -euo pipefail
BUILD=${1:-build}
shift || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
echo "attnd: open http://127.0.0.1:${ATTND_PORT:-8000}/ui/ in a browser (the explorer page), or" >&2
echo "       try  curl -s localhost:8000/v2/models/full_causal  and" >&2
echo "       curl -s -d @examples/requests/full_causal.json localhost:8000/v2/models/full_causal/infer" >&2
exec "$BUILD/attnd" --host "${ATTND_HOST:-127.0.0.1}" --port "${ATTND_PORT:-8000}" \
     --model-repository "${ATTND_MODEL_REPOSITORY:-$ROOT/examples/models}" "$@"

#!/usr/bin/env bash
# Records proto/examples/ (one request and response per endpoint and per error
# status) from a live attnd started for the purpose:
#   bash proto/capture_examples.sh BUILD_DIR
# The exchanges are proto/lib/scenario.mjs's, the same that proto/test.sh
# checks live.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:?usage: capture_examples.sh BUILD_DIR}" && pwd)
source "$HERE/lib/node_env.sh"
exec "$NODE" "$HERE/lib/capture.mjs" "$BUILD"

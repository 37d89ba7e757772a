#!/usr/bin/env bash
# Tests the JavaScript client against a live attnd: bash clients/js/test.sh BUILD_DIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
NODE=${ATTND_NODE:-$(command -v node || command -v nodejs || true)}
[ -n "$NODE" ] || { echo "js: node is missing (make test-deps)" >&2; exit 1; }
major=$("$NODE" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || { echo "js: node $("$NODE" --version) is older than 18" >&2; exit 1; }
source "$HERE/../testlib.sh"
attnd_setup "${1:-build}"
cd "$HERE"
echo "== js client, node $("$NODE" --version)"
# Node 20+: dots, the failures in full, then the totals (from a TAP copy).
if [ "$major" -ge 20 ]; then
  tap="$ATTND_WORK/node-test.tap"
  status=0
  "$NODE" --test --test-reporter=dot --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" test/*.test.js || status=$?
  grep -E '^# (tests|pass|fail|cancelled|skipped) ' "$tap" | tr '\n' ' '; echo
  exit "$status"
fi
"$NODE" --test test/*.test.js

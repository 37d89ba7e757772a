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
# dots and then the failures in full (the dot reporter is there from Node 20)
reporter=()
[ "$major" -ge 20 ] && reporter=(--test-reporter=dot)
"$NODE" --test "${reporter[@]}" test/*.test.js

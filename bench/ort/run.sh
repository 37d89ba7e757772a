#!/usr/bin/env bash
# bench/ort/run.sh [full.js options] — installs ONNX Runtime from the npm
# registry into bench/ort/node_modules (--ignore-scripts: the package's
# install script fetches GPU files from elsewhere; its CPU library ships in
# the package) and runs bench/ort/full.js: one JSON line per (L, threads).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/onnxruntime-node ] || [ ! -d node_modules/onnx-proto ]; then
  npm install --ignore-scripts --no-audit --no-fund --silent >&2
fi
exec node full.js "$@"

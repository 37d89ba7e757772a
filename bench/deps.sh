#!/usr/bin/env bash
# bench/deps.sh — the Debian packages `make bench` needs besides the build:
# PyTorch and numpy for /usr/bin/python3 (the PyTorch side) and gnuplot for
# the plots; wrk and Flask for the server benchmarks (bench/server/); node and
# npm for the ONNX Runtime peer (bench/ort/run.sh installs onnxruntime-node
# from the npm registry on first use).  Needs root
# (or sudo).
set -euo pipefail
need=()
/usr/bin/python3 -c 'import numpy' 2>/dev/null || need+=(python3-numpy)
/usr/bin/python3 -c 'import torch' 2>/dev/null || need+=(python3-torch)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v wrk >/dev/null || need+=(wrk)
/usr/bin/python3 -c 'import flask' 2>/dev/null || need+=(python3-flask)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "bench deps: installing ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

#!/usr/bin/env bash
# bench/server/run.sh BUILD [run.py options] — the server benchmarks of issue 6.
# Called by `make bench` after the core run.  Needs BUILD/attnd, BUILD/attn and
# the server objects in BUILD/obj/server (the top-level `make` builds them);
# installs wrk and python3-flask when missing (bench/deps.sh).  Starts attnd and
# the Flask + PyTorch peer (bench/server/flask_peer.py) on free loopback ports,
# runs wrk and the codec micro-benchmark, and writes
# bench/results/<date>-server.{md,csv,json}.  About 2 minutes.
set -euo pipefail
BUILD=${1:-build}
shift || true
cd "$(dirname "$0")/../.."
bash bench/deps.sh
make --no-print-directory -f bench/Makefile BUILD="$BUILD" bench-codec bench-sink
exec /usr/bin/python3 bench/server/run.py --build "$BUILD" "$@"

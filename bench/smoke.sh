#!/usr/bin/env bash
# bench/smoke.sh BUILD_DIR — the benchmark smoke test for `make test`: builds
# bench_core, then runs every mechanism at a tiny size through bench_core and
# through its PyTorch port, once each at 1 and 2 threads, and checks that the
# outputs agree (deterministic mechanisms).  Seconds; writes nothing in the
# tree.  Without Debian's python3-torch it checks only bench_core itself.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
make --no-print-directory -s -f bench/Makefile BUILD="$BUILD" bench-core
PY=${BENCH_PYTHON:-/usr/bin/python3}
if [ -x "$PY" ] && "$PY" -c 'import torch, numpy' 2>/dev/null; then
  exec "$PY" bench/run.py --smoke --build "$BUILD"
fi
echo "bench smoke: python3-torch not installed: bench_core only" >&2
pass=0; fail=0
for cmd in "info" "sgemm --shape 256,256,256 --min-ms 20" "rss --L 256 --threads 2"; do
  # shellcheck disable=SC2086
  if out=$("$BUILD/bench/bench_core" $cmd) && [ -n "$out" ]; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL bench_core $cmd"; fi
done
echo "smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

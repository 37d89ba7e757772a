#!/usr/bin/env bash
# bench/ab_pair.sh — A/B of a kernel change on a shared, noisy machine: two
# `bench_core full` runs at the same time, A on one CPU and B on another,
# swapped every round, so that both see the same neighbours, clocks and load.
# Per round it prints each side's median and the ratio B ÷ A; at the end the
# geometric mean of the ratios (below 1: B is faster).
#
#   bench/ab_pair.sh [-r ROUNDS] [-a "ENV=.."] [-b "ENV=.."] BIN_A BIN_B [bench_core full options]
#
#   e.g. cp build/bench/bench_core /tmp/a        # before the change
#        make && make -f bench/Makefile bench-core
#        bench/ab_pair.sh -r 10 /tmp/a build/bench/bench_core --L 512 --causal 0 --threads 1 \
#            --min-reps 150 --max-reps 150
#   or one binary, two settings:
#        bench/ab_pair.sh -a ATTN_FUSED_BK=256 -b ATTN_FUSED_BK=192 B B --L 512 --threads 1
#
# Give each side one thread (--threads 1: the two sides share the machine's
# cores) and a shape whose working set stays in each core's caches: where
# both stream memory (L >= 2048 here) they slow each other and the ratio is
# biased.  On this project's Zen 4 VM a binary against itself gave per-round
# ratios within ±2% and a 10-round mean within 0.5% of 1, where runs one
# after the other differ by ±5%.  Needs taskset (util-linux) and 2 CPUs.
set -euo pipefail
usage() { sed -n '2,22p' "$0" >&2; exit 2; }
rounds=8 aenv="" benv=""
while getopts "r:a:b:h" o; do
  case $o in
    r) rounds=$OPTARG ;;
    a) aenv=$OPTARG ;;
    b) benv=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || usage
case $rounds in '' | *[!0-9]* | 0) echo "ab_pair: -r needs a positive number" >&2; exit 2 ;; esac
for x in "$1" "$2"; do [ -x "$x" ] || { echo "ab_pair: $x is not an executable" >&2; exit 2; }; done
command -v taskset >/dev/null || { echo "ab_pair: taskset not found (apt-get install util-linux)" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "ab_pair: needs 2 CPUs, this process may use $(nproc)" >&2; exit 2; }
py=/usr/bin/python3
[ -x $py ] || py=python3
exec $py - "$rounds" "$aenv" "$benv" "$@" <<'EOF'
import json, math, os, subprocess, sys

rounds, aenv, benv, a, b = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
args = sys.argv[6:]


def env_of(s):
    e = dict(os.environ)
    for kv in s.split():
        k, sep, v = kv.partition("=")
        if not sep:
            sys.exit(f"ab_pair: {kv!r} is not NAME=VALUE")
        e[k] = v
    return e


def stats(out):
    """median and 10th percentile of a run's last result line, its first
    tenth of forwards dropped (they warm up)."""
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        sys.exit("ab_pair: bench_core printed no result")
    t = json.loads(lines[-1])["times"]
    t = sorted(t[len(t) // 10:])
    return t[len(t) // 2], t[len(t) // 10]


ratios = []
for r in range(1, rounds + 1):
    ca, cb = (0, 1) if r % 2 else (1, 0)
    pa = subprocess.Popen(["taskset", "-c", str(ca), a, "full"] + args, stdout=subprocess.PIPE, text=True,
                          env=env_of(aenv))
    pb = subprocess.Popen(["taskset", "-c", str(cb), b, "full"] + args, stdout=subprocess.PIPE, text=True,
                          env=env_of(benv))
    oa, _ = pa.communicate()
    ob, _ = pb.communicate()
    if pa.returncode or pb.returncode:
        sys.exit(f"ab_pair: bench_core failed (exit {pa.returncode} and {pb.returncode})")
    (ma, qa), (mb, qb) = stats(oa), stats(ob)
    ratios.append((mb / ma, qb / qa))
    print(f"round {r}: A (cpu {ca}) median {ma:.4g} ms, p10 {qa:.4g}; B (cpu {cb}) median {mb:.4g} ms, p10 {qb:.4g}; "
          f"B/A median {mb / ma:.4f}, p10 {qb / qa:.4f}", flush=True)
gm = math.exp(sum(math.log(x) for x, _ in ratios) / len(ratios))
gq = math.exp(sum(math.log(y) for _, y in ratios) / len(ratios))
print(f"B/A over {len(ratios)} rounds (geometric mean): median {gm:.4f}, p10 {gq:.4f}")
EOF

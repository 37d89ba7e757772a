#!/usr/bin/python3
"""bench/portable.py — the `PORTABLE=1` build (the Docker image's) against the
default build, on every mechanism and on `full` (issue 12: within 5%).

    /usr/bin/python3 bench/portable.py [--native build] [--portable build/portable]
                                       [--cases DIR] [--sizes medium,large] [--only MECH,...]
                                       [--rounds 2] [--threads 1,2] [--full-L 512,1024,2048,4096]
                                       [--out bench/results] [--name STEM]

Both builds' bench_core must exist (`make -f bench/Makefile portable` builds
them and runs this).  The cases are bench/cases.py's, written to --cases by
the same code as `bench/run.py --keep` (model/config.json, weights and
inputs; an existing case folder is used as it is).  Each case runs under
`bench_core case` in --rounds rounds that alternate which build goes first;
within a run the first quarter of the samples is dropped (the clocks and the
kept workspace settle, as the first configuration of a process runs slow for
~100 ms on the project's VM) and the rest are pooled per build and thread
count.  `full` runs under `bench_core full` (its own 200 ms warm-up) in the
same alternation, causal and not.  The ratio is portable ÷ native of the
pooled medians.  Writes OUT/STEM.md and OUT/STEM.json (STEM defaults to
<date>-portable).
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cases as CASES  # noqa: E402
import run as RUN  # noqa: E402  (write_st, cpuinfo, machine, bench_core, loadavg)

LIMIT = 1.05


def write_case(c, d):
    """The case folder as bench/run.py --keep writes it."""
    import torch
    torch.manual_seed(1234)
    mod, ins, _ = c.build()
    mod.eval()
    os.makedirs(os.path.join(d, "model"), exist_ok=True)
    with open(os.path.join(d, "model", "config.json"), "w") as f:
        json.dump({"type": c.mech, "config": c.config}, f)
    sd = mod.state_dict()
    if sd:
        RUN.write_st(os.path.join(d, "model", "weights.safetensors"), {k: v.float() for k, v in sd.items()})
    RUN.write_st(os.path.join(d, "inputs.safetensors"), ins)


def pooled(builds, rounds, args, key):
    """{build: {key(line): [samples]}} over alternating rounds of bench_core args."""
    res = {b: {} for b in builds}
    for r in range(rounds):
        for b in (builds if r % 2 == 0 else builds[::-1]):
            for ln in RUN.bench_core(b, *args):
                if "times" not in ln:
                    continue
                t = ln["times"]
                res[b].setdefault(key(ln), []).extend(t[len(t) // 4:] if args[0] == "case" else t)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(HERE)
    ap.add_argument("--native", default=os.path.join(root, "build"))
    ap.add_argument("--portable", default=os.path.join(root, "build", "portable"))
    ap.add_argument("--cases", default=os.path.join(root, "build", "bench-cases"))
    ap.add_argument("--sizes", default="medium,large")
    ap.add_argument("--only", default="")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--min-ms", type=float, default=400)
    ap.add_argument("--full-L", default="512,1024,2048,4096")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--name", default="")
    o = ap.parse_args()
    builds = [os.path.abspath(o.native), os.path.abspath(o.portable)]
    for b in builds:
        if not os.access(os.path.join(b, "bench", "bench_core"), os.X_OK):
            print(f"portable: no {b}/bench/bench_core (make -f bench/Makefile portable builds both)", file=sys.stderr)
            return 2
    threads = [int(x) for x in o.threads.split(",")]
    sizes, only = set(o.sizes.split(",")), set(filter(None, o.only.split(",")))
    sel = [c for c in CASES.make_cases() if c.size in sizes and (not only or c.mech in only)]
    started = datetime.datetime.now()
    info = RUN.machine()
    info["kernels"] = {b: RUN.sh(f"{b}/attn info") or "(no attn binary)" for b in builds}
    info["load_start"] = RUN.loadavg()
    print(f"portable: {len(sel)} cases and full at L={o.full_L}, {info['cpu']}, load {' '.join(info['load_start'])}",
          flush=True)
    rows = []
    for c in sel:
        d = os.path.join(o.cases, c.id)
        if not os.path.exists(os.path.join(d, "inputs.safetensors")):
            write_case(c, d)
        args = ["case", d, "--threads", o.threads, "--min-ms", o.min_ms, "--min-reps", 20, "--max-reps", 400]
        res = pooled(builds, o.rounds, args, lambda ln: ln["threads"])
        row = {"id": c.id, "mech": c.mech}
        for T in threads:
            nat, por = statistics.median(res[builds[0]][T]), statistics.median(res[builds[1]][T])
            row[T] = {"native_ms": nat, "portable_ms": por, "ratio": por / nat,
                      "samples": [len(res[builds[0]][T]), len(res[builds[1]][T])]}
        rows.append(row)
        print(f"  {c.id:36s} " + "  ".join(f"{T}t {row[T]['native_ms']:.4g} {row[T]['portable_ms']:.4g} "
                                           f"{row[T]['ratio']:.3f}" for T in threads), flush=True)
    full = []
    if o.full_L:
        args = ["full", "--L", o.full_L, "--causal", "0,1", "--threads", o.threads, "--min-reps", 5,
                "--max-reps", 40, "--min-ms", 300]
        res = pooled(builds, max(o.rounds, 3), args, lambda ln: (ln["L"], ln["causal"], ln["threads"]))
        for k in sorted(res[builds[0]]):
            nat, por = statistics.median(res[builds[0]][k]), statistics.median(res[builds[1]][k])
            full.append({"L": k[0], "causal": k[1], "threads": k[2], "native_ms": nat, "portable_ms": por,
                         "ratio": por / nat})
            print(f"  full L={k[0]} causal={k[1]} {k[2]}t {nat:.4g} {por:.4g} {por / nat:.3f}", flush=True)
    info["load_end"] = RUN.loadavg()
    info["seconds"] = round((datetime.datetime.now() - started).total_seconds())
    os.makedirs(o.out, exist_ok=True)
    stem = os.path.join(o.out, o.name or started.strftime("%Y-%m-%d") + "-portable")
    raw = {"started": started.isoformat(), "info": info, "opts": vars(o), "threads": threads, "cases": rows,
           "full": full}
    with open(stem + ".json", "w") as f:
        json.dump(raw, f, indent=1)
    write_md(stem + ".md", raw)
    print(f"portable: wrote {stem}.md, {stem}.json", flush=True)
    return 0


def write_md(path, raw):
    info, threads, rows, full = raw["info"], raw["threads"], raw["cases"], raw["full"]
    ci = info.get("cpuinfo", {})
    nat_k, por_k = list(info["kernels"].values())
    with open(path, "w") as w:
        w.write(f"# `PORTABLE=1` against the default build — {raw['started'][:16].replace('T', ' ')}\n\n")
        w.write(f"Generated by `bench/portable.py`. attnd {info['commit']}; {info['cc']}; Linux {info['kernel']}; "
                f"{info['cores']} CPUs; load average {' '.join(info['load_start'])} at the start, "
                f"{' '.join(info['load_end'])} at the end; {info['seconds']} s.\n\n")
        w.write(f"CPU: {ci.get('model name', info['cpu'])} (family {ci.get('cpu family', '?')}, model "
                f"{ci.get('model', '?')}, stepping {ci.get('stepping', '?')}). Kernels chosen (`attn info`), the "
                f"default build:\n\n```\n{nat_k}\n```\n\nThe `PORTABLE=1` build:\n\n```\n{por_k}\n```\n\n")
        w.write(f"Every case of bench/cases.py at sizes {raw['opts']['sizes']} under `bench_core case`, "
                f"{raw['opts']['rounds']} rounds alternating which build runs first, the first quarter of each "
                f"run's samples dropped, the rest pooled; ms are medians. Ratio = portable ÷ native; the target "
                f"is ≤ {LIMIT:.2f}.\n\n")
        w.write("| case | " + " | ".join(f"{T}t native ms | {T}t portable ms | {T}t ratio" for T in threads) + " |\n")
        w.write("|---|" + "---:|---:|---:|" * len(threads) + "\n")
        for r in rows:
            cells = []
            for T in threads:
                x = r[str(T)] if str(T) in r else r[T]
                mark = "" if x["ratio"] <= LIMIT else " **over**"
                cells.append(f"{x['native_ms']:.4g} | {x['portable_ms']:.4g} | {x['ratio']:.3f}{mark}")
            w.write(f"| {r['id']} | " + " | ".join(cells) + " |\n")
        if full:
            w.write("\n`full` (bench_core full, in-memory random inputs, N=1, H=8, E=D=64, L=S; causal = the "
                    "lower-triangular mask), the same alternation:\n\n")
            w.write("| L=S | causal | threads | native ms | portable ms | ratio |\n|---:|---|---:|---:|---:|---:|\n")
            for f in full:
                mark = "" if f["ratio"] <= LIMIT else " **over**"
                w.write(f"| {f['L']} | {'yes' if f['causal'] else 'no'} | {f['threads']} | {f['native_ms']:.4g} | "
                        f"{f['portable_ms']:.4g} | {f['ratio']:.3f}{mark} |\n")
        allr = [(r["id"], T, (r[str(T)] if str(T) in r else r[T])["ratio"]) for r in rows for T in threads]
        allr += [(f"full L={f['L']}{' causal' if f['causal'] else ''}", f["threads"], f["ratio"]) for f in full]
        over = [x for x in allr if x[2] > LIMIT]
        w.write(f"\n**{len(allr) - len(over)} of {len(allr)}** (case, thread count) pairs within {LIMIT:.2f}")
        if allr:
            lo, hi = min(allr, key=lambda x: x[2]), max(allr, key=lambda x: x[2])
            w.write(f"; ratios {lo[2]:.3f} ({lo[0]}, {lo[1]}t) to {hi[2]:.3f} ({hi[0]}, {hi[1]}t)")
        w.write(".\n")
        if over:
            w.write("Over: " + ", ".join(f"{i} {T}t {x:.3f}" for i, T, x in over) + ".\n")


if __name__ == "__main__":
    sys.exit(main())

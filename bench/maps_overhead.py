#!/usr/bin/python3
"""Does returning attention maps on request cost the ordinary forward anything?

Times attn_model_forward of the mechanisms whose forwards write their maps as
they go (area, multi_head_area, axial, axial_image_transformer,
compositional) and of full (maps computed aside), at the medium sizes of
bench/cases.py, on two builds of libattn:

  new: --build (this tree, with maps)
  old: --old-build (libattn from 884c553, before maps existed:
       git worktree add /work/wt/premaps 884c553 && make -C /work/wt/premaps -j2)

in one run, interleaved forward by forward: bench/bench_maps_overhead.c loads
both libattn.so (and a copy of the new one, an A/A control giving the noise
floor) into one process, each with its own symbols, and runs one forward of
each per round, the order rotating, on the same model folder and inputs.  It
records wall time and the process's CPU time of every forward; the CPU time
is what the ratios use (other jobs on a shared machine stretch the wall time,
not the CPU time the forward needs).  Both builds get ATTN_GEMM (default
openblas) and ATTN_CPU pinned, so neither calibrates its product differently.

  /usr/bin/python3 bench/maps_overhead.py [--build build] [--old-build /work/wt/premaps/build]
      [--budget-s 12] [--threads 1,2] [--out bench/results]

Code layout alone moves these forwards by several percent between two builds of the same
sources (bench/results/2026-12-02-maps-overhead.md); for a comparison of the code, build both
trees with the functions and loops aligned, e.g.
  CFLAGS="-falign-functions=64 -falign-loops=64" make -j2 BUILD=/tmp/al-new /tmp/al-new/libattn.so /tmp/al-new/attn
(the same in the old tree with BUILD=/tmp/al-old) and pass --build /tmp/al-new --old-build
/tmp/al-old (the driver finds bench_maps_overhead in --build/bench).

Writes bench/results/<date>-maps-overhead.{md,json}.
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import cases as C  # noqa: E402
from run import write_st  # noqa: E402

MECHS = ("area", "multi_head_area", "axial", "axial_image_transformer", "compositional", "full")


def bench(exe, libs, d, threads, rounds, env):
    r = subprocess.run([exe, d, str(threads), str(rounds), *libs], capture_output=True, text=True, env=env,
                       timeout=7200)
    if r.returncode:
        raise RuntimeError(f"{exe} {d}: {r.stderr.strip()}")
    return [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]


def boot_ci(x, reps=2000, seed=1):
    """95% bootstrap interval of the median of x."""
    import numpy as np
    rng = np.random.default_rng(seed)
    x = np.asarray(x)
    m = np.median(rng.choice(x, size=(reps, len(x)), replace=True), axis=1)
    return float(np.quantile(m, 0.025)), float(np.quantile(m, 0.975))


def info(build, env):
    r = subprocess.run([os.path.join(build, "attn"), "info"], capture_output=True, text=True, env=env)
    return dict(ln.split(": ", 1) for ln in r.stdout.splitlines() if ": " in ln)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"))
    ap.add_argument("--old-build", default="/work/wt/premaps/build")
    ap.add_argument("--old-rev", default="884c553")
    ap.add_argument("--budget-s", type=float, default=12, help="CPU seconds per case and thread count")
    ap.add_argument("--min-rounds", type=int, default=15)
    ap.add_argument("--max-rounds", type=int, default=400)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--size", default="medium")
    ap.add_argument("--only", default="", help="comma-separated mechanisms (default: all six)")
    ap.add_argument("--gemm", default="openblas", help="ATTN_GEMM for both builds")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    o = ap.parse_args()
    mechs = o.only.split(",") if o.only else MECHS
    threads = [int(t) for t in o.threads.split(",")]
    exe = os.path.join(o.build, "bench", "bench_maps_overhead")
    new_so, old_so = os.path.join(o.build, "libattn.so"), os.path.join(o.old_build, "libattn.so")
    for f in (exe, new_so, old_so):
        if not os.path.exists(f):
            sys.exit(f"{f} missing (make -f bench/Makefile bench-maps-overhead; make in both trees)")
    env = dict(os.environ, ATTN_GEMM=o.gemm, OPENBLAS_NUM_THREADS="1")
    env.setdefault("ATTN_CPU", info(o.build, env).get("kernel_full", "generic"))
    started = datetime.datetime.now(datetime.timezone.utc)
    kern = {"new": info(o.build, env), "old": info(o.old_build, env)}
    rev = subprocess.run(["git", "-C", os.path.dirname(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()

    tmp = tempfile.mkdtemp(prefix="maps_overhead.")
    ctl_so = os.path.join(tmp, "libattn_ctl.so")  # a copy of the new build: dlopen loads it a second time
    shutil.copy(new_so, ctl_so)
    libs = [new_so, old_so, ctl_so]
    arm = {new_so: "new", old_so: "old", ctl_so: "ctl"}
    sel = [c for c in C.make_cases() if c.mech in mechs and c.size == o.size]
    rows = []
    raw = {}
    try:
        for c in sel:
            torch.manual_seed(1234)
            mod, ins, _ = c.build()
            d = os.path.join(tmp, c.id)
            os.makedirs(os.path.join(d, "model"))
            with open(os.path.join(d, "model", "config.json"), "w") as f:
                json.dump({"type": c.mech, "config": c.config}, f)
            sd = mod.state_dict()
            if sd:
                write_st(os.path.join(d, "model", "weights.safetensors"), {k: v.float() for k, v in sd.items()})
            write_st(os.path.join(d, "inputs.safetensors"), ins)
            for T in threads:
                probe = bench(exe, libs, d, T, 2, env)
                per = max(statistics.median(x["cpu_ms"]) for x in probe)
                rounds = int(min(o.max_rounds, max(o.min_rounds, o.budget_s * 1e3 / (3 * per))))
                res = {arm[x["lib"]]: x for x in bench(exe, libs, d, T, rounds, env)}
                raw[f"{c.id}/{T}"] = res
                r = {"case": c.id, "shape": c.shape, "threads": T, "rounds": rounds}
                for a in ("new", "old", "ctl"):
                    r[a + "_ws"] = res[a]["workspace_bytes"]
                    r[a + "_cpu"] = statistics.median(res[a]["cpu_ms"])
                    r[a + "_wall"] = statistics.median(res[a]["wall_ms"])
                for a in ("old", "ctl"):  # paired per-round ratios new / a
                    pr = [n / x for n, x in zip(res["new"]["cpu_ms"], res[a]["cpu_ms"])]
                    r[a + "_ratio"] = statistics.median(pr)
                    r[a + "_ci"] = boot_ci(pr)
                    pw = [n / x for n, x in zip(res["new"]["wall_ms"], res[a]["wall_ms"])]
                    r[a + "_wall_ratio"] = statistics.median(pw)
                rows.append(r)
                print(f"{c.id} threads={T} rounds={rounds}: new/old cpu {r['old_ratio']:.3f} "
                      f"[{r['old_ci'][0]:.3f}, {r['old_ci'][1]:.3f}], A/A {r['ctl_ratio']:.3f} "
                      f"[{r['ctl_ci'][0]:.3f}, {r['ctl_ci'][1]:.3f}]; load {open('/proc/loadavg').read().split()[:3]}",
                      flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    day = started.strftime("%Y-%m-%d")
    os.makedirs(o.out, exist_ok=True)
    stem = os.path.join(o.out, f"{day}-maps-overhead")
    meta = {"started": started.isoformat(timespec="seconds"), "rev": rev, "old_rev": o.old_rev,
            "cpu": subprocess.run("lscpu | sed -n 's/^Model name: *//p'", shell=True, capture_output=True,
                                  text=True).stdout.strip(),
            "nproc": os.cpu_count(), "kernels": kern, "env": {k: env[k] for k in ("ATTN_GEMM", "ATTN_CPU")},
            "opts": vars(o), "loadavg_end": open("/proc/loadavg").read().split()[:3]}
    with open(stem + ".json", "w") as f:
        json.dump({"meta": meta, "rows": rows, "raw": raw}, f)
    write_md(stem + ".md", meta, rows)
    print(open(stem + ".md").read())


def write_md(path, meta, rows):
    k, ko = meta["kernels"]["new"], meta["kernels"]["old"]
    L = [f"# Attention maps: the cost of the ordinary forward ({meta['started'][:10]})", "",
         f"`bench/maps_overhead.py` at {meta['rev']}: `attn_model_forward` on this tree's libattn (**new**) "
         f"and on libattn built from {meta['old_rev']}, before maps existed (**old**), interleaved in one "
         "process (bench/bench_maps_overhead.c dlopens both libattn.so, and a copy of the new one as an A/A "
         "control, **ctl**): each round one forward of each, the order rotating; one warm-up forward each.",
         "", f"- CPU: {meta['cpu']}, {meta['nproc']} CPUs, shared with other jobs (load at the end "
         f"{' '.join(meta['loadavg_end'])})",
         f"- kernels, pinned for both builds (ATTN_CPU={meta['env']['ATTN_CPU']} ATTN_GEMM={meta['env']['ATTN_GEMM']}): "
         f"new: full {k.get('kernel_full')}, softmax {k.get('kernel_softmax')}, gemm {k.get('kernel_gemm')}; "
         f"old: full {ko.get('kernel_full')}, softmax {ko.get('kernel_softmax')}, gemm {ko.get('kernel_gemm')}",
         f"- started {meta['started']}", "",
         "Times are medians in ms of the process CPU time per forward (wall time in parentheses: other jobs "
         "stretch it). ratio = median of the per-round ratios new / old of CPU time, with a 95% bootstrap "
         "interval; A/A = the same for new / ctl (two copies of the same build: what noise alone gives). "
         "workspace: attn_model_workspace_size, the scratch one forward takes (KiB, old / new).", "",
         "| case | shape | threads | rounds | old ms | new ms | new / old [95%] | A/A [95%] | new / old wall "
         "| workspace KiB |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['case']} | {r['shape']} | {r['threads']} | {r['rounds']} | {r['old_cpu']:.2f} "
                 f"({r['old_wall']:.2f}) | {r['new_cpu']:.2f} ({r['new_wall']:.2f}) | {r['old_ratio']:.3f} "
                 f"[{r['old_ci'][0]:.3f}, {r['old_ci'][1]:.3f}] | {r['ctl_ratio']:.3f} "
                 f"[{r['ctl_ci'][0]:.3f}, {r['ctl_ci'][1]:.3f}] | {r['old_wall_ratio']:.3f} | "
                 f"{r['old_ws'] / 1024:.1f} / {r['new_ws'] / 1024:.1f} |")
    L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()

"""bench/server/run.py — the server half of issue 6 (called by bench/server/run.sh).

    /usr/bin/python3 bench/server/run.py --build BUILD [--out bench/results] [--duration 10]
                                         [--rounds 1] [--no-flask]

In one run:
  1. bench_codec: JSON decode/encode and binary decode of a 4 MiB FP32 tensor (MB/s).
  2. attnd on 127.0.0.1 (--port 0, built-in `full` model), the Flask + PyTorch peer
     (bench/server/flask_peer.py) on another free port; outputs of both checked
     against the PyTorch reference.
  3. wrk (2 threads, fixed duration, bench/server/wrk.lua):
       small JSON (full, N=1, L=S=16, H=2, E=D=8) at 64 connections, attnd and Flask
       alternately for --rounds rounds;
       large binary (L=S=2048, H=8, E=D=64, 12 MiB in, 4 MiB binary out) at 2 connections;
       both at 1 connection (1 wrk thread) for the end-to-end latency.
  4. `attn bench` on the same inputs (in-process forward, 2 threads as attnd gives a lone
     request): server overhead = (e2e p50 at 1 connection - forward median) / e2e p50.
  5. attnd's /metrics before/after each 1-connection run: where the server time goes
     (input decode, queue, infer, output encode), per request.
Writes OUT/<date>-server.md and OUT/<date>-server.csv.
"""
import argparse
import datetime
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"

SMALL = dict(N=1, L=16, S=16, H=2, E=8, D=8)
LARGE = dict(N=1, L=2048, S=2048, H=8, E=64, D=64)
TARGETS = dict(small_rps=10000, small_p99_ms=10, flask_ratio=20, large_overhead=0.05,
               bin_decode_mbs=1000, json_decode_mbs=300, json_encode_mbs=150)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---------------------------------------------------------------- inputs
def make_inputs(shape, seed):
    g = np.random.default_rng(seed)
    N, L, S, H, E, D = (shape[k] for k in "NLSHED")
    return {"queries": g.standard_normal((N, L, H, E), dtype=np.float32),
            "keys": g.standard_normal((N, S, H, E), dtype=np.float32),
            "values": g.standard_normal((N, S, H, D), dtype=np.float32)}


def f32_text(a):
    # shortest text that reads back as the same float32 (what attnd writes, and numpy's repr)
    return "[" + ",".join(np.format_float_positional(v, unique=True, trim="-") for v in a.ravel()) + "]"


def json_body(ins):
    parts = [f'{{"name":"{k}","shape":{list(v.shape)},"datatype":"FP32","data":{f32_text(v)}}}'
             for k, v in ins.items()]
    return ('{"inputs":[' + ",".join(parts) + "]}").encode()


def binary_body(ins):
    hdr = {"inputs": [{"name": k, "shape": list(v.shape), "datatype": "FP32",
                       "parameters": {"binary_data_size": v.nbytes}} for k, v in ins.items()],
           "parameters": {"binary_data_output": True}}
    h = json.dumps(hdr, separators=(",", ":")).encode()
    return h + b"".join(v.tobytes() for v in ins.values()), len(h)


def write_st(path, tensors):
    hdr, blobs, off = {}, [], 0
    for name in sorted(tensors):
        b = np.ascontiguousarray(tensors[name]).tobytes()
        hdr[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def reference(ins):
    q, k, v = (ins[n].astype(np.float64) for n in ("queries", "keys", "values"))
    qk = np.einsum("nlhe,nshe->nhls", q, k) / math.sqrt(q.shape[-1])
    qk -= qk.max(-1, keepdims=True)
    a = np.exp(qk)
    a /= a.sum(-1, keepdims=True)
    return np.einsum("nhls,nshd->nlhd", a, v)


# ---------------------------------------------------------------- servers
def start(cmd, log_path, ready_path, env=None, timeout=60):
    log = open(log_path, "w")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    t_end = time.time() + timeout
    addr = None
    while time.time() < t_end:
        if p.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited ({p.returncode}): {open(log_path).read()[-2000:]}")
        m = re.search(r"listening on (\S+):(\d+)", open(log_path).read())
        if m:
            addr = f"{m.group(1)}:{m.group(2)}"
            try:
                with urllib.request.urlopen(f"http://{addr}{ready_path}", timeout=2) as r:
                    if r.status == 200:
                        return p, addr
            except Exception:
                pass
        time.sleep(0.1)
    p.kill()
    raise RuntimeError(f"{cmd[0]} not ready after {timeout}s")


def stop(p):
    if p and p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, dict(r.headers), r.read()


def check_json(url, body, ref, who):
    st, _, out = post(url, body, {"Content-Type": "application/json"})
    o = json.loads(out)["outputs"][0]
    got = np.array(o["data"], dtype=np.float64).reshape(o["shape"])
    err = float(np.max(np.abs(got - ref)))
    if st != 200 or got.shape != ref.shape or err > 1e-4:
        raise RuntimeError(f"{who}: wrong answer (status {st}, shape {got.shape}, max |err| {err})")
    return err


def check_binary(url, body, hlen, ref):
    st, hd, out = post(url, body, {"Content-Type": "application/octet-stream",
                                   "Inference-Header-Content-Length": str(hlen)})
    n = int(hd["Inference-Header-Content-Length"])
    o = json.loads(out[:n])["outputs"][0]
    got = np.frombuffer(out[n:], dtype=np.float32).reshape(o["shape"])
    err = float(np.max(np.abs(got - ref)))
    if st != 200 or err > 1e-4:
        raise RuntimeError(f"attnd binary: wrong answer (status {st}, max |err| {err})")
    return err


# ---------------------------------------------------------------- measurements
def wrk(url, body_file, ctype, hlen, threads, conns, duration, timeout_s=10):
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", f"--timeout={timeout_s}s", "--latency",
           "-s", os.path.join(HERE, "wrk.lua"), url, "--", body_file, ctype, str(hlen or "")]
    load0 = loadavg()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120).stdout
    m = re.search(r"WRKJSON (\{.*\})", out)
    if not m:
        raise RuntimeError(f"wrk gave no summary:\n{out}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = sum(r[k] for k in r if k.startswith("err_"))
    r["load"] = load0
    r["threads"], r["conns"] = threads, conns
    return r


def metrics(addr):
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r'(attnd_inference_(?:request_success|queue_duration_us|compute_input_duration_us|'
                     r'compute_infer_duration_us|compute_output_duration_us|request_duration_us))'
                     r'\{model="full"[^}]*\} (\S+)', line)
        if m:  # one series per protocol (http, grpc): their sum
            k = m.group(1).replace("attnd_inference_", "")
            out[k] = out.get(k, 0.0) + float(m.group(2))
    return out


def split(m0, m1):
    n = m1.get("request_success", 0) - m0.get("request_success", 0)
    if n <= 0:
        return {}
    return {k.replace("_duration_us", ""): (m1[k] - m0.get(k, 0)) / n / 1e3
            for k in m1 if k.endswith("_us")} | {"n": n}


def attn_bench(build, model_dir, inputs, threads, repeat):
    out = subprocess.run([os.path.join(build, "attn"), "bench", "--model", model_dir, "--inputs", inputs,
                          "--threads", str(threads), "--repeat", str(repeat)],
                         capture_output=True, text=True, check=True).stdout
    return {k: float(v) for k, v in re.findall(r"(\w+_ms): (\S+)", out)}


def bench_codec(build, min_ms):
    out = subprocess.run([os.path.join(build, "bench", "bench_codec"), "--min-ms", str(min_ms)],
                         capture_output=True, text=True, check=True).stdout
    res = {}
    for line in out.splitlines():
        name, *kv = line.split()
        res[name] = {k: float(v) for k, v in (x.split("=") for x in kv)}
    return res


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=1, help="attnd/Flask alternations of the small run")
    ap.add_argument("--no-flask", action="store_true")
    ap.add_argument("--attnd-args", default="", help="extra attnd flags (quoted)")
    opts = ap.parse_args()
    build = os.path.abspath(opts.build)
    started = datetime.datetime.now()
    tmp = tempfile.mkdtemp(prefix="attnd-bench-")
    info = {"started": started.isoformat(timespec="seconds"), "load_start": loadavg(),
            "cpu": sh("lscpu | grep -E '^(Model name|CPU\\(s\\)|Thread|Core|Socket|Flags)' | "
                      "sed 's/^Flags:.*avx512f.*/Flags: ... avx512f .../'"),
            "uptime": sh("uptime"), "wrk": sh("wrk -v 2>&1 | head -1"),
            "torch": sh(f"{PY} -c 'import torch; print(torch.__version__)'"),
            "flask": sh(f"{PY} -c 'import flask; print(flask.__version__)'"),
            "attnd": sh(f"{build}/attnd --version"),
            "commit": sh(f"git -C {ROOT} log -1 --format='%h %ad' --date=format:'%Y-%m-%d %H:%M'"),
            "duration": opts.duration, "attnd_args": opts.attnd_args}
    print(f"server bench: load {info['load_start']}, scratch {tmp}", file=sys.stderr)

    # inputs
    small, large = make_inputs(SMALL, 1), make_inputs(LARGE, 2)
    sbody = json_body(small)
    lbody, lhlen = binary_body(large)
    paths = {"small": os.path.join(tmp, "small.json"), "large": os.path.join(tmp, "large.bin")}
    open(paths["small"], "wb").write(sbody)
    open(paths["large"], "wb").write(lbody)
    model = os.path.join(tmp, "model")
    os.makedirs(model)
    json.dump({"type": "full", "config": {}}, open(os.path.join(model, "config.json"), "w"))
    write_st(os.path.join(tmp, "small.safetensors"), small)
    write_st(os.path.join(tmp, "large.safetensors"), large)
    info["small_body_bytes"], info["large_body_bytes"] = len(sbody), len(lbody)

    R = {"info": info, "rows": []}

    def row(**kw):
        R["rows"].append(kw)
        print("  " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in kw.items()),
              file=sys.stderr)

    # 1. codec
    print("codec (4 MiB FP32 tensor)", file=sys.stderr)
    R["codec"] = bench_codec(build, 1500)
    for k, v in R["codec"].items():
        row(kind="codec", test=k, median_ms=v["median_ms"], best_ms=v["best_ms"],
            text_mbs=v.get("text_mbs", ""), tensor_mbs=v["tensor_mbs"], tensor_mbs_best=v["tensor_mbs_best"])

    attnd = flask = None
    try:
        attnd, aaddr = start([os.path.join(build, "attnd"), "--host", "127.0.0.1", "--port", "0",
                              *opts.attnd_args.split()], os.path.join(tmp, "attnd.log"), "/v2/health/ready")
        aurl = f"http://{aaddr}/v2/models/full/infer"
        if not opts.no_flask:
            flask, faddr = start([PY, os.path.join(HERE, "flask_peer.py"), "--port", "0"],
                                 os.path.join(tmp, "flask.log"), "/v2/health/ready")
            furl = f"http://{faddr}/v2/models/full/infer"
        ref_s = reference(small)
        info["check_attnd_small"] = check_json(aurl, sbody, ref_s, "attnd")
        info["check_attnd_large"] = check_binary(aurl, lbody, lhlen, reference(large).astype(np.float32))
        if flask:
            info["check_flask_small"] = check_json(furl, sbody, ref_s, "flask")

        # 2. small JSON at 64 connections, alternating
        print(f"small JSON, 2 threads, 64 connections, {opts.duration} s", file=sys.stderr)
        for rnd in range(opts.rounds):
            for impl, url in (("attnd", aurl), ("flask", None if not flask else furl)):
                if not url:
                    continue
                r = wrk(url, paths["small"], "application/json", None, 2, 64, opts.duration)
                row(kind="wrk", test="small_json_c64", impl=impl, round=rnd, **r)

        # 3. large binary
        print("large binary, 2 threads, 2 connections", file=sys.stderr)
        r = wrk(aurl, paths["large"], "application/octet-stream", lhlen, 2, 2, opts.duration, 60)
        row(kind="wrk", test="large_binary_c2", impl="attnd", round=0, **r)

        # 4. 1 connection: end-to-end latency, server split, in-process forward
        print("1 connection: end-to-end vs in-process", file=sys.stderr)
        for test, body, ctype, hlen, st, rep in (
                ("small_json_c1", paths["small"], "application/json", None, "small.safetensors", 20000),
                ("large_binary_c1", paths["large"], "application/octet-stream", lhlen, "large.safetensors", 60)):
            m0 = metrics(aaddr)
            r = wrk(aurl, body, ctype, hlen, 1, 1, opts.duration, 60)
            m1 = metrics(aaddr)
            fw = attn_bench(build, model, os.path.join(tmp, st), 2, rep)
            sp = split(m0, m1)
            e2e = r["p50_us"] / 1e3
            row(kind="wrk", test=test, impl="attnd", round=0, **r)
            row(kind="overhead", test=test, e2e_p50_ms=e2e, e2e_mean_ms=r["mean_us"] / 1e3,
                forward_median_ms=fw["median_ms"], forward_min_ms=fw["min_ms"],
                overhead_ms=e2e - fw["median_ms"], overhead_share=(e2e - fw["median_ms"]) / e2e,
                **{f"server_{k}_ms": v for k, v in sp.items() if k != "n"})
        # 5. the transport floor: a C server that only moves the same bytes
        print("transport floor (bench/server/sink.c), 1 connection", file=sys.stderr)
        out_bytes = LARGE["N"] * LARGE["L"] * LARGE["H"] * LARGE["D"] * 4 + 400  # tensor + a JSON header
        sink, saddr = start([os.path.join(build, "bench", "sink"), str(out_bytes)], os.path.join(tmp, "sink.log"),
                            "/ready")
        try:
            r = wrk(f"http://{saddr}/v2/models/full/infer", paths["large"], "application/octet-stream", lhlen, 1, 1,
                    opts.duration, 60)
            row(kind="wrk", test="large_binary_c1", impl="sink", round=0, **r)
        finally:
            stop(sink)
        if flask:
            info["flask_threads"] = "werkzeug threaded, torch default threads"
    finally:
        stop(attnd)
        stop(flask)
    info["load_end"] = loadavg()
    info["seconds"] = round((datetime.datetime.now() - started).total_seconds())
    os.makedirs(opts.out, exist_ok=True)
    stem = os.path.join(opts.out, started.strftime("%Y-%m-%d") + "-server")
    json.dump(R, open(stem + ".json", "w"), indent=1)
    write_csv(R, stem + ".csv")
    open(stem + ".md", "w").write(render(R))
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {stem}.md, .csv, .json", file=sys.stderr)


# ---------------------------------------------------------------- report
CSV_COLS = ["date", "kind", "test", "impl", "round", "threads", "conns", "rps", "p50_ms", "p90_ms", "p99_ms",
            "mean_ms", "requests", "errors", "load", "median_ms", "best_ms", "text_mbs", "tensor_mbs",
            "e2e_p50_ms", "forward_median_ms", "overhead_ms", "overhead_share"]


def write_csv(R, path):
    import csv
    date = R["info"]["started"].replace("T", " ")[:16]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLS)
        for r in R["rows"]:
            d = dict(r, date=date)
            for k in ("p50", "p90", "p99", "mean"):
                if f"{k}_us" in r:
                    d[f"{k}_ms"] = round(r[f"{k}_us"] / 1e3, 3)
            w.writerow([(round(d[c], 4) if isinstance(d.get(c), float) else d.get(c, "")) for c in CSV_COLS])


def render(R):
    I = R["info"]
    rows = R["rows"]
    wr = lambda t, impl="attnd": [r for r in rows if r["kind"] == "wrk" and r["test"] == t and r["impl"] == impl]
    ov = {r["test"]: r for r in rows if r["kind"] == "overhead"}
    C = R["codec"]
    def med(xs):
        xs = sorted(xs)
        return (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2 if xs else float("nan")
    a_rps = med([r["rps"] for r in wr("small_json_c64")])
    f_rps = med([r["rps"] for r in wr("small_json_c64", "flask")])
    a_p99 = med([r["p99_us"] / 1e3 for r in wr("small_json_c64")])
    ratio = a_rps / f_rps if f_rps == f_rps and f_rps else float("nan")
    rr = [a["rps"] / f["rps"] for a, f in zip(wr("small_json_c64"), wr("small_json_c64", "flask"))]
    L = []
    p = L.append
    p(f"# Server benchmarks, {I['started'].replace('T', ' ')}\n")
    p("Issue 6, server part: attnd (built-in `full` model) on 127.0.0.1 under `wrk`, the Flask + PyTorch "
      "peer under the same wrk settings in the same run, the wire codec alone (`build/bench/bench_codec`), "
      "and the server's share of end-to-end time. Written by `bench/server/run.sh` "
      "(bench/server/run.py).\n")
    p("## Machine and load\n")
    p("```")
    p(I["cpu"])
    p(f"uptime at start: {I['uptime']}")
    p(f"load average at start {I['load_start']}, at end {I['load_end']} ({I['seconds']} s run)")
    p(f"{I['wrk']}; torch {I['torch']}; flask {I['flask']}; {I['attnd']}; commit {I['commit']}")
    p("```\n")
    p("wrk runs on the same 2 cores as the server (2 wrk threads), and the machine is shared with other "
      "jobs (load average per run in the tables). Each wrk run lasts "
      f"{I['duration']} s. attnd runs with its defaults{(' plus ' + I['attnd_args']) if I['attnd_args'] else ''} "
      "(compute threads = cores, HTTP threads = min(cores, 4), one log line per request to a file).\n")
    p(f"Requests: small = full, N=1, L=S=16, H=2, E=D=8 as JSON ({I['small_body_bytes']} bytes, shortest "
      f"float32 text); large = L=S=2048, H=8, E=D=64, binary tensor data extension ({I['large_body_bytes']} "
      "bytes in, output asked as binary: 4 MiB out). Both answers were checked against a float64 reference "
      f"before timing (max |err| attnd small {I.get('check_attnd_small', float('nan')):.1e}, large "
      f"{I.get('check_attnd_large', float('nan')):.1e}, Flask small {I.get('check_flask_small', float('nan')):.1e}).\n")
    p("## wrk\n")
    p("| request | server | wrk threads × connections | requests/s | p50 ms | p90 ms | p99 ms | errors | load |")
    p("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["kind"] == "wrk":
            p(f"| {r['test']} | {r['impl']} | {r['threads']} × {r['conns']} | {r['rps']:,.0f} | "
              f"{r['p50_us'] / 1e3:.3f} | {r['p90_us'] / 1e3:.3f} | {r['p99_us'] / 1e3:.3f} | {r['errors']} | "
              f"{r['load']} |")
    p("")
    p("## Codec (4 MiB FP32 tensor, 1 Mi standard-normal values, one thread)\n")
    p("MB = 10⁶ bytes. *text* MB/s count the JSON `data` text; *tensor* MB/s the 4-byte floats. "
      "`json_decode` reads the shortest float32 text (what attnd writes, 10.9 bytes/value); "
      "`json_decode17` reads 17 significant digits (Python's `json.dumps` of float32 values turned "
      "into Python floats, as `tolist()` gives). Decode = `svc_wire_parse` + `svc_wire_decode` of a whole "
      "request; encode = `svc_wire_encode` of the response.\n")
    p("| test | median ms | best ms | text MB/s (median) | tensor MB/s (median) | tensor MB/s (best) |")
    p("|---|---|---|---|---|---|")
    for k, v in C.items():
        tm = f"{v['text_mbs']:.0f}" if "text_mbs" in v else "—"
        p(f"| {k} | {v['median_ms']:.2f} | {v['best_ms']:.2f} | {tm} | {v['tensor_mbs']:.0f} | "
          f"{v['tensor_mbs_best']:.0f} |")
    p("")
    p("## Server overhead (1 connection)\n")
    p("End-to-end = wrk p50 at 1 connection (1 wrk thread); forward = `attn bench` median on the same "
      "inputs at 2 threads (what attnd gives a lone request); overhead = (end-to-end − forward) ÷ "
      "end-to-end. The server's own split (from /metrics, mean per request over the same wrk run) "
      "shows where the non-forward time goes.\n")
    p("On a loaded machine the separate `attn bench` forward can be slower or faster than the same "
      "forward inside attnd during the wrk run, so the overhead is also given against attnd's own infer "
      "time for the very requests wrk timed (mean, /metrics): *overhead vs infer* = (end-to-end mean − "
      "infer mean) ÷ end-to-end mean. The target is judged on that one.\n")
    p("| request | end-to-end p50 ms | end-to-end mean ms | forward (attn bench) median / min ms | overhead vs attn bench (p50) | "
      "attnd: input decode ms | queue ms | infer ms | output encode ms | overhead vs infer |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    for t, o in ov.items():
        g = lambda k: f"{o[k]:.3f}" if k in o else "—"
        vi = (o["e2e_mean_ms"] - o["server_compute_infer_ms"]) / o["e2e_mean_ms"] if "server_compute_infer_ms" in o else float("nan")
        o["overhead_vs_infer"] = vi
        p(f"| {t} | {o['e2e_p50_ms']:.3f} | {o['e2e_mean_ms']:.3f} | {o['forward_median_ms']:.3f} / {o['forward_min_ms']:.3f} | "
          f"{o['overhead_ms']:.3f} ms = {100 * o['overhead_share']:.1f}% | {g('server_compute_input_ms')} | {g('server_queue_ms')} | "
          f"{g('server_compute_infer_ms')} | {g('server_compute_output_ms')} | {100 * vi:.1f}% |")
    sink = [r for r in R["rows"] if r["kind"] == "wrk" and r["test"] == "large_binary_c1" and r["impl"] == "sink"]
    sv = None
    if sink and "large_binary_c1" in ov:
        o = ov["large_binary_c1"]
        tr_p50, tr_mean = sink[0]["p50_us"] / 1e3, sink[0]["mean_us"] / 1e3
        own = o["e2e_mean_ms"] - o["server_compute_infer_ms"] - tr_mean
        sv = own / o["e2e_mean_ms"]
        o["transport_mean_ms"], o["server_own_ms"], o["server_own_share"] = tr_mean, own, sv
        p("\nThe transport floor: `build/bench/sink` (bench/server/sink.c), an HTTP server in C that only reads "
          "the same 12 MiB request and answers with as many bytes as attnd's binary response, under the same "
          f"wrk settings: p50 {tr_p50:.3f} ms, mean {tr_mean:.3f} ms per request. That is loopback TCP and wrk "
          "moving 16 MiB, which any server on this machine pays. What attnd adds on top, besides its forward, "
          f"is end-to-end mean − infer mean − transport mean = {o['e2e_mean_ms']:.3f} − "
          f"{o['server_compute_infer_ms']:.3f} − {tr_mean:.3f} = {own:.3f} ms = **{100 * sv:.1f}%** of "
          "end-to-end.\n")
    p("")
    p("## Targets\n")
    lo = ov.get("large_binary_c1", {}).get("overhead_vs_infer", float("nan"))
    la = ov.get("large_binary_c1", {}).get("overhead_share", float("nan"))
    T = TARGETS
    yes = lambda c: "**met**" if c else "**missed**"
    p("| target | measured | status |")
    p("|---|---|---|")
    p(f"| ≥ {T['small_rps']:,} small JSON requests/s, p99 < {T['small_p99_ms']} ms, 64 connections, 2 cores | "
      f"{a_rps:,.0f} requests/s, p99 {a_p99:.2f} ms | {yes(a_rps >= T['small_rps'] and a_p99 < T['small_p99_ms'])} |")
    p(f"| ≥ {T['flask_ratio']}× the Flask + PyTorch peer | medians {a_rps:,.0f} / {f_rps:,.0f} = {ratio:.1f}×; "
      f"per round {', '.join(f'{x:.1f}×' for x in rr)} | "
      f"{yes(ratio >= T['flask_ratio'])} |")
    if sv is not None:
        p(f"| server overhead < 5% of end-to-end, large binary | attnd's own: **{100 * sv:.1f}%** (end-to-end − infer − "
          f"the transport floor). Everything but the forward, transport included: {100 * lo:.1f}% against attnd's "
          f"infer time ({100 * la:.1f}% against the separate attn bench median) | "
          f"{yes(sv < T['large_overhead'])} for attnd's own overhead; {yes(lo < T['large_overhead'])} with the "
          "loopback transfer counted |")
    else:
        p(f"| server overhead < 5% of end-to-end, large binary | {100 * lo:.1f}% against attnd's own infer time "
          f"({100 * la:.1f}% against the separate attn bench median) | {yes(lo < T['large_overhead'])} |")
    bd = C["bin_decode"]["tensor_mbs"]
    p(f"| binary decode ≥ 1 GB/s | {bd:,.0f} MB/s | {yes(bd >= T['bin_decode_mbs'])} |")
    jd, jd17 = C["json_decode"]["text_mbs"], C["json_decode17"]["text_mbs"]
    p(f"| JSON float decode ≥ 300 MB/s | {jd:.0f} MB/s of shortest text ({C['json_decode']['tensor_mbs']:.0f} "
      f"MB/s of floats); {jd17:.0f} MB/s of 17-digit text | {yes(jd >= T['json_decode_mbs'])} |")
    je = C["json_encode"]["text_mbs"]
    p(f"| JSON float encode ≥ 150 MB/s | {je:.0f} MB/s of text ({C['json_encode']['tensor_mbs']:.0f} MB/s of "
      f"floats) | {yes(je >= T['json_encode_mbs'])} |")
    p("")
    notes = os.path.join(ROOT, "bench", "results", I["started"][:10] + "-server-notes.md")
    if os.path.exists(notes):
        p(open(notes).read())
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        R = json.load(open(sys.argv[2]))
        stem = sys.argv[2][:-5]
        write_csv(R, stem + ".csv")
        open(stem + ".md", "w").write(render(R))
    else:
        main()

"""Soak: attnd under minutes of mixed load from wrk, and under valgrind.

  python3 soak.py load BUILD_DIR SECONDS [RESULTS.json]
      wrk (16 connections, 2 threads) sends a mix of requests round robin: every
      example request as JSON and as binary tensors, built-in models with
      parameters, a heavier request that makes the queue (--max-queue 12) overflow
      now and then, metadata, health and /metrics; a side thread reloads and
      unloads models meanwhile.  Passes when every response is 200 or 503 (and
      wrk saw no socket error), RSS after the run is within 5% of RSS after the
      warm-up (the first fifth of the run, at least 20 s), the server still
      answers, has nothing in flight, and exits 0 on SIGTERM.
  python3 soak.py valgrind BUILD_DIR REQUESTS
      attnd (a build without -march=native: valgrind does not decode AVX-512)
      under valgrind memcheck serves REQUESTS requests of the same mix, then
      SIGTERM: no memcheck error, no definite or indirect leak.
"""
import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "hostile"))

from rawhttp import ROOT, Attnd, Failure, check, copy_examples, exchange, request_bytes, sanitizer_clean  # noqa: E402

PACK = {"FP32": "f", "INT64": "q", "INT32": "i", "BOOL": "B"}


def flatten(x):
    if isinstance(x, list):
        for v in x:
            yield from flatten(v)
    else:
        yield x


def to_binary(req):
    """An example JSON request as the binary extension (header, length)."""
    hdr = {"inputs": [], "parameters": {"binary_data_output": True}}
    raw = b""
    for i in req["inputs"]:
        vals = list(flatten(i["data"]))
        if i["datatype"] == "BOOL":
            vals = [1 if v else 0 for v in vals]
        b = struct.pack(f"<{len(vals)}{PACK[i['datatype']]}", *vals)
        hdr["inputs"].append({"name": i["name"], "datatype": i["datatype"], "shape": i["shape"],
                              "parameters": {"binary_data_size": len(b)}})
        raw += b
    h = json.dumps(hdr).encode()
    return h + raw, len(h)


def prepare(work):
    """Writes the request files and requests.txt (the mix) into work; returns
    the mix as [(method, path, body, headers)] too."""
    mix, lines = [], []

    def add(method, path, body=None, ctype=None, hlen=None, weight=1):
        name = "-"
        if body is not None:
            name = f"body{len(lines)}"
            with open(os.path.join(work, name), "wb") as f:
                f.write(body)
        for _ in range(weight):
            lines.append(f"{method} {path} {name} {ctype or '-'} {hlen if hlen is not None else '-'}")
        hdr = {}
        if ctype:
            hdr["Content-Type"] = ctype
        if hlen is not None:
            hdr["Inference-Header-Content-Length"] = str(hlen)
        mix.append((method, path, body, hdr))

    reqdir = os.path.join(ROOT, "examples", "requests")
    for fn in sorted(os.listdir(reqdir)):
        model = fn[:-5]
        with open(os.path.join(reqdir, fn), "rb") as f:
            raw = f.read()
        add("POST", f"/v2/models/{model}/infer", raw, "application/json")
        body, hlen = to_binary(json.loads(raw))
        add("POST", f"/v2/models/{model}/infer", body, "application/octet-stream", hlen)
    q = json.loads(open(os.path.join(reqdir, "full_causal.json"), "rb").read())
    q.pop("id", None)
    q["parameters"] = {"softmax_temp": 0.5}
    add("POST", "/v2/models/full/infer", json.dumps(q).encode(), "application/json", weight=2)
    n = 2 * 256 * 4 * 8
    heavy = struct.pack(f"<{n}f", *[((i * 7919) % 97) / 97 - 0.5 for i in range(n)])
    hdr = json.dumps({"inputs": [{"name": k, "datatype": "FP32", "shape": [2, 256, 4, 8],
                                  "parameters": {"binary_data_size": len(heavy)}} for k in ("queries", "keys", "values")],
                      "parameters": {"binary_data_output": True}}).encode()
    add("POST", "/v2/models/full/infer", hdr + heavy * 3, "application/octet-stream", len(hdr), weight=2)
    for p in ("/v2/health/ready", "/v2", "/v2/models/attention_layer_full", "/v2/models/full/config", "/metrics"):
        add("GET", p)
    with open(os.path.join(work, "requests.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return mix


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def reloader(s, repo, stop, counts):
    """Every 2 s: reload a repository model (it keeps serving throughout),
    from the request (base64 weights) or from its folder."""
    names = sorted(n for n in os.listdir(repo) if os.path.isfile(os.path.join(repo, n, "weights.safetensors")))
    k = 0
    while not stop.wait(2.0):
        name = names[k % len(names)]
        k += 1
        body = b""
        if k % 2:
            cfg = open(os.path.join(repo, name, "config.json")).read()
            w = base64.b64encode(open(os.path.join(repo, name, "weights.safetensors"), "rb").read()).decode()
            body = json.dumps({"parameters": {"config": cfg, "file:weights.safetensors": w}}).encode()
        r = s.http("POST", f"/v2/repository/models/{name}/load", body, {"Content-Type": "application/json"})
        counts[r.status] = counts.get(r.status, 0) + 1


def run_load(build, seconds, results_path=None):
    attnd = os.path.join(build, "attnd")
    wrk = shutil.which("wrk")
    check(wrk, "wrk is not installed (Debian package wrk)")
    with tempfile.TemporaryDirectory(prefix="attnd-soak-") as work:
        repo = copy_examples(os.path.join(work, "repo"))
        prepare(work)
        s = Attnd(attnd, "--model-repository", repo, "--threads", "2", "--max-queue", "12", "--timeout", "60",
                  work=work, tag="soak")
        stop = threading.Event()
        loads = {}
        samples = []
        try:
            rl = threading.Thread(target=reloader, args=(s, repo, stop, loads))
            rl.start()
            t0 = time.time()
            env = dict(os.environ, SOAK_DIR=work)
            p = subprocess.Popen([wrk, "-t", "2", "-c", "16", "-d", f"{seconds}s", "--timeout", "30s",
                                  "-s", os.path.join(HERE, "mixed.lua"), f"http://127.0.0.1:{s.port}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            while p.poll() is None:
                samples.append((time.time() - t0, rss_kib(s.proc.pid)))
                time.sleep(1.0)
            out = p.stdout.read().decode()
            stop.set()
            rl.join()
            check(p.returncode == 0, f"wrk failed:\n{out}")
            m = re.search(r"^SOAK (.*)$", out, re.M)
            check(m, f"no SOAK line from wrk:\n{out}")
            res = json.loads(m.group(1))
            after = s.metrics()
            s.infer_ok()
        finally:
            stop.set()
            rc = s.stop()
        log = s.log()
    warm = max(20.0, seconds / 5)
    after_warm = [r for t, r in samples if t >= warm]
    check(len(after_warm) >= 3, f"too few RSS samples ({len(samples)})")
    k = min(5, max(1, len(after_warm) // 4))
    rss_warm = sorted(after_warm[:k])[k // 2]
    rss_end = sorted(after_warm[-k:])[k // 2]
    growth = (rss_end - rss_warm) / rss_warm
    st = {int(k): v for k, v in res["statuses"].items()}
    total = sum(st.values())
    summary = {
        "seconds": seconds, "requests": res["requests"], "responses": total, "statuses": st,
        "rps": round(total / seconds, 1), "socket_errors": res["errors"], "p50_ms": res["p50_us"] / 1000,
        "p99_ms": res["p99_us"] / 1000, "rss_warm_kib": rss_warm, "rss_end_kib": rss_end,
        "rss_max_kib": max(r for _, r in samples), "rss_growth_pct": round(100 * growth, 2),
        "rss_series_kib": [samples[min(len(samples) - 1, len(samples) * i // 20)][1] for i in range(21)],
        "model_loads": loads, "exit_code": rc,
    }
    print("soak: " + json.dumps(summary), flush=True)
    if results_path:
        os.makedirs(os.path.dirname(os.path.abspath(results_path)), exist_ok=True)
        with open(results_path, "w") as f:
            json.dump(summary, f, indent=1)
    bad = {k: v for k, v in st.items() if k not in (200, 503)}
    check(not bad, f"responses other than 200 and 503: {bad}")
    errs = {k: v for k, v in res["errors"].items() if k != "status" and v}
    check(not errs, f"wrk socket errors: {errs}")
    check(st.get(200, 0) > 0, "no request succeeded")
    check(set(loads) <= {200, 503} and loads.get(200), f"model loads during the soak: {loads}")
    check(growth < 0.05, f"RSS grew {100 * growth:.1f}% after the warm-up ({rss_warm} -> {rss_end} KiB)")
    check(after.get("attnd_http_requests_in_flight") == 1, "requests left in flight after the load")
    check(after.get("attnd_queue_depth") == 0, "jobs left in the queue after the load")
    check(rc == 0, f"attnd exited {rc}")
    sanitizer_clean(log)
    return summary


def run_valgrind(build, n):
    attnd = os.path.join(build, "attnd")
    vg = shutil.which("valgrind")
    check(vg, "valgrind is not installed")
    with tempfile.TemporaryDirectory(prefix="attnd-vg-") as work:
        repo = copy_examples(os.path.join(work, "repo"))
        mix = prepare(work)
        vlog = os.path.join(work, "valgrind.log")
        wrapper = [vg, "--tool=memcheck", "--error-exitcode=99", "--leak-check=full",
                   "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
                   "--track-origins=yes", f"--log-file={vlog}"]
        # Few threads: valgrind runs them one at a time anyway.
        s = Attnd(attnd, "--model-repository", repo, "--threads", "2", "--http-threads", "2", "--timeout", "600",
                  work=work, tag="valgrind", wrapper=wrapper, ready_timeout=600)
        t0 = time.time()
        codes = {}
        try:
            for k in range(n):
                method, path, body, hdr = mix[k % len(mix)]
                r = exchange(s.port, request_bytes(method, path, body or b"", hdr), timeout=600)
                codes[r.status] = codes.get(r.status, 0) + 1
            # and the fault paths: refused and oversized bodies, dropped uploads, an abandoned computation
            exchange(s.port, request_bytes("POST", "/v2/models/full/infer", b"{", {"Content-Type": "image/png"}))
            exchange(s.port, request_bytes("POST", "/v2/models/full/infer", b"", {
                "Content-Length": str(1 << 30), "Expect": "100-continue"}, length=False))
            method, path, body, hdr = mix[0]
            whole = request_bytes(method, path, body, hdr)
            for cut in (len(whole) // 3, len(whole) - 5, len(whole)):
                sk = socket.create_connection(("127.0.0.1", s.port))
                sk.sendall(whole[:cut])
                time.sleep(0.5)
                sk.close()
            cfg = open(os.path.join(repo, "attention_layer_full", "config.json")).read()
            w = base64.b64encode(open(os.path.join(repo, "attention_layer_full", "weights.safetensors"), "rb").read())
            r = s.http("POST", "/v2/repository/models/attention_layer_full/load",
                       json.dumps({"parameters": {"config": cfg, "file:weights.safetensors": w.decode()}}).encode(),
                       timeout=600)
            codes[r.status] = codes.get(r.status, 0) + 1
        finally:
            rc = s.stop(timeout=600)
        text = open(vlog).read()
    m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    lost = re.search(r"definitely lost: ([\d,]+) bytes", text)
    ind = re.search(r"indirectly lost: ([\d,]+) bytes", text)
    summary = {"requests": sum(codes.values()), "statuses": codes, "seconds": round(time.time() - t0, 1),
               "exit_code": rc, "errors": int(m.group(1)) if m else None,
               "definitely_lost": lost.group(1) if lost else "0", "indirectly_lost": ind.group(1) if ind else "0"}
    print("valgrind: " + json.dumps(summary), flush=True)
    check(m is not None, f"no ERROR SUMMARY in the valgrind log:\n{text[-3000:]}")
    check(rc == 0 and summary["errors"] == 0, f"valgrind found errors (exit {rc}):\n{text[-6000:]}")
    check(set(codes) <= {200, 415}, f"statuses under valgrind: {codes}")
    return summary


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("load", "valgrind"):
        print(__doc__)
        return 2
    try:
        if sys.argv[1] == "load":
            run_load(os.path.abspath(sys.argv[2]), int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
        else:
            run_valgrind(os.path.abspath(sys.argv[2]), int(sys.argv[3]))
    except Failure as e:
        print(f"soak: FAIL {e}")
        return 1
    print("soak: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

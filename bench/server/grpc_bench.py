"""bench/server/grpc_bench.py — gRPC against REST on one attnd (issue 16).

    /usr/bin/python3 bench/server/grpc_bench.py BUILD [--out bench/results] [--duration 10] [--rounds 2]

Starts attnd (built-in `full` model, --port and --grpc-port on free loopback
ports), checks that both front-ends give the same bytes, then:
  1. small requests (full, N=1, L=S=16, H=2, E=D=8), 64 concurrent requests:
       REST JSON and REST binary under wrk (2 threads, 64 connections,
       bench/server/wrk.lua) and under h2load --h1 (64 connections);
       gRPC ModelInfer with raw contents under h2load: 1 connection with 64
       concurrent streams, and 64 connections with 1 stream each;
     alternating REST and gRPC for --rounds rounds;
  2. large raw tensors (L=S=2048, H=8, E=D=64: 12 MiB in, 4 MiB out), one at a
     time: REST binary under h2load --h1 against gRPC raw under h2load, mean
     and median time per request.
h2load (Debian nghttp2-client) posts the same prepared body every time: for
gRPC the 5-byte message prefix and a serialised ModelInferRequest, with
content-type application/grpc.  Writes OUT/<date>-grpc.md.
"""
import argparse
import datetime
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import run as rest_bench  # noqa: E402  (wrk, loadavg, sh, bodies)

SMALL = dict(N=1, L=16, S=16, H=2, E=8, D=8)
LARGE = dict(N=1, L=2048, S=2048, H=8, E=64, D=64)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def stubs(tmp):
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT}/proto/grpc", f"--python_out={tmp}",
                    f"--grpc_python_out={tmp}", f"{ROOT}/proto/grpc/grpc_service.proto"], check=True)
    sys.path.insert(0, tmp)
    import grpc
    import grpc_service_pb2 as pb
    import grpc_service_pb2_grpc as pg
    return grpc, pb, pg


def grpc_request(pb, ins):
    r = pb.ModelInferRequest(model_name="full")
    for n, a in ins.items():
        r.inputs.add(name=n, datatype="FP32", shape=list(a.shape))
        r.raw_input_contents.append(a.tobytes())
    return r


def h2load(url, body_file, headers, clients, streams, n, h1=False, timeout=600):
    cmd = ["h2load", "-c", str(clients), "-m", str(streams), "-n", str(n), "-d", body_file, "-t", "1"]
    for h in headers:
        cmd += ["-H", h]
    if h1:
        cmd.append("--h1")
    load0 = rest_bench.loadavg()
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=timeout).stdout
    r = {"load": load0, "clients": clients, "streams": streams, "n": n, "h1": h1}
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    if not m:
        raise RuntimeError(f"h2load gave no summary:\n{out}")
    r["rps"] = float(m.group(3))
    m = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
    r["succeeded"], r["failed"], r["errored"] = int(m.group(2)), int(m.group(3)), int(m.group(4))
    m = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", out)
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    r["min_ms"], r["max_ms"], r["mean_ms"] = (float(m.group(i)) * unit[m.group(i + 1)] for i in (1, 3, 5))
    return r


def metrics_sum(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--small-n", type=int, default=100000)
    ap.add_argument("--large-n", type=int, default=20)
    opts = ap.parse_args()
    build = os.path.abspath(opts.build)
    tmp = tempfile.mkdtemp(prefix="attnd-bench-grpc-")
    grpc, pb, pg = stubs(tmp)
    port, gport = free_port(), free_port()
    log = open(os.path.join(tmp, "attnd.log"), "wb")
    p = subprocess.Popen([os.path.join(build, "attnd"), "--port", str(port), "--grpc-port", str(gport)],
                         stdout=log, stderr=subprocess.STDOUT)
    info = {"date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": rest_bench.sh("lscpu | sed -n 's/^Model name:[ \\t]*//p'"), "nproc": rest_bench.sh("nproc"),
            "h2load": rest_bench.sh("h2load --version | head -1"), "wrk": rest_bench.sh("wrk -v 2>&1 | head -1")}
    rows = []
    try:
        for _ in range(200):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        small, large = rest_bench.make_inputs(SMALL, 1), rest_bench.make_inputs(LARGE, 2)
        files = {}
        for name, ins in (("small", small), ("large", large)):
            msg = grpc_request(pb, ins).SerializeToString()
            files[f"{name}.grpc"] = struct.pack(">BI", 0, len(msg)) + msg
            body, hl = rest_bench.binary_body(ins)
            files[f"{name}.bin"] = body
            info[f"{name}_bin_hlen"] = hl
            files[f"{name}.json"] = rest_bench.json_body(ins)
        for k, v in files.items():
            with open(os.path.join(tmp, k), "wb") as f:
                f.write(v)
        # the same bytes both ways
        stub = pg.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{gport}", options=[
            ("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]))
        for name, ins in (("small", small), ("large", large)):
            g = stub.ModelInfer(grpc_request(pb, ins)).raw_output_contents[0]
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/full/infer", data=files[f"{name}.bin"],
                                         headers={"Inference-Header-Content-Length": str(info[f"{name}_bin_hlen"])})
            with urllib.request.urlopen(req, timeout=120) as resp:
                rb = resp.read()
                rhl = int(resp.headers["Inference-Header-Content-Length"])
            if rb[rhl:] != g:
                raise SystemExit(f"{name}: gRPC and REST outputs differ")
            info[f"check_{name}"] = f"gRPC raw_output_contents == REST binary output ({len(g)} bytes)"
        url = f"http://127.0.0.1:{port}/v2/models/full/infer"
        gurl = f"http://127.0.0.1:{gport}/inference.GRPCInferenceService/ModelInfer"
        gh = ["content-type: application/grpc", "te: trailers"]
        hl_small = info["small_bin_hlen"]
        for rnd in range(opts.rounds):
            r = rest_bench.wrk(url, os.path.join(tmp, "small.json"), "application/json", None, 2, 64, opts.duration)
            rows.append(("small", "REST JSON", "wrk, 64 connections", rnd, r["rps"], r["mean_us"] / 1e3, r["errors"], r["load"]))
            r = rest_bench.wrk(url, os.path.join(tmp, "small.bin"), "application/octet-stream", hl_small, 2, 64, opts.duration)
            rows.append(("small", "REST binary", "wrk, 64 connections", rnd, r["rps"], r["mean_us"] / 1e3, r["errors"], r["load"]))
            r = h2load(url, os.path.join(tmp, "small.bin"), ["content-type: application/octet-stream",
                                                              f"inference-header-content-length: {hl_small}"],
                       64, 1, opts.small_n, h1=True)
            rows.append(("small", "REST binary", "h2load --h1, 64 connections", rnd, r["rps"], r["mean_ms"],
                         r["failed"] + r["errored"], r["load"]))
            r = h2load(gurl, os.path.join(tmp, "small.grpc"), gh, 1, 64, opts.small_n)
            rows.append(("small", "gRPC raw", "h2load, 1 connection x 64 streams", rnd, r["rps"], r["mean_ms"],
                         r["failed"] + r["errored"], r["load"]))
            r = h2load(gurl, os.path.join(tmp, "small.grpc"), gh, 64, 1, opts.small_n)
            rows.append(("small", "gRPC raw", "h2load, 64 connections x 1 stream", rnd, r["rps"], r["mean_ms"],
                         r["failed"] + r["errored"], r["load"]))
        for rnd in range(opts.rounds):
            r = h2load(url, os.path.join(tmp, "large.bin"), ["content-type: application/octet-stream",
                                                              f"inference-header-content-length: {info['large_bin_hlen']}"],
                       1, 1, opts.large_n, h1=True)
            rows.append(("large", "REST binary", "h2load --h1, 1 connection", rnd, r["rps"], r["mean_ms"],
                         r["failed"] + r["errored"], r["load"]))
            r = h2load(gurl, os.path.join(tmp, "large.grpc"), gh, 1, 1, opts.large_n)
            rows.append(("large", "gRPC raw", "h2load, 1 connection x 1 stream", rnd, r["rps"], r["mean_ms"],
                         r["failed"] + r["errored"], r["load"]))
        info["grpc_ok"] = metrics_sum(port, 'attnd_grpc_responses{code="OK"}')
        info["grpc_not_ok"] = metrics_sum(port, "attnd_grpc_responses") - info["grpc_ok"]
    finally:
        p.terminate()
        p.wait(timeout=60)
    best = {}
    for kind, impl, how, rnd, rps, mean, err, load in rows:
        best.setdefault((kind, impl, how), []).append((rps, mean))
    lines = [f"# gRPC against REST — {info['date']}", "",
             f"CPU: {info['cpu']} ({info['nproc']} cores, shared with the load generators and other jobs); "
             f"{info['h2load']}; {info['wrk']}.", "",
             "`/usr/bin/python3 bench/server/grpc_bench.py build` (one attnd, built-in `full`, default flags; "
             f"{opts.rounds} alternating rounds). Checks: {info['check_small']}; {info['check_large']}. "
             f"gRPC calls answered OK: {int(info['grpc_ok'])}, other statuses: {int(info['grpc_not_ok'])}.", "",
             "| request | front-end | load | round | requests/s | mean ms | errors | load avg |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for kind, impl, how, rnd, rps, mean, err, load in rows:
        lines.append(f"| {kind} | {impl} | {how} | {rnd} | {rps:,.0f} | {mean:.3f} | {err} | {load} |")
    lines += ["", "Best of the rounds:", "", "| request | front-end | load | requests/s | mean ms |", "|---|---|---|---:|---:|"]
    for (kind, impl, how), v in best.items():
        rps = max(x[0] for x in v)
        mean = min(x[1] for x in v)
        lines.append(f"| {kind} | {impl} | {how} | {rps:,.0f} | {mean:.3f} |")
    os.makedirs(opts.out, exist_ok=True)
    path = os.path.join(opts.out, f"{info['date'][:10]}-grpc.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""bench/wire.py BUILD [--out FILE] — bytes and time on the wire: FP32 against
FP16 / BF16 tensors and plain against gzip / deflate bodies, on a large
binary request and on a small JSON one, against a live attnd on loopback.

For every variant: request and reply bytes on the wire, the client-side
round trip (median of the repetitions), and the server's own split from its
per-model counters (attnd_inference_compute_input_duration_us: parse +
decode, where the FP16 / BF16 conversion happens; _infer_: the model;
_output_: encoding); the HTTP threads' inflate / deflate shows in the round
trip.  Loopback hides the transfer, so the report also gives the time the
bytes would take at 100 Mbit/s and 1 Gbit/s.

When BUILD/bench/bench_core exists (make -f bench/Makefile bench-core), the
conversion kernels are also timed alone, per variant.

Run with /usr/bin/python3 (numpy).  Writes markdown to --out (default stdout)."""
import argparse
import gzip
import http.client
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

NAMES = ("queries", "keys", "values")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def bf16_bits(a):
    u = np.ascontiguousarray(a, "<f4").view("<u4")
    return ((u + np.uint32(0x7fff) + ((u >> 16) & 1)) >> 16).astype("<u2")


def body_for(x, dt, binary, out_dt):
    ins, raws = [], []
    for n in NAMES:
        a = x[n]
        e = {"name": n, "datatype": dt, "shape": list(a.shape)}
        if binary:
            raw = a.astype("<f2").tobytes() if dt == "FP16" else bf16_bits(a).tobytes() if dt == "BF16" else a.tobytes()
            e["parameters"] = {"binary_data_size": len(raw)}
            raws.append(raw)
        else:
            v = a.astype(np.float16) if dt == "FP16" else a
            e["data"] = v.astype(np.float64).ravel().tolist()
        ins.append(e)
    out = {"name": "output", "parameters": {"binary_data": binary}}
    if out_dt != "FP32":
        out["parameters"]["datatype"] = out_dt
    hdr = json.dumps({"inputs": ins, "outputs": [out]}, separators=(",", ":")).encode()
    if binary:
        return hdr + b"".join(raws), {"Inference-Header-Content-Length": str(len(hdr)),
                                      "Content-Type": "application/octet-stream"}
    return hdr, {"Content-Type": "application/json"}


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    out = {}
    for k in ("input", "infer", "output"):
        m = re.search(r'attnd_inference_compute_%s_duration_us\{model="full",version="1",protocol="http"\} (\d+)' % k, text)
        out[k] = int(m.group(1)) if m else 0
    m = re.search(r'attnd_inference_exec_count\{model="full",version="1",protocol="http"\} (\d+)', text)
    out["n"] = int(m.group(1)) if m else 0
    return out


def run_variant(port, body, headers, reps):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    times, resp_len, status = [], 0, 0
    m0 = metrics(port)
    for i in range(reps + 1):
        t = time.perf_counter()
        c.request("POST", "/v2/models/full/infer", body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        dt = time.perf_counter() - t
        status = r.status
        if status != 200:
            raise SystemExit("status %d: %r" % (status, data[:300]))
        if i:  # the first is a warm-up
            times.append(dt)
        resp_len = len(data)
        enc = r.getheader("Content-Encoding")
    c.close()
    m1 = metrics(port)
    n = max(1, m1["n"] - m0["n"])
    split = {k: (m1[k] - m0[k]) / n / 1000 for k in ("input", "infer", "output")}
    return statistics.median(times) * 1000, resp_len, enc, split


def variants(x, binary):
    out = []
    for dt in ("FP32", "FP16", "BF16"):
        out.append((dt, dt, None, None))
    for z in ("gzip", "deflate"):
        out.append(("FP32", "FP32", z, z))
        out.append(("FP16", "FP16", z, z))
    return out


def table(title, port, x, binary, reps):
    rows = []
    for in_dt, out_dt, req_z, resp_z in variants(x, binary):
        body, headers = body_for(x, in_dt, binary, out_dt)
        raw_len = len(body)
        if req_z:
            t0 = time.perf_counter()
            body = gzip.compress(body, 1) if req_z == "gzip" else zlib.compress(body, 1)
            ctime = (time.perf_counter() - t0) * 1000
            headers = dict(headers, **{"Content-Encoding": req_z})
        else:
            ctime = 0.0
        if resp_z:
            headers = dict(headers, **{"Accept-Encoding": resp_z})
        ms, resp_len, enc, split = run_variant(port, body, headers, reps)
        rows.append((in_dt, out_dt, req_z or "-", enc or "-", len(body), raw_len, resp_len, ms, ctime, split))
    base_bytes = rows[0][4] + rows[0][6]
    lines = ["### " + title, "",
             "| inputs | output | request coding | reply coding | request bytes | reply bytes | total vs FP32 |"
             " round trip ms (median) | server decode ms | server model ms | server encode ms | client compress ms |"
             " transfer at 100 Mbit/s ms | at 1 Gbit/s ms |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for in_dt, out_dt, rq, rs, blen, raw_len, resp_len, ms, ctime, sp in rows:
        tot = blen + resp_len
        lines.append("| %s | %s | %s | %s | %d | %d | %.0f%% | %.2f | %.3f | %.2f | %.3f | %.2f | %.1f | %.2f |" % (
            in_dt, out_dt, rq, rs, blen, resp_len, 100.0 * tot / base_bytes, ms, sp["input"], sp["infer"],
            sp["output"], ctime, tot * 8 / 100e6 * 1000, tot * 8 / 1e9 * 1000))
    return lines, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--out")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--large", default="1,2048,8,64", help="N,L,H,E of the large binary request")
    ap.add_argument("--small", default="1,8,2,16", help="N,L,H,E of the small JSON request")
    args = ap.parse_args()
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="attnd-wire-", suffix=".log", delete=False)
    proc = subprocess.Popen([os.path.join(args.build, "attnd"), "--host", "127.0.0.1", "--port", str(port),
                             "--max-body-bytes", "1G", "--max-tensor-elements", "64M"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/v2/health/ready")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/v2")
        info = json.loads(c.getresponse().read())
        rng = np.random.default_rng(0)
        large = tuple(int(v) for v in args.large.split(","))
        small = tuple(int(v) for v in args.small.split(","))
        xl = {n: rng.standard_normal(large).astype(np.float32) for n in NAMES}
        xs = {n: rng.standard_normal(small).astype(np.float32) for n in NAMES}
        cpu = ""
        try:
            cpu = [l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                   if l.startswith("Model name")][0]
        except (OSError, IndexError):
            pass
        out = ["# The wire: FP16 / BF16 and compressed bodies (%s)" % time.strftime("%Y-%m-%d"), "",
               "- date: %s; host: %s; CPU: %s (lscpu), %s cores offered; load average before: %s" % (
                   time.strftime("%Y-%m-%d %H:%M %Z"), platform.node(), cpu, os.cpu_count(),
                   " ".join("%.2f" % v for v in os.getloadavg())),
               "- attnd %s, threads %s, kernel_convert=%s (cpu features: %s)" % (
                   info.get("version"), info["limits"]["threads"], info["parameters"].get("kernel_convert"),
                   info["parameters"].get("cpu_features")),
               "- the built-in `full` model; random normal inputs; %d repetitions after a warm-up, median;"
               " compression level 1 (the server's default, and the clients')" % args.reps, ""]
        lines, rows_l = table("Large binary request: queries, keys, values of shape %s each" % (large,), port, xl, True,
                              args.reps)
        out += lines + [""]
        lines, rows_s = table("Small JSON request: shape %s each" % (small,), port, xs, False, args.reps * 4)
        out += lines + [""]
        f32, f16 = rows_l[0], rows_l[1]
        conv = f16[9]["input"] - f32[9]["input"]
        out += ["Decoding the large FP16 request costs %.3f ms more on the server than the FP32 one (which is read in"
                " place, without a copy): %.2f%% of its round trip (%.1f ms)." % (conv, 100 * conv / f16[7], f16[7]), ""]
        core = os.path.join(args.build, "bench", "bench_core")
        if os.access(core, os.X_OK):
            res = subprocess.run([core, "convert"], capture_output=True, text=True)
            recs = [json.loads(l) for l in res.stdout.splitlines() if l.startswith("{")]
            if recs:
                out += ["### The conversion kernels alone (`bench_core convert`, %d elements, best of 20)" % recs[0]["n"], "",
                        "| variant | FP16 -> FP32 ms | BF16 -> FP32 ms | FP32 -> FP16 ms | FP32 -> BF16 ms |",
                        "|---|---:|---:|---:|---:|"]
                for v in dict.fromkeys(r["variant"] for r in recs):
                    ms = {r["op"]: r["ms"] for r in recs if r["variant"] == v}
                    out.append("| %s | %.2f | %.2f | %.2f | %.2f |" % (v, ms["f16_to_f32"], ms["bf16_to_f32"],
                                                                      ms["f32_to_f16"], ms["f32_to_bf16"]))
                out.append("")
        text = "\n".join(out) + "\n"
        if args.out:
            with open(args.out, "w") as f:
                f.write(text)
        sys.stdout.write(text)
    finally:
        proc.terminate()
        proc.wait(30)
        os.unlink(log.name)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""A steady stream of inference requests through a load balancer, with
replicas killed part-way (deploy/test.sh).  Standard library only.

  stream.py inputs PATH                     write the request's tensors as safetensors
  stream.py run URL --requests N --workers W --expect OUT.safetensors
            [--kill PID:SIGNAL:FRACTION]... [--summary FILE]

`run` sends N binary-tensor-data requests to URL/v2/models/full/infer from W
threads, each on its own keep-alive connection.  When the request numbered
FRACTION*N is about to be sent, PID gets SIGNAL, so that the other workers
have requests in flight.  A request fails unless it answers 200 with an
`output` byte-identical to `output` of OUT.safetensors (made by `attn run`).
Prints a JSON summary; exits 1 when any request failed.
"""
import argparse
import http.client
import json
import os
import random
import signal
import struct
import sys
import threading
import time
import urllib.parse

# (N, L, H, E) queries and keys, (N, S, H, D) values: a few ms of work per request.
N, L, S, H, E, D = 1, 384, 384, 4, 64, 64
SHAPES = {"queries": [N, L, H, E], "keys": [N, S, H, E], "values": [N, S, H, D]}


def tensors():
    rnd = random.Random(20240611)
    out = {}
    for name in sorted(SHAPES):
        count = 1
        for d in SHAPES[name]:
            count *= d
        out[name] = struct.pack("<%df" % count, *(rnd.uniform(-1, 1) for _ in range(count)))
    return out


def write_safetensors(path, named):
    header, data, off = {}, b"", 0
    for name in sorted(named):
        raw = named[name]
        header[name] = {"dtype": "F32", "shape": SHAPES[name], "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def read_safetensors(path, name):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    begin, end = header[name]["data_offsets"]
    return header[name]["shape"], blob[8 + n + begin:8 + n + end]


def request_body(named):
    inputs = [{"name": k, "shape": SHAPES[k], "datatype": "FP32",
               "parameters": {"binary_data_size": len(named[k])}} for k in sorted(named)]
    header = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    return header, header + b"".join(named[k] for k in sorted(named))


def check_response(status, headers, body, want_shape, want):
    if status != 200:
        return "HTTP %d: %s" % (status, body[:200].decode("utf-8", "replace"))
    hlen = headers.get("Inference-Header-Content-Length")
    if hlen is None:
        return "no Inference-Header-Content-Length"
    hlen = int(hlen)
    meta = json.loads(body[:hlen])
    out = [o for o in meta.get("outputs", []) if o.get("name") == "output"]
    if not out or out[0].get("shape") != want_shape:
        return "unexpected outputs: %s" % meta.get("outputs")
    if body[hlen:] != want:
        return "output differs from attn run"
    return None


def run(args):
    url = urllib.parse.urlsplit(args.url)
    named = tensors()
    header, body = request_body(named)
    want_shape, want = read_safetensors(args.expect, "output")
    kills = []
    for k in args.kill:
        pid, sig, frac = k.split(":")
        kills.append((int(float(frac) * args.requests), int(pid), getattr(signal, sig)))
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "failed": 0, "errors": [], "lat": [], "kills": []}
    ok_after_kill = [0]

    def take():
        with lock:
            i = state["next"]
            if i >= args.requests:
                return None
            state["next"] += 1
            for at, pid, sig in kills:
                if at == i:
                    try:
                        os.kill(pid, sig)
                        state["kills"].append({"at": i, "pid": pid, "signal": signal.Signals(sig).name})
                    except ProcessLookupError:
                        state["errors"].append("kill %d: no such process" % pid)
                        state["failed"] += 1
            return i

    def worker():
        conn = None
        while True:
            i = take()
            if i is None:
                break
            t0 = time.monotonic()
            err = None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                conn.request("POST", "/v2/models/full/infer", body=body, headers={
                    "Content-Type": "application/octet-stream",
                    "Inference-Header-Content-Length": str(len(header))})
                resp = conn.getresponse()
                data = resp.read()
                err = check_response(resp.status, resp.headers, data, want_shape, want)
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                err = "%s: %s" % (type(e).__name__, e)
                if conn is not None:
                    conn.close()
                conn = None
            dt = time.monotonic() - t0
            with lock:
                if err:
                    state["failed"] += 1
                    if len(state["errors"]) < 10:
                        state["errors"].append("request %d: %s" % (i, err))
                else:
                    state["ok"] += 1
                    state["lat"].append(dt)
                    if kills and i > max(k[0] for k in kills):
                        ok_after_kill[0] += 1
        if conn is not None:
            conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    lat = sorted(state["lat"])

    def pct(p):
        return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

    summary = {"requests": args.requests, "ok": state["ok"], "failed": state["failed"],
               "ok_after_last_kill": ok_after_kill[0], "kills": state["kills"],
               "errors": state["errors"], "seconds": round(elapsed, 3),
               "requests_per_s": round(args.requests / elapsed, 1) if elapsed else None,
               "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)}}
    text = json.dumps(summary, indent=1)
    print(text)
    if args.summary:
        with open(args.summary, "w") as f:
            f.write(text)
    return 0 if state["failed"] == 0 and state["ok"] == args.requests else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inputs")
    p.add_argument("path")
    p = sub.add_parser("run")
    p.add_argument("url")
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--expect", required=True)
    p.add_argument("--kill", action="append", default=[], metavar="PID:SIGNAL:FRACTION")
    p.add_argument("--summary")
    args = ap.parse_args()
    if args.cmd == "inputs":
        write_safetensors(args.path, tensors())
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

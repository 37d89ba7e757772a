"""Decode throughput over HTTP with sequences (issue 13), binary tensors, one
token per request:

  /usr/bin/python3 bench/server/decode.py --build build [--out FILE.md] [--quick]

For each model (full H=8 E=D=64; causal_linear with the same sizes;
attention_layer d_model=512, 8 heads, over full) and context (512, 2048, 4096):
1 and 16 concurrent sequences each prefill the context in one request, then
decode tokens one request each.  Recorded per case: the median per-token
time, tokens/s over all sequences, the state bytes per sequence (the server's
list), and the floor the issue sets: state bytes read at this run's memory
copy bandwidth plus this run's empty-request round trip (GET
/v2/health/live on a kept-alive connection), and their ratio.  For full at
each context, resending the whole context without a sequence (one causal
forward over context+1 tokens, binary) is timed too.  The memory per sequence
is the growth of attnd's resident set over the 16 sequences, against their
state bytes.  Everything is measured in one run on one machine; compare the
ratios, not the absolute times, across machines.
"""
import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import tempfile
import threading
import time

import numpy as np


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def binary_body(inputs, params):
    header = {"parameters": {**params, "binary_data_output": True}, "inputs": []}
    blobs = []
    for name, a in inputs.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        header["inputs"].append({"name": name, "datatype": "FP32", "shape": list(a.shape),
                                 "parameters": {"binary_data_size": a.nbytes}})
        blobs.append(a.tobytes())
    h = json.dumps(header).encode()
    return h + b"".join(blobs), len(h)


class Conn:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def req(self, method, path, body=None, headers=None):
        self.c.request(method, path, body=body, headers=headers or {})
        r = self.c.getresponse()
        data = r.read()
        return r.status, data

    def infer(self, model, inputs, params, seq=None):
        body, hl = binary_body(inputs, params)
        h = {"Inference-Header-Content-Length": str(hl), "Content-Type": "application/octet-stream"}
        if seq is not None:
            h["Sequence-Id"] = str(seq)
        st, data = self.req("POST", f"/v2/models/{model}/infer", body, h)
        if st != 200:
            raise RuntimeError(f"{model}: {st} {data[:300]!r}")
        return data


class RawConn:
    """The timed client: a kept-alive socket that sends prepared request bytes
    and reads the reply by its Content-Length, without http.client's header
    parsing (tens of microseconds per request in Python, as much as the
    server's own work on a decode step).  Used for the round trip and the
    decode steps alike, so both carry the same client cost."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    @staticmethod
    def prepare(method, path, body=b"", headers=None):
        h = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        for k, v in (headers or {}).items():
            h.append(f"{k}: {v}")
        if body or method in ("POST", "PUT"):
            h.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(h) + "\r\n\r\n").encode() + body

    def send(self, raw):
        """One request (prepared bytes); returns the status."""
        self.s.sendall(raw)
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("attnd closed the connection")
            buf += chunk
        head = buf[:end + 2]  # every header line with its CRLF
        # (not Inference-Header-Content-Length: the name starts a line)
        i = head.lower().find(b"\r\ncontent-length:")
        n = int(head[i + 17:head.find(b"\r\n", i + 2)]) if i >= 0 else 0
        total = end + 4 + n
        while len(buf) < total:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("attnd closed the connection")
            buf += chunk
        self.buf = buf[total:]
        return int(head[9:12])


def st_bytes(tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name], dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def make_repo(d, rng):
    """A repository with attention_layer d_model=512 (random weights)."""
    m = os.path.join(d, "layer512")
    os.makedirs(m)
    cfg = {"type": "attention_layer", "config": {"attention": {"type": "full"}, "d_model": 512, "n_heads": 8}}
    with open(os.path.join(m, "config.json"), "w") as f:
        json.dump(cfg, f)
    w = {}
    for p in ("query", "key", "value", "out"):
        w[f"{p}_projection.weight"] = (rng.standard_normal((512, 512)) / np.sqrt(512)).astype(np.float32)
        w[f"{p}_projection.bias"] = (rng.standard_normal(512) * 0.1).astype(np.float32)
    with open(os.path.join(m, "weights.safetensors"), "wb") as f:
        f.write(st_bytes(w))


MODELS = {
    # name: (model path, shapes per token: {input: trailing dims}, start params)
    "full": ("full", {"queries": (8, 64), "keys": (8, 64), "values": (8, 64)}, {}),
    "causal_linear": ("causal_linear", {"queries": (8, 64), "keys": (8, 64), "values": (8, 64)},
                      {"query_dimensions": 64}),
    "attention_layer": ("layer512", {"queries": (512,), "keys": (512,), "values": (512,)}, {}),
}


def tokens(rng, spec, T):
    return {k: rng.standard_normal((1, T) + dims).astype(np.float32) for k, dims in spec.items()}


def metric(conn, name):
    st, b = conn.req("GET", "/metrics")
    for line in b.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


def memcpy_bandwidth():
    a = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB, past every cache
    b = np.empty_like(a)
    best = 1e9
    for _ in range(7):
        t = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t)
    return a.nbytes / best  # bytes read per second (and as many written)


def round_trip(port, n=2000, conc=1):
    """The empty request's time (RawConn): with one connection the median
    round trip; with conc connections sending at once (threads, as the
    decode cases' clients), the wall time per request over all of them."""
    raw = RawConn.prepare("GET", "/v2/health/live")
    if conc == 1:
        c = RawConn(port)
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            c.send(raw)
            ts.append(time.perf_counter() - t)
        return statistics.median(ts)
    conns = [RawConn(port) for _ in range(conc)]
    per = max(1, n // conc)

    def loop(c):
        for _ in range(per):
            c.send(raw)
    th = [threading.Thread(target=loop, args=(c,)) for c in conns]
    t0 = time.perf_counter()
    [t.start() for t in th]
    [t.join() for t in th]
    return (time.perf_counter() - t0) / (per * conc)


def run_case(port, name, ctx, conc, steps, seed):
    model, spec, params = MODELS[name]
    rng = np.random.default_rng(seed)
    conns = [Conn(port) for _ in range(conc)]
    rss0 = metric(Conn(port), "process_resident_memory_bytes")
    ids = [f"{name}-{ctx}-{conc}-{i}" for i in range(conc)]
    # prefill, one sequence per connection, in parallel
    errs = []

    def prefill(i):
        try:
            conns[i].infer(model, tokens(rng_i[i], spec, ctx), {"sequence_id": ids[i], "sequence_start": True, **params})
        except Exception as e:  # noqa: BLE001
            errs.append(e)
    rng_i = [np.random.default_rng(seed * 100 + i) for i in range(conc)]
    th = [threading.Thread(target=prefill, args=(i,)) for i in range(conc)]
    t0 = time.perf_counter()
    [t.start() for t in th]
    [t.join() for t in th]
    prefill_s = time.perf_counter() - t0
    if errs:
        raise errs[0]
    mon = Conn(port)
    st, b = mon.req("GET", f"/v2/models/{model}/sequences")
    state = [s["bytes"] for s in json.loads(b)["sequences"] if s["id"] in ids]
    toks = [tokens(rng, spec, 1) for _ in range(8)]
    lat = [[] for _ in range(conc)]
    # The requests are built before the clock starts (Python's JSON and byte
    # handling is the client's cost, not the server's); replies are read, not parsed.
    bodies = []
    for i in range(conc):
        row = []
        for tk in toks:
            body, hl = binary_body(tk, {"sequence_id": ids[i]})
            row.append(RawConn.prepare("POST", f"/v2/models/{model}/infer", body, {
                "Inference-Header-Content-Length": str(hl), "Content-Type": "application/octet-stream",
                "Sequence-Id": ids[i]}))
        bodies.append(row)
    raws = [RawConn(port) for _ in range(conc)]
    lab = f'{{model="{model}",version="1",protocol="http"}}'
    srv0 = (metric(mon, "attnd_inference_request_duration_us" + lab), metric(mon, "attnd_inference_exec_count" + lab))

    get = RawConn.prepare("GET", "/v2/health/live")
    paired = []  # one sequence: an empty request after every step, on the same connection

    def decode(i):
        try:
            for k in range(steps):
                raw = bodies[i][k % 8]
                t = time.perf_counter()
                st = raws[i].send(raw)
                lat[i].append(time.perf_counter() - t)
                if st != 200:
                    raise RuntimeError(f"{name} step: {st}")
                if conc == 1:
                    t = time.perf_counter()
                    raws[i].send(get)
                    paired.append(time.perf_counter() - t)
        except Exception as e:  # noqa: BLE001
            errs.append(e)
    th = [threading.Thread(target=decode, args=(i,)) for i in range(conc)]
    t0 = time.perf_counter()
    [t.start() for t in th]
    [t.join() for t in th]
    wall = time.perf_counter() - t0
    if errs:
        raise errs[0]
    rss = metric(mon, "process_resident_memory_bytes")
    srv1 = (metric(mon, "attnd_inference_request_duration_us" + lab), metric(mon, "attnd_inference_exec_count" + lab))
    # the server's own time per step (decode to reply, attnd's counters): no client, no wake-ups
    server_us = (srv1[0] - srv0[0]) / max(1.0, srv1[1] - srv0[1])
    for i in range(conc):
        st, _ = mon.req("DELETE", f"/v2/models/{model}/sequences/{ids[i]}")
    latency = statistics.median([x for l in lat for x in l])
    # one sequence: its latency; several: the time per token they share
    per_token = latency if conc == 1 else wall / (conc * steps)
    return {"model": name, "context": ctx, "concurrency": conc, "steps": steps, "prefill_s": prefill_s,
            "per_token_s": per_token, "latency_s": latency, "tokens_per_s": conc * steps / wall, "state_bytes": statistics.median(state),
            "rss_growth_per_seq": (rss - rss0) / conc,
            "paired_rtt_s": statistics.median(paired) if paired else None, "server_us": server_us}


def memory_per_sequence(port, n=200, ctx=64):
    """attnd's resident set over n live full sequences (run first, on a fresh
    server), per sequence, against the state bytes the server counts."""
    model, spec, params = MODELS["full"]
    rng = np.random.default_rng(3)
    c = Conn(port)
    x = tokens(rng, spec, ctx)
    c.infer(model, x, {"sequence_id": "warm", "sequence_start": True, "sequence_end": True, **params})
    rss0 = metric(c, "process_resident_memory_bytes")
    for i in range(n):
        c.infer(model, x, {"sequence_id": f"mem-{i}", "sequence_start": True, **params})
    rss1 = metric(c, "process_resident_memory_bytes")
    st, b = c.req("GET", f"/v2/models/{model}/sequences")
    state = [s["bytes"] for s in json.loads(b)["sequences"] if s["id"].startswith("mem-")]
    for i in range(n):
        c.req("DELETE", f"/v2/models/{model}/sequences/mem-{i}")
    return {"n": n, "rss_per_seq": (rss1 - rss0) / n, "state_per_seq": statistics.median(state)}


def resend(port, name, ctx, seed, reps):
    """One causal forward over ctx+1 tokens without a sequence (what a client
    without sequences sends for each new token)."""
    model, spec, params = MODELS[name]
    rng = np.random.default_rng(seed)
    x = tokens(rng, spec, ctx + 1)
    c = Conn(port)
    body_params = dict(params)
    # full: the causal mask as a BOOL input is large (L x L); use the binary framing for it too
    mask = np.tril(np.ones((ctx + 1, ctx + 1), dtype=np.bool_))
    header = {"parameters": {**body_params, "binary_data_output": True}, "inputs": []}
    blobs = []
    for k, a in x.items():
        header["inputs"].append({"name": k, "datatype": "FP32", "shape": list(a.shape), "parameters": {"binary_data_size": a.nbytes}})
        blobs.append(a.tobytes())
    header["inputs"].append({"name": "attn_mask", "datatype": "BOOL", "shape": list(mask.shape),
                             "parameters": {"binary_data_size": mask.nbytes}})
    blobs.append(mask.tobytes())
    h = json.dumps(header).encode()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        st, b = c.req("POST", f"/v2/models/{model}/infer", h + b"".join(blobs),
                      {"Inference-Header-Content-Length": str(len(h)), "Content-Type": "application/octet-stream"})
        if st != 200:
            raise RuntimeError(f"resend {st} {b[:200]!r}")
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default=None)
    ap.add_argument("--quick", action="store_true", help="contexts 512 and 2048, fewer steps")
    ap.add_argument("--inline-max-us", default=None, help="passed to attnd (default: attnd's own)")
    a = ap.parse_args()
    contexts = [512, 2048] if a.quick else [512, 2048, 4096]
    steps = 32 if a.quick else 64
    work = tempfile.mkdtemp(prefix="attnd-decode-")
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(work, "repo"))
    make_repo(os.path.join(work, "repo"), rng)
    port = free_port()
    log = open(os.path.join(work, "attnd.log"), "w")
    proc = subprocess.Popen([os.path.join(a.build, "attnd"), "--port", str(port), "--model-repository",
                             os.path.join(work, "repo"), "--max-body-bytes", "1G", "--max-tensor-elements", "1G",
                             "--max-dim", "1M", "--sequence-memory", "16G", "--max-queue", "256",
                             "--max-sequence-tokens", "1M", "--drain-timeout", "1"] +
                            (["--inline-max-us", a.inline_max_us] if a.inline_max_us is not None else []),
                            stdout=log, stderr=log)
    try:
        for _ in range(300):
            try:
                if Conn(port).req("GET", "/v2/health/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        kernels = json.loads(Conn(port).req("GET", "/v2")[1])["parameters"]
        mem = memory_per_sequence(port)  # first: later cases' freed buffers would be reused
        bw = memcpy_bandwidth()
        rtt = round_trip(port)
        rows = []
        for name in MODELS:
            for ctx in contexts:
                for conc in (1, 16):
                    # the round trip beside each case, so that the floor follows the machine's load
                    # (with 16 sequences: 16 connections' empty requests, sent at once by as many threads)
                    rtt_a = round_trip(port, 320, conc)
                    # one sequence: 4x the steps (its median is of one connection's latencies)
                    r = run_case(port, name, ctx, conc, steps * 4 if conc == 1 else steps, seed=ctx + conc)
                    r["rtt_s"] = (rtt_a + round_trip(port, 320, conc)) / 2
                    if r["paired_rtt_s"] is not None:
                        # one sequence: the empty requests interleaved with its steps on its own
                        # connection, so that both see the same placement of client and server
                        # threads (on this VM a wake-up across cores costs ~60 µs, on one core ~0)
                        r["rtt_s"] = r["paired_rtt_s"]
                    r["floor_s"] = r["state_bytes"] / bw + r["rtt_s"]
                    r["ratio"] = r["per_token_s"] / r["floor_s"]
                    rows.append(r)
                    print(json.dumps(r), flush=True)
        resends = {ctx: resend(port, "full", ctx, 1, 3) for ctx in contexts}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = [f"# Decode over HTTP with sequences ({date})", "",
           f"CPU: {cpu_model()}, {os.cpu_count()} cores; kernels: " +
           ", ".join(f"{k}={v}" for k, v in kernels.items() if k.startswith("kernel")), "",
           f"Memory copy bandwidth (numpy, 64 MiB): {bw / 1e9:.2f} GB/s read. Empty-request round trip "
           f"(GET /v2/health/live, kept-alive, the raw client): {rtt * 1e6:.0f} µs at the start; each case's floor "
           f"uses its own, measured beside it (below), so that it follows the load. Load average at the end: "
           f"{os.getloadavg()[0]:.2f}. Client and server share the machine's cores.", "",
           "Requests are built before timing, and the timed requests (the decode steps and the round trip) go through "
           "a raw kept-alive socket that reads each reply by its Content-Length, without http.client's header parsing "
           "(the client's Python costs are not the server's). Per-token time: for one sequence the median latency of a single-token request (binary tensors); for 16 "
           "concurrent sequences the wall time per token over all of them (1 / tokens/s), with each request's median "
           "latency beside it; floor = state bytes of one sequence / copy bandwidth + round trip, where the round trip is "
           "measured at the case's concurrency: for one sequence the median of an empty request sent after every step on "
           "the same connection (the two then see the same placement of client and server threads), for 16 "
           "connections sending empty requests at once from 16 threads the wall time per request; ratio = per-token / "
           "floor (target <= 1.5). RSS growth / seq: attnd's resident set while the sequences are live, minus before "
           "they started, per sequence (includes the allocator's retained request buffers).", "",
           "| model | context | sequences | state / seq | RSS growth / seq | per-token | latency | tokens/s | round trip | floor | ratio | server / step | prefill |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['model']} | {r['context']} | {r['concurrency']} | {r['state_bytes'] / 2**20:.2f} MiB | "
                   f"{r['rss_growth_per_seq'] / 2**20:.2f} MiB | "
                   f"{r['per_token_s'] * 1e3:.3f} ms | {r['latency_s'] * 1e3:.3f} ms | {r['tokens_per_s']:.0f} | {r['rtt_s'] * 1e6:.0f} µs | {r['floor_s'] * 1e3:.3f} ms | "
                   f"{r['ratio']:.2f} | {r['server_us']:.0f} µs | {r['prefill_s']:.2f} s |")
    out += ["", "Resending the whole context without a sequence (full, one causal forward over context+1 tokens, "
            "binary, median of 3), against the sequence's per-token time (1 sequence):", "",
            "| context | resend | sequence per-token | speed-up (target >= 50 at 4096) |", "|---|---|---|---|"]
    for ctx, t in resends.items():
        seq = next(r for r in rows if r["model"] == "full" and r["context"] == ctx and r["concurrency"] == 1)
        out.append(f"| {ctx} | {t * 1e3:.1f} ms | {seq['per_token_s'] * 1e3:.3f} ms | {t / seq['per_token_s']:.0f}x |")
    out += ["", f"Memory per sequence: {mem['n']} live full sequences (64 tokens, H=8, E=D=64; run first, on the fresh server) grow attnd's "
            f"resident set by {mem['rss_per_seq'] / 1024:.1f} KiB each; the server counts {mem['state_per_seq'] / 1024:.1f} KiB "
            f"of state each: a constant of {(mem['rss_per_seq'] - mem['state_per_seq']) / 1024:.1f} KiB per sequence "
            "(the store's entry, the allocator's rounding)."]
    cl = {r["context"]: r["per_token_s"] for r in rows if r["model"] == "causal_linear" and r["concurrency"] == 1}
    cs = {r["context"]: r["server_us"] for r in rows if r["model"] == "causal_linear" and r["concurrency"] == 1}
    out += ["", "causal_linear per-token time by context (1 sequence): " +
            ", ".join(f"{c}: {t * 1e3:.3f} ms" for c, t in cl.items()) +
            f" (largest / smallest: {max(cl.values()) / min(cl.values()):.2f}); the server's own time per step "
            "(attnd_inference_request_duration_us over attnd_inference_exec_count during the case): " +
            ", ".join(f"{c}: {t:.0f} µs" for c, t in cs.items()) +
            f" (largest / smallest: {max(cs.values()) / max(1e-9, min(cs.values())):.2f})"]
    text = "\n".join(out) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()

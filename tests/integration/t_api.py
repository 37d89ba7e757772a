"""Endpoints: health, metadata, built-in parameters, bad input, limits,
auth, metrics, logs and flags."""
import json
import os
import select
import socket
import subprocess
import time

import numpy as np

from harness import CTX, Server, check, expect_error, json_request, same_bits, test

SERVER = {}


def _srv():
    return SERVER["golden"]


def _case(cid):
    for c in CTX.golden_cases:
        if c.id == cid:
            return c
    raise AssertionError(f"golden case {cid} missing")


def _qkv(shape=(1, 3, 2, 4), seed=0):
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(shape).astype(np.float32) for n in ("queries", "keys", "values")}


def _infer_raw(s, model, body, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return s.request("POST", f"/v2/models/{model}/infer", body=body, headers=h)


# ---- health and metadata ---------------------------------------------------------


@test
def health_live_ready():
    s = _srv()
    for p in ("/v2/health/live", "/v2/health/ready"):
        st, h, b = s.request("GET", p)
        check(st == 200, f"{p}: {st}")


@test
def server_metadata():
    st, m = _srv().get_json("/v2")
    check(st == 200 and m["name"] == "attnd" and m["version"], f"/v2: {m}")
    for ext in ("binary_tensor_data", "model_repository", "parameters"):
        check(ext in m["extensions"], f"extension {ext} not advertised")
    for k in ("max_body_bytes", "max_tensor_elements", "max_rank", "max_queue", "request_timeout_s"):
        check(k in m["limits"], f"limit {k} not reported")
    p = m.get("parameters", {})
    for k in ("cpu", "cpu_features", "kernel_full", "kernel_softmax", "kernel_gemm"):
        check(isinstance(p.get(k), str) and p[k], f"parameter {k} not reported: {p}")
    check(p["kernel_full"] in p["kernel_variants"].split(), f"chosen variant not runnable: {p}")


@test
def model_metadata():
    c = _case("attention_layer_full")
    s = _srv()
    st, m = s.get_json(f"/v2/models/{c.id}")
    check(st == 200, f"metadata {st}")
    check(m["name"] == c.id and m["versions"] == ["1"] and m["platform"] == "attnd", str(m)[:300])
    check(m["type"] == "attention_layer" and m["config"]["d_model"] == 16, "type and config reported")
    names = [i["name"] for i in m["inputs"]]
    check(names[:3] == ["queries", "keys", "values"], f"inputs {names}")
    q = m["inputs"][0]
    check(q["datatype"] == "FP32" and q["shape"][0] == -1 and q["shape"][-1] == 16,
          f"queries spec {q}: free dims -1, d_model fixed")
    check(m["outputs"][0]["name"] == "output", "output named 'output'")
    st2, m2 = s.get_json(f"/v2/models/{c.id}/versions/1")
    check(st2 == 200 and m2 == m, "versions/1 is the same model")
    expect_error(s.request("GET", f"/v2/models/{c.id}/versions/2"), 404, "version 2")
    st, h, b = s.request("GET", f"/v2/models/{c.id}/ready")
    check(st == 200, "model ready")
    st, h, b = s.request("GET", "/v2/models/no_such_model/ready")
    check(st == 400, f"unknown model ready: {st}")
    expect_error(s.request("GET", "/v2/models/no_such_model"), 404, "unknown model metadata")
    st, cfg = s.get_json(f"/v2/models/{c.id}/config")
    check(st == 200 and cfg["type"] == "attention_layer", f"config endpoint {cfg}")


@test
def builtin_metadata():
    st, m = _srv().get_json("/v2/models/full")
    check(st == 200 and m["builtin"] is True, f"full: {m}")
    keys = [p["name"] for p in m["parameters"]]
    check("softmax_temp" in keys, f"full's parameters: {keys}")


@test
def routing_errors():
    s = _srv()
    r = s.request("GET", "/v2/models/full/infer")
    expect_error(r, 405, "GET infer")
    check(r[1].get("allow") == "POST", f"405 on infer names POST in Allow: {r[1].get('allow')!r}")
    r = s.request("POST", "/v2/health/live")
    expect_error(r, 405, "POST live")
    check(r[1].get("allow") == "GET, HEAD", f"405 on live names GET, HEAD in Allow: {r[1].get('allow')!r}")
    expect_error(s.request("GET", "/v3/nothing"), 404, "unknown path")
    expect_error(s.request("GET", "/v2/models/bad%20name"), 404, "invalid name")


# ---- built-in models and parameters ------------------------------------------------


@test
def builtin_parameters():
    s = _srv()
    inp = _qkv()
    st, h, a = s.infer("full", inp)
    check(st == 200, f"full {st}")
    st, h, b = s.infer("full", inp, params={"softmax_temp": 0.25})
    check(st == 200, f"full with softmax_temp {st}")
    check(not same_bits(a["output"], b["output"]), "softmax_temp changed nothing")
    st, h, c = s.infer("full", inp, params={"softmax_temp": 0.25, "binary_data_output": False})
    check(st == 200 and same_bits(b["output"], c["output"]), "reserved parameters are not config")
    expect_error(s.infer("full", inp, params={"no_such_key": 1}), 400, "unknown config key")
    expect_error(s.infer("full", inp, params={"softmax_temp": "hot"}), 400, "bad config value")
    expect_error(s.infer("full", inp, params={"config": "{not json"}), 400, "bad parameters.config")
    fixed = _case("full_causal")
    expect_error(s.infer(fixed.id, fixed.inputs, params={"softmax_temp": 0.5}), 400,
                 "parameters for a repository model")


# ---- bad input -----------------------------------------------------------------------


def _bad(resp, status, what):
    expect_error(resp, status, what)
    check(_srv().alive(), f"server died after: {what}")


@test
def bad_json():
    s = _srv()
    _bad(_infer_raw(s, "full", b'{"inputs": ['), 400, "truncated JSON")
    _bad(_infer_raw(s, "full", b'[1, 2]'), 400, "not an object")
    _bad(_infer_raw(s, "full", b'{"inputs": [], }'), 400, "trailing comma")
    _bad(_infer_raw(s, "full", b'\xff\xfe{}'), 400, "garbage bytes")
    _bad(_infer_raw(s, "full", b'{"inputs": [{"name":"queries","data":[1,2,]}]}'), 400, "bad data array")
    deep = b'{"parameters": {"a": ' + b"[" * 200 + b"]" * 200 + b'}, "inputs": []}'
    _bad(_infer_raw(s, "full", deep), 400, "nesting depth")
    _bad(_infer_raw(s, "full", b'{"id": 5, "inputs": []}'), 400, "id not a string")
    _bad(_infer_raw(s, "full", b'{"inputs": [{"name": "queries"}], "inputs": []}'), 400, "duplicate key")


def _req(inputs):
    return json.dumps({"inputs": inputs}).encode()


@test
def bad_tensors():
    s = _srv()
    good = [{"name": n, "shape": [1, 2, 1, 2], "datatype": "FP32", "data": [1, 0, 0, 1]}
            for n in ("queries", "keys", "values")]
    st, h, b = _infer_raw(s, "full", _req(good))
    check(st == 200, f"baseline request: {st} {b[:200]!r}")

    def variant(i, **kw):
        v = [dict(x) for x in good]
        v[i].update(kw)
        return _req(v)

    _bad(_infer_raw(s, "full", variant(0, datatype="INT32")), 400, "wrong datatype")
    _bad(_infer_raw(s, "full", variant(0, datatype="FP64")), 400, "unsupported datatype")
    _bad(_infer_raw(s, "full", variant(0, data=[1, 0, 0])), 400, "fewer elements than the shape")
    _bad(_infer_raw(s, "full", variant(0, data=[1, 0, 0, 1, 5])), 400, "more elements than the shape")
    _bad(_infer_raw(s, "full", variant(0, data=[[1, 0, 0], [1]])), 400, "nesting against the shape")
    _bad(_infer_raw(s, "full", variant(0, data=[1, "x", 0, 1])), 400, "a string element")
    _bad(_infer_raw(s, "full", variant(0, data=[1, True, 0, 1])), 400, "a boolean in FP32")
    _bad(_infer_raw(s, "full", variant(0, data=[1, 1e39, 0, 1])), 400, "beyond float32")
    _bad(_infer_raw(s, "full", variant(0, shape=[1, 2, 1])), 400, "wrong rank")
    _bad(_infer_raw(s, "full", variant(0, shape=[1, -2, 1, 2])), 400, "negative dim")
    _bad(_infer_raw(s, "full", variant(0, shape=[10**12, 10**12, 1, 1])), 400, "huge dims")
    _bad(_infer_raw(s, "full", variant(0, shape=[1 << 20, 1 << 20, 1, 1])), 400, "huge element count")
    _bad(_infer_raw(s, "full", variant(0, shape=[1] * 9, data=[1])), 400, "rank over the limit")
    _bad(_infer_raw(s, "full", variant(0, shape=[1024, 1024, 1, 4])), 400, "shape without the data")
    _bad(_infer_raw(s, "full", variant(0, name="q")), 400, "unknown input name")
    _bad(_infer_raw(s, "full", _req(good[:2])), 400, "missing input")
    _bad(_infer_raw(s, "full", _req(good + [good[0]])), 400, "input given twice")
    _bad(_infer_raw(s, "no_such_model", _req(good)), 404, "unknown model")
    bad_out = json.dumps({"inputs": good, "outputs": [{"name": "attention_weights"}]}).encode()
    _bad(_infer_raw(s, "full", bad_out), 400, "unknown output")
    # keys L=2, queries S=3: the mechanism's own shape check, a 400 too
    _bad(_infer_raw(s, "full", variant(0, shape=[1, 2, 1, 3], data=[1, 0, 0, 1, 0, 0])), 400,
         "mismatched dims")


@test
def nonfinite_inputs():
    s = _srv()
    body = (b'{"inputs":[{"name":"queries","shape":[1,2,1,2],"datatype":"FP32","data":[1,NaN,0,1]},'
            b'{"name":"keys","shape":[1,2,1,2],"datatype":"FP32","data":[1,0,0,1]},'
            b'{"name":"values","shape":[1,2,1,2],"datatype":"FP32","data":[1,0,0,1]}]}')
    _bad(_infer_raw(s, "full", body), 400, "NaN in JSON")
    _bad(_infer_raw(s, "full", body.replace(b"NaN", b"-Infinity")), 400, "-Infinity in JSON")
    inp = _qkv()
    inp["keys"][0, 0, 0, 0] = np.inf
    _bad(s.infer("full", inp, binary=True), 400, "Infinity in binary")


@test
def bad_binary():
    s = _srv()
    inp = _qkv()
    from harness import binary_request
    body, hl = binary_request(inp)

    def post(b, h):
        return s.request("POST", "/v2/models/full/infer", body=b,
                         headers={"Inference-Header-Content-Length": h})

    st, h, b = post(body, str(hl))
    check(st == 200, f"baseline binary: {st}")
    _bad(post(body[:-4], str(hl)), 400, "body shorter than binary_data_size")
    _bad(post(body + b"\0" * 4, str(hl)), 400, "body longer than binary_data_size")
    _bad(post(body, str(len(body) + 10)), 400, "header length past the body")
    _bad(post(body, "12abc"), 400, "header length not a number")
    _bad(post(body, str(hl - 3)), 400, "header length cutting the JSON")
    hdr = json.loads(body[:hl])
    hdr["inputs"][0]["parameters"]["binary_data_size"] = 12
    h2 = json.dumps(hdr).encode()
    _bad(post(h2 + body[hl:], str(len(h2))), 400, "binary_data_size against the shape")
    _bad(_infer_raw(s, "full", h2), 400, "binary_data_size without the header")


@test
def binary_in_place_and_copied():
    """Binary inputs are read in place when aligned, copied when not (a BOOL
    mask of odd size before them, a chunked body): the same answer as JSON."""
    s = _srv()
    from harness import binary_request, parse_response
    rng = np.random.default_rng(3)
    inp = {"attn_mask": rng.random((3, 5)) > 0.3}
    inp["attn_mask"][:, 0] = True
    inp.update(_qkv((2, 3, 2, 16), seed=4))
    inp["keys"] = rng.standard_normal((2, 5, 2, 16)).astype(np.float32)
    inp["values"] = rng.standard_normal((2, 5, 2, 16)).astype(np.float32)
    st, _, want = s.infer("full", inp)
    check(st == 200, f"json: {st} {want}")
    st, _, got = s.infer("full", inp, binary=True)  # 15 mask bytes first: floats copied
    check(st == 200, f"binary with mask first: {st} {got}")
    check(np.array_equal(got["output"], want["output"]), "binary (copied) differs from JSON")
    plain = {k: inp[k] for k in ("queries", "keys", "values")}
    st, _, want2 = s.infer("full", plain)
    st, _, got2 = s.infer("full", plain, binary=True)  # aligned: read in place
    check(st == 200 and np.array_equal(got2["output"], want2["output"]), "binary (in place) differs from JSON")
    # chunked: no Content-Length, the body grows as it arrives
    body, hl = binary_request(plain)
    chunks = [body[i:i + 100] for i in range(0, len(body), 100)]
    head = (f"POST /v2/models/full/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            f"Inference-Header-Content-Length: {hl}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    data = b"".join(b"%x\r\n" % len(c) + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
    sk = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    try:
        sk.sendall(head + data)
        resp = b""
        while True:  # Connection: close: read to the end
            part = sk.recv(65536)
            if not part:
                break
            resp += part
    finally:
        sk.close()
    hdr_end = resp.index(b"\r\n\r\n")
    check(resp.startswith(b"HTTP/1.1 200"), f"chunked binary: {resp[:200]!r}")
    heads = {l.split(b":", 1)[0].decode().lower(): l.split(b":", 1)[1].strip().decode()
             for l in resp[:hdr_end].split(b"\r\n")[1:] if b":" in l}
    rb = resp[hdr_end + 4:]
    if heads.get("transfer-encoding") == "chunked":
        out, rest = b"", rb
        while True:
            n_end = rest.index(b"\r\n")
            n = int(rest[:n_end], 16)
            if n == 0:
                break
            out += rest[n_end + 2:n_end + 2 + n]
            rest = rest[n_end + 4 + n:]
        rb = out
    got3, _ = parse_response(heads, rb)
    check(np.array_equal(got3["output"], want2["output"]), "chunked binary differs from JSON")


# ---- limits ----------------------------------------------------------------------------


def _raw_exchange(port, head, chunks=(), read_timeout=10):
    """Sends `head` then `chunks` on a raw socket and returns what comes back."""
    sk = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    try:
        sk.sendall(head)
        data = b""
        for c in chunks:
            # the answer may come before the body is all sent: read it as it comes
            if select.select([sk], [], [], 0.01)[0]:
                break
            try:
                sk.sendall(c)
            except OSError:
                break
        while True:
            try:
                part = sk.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not part:
                break
            data += part
            if b"\r\n\r\n" in data:
                break
        return data
    finally:
        sk.close()


@test
def body_limits():
    with Server("--max-body-bytes", "64K", "--max-tensor-elements", "1000", tag="limits") as s:
        t0 = time.time()
        head = (b"POST /v2/models/full/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000000\r\n\r\n")
        resp = _raw_exchange(s.port, head)
        check(resp.startswith(b"HTTP/1.1 413"), f"declared oversized body: {resp[:80]!r}")
        check(time.time() - t0 < 5, "413 was not immediate")
        head = (b"POST /v2/models/full/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (8192, b" " * 8192)
        resp = _raw_exchange(s.port, head, [chunk] * 64)
        check(resp.startswith(b"HTTP/1.1 413"), f"chunked oversized body: {resp[:80]!r}")
        big_header = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n"
        resp = _raw_exchange(s.port, big_header)
        check(resp[:10] in (b"HTTP/1.1 4", b"HTTP/1.0 4") or resp == b"", f"huge header: {resp[:80]!r}")
        check(s.alive(), "server died on a huge header")
        inp = _qkv(shape=(1, 300, 1, 4))
        expect_error(s.infer("full", inp, binary=True), 400, "over --max-tensor-elements")
        inp = _qkv(shape=(1, 10, 1, 4))
        st, h, b = s.infer("full", inp)
        check(st == 200, f"small request after the limits: {st}")


# ---- auth ---------------------------------------------------------------------------


@test
def bearer_tokens():
    api = os.path.join(CTX.work, "api.key")
    admin = os.path.join(CTX.work, "admin.key")
    with open(api, "w") as f:
        f.write("api-secret-1\n# comment\nrotated-api-secret\n")
    with open(admin, "w") as f:
        f.write("admin-secret\n")
    with Server("--api-key-file", api, "--admin-key-file", admin, tag="auth") as s:
        inp = _qkv()
        body = json_request(inp)
        for hdr in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic api-secret-1"},
                    {"Authorization": "Bearer api-secret-"}, {"Authorization": "Bearer api-secret-12"}):
            r = _infer_raw(s, "full", body, hdr)
            expect_error(r, 401, f"infer with {hdr}")
            check(r[1].get("www-authenticate", "").startswith("Bearer"), "401 without WWW-Authenticate")
        for tok in ("api-secret-1", "rotated-api-secret", "admin-secret"):
            st, h, b = _infer_raw(s, "full", body, {"Authorization": f"Bearer {tok}"})
            check(st == 200, f"infer with token {tok}: {st}")
        expect_error(s.request("POST", "/v2/repository/index"), 401, "index without a token")
        expect_error(s.request("POST", "/v2/repository/index", headers={"Authorization": "Bearer api-secret-1"}),
                     401, "index with the inference token")
        st, h, b = s.request("POST", "/v2/repository/index", headers={"Authorization": "Bearer admin-secret"})
        check(st == 200, f"index with the admin token: {st}")
        expect_error(s.request("POST", "/v2/repository/models/full/unload"), 401, "unload without a token")
        check(s.request("GET", "/v2/health/ready")[0] == 200, "health needs no token")
        check(s.request("GET", "/metrics")[0] == 200, "metrics need no token")
        expect_error(s.request("GET", "/v2/models/full"), 401, "metadata without a token")


# ---- metrics, logs, flags -------------------------------------------------------------


@test
def metrics_text():
    s = _srv()
    c = _case("full_causal")
    for _ in range(2):
        check(s.infer(c.id, c.inputs)[0] == 200, "infer")
    s.infer(c.id, {"queries": c.inputs["queries"]})  # a 400
    st, h, b = s.request("GET", "/metrics")
    check(st == 200 and h["content-type"].startswith("text/plain"), "metrics content type")
    text = b.decode()
    vals = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            vals[k] = float(v)
    lab = f'model="{c.id}",version="1",protocol="http"'
    check(vals.get(f"attnd_inference_request_success{{{lab}}}", 0) >= 2, "success counter")
    check(vals.get(f'attnd_inference_request_failure{{{lab},reason="INVALID"}}', 0) >= 1, "failure counter")
    check(vals.get(f"attnd_inference_exec_count{{{lab}}}", 0) >= 2, "exec count")
    check(vals.get(f"attnd_inference_compute_infer_duration_us{{{lab}}}", -1) >= 0, "compute duration")
    check(f'attnd_inference_request_duration_seconds_bucket{{{lab},le="+Inf"}}' in vals, "histogram")
    check(vals.get("attnd_ready") == 1, "ready gauge")
    check(any(k.startswith("attnd_http_responses{code=\"400\"}") for k in vals), "http responses by code")
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            check(line.split()[3] in ("counter", "gauge", "histogram"), f"bad TYPE line {line}")


@test
def request_log_json():
    with Server("--log-format", "json", tag="logjson") as s:
        inp = _qkv()
        st, h, b = _infer_raw(s, "full", json_request(inp), {"X-Request-Id": "trace-42.a"})
        check(st == 200 and h.get("x-request-id") == "trace-42.a", "X-Request-Id echoed")
        _infer_raw(s, "full", b"{", {"X-Request-Id": "bad one with spaces"})
        time.sleep(0.2)
        lines = [json.loads(l) for l in s.log().splitlines() if l.startswith("{")]
        reqs = [l for l in lines if l.get("event") == "request"]
        mine = [l for l in reqs if l.get("request_id") == "trace-42.a"]
        check(len(mine) == 1, f"one log line for the request, got {len(mine)}")
        m = mine[0]
        check(m["method"] == "POST" and m["model"] == "full" and m["status"] == 200 and m["us"] >= 0
              and m["bytes_in"] > 0 and m["bytes_out"] > 0, f"log fields {m}")
        bad = [l for l in reqs if l.get("status") == 400]
        check(bad and bad[-1]["request_id"] != "bad one with spaces" and bad[-1].get("error"),
              "invalid request ids are replaced; errors logged")


@test
def request_log_plain():
    s = _srv()
    st, h, b = s.request("GET", "/v2/health/live", headers={"X-Request-Id": "plain-7"})
    time.sleep(0.2)
    lines = [l for l in s.log().splitlines() if "request_id=plain-7" in l]
    check(len(lines) == 1 and "status=200" in lines[0] and "path=/v2/health/live" in lines[0]
          and " us=" in lines[0], f"plain log line: {lines}")


@test
def help_and_flags():
    r = subprocess.run([CTX.attnd, "--help"], capture_output=True, text=True, timeout=20)
    check(r.returncode == 0, "--help exit code")
    for flag in ("--host", "--port", "--model-repository", "--threads", "--max-body-bytes",
                 "--max-tensor-elements", "--max-rank", "--max-queue", "--timeout", "--drain-timeout",
                 "--api-key-file", "--admin-key-file", "--log-format", "ATTND_MAX_QUEUE"):
        check(flag in r.stdout, f"--help does not document {flag}")
    r = subprocess.run([CTX.attnd, "--no-such-flag"], capture_output=True, text=True, timeout=20)
    check(r.returncode == 2, f"unknown flag exit code {r.returncode}")
    r = subprocess.run([CTX.attnd, "--max-queue", "lots"], capture_output=True, text=True, timeout=20)
    check(r.returncode == 2 and "max-queue" in r.stderr, "bad flag value")
    with Server(env={"ATTND_MAX_QUEUE": "3", "ATTND_TIMEOUT": "7.5"}, tag="env") as s:
        st, m = s.get_json("/v2")
        check(m["limits"]["max_queue"] == 3 and m["limits"]["request_timeout_s"] == 7.5,
              f"ATTND_* variables: {m['limits']}")


@test
def json_float_round_trip():
    """Random float32 bit patterns (subnormals and extremes included) through
    the JSON decoder and encoder: a JSON request and a binary request must
    give the same bits, and the JSON response the same bits as the binary
    one.  The model is built-in `full` with one key, whose output is the
    value row times a softmax weight of one."""
    s = _srv()
    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2**32, size=20000, dtype=np.uint64).astype(np.uint32)
    v = bits.view(np.float32).copy()
    v[~np.isfinite(v)] = 1.5
    v[:6] = [np.finfo(np.float32).max, -np.finfo(np.float32).max, np.finfo(np.float32).tiny,
             1e-45, 0.1, 16777217.0]
    inp = {"queries": np.ones((1, 1, 1, 1), np.float32), "keys": np.ones((1, 1, 1, 1), np.float32),
           "values": v.reshape(1, 1, 1, -1)}
    st, h, jb = s.infer("full", inp, binary=False)
    check(st == 200, f"JSON request: {st}")
    st, h, bb = s.infer("full", inp, binary=True)
    check(st == 200, f"binary request: {st}")
    check(same_bits(jb["output"], bb["output"]), "JSON and binary paths disagree")
    out = bb["output"].ravel()
    exact = np.count_nonzero(out.view(np.uint32) == v.view(np.uint32))
    check(exact >= len(v) - 64, f"identity model changed {len(v) - exact} values")

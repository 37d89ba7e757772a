"""The wire: FP16 and BF16 tensors (inputs decoded to float32, outputs asked
for with parameter `datatype`), and compressed request and reply bodies.

Oracles: numpy's float32 -> float16 (nearest even) and torch's float32 ->
bfloat16 (nearest even) conversions; the server's own FP32 path on the same
(rounded) values, which the 16-bit path must equal bit for bit."""
import gzip
import http.client
import json
import zlib

import numpy as np
import torch

from harness import Server, check, json_request, parse_response, same_bits, test

SERVER = {}
NAMES = ("queries", "keys", "values")


def _srv():
    return SERVER["golden"]


def _qkv(shape=(2, 7, 2, 8), seed=3):
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(shape).astype(np.float32) for n in NAMES}


def bf16_bits(a):
    """float32 -> BF16 bits, nearest even (torch)."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16)
    return t.view(torch.int16).numpy().view(np.uint16)


def bf16_value(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def post(s, body, headers=None, model="full"):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return s.request("POST", f"/v2/models/{model}/infer", body=body, headers=h)


def req(inputs, outputs=None, params=None):
    """inputs: {name: (datatype, array or raw bytes, shape)}; raw bytes go binary."""
    ins, blobs = [], []
    for n, (dt, a, shape) in inputs.items():
        if isinstance(a, (bytes, bytearray)):
            ins.append({"name": n, "datatype": dt, "shape": list(shape), "parameters": {"binary_data_size": len(a)}})
            blobs.append(bytes(a))
        else:
            ins.append({"name": n, "datatype": dt, "shape": list(shape),
                        "data": np.asarray(a, dtype=np.float64).ravel().tolist()})
    r = {"inputs": ins}
    if outputs is not None:
        r["outputs"] = outputs
    if params:
        r["parameters"] = params
    hdr = json.dumps(r).encode()
    if not blobs:
        return hdr, {}
    return hdr + b"".join(blobs), {"Inference-Header-Content-Length": str(len(hdr)),
                                   "Content-Type": "application/octet-stream"}


def run(s, inputs, outputs=None, params=None, headers=None):
    body, h = req(inputs, outputs, params)
    h.update(headers or {})
    st, rh, b = post(s, body, h)
    check(st == 200, f"{st}: {b[:300]!r}")
    return rh, b


def output(rh, b):
    """(datatype, float32 values, raw bytes or None) of the one output."""
    hl = rh.get("inference-header-content-length")
    hdr = json.loads(b[:int(hl)] if hl else b)
    o = hdr["outputs"][0]
    if hl is None:
        return o["datatype"], np.array(o["data"], dtype=np.float32).reshape(o["shape"]), None
    raw = b[int(hl):]
    check(len(raw) == o["parameters"]["binary_data_size"], f"binary size {len(raw)} vs {o}")
    if o["datatype"] == "FP16":
        v = np.frombuffer(raw, "<f2").astype(np.float32)
    elif o["datatype"] == "BF16":
        v = bf16_value(np.frombuffer(raw, "<u2"))
    else:
        v = np.frombuffer(raw, "<f4")
    return o["datatype"], v.reshape(o["shape"]), raw


def fp32(s, arrays):
    return output(*run(s, {n: ("FP32", a, a.shape) for n, a in arrays.items()}))[1]


@test
def fp16_inputs_equal_the_fp32_path_on_their_values():
    s = _srv()
    x = _qkv()
    x16 = {n: a.astype(np.float16) for n, a in x.items()}
    want = fp32(s, {n: a.astype(np.float32) for n, a in x16.items()})
    # binary FP16
    dt, got, _ = output(*run(s, {n: ("FP16", a.astype("<f2").tobytes(), a.shape) for n, a in x16.items()}))
    check(dt == "FP32" and same_bits(got, want), "binary FP16 inputs differ from FP32 inputs of the same values")
    # JSON FP16: the unrounded float32 numbers, rounded by the server to nearest even
    dt, got, _ = output(*run(s, {n: ("FP16", a, a.shape) for n, a in x.items()}))
    check(same_bits(got, want), "JSON FP16 numbers are not rounded to nearest even as numpy does")
    # within FP16's rounding of the FP32 result
    ref = fp32(s, x)
    err = float(np.max(np.abs(got - ref)))
    check(err < 8e-3, f"FP16 inputs move the output by {err}")
    check(err > 0, "FP16 inputs gave exactly the FP32 output: the inputs were not rounded")


@test
def bf16_inputs_binary_any_bits_json_nearest_even():
    s = _srv()
    x = _qkv(seed=5)
    # binary: Triton's clients truncate float32 to its top 16 bits; attnd appends two zero bytes
    trunc = {n: (a.view(np.uint32) >> 16).astype("<u2") for n, a in x.items()}
    want = fp32(s, {n: bf16_value(b) for n, b in trunc.items()})
    dt, got, _ = output(*run(s, {n: ("BF16", b.tobytes(), x[n].shape) for n, b in trunc.items()}))
    check(same_bits(got, want), "binary BF16 is not the float32 of its bits")
    # JSON: rounded to nearest even (torch)
    want = fp32(s, {n: bf16_value(bf16_bits(a)).reshape(a.shape) for n, a in x.items()})
    dt, got, _ = output(*run(s, {n: ("BF16", a, a.shape) for n, a in x.items()}))
    check(same_bits(got, want), "JSON BF16 numbers are not rounded to nearest even as torch does")
    err = float(np.max(np.abs(got - fp32(s, x))))
    check(0 < err < 6e-2, f"BF16 inputs move the output by {err}")


@test
def fp16_json_rounding_ties_and_subnormals():
    """Ties go to even, subnormals are kept, and decimal numbers that sit next
    to a float32 midpoint are rounded from the decimal (not twice)."""
    s = _srv()
    vals = np.array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 65504, -65504,
                     2 ** -14, 0.1, -0.0, 1e-30, 65519.99], dtype=np.float64)
    shape = (1, len(vals), 1, 1)
    body = json.dumps({"inputs": [{"name": n, "datatype": "FP16", "shape": list(shape), "data": vals.tolist()}
                                  for n in NAMES], "outputs": [{"name": "output", "parameters": {"datatype": "FP16"}}]})
    # values: the full model with E = D = 1 and one row per position is a weighted
    # mean; check the decode itself with the identity: send them as 'values' only.
    x16 = vals.astype(np.float16)
    check(x16[0] == 1.0 and x16[1] == 1 + 2 ** -9 and x16[3] == 0 and x16[4] == 2 ** -23, "numpy oracle")
    q = np.zeros(shape, np.float32)
    inputs = {"queries": ("FP32", q, shape), "keys": ("FP32", q, shape), "values": ("FP16", vals, shape)}
    # zero queries and keys: uniform attention, every output row is the mean of the values
    mean16 = fp32(s, {"queries": q, "keys": q, "values": x16.astype(np.float32).reshape(shape)})
    dt, got, _ = output(*run(s, inputs))
    check(same_bits(got, mean16), "FP16 JSON values decode differently from numpy's rounding")
    st, h, b = post(s, body.encode())
    check(st == 200, f"{st} {b[:200]!r}")


@test
def outputs_in_fp16_and_bf16():
    s = _srv()
    x = _qkv(seed=9)
    ref = fp32(s, x)
    ins = {n: ("FP32", a, a.shape) for n, a in x.items()}
    for binary in (False, True):
        p = {"binary_data_output": True} if binary else None
        o16 = [{"name": "output", "parameters": {"datatype": "FP16"}}]
        dt, got, raw = output(*run(s, ins, o16, p))
        check(dt == "FP16", f"datatype {dt}")
        check(same_bits(got, ref.astype(np.float16).astype(np.float32)), f"FP16 output (binary={binary}) != numpy")
        if binary:
            check(raw == ref.astype("<f2").tobytes(), "FP16 output bytes")
        ob = [{"name": "output", "parameters": {"datatype": "BF16", "binary_data": binary}}]
        dt, got, raw = output(*run(s, ins, ob))
        check(dt == "BF16", f"datatype {dt}")
        check(same_bits(got, bf16_value(bf16_bits(ref)).reshape(ref.shape)), f"BF16 output (binary={binary}) != torch")
        if binary:
            check(raw == bf16_bits(ref).astype("<u2").tobytes(), "BF16 output bytes")
        dt, got, _ = output(*run(s, ins, [{"name": "output", "parameters": {"datatype": "FP32"}}], p))
        check(dt == "FP32" and same_bits(got, ref), "datatype FP32 is the default output")
    # JSON FP16 numbers read back as the FP16 values, as float32 and through a double
    rh, b = run(s, ins, [{"name": "output", "parameters": {"datatype": "FP16"}}])
    o = json.loads(b)["outputs"][0]
    want16 = ref.astype(np.float16).ravel()
    check(np.array_equal(np.array(o["data"], np.float32), want16.astype(np.float32)), "FP16 JSON numbers as float32")
    check(np.array_equal(np.array(o["data"], np.float64).astype(np.float16).view(np.uint16), want16.view(np.uint16)),
          "FP16 JSON numbers read as doubles do not round to the FP16 values")


@test
def mixed_datatypes_and_odd_offsets():
    """FP16 queries, BF16 keys, FP32 values and a BOOL mask of 9 bytes first
    (so the 2-byte tensors after it start at odd offsets)."""
    s = _srv()
    shape = (1, 3, 2, 4)
    x = _qkv(shape, seed=11)
    mask = np.array([[1, 0, 1], [1, 1, 0], [0, 1, 1]], np.bool_)
    q16, kb = x["queries"].astype(np.float16), bf16_bits(x["keys"]).reshape(shape)
    want = output(*run(s, {"attn_mask": ("BOOL", mask.tobytes(), mask.shape),
                           "queries": ("FP32", q16.astype("<f4").tobytes(), shape),
                           "keys": ("FP32", bf16_value(kb).astype("<f4").tobytes(), shape),
                           "values": ("FP32", x["values"].tobytes(), shape)}))[1]
    got = output(*run(s, {"attn_mask": ("BOOL", mask.tobytes(), mask.shape),
                          "queries": ("FP16", q16.astype("<f2").tobytes(), shape),
                          "keys": ("BF16", kb.astype("<u2").tobytes(), shape),
                          "values": ("FP32", x["values"].tobytes(), shape)}))[1]
    check(same_bits(got, want), "mixed datatypes at odd offsets")


@test
def metadata_lists_the_datatypes():
    st, m = _srv().get_json("/v2/models/full")
    check(st == 200, f"{st}")
    by = {i["name"]: i for i in m["inputs"]}
    check(by["queries"]["datatypes"] == ["FP32", "FP16", "BF16"], f"queries: {by['queries']}")
    check(by["attn_mask"]["datatypes"] == ["BOOL"], f"mask: {by['attn_mask']}")
    check(by["key_lengths"]["datatypes"] == ["INT64", "INT32"], f"lengths: {by['key_lengths']}")
    check(m["outputs"][0]["datatypes"] == ["FP32", "FP16", "BF16"], f"output: {m['outputs']}")


# ---- compression --------------------------------------------------------------------------


def _big():
    return _qkv((1, 64, 2, 16), seed=13)


@test
def compressed_requests_equal_plain_ones():
    s = _srv()
    x = _big()
    body = json_request(x)
    st, h, plain = post(s, body)
    check(st == 200, f"{st}")
    for coding, comp in (("gzip", gzip.compress), ("deflate", zlib.compress),
                         ("deflate", lambda d: zlib.compress(d)[2:-4]),  # raw deflate, as some clients send
                         ("x-gzip", gzip.compress), ("GZIP", lambda d: gzip.compress(d[:100]) + gzip.compress(d[100:]))):
        st, h, b = post(s, comp(body), {"Content-Encoding": coding})
        check(st == 200, f"{coding}: {st} {b[:200]!r}")
        check(b == plain, f"{coding}: the reply differs from the plain request's")
    # binary: Inference-Header-Content-Length counts on the inflated body
    bb, bh = req({n: ("FP32", a.tobytes(), a.shape) for n, a in x.items()}, params={"binary_data_output": True})
    st, h, ref = post(s, bb, bh)
    check(st == 200, f"binary: {st}")
    st, h, b = post(s, gzip.compress(bb), dict(bh, **{"Content-Encoding": "gzip"}))
    check(st == 200 and b == ref, f"gzip binary: {st} {b[:200]!r}")
    # chunked and compressed
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
    gz = gzip.compress(body)
    c.request("POST", "/v2/models/full/infer", body=iter([gz[i:i + 1000] for i in range(0, len(gz), 1000)]),
              headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}, encode_chunked=True)
    r = c.getresponse()
    check(r.status == 200 and r.read() == plain, f"chunked gzip: {r.status}")
    c.close()
    # identity is accepted as such
    st, h, b = post(s, body, {"Content-Encoding": "identity"})
    check(st == 200 and b == plain, f"identity: {st}")


@test
def replies_compressed_when_accepted():
    s = _srv()
    x = _big()
    body = json_request(x)
    st, h, plain = post(s, body)
    check("content-encoding" not in h and h.get("vary", "").lower() == "accept-encoding", f"plain: {h}")
    cases = [("gzip", "gzip"), ("deflate", "deflate"), ("gzip, deflate", "gzip"), ("deflate;q=1, gzip;q=0.5", "deflate"),
             ("gzip;q=0, deflate", "deflate"), ("*", "gzip"), ("*;q=0", None), ("identity", None), ("br", None),
             ("gzip;q=0", None), ("gzip;q=0.000, *;q=0", None), ("x-gzip", "gzip")]
    for accept, want in cases:
        st, h, b = post(s, body, {"Accept-Encoding": accept})
        check(st == 200, f"{accept}: {st}")
        got = h.get("content-encoding")
        check(got == want, f"Accept-Encoding {accept}: Content-Encoding {got}, want {want}")
        check(h.get("vary", "").lower() == "accept-encoding", f"{accept}: no Vary")
        raw = gzip.decompress(b) if got == "gzip" else zlib.decompress(b) if got == "deflate" else b
        check(raw == plain, f"{accept}: the decompressed reply differs")
        if want:
            check(len(b) < len(plain), f"{accept}: compressed {len(b)} >= {len(plain)}")
    # binary reply: the header length counts on the decompressed body
    bb, bh = req({n: ("FP32", a.tobytes(), a.shape) for n, a in x.items()},
                 outputs=[{"name": "output", "parameters": {"datatype": "FP16", "binary_data": True}}])
    st, h, ref = post(s, bb, bh)
    st, h, b = post(s, bb, dict(bh, **{"Accept-Encoding": "gzip"}))
    check(st == 200 and h.get("content-encoding") == "gzip", f"binary reply: {st} {h}")
    raw = gzip.decompress(b)
    check(raw == ref and int(h["inference-header-content-length"]) < len(raw), "binary reply compressed")
    # small replies stay plain (below --compress-min-bytes, 1024 by default)
    st, h, b = s.request("GET", "/v2/health/ready", headers={"Accept-Encoding": "gzip"})
    check("content-encoding" not in h, f"a small reply was compressed: {h}")
    st, m = s.get_json("/v2")
    check(m["limits"]["compress_min_bytes"] == 1024 and m["limits"]["compress_level"] == 1, f"limits: {m['limits']}")
    check(m["limits"]["content_encodings"] == ["gzip", "deflate", "identity"], f"limits: {m['limits']}")


@test
def compress_flags():
    x = _qkv((1, 2, 1, 2))
    body = json_request(x)
    with Server("--compress-min-bytes", "0", "--compress-level", "9", tag="zmin") as s:
        st, h, b = post(s, body, {"Accept-Encoding": "gzip"})
        check(st == 200 and h.get("content-encoding") == "gzip", f"--compress-min-bytes 0: {h}")
        st, m = s.get_json("/v2")
        check(m["limits"]["compress_min_bytes"] == 0 and m["limits"]["compress_level"] == 9, f"{m['limits']}")
    with Server(env={"ATTND_COMPRESS_LEVEL": "0", "ATTND_COMPRESS_MIN_BYTES": "0"}, tag="zoff") as s:
        st, h, b = post(s, json_request(_big()), {"Accept-Encoding": "gzip"})
        check(st == 200 and "content-encoding" not in h, f"--compress-level 0: {h}")
        st, m = s.get_json("/v2")
        check(m["limits"]["compress_level"] == 0, f"{m['limits']}")

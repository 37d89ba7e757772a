"""Writes the seed corpora of the fuzz_server_* targets:
   tests/fuzz/corpus/server_json/    request bodies (every examples/requests file, plus
                                     the shapes of request the integration tests send)
   tests/fuzz/corpus/server_binary/  2-byte header length + binary-extension body
   tests/fuzz/corpus/server_num/     number tokens
   tests/fuzz/corpus/server_zbody/   coding byte + gzip / deflate bodies
`python3 tests/fuzz/seed_server.py` (standard library only) rewrites them."""
import gzip
import hashlib
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "corpus")


def put(kind, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def flat(n, k=0):
    return [round(((i * 7919 + k) % 23) / 23 - 0.5, 6) for i in range(n)]


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def nest(data, shape):
    if len(shape) <= 1:
        return data
    step = numel(shape[1:])
    return [nest(data[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def qkv(shape=(1, 3, 2, 2), **extra):
    ins = [{"name": n, "shape": list(shape), "datatype": "FP32", "data": flat(numel(shape), k)}
           for k, n in enumerate(("queries", "keys", "values"))]
    ins += [dict(name=k, **v) for k, v in extra.items()]
    return ins


def json_seeds():
    reqdir = os.path.join(ROOT, "examples", "requests")
    for name in sorted(os.listdir(reqdir)):
        with open(os.path.join(reqdir, name), "rb") as f:
            put("server_json", f.read())
    q = qkv()
    put("server_json", json.dumps({"inputs": q}))
    put("server_json", json.dumps({"id": "r1", "inputs": [dict(i, data=nest(i["data"], i["shape"])) for i in q]}))
    put("server_json", json.dumps({"inputs": q, "parameters": {"binary_data_output": True, "timeout": 5000}}))
    put("server_json", json.dumps({"inputs": q, "outputs": [{"name": "output", "parameters": {"binary_data": False}}]}))
    put("server_json", json.dumps({"inputs": q, "parameters": {"softmax_temp": 0.25}}))
    put("server_json", json.dumps({"inputs": q, "parameters": {"config": "{\"softmax_temp\": 0.25}"}}))
    put("server_json", json.dumps({"inputs": qkv(attn_mask={"shape": [3, 3], "datatype": "BOOL",
                                                            "data": [True, False, True] * 3},
                                                 key_lengths={"shape": [1], "datatype": "INT64", "data": [2]},
                                                 query_lengths={"shape": [1], "datatype": "INT32", "data": [3]})}))
    put("server_json", '{"inputs":[{"name":"x","shape":[2,2],"datatype":"BOOL","data":[[1,0],[true,false]]}]}')
    put("server_json", '{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[NaN,"Infinity",-Infinity]}]}')
    put("server_json", '{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1e39,-1e-50]}]}')
    put("server_json", '{"inputs":[{"name":"x","shape":[2],"datatype":"INT64","data":[9223372036854775807,-9223372036854775808]}]}')
    put("server_json", '{"inputs":[{"name":"x","shape":[0,4],"datatype":"FP32","data":[]}]}')
    put("server_json", '{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","\\u0064ata":[1.5]}]}')
    put("server_json", '{"\\u0069nputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1.5]}]}')
    put("server_json", '{"inputs":[{"name":"x","shape":[4294967296,4294967296],"datatype":"FP32","data":[1]}]}')
    put("server_json", '{"inputs":[{"name":"x","shape":[1],"datatype":"FP16","data":[1]}]}')
    put("server_json", '{"inputs":[{"name":"x","shape":[4],"datatype":"FP16","data":[65504,65520,5.96e-8,0.1]}]}')
    put("server_json", '{"inputs":[{"name":"x","shape":[3],"datatype":"BF16","data":[1.00390625,3.4e38,-0.0]}],'
                       '"outputs":[{"name":"output","parameters":{"datatype":"BF16"}}]}')
    put("server_json", json.dumps({"inputs": [dict(t, datatype="FP16") for t in q],
                                   "outputs": [{"name": "output", "parameters": {"datatype": "FP16"}}]}))
    put("server_json", '{"parameters":{"config":{"type":"full"}},"inputs":[]}')
    put("server_json", '{"inputs":[{"name":"x","shape":[1,1,1,1,1,1,1,1],"datatype":"FP32","data":[[[[[[[[0.5]]]]]]]]}]}')
    put("server_json", '{"a":' * 40 + '1' + '}' * 40)


def binary_body(inputs, params=None):
    """inputs: [(name, datatype, shape, raw bytes)]"""
    req = {"inputs": [{"name": n, "datatype": dt, "shape": list(sh), "parameters": {"binary_data_size": len(raw)}}
                      for n, dt, sh, raw in inputs]}
    if params:
        req["parameters"] = params
    hdr = json.dumps(req).encode()
    return struct.pack("<H", len(hdr)) + hdr + b"".join(raw for *_, raw in inputs)


def binary_seeds():
    f32 = lambda vals: struct.pack(f"<{len(vals)}f", *vals)  # noqa: E731
    q = [(n, "FP32", (1, 3, 2, 2), f32(flat(12, k))) for k, n in enumerate(("queries", "keys", "values"))]
    put("server_binary", binary_body(q, {"binary_data_output": True}))
    put("server_binary", binary_body(q + [("attn_mask", "BOOL", (3, 3), bytes([1, 0, 1] * 3)),
                                          ("key_lengths", "INT64", (1,), struct.pack("<q", 2)),
                                          ("query_lengths", "INT32", (1,), struct.pack("<i", 3))]))
    put("server_binary", binary_body([("x", "FP32", (2,), struct.pack("<2I", 0x7fc00000, 0x7f800000))]))
    put("server_binary", binary_body([("x", "FP32", (0, 3), b"")]))
    # FP16 and BF16 (every special pattern), after an odd-sized BOOL so they start unaligned
    put("server_binary", binary_body([("m", "BOOL", (3,), bytes([1, 0, 1])),
                                      ("h", "FP16", (6,), struct.pack("<6H", 0x3c00, 0x0001, 0x7bff, 0x7c00, 0x7e01, 0x8000)),
                                      ("b", "BF16", (4,), struct.pack("<4H", 0x3f80, 0x7f81, 0xff80, 0x0001))]))
    # a JSON input next to a binary one
    hdr = json.dumps({"inputs": [{"name": "a", "datatype": "FP32", "shape": [2], "data": [1, 2]},
                                 {"name": "b", "datatype": "INT32", "shape": [2], "parameters": {"binary_data_size": 8}}]}).encode()
    put("server_binary", struct.pack("<H", len(hdr)) + hdr + struct.pack("<2i", 7, -7))
    # a header length that lies (longer than the body)
    put("server_binary", struct.pack("<H", 4000) + hdr)


def zbody_seeds():
    body = json.dumps({"inputs": [{"name": "queries", "shape": [1, 2, 1, 2], "datatype": "FP32",
                                   "data": [1, 0, 0, 1]}]}).encode()
    for coding in (0, 1):
        comp = gzip.compress(body, mtime=0) if coding else zlib.compress(body)
        for piece in (0, 1, 4):
            put("server_zbody", bytes([coding | piece << 1]) + comp)
        put("server_zbody", bytes([coding]) + comp[:len(comp) // 2])
        put("server_zbody", bytes([coding]) + comp + comp)
    put("server_zbody", bytes([0]) + zlib.compress(body)[2:-4])  # raw deflate
    put("server_zbody", bytes([1]) + gzip.compress(b"\0" * (2 << 20), 9, mtime=0))  # past the limit
    put("server_zbody", bytes([1]) + b"gzip;q=0.5, deflate;q=0, *;q=1")


def num_seeds():
    for tok in ("0", "-0", "1", "-1.5", "0.1", "3.4028235e38", "3.4028236e38", "1.17549435e-38",
                "1.4e-45", "7e-46", "1e-50", "123456789012345678901234567890", "0.000000000000000000000000001",
                "9007199254740993", "16777217", "1.00000005960464477539062500001", "2.5e-8", "4.7019774e-38",
                "9223372036854775807", "-9223372036854775808", "9223372036854775808", "1e400", "1E+2", "0.5e-0"):
        put("server_num", tok)


if __name__ == "__main__":
    json_seeds()
    binary_seeds()
    num_seeds()
    zbody_seeds()

"""FP16 and BF16 on the wire, and compressed bodies, against a live attnd
(with numpy and, in the second run, without)."""
import json
import math
import random
import struct

import pytest

import attnd
from attnd.tensors import Tensor

from conftest import NO_NUMPY

SHAPE = [1, 6, 2, 4]


def _rand(seed):
    r = random.Random(seed)
    return [r.uniform(-2, 2) for _ in range(6 * 2 * 4)]


def _nest(flat):
    return Tensor(flat, "FP32", shape=SHAPE).tolist()


def _flat(out):
    if hasattr(out, "ravel"):
        return [float(x) for x in out.ravel().tolist()]
    return list(out.data)


def _f16(v):
    """CPython's struct 'e': nearest even (an oracle independent of the client)."""
    return struct.unpack("<e", struct.pack("<e", v))[0]


def _bf16(v):
    """Nearest even by distance in double: the two BF16 neighbours of float32 v."""
    u = struct.unpack("<I", struct.pack("<f", v))[0]
    lo = struct.unpack("<f", struct.pack("<I", u & 0xffff0000))[0]
    hi = struct.unpack("<f", struct.pack("<I", (u & 0xffff0000) + 0x10000))[0]
    a, b = abs(v - lo), abs(hi - v)
    return lo if a < b or (a == b and not (u >> 16) & 1) else hi


def _f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


QKV = {n: _nest(_rand(k)) for k, n in enumerate(("queries", "keys", "values"))}


def _run(cl, inputs, **kw):
    return _flat(cl.infer("full", inputs, **kw)["output"])


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("dt", ["FP16", "BF16"])
def test_half_inputs_equal_fp32_inputs_of_the_rounded_values(client, dt, binary):
    rnd = _f16 if dt == "FP16" else _bf16
    rounded = {n: _nest([rnd(_f32(x)) for x in Tensor(v, "FP32").data]) for n, v in QKV.items()}
    want = _run(client, rounded, binary=binary)
    got = _run(client, QKV, binary=binary, input_datatype=dt)
    assert got == want
    # explicit Tensors of the datatype go as they are
    ts = [Tensor(v, dt, name=n) for n, v in QKV.items()]
    assert _flat(client.infer("full", ts, binary=binary)["output"]) == want
    ref = _run(client, QKV, binary=binary)
    err = max(abs(a - b) for a, b in zip(got, ref))
    assert 0 < err < (1e-2 if dt == "FP16" else 6e-2)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("dt", ["FP16", "BF16", "FP32"])
def test_outputs_in_the_datatype_asked_for(client, dt, binary):
    ref = _run(client, QKV, binary=binary)
    res = client.infer("full", QKV, binary=binary, output_datatype=dt)
    assert list(res) == ["output"]  # the outputs a request gets by default, not the optional ones
    out = res["output"]
    rnd = {"FP16": _f16, "BF16": _bf16, "FP32": lambda v: v}[dt]
    assert _flat(out) == [rnd(v) for v in ref]
    if hasattr(out, "dtype"):
        assert str(out.dtype) == {"FP16": "float16", "BF16": "float32", "FP32": "float32"}[dt]
        assert list(out.shape) == SHAPE
    else:
        assert out.datatype == dt and out.shape == SHAPE


def test_float16_numpy_arrays_go_as_fp16(client):
    if NO_NUMPY or not attnd.HAVE_NUMPY:
        pytest.skip("numpy run only")
    import numpy as np
    x = {n: np.array(v, np.float32) for n, v in QKV.items()}
    x16 = {n: a.astype(np.float16) for n, a in x.items()}
    want = client.infer("full", {n: a.astype(np.float32) for n, a in x16.items()})["output"]
    got = client.infer("full", x16)["output"]
    assert got.tobytes() == want.tobytes()
    assert client.infer("full", x, input_datatype="FP16")["output"].tobytes() == want.tobytes()


def test_bad_datatype_options(client):
    with pytest.raises(ValueError):
        client.infer("full", QKV, input_datatype="FP8")
    with pytest.raises(ValueError):
        client.infer("full", QKV, output_datatype="INT64")


def test_metadata_lists_the_datatypes(client):
    m = client.metadata("full")
    q = [i for i in m["inputs"] if i["name"] == "queries"][0]
    assert q["datatypes"] == ["FP32", "FP16", "BF16"]


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("req,resp", [("gzip", None), ("deflate", None), (None, "gzip"), (None, "deflate"),
                                      ("gzip", "deflate")])
def test_compressed_requests_and_replies(client, url, req, resp, binary):
    big = {n: Tensor(v * 8, "FP32", shape=[1, 48, 2, 4]) for n, v in
           ((n, _rand(k)) for k, n in enumerate(("queries", "keys", "values")))}
    big = [Tensor(t.data, "FP32", shape=t.shape, name=n) for n, t in big.items()]
    want = _flat(client.infer("full", big, binary=binary)["output"])
    got = _flat(client.infer("full", big, binary=binary, request_compression_algorithm=req,
                             response_compression_algorithm=resp)["output"])
    assert got == want
    c = attnd.Client(url, client.api_key, request_compression_algorithm=req, response_compression_algorithm=resp)
    assert _flat(c.infer("full", big, binary=binary)["output"]) == want


def test_the_server_compresses_when_asked(client):
    big = {n: Tensor(_rand(k) * 8, "FP32", shape=[1, 48, 2, 4]) for k, n in enumerate(("queries", "keys", "values"))}
    body = json.dumps({"inputs": [{"name": n, "datatype": "FP32", "shape": t.shape, "data": t.data}
                                  for n, t in big.items()]}).encode()
    st, rh, data = client.request("POST", "/v2/models/full/infer", attnd.client.compress("gzip", body),
                                  {"Content-Type": "application/json", "Content-Encoding": "gzip",
                                   "Accept-Encoding": "gzip"})
    assert st == 200 and rh.get("content-encoding") == "gzip"
    assert len(json.loads(data)["outputs"][0]["data"]) == 48 * 2 * 4


def test_bad_compression_options(url):
    with pytest.raises(ValueError):
        attnd.Client(url, request_compression_algorithm="br")
    with pytest.raises(ValueError):
        attnd.Client(url).infer("full", QKV, response_compression_algorithm="zstd")


def test_pure_python_half_conversions():
    """Without numpy: FP16 overflow becomes infinity, BF16 ties go to even, NaN stays NaN."""
    t = Tensor([70000.0, -1e6, 1.0, 1.00390625, 1.01171875, float("nan")], "FP16")
    assert t.data[0] == math.inf and t.data[1] == -math.inf and t.data[2] == 1.0
    b = Tensor([1.00390625, 1.01171875, 3.0e38, float("nan"), -0.0], "BF16")
    assert b.data[0] == 1.0 and b.data[1] == 1.015625 and math.isnan(b.data[3])
    assert b.data[2] == _bf16(3.0e38)
    assert struct.pack("<f", b.data[4]) == struct.pack("<f", -0.0)

"""Numerics over HTTP: every golden case, served as a repository model (and,
for parameter-free types, as the built-in model with its config in the
request), must give exactly what `attn run` gives, bit for bit, over JSON and
over the binary extension, with numpy arrays, Tensors and plain lists; and
stay within the case's tolerance of the reference output."""

import math
import struct

import pytest

import attnd
from conftest import (BUILD, GOLDEN, as_native, as_tensor, builtin_types, floats_of, golden_cases,
                      load_case, raw_of)

CASES = golden_cases()
MODES = ["binary-native", "json-native", "binary-tensor", "json-lists"]


def test_golden_cases_were_prepared():
    assert GOLDEN, "ATTND_GOLDEN is not set: run clients/python/test.sh"
    assert len(CASES) >= 10, CASES


def _inputs(c, mode):
    if mode.endswith("native"):
        return {k: as_native(v) for k, v in c["inputs"].items()}
    if mode.endswith("tensor"):
        return {k: as_tensor(v) for k, v in c["inputs"].items()}
    # nested Python lists: datatypes come from the values (bools) and the
    # well-known input names (lengths are INT64)
    return {k: as_tensor(v).tolist() for k, v in c["inputs"].items()}


def _check_exact(got, c):
    want_dt, want_shape, want_raw = c["attn_run"]
    raw, shape = raw_of(got)
    assert shape == want_shape
    if raw != want_raw:
        a, b = floats_of(raw), floats_of(want_raw)
        bad = [i for i in range(len(a)) if struct_bits(a[i]) != struct_bits(b[i])]
        pytest.fail("%d of %d elements differ from attn run; first at %d: %r vs %r"
                    % (len(bad), len(a), bad[0], a[bad[0]], b[bad[0]]))


def struct_bits(x):
    return struct.pack("<f", x)


def _check_tolerance(got, c):
    _, shape, exp_raw = c["expected"]
    raw, got_shape = raw_of(got)
    assert got_shape == shape
    rtol, atol = c["case"]["rtol"], c["case"]["atol"]
    for g, e in zip(floats_of(raw), floats_of(exp_raw)):
        if math.isnan(e):
            assert math.isnan(g)
        else:
            assert abs(g - e) <= atol + rtol * abs(e), (g, e)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case_id", CASES)
def test_repository_model(case_id, mode, client, pure_client):
    c = load_case(case_id)
    cl = pure_client if mode.endswith(("tensor", "lists")) else client
    res = cl.infer("g_" + case_id, _inputs(c, mode), binary=mode.startswith("binary"))
    assert list(res) == ["output"]
    assert res.model_name == "g_" + case_id
    out = res["output"]
    if cl is pure_client or not attnd.HAVE_NUMPY:
        assert isinstance(out, attnd.Tensor) and out.datatype == "FP32"
    else:
        assert type(out).__module__ == "numpy" and out.dtype.name == "float32"
    _check_exact(out, c)
    _check_tolerance(out, c)


BUILTIN_TYPES = builtin_types() if BUILD else set()
BUILTIN = [cid for cid in CASES if load_case(cid)["model_config"]["type"] in BUILTIN_TYPES]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("case_id", BUILTIN)
def test_builtin_model(case_id, binary, client):
    """Parameter-free types are built-in models named by their type, configured
    per request: attention(type, q, k, v, **config) for the queries/keys/values
    mechanisms, infer(type, inputs, parameters=config) for the others."""
    c = load_case(case_id)
    ins = {k: as_native(v) for k, v in c["inputs"].items()}
    mc = c["model_config"]
    config = mc.get("config", {})
    if {"queries", "keys", "values"} <= set(ins):
        extra = {k: ins[k] for k in ("attn_mask", "query_lengths", "key_lengths") if k in ins}
        out = client.attention(mc["type"], ins["queries"], ins["keys"], ins["values"],
                               binary=binary, **extra, **config)
    else:
        res = client.infer(mc["type"], ins, parameters=config, binary=binary)
        assert res.model_name == mc["type"]
        out = res["output"]
    _check_exact(out, c)


def test_builtins_exist_among_cases():
    assert {"full", "linear", "local"} <= BUILTIN_TYPES, BUILTIN_TYPES
    assert len(BUILTIN) >= 5, BUILTIN


def test_every_builtin_type_is_served(client):
    for t in BUILTIN_TYPES:
        assert client.metadata(t)["name"] == t

"""load_model / unload_model against the live server."""

import json
import os

import pytest

import attnd
from conftest import as_native, load_case, raw_of


def _infer_case(client, name, c):
    res = client.infer(name, {k: as_native(v) for k, v in c["inputs"].items()})
    return raw_of(res["output"])[0]


@pytest.mark.parametrize("binary", [False, True], ids=["base64", "raw"])
def test_load_config_and_weights_then_infer_exactly(client, binary):
    c = load_case("aft_full")
    name = "py_aft_" + ("raw" if binary else "b64")
    client.load_model(name, c["model_config"], os.path.join(c["dir"], "model", "weights.safetensors"),
                      binary=binary)
    assert client.is_ready(name)
    assert _infer_case(client, name, c) == c["attn_run"][2]
    assert name in [m["name"] for m in client.models()]


def test_load_replaces_atomically_and_failed_load_keeps_the_old(client):
    a, b = load_case("aft_full"), load_case("aft_full_square")
    client.load_model("py_swap", os.path.join(a["dir"], "model"))  # a model folder
    assert _infer_case(client, "py_swap", a) == a["attn_run"][2]
    client.load_model("py_swap", json.dumps(b["model_config"]),
                      os.path.join(b["dir"], "model", "weights.safetensors"))
    assert _infer_case(client, "py_swap", b) == b["attn_run"][2]
    # weights that do not fit the config: rejected, b keeps serving
    with pytest.raises(attnd.BadRequestError) as ei:
        client.load_model("py_swap", a["model_config"], os.path.join(b["dir"], "model", "weights.safetensors"))
    assert ei.value.message
    assert _infer_case(client, "py_swap", b) == b["attn_run"][2]


def test_bad_config_is_bad_request(client):
    with pytest.raises(attnd.BadRequestError) as ei:
        client.load_model("py_bad", {"type": "no_such_mechanism", "config": {}})
    assert "no_such_mechanism" in ei.value.message
    with pytest.raises(attnd.BadRequestError):
        client.load_model("py_bad", "{not json")
    assert not client.is_ready("py_bad")


def test_parameter_free_model_from_config_only(client):
    client.load_model("py_local", {"type": "local", "config": {"local_context": 3}})
    md = client.metadata("py_local")
    assert md["name"] == "py_local"
    q = [[[[0.1 * (i + 1), -0.2 * i]] for i in range(5)]]  # (1,5,1,2)
    out = client.infer("py_local", {"queries": q, "keys": q, "values": q})["output"]
    assert raw_of(out)[1] == [1, 5, 1, 2]
    same = client.attention("local", q, q, q, local_context=3)
    assert raw_of(same) == raw_of(out)
    other = client.attention("local", q, q, q, local_context=1)
    assert raw_of(other) != raw_of(out)


def test_unload_then_reload_from_the_repository(client):
    c = load_case("full_causal")
    client.load_model("py_tmp", c["model_config"])
    assert client.is_ready("py_tmp")
    client.unload_model("py_tmp")
    assert not client.is_ready("py_tmp")
    with pytest.raises(attnd.ModelNotFoundError):
        client.infer("py_tmp", {k: as_native(v) for k, v in c["inputs"].items()})
    client.load_model("py_tmp")  # no config: <repository>/py_tmp/ as the load wrote it
    assert _infer_case(client, "py_tmp", c) == c["attn_run"][2]
    client.unload_model("py_tmp")


def test_unload_unknown_model(client):
    with pytest.raises(attnd.ModelNotFoundError):
        client.unload_model("py_never_loaded")


def test_bad_model_name_is_rejected(client):
    with pytest.raises((attnd.BadRequestError, attnd.ModelNotFoundError)):
        client.load_model("-bad name", {"type": "full", "config": {}})

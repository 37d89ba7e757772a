"""Health, metadata, the repository index, authentication and typed errors
against the live server."""

import json

import pytest

import attnd
from conftest import API_KEY, ADMIN_KEY, as_native, golden_cases, load_case


def test_health(client):
    assert client.health() == {"live": True, "ready": True}
    assert client.is_ready() is True


def test_health_needs_no_key(url):
    assert attnd.Client(url).health() == {"live": True, "ready": True}


def test_server_metadata(client):
    md = client.server_metadata()
    assert md["name"] == "attnd"
    assert isinstance(md["version"], str) and md["version"]
    assert "binary_tensor_data" in md["extensions"]
    assert "model_repository" in md["extensions"]


def test_model_metadata_and_readiness(client):
    md = client.metadata("g_full_causal")
    assert md["name"] == "g_full_causal"
    names = [i["name"] for i in md["inputs"]]
    assert names[:3] == ["queries", "keys", "values"]
    assert all(i["datatype"] in ("FP32", "BOOL", "INT64", "INT32") for i in md["inputs"])
    # the primary output, then the optional attention map (returned only when asked for)
    assert [o["name"] for o in md["outputs"]] == ["output", "attention"]
    assert [o["optional"] for o in md["outputs"]] == [False, True]
    assert client.is_ready("g_full_causal") is True
    assert client.is_ready("no_such_model") is False


def test_builtin_metadata(client):
    md = client.metadata("full")
    assert md["name"] == "full"
    assert [o["name"] for o in md["outputs"]] == ["output", "attention"]


def test_models_index_lists_every_golden_case(client):
    index = client.models()
    by_name = {m["name"]: m for m in index}
    for cid in golden_cases():
        assert "g_" + cid in by_name, cid
        assert by_name["g_" + cid]["state"] == "READY", by_name["g_" + cid]
    ready = client.models(ready=True)
    assert all(m["state"] == "READY" for m in ready)


def test_unknown_model_is_model_not_found(client):
    with pytest.raises(attnd.ModelNotFoundError) as ei:
        client.metadata("no_such_model")
    assert ei.value.status == 404
    assert "no_such_model" in ei.value.message
    with pytest.raises(attnd.ModelNotFoundError):
        client.infer("no_such_model", {"x": [1.0]})


def test_bad_request_carries_the_server_message(client):
    c = load_case("full_causal")
    ins = {k: as_native(v) for k, v in c["inputs"].items()}
    ins["keys"] = [[[[1.0, 2.0, 3.0]]]]  # wrong E
    with pytest.raises(attnd.BadRequestError) as ei:
        client.infer("g_full_causal", ins)
    e = ei.value
    assert e.status == 400
    assert isinstance(e.message, str) and e.message
    assert json.loads(e.body.decode())["error"] == e.message
    assert str(e) == "400: " + e.message


def test_missing_input_is_bad_request(client):
    with pytest.raises(attnd.BadRequestError) as ei:
        client.infer("full", {"queries": [[[[1.0]]]]}, binary=False)
    assert "keys" in ei.value.message or "values" in ei.value.message


def test_unknown_config_key_is_bad_request(client):
    q = [[[[1.0, 0.0]], [[0.0, 1.0]]]]
    with pytest.raises(attnd.BadRequestError) as ei:
        client.attention("full", q, q, q, no_such_key=3)
    assert "no_such_key" in ei.value.message


def test_missing_key_is_unauthorized(url):
    with pytest.raises(attnd.UnauthorizedError) as ei:
        attnd.Client(url).metadata("full")
    assert ei.value.status == 401
    with pytest.raises(attnd.UnauthorizedError):
        attnd.Client(url, api_key="wrong").infer("full", {"queries": [1.0]})


def test_api_key_cannot_use_the_repository(url):
    c = attnd.Client(url, api_key=API_KEY)  # admin_key defaults to the api key
    with pytest.raises((attnd.UnauthorizedError, attnd.ForbiddenError)):
        c.unload_model("g_full_causal")
    with pytest.raises((attnd.UnauthorizedError, attnd.ForbiddenError)):
        c.models()
    assert attnd.Client(url, api_key=API_KEY, admin_key=ADMIN_KEY).is_ready("g_full_causal")


def test_admin_key_works_everywhere(url):
    c = attnd.Client(url, api_key=ADMIN_KEY)
    assert c.metadata("full")["name"] == "full"
    assert isinstance(c.models(), list)


def test_request_id_is_echoed(client):
    q = [[[[1.0, 0.0]], [[0.0, 1.0]]]]
    for binary in (True, False):
        res = client.infer("full", {"queries": q, "keys": q, "values": q}, request_id="req-42",
                           binary=binary)
        assert res.id == "req-42"
        assert res.model_name == "full"


def test_unreachable_server_is_connect_error():
    c = attnd.Client("http://127.0.0.1:9", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(attnd.ConnectError) as ei:
        c.health()
    assert ei.value.status is None


def test_invalid_model_name(client):
    with pytest.raises(ValueError):
        client.metadata("")
    with pytest.raises((attnd.ModelNotFoundError, attnd.BadRequestError)):
        client.metadata("../etc/passwd")


def test_nan_and_infinities_travel_over_json_and_binary(client, pure_client):
    """A fully masked row is NaN in the reference (and in attnd)."""
    import math
    q = [[[[1.0, 0.0]], [[0.0, 1.0]]]]
    mask = [[False, False], [True, True]]
    for cl in (client, pure_client):
        for binary in (True, False):
            out = cl.attention("full", q, q, q, attn_mask=mask, binary=binary)
            flat = out.ravel().tolist() if hasattr(out, "ravel") else out.data
            assert math.isnan(flat[0]) and math.isnan(flat[1]), flat
            assert math.isfinite(flat[2])


def test_readme_numbers(client):
    q = [[[[1.0, 0.0]], [[0.0, 1.0]]]]
    v = [[[[10.0]], [[20.0]]]]
    out = client.attention("full", q, q, v, softmax_temp=1.0)
    flat = out.ravel().tolist() if hasattr(out, "ravel") else out.data
    assert abs(flat[0] - 12.6894142) < 1e-5 and abs(flat[1] - 17.3105858) < 1e-5
    # the config as parameters.config (an object) gives the same bits
    same = client.infer("full", {"queries": q, "keys": q, "values": v},
                        parameters={"config": {"softmax_temp": 1.0}})["output"]
    assert (same.tobytes() if hasattr(same, "tobytes") else same.data) == \
        (out.tobytes() if hasattr(out, "tobytes") else out.data)


def test_requested_outputs(client):
    q = [[[[1.0, 0.0]], [[0.0, 1.0]]]]
    for binary in (True, False):
        res = client.infer("full", {"queries": q, "keys": q, "values": q}, outputs=["output"], binary=binary)
        assert list(res) == ["output"]
        with pytest.raises(attnd.BadRequestError) as ei:
            client.infer("full", {"queries": q, "keys": q, "values": q}, outputs=["nope"], binary=binary)
        assert "nope" in ei.value.message


def test_one_client_shared_by_threads(client):
    """One keep-alive connection per thread; results are not mixed up."""
    import threading
    errors = []
    q = [[[[1.0, 0.0]], [[0.0, 1.0]]]]

    def run(k):
        out = client.attention("full", q, q, [[[[float(k)]], [[float(k) * 2]]]])
        return out.ravel().tolist() if hasattr(out, "ravel") else out.data

    want = {k: run(k) for k in range(8)}
    assert len({tuple(w) for w in want.values()}) == 8

    def work(k):
        try:
            for _ in range(20):
                assert run(k) == want[k], k
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors

"""The repository extension: index, unload, load from the folder, load with
the model in the request (Triton's config + base64 files, and a binary
body), failed loads that leave the old model serving, persistence."""
import json
import os
import shutil
import time

import numpy as np

from harness import (CTX, Server, b64, check, expect_error, same_bits, st_bytes, st_read,
                     st_read_bytes, test)


def _case(cid):
    return next(c for c in CTX.golden_cases if c.id == cid)


def _repo(name, *case_ids):
    d = os.path.join(CTX.work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for cid in case_ids:
        shutil.copytree(_case(cid).model_dir, os.path.join(d, cid))
    return d


def _files(case):
    with open(os.path.join(case.model_dir, "config.json")) as f:
        cfg = f.read()
    wpath = os.path.join(case.model_dir, "weights.safetensors")
    weights = open(wpath, "rb").read() if os.path.exists(wpath) else None
    return cfg, weights


def _load(s, name, params=None, raw=None, headers=None):
    body = json.dumps({"parameters": params}).encode() if params is not None else b""
    h = dict(headers or {})
    if raw is not None:
        h["Inference-Header-Content-Length"] = str(len(body))
        body += raw
    return s.request("POST", f"/v2/repository/models/{name}/load", body=body, headers=h)


def _index(s, ready=None):
    body = json.dumps({"ready": ready}).encode() if ready is not None else b""
    st, h, b = s.request("POST", "/v2/repository/index", body=body)
    check(st == 200, f"index: {st}")
    return {e["name"]: e for e in json.loads(b)}


def _same(s, name, case, what):
    st, h, out = s.infer(name, case.inputs, binary=True)
    check(st == 200, f"{what}: infer {st} {out if isinstance(out, bytes) else ''!r}")
    check(same_bits(out["output"], case.expected), f"{what}: output differs")


@test
def repository_index_unload_load():
    a, f = _case("attention_layer_full"), _case("full_causal")
    repo = _repo("repo_a", a.id, f.id)
    os.makedirs(os.path.join(repo, "broken"))
    with open(os.path.join(repo, "broken", "config.json"), "w") as fh:
        fh.write('{"type": "no_such_type"}')
    with Server("--model-repository", repo, tag="repo") as s:
        idx = _index(s)
        check(idx[a.id]["state"] == "READY" and idx[f.id]["state"] == "READY", f"index {idx}")
        check(idx["broken"]["state"] == "UNAVAILABLE" and "no_such_type" in idx["broken"]["reason"],
              f"a broken model is listed with its reason: {idx.get('broken')}")
        check("broken" not in _index(s, ready=True), "ready-only index")
        # a load of a name with no folder is a 404 and leaves no phantom entry
        check(s.request("POST", "/v2/repository/models/ghost/load")[0] == 404, "load of a missing folder")
        check("ghost" not in _index(s), "no phantom index entry after a failed load")
        check(s.request("POST", "/v2/repository/models/ghost/unload")[0] == 404, "unload of an unknown name")
        st, h, b = s.request("POST", f"/v2/repository/models/{a.id}/unload")
        check(st == 200, f"unload: {st}")
        expect_error(s.infer(a.id, a.inputs), 404, "infer after unload")
        check(s.request("GET", f"/v2/models/{a.id}/ready")[0] == 400, "not ready after unload")
        check(_index(s)[a.id]["state"] == "UNAVAILABLE", "index after unload")
        st, h, b = _load(s, a.id)
        check(st == 200, f"load from the folder: {st} {b!r}")
        _same(s, a.id, a, "after reload")
        expect_error(s.request("POST", "/v2/repository/models/full/unload"), 400, "unload a built-in")
        expect_error(s.request("POST", "/v2/repository/models/nothing_here/unload"), 404, "unload unknown")
        expect_error(_load(s, "nothing_here"), 404, "load a folder that is not there")
        expect_error(s.request("POST", "/v2/repository/models/bad!name/load"), 400, "bad model name")
        expect_error(s.request("POST", "/v2/repository/index", body=b"{"), 400, "bad index body")


@test
def repository_load_content():
    a, lin = _case("attention_layer_full"), _case("attention_layer_linear")
    repo = _repo("repo_b", a.id)
    cfg, weights = _files(a)
    with Server("--model-repository", repo, tag="repo") as s:
        # Triton's client: load_model(name, config=..., files={"file:...": bytes})
        st, h, b = _load(s, "deployed", {"config": cfg, "file:weights.safetensors": b64(weights)})
        check(st == 200, f"load with content: {st} {b!r}")
        _same(s, "deployed", a, "deployed model")
        d = os.path.join(repo, "deployed")
        check(open(os.path.join(d, "config.json")).read() == cfg, "config.json written")
        check(open(os.path.join(d, "weights.safetensors"), "rb").read() == weights, "weights written")
        check(not [n for n in os.listdir(repo) if n.startswith(".")], "temporary folders left behind")
        # the binary form: JSON header, then the raw safetensors bytes
        st, h, b = _load(s, "deployed_bin", {"config": cfg}, raw=weights)
        check(st == 200, f"binary load: {st} {b!r}")
        _same(s, "deployed_bin", a, "binary-loaded model")

        # failed loads leave the old model serving and the folder untouched
        w = st_read_bytes(weights)
        short = st_bytes({k: v for k, v in w.items() if k != "out_projection.bias"})
        wrong = dict(w)
        wrong["out_projection.bias"] = np.zeros(3, np.float32)
        bad = [({"config": cfg, "file:weights.safetensors": b64(short)}, "a missing weight"),
               ({"config": cfg, "file:weights.safetensors": b64(st_bytes(wrong))}, "a mis-shaped weight"),
               ({"config": cfg, "file:weights.safetensors": b64(b"not safetensors")}, "garbage weights"),
               ({"config": cfg, "file:weights.safetensors": "@@@"}, "bad base64"),
               ({"config": "{not json", "file:weights.safetensors": b64(weights)}, "bad config JSON"),
               ({"config": json.dumps({"type": "no_such_type"})}, "unknown type"),
               ({"config": json.dumps({"type": "full", "config": {"softmax_temp": "x"}})}, "bad config"),
               ({"config": cfg, "file:model.onnx": b64(b"x")}, "an unsupported file"),
               ({"file:weights.safetensors": b64(weights)}, "weights without config")]
        for params, what in bad:
            expect_error(_load(s, "deployed", params), 400, what)
            _same(s, "deployed", a, f"old model after {what}")
            check(open(os.path.join(d, "config.json")).read() == cfg, f"config.json changed by {what}")
        check(_index(s)["deployed"]["state"] == "READY", "still READY after failed loads")

        # replacing a model: new config and weights under the same name
        cfg2, w2 = _files(lin)
        st, h, b = _load(s, "deployed", {"config": cfg2, "file:weights.safetensors": b64(w2)})
        check(st == 200, f"replace: {st} {b!r}")
        _same(s, "deployed", lin, "replaced model")
        check(open(os.path.join(d, "config.json")).read() == cfg2, "config.json replaced")
        # a parameter-free type needs no weights
        f = _case("full_causal")
        st, h, b = _load(s, "deployed_full", {"config": open(os.path.join(f.model_dir, "config.json")).read()})
        check(st == 200, f"parameter-free load: {st} {b!r}")
        _same(s, "deployed_full", f, "parameter-free model")
    # the next start serves what was deployed
    with Server("--model-repository", repo, tag="repo2") as s:
        _same(s, "deployed", lin, "deployed model after a restart")
        _same(s, "deployed_bin", a, "binary-loaded model after a restart")


@test
def repository_nonfinite_flag():
    repo = _repo("repo_c")
    with Server("--model-repository", repo, tag="repo") as s:
        cfg = json.dumps({"type": "full", "config": {}, "allow_nonfinite": True})
        st, h, b = _load(s, "lenient", {"config": cfg})
        check(st == 200, f"load: {st} {b!r}")
        rng = np.random.default_rng(3)
        inp = {n: rng.standard_normal((1, 3, 1, 2)).astype(np.float32) for n in ("queries", "keys", "values")}
        inp["values"][0, 1, 0, 0] = np.nan
        st, h, out = s.infer("lenient", inp)
        check(st == 200, f"NaN accepted by a lenient model: {st} {out!r}")
        check(np.isnan(out["output"]).any(), "NaN propagates into the JSON output")
        st, h, out2 = s.infer("lenient", inp, binary=True)
        check(st == 200 and same_bits(out2["output"], out["output"], nan_any=True), "binary agrees")
        expect_error(s.infer("full", inp), 400, "the built-in still refuses NaN")
        st, h, b = s.request("GET", "/v2/models/lenient/config")
        check(st == 200 and json.loads(b)["allow_nonfinite"] is True, f"config of lenient: {b!r}")
        st, h, b = s.request("GET", "/v2/models/full/config")
        check(st == 200 and json.loads(b)["allow_nonfinite"] is False, f"config of full: {b!r}")
    with Server("--model-repository", repo, "--allow-nonfinite", tag="repo_nf") as s:
        st, h, b = s.request("GET", "/v2/models/full/config")
        check(st == 200 and json.loads(b)["allow_nonfinite"] is True,
              f"--allow-nonfinite shows in every model's config: {b!r}")


@test
def ready_after_repository():
    """Live at once, ready only once the repository has loaded: a model
    whose config.json is a FIFO holds the load until the test writes it."""
    f = _case("full_causal")
    repo = _repo("repo_fifo")
    os.makedirs(os.path.join(repo, "slow"))
    fifo = os.path.join(repo, "slow", "config.json")
    os.mkfifo(fifo)
    with Server("--model-repository", repo, tag="fifo", wait_ready=False) as s:
        check(s.request("GET", "/v2/health/live")[0] == 200, "live while loading")
        check(s.request("GET", "/v2/health/ready")[0] == 400, "ready before the repository loaded")
        with open(fifo, "w") as w:
            w.write(open(os.path.join(f.model_dir, "config.json")).read())
        for _ in range(200):
            if s.request("GET", "/v2/health/ready")[0] == 200:
                break
            time.sleep(0.02)
        check(s.request("GET", "/v2/health/ready")[0] == 200, "ready after the repository loaded")
        _same(s, "slow", f, "the model that was loading")


@test
def config_lists_the_weights():
    """GET .../config lists the tensors of the model's weights file (the
    explorer page shows them); [] for a type without weights."""
    f = _case("attention_layer_causal")
    repo = _repo("repo_weights", "attention_layer_causal", "full_causal")
    with Server("--model-repository", repo, tag="weights") as s:
        st, body = s.get_json("/v2/models/attention_layer_causal/config")
        check(st == 200, f"config {st}")
        want = st_read(os.path.join(f.model_dir, "weights.safetensors"))
        got = {w["name"]: (w["datatype"], w["shape"]) for w in body["weights"]}
        check(got == {k: ("F32", list(v.shape)) for k, v in want.items()}, f"weights {got}")
        st, body = s.get_json("/v2/models/full_causal/config")
        check(st == 200 and body["weights"] == [], f"no weights: {body}")
        st, body = s.get_json("/v2/models/full/config")
        check(st == 200 and body["weights"] == [], f"built-in: {body}")

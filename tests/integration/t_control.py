"""Triton's model control modes and the single-model folder: explicit (the
API loads; --load-model picks what loads at start; explicit without it loads
nothing), none (everything loads, the API may not), poll (folders that
appear, change and vanish load, reload and unload; a broken version leaves
the old one serving with the reason in the index; a folder rewritten while
requests run: no failed request, every answer from one version or the
other), and a model folder served alone under --model-name (KServe's
/mnt/models layout)."""
import json
import os
import shutil
import threading
import time

import numpy as np

from harness import CTX, Server, check, expect_error, test


def _repo(name):
    d = os.path.join(CTX.work, "control", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def _model(repo, name, cfg):
    d = os.path.join(repo, name)
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, ".config.json.tmp")
    with open(tmp, "w") as f:
        json.dump(cfg, f)
    os.replace(tmp, os.path.join(d, "config.json"))


def _index(srv):
    st, h, b = srv.post_json("/v2/repository/index")
    check(st == 200, f"index {st}")
    return {e["name"]: (e["state"], e["reason"]) for e in json.loads(b) if not e.get("builtin")}


def _until(what, fn, timeout=10):
    t0 = time.time()
    while not fn():
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


X = {k: np.random.default_rng(11).standard_normal((1, 5, 2, 4)).astype(np.float32) for k in ("queries", "keys", "values")}


@test
def control_explicit_and_none():
    repo = _repo("explicit")
    for n in ("a", "b"):
        _model(repo, n, {"type": "full", "config": {}})
    with Server("--model-repository", repo, "--model-control-mode", "explicit", tag="ctl-explicit") as srv:
        check(_index(srv) == {"a": ("UNAVAILABLE", "not loaded"), "b": ("UNAVAILABLE", "not loaded")},
              f"explicit without --load-model loads nothing: {_index(srv)}")
        check(srv.post_json("/v2/repository/models/a/load")[0] == 200, "load a")
        check(_index(srv)["a"] == ("READY", ""), "a loaded")
        st, body = srv.get_json("/v2")
        check(body["limits"]["model_control_mode"] == "explicit", f"limits {body['limits']}")
    with Server("--model-repository", repo, "--load-model", "b", tag="ctl-load") as srv:
        check(_index(srv) == {"a": ("UNAVAILABLE", "not loaded"), "b": ("READY", "")}, f"--load-model b: {_index(srv)}")
    with Server("--model-repository", repo, env={"ATTND_LOAD_MODEL": "a,b"}, tag="ctl-load-env") as srv:
        check(all(v[0] == "READY" for v in _index(srv).values()), "ATTND_LOAD_MODEL=a,b")
    with Server("--model-repository", repo, "--model-control-mode", "explicit", "--load-model", "*", tag="ctl-star") as srv:
        check(all(v[0] == "READY" for v in _index(srv).values()), "--load-model '*'")
    with Server("--model-repository", repo, "--model-control-mode", "none", tag="ctl-none") as srv:
        check(all(v[0] == "READY" for v in _index(srv).values()), "none loads everything")
        msg = expect_error(srv.post_json("/v2/repository/models/a/unload"), 400, "unload in none")
        check("--model-control-mode none" in msg, msg)
        expect_error(srv.post_json("/v2/repository/models/a/load"), 400, "load in none")
        check(srv.infer("a", X)[0] == 200, "a still serves")


@test
def control_poll():
    repo = _repo("poll")
    _model(repo, "a", {"type": "full", "config": {}})
    with Server("--model-repository", repo, "--model-control-mode", "poll", "--repository-poll-secs", "30",
                tag="ctl-poll") as srv:
        check(_index(srv) == {"a": ("READY", "")}, "a at start")
        # appears (found by the file events, well before the 30 s rescan)
        _model(repo, "b", {"type": "local", "config": {"local_context": 3}})
        _until("b to load", lambda: _index(srv).get("b") == ("READY", ""))
        # changes: a reload
        _model(repo, "a", {"type": "full", "config": {"softmax_temp": 0.5}})
        _until("a to reload", lambda: (srv.get_json("/v2/models/a/config")[1] or {}).get("config") == {"softmax_temp": 0.5})
        # a broken version: the old one keeps serving, the index says why
        with open(os.path.join(repo, "a", "config.json"), "w") as f:
            f.write("{broken")
        _until("the failure to be reported", lambda: "failed to load" in _index(srv)["a"][1])
        check(_index(srv)["a"][0] == "READY" and srv.infer("a", X)[0] == 200, "the old version serves")
        check(srv.get_json("/v2/models/a/config")[1]["config"] == {"softmax_temp": 0.5}, "still the previous version")
        _model(repo, "a", {"type": "full", "config": {}})
        _until("a fixed", lambda: _index(srv)["a"] == ("READY", ""))
        # vanishes
        shutil.rmtree(os.path.join(repo, "b"))
        _until("b to unload", lambda: _index(srv)["b"][0] == "UNAVAILABLE")
        check(_index(srv)["b"][1] == "removed from the repository", f"{_index(srv)}")
        check(srv.infer("b", X)[0] == 404, "b is gone")
        msg = expect_error(srv.post_json("/v2/repository/models/a/load"), 400, "load in poll")
        check("watched" in msg, msg)


@test
def control_poll_rewrite_under_load():
    """Requests run while a model's folder is rewritten in place (not
    atomically) between two configs: none fails, and each answer is exactly
    one version's."""
    repo = _repo("rewrite")
    v = [{"type": "full", "config": {"softmax_temp": t}} for t in (1.0, 0.25)]
    _model(repo, "m", v[0])
    want = []
    with Server(tag="ctl-ref") as ref:
        for cfg in v:
            st, h, out = ref.infer("full", X, params=cfg["config"], binary=True)
            check(st == 200, "reference")
            want.append(out["output"])
    check(not np.array_equal(want[0], want[1]), "the two versions must differ")
    with Server("--model-repository", repo, "--model-control-mode", "poll", "--repository-poll-secs", "0.1",
                tag="ctl-rewrite") as srv:
        stop = threading.Event()
        seen, bad = [0, 0], []

        def client():
            while not stop.is_set():
                st, h, out = srv.infer("m", X, binary=True)
                if st != 200:
                    bad.append(f"status {st}: {out[:200]!r}")
                    continue
                hit = [k for k in (0, 1) if np.array_equal(out["output"], want[k])]
                if not hit:
                    bad.append("an answer from neither version")
                else:
                    seen[hit[0]] += 1
        ths = [threading.Thread(target=client) for _ in range(3)]
        [t.start() for t in ths]
        path = os.path.join(repo, "m", "config.json")
        for i in range(30):
            with open(path, "w") as f:  # in place: readers may see it half written
                text = json.dumps(v[(i + 1) % 2])
                f.write(text[:len(text) // 2])
                f.flush()
                time.sleep(0.01)
                f.write(text[len(text) // 2:])
            time.sleep(0.08)
        time.sleep(0.5)
        stop.set()
        [t.join() for t in ths]
        check(not bad, f"{len(bad)} bad answers, e.g. {bad[:3]}")
        check(seen[0] > 0 and seen[1] > 0, f"both versions served: {seen}")


@test
def control_single_model_folder():
    """KServe's storage initializer puts one model's files in /mnt/models:
    config.json at the top of the repository folder."""
    repo = _repo("single")
    with open(os.path.join(repo, "config.json"), "w") as f:
        json.dump({"type": "local", "config": {"local_context": 3}}, f)
    with Server("--model-repository", repo, "--model-name", "my-model", tag="ctl-single") as srv:
        check(_index(srv) == {"my-model": ("READY", "")}, f"index {_index(srv)}")
        st, md = srv.get_json("/v2/models/my-model")
        check(st == 200 and md["type"] == "local", "metadata")
        check(srv.infer("my-model", X)[0] == 200, "infer")
        check(srv.post_json("/v2/repository/models/my-model/load")[0] == 200, "reload from the folder")
        msg = expect_error(srv.post_json("/v2/repository/models/other/load",
                                         {"parameters": {"config": json.dumps({"type": "full"})}}), 400, "load content")
        check("one model folder" in msg, msg)
    with Server("--model-repository", repo, tag="ctl-single-noname") as srv:
        check(list(_index(srv)) == ["single"], f"named after the folder: {_index(srv)}")

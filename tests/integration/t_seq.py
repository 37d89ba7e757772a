"""Sequences over HTTP (Triton's sequence extension): every causal golden case
decoded through a sequence in several chunkings (binary tensors), equal to the
one-shot causal forward within the case's tolerance; an export restored on
another server continues bit for bit; cross sequences; the Sequence-Id
header; the errors (400, 404 with the reason, 409, 413, 503) and limits
(count, memory, idle timeout, eviction); one sequence's requests applied one
at a time; metrics, the list, and the drain on SIGTERM."""
import json
import os
import random
import threading
import time

import numpy as np

from harness import CTX, Server, add_test, check, expect_error, test

SERVER = {}  # "golden" is main.py's shared server (repository of the golden cases)


def _meta(case):
    with open(os.path.join(CTX.cases, case.id, "case.json")) as f:
        return json.load(f)


def _is_causal(case):
    # padding (linear_self's input_mask) has no stream form, and improved_clustered_causal no
    # recurrent form (as in fast-transformers): tests/unit/test_seq.c skips the same cases
    if "input_mask" in case.inputs or case.type == "improved_clustered_causal":
        return False
    if case.config.get("causal") is True:
        return True
    m = case.inputs.get("attn_mask")
    return m is not None and m.shape[0] == m.shape[1] and np.array_equal(m.astype(bool), np.tril(np.ones(m.shape, bool)))


def _required(srv, model):
    st, md = srv.get_json(f"/v2/models/{model}")
    check(st == 200, f"metadata of {model}: {st}")
    return [i["name"] for i in md["inputs"] if not i["optional"]], md.get("sequence_kinds", [])


def _chunks(scheme, L, rng):
    primes = [2, 3, 5, 7, 11, 13]
    out, t, n = [], 0, 0
    while t < L:
        c = {0: 1, 1: primes[n % 6], 2: (L - 2 if L > 2 else 1) if n == 0 else 1, 3: rng.randint(1, 9)}[scheme]
        c = min(c, L - t)
        out.append(c)
        t += c
        n += 1
    return out


def _step(srv, model, inputs, t0, T, params, binary=True, headers=None):
    part = {k: np.ascontiguousarray(v[:, t0:t0 + T]) for k, v in inputs.items()}
    return srv.infer(model, part, binary=binary, params=params, headers=headers)


def _decode(srv, model, inputs, sizes, sid, params=None, restore_to=None):
    """Runs `inputs` (the whole sequence, required inputs only) through sequence
    `sid` in chunks `sizes`.  With restore_to=(server, new id), the state is
    exported after the middle chunk, restored there, and both continue: their
    outputs must be the same bits.  Returns the concatenated output."""
    outs, t0 = [], 0
    other = None
    for i, T in enumerate(sizes):
        p = dict(params or {}) if i == 0 else {}
        p["sequence_id"] = sid
        if i == 0:
            p["sequence_start"] = True
        last = i == len(sizes) - 1
        if last:
            p["sequence_end"] = True
        st, h, body = _step(srv, model, inputs, t0, T, p)
        check(st == 200, f"{model} step {i} (T={T}): {st} {body[:300] if isinstance(body, bytes) else ''!r}")
        check(h.get("sequence-id") == str(sid), f"Sequence-Id header {h.get('sequence-id')!r}")
        outs.append(body["output"])
        if other:
            osrv, oid = other
            q = {"sequence_id": oid}
            if last:
                q["sequence_end"] = True
            st2, _, b2 = _step(osrv, model, inputs, t0, T, q)
            check(st2 == 200, f"restored {model} step {i}: {st2} {b2[:300] if isinstance(b2, bytes) else ''!r}")
            check(np.array_equal(b2["output"], body["output"]), f"{model}: the restored sequence differs at step {i}")
        if restore_to and i == len(sizes) // 2 and not last:
            st, h, state = srv.request("GET", f"/v2/models/{model}/sequences/{sid}")
            check(st == 200 and h.get("content-type") == "application/octet-stream", f"export: {st} {state[:200]!r}")
            osrv, oid = restore_to
            st, h, b = osrv.request("PUT", f"/v2/models/{model}/sequences/{oid}", body=state,
                                    headers={"Content-Type": "application/octet-stream"})
            check(st == 200, f"restore: {st} {b[:300]!r}")
            check(json.loads(b)["sequence_length"] == t0 + T, f"restored length {b!r}")
            other = restore_to
        t0 += T
    return np.concatenate(outs, axis=1)


def _golden_seq(case, rtol, atol):
    def t():
        srv = SERVER["seq"]
        names, kinds = _required(srv, case.id)
        check("self" in kinds, f"{case.id}: a causal case whose model has no self sequences ({kinds})")
        inputs = {k: case.inputs[k] for k in names}
        L = inputs[names[0]].shape[1]
        rng = random.Random(hash(case.id) & 0xffff)
        for scheme in range(4):
            sizes = _chunks(scheme, L, rng)
            sid = f"{case.id}.{scheme}"
            restore = (SERVER["seq2"], f"moved.{case.id}.{scheme}") if scheme in (0, 3) else None
            got = _decode(srv, case.id, inputs, sizes, sid, restore_to=restore)
            want = case.expected
            check(got.shape == want.shape, f"{case.id}: shape {got.shape} vs {want.shape}")
            kl = case.inputs.get("key_lengths")
            if kl is not None:  # rows past a stream's key length are padding
                keep = np.arange(L)[None, :] < np.asarray(kl).reshape(-1, 1)
                got, want = got[keep], want[keep]
            if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
                d = np.nanmax(np.abs(got.astype(np.float64) - want))
                raise AssertionError(f"{case.id} chunks {sizes}: differs from the causal forward by {d:.3g}")
    return t


def register(cases):
    for c in cases:
        if _is_causal(c):
            m = _meta(c)
            add_test(f"sequence_golden[{c.id}]", _golden_seq(c, m.get("rtol", 1e-4), m.get("atol", 1e-5)))


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _qkv(rng, N, L, H, E, D=None):
    return {"queries": _rand(rng, N, L, H, E), "keys": _rand(rng, N, L, H, E), "values": _rand(rng, N, L, H, D or E)}


@test
def sequence_builtin_config_and_cross():
    srv = SERVER["bseq"]
    rng = np.random.default_rng(5)
    # a built-in configured by the start's parameters; causal_linear is causal by itself
    x = _qkv(rng, 2, 7, 2, 4)
    st, h, whole = srv.infer("causal_linear", x, params={"query_dimensions": 4}, binary=True)
    check(st == 200, f"one-shot causal_linear: {st}")
    got = _decode(srv, "causal_linear", x, [3, 1, 3], "cl-1", params={"query_dimensions": 4},
                  restore_to=(SERVER["bseq2"], "cl-1-moved"))
    check(np.allclose(got, whole["output"], rtol=1e-4, atol=1e-5), "causal_linear sequence vs one-shot")
    # config on a later step is refused
    st, h, b = _step(srv, "causal_linear", x, 0, 1, {"sequence_id": "cl-2", "sequence_start": True, "query_dimensions": 4})
    check(st == 200, f"start cl-2: {st}")
    msg = expect_error(_step(srv, "causal_linear", x, 1, 1, {"sequence_id": "cl-2", "query_dimensions": 4}), 400, "config later")
    check("keeps the config" in msg, msg)
    check(srv.request("DELETE", "/v2/models/causal_linear/sequences/cl-2")[0] == 200, "delete cl-2")
    # cross: the memory comes once, with the start; later steps carry queries only
    N, L, S, H, E = 1, 6, 5, 2, 4
    q = _rand(rng, N, L, H, E)
    mem = {"keys": _rand(rng, N, S, H, E), "values": _rand(rng, N, S, H, E)}
    st, h, whole = srv.infer("full", {"queries": q, **mem}, binary=True)
    check(st == 200, "one-shot full (cross)")
    st, h, a = srv.infer("full", {"queries": q[:, :2], **mem}, binary=True,
                         params={"sequence_id": 99, "sequence_start": True, "sequence_kind": "cross"})
    check(st == 200, f"cross start: {st} {a[:300] if isinstance(a, bytes) else ''!r}")
    st, h, b = srv.infer("full", {"queries": q[:, 2:]}, binary=True, params={"sequence_id": 99, "sequence_end": True})
    check(st == 200, f"cross step: {st} {b[:300] if isinstance(b, bytes) else ''!r}")
    got = np.concatenate([a["output"], b["output"]], axis=1)
    check(np.allclose(got, whole["output"], rtol=1e-5, atol=1e-6), "cross sequence vs one-shot")
    st, h, a = srv.infer("full", {"queries": q[:, :1], **mem}, params={"sequence_id": 98, "sequence_start": True,
                                                                        "sequence_kind": "cross"})
    msg = expect_error(srv.infer("full", {"queries": q[:, 1:2], **mem}, params={"sequence_id": 98}), 400, "memory again")
    check("keys" in msg, msg)
    check(srv.request("DELETE", "/v2/models/full/sequences/98")[0] == 200, "delete 98")


@test
def sequence_protocol_errors():
    srv = SERVER["bseq"]
    rng = np.random.default_rng(6)
    x = _qkv(rng, 1, 4, 1, 2)
    one = lambda p, h=None, t0=0: _step(srv, "full", x, t0, 1, p, binary=False, headers=h)  # noqa: E731
    # the id in the header alone, then in both (agreeing, and not)
    st, h, b = one({"sequence_start": True}, {"Sequence-Id": "hdr-1"})
    check(st == 200 and h.get("sequence-id") == "hdr-1", f"header start: {st} {h}")
    check(b["output"].shape == (1, 1, 1, 2), "output of one token")
    st, h, b = one({"sequence_id": "hdr-1"}, {"Sequence-Id": "hdr-1"}, t0=1)
    check(st == 200, f"both agreeing: {st}")
    msg = expect_error(one({"sequence_id": "hdr-2"}, {"Sequence-Id": "hdr-1"}), 400, "disagree")
    check("disagree" in msg, msg)
    # an integer id and its string are one sequence; the reply echoes the request's form
    st, h, b = srv.post_json("/v2/models/full/infer", {"parameters": {"sequence_id": 12345, "sequence_start": True},
                                                      "inputs": _json_inputs(x, 0, 2)})
    check(st == 200, f"int id start: {st} {b[:200]!r}")
    r = json.loads(b)
    check(r["parameters"] == {"sequence_id": 12345, "sequence_length": 2}, f"parameters {r.get('parameters')}")
    st, h, b = srv.post_json("/v2/models/full/infer", {"parameters": {"sequence_id": "12345", "sequence_end": True},
                                                      "inputs": _json_inputs(x, 2, 1)})
    r = json.loads(b)
    check(st == 200 and r["parameters"] == {"sequence_id": "12345", "sequence_length": 3, "sequence_end": True},
          f"string form of the same id: {st} {r}")
    msg = expect_error(one({"sequence_id": 12345}), 404, "after end")
    check("sequence_end" in msg and "after 3 tokens" in msg, msg)
    msg = expect_error(one({"sequence_id": "never"}), 404, "unknown")
    check("never started" in msg, msg)
    # 409 on a live id
    msg = expect_error(one({"sequence_id": "hdr-1", "sequence_start": True}), 409, "start on live")
    check("live" in msg, msg)
    # the client's count of tokens: a replica with another length (a stale copy) refuses, applying nothing
    msg = expect_error(one({"sequence_id": "hdr-1", "attnd_expect_length": 7}, t0=2), 409, "stale copy")
    check("stale" in msg and "has 2 tokens" in msg, msg)
    expect_error(one({"sequence_id": "hdr-1", "attnd_expect_length": -1}), 400, "negative expect")
    expect_error(one({"attnd_expect_length": 0}), 400, "expect without an id")
    # the endpoints refuse a header naming another sequence than the path
    msg = expect_error(srv.request("GET", "/v2/models/full/sequences/hdr-1", headers={"Sequence-Id": "other"}), 400,
                       "header vs path")
    check("disagree" in msg, msg)
    expect_error(srv.request("DELETE", "/v2/models/full/sequences/hdr-1", headers={"Sequence-Id": "other"}), 400,
                 "header vs path on DELETE")
    check(srv.request("GET", "/v2/models/full/sequences/hdr-1", headers={"Sequence-Id": "hdr-1"})[0] == 200, "agreeing")
    # masks and lengths cannot apply to a stream
    st, h, b = srv.infer("full", {k: v[:, 2:3] for k, v in x.items()} | {"attn_mask": np.ones((1, 1), bool)},
                         params={"sequence_id": "hdr-1"})
    msg = expect_error((st, h, b), 400, "mask in a step")
    check("attn_mask" in msg, msg)
    # the sequence survived the bad steps
    st, h, b = one({"sequence_id": "hdr-1", "sequence_end": True, "attnd_expect_length": 2}, t0=2)
    check(st == 200 and b["output"].shape == (1, 1, 1, 2), f"after a refused step: {st}")
    # bad parameters
    for p, what in (({"sequence_id": -1}, "negative"), ({"sequence_id": 1.5}, "real"), ({"sequence_id": "a b"}, "space"),
                    ({"sequence_id": "x" * 129}, "long"), ({"sequence_start": True}, "start without id"),
                    ({"sequence_id": 3, "sequence_start": 1}, "non-bool"),
                    ({"sequence_id": 3, "sequence_start": True, "sequence_kind": "both"}, "kind"),
                    ({"sequence_id": 3, "sequence_kind": "cross"}, "kind on a step")):
        expect_error(one(p), 400, what)
    expect_error(one({}, {"Sequence-Id": "a/b"}), 400, "bad header id")
    # a type without a recurrent form names those that have one
    msg = expect_error(srv.infer("clustered", x, params={"sequence_id": 1, "sequence_start": True, "clusters": 2}), 400,
                       "clustered")
    check("causal_linear" in msg and "full" in msg, msg)
    # no config? the start says what is missing
    msg = expect_error(srv.infer("causal_linear", x, params={"sequence_id": 2, "sequence_start": True}), 400, "no config")
    check("query_dimensions" in msg, msg)
    # a start that fails starts nothing: the id is free
    expect_error(srv.infer("full", {"queries": x["queries"][:, :1]}, params={"sequence_id": "f1", "sequence_start": True}),
                 400, "start without keys")
    st, h, b = one({"sequence_id": "f1", "sequence_start": True, "sequence_end": True})
    check(st == 200, f"the id of a failed start is free: {st}")
    # the sequence endpoints
    expect_error(srv.request("GET", "/v2/models/full/sequences/nope"), 404, "export unknown")
    expect_error(srv.request("DELETE", "/v2/models/full/sequences/nope"), 404, "delete unknown")
    expect_error(srv.request("PUT", "/v2/models/full/sequences/p1", body=b"not safetensors",
                             headers={"Content-Type": "application/octet-stream"}), 400, "restore garbage")
    expect_error(srv.request("PUT", "/v2/models/full/sequences/p1", body=b""), 400, "restore nothing")
    expect_error(srv.request("GET", "/v2/models/nomodel/sequences/x"), 404, "unknown model")
    expect_error(srv.request("POST", "/v2/models/full/sequences/x"), 405, "POST")
    # an export restored into another type or config is refused
    one({"sequence_id": "e1", "sequence_start": True})
    st, h, state = srv.request("GET", "/v2/models/full/sequences/e1")
    check(st == 200, "export e1")
    msg = expect_error(srv.request("PUT", "/v2/models/local/sequences/e1", body=state), 400, "restore into local")
    check("full" in msg, msg)
    check(srv.request("DELETE", "/v2/models/full/sequences/e1")[0] == 200, "delete e1")


def _json_inputs(x, t0, T):
    return [{"name": k, "datatype": "FP32", "shape": [v.shape[0], T] + list(v.shape[2:]),
             "data": v[:, t0:t0 + T].ravel().tolist()} for k, v in x.items()]


@test
def sequence_limits_and_eviction():
    rng = np.random.default_rng(7)
    x = _qkv(rng, 1, 8, 1, 2)
    with Server("--max-sequences", "2", "--max-sequence-tokens", "5", "--sequence-evict-after", "0.4",
                "--sequence-idle-timeout", "1.5", "--drain-timeout", "2", tag="seqlim") as srv:
        step = lambda sid, t0, T, **p: _step(srv, "full", x, t0, T, {"sequence_id": sid, **p})  # noqa: E731
        check(step("a", 0, 3, sequence_start=True)[0] == 200, "a")
        msg = expect_error(step("a", 3, 3), 413, "longest sequence")
        check("--max-sequence-tokens" in msg and "3 tokens" in msg, msg)
        check(step("a", 3, 2)[0] == 200, "a up to the limit")
        expect_error(step("t", 0, 6, sequence_start=True), 413, "a start longer than the limit")
        check(step("b", 0, 1, sequence_start=True)[0] == 200, "b")
        st, h, b = step("c", 0, 1, sequence_start=True)
        msg = expect_error((st, h, b), 503, "count")
        check(h.get("retry-after") == "1" and "--max-sequences" in msg, f"{h} {msg}")
        time.sleep(0.5)  # a and b idle > 0.4 s: a start evicts the least recently used (a)
        check(step("c", 0, 1, sequence_start=True)[0] == 200, "c after eviction")
        msg = expect_error(step("a", 5, 1), 404, "evicted")
        check("evicted" in msg, msg)
        check(step("b", 1, 1)[0] == 200, "b survives")
        # the idle timeout
        time.sleep(2.0)
        msg = expect_error(step("b", 2, 1), 404, "idle")
        check("idle timeout" in msg, msg)
        st, body = srv.get_json("/v2")
        lim = body["limits"]
        check(lim["max_sequences"] == 2 and lim["max_sequence_tokens"] == 5 and lim["sequence_idle_timeout_s"] == 1.5
              and lim["sequence_evict_after_s"] == 0.4 and lim["sequence_memory_bytes"] == 1 << 30, f"limits {lim}")
        check("sequence" in body["extensions"] and "sequence(string_id)" in body["extensions"], "extensions")
        m = _metrics(srv)
        check(m['attnd_sequence_ends_total{reason="evicted"}'] == 1 and m['attnd_sequence_ends_total{reason="idle"}'] >= 2,
              f"ends {m}")
        check(m["attnd_sequences_live"] == 0 and m["attnd_sequence_state_bytes"] == 0, "nothing live")
    # the memory budget: one sequence of full holds its keys and values
    with Server("--sequence-memory", "2000", "--sequence-evict-after", "100", tag="seqmem") as srv:
        big = _qkv(rng, 1, 16, 2, 8)
        st, h, b = _step(srv, "full", big, 0, 16, {"sequence_id": "m1", "sequence_start": True})
        check(st == 200, f"m1: {st}")
        msg = expect_error(_step(srv, "full", big, 0, 1, {"sequence_id": "m2", "sequence_start": True}), 503, "budget")
        check("--sequence-memory" in msg, msg)
        msg = expect_error(_step(srv, "full", big, 0, 1, {"sequence_id": "m1"}), 503, "budget on a step")
        st, body = srv.get_json("/v2/models/full/sequences")
        check(st == 200 and [s["id"] for s in body["sequences"]] == ["m1"] and body["sequences"][0]["length"] == 16 and
              body["sequences"][0]["bytes"] >= 2000, f"list {body}")
        check(srv.request("DELETE", "/v2/models/full/sequences/m1")[0] == 200, "delete m1")
        check(_step(srv, "full", big, 0, 1, {"sequence_id": "m2", "sequence_start": True, "sequence_end": True})[0] == 200,
              "room after the delete")
    # A sequence is released before its answer goes out: a start sent on the
    # answer finds it idle (evictable at once), every time.  Released after
    # the answer, on another thread, a start could find it still held (503)
    # or stamped later than a newer one.
    with Server("--max-sequences", "1", "--sequence-evict-after", "0", "--inline-max-us", "0",
                "--drain-timeout", "2", tag="seqrel") as srv:
        for i in range(60):
            st, h, b = _step(srv, "full", x, 0, 1, {"sequence_id": f"r{i}", "sequence_start": True})
            check(st == 200, f"start r{i} on the answer to r{i - 1}: {st} {b}")
        msg = expect_error(_step(srv, "full", x, 1, 1, {"sequence_id": "r58"}), 404, "r58 evicted")
        check("evicted" in msg, msg)
        check(srv.request("DELETE", "/v2/models/full/sequences/r59")[0] == 200, "delete r59")
    with Server("--max-sequences", "0", tag="seqoff") as srv:
        msg = expect_error(_step(srv, "full", x, 0, 1, {"sequence_id": 1, "sequence_start": True}), 400, "off")
        check("--max-sequences 0" in msg, msg)


def _metrics(srv):
    st, h, b = srv.request("GET", "/metrics")
    out = {}
    for line in b.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


@test
def sequence_order_and_metrics():
    """Eight threads send one token each to one sequence at once: each is
    applied exactly once, one at a time (the lengths seen are 2..9 once
    each).  Then the counters and the list."""
    srv = SERVER["bseq"]
    rng = np.random.default_rng(8)
    x = _qkv(rng, 1, 9, 1, 2)
    before = _metrics(srv)
    check(_step(srv, "full", x, 0, 1, {"sequence_id": "ord", "sequence_start": True})[0] == 200, "start")
    lengths, errs = [], []

    def send(i):
        st, h, b = srv.post_json("/v2/models/full/infer", {"parameters": {"sequence_id": "ord"},
                                                          "inputs": _json_inputs(x, 1 + i, 1)})
        if st != 200:
            errs.append((st, b))
        else:
            lengths.append(json.loads(b)["parameters"]["sequence_length"])
    ths = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    check(not errs, f"errors {errs[:2]}")
    check(sorted(lengths) == list(range(2, 10)), f"lengths seen {sorted(lengths)}: not one at a time")
    # a request holds its sequence until its job is finished, just after the reply went out
    for _ in range(200):
        st, body = srv.get_json("/v2/models/full/sequences")
        entry = [s for s in body["sequences"] if s["id"] == "ord"]
        if entry and not entry[0]["busy"]:
            break
        time.sleep(0.01)
    check(entry and entry[0]["length"] == 9 and not entry[0]["busy"], f"list {entry}")
    st, h, b = srv.request("GET", "/v2/models/full/sequences/ord")
    check(st == 200 and h.get("sequence-id") == "ord", "export carries Sequence-Id")
    check(srv.request("DELETE", "/v2/models/full/sequences/ord")[0] == 200, "delete")
    after = _metrics(srv)
    check(after["attnd_sequence_tokens_total"] - before["attnd_sequence_tokens_total"] == 9, "tokens counted")
    check(after['attnd_sequence_ends_total{reason="deleted"}'] - before['attnd_sequence_ends_total{reason="deleted"}'] == 1,
          "deleted counted")
    check(after["attnd_sequences_started_total"] - before["attnd_sequences_started_total"] == 1, "started counted")
    check(srv.get_json("/v2/models/full")[1]["sequence_kinds"] == ["self", "cross"], "sequence_kinds")


@test
def short_requests_run_inline():
    """bseq runs short requests on the thread that decoded them (the default
    --inline-max-us), bseq2 never (--inline-max-us 0): the same sequence of
    single tokens, and the same one-shot requests, give the same bits on
    both, and only bseq counts inline executions."""
    a, b = SERVER["bseq"], SERVER["bseq2"]
    lab = 'model="causal_linear",version="1",protocol="http"'
    key = f"attnd_inference_exec_inline_count{{{lab}}}"
    ma, mb = _metrics(a), _metrics(b)
    rng = np.random.default_rng(21)
    x = _qkv(rng, 1, 40, 2, 4)
    params = {"query_dimensions": 4}
    outs = [_decode(srv, "causal_linear", x, [1] * 40, f"inline-{tag}", params=params)
            for srv, tag in ((a, "a"), (b, "b"))]
    check(np.array_equal(outs[0], outs[1]), "a sequence run inline differs from one run on the pool")
    ones = []
    for srv in (a, b):
        rows = []
        for _ in range(20):
            st, h, body = srv.infer("causal_linear", x, params=params, binary=True)
            check(st == 200, f"one-shot: {st}")
            rows.append(body["output"])
        check(all(np.array_equal(r, rows[0]) for r in rows), "repeated one-shot requests differ")
        ones.append(rows[0])
    check(np.array_equal(ones[0], ones[1]), "one-shot inline vs pool differ")
    na = _metrics(a).get(key, 0) - ma.get(key, 0)
    nb = _metrics(b).get(key, 0) - mb.get(key, 0)
    check(na >= 30, f"bseq ran {na} of 60 short requests inline")
    check(nb == 0, f"bseq2 (--inline-max-us 0) ran {nb} inline")
    check(b.get_json("/v2")[1]["limits"]["inline_max_us"] == 0, "inline_max_us in /v2 limits")


@test
def sequence_drain_on_sigterm():
    """SIGTERM: not ready at once, live sequences keep answering for the drain
    time, and the log counts the sequences lost at exit."""
    rng = np.random.default_rng(9)
    x = _qkv(rng, 1, 4, 1, 2)
    srv = Server("--drain-timeout", "3", tag="seqdrain")
    try:
        check(_step(srv, "full", x, 0, 1, {"sequence_id": "d1", "sequence_start": True})[0] == 200, "d1")
        check(_step(srv, "full", x, 0, 1, {"sequence_id": "d2", "sequence_start": True})[0] == 200, "d2")
        srv.signal()
        time.sleep(0.3)
        check(srv.request("GET", "/v2/health/ready")[0] == 400, "not ready while draining")
        st, h, b = _step(srv, "full", x, 1, 1, {"sequence_id": "d1", "sequence_end": True})
        check(st == 200, f"a live sequence still answers while draining: {st}")
        msg = expect_error(_step(srv, "full", x, 0, 1, {"sequence_id": "d3", "sequence_start": True}), 503, "new while draining")
        check("shutting down" in msg, msg)
        rc = srv.proc.wait(timeout=20)
        check(rc == 0, f"exit {rc}")
        srv.stopped = True
        srv.logf.close()
        check("1 sequences lost at exit" in srv.log(), srv.log()[-1500:])
    finally:
        srv.stop()

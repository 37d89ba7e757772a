"""Sequences (streaming sessions) against the live attnd: a prefill then single
tokens equal one causal forward of the whole sequence; export / restore; the
end of a sequence; cross sequences; the errors (400, 404, 409, 413, 503).

Pure Python (no numpy needed): tensors are flat lists with a shape, cut and
joined along axis 1 here."""

import random

import pytest

import attnd
from attnd import Tensor
from conftest import API_KEY, ADMIN_KEY, Attnd

N, H, E, D = 2, 2, 4, 3
TOL = 1e-5


def rand(shape, seed):
    r = random.Random(seed)
    n = 1
    for d in shape:
        n *= d
    return ([r.uniform(-1, 1) for _ in range(n)], list(shape))


def cut(t, a, b):
    """Tokens a..b (axis 1) of (flat, shape)."""
    flat, shape = t
    inner = 1
    for d in shape[2:]:
        inner *= d
    L = shape[1]
    out = []
    for n in range(shape[0]):
        out += flat[(n * L + a) * inner:(n * L + b) * inner]
    return (out, [shape[0], b - a] + shape[2:])


def join(parts):
    """Concatenation along axis 1 of (flat, shape) pieces."""
    shape0 = parts[0][1]
    inner = 1
    for d in shape0[2:]:
        inner *= d
    out = []
    for n in range(shape0[0]):
        for flat, shape in parts:
            out += flat[n * shape[1] * inner:(n + 1) * shape[1] * inner]
    return (out, [shape0[0], sum(p[1][1] for p in parts)] + shape0[2:])


def tensor(t):
    return Tensor(t[0], "FP32", shape=t[1])


def flat(value):
    """(flat floats, shape) of an output: a numpy array or a Tensor."""
    if isinstance(value, Tensor):
        return (list(value.data), list(value.shape))
    return (value.reshape(-1).tolist(), list(value.shape))


def assert_close(got, want, tol=TOL):
    assert got[1] == want[1], (got[1], want[1])
    worst = max(abs(a - b) for a, b in zip(got[0], want[0]))
    assert worst <= tol, "max |difference| %g > %g" % (worst, tol)


def qkv(L, seed, S=None):
    return (rand((N, L, H, E), seed), rand((N, S or L, H, E), seed + 1), rand((N, S or L, H, D), seed + 2))


def tokens(q, k, v, a, b):
    return {"queries": tensor(cut(q, a, b)), "keys": tensor(cut(k, a, b)), "values": tensor(cut(v, a, b))}


def causal_reference(client, model, q, k, v, config):
    """One ordinary infer of the whole sequence with a causal mask."""
    L = q[1][1]
    ins = {"queries": tensor(q), "keys": tensor(k), "values": tensor(v)}
    if model == "full":  # causal_linear is causal by itself
        ins["attn_mask"] = Tensor([j <= i for i in range(L) for j in range(L)], "BOOL", shape=[L, L])
    return flat(client.infer(model, ins, parameters=config)["output"])


CASES = [("full", None), ("causal_linear", {"query_dimensions": E})]


@pytest.mark.parametrize("model,config", CASES, ids=[c[0] for c in CASES])
def test_prefill_then_single_tokens_equal_one_causal_forward(client, model, config):
    L, prefill = 9, 4
    q, k, v = qkv(L, 11)
    want = causal_reference(client, model, q, k, v, config)
    seq = client.sequence(model, config=config)
    assert isinstance(seq.id, int) and 0 < seq.id < 1 << 63
    parts = []
    bounds = [(0, prefill)] + [(t, t + 1) for t in range(prefill, L)]
    for i, (a, b) in enumerate(bounds):
        r = seq.step(tokens(q, k, v, a, b), end=(i == len(bounds) - 1))
        assert r.parameters["sequence_id"] == seq.id
        assert r.parameters["sequence_length"] == b == seq.length
        parts.append(flat(r["output"]))
    assert r.parameters.get("sequence_end") is True and seq.ended
    assert_close(join(parts), want)


@pytest.mark.parametrize("model,config", CASES, ids=[c[0] for c in CASES])
def test_export_restore_continues_identically(client, model, config):
    L, k_at = 8, 5
    q, k, v = qkv(L, 21)
    want = causal_reference(client, model, q, k, v, config)
    a = client.sequence(model, id="exp-%s-%d" % (model, random.getrandbits(32)), config=config)
    parts = [flat(a.step(tokens(q, k, v, 0, 3))["output"])]
    for t in range(3, k_at):
        parts.append(flat(a.step(tokens(q, k, v, t, t + 1))["output"]))
    state = a.export()
    assert isinstance(state, bytes) and len(state) > 8
    b = client.restore_sequence(model, attnd.sequence.new_sequence_id(), state)
    assert b.started and not b.ended and b.length == k_at and b.id != a.id
    listed = {str(s["id"]): s for s in client.list_sequences(model)}
    assert listed[str(a.id)]["length"] == k_at and listed[str(b.id)]["length"] == k_at
    pa, pb = list(parts), list(parts)
    for t in range(k_at, L):
        ra = flat(a.step(tokens(q, k, v, t, t + 1))["output"])
        rb = flat(b.step(tokens(q, k, v, t, t + 1))["output"])
        assert ra == rb, "token %d: the restored sequence differs from the original" % t
        pa.append(ra)
        pb.append(rb)
    assert_close(join(pa), want)
    assert a.length == b.length == L
    a.end()
    b.end()
    listed = {str(s["id"]) for s in client.list_sequences(model)}
    assert str(a.id) not in listed and str(b.id) not in listed


def test_step_after_end_is_404_with_the_reason(client):
    q, k, v = qkv(3, 31)
    seq = client.sequence("full", id="ended-%d" % random.getrandbits(40))
    seq.step(tokens(q, k, v, 0, 2), end=True)
    assert seq.ended
    with pytest.raises(attnd.SequenceNotFoundError) as ei:
        seq.step(tokens(q, k, v, 2, 3))
    e = ei.value
    assert isinstance(e, attnd.ModelNotFoundError) and e.status == 404
    assert str(seq.id) in e.message and "sequence_end" in e.message, e.message
    # ended by DELETE
    seq2 = client.sequence("full")
    seq2.step(tokens(q, k, v, 0, 1))
    seq2.end()
    with pytest.raises(attnd.SequenceNotFoundError) as ei:
        seq2.step(tokens(q, k, v, 1, 2))
    assert ei.value.status == 404 and "delete" in ei.value.message, ei.value.message
    # never started
    with pytest.raises(attnd.SequenceNotFoundError) as ei:
        client.export_sequence("full", "never-started-here")
    assert "never started" in ei.value.message, ei.value.message
    with pytest.raises(attnd.SequenceNotFoundError):
        client.delete_sequence("full", "never-started-here")


def test_cross_sequence_on_full(client):
    L, S = 6, 7
    q, k, v = qkv(L, 41, S=S)
    want = flat(client.infer("full", {"queries": tensor(q), "keys": tensor(k), "values": tensor(v)})["output"])
    seq = client.sequence("full", kind="cross")
    parts = [flat(seq.step({"queries": tensor(cut(q, 0, 2)), "keys": tensor(k), "values": tensor(v)})["output"])]
    for t in range(2, L):
        r = seq.step({"queries": tensor(cut(q, t, t + 1))}, end=(t == L - 1))
        parts.append(flat(r["output"]))
    assert_close(join(parts), want)


def test_string_and_integer_ids(client):
    q, k, v = qkv(2, 51)
    for sid in ("user-7.a:b~c", (1 << 63) - 5):
        with client.sequence("full", id=sid) as seq:
            r = seq.step(tokens(q, k, v, 0, 1))
            assert r.parameters["sequence_id"] == sid
        assert seq.ended  # the context manager deleted it
        with pytest.raises(attnd.SequenceNotFoundError):
            client.export_sequence("full", sid)
    for bad in ("", "has space", "x" * 129, 0, -1, 1 << 64, True, 1.5):
        with pytest.raises((ValueError, TypeError)):
            client.sequence("full", id=bad)
    with pytest.raises(ValueError):
        client.sequence("full", kind="sideways")


def test_start_on_a_live_id_is_409(client):
    q, k, v = qkv(2, 61)
    a = client.sequence("full", id="dup-%d" % random.getrandbits(40))
    a.step(tokens(q, k, v, 0, 1))
    with pytest.raises(attnd.ConflictError) as ei:
        client.sequence("full", id=a.id).step(tokens(q, k, v, 0, 1))
    assert ei.value.status == 409 and "live" in ei.value.message
    with pytest.raises(attnd.ConflictError):
        client.restore_sequence("full", a.id, a.export())
    a.end()


def test_model_without_sequences_is_400(client):
    kinds = client.metadata("exact_topk").get("sequence_kinds")
    assert kinds == []
    q, k, v = qkv(2, 71)
    with pytest.raises(attnd.BadRequestError) as ei:
        client.sequence("exact_topk").step(tokens(q, k, v, 0, 2))
    assert "types that have them" in ei.value.message and "full" in ei.value.message
    # a config on a later step
    seq = client.sequence("causal_linear", config={"query_dimensions": E})
    seq.step(tokens(q, k, v, 0, 1))
    with pytest.raises(attnd.BadRequestError):
        seq.step(tokens(q, k, v, 1, 2), parameters={"query_dimensions": E})
    seq.end()


@pytest.fixture(scope="module")
def small():
    """An attnd with room for one sequence of at most 4 tokens."""
    s = Attnd("--max-sequences", "1", "--max-sequence-tokens", "4", "--sequence-evict-after", "60")
    yield s
    s.close()


def test_longest_sequence_is_413(small):
    c = attnd.Client(small.url, retries=0)
    q, k, v = qkv(6, 81)
    seq = c.sequence("full")
    seq.step(tokens(q, k, v, 0, 3))
    with pytest.raises(attnd.PayloadTooLargeError) as ei:
        seq.step(tokens(q, k, v, 3, 5))
    assert ei.value.status == 413 and "max-sequence-tokens" in ei.value.message
    seq.step(tokens(q, k, v, 3, 4), end=True)  # the refused step left the sequence as it was
    assert seq.length == 4


def test_no_room_is_503_with_retry_after(small):
    c = attnd.Client(small.url, retries=0)
    q, k, v = qkv(2, 91)
    a = c.sequence("full")
    a.step(tokens(q, k, v, 0, 1))
    with pytest.raises(attnd.ServiceUnavailableError) as ei:
        c.sequence("full").step(tokens(q, k, v, 0, 1))
    assert ei.value.status == 503 and "max-sequences" in ei.value.message
    assert ei.value.retry_after is not None and ei.value.retry_after >= 0
    a.end()
    with c.sequence("full") as b:  # room again
        b.step(tokens(q, k, v, 0, 1))


def test_every_request_names_the_sequence_in_the_header(client):
    sent = []
    real = client._transport.request

    def spy(method, path, body, headers, timeout):
        sent.append((method, path, dict(headers)))
        return real(method, path, body, headers, timeout)

    client._transport.request = spy
    q, k, v = qkv(2, 101)
    seq = client.sequence("full")
    seq.step(tokens(q, k, v, 0, 1))
    state = seq.export()
    b = client.restore_sequence("full", "hdr-%d" % random.getrandbits(40), state)
    b.step(tokens(q, k, v, 1, 2), end=True)
    seq.end()
    assert [m for m, _, _ in sent] == ["POST", "GET", "PUT", "POST", "DELETE"]
    want = [seq.id, seq.id, b.id, b.id, seq.id]
    for (method, path, h), sid in zip(sent, want):
        assert h.get("Sequence-Id") == str(sid), (method, path, h)


def test_a_stale_copy_refuses_the_step(client):
    """The client sends the length it counts (attnd_expect_length): a copy with
    another length, as after a failover, answers 409 and applies nothing."""
    def tok(a, b):  # tokens a..b-1 of a (1, 4, 1, 2) sequence, without numpy
        return Tensor([(2 * t + k) / 8 for t in range(a, b) for k in range(2)], "FP32", shape=[1, b - a, 1, 2])

    def step(a, b):
        x = tok(a, b)
        return seq.step({"queries": x, "keys": x, "values": x})
    seq = client.sequence("full")
    step(0, 2)
    old = seq.export()
    step(2, 3)
    # the server's copy goes back to 2 tokens; this object counts 3
    client.delete_sequence("full", seq.id)
    client.restore_sequence("full", seq.id, old)
    with pytest.raises(attnd.ConflictError) as ei:
        step(3, 4)
    assert "stale" in ei.value.message
    client.delete_sequence("full", seq.id)

"""The optional attention outputs over HTTP: every golden case with maps
(case.json `extra_outputs`) asked for `attention` (binary and JSON) gives
exactly what `attn run --output-attention` writes, in the order the request
names the outputs; a map past --max-attention-elements gets 413 with its size;
unknown names, duplicates and maps in a sequence step get 400; a request that
does not ask gets only `output`; model metadata lists the maps."""
import json
import os
import subprocess

import numpy as np

from harness import CTX, Server, add_test, check, expect_error, same_bits, st_read, test

SERVER = {}  # "golden": main.py's shared server


def _request(srv, model, inputs, outputs, binary, params=None):
    """POST with `outputs` named; returns (status, headers, {name: array} or body, names in reply order)."""
    header = {"inputs": [], "outputs": [{"name": n, "parameters": {"binary_data": binary}} for n in outputs]}
    if params:
        header["parameters"] = params
    blobs = []
    dt = {np.dtype(np.float32): "FP32", np.dtype(np.bool_): "BOOL", np.dtype(np.int64): "INT64", np.dtype(np.int32): "INT32"}
    for k, a in inputs.items():
        a = np.ascontiguousarray(a)
        if binary:
            header["inputs"].append({"name": k, "datatype": dt[a.dtype], "shape": list(a.shape),
                                     "parameters": {"binary_data_size": a.nbytes}})
            blobs.append(a.tobytes())
        else:
            header["inputs"].append({"name": k, "datatype": dt[a.dtype], "shape": list(a.shape), "data": a.ravel().tolist()})
    h = json.dumps(header).encode()
    hdrs = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(h))} if binary else \
        {"Content-Type": "application/json"}
    st, rh, b = srv.request("POST", f"/v2/models/{model}/infer", body=h + b"".join(blobs), headers=hdrs)
    if st != 200:
        return st, rh, b, []
    n = int(rh["inference-header-content-length"]) if "inference-header-content-length" in rh else len(b)
    meta = json.loads(b[:n])
    out, off = {}, n
    for o in meta["outputs"]:
        if "data" in o:
            out[o["name"]] = np.array(o["data"], dtype=np.float32 if o["datatype"] == "FP32" else None).reshape(o["shape"])
        else:
            size = o["parameters"]["binary_data_size"]
            out[o["name"]] = np.frombuffer(b[off:off + size], dtype=np.float32).reshape(o["shape"])
            off += size
    check(off == len(b), "binary data does not add up to the body")
    return st, rh, out, [o["name"] for o in meta["outputs"]]


def _maps_case(case, extra):
    def t():
        d = os.path.join(CTX.work, "maps", case.id)
        os.makedirs(d, exist_ok=True)
        want_file = os.path.join(d, "out.safetensors")
        subprocess.run([CTX.attn, "run", "--output-attention", "--model", case.model_dir, "--inputs",
                        os.path.join(os.path.dirname(case.model_dir), "inputs.safetensors"), "--output", want_file],
                       check=True, capture_output=True)
        want = st_read(want_file)
        maps = sorted(k for k in want if k != "output")
        check(maps and all(k.startswith("attention") for k in maps), f"{case.id}: attn run wrote {sorted(want)}")
        for binary in (True, False):
            st, h, got, order = _request(SERVER["golden"], case.id, case.inputs, ["attention", "output"], binary)
            check(st == 200, f"{case.id}: {st} {got[:300] if isinstance(got, bytes) else ''!r}")
            check(order[-1] == "output" and sorted(order[:-1]) == maps, f"{case.id}: outputs in the reply {order}")
            for k in maps + ["output"]:
                check(got[k].shape == want[k].shape, f"{case.id} {k}: shape {got[k].shape} vs {want[k].shape}")
                check(same_bits(got[k], want[k], nan_any=not binary),
                      f"{case.id} {k} ({'binary' if binary else 'JSON'}): differs from attn run --output-attention")
        # one map by its own name ("attention" alone stands for every map)
        name = maps[-1]
        st, h, got, order = _request(SERVER["golden"], case.id, case.inputs, [name], True)
        check(st == 200 and order == ([name] if name != "attention" else maps) and same_bits(got[name], want[name]),
              f"{case.id}: {name} alone gave {order}")
    return t


def register(cases):
    for c in cases:
        with open(os.path.join(CTX.cases, c.id, "case.json")) as f:
            extra = json.load(f).get("extra_outputs")
        if extra:
            add_test(f"attention_output[{c.id}]", _maps_case(c, extra))


@test
def attention_output_errors_and_limits():
    rng = np.random.default_rng(3)
    x = {k: rng.standard_normal((1, 6, 2, 4)).astype(np.float32) for k in ("queries", "keys", "values")}
    with Server("--max-attention-elements", "50", tag="maps") as srv:
        # without asking: only the output, as before
        st, h, got, order = _request(srv, "full", x, [], True)
        check(st == 200 and order == ["output"], f"no outputs named: {order}")
        # 2*6*6 = 72 > 50
        st, h, b, _ = _request(srv, "full", x, ["output", "attention"], True)
        msg = expect_error((st, h, b), 413, "map too large")
        check("72 elements" in msg and "--max-attention-elements" in msg, msg)
        small = {k: v[:, :4] for k, v in x.items()}  # 2*4*4 = 32
        st, h, got, order = _request(srv, "full", small, ["attention"], False)
        check(st == 200 and order == ["attention"], f"map alone: {st} {order}")
        check(np.allclose(got["attention"].sum(-1), 1, atol=1e-6), "rows sum to 1")
        msg = expect_error(_request(srv, "full", small, ["weights"], True)[:3], 400, "unknown output")
        check("outputs: output, attention" in msg, msg)
        expect_error(_request(srv, "full", small, ["attention", "attention"], True)[:3], 400, "twice")
        msg = expect_error(_request(srv, "full", small, ["attention"], True,
                                    params={"sequence_id": 5, "sequence_start": True})[:3], 400, "maps in a sequence")
        check("sequence" in msg, msg)
        # FP16 maps
        header = {"inputs": [{"name": k, "datatype": "FP32", "shape": list(v.shape), "data": v.ravel().tolist()}
                             for k, v in small.items()],
                  "outputs": [{"name": "attention", "parameters": {"datatype": "FP16", "binary_data": True}}]}
        st, h, b = srv.request("POST", "/v2/models/full/infer", body=json.dumps(header).encode())
        check(st == 200, f"FP16 map: {st} {b[:200]!r}")
        n = int(h["inference-header-content-length"])
        meta = json.loads(b[:n])
        check(meta["outputs"][0]["datatype"] == "FP16" and len(b) - n == 2 * 32, f"FP16 map: {meta}")
        st, md = srv.get_json("/v2/models/full")
        outs = {o["name"]: o for o in md["outputs"]}
        check(list(outs) == ["output", "attention"] and outs["attention"]["optional"] and outs["attention"]["doc"] and
              outs["attention"]["dims"] == "N,H,L,S", f"metadata outputs {md['outputs']}")
        st, body = srv.get_json("/v2")
        check(body["limits"]["max_attention_elements"] == 50, "limit in /v2")

"""The gRPC front-end (GRPCInferenceService) driven by a real gRPC client:
Python grpcio, with stubs generated at test time by grpc_tools.protoc from
proto/grpc/grpc_service.proto into the run's temporary folder.

Every RPC; raw and typed contents; FP16/BF16; ModelStreamInfer (order,
errors inline, a sequence on a stream, a stream ended by its client ends
nothing else); errors mapped to gRPC codes; grpc-timeout; auth in metadata;
the queue's RESOURCE_EXHAUSTED with its retry hint; drain on SIGTERM;
metrics and the log line; and every golden case over gRPC giving the same
bytes as over REST."""
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from harness import CTX, Server, add_test, check, free_port, same_bits

SERVER = {}  # "grpc": the shared server with the golden repository and a gRPC port
PB = {}


def available():
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
        return True
    except ImportError:
        return False


def stubs():
    """(grpc, pb2, pb2_grpc), generated once per run."""
    if not PB:
        out = os.path.join(CTX.work, "grpc_stubs")
        os.makedirs(out, exist_ok=True)
        proto = os.path.join(CTX.root, "proto", "grpc")
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{proto}", f"--python_out={out}",
                        f"--grpc_python_out={out}", os.path.join(proto, "grpc_service.proto")], check=True)
        sys.path.insert(0, out)
        import grpc
        PB["grpc"] = grpc
        PB["pb"] = importlib.import_module("grpc_service_pb2")
        PB["pg"] = importlib.import_module("grpc_service_pb2_grpc")
    return PB["grpc"], PB["pb"], PB["pg"]


class GServer(Server):
    """An attnd with its gRPC listener on a free port."""

    def __init__(self, *args, **kw):
        self.gport = free_port()
        super().__init__("--grpc-port", str(self.gport), *args, **kw)
        self._stub = None

    def stub(self, fresh=False):
        grpc, pb, pg = stubs()
        if fresh or self._stub is None:
            ch = grpc.insecure_channel(f"127.0.0.1:{self.gport}",
                                       options=[("grpc.max_receive_message_length", 256 << 20),
                                                ("grpc.max_send_message_length", 256 << 20)])
            s = pg.GRPCInferenceServiceStub(ch)
            if fresh:
                return s
            self._stub = s
        return self._stub


def _srv():
    if "grpc" not in SERVER:
        SERVER["grpc"] = GServer("--model-repository", CTX.repo, tag="grpc")
    return SERVER["grpc"]


DT = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64", np.dtype(np.int32): "INT32",
      np.dtype(np.bool_): "BOOL"}
NP = {"FP32": np.float32, "INT64": np.int64, "INT32": np.int32, "BOOL": np.bool_, "FP16": np.float16}


def param(v):
    _, pb, _ = stubs()
    if isinstance(v, bool):
        return pb.InferParameter(bool_param=v)
    if isinstance(v, int):
        return pb.InferParameter(int64_param=v)
    if isinstance(v, float):
        return pb.InferParameter(double_param=v)
    return pb.InferParameter(string_param=v)


def request(model, inputs, raw=True, params=None, outputs=None, dtypes=None, rid=""):
    """A ModelInferRequest: inputs {name: array}; raw or typed contents."""
    _, pb, _ = stubs()
    r = pb.ModelInferRequest(model_name=model, id=rid)
    for n, a in inputs.items():
        dt = (dtypes or {}).get(n) or DT[a.dtype]
        t = r.inputs.add(name=n, datatype=dt, shape=list(a.shape))
        if raw:
            r.raw_input_contents.append(np.ascontiguousarray(a).tobytes())
        elif dt == "FP32":
            t.contents.fp32_contents.extend(a.ravel().tolist())
        elif dt == "INT64":
            t.contents.int64_contents.extend(a.ravel().tolist())
        elif dt == "INT32":
            t.contents.int_contents.extend(a.ravel().tolist())
        elif dt == "BOOL":
            t.contents.bool_contents.extend(a.ravel().tolist())
    for k, v in (params or {}).items():
        r.parameters[k].CopyFrom(param(v))
    for o in outputs or []:
        oo = r.outputs.add(name=o["name"])
        for k, v in (o.get("parameters") or {}).items():
            oo.parameters[k].CopyFrom(param(v))
    return r


def outputs_of(resp):
    """{name: array} from a ModelInferResponse (raw or typed)."""
    out = {}
    for i, o in enumerate(resp.outputs):
        if resp.raw_output_contents:
            dt = {"BF16": np.uint16}.get(o.datatype, NP.get(o.datatype))
            out[o.name] = np.frombuffer(resp.raw_output_contents[i], dtype=dt).reshape(list(o.shape))
        else:
            c = o.contents
            vals = {"FP32": c.fp32_contents, "INT64": c.int64_contents, "INT32": c.int_contents,
                    "BOOL": c.bool_contents}[o.datatype]
            out[o.name] = np.array(vals, dtype=NP[o.datatype]).reshape(list(o.shape))
    return out


def expect_code(fn, code, what, contains=""):
    grpc, _, _ = stubs()
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == getattr(grpc.StatusCode, code), f"{what}: expected {code}, got {e.code()}: {e.details()}")
        check(contains in (e.details() or ""), f"{what}: message {e.details()!r} lacks {contains!r}")
        return e
    raise AssertionError(f"{what}: expected {code}, got success")


# ---- every golden case: the same bytes as REST -----------------------------------


def _golden_case(case):
    def t():
        s = _srv()
        rest = SERVER["golden"]
        st, h, body = rest.infer(case.id, case.inputs, binary=True)
        check(st == 200, f"REST: {st}")
        resp = s.stub().ModelInfer(request(case.id, case.inputs))
        got = outputs_of(resp)["output"]
        check(np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(body["output"]).tobytes(),
              "raw_output_contents differ from REST's binary output")
        check(same_bits(got, case.expected), "differs from attn run")
        # typed contents both ways: the same numbers
        resp = s.stub().ModelInfer(request(case.id, case.inputs, raw=False, params={"binary_data_output": False}))
        check(not resp.raw_output_contents, "typed request asked for typed outputs")
        check(same_bits(outputs_of(resp)["output"], case.expected), "typed contents differ from attn run")
    return t


def register(cases):
    if not available():
        print("  skip gRPC tests: python3-grpcio / python3-grpc-tools are missing (make test-deps)")
        return
    for c in cases:
        add_test(f"grpc_golden[{c.id}]", _golden_case(c))
    for name, fn in _TESTS:
        add_test(name, fn)


_TESTS = []


def gtest(fn):
    _TESTS.append((fn.__name__, fn))
    return fn


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _qkv(seed=0, N=1, L=5, S=6, H=2, E=4, D=3):
    rng = np.random.default_rng(seed)
    return {"queries": _rand(rng, N, L, H, E), "keys": _rand(rng, N, S, H, E), "values": _rand(rng, N, S, H, D)}


# ---- the small RPCs ---------------------------------------------------------------


@gtest
def grpc_health_and_metadata():
    s = _srv()
    _, pb, _ = stubs()
    st = s.stub()
    check(st.ServerLive(pb.ServerLiveRequest()).live, "live")
    check(st.ServerReady(pb.ServerReadyRequest()).ready, "ready")
    m = st.ServerMetadata(pb.ServerMetadataRequest())
    rest = json.loads(SERVER["golden"].request("GET", "/v2")[2])
    check(m.name == rest["name"] and m.version == rest["version"], f"server metadata {m.name} {m.version}")
    check(list(m.extensions) == rest["extensions"], f"extensions {list(m.extensions)} vs {rest['extensions']}")
    case = CTX.golden_cases[0]
    mm = st.ModelMetadata(pb.ModelMetadataRequest(name=case.id))
    rm = json.loads(SERVER["golden"].request("GET", f"/v2/models/{case.id}")[2])
    check(mm.name == case.id and list(mm.versions) == ["1"] and mm.platform == rm["platform"], "model metadata")
    check([(i.name, i.datatype, list(i.shape)) for i in mm.inputs] ==
          [(i["name"], i["datatype"], i["shape"]) for i in rm["inputs"]], "inputs as REST lists them")
    check([o.name for o in mm.outputs] == [o["name"] for o in rm["outputs"]], "outputs as REST lists them")
    check(st.ModelMetadata(pb.ModelMetadataRequest(name=case.id, version="1")).name == case.id, "version 1")
    check(st.ModelReady(pb.ModelReadyRequest(name=case.id)).ready, "model ready")
    check(not st.ModelReady(pb.ModelReadyRequest(name="no_such_model")).ready, "unknown model: not ready")
    expect_code(lambda: st.ModelMetadata(pb.ModelMetadataRequest(name="no_such_model")), "NOT_FOUND", "unknown model")
    expect_code(lambda: st.ModelMetadata(pb.ModelMetadataRequest(name=case.id, version="2")), "NOT_FOUND",
                "version 2", "only 1")
    expect_code(lambda: st.ModelReady(pb.ModelReadyRequest(name=case.id, version="2")), "NOT_FOUND", "ready v2")
    expect_code(lambda: st.ModelMetadata(pb.ModelMetadataRequest(name="../x")), "NOT_FOUND", "bad name")
    # ModelConfig (Triton's model configuration): the same inputs and outputs, enum datatypes
    for cid in (case.id, "full"):
        rm = json.loads(SERVER["golden"].request("GET", f"/v2/models/{cid}")[2])
        mc = st.ModelConfig(pb.ModelConfigRequest(name=cid)).config
        check(mc.name == rm["name"] and mc.platform == rm["platform"] and mc.backend == "attnd" and
              mc.max_batch_size == 0, f"{cid}: model config {mc.name} {mc.platform} {mc.backend}")
        check([(i.name, pb.DataType.Name(i.data_type), list(i.dims), i.optional) for i in mc.input] ==
              [(i["name"], "TYPE_" + i["datatype"], i["shape"], bool(i.get("optional"))) for i in rm["inputs"]],
              f"{cid}: config inputs {mc.input}")
        check([(o.name, pb.DataType.Name(o.data_type), list(o.dims)) for o in mc.output] ==
              [(o["name"], "TYPE_" + o["datatype"], o["shape"]) for o in rm["outputs"]], f"{cid}: config outputs")
    expect_code(lambda: st.ModelConfig(pb.ModelConfigRequest(name="no_such_model")), "NOT_FOUND", "config: unknown")
    expect_code(lambda: st.ModelConfig(pb.ModelConfigRequest(name=case.id, version="2")), "NOT_FOUND", "config v2")


@gtest
def grpc_repository():
    _, pb, _ = stubs()
    case = next(c for c in CTX.golden_cases if os.path.exists(os.path.join(c.model_dir, "weights.safetensors")))
    repo = os.path.join(CTX.work, "grpc_repo")
    os.makedirs(repo, exist_ok=True)
    with GServer("--model-repository", repo, tag="grpc_repo") as s:
        st = s.stub()
        idx = st.RepositoryIndex(pb.RepositoryIndexRequest())
        rest = json.loads(s.request("POST", "/v2/repository/index")[2])
        check([(m.name, m.state) for m in idx.models] == [(m["name"], m["state"]) for m in rest], "index as REST's")
        with open(os.path.join(case.model_dir, "config.json")) as f:
            cfg = f.read()
        with open(os.path.join(case.model_dir, "weights.safetensors"), "rb") as f:
            weights = f.read()
        req = pb.RepositoryModelLoadRequest(model_name="loaded")
        req.parameters["config"].string_param = cfg
        req.parameters["file:weights.safetensors"].bytes_param = weights
        st.RepositoryModelLoad(req)
        check(os.path.exists(os.path.join(repo, "loaded", "weights.safetensors")), "the load wrote the folder")
        got = outputs_of(st.ModelInfer(request("loaded", case.inputs)))["output"]
        check(same_bits(got, case.expected), "the loaded model computes the case")
        ready = st.RepositoryIndex(pb.RepositoryIndexRequest(ready=True))
        check("loaded" in [m.name for m in ready.models], "index ready=true lists it")
        st.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="loaded"))
        expect_code(lambda: st.ModelInfer(request("loaded", case.inputs)), "NOT_FOUND", "after unload")
        st.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="loaded"))  # from the folder again
        check(st.ModelReady(pb.ModelReadyRequest(name="loaded")).ready, "reloaded from its folder")
        bad = pb.RepositoryModelLoadRequest(model_name="broken")
        bad.parameters["config"].string_param = '{"type": "no_such_type", "config": {}}'
        expect_code(lambda: st.RepositoryModelLoad(bad), "INVALID_ARGUMENT", "bad config")
        w_only = pb.RepositoryModelLoadRequest(model_name="w")
        w_only.parameters["file:weights.safetensors"].bytes_param = weights
        expect_code(lambda: st.RepositoryModelLoad(w_only), "INVALID_ARGUMENT", "weights without config")
        expect_code(lambda: st.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="bad/name")),
                    "INVALID_ARGUMENT", "bad name")
        expect_code(lambda: st.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="full")),
                    "INVALID_ARGUMENT", "unload a built-in")
        expect_code(lambda: st.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="nothing_here")),
                    "NOT_FOUND", "unload unknown")
    with GServer("--model-repository", repo, "--model-control-mode", "none", tag="grpc_none") as s:
        expect_code(lambda: s.stub().RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="loaded")),
                    "INVALID_ARGUMENT", "load in mode none")


# ---- inference ----------------------------------------------------------------------


@gtest
def grpc_infer_contents_and_errors():
    s = _srv()
    st = s.stub()
    x = _qkv()
    r_raw = outputs_of(st.ModelInfer(request("full", x)))["output"]
    r_typed = outputs_of(st.ModelInfer(request("full", x, raw=False)))["output"]
    check(same_bits(r_raw, r_typed), "raw and typed inputs agree")
    stb, h, body = SERVER["golden"].infer("full", x, binary=True)
    check(same_bits(r_raw, body["output"]), "the same as REST")
    resp = st.ModelInfer(request("full", x, rid="req-7"))
    check(resp.id == "req-7" and resp.model_name == "full" and resp.model_version == "1", "id, name, version")
    # masks and lengths: BOOL and INT64 typed
    rng = np.random.default_rng(3)
    xm = dict(x, attn_mask=np.tril(np.ones((5, 6), bool)), key_lengths=np.array([4], np.int64))
    a = outputs_of(st.ModelInfer(request("full", xm)))["output"]
    b = outputs_of(st.ModelInfer(request("full", xm, raw=False)))["output"]
    check(same_bits(a, b, nan_any=True), "BOOL/INT64 typed equal raw")
    # INT32 lengths where the model takes INT64
    xi = dict(x, key_lengths=np.array([4], np.int32))
    c = outputs_of(st.ModelInfer(request("full", xi, raw=False)))["output"]
    d = outputs_of(st.ModelInfer(request("full", dict(x, key_lengths=np.array([4], np.int64)))))["output"]
    check(same_bits(c, d, nan_any=True), "INT32 lengths")
    # built-in config from parameters, both ways
    p1 = outputs_of(st.ModelInfer(request("full", x, params={"softmax_temp": 0.25})))["output"]
    p2 = outputs_of(st.ModelInfer(request("full", x, params={"config": json.dumps({"softmax_temp": 0.25})})))["output"]
    check(same_bits(p1, p2) and not same_bits(p1, r_raw), "config from parameters")
    # errors, as REST's statuses
    E = lambda r, code, what, s_="": expect_code(lambda: st.ModelInfer(r), code, what, s_)  # noqa: E731
    E(request("no_such_model", x), "NOT_FOUND", "unknown model")
    E(request("full", {"queries": x["queries"]}), "INVALID_ARGUMENT", "missing input", "missing input 'keys'")
    E(request("full", dict(x, bogus=x["keys"])), "INVALID_ARGUMENT", "unknown input", "no input 'bogus'")
    bad = request("full", x)
    bad.raw_input_contents[0] = bad.raw_input_contents[0][:-4]
    E(bad, "INVALID_ARGUMENT", "short raw", "raw_input_contents holds")
    bad = request("full", x)
    del bad.raw_input_contents[2]
    E(bad, "INVALID_ARGUMENT", "raw count", "raw_input_contents has 2 entries for 3 inputs")
    bad = request("full", x, raw=False)
    bad.inputs[0].contents.fp32_contents.append(1.0)
    E(bad, "INVALID_ARGUMENT", "typed count", "contents hold")
    bad = request("full", x, raw=False)
    bad.inputs[0].contents.int64_contents.append(1)
    E(bad, "INVALID_ARGUMENT", "wrong typed field", "int64_contents")
    bad = request("full", x, raw=False, dtypes={"queries": "FP16"})
    E(bad, "INVALID_ARGUMENT", "typed FP16", "raw_input_contents")
    bad = request("full", x, dtypes={"queries": "FP64"})
    E(bad, "INVALID_ARGUMENT", "FP64", "not supported")
    nan = dict(x, queries=np.full_like(x["queries"], np.nan))
    E(request("full", nan), "INVALID_ARGUMENT", "NaN", "not finite")
    E(request("full", x, params={"sequence_id": 1, "sequence_start": "yes"}), "INVALID_ARGUMENT", "bad sequence_start")
    E(request("full", x, outputs=[{"name": "nope"}]), "INVALID_ARGUMENT", "unknown output")
    E(request(CTX.golden_cases[0].id, CTX.golden_cases[0].inputs, params={"softmax_temp": 1.0}),
      "INVALID_ARGUMENT", "config on a repository model", "fixed config")
    r = request("full", x)
    r.model_version = "3"
    E(r, "NOT_FOUND", "version 3")
    # a message that is not a ModelInferRequest
    grpc, pb, _ = stubs()
    ch = grpc.insecure_channel(f"127.0.0.1:{s.gport}")
    raw_call = ch.unary_unary("/inference.GRPCInferenceService/ModelInfer", request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
    expect_code(lambda: raw_call(b"\xff\xff\xff\xff"), "INVALID_ARGUMENT", "garbage message", "not a valid")
    unknown = ch.unary_unary("/inference.GRPCInferenceService/ModelStatistics", request_serializer=lambda b: b,
                             response_deserializer=lambda b: b)
    expect_code(lambda: unknown(b""), "UNIMPLEMENTED", "an RPC attnd does not serve")


@gtest
def grpc_compressed_messages():
    """Request messages compressed with gzip or deflate (grpcio's channel
    compression) give the same bytes as identity ones, raw and typed."""
    grpc, pb, pg = stubs()
    s = _srv()
    rng = np.random.default_rng(31)
    x = {k: rng.standard_normal((1, 24, 2, 8)).astype(np.float32) for k in ("queries", "keys", "values")}
    want = outputs_of(s.stub().ModelInfer(request("full", x)))["output"]
    for comp in (grpc.Compression.Gzip, grpc.Compression.Deflate):
        ch = grpc.insecure_channel(f"127.0.0.1:{s.gport}", compression=comp)
        st = pg.GRPCInferenceServiceStub(ch)
        for raw in (True, False):
            got = outputs_of(st.ModelInfer(request("full", x, raw=raw)))["output"]
            check(same_bits(got, want), f"{comp} raw={raw}: differs from the identity request")
        check(st.ServerLive(pb.ServerLiveRequest()).live, f"{comp}: ServerLive")
        ch.close()


@gtest
def grpc_half_and_outputs():
    s = _srv()
    st = s.stub()
    x = _qkv(seed=5)
    h16 = {k: v.astype(np.float16) for k, v in x.items()}
    req = request("full", {k: v.view(np.uint16) for k, v in h16.items()}, dtypes={k: "FP16" for k in x})
    got = outputs_of(st.ModelInfer(req))["output"]
    want = outputs_of(st.ModelInfer(request("full", {k: v.astype(np.float32) for k, v in h16.items()})))["output"]
    check(same_bits(got, want), "FP16 raw inputs = their float32 values")
    # output datatype FP16 / BF16: raw, the REST binary extension's bytes
    for dt in ("FP16", "BF16"):
        resp = st.ModelInfer(request("full", x, outputs=[{"name": "output", "parameters": {"datatype": dt}}]))
        check(resp.outputs[0].datatype == dt, f"{dt} output datatype")
        body, hl = None, None
        import harness
        body, hl = harness.binary_request(x, None)
        hdr = json.loads(body[:hl])
        hdr["outputs"] = [{"name": "output", "parameters": {"datatype": dt, "binary_data": True}}]
        h2 = json.dumps(hdr).encode()
        stt, hh, b = SERVER["golden"].request("POST", "/v2/models/full/infer", body=h2 + body[hl:],
                                              headers={"Inference-Header-Content-Length": str(len(h2))})
        check(stt == 200, f"REST {dt}: {stt}")
        rhl = int(hh["inference-header-content-length"])
        check(resp.raw_output_contents[0] == b[rhl:], f"{dt} bytes equal REST's")
        resp = st.ModelInfer(request("full", x, params={"binary_data_output": False},
                                     outputs=[{"name": "output", "parameters": {"datatype": dt}}]))
        check(len(resp.raw_output_contents) == 1, f"{dt} goes raw even when typed is asked for")
    # the attention maps as a second output
    case = next((c for c in CTX.golden_cases if c.type == "full"), None)
    resp = st.ModelInfer(request("full", x, outputs=[{"name": "output"}, {"name": "attention"}]))
    names = [o.name for o in resp.outputs]
    check(names[0] == "output" and "attention" in names[1], f"outputs {names}")
    check(len(resp.raw_output_contents) == len(names), "one raw entry per output")
    check(same_bits(outputs_of(resp)["output"], outputs_of(st.ModelInfer(request("full", x)))["output"]),
          "the primary output is the same with the maps")
    typed = st.ModelInfer(request("full", x, params={"binary_data_output": False},
                                  outputs=[{"name": "output"}, {"name": "attention"}]))
    check(same_bits(outputs_of(typed)[names[1]], outputs_of(resp)[names[1]]), "typed maps = raw maps")
    del case


@gtest
def grpc_stream_order_errors_sequences():
    s = _srv()
    st = s.stub()
    _, pb, _ = stubs()
    xs = [_qkv(seed=i) for i in range(8)]
    reqs = [request("full", x, rid=f"r{i}") for i, x in enumerate(xs)]
    reqs.insert(3, request("no_such_model", xs[0], rid="bad"))
    out = list(st.ModelStreamInfer(iter(reqs)))
    check(len(out) == len(reqs), f"{len(out)} replies for {len(reqs)} requests")
    check(out[3].error_message and "NOT_FOUND" in out[3].error_message, f"inline error: {out[3].error_message!r}")
    ids = [o.infer_response.id for i, o in enumerate(out) if i != 3]
    check(ids == [f"r{i}" for i in range(8)], f"replies in order: {ids}")
    for i, o in enumerate(x for k, x in enumerate(out) if k != 3):
        want = outputs_of(st.ModelInfer(request("full", xs[i])))["output"]
        check(same_bits(outputs_of(o.infer_response)["output"], want), f"stream reply {i}")
    # a sequence on a stream, against the same steps over REST
    rng = np.random.default_rng(11)
    q, k, v = (_rand(rng, 1, 6, 2, 4) for _ in range(3))
    steps = [(0, 2), (2, 3), (3, 6)]

    def step_req(t0, t1, sid, first, last):
        return request("full", {"queries": q[:, t0:t1], "keys": k[:, t0:t1], "values": v[:, t0:t1]},
                       params={"sequence_id": sid, "sequence_start": first, "sequence_end": last})
    out = list(st.ModelStreamInfer(iter([step_req(a, b, 4242, i == 0, i == 2) for i, (a, b) in enumerate(steps)])))
    check(all(not o.error_message for o in out), [o.error_message for o in out])
    lens = [o.infer_response.parameters["sequence_length"].int64_param for o in out]
    check(lens == [2, 3, 6], f"sequence lengths {lens}")
    check(out[2].infer_response.parameters["sequence_end"].bool_param, "sequence_end echoed")
    rest = SERVER["golden"]
    for i, (a, b) in enumerate(steps):
        params = {"sequence_id": "grpc-rest", "sequence_start": i == 0, "sequence_end": i == 2}
        stt, h, body = rest.infer("full", {"queries": q[:, a:b], "keys": k[:, a:b], "values": v[:, a:b]},
                                  binary=True, params=params)
        check(stt == 200, f"REST step {i}: {stt}")
        check(same_bits(outputs_of(out[i].infer_response)["output"], body["output"]), f"step {i} equals REST's")
    # ALREADY_EXISTS for a start on a live id; a stream ended by its client ends nothing else
    list(st.ModelStreamInfer(iter([step_req(0, 2, "kept", True, False)])))
    expect_code(lambda: st.ModelInfer(step_req(0, 2, "kept", True, False)), "ALREADY_EXISTS", "start on a live id")
    r = st.ModelInfer(step_req(2, 3, "kept", False, True))
    check(r.parameters["sequence_length"].int64_param == 3, "the sequence outlived the stream that started it")
    expect_code(lambda: st.ModelInfer(step_req(3, 4, "kept", False, False)), "NOT_FOUND", "after its end", "ended")
    # the Sequence-Id metadata names the id like the header
    out = list(st.ModelStreamInfer(iter([request("full", {"queries": q[:, :1], "keys": k[:, :1], "values": v[:, :1]},
                                                 params={"sequence_start": True, "sequence_end": True})]),
                                   metadata=[("sequence-id", "from-metadata")]))
    check(not out[0].error_message and out[0].infer_response.parameters["sequence_id"].string_param == "from-metadata",
          f"metadata id: {out[0]}")


def _slow(n=2):
    import t_runtime
    return t_runtime._slow_inputs(n=n)


@gtest
def grpc_deadline_queue_auth_metrics_log():
    grpc, pb, _ = stubs()
    # grpc-timeout: DEADLINE_EXCEEDED at the deadline (the server's, 504)
    with GServer("--threads", "1", tag="grpc_deadline") as s:
        st = s.stub()
        inp = _slow(4)
        t = time.time()
        expect_code(lambda: st.ModelInfer(request("full", inp), timeout=0.3), "DEADLINE_EXCEEDED", "grpc-timeout")
        check(time.time() - t < 1.5, "DEADLINE_EXCEEDED came late")
        time.sleep(1.0)
        check(b'attnd_inference_request_failure{model="full",version="1",protocol="grpc",reason="TIMEOUT"} 1' in
              s.request("GET", "/metrics")[2], "the deadline counted as TIMEOUT")
        check("status=504" in s.log() and "method=GRPC" in s.log(), "log line of the timed-out call")
    # queue full: RESOURCE_EXHAUSTED with the retry hint
    with GServer("--threads", "1", "--max-queue", "1", "--retry-after", "2", tag="grpc_queue") as s:
        inp = _slow(2)
        res = [None] * 5

        def one(i):
            try:
                s.stub(fresh=True).ModelInfer(request("full", inp))
                res[i] = "ok"
            except grpc.RpcError as e:
                res[i] = (e.code(), dict(e.trailing_metadata() or ()))
        ts = [threading.Thread(target=one, args=(i,)) for i in range(5)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        ex = [r for r in res if r != "ok"]
        check("ok" in res and ex, f"outcomes {res}")
        check(all(r[0] == grpc.StatusCode.RESOURCE_EXHAUSTED for r in ex), f"codes {ex}")
        check(all(r[1].get("grpc-retry-pushback-ms") == "2000" for r in ex), f"retry hints {ex}")
    # auth: the same tokens, in the authorization metadata
    keys = os.path.join(CTX.work, "grpc_keys")
    with open(keys + ".api", "w") as f:
        f.write("tok-api\n")
    with open(keys + ".admin", "w") as f:
        f.write("tok-admin\n")
    with GServer("--api-key-file", keys + ".api", "--admin-key-file", keys + ".admin", tag="grpc_auth") as s:
        st = s.stub()
        x = _qkv()
        check(st.ServerLive(pb.ServerLiveRequest()).live, "health stays open")
        check(st.ModelReady(pb.ModelReadyRequest(name="full")).ready, "model readiness stays open")
        expect_code(lambda: st.ModelInfer(request("full", x)), "UNAUTHENTICATED", "no token")
        expect_code(lambda: st.ModelInfer(request("full", x), metadata=[("authorization", "Bearer nope")]),
                    "UNAUTHENTICATED", "wrong token")
        st.ModelInfer(request("full", x), metadata=[("authorization", "Bearer tok-api")])
        st.ModelInfer(request("full", x), metadata=[("authorization", "Bearer tok-admin")])
        expect_code(lambda: st.RepositoryIndex(pb.RepositoryIndexRequest(), metadata=[("authorization", "Bearer tok-api")]),
                    "UNAUTHENTICATED", "the repository needs the admin token")
        st.RepositoryIndex(pb.RepositoryIndexRequest(), metadata=[("authorization", "Bearer tok-admin")])
        expect_code(lambda: list(st.ModelStreamInfer(iter([request("full", x)]))), "UNAUTHENTICATED", "stream")
    # metrics and log lines
    s = _srv()
    m0 = s.request("GET", "/metrics")[2].decode()
    s.stub().ModelInfer(request("full", _qkv()), metadata=[("x-request-id", "grpc-log-1")])
    m1 = s.request("GET", "/metrics")[2].decode()

    def val(text, key):
        for line in text.splitlines():
            if line.startswith(key + " "):
                return float(line.split()[-1])
        return 0.0
    k_ok = 'attnd_grpc_responses{code="OK"}'
    k_model = 'attnd_inference_request_success{model="full",version="1",protocol="grpc"}'
    k_http = 'attnd_inference_request_success{model="full",version="1",protocol="http"}'
    k_hist = 'attnd_inference_request_duration_seconds_count{model="full",version="1",protocol="grpc"}'
    check(val(m1, k_ok) == val(m0, k_ok) + 1, "attnd_grpc_responses{code=OK} counts the call")
    check(val(m1, k_model) == val(m0, k_model) + 1, "the model's success counter counts gRPC, labelled protocol=grpc")
    check(val(m1, k_hist) == val(m0, k_hist) + 1, "the latency histogram of protocol=grpc counts it")
    check(val(m1, k_http) == val(m0, k_http), "the protocol=http series does not move for a gRPC call")
    check(s.request("POST", "/v2/models/full/infer", body=json.dumps({"inputs": [
        {"name": k, "datatype": "FP32", "shape": list(v.shape), "data": v.ravel().tolist()} for k, v in _qkv().items()]}).encode(),
        headers={"Content-Type": "application/json"})[0] == 200, "a REST infer")
    m2 = s.request("GET", "/metrics")[2].decode()
    check(val(m2, k_http) == val(m1, k_http) + 1 and val(m2, k_model) == val(m1, k_model),
          "a REST call moves protocol=http only")
    check("attnd_grpc_requests_in_flight" in m1, "in-flight gauge")
    line = next((l for l in s.log().splitlines() if "request_id=grpc-log-1" in l), "")
    check("method=GRPC" in line and "path=/inference.GRPCInferenceService/ModelInfer" in line and
          "model=full" in line and "status=200" in line, f"log line: {line}")


@gtest
def grpc_limits_and_drain():
    grpc, pb, _ = stubs()
    with GServer("--max-body-bytes", "4096", tag="grpc_limit") as s:
        big = {"queries": np.zeros((1, 64, 2, 8), np.float32), "keys": np.zeros((1, 64, 2, 8), np.float32),
               "values": np.zeros((1, 64, 2, 8), np.float32)}
        expect_code(lambda: s.stub().ModelInfer(request("full", big)), "RESOURCE_EXHAUSTED", "over the body limit",
                    "exceeds the limit of 4096")
        check(s.stub().ServerLive(pb.ServerLiveRequest()).live, "serves after an oversized message")
    # SIGTERM: in-flight calls finish, then new ones are refused
    s = GServer("--threads", "2", "--shutdown-delay", "0.5", "--drain-timeout", "300", tag="grpc_drain")
    try:
        inp = _slow(2)
        want = outputs_of(s.stub().ModelInfer(request("full", inp)))["output"]
        res = [None] * 3

        def client(i):
            try:
                res[i] = outputs_of(s.stub(fresh=True).ModelInfer(request("full", inp)))["output"]
            except grpc.RpcError as e:
                res[i] = e
        ts = [threading.Thread(target=client, args=(i,)) for i in range(3)]
        for t in ts:
            t.start()
        time.sleep(0.3)
        s.signal(signal.SIGTERM)
        time.sleep(0.1)
        check(not s.stub().ServerReady(pb.ServerReadyRequest()).ready, "not ready while draining")
        for t in ts:
            t.join()
        for i, r in enumerate(res):
            check(isinstance(r, np.ndarray) and same_bits(r, want), f"in-flight call {i}: {r}")
        time.sleep(0.6)
        expect_code(lambda: s.stub(fresh=True).ServerLive(pb.ServerLiveRequest(), timeout=3), "UNAVAILABLE",
                    "after the drain began")
        rc = s.proc.wait(timeout=60)
        check(rc == 0, f"exit code {rc}")
    finally:
        s.stop()


def stop_all():
    srv = SERVER.pop("grpc", None)
    return srv.stop() if srv else 0

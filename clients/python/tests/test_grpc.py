"""The client's gRPC mode (attnd.grpc_client) against its own attnd with --grpc-port:
the same results as the REST client, streams, errors, the repository."""
import os
import socket
import subprocess
import time

import pytest

import attnd

grpc = pytest.importorskip("grpc")
pytest.importorskip("grpc_tools")

from attnd.grpc_client import GrpcClient  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


def _port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    port, gport = _port(), _port()
    repo = tmp_path_factory.mktemp("grpc_repo")
    log = open(os.path.join(str(repo), "..", "attnd-grpc.log"), "wb")
    p = subprocess.Popen([os.environ["ATTND_BIN"], "--host", "127.0.0.1", "--port", str(port), "--grpc-port",
                          str(gport), "--model-repository", str(repo)], stdout=log, stderr=subprocess.STDOUT)
    rest = attnd.Client("http://127.0.0.1:%d" % port)
    for _ in range(400):
        try:
            if rest.is_ready():
                break
        except attnd.AttndError:
            pass
        time.sleep(0.05)
    g = GrpcClient("127.0.0.1:%d" % gport)
    yield rest, g, str(repo)
    g.close()
    p.terminate()
    assert p.wait(timeout=60) == 0


def _qkv(seed=0):
    import random
    r = random.Random(seed)
    f = lambda *s: [[[[r.uniform(-1, 1) for _ in range(s[3])] for _ in range(s[2])] for _ in range(s[1])] for _ in range(s[0])]  # noqa: E731,E501
    return {"queries": f(1, 4, 2, 3), "keys": f(1, 5, 2, 3), "values": f(1, 5, 2, 2)}


def _flat(v):
    return v.ravel().tolist() if hasattr(v, "ravel") else list(v.data)


def test_the_proto_is_attnd_s():
    with open(os.path.join(ROOT, "proto", "grpc", "grpc_service.proto")) as a, \
            open(os.path.join(ROOT, "clients", "python", "src", "attnd", "grpc_service.proto")) as b:
        assert a.read() == b.read(), "src/attnd/grpc_service.proto must be a copy of proto/grpc/grpc_service.proto"


def test_health_metadata(servers):
    rest, g, _ = servers
    assert g.health() == {"live": True, "ready": True}
    assert g.is_ready("full") and not g.is_ready("no_such_model")
    assert g.server_metadata()["extensions"] == rest.server_metadata()["extensions"]
    m = g.metadata("full")
    assert [i["name"] for i in m["inputs"]] == [i["name"] for i in rest.metadata("full")["inputs"]]
    with pytest.raises(attnd.ModelNotFoundError):
        g.metadata("no_such_model")


def test_infer_same_as_rest(servers):
    rest, g, _ = servers
    x = _qkv()
    a = g.infer("full", x, parameters={"softmax_temp": 0.5}, request_id="r1")
    b = rest.infer("full", x, parameters={"softmax_temp": 0.5})
    assert _flat(a["output"]) == _flat(b["output"]) and a.id == "r1" and a.model_name == "full"
    h = g.infer("full", x, output_datatype="FP16")
    assert _flat(h["output"]) == _flat(rest.infer("full", x, output_datatype="FP16")["output"])
    with pytest.raises(attnd.BadRequestError, match="missing input"):
        g.infer("full", {"queries": x["queries"]})
    with pytest.raises(attnd.ModelNotFoundError):
        g.infer("no_such_model", x)


def test_stream_and_sequence(servers):
    rest, g, _ = servers
    xs = [_qkv(i) for i in range(4)]
    reqs = [g.request("full", x) for x in xs] + [g.request("no_such_model", xs[0])]
    outs = list(g.stream(reqs))
    assert len(outs) == 5 and isinstance(outs[4], attnd.ModelNotFoundError)
    for x, o in zip(xs, outs):
        assert _flat(o["output"]) == _flat(g.infer("full", x)["output"])
    x = xs[0]
    step = lambda t, start, end: g.request("full", {k: [[v[0][t]]] for k, v in x.items()},  # noqa: E731
                                          parameters={"sequence_id": 9, "sequence_start": start, "sequence_end": end})
    outs = list(g.stream([step(0, True, False), step(1, False, True)]))
    assert [o.parameters["sequence_length"] for o in outs] == [1, 2]
    one = {k: [[v[0][0]]] for k, v in x.items()}
    g.infer("full", one, parameters={"sequence_id": "live", "sequence_start": True})
    with pytest.raises(attnd.ConflictError):
        g.infer("full", one, parameters={"sequence_id": "live", "sequence_start": True})
    g.infer("full", one, parameters={"sequence_id": "live", "sequence_end": True})


def test_repository(servers):
    rest, g, repo = servers
    cfg = '{"type": "full", "config": {"softmax_temp": 0.5}}'
    g.load_model("half_temp", cfg)
    x = _qkv(3)
    assert _flat(g.infer("half_temp", x)["output"]) == _flat(g.infer("full", x, parameters={"softmax_temp": 0.5})["output"])
    assert "half_temp" in [m["name"] for m in g.models(ready=True)]
    g.unload_model("half_temp")
    with pytest.raises(attnd.ModelNotFoundError):
        g.infer("half_temp", x)
    with pytest.raises(attnd.BadRequestError):
        g.load_model("bad", '{"type": "no_such_type"}')

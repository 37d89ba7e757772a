"""The client's gRPC mode: attnd's GRPCInferenceService (``attnd --grpc-port``).

    from attnd.grpc_client import GrpcClient
    c = GrpcClient("127.0.0.1:8001")
    out = c.infer("full", {"queries": q, "keys": k, "values": v})["output"]

Needs ``grpcio`` and ``grpcio-tools`` (Debian: python3-grpcio, python3-grpc-tools): the
message classes are generated at first use from the package's copy of attnd's
proto/grpc/grpc_service.proto (the published field numbers, so the same stubs also talk
to Triton or KServe).  Tensors travel in raw contents.  The methods mirror
:class:`attnd.Client`'s and raise the same errors (the gRPC code mapped back to the
REST status: NOT_FOUND is ModelNotFoundError, RESOURCE_EXHAUSTED ServiceUnavailableError
or PayloadTooLargeError, ...).
"""
import importlib
import os
import subprocess
import sys
import tempfile
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from .client import InferResult
from .errors import AttndError, ConnectError, RequestTimeoutError, error_for_status
from .tensors import HAVE_NUMPY, WireTensor, make_output

_PROTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grpc_service.proto")
_STUBS: Dict[str, Any] = {}

# gRPC code -> the REST status attnd maps to it (server/grpc.c, svc_grpc_code_of)
_STATUS = {"INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
           "ALREADY_EXISTS": 409, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504, "INTERNAL": 500,
           "UNIMPLEMENTED": 501, "CANCELLED": 499}


def _stubs():
    if not _STUBS:
        try:
            import grpc  # noqa: F401
            import grpc_tools  # noqa: F401
        except ImportError as e:
            raise ImportError("attnd's gRPC mode needs grpcio and grpcio-tools "
                              "(Debian: python3-grpcio, python3-grpc-tools)") from e
        out = tempfile.mkdtemp(prefix="attnd-grpc-")
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.dirname(_PROTO),
                        "--python_out=" + out, "--grpc_python_out=" + out, _PROTO], check=True,
                       capture_output=True)
        sys.path.insert(0, out)
        try:
            _STUBS["pb"] = importlib.import_module("grpc_service_pb2")
            _STUBS["pg"] = importlib.import_module("grpc_service_pb2_grpc")
        finally:
            sys.path.remove(out)
    return _STUBS["pb"], _STUBS["pg"]


def _param(pb, v):
    if isinstance(v, bool):
        return pb.InferParameter(bool_param=v)
    if isinstance(v, int):
        return pb.InferParameter(int64_param=v)
    if isinstance(v, float):
        return pb.InferParameter(double_param=v)
    if isinstance(v, (dict, list)):
        import json
        return pb.InferParameter(string_param=json.dumps(v))
    return pb.InferParameter(string_param=str(v))


def _value(p):
    which = p.WhichOneof("parameter_choice")
    return getattr(p, which) if which else None


class GrpcClient:
    """One channel to attnd's gRPC listener.  ``token``: the bearer token sent in the
    ``authorization`` metadata; ``timeout``: the default deadline of a call (seconds)."""

    def __init__(self, target: str = "127.0.0.1:8001", *, token: Optional[str] = None,
                 timeout: Optional[float] = 60.0, numpy: bool = True,
                 max_message_bytes: int = 256 << 20):
        import grpc
        self._grpc = grpc
        self.pb, pg = _stubs()
        self.token, self.timeout = token, timeout
        self.numpy = numpy and HAVE_NUMPY
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes)])
        self.stub = pg.GRPCInferenceServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "GrpcClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- calls ----
    def _metadata(self, extra: Optional[Iterable[Tuple[str, str]]] = None) -> List[Tuple[str, str]]:
        md = [("authorization", "Bearer " + self.token)] if self.token else []
        return md + list(extra or [])

    def _error(self, e: Any) -> AttndError:
        code = e.code().name if e.code() else "UNKNOWN"
        msg = e.details() or code
        md = dict(e.trailing_metadata() or ())
        if code == "UNAVAILABLE" and ("failed to connect" in msg.lower() or "connection refused" in msg.lower()):
            return ConnectError(msg)
        if code == "DEADLINE_EXCEEDED" and "timed out" not in msg:
            return RequestTimeoutError(msg)
        status = _STATUS.get(code, 500)
        if code == "RESOURCE_EXHAUSTED":
            status = 413 if "exceeds the limit" in msg or "would pass" in msg else 503
        headers = {}
        if "grpc-retry-pushback-ms" in md:
            headers["retry-after"] = str(max(1, int(md["grpc-retry-pushback-ms"]) // 1000))
        return error_for_status(status, msg, b"", headers)

    def _call(self, method: str, request: Any, timeout: Optional[float] = None,
              metadata: Optional[Iterable[Tuple[str, str]]] = None) -> Any:
        try:
            return getattr(self.stub, method)(request, timeout=timeout if timeout is not None else self.timeout,
                                              metadata=self._metadata(metadata))
        except self._grpc.RpcError as e:
            raise self._error(e) from None

    # ---- health and metadata ----
    def health(self) -> Dict[str, bool]:
        return {"live": self._call("ServerLive", self.pb.ServerLiveRequest()).live,
                "ready": self._call("ServerReady", self.pb.ServerReadyRequest()).ready}

    def is_ready(self, model: Optional[str] = None) -> bool:
        if model is None:
            return self._call("ServerReady", self.pb.ServerReadyRequest()).ready
        return self._call("ModelReady", self.pb.ModelReadyRequest(name=model)).ready

    def server_metadata(self) -> Dict[str, Any]:
        m = self._call("ServerMetadata", self.pb.ServerMetadataRequest())
        return {"name": m.name, "version": m.version, "extensions": list(m.extensions)}

    def metadata(self, name: str) -> Dict[str, Any]:
        m = self._call("ModelMetadata", self.pb.ModelMetadataRequest(name=name))
        io = lambda ts: [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in ts]  # noqa: E731
        return {"name": m.name, "versions": list(m.versions), "platform": m.platform,
                "inputs": io(m.inputs), "outputs": io(m.outputs)}

    def models(self, ready: Optional[bool] = None) -> List[Dict[str, Any]]:
        r = self._call("RepositoryIndex", self.pb.RepositoryIndexRequest(ready=bool(ready)))
        return [{"name": m.name, "version": m.version, "state": m.state, "reason": m.reason} for m in r.models]

    # ---- inference ----
    def request(self, name: str, inputs: Mapping[str, Any], *, parameters: Optional[Mapping[str, Any]] = None,
                outputs: Optional[Iterable[str]] = None, request_id: Optional[str] = None,
                input_datatype: Optional[str] = None, output_datatype: Optional[str] = None) -> Any:
        """The ModelInferRequest :meth:`infer` sends (for :meth:`stream`)."""
        pb = self.pb
        r = pb.ModelInferRequest(model_name=name, id=request_id or "")
        for k, v in inputs.items():
            w = WireTensor(str(k), v, input_datatype)
            r.inputs.add(name=w.name, datatype=w.datatype, shape=w.shape)
            r.raw_input_contents.append(w.raw())
        for k, v in (parameters or {}).items():
            r.parameters[k].CopyFrom(_param(pb, v))
        if outputs is None and output_datatype is not None:
            outputs = [o["name"] for o in self.metadata(name)["outputs"] if not o["name"].startswith("attention")]
        for o in outputs or []:
            out = r.outputs.add(name=o)
            if output_datatype is not None:
                out.parameters["datatype"].string_param = str(output_datatype).upper()
        return r

    def result(self, resp: Any) -> InferResult:
        """An InferResult from a ModelInferResponse."""
        outs = {}
        raw = list(resp.raw_output_contents)
        for i, o in enumerate(resp.outputs):
            if i < len(raw):
                outs[o.name] = make_output(o.name, o.datatype, list(o.shape), raw=memoryview(bytearray(raw[i])),
                                           use_numpy=self.numpy)
            else:
                c = o.contents
                flat = {"FP32": c.fp32_contents, "INT64": c.int64_contents, "INT32": c.int_contents,
                        "BOOL": c.bool_contents}.get(o.datatype, [])
                outs[o.name] = make_output(o.name, o.datatype, list(o.shape), flat=list(flat), use_numpy=self.numpy)
        header = {"model_name": resp.model_name, "model_version": resp.model_version, "id": resp.id or None,
                  "parameters": {k: _value(v) for k, v in resp.parameters.items()}}
        return InferResult(outs, header)

    def infer(self, name: str, inputs: Mapping[str, Any], *, parameters: Optional[Mapping[str, Any]] = None,
              outputs: Optional[Iterable[str]] = None, request_id: Optional[str] = None,
              timeout: Optional[float] = None, input_datatype: Optional[str] = None,
              output_datatype: Optional[str] = None, sequence_id: Optional[str] = None) -> InferResult:
        """ModelInfer: the same arguments and result as :meth:`attnd.Client.infer`."""
        req = self.request(name, inputs, parameters=parameters, outputs=outputs, request_id=request_id,
                           input_datatype=input_datatype, output_datatype=output_datatype)
        md = [("sequence-id", str(sequence_id))] if sequence_id is not None else None
        return self.result(self._call("ModelInfer", req, timeout, md))

    def stream(self, requests: Iterable[Any], *, timeout: Optional[float] = None) -> Iterator[Any]:
        """ModelStreamInfer: ModelInferRequests (see :meth:`request`) in, one InferResult
        (or an AttndError instance, for a request that failed) out per request, in order."""
        try:
            for r in self.stub.ModelStreamInfer(iter(requests), timeout=timeout, metadata=self._metadata()):
                if r.error_message:
                    code = r.error_message.rsplit("(", 1)[-1].rstrip(")")
                    status = _STATUS.get(code, 503 if code == "RESOURCE_EXHAUSTED" else 500)
                    yield error_for_status(status, r.error_message)
                else:
                    yield self.result(r.infer_response)
        except self._grpc.RpcError as e:
            raise self._error(e) from None

    # ---- the repository ----
    def load_model(self, name: str, config: Optional[str] = None, weights: Optional[bytes] = None, *,
                   timeout: Optional[float] = None) -> None:
        """RepositoryModelLoad: from the folder, or config.json's text and the safetensors bytes."""
        req = self.pb.RepositoryModelLoadRequest(model_name=name)
        if config is not None:
            req.parameters["config"].string_param = config if isinstance(config, str) else __import__("json").dumps(config)
        if weights is not None:
            req.parameters["file:weights.safetensors"].bytes_param = bytes(weights)
        self._call("RepositoryModelLoad", req, timeout)

    def unload_model(self, name: str, *, timeout: Optional[float] = None) -> None:
        self._call("RepositoryModelUnload", self.pb.RepositoryModelUnloadRequest(model_name=name), timeout)

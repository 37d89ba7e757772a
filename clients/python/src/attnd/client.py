"""The attnd client: the Open Inference Protocol (KServe v2 REST) over http.client."""

import base64
import gzip
import http.client
import json
import os
import random
import socket
import ssl
import threading
import time
import urllib.parse
import zlib
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from . import tensors
from .errors import (ConnectError, HTTPError, ModelNotFoundError, ProtocolError, RequestTimeoutError,
                     _retry_after_seconds, error_for_status)
from .sequence import SEQUENCE_HEADER, Sequence, _seq_error, _seq_path
from .tensors import Tensor, WireTensor, make_output

__all__ = ["Client", "InferResult"]

_Response = Tuple[int, Dict[str, str], bytes]

# Weights larger than this go as raw bytes after the load request's JSON header.
BINARY_LOAD_THRESHOLD = 1 << 20

# The compression algorithms of Triton's HTTP client options.
COMPRESSION = ("gzip", "deflate")


def _check_compression(what: str, algo: Optional[str]) -> Optional[str]:
    if algo is None or algo == "" or algo == "none":
        return None
    a = str(algo).lower()
    if a not in COMPRESSION:
        raise ValueError("%s must be gzip, deflate or None, not %r" % (what, algo))
    return a


def compress(algo: str, body: bytes) -> bytes:
    """A request body in Content-Encoding ``algo`` (gzip, or deflate: zlib format)."""
    return gzip.compress(body, 1) if algo == "gzip" else zlib.compress(body, 1)


def decompress(coding: Optional[str], body: bytes) -> bytes:
    """A reply body of Content-Encoding ``coding`` (none, gzip, deflate) inflated."""
    c = (coding or "").strip().lower()
    if c in ("", "identity"):
        return body
    try:
        if c in ("gzip", "x-gzip"):
            return gzip.decompress(body)
        if c == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate
    except (OSError, EOFError, zlib.error) as e:
        raise ProtocolError("the server's %s reply does not inflate: %s" % (c, e)) from e
    raise ProtocolError("the server replied with Content-Encoding %r" % coding)


class InferResult(dict):
    """Outputs by name (numpy arrays, or :class:`Tensor` without numpy) plus the
    response's ``model_name``, ``model_version``, ``id`` and ``parameters``."""

    def __init__(self, outputs: Dict[str, Any], header: Dict[str, Any]):
        super().__init__(outputs)
        self.model_name = header.get("model_name")
        self.model_version = header.get("model_version")
        self.id = header.get("id")
        self.parameters = header.get("parameters") or {}


class _Transport:
    """One keep-alive connection per thread; a stale reused connection is
    re-opened once before anything is reported."""

    def __init__(self, url: str, ssl_context: Optional[ssl.SSLContext]):
        parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        if parts.scheme not in ("http", "https"):
            raise ValueError("url must be http:// or https://, not %r" % url)
        if not parts.hostname:
            raise ValueError("url has no host: %r" % url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.base = parts.path.rstrip("/")
        self.ssl_context = ssl_context
        self._local = threading.local()

    def _connection(self, timeout: Optional[float]) -> Tuple[http.client.HTTPConnection, bool]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            return conn, True
        if self.https:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        self._local.conn = conn
        return conn, False

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def request(self, method: str, path: str, body: Optional[bytes], headers: Dict[str, str],
                timeout: Optional[float]) -> _Response:
        for attempt in (0, 1):
            conn, reused = self._connection(timeout)
            send_error: Optional[OSError] = None
            try:
                try:
                    conn.request(method, self.base + path, body=body, headers=headers)
                except (BrokenPipeError, ConnectionResetError) as e:
                    # The server may have answered before reading the whole body
                    # (413 on the declared Content-Length) and closed: read that.
                    send_error = e
                try:
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException):
                    if send_error is not None:
                        raise send_error
                    raise
            except socket.timeout as e:
                self.close()
                raise RequestTimeoutError("no answer from %s:%d within %ss (%s %s)"
                                          % (self.host, self.port, timeout, method, path)) from e
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                self.close()
                if reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection
                raise ConnectError("connection to %s:%d lost: %s" % (self.host, self.port, e)) from e
            except (OSError, http.client.HTTPException) as e:
                self.close()
                raise ConnectError("cannot reach %s:%d: %s" % (self.host, self.port, e)) from e
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            if resp.will_close or send_error is not None:
                self.close()
            return resp.status, hdrs, data
        raise AssertionError("unreachable")


def _error_message(status: int, body: bytes) -> str:
    try:
        doc = json.loads(body.decode("utf-8"))
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            return doc["error"]
    except (ValueError, UnicodeDecodeError):
        pass
    text = body.decode("utf-8", "replace").strip()
    return text or http.client.responses.get(status, "HTTP %d" % status)


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError("%s: the server's answer is not JSON (%s)" % (what, e)) from e


def _quote(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("a model name is a non-empty string")
    return urllib.parse.quote(name, safe="")


class Client:
    """A client of one attnd server.

    ``url``: ``http://host:port`` (a path prefix is kept, for a server behind a
    proxy).  ``api_key``: sent as ``Authorization: Bearer <key>``; ``admin_key``
    (default: ``api_key``) is sent instead on the repository endpoints (index,
    load, unload).  ``timeout``: seconds for connecting and for each read of
    one request (``None``: wait forever).  ``retries``: how many times a request
    answered 503 (or 429), or that could not connect, is sent again, waiting
    ``backoff * 2**attempt`` seconds with jitter, or the server's
    ``Retry-After`` when it says more; a wait longer than ``max_backoff`` is not
    made and the error is raised instead.  ``numpy``: return numpy arrays
    (default: when numpy is importable) or :class:`Tensor` objects.
    ``request_compression_algorithm`` / ``response_compression_algorithm``
    ("gzip", "deflate" or None, Triton's option names): the default of
    :meth:`infer`'s options of the same names.
    """

    def __init__(self, url: str = "http://127.0.0.1:8000", api_key: Optional[str] = None, *,
                 admin_key: Optional[str] = None, timeout: Optional[float] = 60.0,
                 retries: int = 3, backoff: float = 0.05, max_backoff: float = 10.0,
                 numpy: Optional[bool] = None, ssl_context: Optional[ssl.SSLContext] = None,
                 headers: Optional[Mapping[str, str]] = None,
                 request_compression_algorithm: Optional[str] = None,
                 response_compression_algorithm: Optional[str] = None):
        self.url = url
        self.request_compression_algorithm = _check_compression(
            "request_compression_algorithm", request_compression_algorithm)
        self.response_compression_algorithm = _check_compression(
            "response_compression_algorithm", response_compression_algorithm)
        self.api_key = api_key
        self.admin_key = admin_key if admin_key is not None else api_key
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        if numpy and not tensors.HAVE_NUMPY:
            raise ImportError("numpy=True but numpy cannot be imported")
        self.numpy = tensors.HAVE_NUMPY if numpy is None else bool(numpy)
        self.headers = dict(headers or {})
        self._transport = _Transport(url, ssl_context)

    # ---- plumbing ----

    def close(self) -> None:
        """Closes this thread's connection (others close when their threads end)."""
        self._transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _delay(self, attempt: int, retry_after: Optional[float]) -> float:
        delay = self.backoff * (2 ** attempt) * (0.5 + random.random() / 2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Mapping[str, str]] = None, *, timeout: Optional[float] = None,
                admin: bool = False, retry: bool = True, retry_connect: bool = True) -> _Response:
        """Sends one request (with retries); returns (status, headers, body) of a
        2xx/3xx answer or raises the :class:`AttndError` subclass of the status.
        ``retry_connect=False``: a failed connection is not retried (for requests
        that must not run twice, such as a sequence step); 503/429 still are."""
        hdrs = dict(self.headers)
        key = self.admin_key if admin else self.api_key
        if key:
            hdrs["Authorization"] = "Bearer " + key
        if headers:
            hdrs.update(headers)
        t = self.timeout if timeout is None else timeout
        attempt = 0
        while True:
            try:
                status, rh, data = self._transport.request(method, path, body, hdrs, t)
                data = decompress(rh.get("content-encoding"), data)
            except ConnectError:
                if not retry or not retry_connect or attempt >= self.retries:
                    raise
                delay = self._delay(attempt, None)
                if delay > self.max_backoff:
                    raise
                time.sleep(delay)
                attempt += 1
                continue
            if status in (429, 503) and retry and attempt < self.retries:
                delay = self._delay(attempt, _retry_after_seconds(rh.get("retry-after")))
                if delay <= self.max_backoff:
                    time.sleep(delay)
                    attempt += 1
                    continue
            if status >= 400:
                raise error_for_status(status, _error_message(status, data), data, rh)
            return status, rh, data

    def _get_json(self, path: str, **kw: Any) -> Any:
        _, _, data = self.request("GET", path, **kw)
        return _json(data, "GET " + path)

    def _post_json(self, path: str, doc: Any, **kw: Any) -> Any:
        body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        _, _, data = self.request("POST", path, body, {"Content-Type": "application/json"}, **kw)
        return _json(data, "POST " + path) if data.strip() else None

    def _status_ok(self, path: str) -> bool:
        """Health endpoints answer with a status only: 200 yes, 4xx/503 no."""
        try:
            self.request("GET", path, retry=False)
            return True
        except HTTPError as e:
            if e.status in (401, 403):
                raise
            return False

    # ---- health and metadata ----

    def health(self) -> Dict[str, bool]:
        """``{"live": bool, "ready": bool}`` from /v2/health/live and /v2/health/ready."""
        return {"live": self._status_ok("/v2/health/live"),
                "ready": self._status_ok("/v2/health/ready")}

    def is_ready(self, model: Optional[str] = None) -> bool:
        """The server (or one model) is ready to serve."""
        if model is None:
            return self._status_ok("/v2/health/ready")
        return self._status_ok("/v2/models/%s/ready" % _quote(model))

    def server_metadata(self) -> Dict[str, Any]:
        """GET /v2: name, version, extensions (and the server's limits)."""
        return self._get_json("/v2")

    def metadata(self, name: str) -> Dict[str, Any]:
        """GET /v2/models/{name}: platform, versions, inputs and outputs."""
        return self._get_json("/v2/models/%s" % _quote(name))

    def models(self, ready: Optional[bool] = None) -> List[Dict[str, Any]]:
        """The repository index: ``[{"name", "version"?, "state", "reason"?}, ...]``."""
        doc: Dict[str, Any] = {} if ready is None else {"ready": bool(ready)}
        out = self._post_json("/v2/repository/index", doc, admin=True)
        if not isinstance(out, list):
            raise ProtocolError("repository index: expected a JSON array")
        return out

    # ---- inference ----

    def infer(self, name: str, inputs: Union[Mapping[str, Any], Iterable[Tensor]], *,
              parameters: Optional[Mapping[str, Any]] = None, binary: bool = True,
              outputs: Optional[Iterable[str]] = None, request_id: Optional[str] = None,
              timeout: Optional[float] = None, input_datatype: Optional[str] = None,
              output_datatype: Optional[str] = None,
              request_compression_algorithm: Optional[str] = None,
              response_compression_algorithm: Optional[str] = None,
              headers: Optional[Mapping[str, str]] = None,
              _retry_connect: bool = True) -> InferResult:
        """POST /v2/models/{name}/infer.

        ``inputs``: a mapping of input name to a numpy array, nested lists or a
        :class:`Tensor` (or an iterable of named Tensors).  ``parameters``: the
        request's parameters (for built-in models, the mechanism's config).
        ``binary``: send inputs and ask for outputs with the binary tensor data
        extension (exact and fast) instead of JSON numbers.  ``outputs``: names
        of the outputs wanted (default all).  ``input_datatype`` ("FP16",
        "BF16"): send the floating-point inputs in that format, rounded to
        nearest even (half the bytes; the server computes in float32 either
        way); a float16 numpy array or a ``Tensor(..., "FP16")`` goes as FP16
        on its own.  ``output_datatype`` ("FP32", "FP16", "BF16"): the format
        the outputs come back in (FP16 as numpy float16; BF16, which numpy
        lacks, as float32 arrays of the BF16 values).
        ``request_compression_algorithm`` ("gzip", "deflate"): compress the
        request body; ``response_compression_algorithm``: ask for a
        compressed reply (the server compresses replies above its
        --compress-min-bytes).  Both default to the client's.  ``headers``:
        extra HTTP headers for this request.  Returns an :class:`InferResult`.
        """
        req_algo = _check_compression("request_compression_algorithm", request_compression_algorithm) \
            if request_compression_algorithm is not None else self.request_compression_algorithm
        resp_algo = _check_compression("response_compression_algorithm", response_compression_algorithm) \
            if response_compression_algorithm is not None else self.response_compression_algorithm
        if output_datatype is not None and str(output_datatype).upper() not in ("FP32", "FP16", "BF16"):
            raise ValueError("output_datatype must be FP32, FP16 or BF16, not %r" % output_datatype)
        if isinstance(inputs, Mapping):
            wires = [WireTensor(str(k), v, input_datatype) for k, v in inputs.items()]
        else:
            wires = []
            for t in inputs:
                if not isinstance(t, Tensor) or not t.name:
                    raise TypeError("inputs: a mapping of name to value, or named Tensors")
                wires.append(WireTensor(t.name, t, input_datatype))
        header: Dict[str, Any] = {}
        if request_id is not None:
            header["id"] = str(request_id)
        params = dict(parameters or {})
        if binary:
            params["binary_data_output"] = True
        if params:
            header["parameters"] = params
        header["inputs"] = []
        raws: List[bytes] = []
        for w in wires:
            entry: Dict[str, Any] = {"name": w.name, "shape": w.shape, "datatype": w.datatype}
            if binary:
                raw = w.raw()
                raws.append(raw)
                entry["parameters"] = {"binary_data_size": len(raw)}
            else:
                entry["data"] = w.json_data()
            header["inputs"].append(entry)
        if outputs is None and output_datatype is not None:
            outputs = [str(m["name"]) for m in self._output_names(name)]
        if outputs is not None:
            header["outputs"] = []
            for o in outputs:
                op: Dict[str, Any] = {"binary_data": bool(binary)}
                if output_datatype is not None:
                    op["datatype"] = str(output_datatype).upper()
                header["outputs"].append({"name": o, "parameters": op})
        text = json.dumps(header, separators=(",", ":")).encode("utf-8")
        if binary:
            body = b"".join([text] + raws)
            hdrs = {"Content-Type": "application/octet-stream",
                    "Inference-Header-Content-Length": str(len(text))}
        else:
            body = text
            hdrs = {"Content-Type": "application/json"}
        if req_algo:
            body = compress(req_algo, body)
            hdrs["Content-Encoding"] = req_algo
        if resp_algo:
            hdrs["Accept-Encoding"] = resp_algo
        if headers:
            hdrs.update(headers)
        _, rh, data = self.request("POST", "/v2/models/%s/infer" % _quote(name), body, hdrs,
                                   timeout=timeout, retry_connect=_retry_connect)
        return self._decode(rh, data)

    def _output_names(self, name: str) -> List[Dict[str, Any]]:
        """The outputs a request without ``outputs`` gets (metadata: those not
        ``optional``), cached per model name."""
        cache = self.__dict__.setdefault("_outputs_cache", {})
        if name not in cache:
            outs = self.metadata(name).get("outputs") or []
            cache[name] = [o for o in outs if isinstance(o, dict) and "name" in o and not o.get("optional")]
        return cache[name]

    def _decode(self, rh: Dict[str, str], data: bytes) -> InferResult:
        hlen = rh.get("inference-header-content-length")
        if hlen is not None:
            try:
                n = int(hlen)
            except ValueError:
                raise ProtocolError("bad Inference-Header-Content-Length %r" % hlen)
            if not 0 <= n <= len(data):
                raise ProtocolError("Inference-Header-Content-Length %d exceeds the body (%d bytes)"
                                    % (n, len(data)))
            header = _json(data[:n], "inference response")
            buf = bytearray(data[n:])  # writable arrays for the caller
            tail = memoryview(buf)
        else:
            header = _json(data, "inference response")
            tail = memoryview(b"")
        if not isinstance(header, dict) or not isinstance(header.get("outputs"), list):
            raise ProtocolError("inference response without outputs")
        outs: Dict[str, Any] = {}
        off = 0
        for o in header["outputs"]:
            name, dt, shape = o.get("name"), o.get("datatype"), o.get("shape")
            p = o.get("parameters") or {}
            try:
                if "binary_data_size" in p:
                    size = int(p["binary_data_size"])
                    if size < 0 or off + size > len(tail):
                        raise ProtocolError("output %r: binary_data_size %d beyond the body" % (name, size))
                    outs[name] = make_output(name, dt, shape, raw=tail[off:off + size],
                                             use_numpy=self.numpy)
                    off += size
                else:
                    flat, _ = tensors.flatten(o.get("data", []))
                    outs[name] = make_output(name, dt, shape, flat=flat, use_numpy=self.numpy)
            except (ValueError, TypeError) as e:
                raise ProtocolError("inference response: %s" % e) from e
        if off != len(tail):
            raise ProtocolError("inference response: %d binary bytes left over" % (len(tail) - off))
        return InferResult(outs, header)

    def attention(self, type: str, queries: Any, keys: Any, values: Any, *,
                  attn_mask: Any = None, query_lengths: Any = None, key_lengths: Any = None,
                  binary: bool = True, timeout: Optional[float] = None,
                  input_datatype: Optional[str] = None, output_datatype: Optional[str] = None,
                  **config: Any) -> Any:
        """Runs the built-in model named by its mechanism type (``full``,
        ``linear``, ``local``, ...) on queries (N,L,H,E), keys (N,S,H,E) and
        values (N,S,H,D) with the optional masks; ``config`` (the reference
        constructor's keyword arguments) travels in the request's parameters.
        Returns the output (N,L,H,D)."""
        inputs: Dict[str, Any] = {"queries": queries, "keys": keys, "values": values}
        if attn_mask is not None:
            inputs["attn_mask"] = attn_mask
        if query_lengths is not None:
            inputs["query_lengths"] = query_lengths
        if key_lengths is not None:
            inputs["key_lengths"] = key_lengths
        result = self.infer(type, inputs, parameters=config, binary=binary, timeout=timeout,
                            input_datatype=input_datatype, output_datatype=output_datatype)
        if "output" in result:
            return result["output"]
        if len(result) == 1:
            return next(iter(result.values()))
        raise ProtocolError("attention: no output named 'output' in %s" % list(result))

    # ---- model repository ----

    def load_model(self, name: str, config: Union[Mapping[str, Any], str, "os.PathLike[str]", None] = None,
                   weights_path: Union[str, "os.PathLike[str]", None] = None, *,
                   binary: Optional[bool] = None, timeout: Optional[float] = None) -> None:
        """Loads (or atomically replaces) model ``name``.

        ``config``: ``{"type": ..., "config": {...}}`` (the content of a model's
        config.json), its JSON text, the path of a config.json, or a model
        folder (its config.json, and weights.safetensors when present, are
        read).  ``weights_path``: a weights.safetensors to send with it.
        Without config, the server loads the folder of that name in its
        repository.  Config and weights travel as Triton's load request does:
        ``parameters.config`` (JSON text) and ``parameters["file:weights.safetensors"]``
        (base64), or, with ``binary`` (default: for weights over
        ``BINARY_LOAD_THRESHOLD`` bytes), as raw bytes after the JSON header
        (``Inference-Header-Content-Length``), which saves the base64 inflation.
        """
        config_text: Optional[str] = None
        if config is not None:
            if isinstance(config, Mapping):
                config_text = json.dumps(config)
            elif isinstance(config, str) and config.lstrip().startswith("{"):
                config_text = config
            else:
                path = os.fspath(config)
                if os.path.isdir(path):
                    if weights_path is None and os.path.exists(os.path.join(path, "weights.safetensors")):
                        weights_path = os.path.join(path, "weights.safetensors")
                    path = os.path.join(path, "config.json")
                with open(path, "r", encoding="utf-8") as f:
                    config_text = f.read()
        params: Dict[str, Any] = {}
        if config_text is not None:
            params["config"] = config_text
        weights: Optional[bytes] = None
        if weights_path is not None:
            with open(os.fspath(weights_path), "rb") as f:
                weights = f.read()
        path = "/v2/repository/models/%s/load" % _quote(name)
        if weights is not None and (binary or (binary is None and len(weights) > BINARY_LOAD_THRESHOLD)):
            head = json.dumps({"parameters": params}, separators=(",", ":")).encode("utf-8")
            self.request("POST", path, head + weights,
                         {"Content-Type": "application/octet-stream",
                          "Inference-Header-Content-Length": str(len(head))},
                         admin=True, timeout=timeout)
            return
        if weights is not None:
            params["file:weights.safetensors"] = base64.b64encode(weights).decode("ascii")
        self._post_json(path, {"parameters": params} if params else {}, admin=True, timeout=timeout)

    def unload_model(self, name: str, *, timeout: Optional[float] = None) -> None:
        """Unloads model ``name``; requests already running on it finish."""
        self._post_json("/v2/repository/models/%s/unload" % _quote(name), {}, admin=True,
                        timeout=timeout)

    # ---- sequences (streaming sessions) ----

    def sequence(self, model: str, id: Optional[Union[int, str]] = None, kind: str = "self",
                 config: Optional[Mapping[str, Any]] = None) -> Sequence:
        """A :class:`Sequence` of ``model`` (nothing is sent until its first
        ``step``).  ``id``: an int or str (default: a random 63-bit integer);
        ``kind``: "self" or "cross"; ``config``: parameters of the start request
        (a built-in model's config)."""
        return Sequence(self, model, id, kind, config)

    def export_sequence(self, model: str, id: Union[int, str], *,
                        timeout: Optional[float] = None) -> bytes:
        """GET /v2/models/{m}/sequences/{id}: the state of a live sequence
        (safetensors bytes)."""
        try:
            _, _, data = self.request("GET", _seq_path(model, id), headers={SEQUENCE_HEADER: str(id)},
                                      timeout=timeout)
        except ModelNotFoundError as e:
            raise _seq_error(e) from e
        return data

    def restore_sequence(self, model: str, id: Union[int, str], data: bytes, *,
                         timeout: Optional[float] = None) -> Sequence:
        """PUT /v2/models/{m}/sequences/{id}: makes ``data`` (an export) the live
        sequence ``id`` (409 when that id is live) and returns its
        :class:`Sequence`, which continues exactly where the export was made."""
        path = _seq_path(model, id)
        try:
            _, _, body = self.request("PUT", path, bytes(data),
                                      {"Content-Type": "application/octet-stream",
                                       SEQUENCE_HEADER: str(id)},
                                      timeout=timeout, retry_connect=False)
        except ModelNotFoundError as e:
            raise _seq_error(e) from e
        doc = _json(body, "PUT " + path)
        if not isinstance(doc, dict):
            raise ProtocolError("PUT %s: expected a JSON object" % path)
        length = doc.get("sequence_length")
        kind = doc.get("kind") if doc.get("kind") in ("self", "cross") else "self"
        return Sequence(self, model, id, kind, started=True,
                        length=length if isinstance(length, int) else 0)

    def delete_sequence(self, model: str, id: Union[int, str], *,
                        timeout: Optional[float] = None) -> Dict[str, Any]:
        """DELETE /v2/models/{m}/sequences/{id}: ends it now;
        ``{"model", "sequence_id", "ended": "deleted"}``."""
        path = _seq_path(model, id)
        try:
            _, _, body = self.request("DELETE", path, headers={SEQUENCE_HEADER: str(id)}, timeout=timeout)
        except ModelNotFoundError as e:
            raise _seq_error(e) from e
        return _json(body, "DELETE " + path)

    def list_sequences(self, model: str, *, timeout: Optional[float] = None) -> List[Dict[str, Any]]:
        """GET /v2/models/{m}/sequences (admin key when the server has admin keys):
        ``[{"id", "model", "length", "bytes", "idle_s", "age_s", "busy"}, ...]``."""
        doc = self._get_json(_seq_path(model), admin=True, timeout=timeout)
        seqs = doc.get("sequences") if isinstance(doc, dict) else None
        if not isinstance(seqs, list):
            raise ProtocolError("GET %s: no sequences list" % _seq_path(model))
        return seqs

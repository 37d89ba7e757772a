"""Retries, backoff, Retry-After and timeouts, against a scripted local HTTP
server (an overloaded attnd cannot be produced on demand), plus a live
overload of attnd when the build offers a queue limit."""

import http.server
import json
import socket
import threading
import time

import pytest

import attnd


class Stub:
    """Answers each request with the next scripted (status, headers, body)."""

    def __init__(self, script):
        self.script = list(script)
        self.seen = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                stub.seen.append((self.command, self.path, dict(self.headers), body, time.monotonic()))
                status, headers, out = stub.script.pop(0) if stub.script else (500, {}, b'{"error":"script ended"}')
                if status == "hang":
                    time.sleep(headers)
                    return
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


OVERLOADED = (503, {"Retry-After": "1", "Content-Type": "application/json"}, b'{"error":"queue full"}')
OK_META = (200, {"Content-Type": "application/json"}, b'{"name":"attnd","version":"x","extensions":[]}')


@pytest.fixture
def stub():
    made = []

    def make(script):
        s = Stub(script)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def test_503_is_retried_after_retry_after(stub):
    s = stub([OVERLOADED, OVERLOADED, OK_META])
    c = attnd.Client(s.url, retries=3, backoff=0.01)
    t0 = time.monotonic()
    assert c.server_metadata()["name"] == "attnd"
    assert len(s.seen) == 3
    # Retry-After: 1 was honoured before each retry
    assert s.seen[1][4] - s.seen[0][4] >= 0.95
    assert s.seen[2][4] - s.seen[1][4] >= 0.95
    assert time.monotonic() - t0 < 10


def test_503_after_the_last_retry_raises_with_the_message(stub):
    s = stub([(503, {"Retry-After": "0"}, b'{"error":"queue full"}')] * 3)
    c = attnd.Client(s.url, retries=2, backoff=0.01)
    with pytest.raises(attnd.ServiceUnavailableError) as ei:
        c.server_metadata()
    assert ei.value.status == 503
    assert ei.value.message == "queue full"
    assert ei.value.retry_after == 0
    assert isinstance(ei.value, attnd.ServerError)
    assert len(s.seen) == 3


def test_exponential_backoff_without_retry_after(stub):
    s = stub([(503, {}, b'{"error":"busy"}')] * 3 + [OK_META])
    c = attnd.Client(s.url, retries=3, backoff=0.2)
    c.server_metadata()
    gaps = [s.seen[i + 1][4] - s.seen[i][4] for i in range(3)]
    # backoff * 2**attempt * [0.5, 1): 0.1-0.2, 0.2-0.4, 0.4-0.8
    assert 0.09 <= gaps[0] < 0.35 and 0.19 <= gaps[1] < 0.6 and 0.39 <= gaps[2] < 1.0, gaps


def test_retry_after_beyond_max_backoff_is_not_waited(stub):
    s = stub([(503, {"Retry-After": "120"}, b'{"error":"draining"}'), OK_META])
    c = attnd.Client(s.url, retries=3, max_backoff=5)
    t0 = time.monotonic()
    with pytest.raises(attnd.ServiceUnavailableError) as ei:
        c.server_metadata()
    assert time.monotonic() - t0 < 2
    assert ei.value.retry_after == 120
    assert len(s.seen) == 1


def test_429_is_retried_and_400_is_not(stub):
    s = stub([(429, {"Retry-After": "0"}, b'{"error":"slow down"}'), OK_META])
    attnd.Client(s.url, backoff=0.01).server_metadata()
    assert len(s.seen) == 2
    s = stub([(400, {}, b'{"error":"bad"}'), OK_META])
    with pytest.raises(attnd.BadRequestError):
        attnd.Client(s.url, backoff=0.01).server_metadata()
    assert len(s.seen) == 1


def test_no_retries_when_disabled(stub):
    s = stub([OVERLOADED, OK_META])
    with pytest.raises(attnd.ServiceUnavailableError):
        attnd.Client(s.url, retries=0).server_metadata()
    assert len(s.seen) == 1


def test_infer_is_retried_with_the_same_body(stub):
    resp = json.dumps({"model_name": "m", "outputs": [
        {"name": "output", "datatype": "FP32", "shape": [2], "data": [1.5, -2]}]}).encode()
    s = stub([(503, {"Retry-After": "0"}, b'{"error":"busy"}'), (200, {}, resp)])
    res = attnd.Client(s.url, backoff=0.01, numpy=False).infer("m", {"x": [1.0, 2.0]})
    assert res["output"].data == [1.5, -2.0]
    assert s.seen[0][3] == s.seen[1][3] and s.seen[0][1] == "/v2/models/m/infer"


def test_error_body_that_is_not_json(stub):
    s = stub([(500, {}, b"boom")])
    with pytest.raises(attnd.ServerError) as ei:
        attnd.Client(s.url).server_metadata()
    assert ei.value.message == "boom" and ei.value.status == 500


def test_timeout(stub):
    s = stub([("hang", 3, b"")])
    c = attnd.Client(s.url, timeout=0.3, retries=3)
    t0 = time.monotonic()
    with pytest.raises(attnd.RequestTimeoutError) as ei:
        c.server_metadata()
    assert isinstance(ei.value, TimeoutError)
    assert time.monotonic() - t0 < 2  # timeouts are not retried
    assert len(s.seen) == 1


def test_per_call_timeout_overrides(stub):
    s = stub([("hang", 2, b"")])
    c = attnd.Client(s.url, timeout=30)
    with pytest.raises(attnd.RequestTimeoutError):
        c.infer("m", {"x": [1.0]}, timeout=0.2)


def test_connection_refused_is_retried_then_raised():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    c = attnd.Client("http://127.0.0.1:%d" % port, retries=2, backoff=0.05)
    t0 = time.monotonic()
    with pytest.raises(attnd.ConnectError):
        c.server_metadata()
    assert time.monotonic() - t0 >= 0.07  # two backoffs were waited


def test_bad_binary_response_is_protocol_error(stub):
    hdr = json.dumps({"model_name": "m", "outputs": [
        {"name": "output", "datatype": "FP32", "shape": [4], "parameters": {"binary_data_size": 16}}]}).encode()
    s = stub([(200, {"Inference-Header-Content-Length": str(len(hdr))}, hdr + b"\0" * 8)])
    with pytest.raises(attnd.ProtocolError):
        attnd.Client(s.url).infer("m", {"x": [1.0]})


def test_binary_request_layout(stub):
    """The request the client sends follows the binary tensor data extension."""
    resp = json.dumps({"model_name": "m", "outputs": []}).encode()
    s = stub([(200, {}, resp)])
    attnd.Client(s.url, api_key="k").infer("m", {"a": attnd.Tensor([[1.0, 2.0]]),
                                                  "b": attnd.Tensor([True, False, True])},
                                            parameters={"p": 1})
    method, path, headers, body, _ = s.seen[0]
    n = int(headers["Inference-Header-Content-Length"])
    header = json.loads(body[:n])
    assert headers["Authorization"] == "Bearer k"
    assert headers["Content-Type"] == "application/octet-stream"
    assert header["parameters"] == {"p": 1, "binary_data_output": True}
    assert header["inputs"] == [
        {"name": "a", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}},
        {"name": "b", "shape": [3], "datatype": "BOOL", "parameters": {"binary_data_size": 3}}]
    assert body[n:] == b"\x00\x00\x80\x3f\x00\x00\x00\x40" + b"\x01\x00\x01"


def test_url_path_prefix_is_kept(stub):
    s = stub([OK_META])
    attnd.Client(s.url + "/attnd/").server_metadata()
    assert s.seen[0][1] == "/attnd/v2"

"""Shared by tests/hostile, tests/faults and tests/soak: an attnd process on a
free loopback port, and an HTTP/1.1 client on a bare socket, so that requests
can be malformed, cut short, trickled or abandoned at will.

Standard library only (/usr/bin/python3).
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Failure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def copy_examples(dst):
    """A private copy of examples/models (loads may write to it)."""
    shutil.copytree(os.path.join(ROOT, "examples", "models"), dst)
    return dst


# ---- responses on a bare socket -------------------------------------------------


class Response:
    def __init__(self, status=None, reason="", headers=None, body=b"", closed=False, raw=b""):
        self.status = status          # None: the server closed without answering
        self.reason = reason
        self.headers = headers or {}  # lower-case names
        self.body = body
        self.closed = closed          # the server closed the connection after it
        self.raw = raw

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.headers.get('content-type')} {self.body[:120]!r}>"


def read_response(sk, deadline):
    """Reads one response from sk; Response(status=None) if the peer closed
    (or reset) before a whole status line and headers arrived."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        part = _recv(sk, deadline)
        if not part:
            return Response(closed=True, raw=buf)
        buf += part
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
    if not m:
        return Response(closed=True, raw=buf)
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    status = int(m.group(1))
    body, closed = rest, False
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, closed = _read_chunked(sk, rest, deadline)
    elif "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            part = _recv(sk, deadline)
            if not part:
                closed = True
                break
            body += part
        body = body[:n]
    else:
        while True:
            part = _recv(sk, deadline)
            if not part:
                closed = True
                break
            body += part
    if headers.get("connection", "").lower() == "close":
        closed = True
    return Response(status, m.group(2), headers, body, closed, buf)


def _read_chunked(sk, buf, deadline):
    out = b""
    while True:
        while b"\r\n" not in buf:
            part = _recv(sk, deadline)
            if not part:
                return out, True
            buf += part
        line, buf = buf.split(b"\r\n", 1)
        n = int(line.split(b";")[0], 16)
        while len(buf) < n + 2:
            part = _recv(sk, deadline)
            if not part:
                return out + buf, True
            buf += part
        out += buf[:n]
        buf = buf[n + 2:]
        if n == 0:
            return out, False


def _recv(sk, deadline):
    left = deadline - time.time()
    if left <= 0:
        raise Failure("no response in time")
    sk.settimeout(left)
    try:
        return sk.recv(65536)
    except socket.timeout:
        raise Failure("no response in time")
    except (ConnectionResetError, BrokenPipeError):
        return b""


def exchange(port, data, parts=None, half_close=False, timeout=15, delay=0.0):
    """Sends data (bytes, or a list of byte strings sent with `delay` between
    them), optionally shuts down our write side, and reads one response.
    A server that stops reading (and closes) part way is not an error here:
    the response, if any, is still read."""
    sk = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    deadline = time.time() + timeout
    try:
        chunks = data if isinstance(data, list) else [data]
        for i, c in enumerate(chunks):
            if i and delay:
                time.sleep(delay)
            try:
                sk.sendall(c)
            except (BrokenPipeError, ConnectionResetError):
                break
        if half_close:
            try:
                sk.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        return read_response(sk, deadline)
    finally:
        sk.close()


def request_bytes(method, path, body=b"", headers=None, version="HTTP/1.1", length=True):
    """A well-formed request (unless the caller's headers make it otherwise)."""
    if isinstance(body, str):
        body = body.encode()
    h = {"Host": "127.0.0.1"}
    h.update(headers or {})
    if length and body is not None and not any(k.lower() in ("content-length", "transfer-encoding") for k in h):
        if body or method in ("POST", "PUT"):
            h["Content-Length"] = str(len(body))
    lines = [f"{method} {path} {version}"] + [f"{k}: {v}" for k, v in h.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def http(port, method, path, body=b"", headers=None, timeout=60):
    return exchange(port, request_bytes(method, path, body, headers), timeout=timeout)


def chunked(body, size=7):
    out = b""
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\n\r\n"


# ---- request bodies ----------------------------------------------------------------


def floats(n, k=0):
    return [round(((i * 7919 + k) % 23) / 23 - 0.5, 6) for i in range(n)]


def qkv_inputs(shape=(1, 3, 2, 2)):
    n = 1
    for d in shape:
        n *= d
    return [{"name": name, "shape": list(shape), "datatype": "FP32", "data": floats(n, k)}
            for k, name in enumerate(("queries", "keys", "values"))]


def qkv_json(shape=(1, 3, 2, 2), extra=None, **top):
    req = {"inputs": qkv_inputs(shape) + list(extra or [])}
    req.update(top)
    return json.dumps(req).encode()


def binary_body(inputs, params=None):
    """inputs: [(name, datatype, shape, raw)] -> (body, header length)."""
    req = {"inputs": [{"name": n, "datatype": dt, "shape": list(sh), "parameters": {"binary_data_size": len(raw)}}
                      for n, dt, sh, raw in inputs]}
    if params:
        req["parameters"] = params
    hdr = json.dumps(req).encode()
    return hdr + b"".join(raw for *_, raw in inputs), len(hdr)


def f32(vals):
    return struct.pack(f"<{len(vals)}f", *vals)


def qkv_binary(shape=(1, 3, 2, 2), extra=(), params=None):
    n = 1
    for d in shape:
        n *= d
    ins = [(name, "FP32", shape, f32(floats(n, k))) for k, name in enumerate(("queries", "keys", "values"))]
    return binary_body(ins + list(extra), params)


# ---- attnd ---------------------------------------------------------------------------


class Attnd:
    """One attnd on a free loopback port.  stop() sends SIGTERM and returns
    the exit code; the log is kept in `log_path`."""

    def __init__(self, attnd, *args, work=None, tag="attnd", env=None, wait=True, ready_timeout=120,
                 wrapper=None):
        self.work = work or tempfile.mkdtemp(prefix="attnd-")
        self.port = free_port()
        self.log_path = os.path.join(self.work, f"{tag}-{self.port}.log")
        self.logf = open(self.log_path, "wb")
        e = dict(os.environ)
        e.update(env or {})
        self.cmd = list(wrapper or []) + [attnd, "--host", "127.0.0.1", "--port", str(self.port), *args]
        self.proc = subprocess.Popen(self.cmd, stdout=self.logf, stderr=subprocess.STDOUT, env=e)
        self.stopped = False
        if wait:
            self.wait_ready(ready_timeout)

    def wait_ready(self, timeout=120):
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise Failure(f"attnd exited with {self.proc.returncode}: {self.log()[-3000:]}")
            try:
                if http(self.port, "GET", "/v2/health/ready", timeout=5).status == 200:
                    return
            except (OSError, Failure):
                pass
            check(time.time() < deadline, "attnd did not become ready")
            time.sleep(0.05)

    def log(self):
        if not self.logf.closed:
            self.logf.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def http(self, method, path, body=b"", headers=None, timeout=60):
        return http(self.port, method, path, body, headers, timeout)

    def infer_ok(self, model="full", timeout=60):
        """A normal request must still be answered."""
        r = self.http("POST", f"/v2/models/{model}/infer", qkv_json(), {"Content-Type": "application/json"},
                      timeout=timeout)
        check(r.status == 200, f"a normal request after the others: {r!r}")
        out = r.json()["outputs"][0]
        check(out["shape"] == [1, 3, 2, 2] and len(out["data"]) == 12, f"normal request's output: {out}")
        return r

    def metrics(self):
        """{'name{labels}': value} from /metrics."""
        r = self.http("GET", "/metrics", timeout=30)
        check(r.status == 200, f"/metrics: {r!r}")
        out = {}
        for ln in r.body.decode().splitlines():
            if ln and not ln.startswith("#"):
                k, _, v = ln.rpartition(" ")
                out[k] = float(v)
        return out

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
        return 0

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def kill9(self):
        self.stopped = True
        self.proc.kill()
        self.proc.wait()
        self.logf.close()

    def stop(self, timeout=120):
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.logf.close()
            raise Failure("attnd did not exit after SIGTERM")
        self.logf.close()
        return rc

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        rc = self.stop()
        if et is None:
            check(rc == 0, f"attnd exited with {rc}: {self.log()[-3000:]}")
            sanitizer_clean(self.log())
        return False


def sanitizer_clean(log):
    """ASan/UBSan/LSan reports in a server log fail the test."""
    for pat in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer"):
        check(pat not in log, f"sanitizer report in the server log:\n{log[log.find(pat) - 200:][:4000]}")

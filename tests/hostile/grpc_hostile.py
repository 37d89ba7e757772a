"""Hostile input against attnd's gRPC listener (HTTP/2, --grpc-port): raw
frames on a bare socket (malformed frames, SETTINGS and PING floods, 10 000
streams on one connection, a message that never ends, absurd length
prefixes, compressed messages, oversized metadata) and grpcio calls with
wrong message bytes and unsupported compression.  After every case the
server must still answer a normal gRPC call, and at the end exit 0 on
SIGTERM with no sanitizer report in its log (run with build/asan too).

  python3 grpc_hostile.py BUILD_DIR [FILTER] [-v]
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from rawhttp import Attnd, Failure, check, copy_examples, free_port, sanitizer_clean  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
PATH = "/inference.GRPCInferenceService/"


def frame(ftype, flags, sid, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, sid & 0x7FFFFFFF) + payload


def hpack_int(v, prefix_bits, first=0):
    m = (1 << prefix_bits) - 1
    if v < m:
        return bytes([first | v])
    out = [first | m]
    v -= m
    while v >= 128:
        out.append((v & 127) | 128)
        v >>= 7
    out.append(v)
    return bytes(out)


def hpack(headers):
    """Literal header fields without indexing, plain strings (no Huffman)."""
    out = b""
    for k, v in headers:
        k, v = k.encode(), v.encode()
        out += b"\x00" + hpack_int(len(k), 7) + k + hpack_int(len(v), 7) + v
    return out


def grpc_headers(rpc="ServerLive", extra=()):
    return hpack([(":method", "POST"), (":scheme", "http"), (":path", PATH + rpc), (":authority", "x"),
                  ("content-type", "application/grpc"), ("te", "trailers"), *extra])


def message(payload, compressed=0, length=None):
    return struct.pack(">BI", compressed, len(payload) if length is None else length) + payload


class H2:
    """A bare HTTP/2 connection: send frames, read the server's."""

    def __init__(self, port, settings=True):
        self.sk = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.closed = False
        if settings:
            self.send(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        try:
            self.sk.sendall(data)
            return True
        except OSError:
            self.closed = True
            return False

    def frames(self, until, timeout=10):
        """Reads frames until until(frame) is true or the connection closes;
        returns every frame read [(type, flags, sid, payload)]."""
        got = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            while len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + n:
                    break
                t, fl, sid = self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                f = (t, fl, sid, self.buf[9:9 + n])
                self.buf = self.buf[9 + n:]
                if t == SETTINGS and not fl & ACK:
                    self.send(frame(SETTINGS, ACK, 0))
                got.append(f)
                if until(f):
                    return got
            self.sk.settimeout(max(0.05, deadline - time.time()))
            try:
                chunk = self.sk.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return got
            self.buf += chunk
        return got

    def close(self):
        self.sk.close()


def goaway_code(frames):
    for t, fl, sid, p in frames:
        if t == GOAWAY and len(p) >= 8:
            return int.from_bytes(p[4:8], "big")
    return None


def stream_ended(sid):
    """A HEADERS with END_STREAM (trailers or trailers-only) or a RST_STREAM on sid."""
    return lambda f: f[2] == sid and (f[0] == RST or (f[0] == HEADERS and f[1] & END_STREAM))


# ---- the cases ------------------------------------------------------------------------------


def expect_goaway(port, data, codes, what):
    c = H2(port)
    c.send(data)
    fs = c.frames(lambda f: f[0] == GOAWAY, timeout=10)
    code = goaway_code(fs)
    check(code in codes, f"{what}: GOAWAY {code}, expected one of {codes}")
    c.close()
    return f"GOAWAY {code}"


def case_malformed(port):
    out = []
    out.append(expect_goaway(port, frame(DATA, 0, 0, b"x"), {1}, "DATA on stream 0"))
    out.append(expect_goaway(port, frame(SETTINGS, 0, 0, b"\x00\x01\x00"), {6}, "SETTINGS of 3 bytes"))
    out.append(expect_goaway(port, frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x00"), {1}, "WINDOW_UPDATE of 0"))
    out.append(expect_goaway(port, frame(HEADERS, END_HEADERS, 1, b"\xff\xff\xff\xff\xff"), {9}, "bad HPACK"))
    out.append(expect_goaway(port, struct.pack(">BHBBI", 0xFF, 0xFFFF, DATA, 0, 1), {6}, "a 16 MiB frame"))
    out.append(expect_goaway(port, frame(CONTINUATION, END_HEADERS, 1, b""), {1}, "CONTINUATION alone"))
    out.append(expect_goaway(port, frame(HEADERS, END_HEADERS, 2, grpc_headers()), {1}, "even stream id"))
    # not HTTP/2 at all
    sk = socket.create_connection(("127.0.0.1", port), timeout=10)
    sk.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    sk.settimeout(5)
    data = b""
    try:
        while True:
            chunk = sk.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        raise Failure("HTTP/1.1 on the gRPC port: the connection stayed open")
    sk.close()
    out.append(f"HTTP/1.1 closed after {len(data)} bytes")
    return "; ".join(out)


def case_settings_flood(port):
    c = H2(port)
    flood = frame(SETTINGS, 0, 0) * 2000
    sent = 0
    for _ in range(100):  # up to 200 000 SETTINGS, never reading the ACKs
        if not c.send(flood):
            break
        sent += 2000
    fs = [] if c.closed else c.frames(lambda f: f[0] == GOAWAY, timeout=10)
    code = goaway_code(fs)
    check(c.closed or code == 11, f"SETTINGS flood: GOAWAY {code}, the connection {'closed' if c.closed else 'open'}")
    c.close()
    c = H2(port)
    ping = frame(PING, 0, 0, b"12345678") * 2000
    pings = 0
    for _ in range(100):
        if not c.send(ping):
            break
        pings += 2000
    fs = [] if c.closed else c.frames(lambda f: f[0] == GOAWAY, timeout=10)
    pcode = goaway_code(fs)
    check(c.closed or pcode == 11, f"PING flood: GOAWAY {pcode}")
    c.close()
    return f"SETTINGS: {sent} sent, GOAWAY {code}, closed {c.closed}; PING: {pings} sent, GOAWAY {pcode}"


def case_many_streams(port, n=10000):
    c = H2(port)
    hb = grpc_headers("ModelInfer")
    batch = b""
    for i in range(n):
        batch += frame(HEADERS, END_HEADERS, 1 + 2 * i, hb)
        if len(batch) > 1 << 16:
            c.send(batch)
            batch = b""
    c.send(batch)
    fs = c.frames(lambda f: False, timeout=3)
    refused = sum(1 for t, fl, sid, p in fs if t == RST and p == b"\x00\x00\x00\x07")
    ended = goaway_code(fs)
    check(refused > 0 or ended is not None, f"{n} streams: none refused ({len(fs)} frames)")
    c.close()
    return f"{refused} streams refused (REFUSED_STREAM), GOAWAY {ended}"


def case_never_ends(port, idle):
    c = H2(port)
    c.send(frame(HEADERS, END_HEADERS, 1, grpc_headers("ServerLive")) + frame(DATA, 0, 1, message(b"", length=100)[:8]))
    t = time.time()
    fs = c.frames(stream_ended(1), timeout=idle + 10)
    dt = time.time() - t
    check(any(stream_ended(1)(f) for f in fs), f"a message that never ends was not cut off ({len(fs)} frames)")
    check(dt < idle + 5, f"cut off after {dt:.1f} s (--idle-timeout {idle})")
    c.close()
    # a connection that sends nothing at all is closed after the idle timeout too
    c = H2(port)
    t = time.time()
    c.frames(lambda f: f[0] == GOAWAY, timeout=idle + 10)
    check(time.time() - t < idle + 5, "an idle connection stayed open")
    c.close()
    return f"cut off after {dt:.1f} s"


def case_prefixes(port):
    out = []
    for name, data in [("4 GiB length", message(b"", length=0xFFFFFFFF)),
                       ("compressed flag 2", message(b"", compressed=2)),
                       ("compressed flag without grpc-encoding", message(b"\x00", compressed=1)),
                       ("two messages on a unary call", message(b"") + message(b""))]:
        c = H2(port)
        c.send(frame(HEADERS, END_HEADERS, 1, grpc_headers("ServerLive")) + frame(DATA, END_STREAM, 1, data))
        fs = c.frames(stream_ended(1), timeout=10)
        check(any(stream_ended(1)(f) for f in fs), f"{name}: no answer")
        c.close()
        out.append(name)
    # unsupported and corrupt compression
    for name, extra, data in [("grpc-encoding snappy", [("grpc-encoding", "snappy")], message(b"\x00", compressed=1)),
                              ("corrupt gzip", [("grpc-encoding", "gzip")], message(b"\x1f\x8b\x08garbage!", compressed=1)),
                              ("truncated deflate", [("grpc-encoding", "deflate")], message(b"\x78\x9c\x63", compressed=1)),
                              ("empty gzip message", [("grpc-encoding", "gzip")], message(b"", compressed=1))]:
        c = H2(port)
        c.send(frame(HEADERS, END_HEADERS, 1, grpc_headers("ServerLive", extra)) + frame(DATA, END_STREAM, 1, data))
        fs = c.frames(stream_ended(1), timeout=10)
        check(any(stream_ended(1)(f) for f in fs), f"{name}: no answer")
        c.close()
        out.append(name)
    # a stream ended inside a message, a huge header block, a HEADERS without :path
    for name, data in [("ends inside a message", frame(HEADERS, END_HEADERS, 1, grpc_headers("ServerLive")) +
                        frame(DATA, END_STREAM, 1, message(b"abc", length=10)[:7])),
                       ("no :path", frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                          hpack([(":method", "POST"), (":scheme", "http")]))),
                       ("wrong content-type", frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                                    hpack([(":method", "POST"), (":scheme", "http"),
                                                           (":path", PATH + "ServerLive"), (":authority", "x"),
                                                           ("content-type", "application/json")])))]:
        c = H2(port)
        c.send(data)
        fs = c.frames(lambda f: stream_ended(1)(f) or f[0] == GOAWAY, timeout=10)
        check(any(stream_ended(1)(f) or f[0] == GOAWAY for f in fs), f"{name}: no answer")
        c.close()
        out.append(name)
    c = H2(port)
    c.send(frame(HEADERS, 0, 3, grpc_headers("ServerLive")) +
           b"".join(frame(CONTINUATION, 0, 3, hpack([(f"x-junk{k}", "b" * 16000)])) for k in range(8)) +
           frame(CONTINUATION, END_HEADERS | END_STREAM, 3, b""))
    fs = c.frames(lambda f: stream_ended(3)(f) or f[0] == GOAWAY, timeout=10)
    check(any(stream_ended(3)(f) or f[0] == GOAWAY for f in fs) or c.closed, "128 KB of metadata: no answer")
    c.close()
    out.append("128 KB of metadata")
    return "; ".join(out)


def case_grpcio(port):
    import grpc
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    raw = ch.unary_unary(PATH + "ModelInfer", request_serializer=lambda b: b, response_deserializer=lambda b: b)
    out = []
    for name, payload, code in [("a varint where a message is", b"\x28\x01", "INVALID_ARGUMENT"),
                                ("a truncated field", b"\x0a\x40abc", "INVALID_ARGUMENT"),
                                ("a ModelMetadataRequest's bytes", b"\x0a\x04nope", "NOT_FOUND"),
                                ("64k empty inputs (the unpacking memory budget)", b"\x2a\x00" * 65536,
                                 "RESOURCE_EXHAUSTED")]:
        try:
            raw(payload, timeout=30)
            raise Failure(f"{name}: no error")
        except grpc.RpcError as e:
            check(e.code() == getattr(grpc.StatusCode, code), f"{name}: {e.code()} {e.details()}")
            out.append(f"{name}: {e.code().name}")
    live = ch.unary_unary(PATH + "ServerLive", request_serializer=lambda b: b, response_deserializer=lambda b: b)
    for comp in (grpc.Compression.Gzip, grpc.Compression.Deflate):
        check(live(b"", compression=comp, timeout=10) == b"\x08\x01", f"{comp}: ServerLive compressed")
    out.append("gzip and deflate messages inflated")
    # a bomb: 4 MiB of zeros, a few KiB compressed, past --max-body-bytes 1M once inflated
    try:
        live(b"\x00" * (4 << 20), compression=grpc.Compression.Gzip, timeout=30)
        raise Failure("gzip bomb: no error")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "inflated" in (e.details() or ""),
              f"gzip bomb: {e.code()} {e.details()}")
        out.append(f"gzip bomb: {e.code().name}")
    ch.close()
    return "; ".join(out)


def serving(port):
    import grpc
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    live = ch.unary_unary(PATH + "ServerLive", request_serializer=lambda b: b, response_deserializer=lambda b: b)
    r = live(b"", timeout=20)
    ch.close()
    check(r == b"\x08\x01", f"ServerLive answered {r!r}")


def main():
    args = [a for a in sys.argv[1:] if a != "-v"]
    verbose = "-v" in sys.argv
    build = os.path.abspath(args[0] if args else "build")
    filt = args[1] if len(args) > 1 else ""
    attnd = os.path.join(build, "attnd")
    try:
        import grpc  # noqa: F401
    except ImportError:
        print("grpc hostile: python3-grpcio is missing (make test-deps)")
        return 2
    idle = 2
    failed, passed = [], 0
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="attnd-grpc-hostile-") as work:
        repo = copy_examples(os.path.join(work, "repo"))
        gport = free_port()
        srv = Attnd(attnd, "--model-repository", repo, "--grpc-port", str(gport), "--max-body-bytes", "1M",
                    "--idle-timeout", str(idle), "--threads", "2", work=work, tag="grpc")
        cases = [("malformed frames", lambda: case_malformed(gport)),
                 ("SETTINGS and PING floods", lambda: case_settings_flood(gport)),
                 ("10000 streams on one connection", lambda: case_many_streams(gport)),
                 ("a message that never ends", lambda: case_never_ends(gport, idle)),
                 ("bad prefixes and metadata", lambda: case_prefixes(gport)),
                 ("wrong messages, compression (grpcio)", lambda: case_grpcio(gport))]
        try:
            for name, fn in cases:
                if filt and filt not in name:
                    continue
                try:
                    what = fn()
                    serving(gport)
                    passed += 1
                    print(f"  ok   {name}" + (f": {what}" if verbose else ""), flush=True)
                except Exception as e:  # noqa: BLE001
                    failed.append(name)
                    print(f"  FAIL {name}: {e}", flush=True)
                if srv.proc.poll() is not None:
                    failed.append(f"{name}: the server died")
                    print(f"  FAIL the server died:\n{srv.log()[-4000:]}")
                    return 1
            m = srv.metrics()
            inflight = m.get("attnd_grpc_requests_in_flight", -1)
            if inflight != 0:
                failed.append(f"gRPC calls in flight after the run: {inflight}")
        finally:
            try:
                rc = srv.stop()
                if rc != 0:
                    failed.append(f"the server exited {rc}")
                sanitizer_clean(srv.log())
            except Failure as e:
                failed.append(f"server: {e}")
    print(f"grpc hostile: {passed} passed, {len(failed)} failed ({time.time() - t0:.1f} s)")
    for f in failed:
        print(f"  failed: {f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

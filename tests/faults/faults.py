"""Faults against a live attnd, one test each:

  disconnect_mid_upload    clients that vanish half way through a request: no leak
                           (requests in flight back to 0; the ASan build's leak
                           report at exit), and the server serves on
  disconnect_mid_compute   a client that leaves while its request computes or waits:
                           the work is abandoned (the next request does not wait for it)
  slow_client              a byte a second, in the headers or in the body: cut off after
                           --idle-timeout, while other clients are served as usual; a
                           slow but steady upload is not cut
  early_answer_no_reset    an answer given before the body (413, 401, 415) reaches a
                           client that is still sending, instead of a reset
  sigterm_under_load       SIGTERM with requests in flight: every accepted request
                           completes with 200, and attnd exits 0
  load_killed              kill -9 during a large model load, restart: the repository
                           and the serving version are intact (old or new, never a mix)
  queue_full               503 with Retry-After when the queue is full, then recovery,
                           burst after burst
  cpu_quota                in a cgroup with a CPU quota of 1 CPU, attnd sizes its pool by
                           the quota, not by the cores it sees (skipped where no cgroup
                           can be made)

  python3 faults.py BUILD_DIR [FILTER]
"""
import json
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "hostile"))

from rawhttp import (Attnd, Failure, binary_body, check, exchange, f32, floats, qkv_json,  # noqa: E402
                     read_response, request_bytes, sanitizer_clean)

CTX = {}
TESTS = []
JSON = {"Content-Type": "application/json"}


def test(fn):
    TESTS.append(fn)
    return fn


def attnd(*args, **kw):
    return Attnd(CTX["attnd"], *args, work=CTX["work"], **kw)


def parallel(fns):
    out = [None] * len(fns)

    def run(i):
        try:
            out[i] = fns[i]()
        except Exception as e:  # noqa: BLE001 - the caller looks
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        check(time.time() < deadline, f"timed out waiting for {what}")
        time.sleep(0.05)


# ---- a request that computes for a while ---------------------------------------------


def full_binary(length, batch=1, seed=0):
    """A binary request for the built-in `full`, shape (batch, length, 4, 4)."""
    n = batch * length * 16
    vals = [((i * 7919 + seed) % 97) / 97 - 0.5 for i in range(n)]
    raw = f32(vals)
    return binary_body([(name, "FP32", (batch, length, 4, 4), raw) for name in ("queries", "keys", "values")],
                       {"binary_data_output": True})


def infer_bytes(model, body_hlen):
    body, hlen = body_hlen
    return request_bytes("POST", f"/v2/models/{model}/infer", body,
                         {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(hlen)})


_SLOW = {}


def slow_length(s, seconds):
    """The sequence length at which one `full` request takes about `seconds`
    on one thread of this machine and build (sanitizers are slow)."""
    if "t2048" not in _SLOW:
        req = infer_bytes("full", full_binary(2048))
        exchange(s.port, req, timeout=300)  # warm up
        t = time.time()
        r = exchange(s.port, req, timeout=300)
        check(r.status == 200, f"calibration: {r!r}")
        _SLOW["t2048"] = max(time.time() - t, 1e-3)
    length = int(2048 * (seconds / _SLOW["t2048"]) ** 0.5) // 64 * 64
    return min(max(length, 512), 32768)


def small_ok(s, timeout=60):
    t = time.time()
    r = s.http("POST", "/v2/models/full/infer", qkv_json(), JSON, timeout=timeout)
    check(r.status == 200, f"a normal request: {r!r}")
    return time.time() - t


def metric(s, key):
    return s.metrics().get(key, 0.0)


# ---- tests -----------------------------------------------------------------------------------


@test
def disconnect_mid_upload():
    with attnd("--idle-timeout", "5", tag="disconnect") as s:
        body = qkv_json()
        head = request_bytes("POST", "/v2/models/full/infer", b"", dict(JSON, **{"Content-Length": "200000"}),
                             length=False)
        for i in range(30):
            sk = socket.create_connection(("127.0.0.1", s.port))
            if i % 3 == 0:    # in the headers
                sk.sendall(head[:len(head) // 2])
            else:             # in the body
                sk.sendall(head + body[:500])
            time.sleep(0.01)
            if i % 2:         # a reset rather than a close
                sk.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sk.close()
        # A whole request, then gone before the answer could be read.
        for _ in range(10):
            sk = socket.create_connection(("127.0.0.1", s.port))
            sk.sendall(request_bytes("POST", "/v2/models/full/infer", body, JSON))
            sk.close()
        wait_for(lambda: metric(s, "attnd_http_requests_in_flight") == 1, 15,
                 "requests in flight to return to 0 (1: this /metrics request)")
        check(metric(s, 'attnd_queue_depth') == 0, "queue depth after the disconnects")
        small_ok(s)
        log = s.log()
        check(log.count("status=499") >= 20, f"abandoned uploads are logged as 499 ({log.count('status=499')})")
        sanitizer_clean(log)


@test
def disconnect_mid_compute():
    with attnd("--threads", "1", tag="abandon") as s:
        length = slow_length(s, 3.0)
        slow = infer_bytes("full", full_binary(length, seed=1))
        # 1. The client leaves while its request computes.
        runs0 = metric(s, 'attnd_inference_exec_count{model="full",version="1",protocol="http"}')
        sk = socket.create_connection(("127.0.0.1", s.port))
        sk.sendall(slow)
        time.sleep(0.6)
        check(metric(s, 'attnd_inference_executing_request_count{model="full",version="1",protocol="http"}') == 1,
              "the slow request should be computing")
        sk.close()
        time.sleep(0.3)
        dt = small_ok(s)
        check(dt < 1.5, f"a request after the abandoned one waited {dt:.2f} s: the work was not abandoned")
        # 2. The client leaves while its request waits in the queue: it never runs.
        keep = socket.create_connection(("127.0.0.1", s.port))
        keep.sendall(slow)
        time.sleep(0.4)
        sk = socket.create_connection(("127.0.0.1", s.port))
        sk.sendall(slow)
        time.sleep(0.3)
        sk.close()
        t = time.time()
        r = read_response(keep, time.time() + 120)
        keep.close()
        check(r.status == 200, f"the request that stayed: {r!r}")
        dt = small_ok(s)
        check(dt < 1.5, f"a request after the queued-and-abandoned one waited {dt:.2f} s")
        runs = metric(s, 'attnd_inference_exec_count{model="full",version="1",protocol="http"}') - runs0
        # the abandoned computation (it ran, then stopped), the one that stayed, two small ones
        check(runs == 4, f"executions: {runs} (the request abandoned in the queue must never run)")
        wait_for(lambda: metric(s, 'attnd_inference_executing_request_count{model="full",version="1",protocol="http"}') == 0, 10,
                 "no computation left running")
        check(metric(s, 'attnd_http_responses{code="499"}') == 2, "two requests abandoned (499)")
        check(time.time() - t < 60, "slow")


@test
def slow_client():
    with attnd("--idle-timeout", "2", tag="slow") as s:
        body = qkv_json()
        req = request_bytes("POST", "/v2/models/full/infer", body, JSON)
        head_len = req.index(b"\r\n\r\n") + 4

        def trickle(start):
            """Sends req[:start] at once, then a byte a second; returns the seconds
            until the server closed, and how many bytes went out."""
            sk = socket.create_connection(("127.0.0.1", s.port))
            t0 = time.time()
            sent = 0
            try:
                sk.sendall(req[:start])
                sent = start
                sk.settimeout(1.0)
                while sent < len(req) and time.time() - t0 < 30:
                    try:
                        if sk.recv(1024) == b"":
                            break
                    except socket.timeout:
                        pass
                    except OSError:
                        break
                    try:
                        sk.send(req[sent:sent + 1])
                        sent += 1
                    except OSError:
                        break
                return time.time() - t0, sent
            finally:
                sk.close()

        lat, stop = [], threading.Event()

        def others():
            while not stop.is_set():
                lat.append(small_ok(s))
                time.sleep(0.1)
        bg = threading.Thread(target=others)
        bg.start()
        try:
            res = parallel([lambda: trickle(10), lambda: trickle(head_len)] * 3)
        finally:
            stop.set()
            bg.join()
        for r in res:
            check(not isinstance(r, Exception), f"trickling client: {r}")
        for (dt, sent), where in zip(res, ["headers", "body"] * 3):
            check(dt < 5.0, f"a byte a second in the {where}: cut after {dt:.1f} s (--idle-timeout 2)")
            check(sent < len(req), f"a byte a second in the {where}: the whole request got through")
        check(len(lat) >= 10, f"only {len(lat)} normal requests meanwhile")
        check(max(lat) < 1.0, f"normal requests were slowed meanwhile: max {max(lat):.2f} s")
        # Slow but steady (about 128 KiB/s, longer than --idle-timeout): not cut.
        big = qkv_json(shape=(1, 3000, 2, 4))
        req = request_bytes("POST", "/v2/models/full/infer", big, JSON)
        parts = [req[i:i + 16384] for i in range(0, len(req), 16384)]
        t = time.time()
        r = exchange(s.port, parts, delay=0.125, timeout=120)
        check(time.time() - t > 3, "the steady upload should take longer than --idle-timeout")
        check(r.status == 200, f"a steady {len(req) >> 10} KiB upload at 128 KiB/s: {r!r}")
        check("receive deadline" in s.log(), "the cut is logged")


@test
def early_answer_no_reset():
    import http.client
    key = os.path.join(CTX["work"], "early.key")
    with open(key, "w") as f:
        f.write("early-token\n")
    with attnd("--max-body-bytes", "1M", "--api-key-file", key, tag="early") as s:
        auth = {"Authorization": "Bearer early-token"}
        for n, hdr, want in ((5 << 20, dict(JSON, **auth), 413),            # over the limit
                             (800 << 10, JSON, 401),                         # no token
                             (5 << 20, dict(auth, **{"Content-Type": "image/png"}), 415)):
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
            try:
                c.request("POST", "/v2/models/full/infer", body=b" " * n, headers=hdr)
                r = c.getresponse()
                data = r.read()
                check(r.status == want, f"{n} bytes: {r.status} {data[:100]!r}")
                check(json.loads(data)["error"], "a JSON error")
                c.request("GET", "/v2/health/live")  # the connection is still good
                r = c.getresponse()
                r.read()
                check(r.status == 200, "keep-alive after the dropped body")
            except OSError as e:
                raise Failure(f"{n} bytes, expecting {want}: the client saw {e!r} instead of the answer")
            finally:
                c.close()
        # Chunked past the limit: 413 at once, and the rest is still read.
        head = request_bytes("POST", "/v2/models/full/infer", b"", dict(JSON, **auth, **{"Transfer-Encoding": "chunked"}),
                             length=False)
        chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
        r = exchange(s.port, [head] + [chunk] * 40 + [b"0\r\n\r\n"], timeout=60)
        check(r.status == 413, f"chunked past the limit: {r!r}")


@test
def sigterm_under_load():
    s = attnd("--threads", "2", "--drain-timeout", "120", tag="sigterm")
    try:
        length = slow_length(s, 0.25)
        reqs = [infer_bytes("full", full_binary(length, seed=k)) for k in range(4)]
        results, lock, stop = [], threading.Lock(), threading.Event()
        t_sig = [None]

        def client(k):
            while not stop.is_set():
                t = time.time()
                try:
                    r = exchange(s.port, reqs[k % 4], timeout=300)
                    with lock:
                        results.append((t, r.status, r.headers.get("connection")))
                except (OSError, Failure) as e:
                    with lock:
                        results.append((t, repr(e), None))
                    if t_sig[0]:
                        return
        ts = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        time.sleep(1.5)
        t_sig[0] = time.time()
        s.signal(signal.SIGTERM)
        time.sleep(0.5)
        stop.set()
        for t in ts:
            t.join()
        rc = s.proc.wait(timeout=180)
        check(rc == 0, f"exit code {rc}")
        before = [r for r in results if r[0] < t_sig[0] - 0.05]
        check(len(before) >= 8, f"only {len(before)} requests before the signal")
        bad = [r for r in before if r[1] != 200]
        check(not bad, f"requests in flight at SIGTERM that did not complete: {bad[:5]}")
        answered = [r for r in results if isinstance(r[1], int)]
        check(all(r[1] == 200 for r in answered), f"a request was answered with an error: "
                                                   f"{[r for r in answered if r[1] != 200][:5]}")
        log = s.log()
        check("stopped" in log, "no 'stopped' line")
        sanitizer_clean(log)
    finally:
        s.stop()


def _st_bytes(tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        raw = tensors[name][1]
        header[name] = {"dtype": "F32", "shape": list(tensors[name][0]), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def _big_model(d, scale):
    """An attention_layer with d_model = d: four d x d projections (16 d^2 bytes)."""
    cfg = {"type": "attention_layer", "config": {"attention": {"type": "full"}, "d_model": d, "n_heads": 4}}
    row = struct.pack(f"<{d}f", *[((i * 37) % 101 / 101 - 0.5) * scale / d ** 0.5 for i in range(d)])
    w = {}
    for p in ("query", "key", "value", "out"):
        w[f"{p}_projection.weight"] = ((d, d), row * d)
        w[f"{p}_projection.bias"] = ((d,), struct.pack(f"<{d}f", *[0.01 * scale] * d))
    return json.dumps(cfg), _st_bytes(w)


@test
def load_killed():
    d = 2048
    repo = os.path.join(CTX["work"], "repo-kill")
    shutil.rmtree(repo, ignore_errors=True)
    os.makedirs(os.path.join(repo, "m"))
    cfg, w1 = _big_model(d, 1.0)
    _, w2 = _big_model(d, 2.0)
    with open(os.path.join(repo, "m", "config.json"), "w") as f:
        f.write(cfg)
    with open(os.path.join(repo, "m", "weights.safetensors"), "wb") as f:
        f.write(w1)
    x = f32(floats(2 * 3 * d))
    probe = infer_bytes("m", binary_body([(n, "FP32", (2, 3, d), x) for n in ("queries", "keys", "values")],
                                         {"binary_data_output": True}))
    head = json.dumps({"parameters": {"config": cfg}}).encode()
    load = request_bytes("POST", "/v2/repository/models/m/load", head + w2,
                         {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))})

    def output(s):
        r = exchange(s.port, probe, timeout=120)
        check(r.status == 200, f"probe: {r!r}")
        return r.body[int(r.headers["inference-header-content-length"]):]

    def serving(s):
        r = s.http("POST", "/v2/repository/index", b"")
        check(r.status == 200, f"index: {r!r}")
        return {e["name"]: e["state"] for e in r.json()}

    s = attnd("--model-repository", repo, "--max-body-bytes", "128M", tag="kill-ref")
    try:
        out1 = output(s)
        t = time.time()
        r = exchange(s.port, load, timeout=300)
        t_load = time.time() - t
        check(r.status == 200, f"reference load: {r!r}")
        out2 = output(s)
        check(out1 != out2, "the two versions must differ")
        # back to version 1 for the trials
        r = exchange(s.port, request_bytes("POST", "/v2/repository/models/m/load",
                                           head + w1, {"Inference-Header-Content-Length": str(len(head))}), timeout=300)
        check(r.status == 200, f"reload of version 1: {r!r}")
    finally:
        s.stop()
    seen = set()
    # Kill points: when the new folder appears (the write), and spread over the load.
    plans = ["folder"] + [t_load * f for f in (0.15, 0.4, 0.7, 0.95)] + ["folder"]
    for i, plan in enumerate(plans):
        s = attnd("--model-repository", repo, "--max-body-bytes", "128M", tag=f"kill{i}")
        expect = output(s)
        check(expect in (out1, out2), "serving an unknown version before the trial")
        sk = socket.create_connection(("127.0.0.1", s.port))
        sk.sendall(load)
        if plan == "folder":
            deadline = time.time() + 120
            while not any(n.startswith(".load-") for n in os.listdir(repo)):
                check(time.time() < deadline, "the load never wrote its folder")
                time.sleep(0.0005)
        else:
            time.sleep(plan)
        s.kill9()
        sk.close()
        leftovers = [n for n in os.listdir(repo) if n.startswith(".")]
        s = attnd("--model-repository", repo, "--max-body-bytes", "128M", tag=f"kill{i}-restart")
        try:
            check(serving(s).get("m") == "READY", f"trial {i}: m not READY after the restart")
            got = output(s)
            check(got in (out1, out2), f"trial {i}: serving a version that is neither the old nor the new")
            seen.add("old" if got == out1 else "new")
            left = [n for n in os.listdir(repo) if n != "m"]
            check(not left, f"trial {i}: left in the repository after the restart: {left} (before: {leftovers})")
            check(sorted(os.listdir(os.path.join(repo, "m"))) == ["config.json", "weights.safetensors"],
                  f"trial {i}: the model folder holds {os.listdir(os.path.join(repo, 'm'))}")
            # The repository still loads: reload version 1 for the next trial.
            r = exchange(s.port, request_bytes("POST", "/v2/repository/models/m/load", head + w1,
                                               {"Inference-Header-Content-Length": str(len(head))}), timeout=300)
            check(r.status == 200 and output(s) == out1, f"trial {i}: a load after the restart: {r!r}")
        finally:
            check(s.stop() == 0, "restarted attnd exit code")
    print(f"       versions served after the kills: {sorted(seen)}", flush=True)
    # The fallback path (no RENAME_EXCHANGE) keeps the old folder aside as
    # .old-<name>-<pid>-<n>; a crash between its two renames leaves no <name>.
    dead = 4194303
    while os.path.exists(f"/proc/{dead}"):
        dead -= 1
    os.rename(os.path.join(repo, "m"), os.path.join(repo, f".old-m-{dead}-0"))
    s = attnd("--model-repository", repo, "--max-body-bytes", "128M", tag="kill-old")
    try:
        check(serving(s).get("m") == "READY", "m not restored from its .old- folder")
        check(output(s) == out1, "the restored model is not the old version")
        check(sorted(os.listdir(repo)) == ["m"], f"repository after the restore: {os.listdir(repo)}")
    finally:
        check(s.stop() == 0, "exit code")


@test
def queue_full():
    with attnd("--threads", "1", "--max-queue", "2", "--retry-after", "3", tag="queue") as s:
        length = slow_length(s, 0.5)
        req = infer_bytes("full", full_binary(length, seed=3))
        for burst in range(3):
            res = parallel([lambda: exchange(s.port, req, timeout=300)] * 8)
            for r in res:
                check(not isinstance(r, Exception), f"burst {burst}: {r}")
            codes = sorted(r.status for r in res)
            check(codes.count(503) >= 3 and codes.count(200) >= 1 and set(codes) <= {200, 503},
                  f"burst {burst}: {codes}")
            for r in res:
                if r.status == 503:
                    check(r.headers.get("retry-after") == "3", f"Retry-After: {r.headers}")
                    check(r.json()["error"], "503 is a JSON error")
            wait_for(lambda: metric(s, "attnd_queue_depth") == 0, 30, "the queue to empty")
            # Recovery: exactly what fits (one running, two waiting) is served, every time.
            got = []
            ts = [threading.Thread(target=lambda: got.append(exchange(s.port, req, timeout=300))) for _ in range(3)]
            for t in ts:
                t.start()
                time.sleep(0.05)
            for t in ts:
                t.join()
            codes = [r.status for r in got]
            check(codes == [200, 200, 200], f"after burst {burst}, a full queue's worth: {codes}")
        small_ok(s)


def _cgroup_dir():
    """A fresh cgroup folder in which a CPU quota can be set, with the
    quota file names; None when this machine does not allow it."""
    try:
        lines = open("/proc/self/cgroup").read().splitlines()
    except OSError:
        return None
    for ln in lines:
        _, ctrl, path = ln.split(":", 2)
        if "cpu" in ctrl.split(","):
            base = "/sys/fs/cgroup/cpu" + (path if path != "/" else "")
            d = os.path.join(base, f"attnd-test-{os.getpid()}")
            try:
                os.mkdir(d)
            except OSError:
                return None
            return d, "v1"
    for ln in lines:
        if ln.startswith("0::"):
            base = "/sys/fs/cgroup" + (ln[3:] if ln[3:] != "/" else "")
            try:
                if "cpu" not in open(os.path.join(base, "cgroup.subtree_control")).read().split():
                    return None
                d = os.path.join(base, f"attnd-test-{os.getpid()}")
                os.mkdir(d)
            except OSError:
                return None
            return d, "v2"
    return None


@test
def cpu_quota():
    if len(os.sched_getaffinity(0)) < 2:
        print("       skipped: one CPU only", flush=True)
        return
    got = _cgroup_dir()
    if not got:
        print("       skipped: no cgroup can be made here", flush=True)
        return
    d, kind = got
    s = None
    try:
        if kind == "v1":
            with open(os.path.join(d, "cpu.cfs_period_us"), "w") as f:
                f.write("100000")
            with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
                f.write("100000")
        else:
            with open(os.path.join(d, "cpu.max"), "w") as f:
                f.write("100000 100000")
        procs = os.path.join(d, "cgroup.procs")
        s = attnd(tag="quota", wrapper=["/bin/sh", "-c", f'echo $$ > {procs} && exec "$0" "$@"'])
        lim = s.http("GET", "/v2").json()["limits"]
        check(lim["threads"] == 1 and lim["threads_per_request"] == 1,
              f"a 1-CPU quota on {len(os.sched_getaffinity(0))} cores: threads {lim['threads']}, "
              f"per request {lim['threads_per_request']}")
        small_ok(s)
    finally:
        if s:
            check(s.stop() == 0, "exit code")
        for _ in range(50):
            try:
                os.rmdir(d)
                break
            except OSError:
                time.sleep(0.1)


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    filt = sys.argv[2] if len(sys.argv) > 2 else ""
    CTX["attnd"] = os.path.join(build, "attnd")
    if not os.access(CTX["attnd"], os.X_OK):
        print(f"faults: {CTX['attnd']} is missing (make all first)")
        return 2
    t0 = time.time()
    passed, failed = 0, []
    with tempfile.TemporaryDirectory(prefix="attnd-faults-") as work:
        CTX["work"] = work
        for fn in TESTS:
            if filt and filt not in fn.__name__:
                continue
            t = time.time()
            try:
                fn()
                passed += 1
                print(f"  ok   {fn.__name__} ({time.time() - t:.1f} s)", flush=True)
            except Exception as e:  # noqa: BLE001
                failed.append(fn.__name__)
                print(f"  FAIL {fn.__name__}: {e}", flush=True)
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
        if failed and os.environ.get("FAULTS_KEEP"):
            shutil.copytree(work, os.environ["FAULTS_KEEP"], dirs_exist_ok=True)
    print(f"faults: {passed} passed, {len(failed)} failed ({time.time() - t0:.1f} s)")
    for f in failed:
        print(f"  failed: {f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

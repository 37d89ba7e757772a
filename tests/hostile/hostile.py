"""Hostile input against a live attnd: every request of cases.py is sent on a
bare socket, and must get its 4xx with a JSON error (or, for malformed HTTP
that libmicrohttpd refuses itself, its 4xx).  After each group, and at the
end, the server must still answer a normal request; it must exit 0 on
SIGTERM, with no sanitizer report in its log (run with build/asan too).
Also checked here: the default listen address is loopback, and none of the
path-traversal loads wrote anything.

  python3 hostile.py BUILD_DIR [FILTER] [-v]
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cases import ADMIN, API, CASES  # noqa: E402
from rawhttp import (Attnd, Failure, check, copy_examples, exchange, free_port, http, qkv_json,  # noqa: E402
                     sanitizer_clean)


def still_serving(servers):
    """A normal request on each server (the auth one with the api token)."""
    for name, srv in servers.items():
        hdr = {"Content-Type": "application/json"}
        if name == "auth":
            hdr["Authorization"] = f"Bearer {API}"
        r = srv.http("POST", "/v2/models/full/infer", qkv_json(), hdr)
        check(r.status == 200 and len(r.json()["outputs"][0]["data"]) == 12,
              f"{name}: a normal request after the hostile ones: {r!r}")


def check_case(c, r):
    want = c.status if isinstance(c.status, tuple) else (c.status,)
    check(r.status in want, f"expected {c.status}, got {r.status}: {r!r}")
    if r.status is None:
        return "(closed)"
    check(400 <= r.status < 500 or isinstance(c.status, tuple), f"not a 4xx: {r!r}")
    if c.body == "mhd":
        return f"{r.status} (libmicrohttpd)"
    ctype = r.headers.get("content-type", "")
    check(ctype.startswith("application/json"), f"error is not JSON ({ctype}): {r!r}")
    try:
        err = r.json()
    except ValueError:
        raise Failure(f"error body is not JSON: {r!r}")
    check(isinstance(err, dict) and isinstance(err.get("error"), str) and err["error"],
          f"no error message: {r!r}")
    check(c.msg is None or c.msg in err["error"], f"the message does not say {c.msg!r}: {err['error']!r}")
    return f"{r.status} {err['error'][:100]}"


def snapshot(d):
    out = {}
    for root, dirs, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            st = os.stat(p)
            out[os.path.relpath(p, d)] = (st.st_size, st.st_mtime_ns)
    return out


def default_bind(attnd, work):
    """Without --host, attnd listens on 127.0.0.1 only."""
    port = free_port()
    log = open(os.path.join(work, "bind.log"), "wb")
    env = {k: v for k, v in os.environ.items() if k != "ATTND_HOST"}
    p = subprocess.Popen([attnd, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 60
        while True:
            check(p.poll() is None, "attnd without --host exited")
            try:
                if http(port, "GET", "/v2/health/live", timeout=5).status == 200:
                    break
            except (OSError, Failure):
                pass
            check(time.time() < deadline, "attnd without --host did not start")
            time.sleep(0.05)
        want = f":{port:04X}"
        found = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = open(table).read().splitlines()[1:]
            except OSError:
                continue
            for ln in lines:
                f = ln.split()
                if f[1].endswith(want) and f[3] == "0A":  # LISTEN
                    found.append(f[1])
        check(found == ["0100007F" + want], f"listening sockets on port {port}: {found} (want 127.0.0.1 only)")
    finally:
        p.terminate()
        p.wait(timeout=60)
        log.close()


def main():
    args = [a for a in sys.argv[1:] if a != "-v"]
    verbose = "-v" in sys.argv
    build = os.path.abspath(args[0] if args else "build")
    filt = args[1] if len(args) > 1 else ""
    attnd = os.path.join(build, "attnd")
    if not os.access(attnd, os.X_OK):
        print(f"hostile: {attnd} is missing (make all first)")
        return 2
    t0 = time.time()
    failed, passed = [], 0
    with tempfile.TemporaryDirectory(prefix="attnd-hostile-") as work:
        repo = copy_examples(os.path.join(work, "repo"))
        before = snapshot(work)
        with open(os.path.join(work, "api.key"), "w") as f:
            f.write(API + "\n")
        with open(os.path.join(work, "admin.key"), "w") as f:
            f.write(ADMIN + "\n")
        common = ["--max-body-bytes", "1M", "--idle-timeout", "3", "--threads", "2", "--http-threads", "2"]
        servers = {
            "main": Attnd(attnd, "--model-repository", repo, *common, work=work, tag="main"),
            "auth": Attnd(attnd, "--model-repository", repo, *common, "--api-key-file", os.path.join(work, "api.key"),
                          "--admin-key-file", os.path.join(work, "admin.key"), work=work, tag="auth"),
        }
        try:
            group = None
            for c in CASES:
                if filt and filt not in f"{c.group}: {c.name}":
                    continue
                s = servers[c.server]
                if c.group != group:
                    if group:
                        still_serving(servers)
                    group = c.group
                    print(f"== {group}", flush=True)
                try:
                    r = exchange(s.port, c.req, half_close=c.half_close, timeout=20)
                    what = check_case(c, r)
                    passed += 1
                    if verbose:
                        print(f"  ok   {c.name}: {what}", flush=True)
                except Exception as e:  # noqa: BLE001
                    failed.append(f"{c.group}: {c.name}")
                    print(f"  FAIL {c.name}: {e}", flush=True)
                if s.proc.poll() is not None:
                    failed.append(f"{c.group}: {c.name}: the server died")
                    print(f"  FAIL the server died:\n{s.log()[-4000:]}")
                    return 1
            # The server still serves, and nothing was written by the refused loads.
            main_srv = servers["main"]
            try:
                still_serving(servers)
            except Failure as e:
                failed.append(str(e))
            r = servers["auth"].http("POST", "/v2/repository/index", b"", {"Authorization": f"Bearer {ADMIN}"})
            if r.status != 200:
                failed.append(f"the admin token opens the repository: {r!r}")
            m = main_srv.metrics()
            inflight = m.get("attnd_http_requests_in_flight", -1)
            if inflight != 1:  # this /metrics request itself
                failed.append(f"requests in flight after the run: {inflight}")
            after = snapshot(work)
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)
                             and not k.endswith(".log") and not k.endswith(".key"))
            if changed:
                failed.append(f"files written by refused requests: {changed[:10]}")
        finally:
            for name, srv in servers.items():
                try:
                    rc = srv.stop()
                    if rc != 0:
                        failed.append(f"{name} server exited {rc}")
                    sanitizer_clean(srv.log())
                except Failure as e:
                    failed.append(f"{name} server: {e}")
        if not filt:
            try:
                default_bind(attnd, work)
                passed += 1
                print("  ok   default listen address is 127.0.0.1")
            except Failure as e:
                failed.append(f"default bind: {e}")
    print(f"hostile: {passed} passed, {len(failed)} failed ({time.time() - t0:.1f} s)")
    for f in failed:
        print(f"  failed: {f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

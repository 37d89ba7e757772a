#!/usr/bin/python3
"""Sequences (streaming decode) through nginx in front of several replicas, one
of them SIGKILLed mid-sequence (deploy/test.sh).  Needs numpy.

  seqcheck.py run PROXY_URL --replica URL,PID [--replica URL,PID]... [--summary FILE]
  seqcheck.py fake PORT LOG                 a replica that takes sequence requests and fails them
  seqcheck.py replay PROXY_URL --real URL --fake-log LOG

On the built-in model `full` (H=2, E=D=8), 20 concurrent sequences of 50
tokens each, cut into chunks three ways (single tokens; prime sizes; a
prefill of 20 then single tokens), ids half integers and half strings with
':' and '~' (sent percent-encoded in paths).  Every request of a sequence
carries the `Sequence-Id` header; nginx (attnd-proxy.conf, attnd-sequence.conf)
must send all of them to one replica.

 1. Steady: every step answers 200 with the right Sequence-Id header,
    sequence_id and sequence_length, and rows within the golden tolerance of
    `full`'s one-shot forward with a lower-triangular attn_mask (asked of the
    same replicas, outside any sequence).  Before the last steps, each id is
    live on exactly one replica (asked of the replicas directly), the ids are
    spread over more than one, and every export through nginx by path finds
    its sequence.  Control: a sequence sent without the header gets 404s (the
    round robin takes its steps elsewhere), so the check can fail.
 2. The same inputs and chunks under new ids; each client exports its
    sequence through nginx every 8 tokens (these requests, and the restores,
    carry the header too; the steady run's exports go by the path alone).  After 35% of the steps, the
    replica holding the most unfinished sequences is SIGKILLed.  A client
    whose step then fails (404 from the next replica on the ring, or 502 for
    a step in flight) restores its last export with a PUT through nginx
    (which the ring sends to a live replica) and resends the chunks after it.
    Every 200 answer must equal the steady run's output bit for bit (a
    restored sequence continues exactly); only sequences that lived on the
    killed replica may fail; all 20 finish.
Prints a JSON summary; exits 1 on any failure.

`replay` (nginx over the fake and one real replica): a sequence start that
the fake took and then answered 503, or reset, must reach the client as 503
or 502, and never the real replica.  With `non_idempotent` or `http_503` in
the sequence location's proxy_next_upstream it does (test.sh's control).
"""
import argparse
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse

import numpy as np

MODEL = "full"
N, H, E, D = 1, 2, 8, 8
TOKENS, SEQS = 50, 20
RTOL, ATOL = 1e-4, 1e-5          # tests/golden/gen/table.py, full
EXPORT_EVERY = 8
KILL_AT = 0.35


class Conn:
    """One keep-alive connection; (status, headers, body), status 0 for a transport error."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.c = u.hostname, u.port, None

    def request(self, method, path, body=None, headers=None):
        try:
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=30)
            self.c.request(method, path, body=body, headers=headers or {})
            r = self.c.getresponse()
            data = r.read()
            if r.will_close:
                self.close()
            return r.status, r, data
        except (OSError, http.client.HTTPException) as e:
            self.close()
            return 0, None, ("%s: %s" % (type(e).__name__, e)).encode()

    def close(self):
        if self.c is not None:
            self.c.close()
        self.c = None


def ident(i, phase):
    """Even sequences: integer ids; odd: strings with characters a path must encode."""
    return 1000 * phase + i + 1 if i % 2 == 0 else "dec-%d.%d:x~" % (phase, i)


def seq_path(sid):
    return "/v2/models/%s/sequences/%s" % (MODEL, urllib.parse.quote(str(sid), safe=""))


def inputs(i):
    rng = np.random.default_rng(7000 + i)
    return [rng.uniform(-1, 1, (N, TOKENS, H, x)).astype(np.float32) for x in (E, E, D)]


def chunking(i):
    if i % 3 == 0:
        sizes = [1] * TOKENS
    elif i % 3 == 1:
        sizes, primes = [], [2, 3, 5, 7, 11, 13]
        while sum(sizes) < TOKENS:
            sizes.append(min(primes[len(sizes) % len(primes)], TOKENS - sum(sizes)))
    else:
        sizes = [20] + [1] * (TOKENS - 20)
    return sizes


def infer_request(arrays, names, params):
    head = {"inputs": [], "parameters": dict(params, binary_data_output=True)}
    for name, a in zip(names, arrays):
        dt = "BOOL" if a.dtype == np.bool_ else "FP32"
        head["inputs"].append({"name": name, "shape": list(a.shape), "datatype": dt,
                               "parameters": {"binary_data_size": a.nbytes}})
    h = json.dumps(head).encode()
    return h + b"".join(np.ascontiguousarray(a).tobytes() for a in arrays), {
        "Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(h))}


def parse_output(resp, data):
    n = int(resp.getheader("Inference-Header-Content-Length"))
    meta = json.loads(data[:n])
    out = [o for o in meta["outputs"] if o["name"] == "output"][0]
    return meta, np.frombuffer(data[n:], dtype=np.float32).reshape(out["shape"])


def one_shot(conn, arrays):
    mask = np.tril(np.ones((TOKENS, TOKENS), dtype=np.bool_))
    body, headers = infer_request(list(arrays) + [mask], ["queries", "keys", "values", "attn_mask"], {})
    st, r, data = conn.request("POST", "/v2/models/%s/infer" % MODEL, body, headers)
    if st != 200:
        raise RuntimeError("one-shot forward: HTTP %d %s" % (st, data[:200]))
    return parse_output(r, data)[1].copy()


def live_ids(url):
    """The ids live on one replica, asked of it directly; None when it does not answer."""
    st, _, data = Conn(url).request("GET", "/v2/models/%s/sequences" % MODEL)
    if st != 200:
        return None
    return {str(s["id"]) for s in json.loads(data)["sequences"]}


class Run:
    def __init__(self, args):
        self.proxy = args.proxy
        self.replicas = [(u, int(p)) for u, p in (r.rsplit(",", 1) for r in args.replica)]
        self.lock = threading.Lock()
        self.failures = []
        self.counts = {}
        self.info = {}

    def fail(self, msg):
        with self.lock:
            if len(self.failures) < 30:
                self.failures.append(msg)

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    # One step: (status, output rows or None, error text).
    def step(self, conn, sid, arrays, lo, hi, start, end, header=True):
        params = {"sequence_id": sid}
        if start:
            params["sequence_start"] = True
        if end:
            params["sequence_end"] = True
        body, headers = infer_request([a[:, lo:hi] for a in arrays], ["queries", "keys", "values"], params)
        if header:
            headers["Sequence-Id"] = str(sid)
        st, r, data = conn.request("POST", "/v2/models/%s/infer" % MODEL, body, headers)
        if st != 200:
            return st, None, data[:300].decode("utf-8", "replace")
        if r.getheader("Sequence-Id") != str(sid):
            return -1, None, "reply header Sequence-Id %r" % r.getheader("Sequence-Id")
        meta, out = parse_output(r, data)
        p = meta.get("parameters", {})
        want = {"sequence_id": sid, "sequence_length": hi}
        if end:
            want["sequence_end"] = True
        if p != want:
            return -1, None, "reply parameters %s, want %s" % (p, want)
        if out.shape != (N, hi - lo, H, D):
            return -1, None, "output shape %s" % (out.shape,)
        return 200, out, ""

    def sequence(self, i, phase, ref, expect, barrier, kill):
        """One client: the whole sequence, with restores in phase 2."""
        passed = [barrier is None]
        try:
            self.client(i, phase, ref, expect, barrier, kill, passed)
        except Exception as e:                # a bug here must fail the run, not hang it
            self.fail("sequence %d of phase %d: %s: %s" % (i, phase, type(e).__name__, e))
        finally:
            if not passed[0]:
                barrier.abort()               # the others must not wait for this one

    def client(self, i, phase, ref, expect, barrier, kill, passed):
        sid, arrays, sizes = ident(i, phase), inputs(i), chunking(i)
        bounds = np.cumsum([0] + sizes)
        conn = Conn(self.proxy)
        got = np.full((N, TOKENS, H, D), np.nan, dtype=np.float32)
        export = None                      # (chunk index, bytes)
        restores, ci, fresh = 0, 0, True
        while ci < len(sizes):
            last = ci == len(sizes) - 1
            if barrier is not None and last:
                barrier.wait(timeout=60)
                passed[0] = True
            lo, hi = int(bounds[ci]), int(bounds[ci + 1])
            st, out, err = self.step(conn, sid, arrays, lo, hi, fresh, last)
            if st == 200:
                self.count("steps_200")
                if not np.allclose(out, ref[:, lo:hi], rtol=RTOL, atol=ATOL):
                    self.fail("sequence %s rows %d..%d: not within the tolerance of the one-shot forward "
                              "(max |diff| %g)" % (sid, lo, hi, np.abs(out - ref[:, lo:hi]).max()))
                    return
                if expect is not None and out.tobytes() != expect[:, lo:hi].tobytes():
                    self.fail("sequence %s rows %d..%d: 200 but not bit-identical to the steady run" % (sid, lo, hi))
                    return
                got[:, lo:hi] = out
                ci += 1
                fresh = False
                if kill is not None:
                    kill.tick()
                    if not last and (export is None or hi - int(bounds[export[0]]) >= EXPORT_EVERY):
                        # With the header, as behind ingress-nginx (which cannot hash a path).
                        est, _, data = conn.request("GET", seq_path(sid), headers={"Sequence-Id": str(sid)})
                        if est == 200:
                            export = (ci, data)
                            self.count("exports")
                        elif kill.fired.is_set() and est in (404, 502):
                            self.count("exports_lost")   # the next step fails the same way
                        else:
                            self.fail("export of %s: HTTP %d %s" % (sid, est, data[:200]))
                            return
                continue
            if kill is None or not kill.fired.is_set() or st not in (404, 502) or restores >= 3:
                self.fail("sequence %s rows %d..%d: HTTP %d %s" % (sid, lo, hi, st, err))
                return
            # Lost with the killed replica.  A 502 (the step was in flight, or
            # went out on a kept-alive connection to the dead replica) does not
            # say whether the step was applied: ask for the state.  The owner
            # would answer (and the export would say where it stands); the
            # next replica on the ring answers 404.
            self.count("lost_%d" % st)
            if st == 502:
                est, _, data = conn.request("GET", seq_path(sid))
                if est != 404:
                    self.fail("sequence %s: 502, then its export answered HTTP %d (want 404 from the next replica)"
                              % (sid, est))
                    return
                err = data[:300].decode("utf-8", "replace")
                self.count("lost_502_then_404")
            with self.lock:
                self.info.setdefault("lost", []).append(str(sid))
                self.info.setdefault("a_404", err)
            restores += 1
            if export is None:               # nothing exported yet: start over
                ci, fresh = 0, True
                self.count("restarted")
                continue
            pst, _, data = conn.request("PUT", seq_path(sid), export[1], {"Content-Type": "application/octet-stream",
                                                                          "Sequence-Id": str(sid)})
            want_len = int(bounds[export[0]])
            if pst != 200 or json.loads(data).get("sequence_length") != want_len:
                self.fail("restore of %s: HTTP %d %s" % (sid, pst, data[:200]))
                return
            self.count("restored")
            ci = export[0]
        if np.isnan(got).any():
            self.fail("sequence %s: rows missing" % sid)
        with self.lock:
            self.info.setdefault("outputs", {})[(phase, i)] = got

    def threads(self, phase, refs, expects, barrier=None, kill=None):
        ts = [threading.Thread(target=self.sequence,
                               args=(i, phase, refs[i], expects[i] if expects else None, barrier, kill))
              for i in range(SEQS)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()


class Killer:
    """SIGKILLs, after a number of answered steps, the replica holding the most unfinished sequences."""

    def __init__(self, run, at, unfinished):
        self.run, self.at, self.unfinished = run, at, unfinished
        self.n, self.lock, self.fired = 0, threading.Lock(), threading.Event()
        self.victim = None

    def tick(self):
        with self.lock:
            self.n += 1
            go = self.n == self.at
        if go:
            self.kill()

    def kill(self):
        best = None
        for url, pid in self.run.replicas:
            ids = live_ids(url) or set()
            mine = ids & self.unfinished()
            if best is None or len(mine) > len(best[2]):
                best = (url, pid, mine)
        url, pid, mine = best
        os.kill(pid, signal.SIGKILL)
        self.victim = {"url": url, "pid": pid, "unfinished_sequences": sorted(mine)}
        self.fired.set()


# ---- replays: a replica that takes a step and then fails it ------------------------------------

def fake(port, log):
    """A stand-in replica on loopback: ready on /v2/health/ready; a request with
    a Sequence-Id header is logged (the id, a line in LOG), then, for an id
    starting with "u", answered 503 + Retry-After (full, or draining), and for
    one starting with "r", read whole and reset (killed after applying it)."""
    import socket
    import socketserver
    import struct

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            f = self.request.makefile("rb")
            while True:
                head = []
                while True:
                    line = f.readline()
                    if not line:
                        return
                    if line in (b"\r\n", b"\n"):
                        break
                    head.append(line.decode("latin-1").rstrip("\r\n"))
                if not head:
                    return
                fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
                f.read(int(fields.get("content-length", 0)))
                sid = fields.get("sequence-id")
                if sid is None:
                    body, status = b'{"live": true}', "200 OK"
                else:
                    with open(log, "a") as lf:
                        lf.write(sid + "\n")
                    if sid.startswith("r"):
                        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.request.close()
                        return
                    body, status = b'{"error": "full"}', "503 Service Unavailable\r\nRetry-After: 1"
                self.request.sendall(("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                                      "Sequence-Id: %s\r\n\r\n" % (status, len(body), sid or "")).encode() + body)

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler) as srv:
        srv.daemon_threads = True
        srv.serve_forever()


def replay(args):
    """Through nginx over [fake, real]: a sequence start that the fake took and
    then failed must come back to the client as the fake's 503, or as 502, and
    must never reach the real replica (a replay there would start the
    sequence where it does not belong, or apply a step twice)."""
    run = Run(argparse.Namespace(proxy=args.proxy, replica=[]))
    conn = Conn(args.proxy)
    arrays = inputs(0)
    seen = lambda: set(open(args.fake_log).read().split()) if os.path.exists(args.fake_log) else set()
    found, problems = {}, []
    # 503 first: nginx counts a reset as a failure and leaves the fake alone for a while.
    for mode, want in (("u", 503), ("r", 502)):
        if mode not in args.modes:
            continue
        for n in range(1, 60):
            sid = "%s%d" % (mode, n)
            st, _, err = run.step(conn, sid, arrays, 0, 1, True, False)
            if sid not in seen():
                if st != 200:
                    problems.append("%s went to the real replica and got HTTP %d %s" % (sid, st, err))
                Conn(args.real).request("DELETE", seq_path(sid))
                continue
            on_real = sid in (live_ids(args.real) or set())
            found[sid] = {"status": st, "on_real_replica": on_real}
            if st != want:
                problems.append("%s: the fake answered %d / reset, the client got HTTP %d (want %d)"
                                % (sid, 503 if mode == "u" else 0, st, want))
            if on_real:
                problems.append("%s: nginx sent it on to the real replica after the fake had taken it" % sid)
                Conn(args.real).request("DELETE", seq_path(sid))
            break
        else:
            problems.append("no %s... id reached the fake" % mode)
    print(json.dumps({"taken_by_the_fake": found, "problems": problems}, indent=1))
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("proxy")
    p.add_argument("--replica", action="append", required=True, metavar="URL,PID")
    p.add_argument("--summary")
    p = sub.add_parser("fake")
    p.add_argument("port", type=int)
    p.add_argument("log")
    p = sub.add_parser("replay")
    p.add_argument("proxy")
    p.add_argument("--real", required=True)
    p.add_argument("--fake-log", required=True)
    p.add_argument("--modes", default="ur", help="u: the fake answers 503; r: it resets (default: both)")
    args = ap.parse_args()
    if args.cmd == "fake":
        fake(args.port, args.log)
        return 0
    if args.cmd == "replay":
        return replay(args)
    run = Run(args)
    t0 = time.monotonic()
    summary = {}
    conn = Conn(run.proxy)
    refs = [one_shot(conn, inputs(i)) for i in range(SEQS)]

    # ---- 1. steady, with a look at where the sequences live before their last steps.
    placement = {}

    def look():
        for url, _ in run.replicas:
            placement[url] = live_ids(url)
        for i in range(SEQS):
            sid = ident(i, 1)
            st, _, data = conn.request("GET", seq_path(sid))
            if st != 200:
                run.fail("export of %s through nginx by path: HTTP %d %s" % (sid, st, data[:200]))

    run.threads(1, refs, None, barrier=threading.Barrier(SEQS, action=look))
    holders = {}
    for url, ids in placement.items():
        if ids is None:
            run.fail("replica %s does not list its sequences" % url)
            continue
        for sid in ids:
            holders.setdefault(sid, []).append(url)
    for i in range(SEQS):
        h = holders.get(str(ident(i, 1)), [])
        if len(h) != 1:
            run.fail("sequence %s was live on %d replicas before its last step" % (ident(i, 1), len(h)))
    spread = {u: len(ids or ()) for u, ids in placement.items()}
    summary["steady"] = {"sequences": SEQS, "tokens": TOKENS, "steps_200": run.counts.get("steps_200", 0),
                         "sequences_per_replica": spread}
    if sum(1 for n in spread.values() if n) < 2:
        run.fail("every sequence lived on one replica: the hash does not spread them")
    expects = [run.info.get("outputs", {}).get((1, i)) for i in range(SEQS)]
    if any(e is None for e in expects):
        run.fail("the steady run did not finish every sequence")

    # Control: the same protocol without the header is not routed by the id.
    sid, arrays = "nohdr-1", inputs(0)
    c404 = 0
    for t in range(12):
        st, _, _ = run.step(conn, sid, arrays, t, t + 1, t == 0, False, header=False)
        c404 += st == 404
    for url, _ in run.replicas:
        Conn(url).request("DELETE", seq_path(sid))
    summary["control_without_header_404"] = "%d of 11 steps" % c404
    if c404 == 0:
        run.fail("control: a sequence without the Sequence-Id header never got 404 (the check proves nothing)")

    # ---- 2. the same sequences under new ids; one replica SIGKILLed mid-way.
    if not run.failures:
        run.counts.clear()
        steps_total = sum(len(chunking(i)) for i in range(SEQS))

        def unfinished():
            done = {str(ident(i, 2)) for i in range(SEQS) if (2, i) in run.info.get("outputs", {})}
            return {str(ident(i, 2)) for i in range(SEQS)} - done

        kill = Killer(run, int(KILL_AT * steps_total), unfinished)
        run.threads(2, refs, expects, kill=kill)
        lost = set(run.info.get("lost", []))
        summary["kill"] = {"steps": steps_total, "killed_after": kill.at, "victim": kill.victim,
                           "lost": sorted(lost), "counts": dict(run.counts),
                           "a_404": run.info.get("a_404")}
        if not kill.fired.is_set():
            run.fail("no replica was killed")
        else:
            if not kill.victim["unfinished_sequences"]:
                run.fail("the killed replica held no unfinished sequence")
            stray = lost - set(kill.victim["unfinished_sequences"])
            if stray:
                run.fail("sequences on surviving replicas failed: %s" % sorted(stray))
            if not lost:
                run.fail("no sequence was lost with the killed replica")
            if run.counts.get("restored", 0) + run.counts.get("restarted", 0) < len(lost):
                run.fail("not every lost sequence was restored")
        done = sum(1 for i in range(SEQS) if (2, i) in run.info.get("outputs", {}))
        summary["kill"]["finished_bit_exact"] = done
        if done != SEQS:
            run.fail("%d of %d sequences finished after the kill" % (done, SEQS))
        # Nothing is left behind on the survivors (every sequence ended).
        for url, pid in run.replicas:
            if kill.victim and pid == kill.victim["pid"]:
                continue
            ids = live_ids(url)
            if ids is None or ids & {str(ident(i, p)) for i in range(SEQS) for p in (1, 2)}:
                run.fail("replica %s still holds sequences: %s" % (url, ids))

    summary["seconds"] = round(time.monotonic() - t0, 2)
    summary["failures"] = run.failures
    text = json.dumps(summary, indent=1)
    print(text)
    if args.summary:
        with open(args.summary, "w") as f:
            f.write(text)
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Runs attnd's integration tests: `python3 main.py BUILD_DIR [FILTER]`."""
import json
import os
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from harness import CTX, TESTS, Server  # noqa: E402
import t_api  # noqa: E402,F401  (registers tests)
import t_golden  # noqa: E402
import t_repo  # noqa: E402,F401
import t_runtime  # noqa: E402
import t_control  # noqa: E402,F401
import t_grpc  # noqa: E402
import t_maps  # noqa: E402
import t_seq  # noqa: E402
import t_wire  # noqa: E402


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    filt = sys.argv[2] if len(sys.argv) > 2 else ""
    root = os.path.dirname(os.path.dirname(HERE))
    CTX.root = root
    CTX.build = os.path.abspath(build)
    CTX.attnd = os.path.join(CTX.build, "attnd")
    CTX.attn = os.path.join(CTX.build, "attn")
    CTX.golden = os.path.join(CTX.build, "golden")
    CTX.cases = os.path.join(root, "tests", "golden", "cases")
    for exe in (CTX.attnd, CTX.attn, CTX.golden):
        if not os.access(exe, os.X_OK):
            print(f"integration: {exe} is missing (make all first)")
            return 2
    with tempfile.TemporaryDirectory(prefix="attnd-it-") as work:
        CTX.work = work
        t0 = time.time()
        cases = harness.prepare_golden()
        print(f"integration: {len(cases)} golden cases prepared in {time.time() - t0:.1f} s", flush=True)
        golden = Server("--model-repository", CTX.repo, tag="golden")
        t_golden.SERVER["golden"] = t_api.SERVER["golden"] = t_runtime.SERVER["golden"] = t_wire.SERVER["golden"] = golden
        t_golden.SERVER["builtin"] = builtin_srv = Server(tag="builtin")
        st, h, b = golden.request("POST", "/v2/repository/index")
        builtin = {e["name"] for e in json.loads(b) if e.get("builtin")}
        t_golden.register(cases, builtin)
        # sequences: two servers of the same repository (an export moves between them)
        # and two of the built-ins only (the repository's cases shadow some built-in names).
        # Each pair computes with different sgemms (ATTN_GEMM), as two replicas whose
        # calibrations differ: a moved sequence keeps its own and continues bit for bit.
        gemm = ({"ATTN_GEMM": "attn"}, {"ATTN_GEMM": "openblas"})
        seq_srv = [Server("--model-repository", CTX.repo, "--drain-timeout", "1", env=g, tag=t)
                   for t, g in zip(("seq", "seq2"), gemm)]
        # bseq2 never runs a request on its HTTP thread: sequences move between the two paths
        seq_srv += [Server("--drain-timeout", "1", env=gemm[0], tag="bseq"),
                    Server("--drain-timeout", "1", "--inline-max-us", "0", env=gemm[1], tag="bseq2")]
        t_seq.SERVER.update(zip(("seq", "seq2", "bseq", "bseq2"), seq_srv))
        t_seq.register(cases)
        t_maps.SERVER["golden"] = golden
        t_maps.register(cases)
        t_grpc.SERVER["golden"] = golden
        t_grpc.register(cases)
        passed, failed = 0, []
        for name, fn in TESTS:
            if filt and filt not in name:
                continue
            t = time.time()
            try:
                fn()
                passed += 1
                print(f"  ok   {name} ({time.time() - t:.2f} s)", flush=True)
            except Exception as e:  # noqa: BLE001
                failed.append(name)
                print(f"  FAIL {name}: {e}", flush=True)
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
        try:
            rc = t_grpc.stop_all()
            if rc != 0:
                failed.append(f"the gRPC server: exit code {rc}")
        except AssertionError as e:
            failed.append("gRPC server stop")
            print(f"  FAIL gRPC server stop: {e}")
        for srv in (golden, builtin_srv, *seq_srv):
            try:
                rc = srv.stop()
                if rc != 0:
                    failed.append(f"{srv.log_path}: exit code {rc}")
                    print(f"  FAIL server exited {rc}:\n{srv.log()[-3000:]}")
            except AssertionError as e:
                failed.append("server stop")
                print(f"  FAIL server stop: {e}")
        print(f"integration: {passed} passed, {len(failed)} failed ({time.time() - t0:.1f} s)")
        for f in failed:
            print(f"  failed: {f}")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

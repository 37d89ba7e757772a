"""Checks deploy/grafana/attnd-dashboard.json against the metrics a live
attnd exports:

  /usr/bin/python3 deploy/grafana/check.py BUILD_DIR

Starts BUILD_DIR/attnd on a free loopback port, sends an inference and a
short sequence so that the per-model series exist, reads /metrics, then
checks that the dashboard is what make_dashboard.py writes, that its panels
are well formed, and that every PromQL query names only metrics attnd
exports, with labels those metrics carry (or Prometheus' target labels job
and instance).  A broken copy of the dashboard (a renamed metric, a wrong
label) must fail the same checks, or the check proves nothing.  Exit 0 when
everything holds."""
import copy
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_dashboard  # noqa: E402

FUNCS = {"sum", "rate", "irate", "increase", "histogram_quantile", "avg", "max", "min", "count", "label_values",
         "topk", "bottomk", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
         "offset", "bool", "clamp_min", "clamp_max", "abs", "delta", "deriv", "avg_over_time", "max_over_time"}
TARGET_LABELS = {"job", "instance"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def req(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=json.dumps(body).encode() if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def live_metrics(build):
    port = free_port()
    p = subprocess.Popen([os.path.join(build, "attnd"), "--port", str(port), "--drain-timeout", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                if req(port, "GET", "/v2/health/ready")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        t = lambda n: {"name": n, "datatype": "FP32", "shape": [1, 1, 1, 2], "data": [1, 2]}  # noqa: E731
        qkv = [t("queries"), t("keys"), t("values")]
        assert req(port, "POST", "/v2/models/full/infer", {"inputs": qkv})[0] == 200
        assert req(port, "POST", "/v2/models/full/infer",
                   {"parameters": {"sequence_id": 1, "sequence_start": True, "sequence_end": True}, "inputs": qkv})[0] == 200
        req(port, "POST", "/v2/models/nope/infer", {"inputs": qkv})
        return req(port, "GET", "/metrics")[1].decode()
    finally:
        p.terminate()
        p.wait(timeout=30)


def parse_metrics(text):
    """{series name: set of label names}, and the family types."""
    series, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            series.setdefault(name, set())
        elif line and not line.startswith("#"):
            m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? ', line)
            if m:
                labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ""))
                series.setdefault(m.group(1), set()).update(labels)
    return series, types


def expr_errors(expr, series):
    """The metric names and labels of one PromQL expression against the
    exported series."""
    errs = []
    lv = re.fullmatch(r'\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*', expr)
    if lv:  # Grafana's label_values(metric, label)
        if lv.group(1) not in series:
            return [f"attnd exports no metric '{lv.group(1)}'"]
        if lv.group(2) not in series[lv.group(1)] | TARGET_LABELS:
            return [f"{lv.group(1)} has no label '{lv.group(2)}'"]
        return []
    text = re.sub(r'"[^"]*"', '""', expr)           # strings
    text = re.sub(r'\[[^\]]*\]', '', text)           # range selectors
    used_metrics = []
    # metric{matchers}
    for m in re.finditer(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}', text):
        used_metrics.append(m.group(1))
        for lab in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!=|!~|=)', m.group(2)):
            if lab not in series.get(m.group(1), set()) | TARGET_LABELS:
                errs.append(f"{m.group(1)} has no label '{lab}' (it has {sorted(series.get(m.group(1), []))})")
    bare = re.sub(r'\{[^}]*\}', ' ', text)
    grouped = []
    for m in re.finditer(r'\b(?:by|without)\s*\(([^)]*)\)', bare):
        grouped += [x.strip() for x in m.group(1).split(",") if x.strip()]
    bare = re.sub(r'\b(?:by|without)\s*\([^)]*\)', ' ', bare)
    for m in re.finditer(r'(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?', bare):
        name, call = m.group(1), m.group(2)
        if call or name in FUNCS or name.startswith("__"):
            continue
        used_metrics.append(name)
    for name in used_metrics:
        if name not in series:
            errs.append(f"attnd exports no metric '{name}'")
    have = set().union(*(series.get(n, set()) for n in used_metrics)) if used_metrics else set()
    for lab in grouped:
        if lab not in have | TARGET_LABELS:
            errs.append(f"'{lab}' is a label of none of {used_metrics}")
    if not used_metrics:
        errs.append("names no metric")
    return errs


def dashboard_errors(d, series):
    errs = []
    if d != make_dashboard.dashboard():
        errs.append("attnd-dashboard.json differs from what make_dashboard.py writes (run it)")
    if not d.get("uid") or not d.get("title"):
        errs.append("no uid or title")
    ids = [p["id"] for p in d["panels"]]
    if len(ids) != len(set(ids)):
        errs.append("panel ids repeat")
    names = {v["name"] for v in d["templating"]["list"]}
    for need in ("datasource", "model"):
        if need not in names:
            errs.append(f"no ${need} variable")
    for v in d["templating"]["list"]:
        q = v.get("query")
        if isinstance(q, dict):
            errs += [f"variable {v['name']}: {e}" for e in expr_errors(q["query"], series)]
    n_queries = 0
    for p in d["panels"]:
        if p["type"] == "row":
            continue
        g = p.get("gridPos", {})
        if not all(k in g for k in ("h", "w", "x", "y")) or g["x"] + g["w"] > 24:
            errs.append(f"panel '{p['title']}': bad gridPos {g}")
        if not p.get("targets"):
            errs.append(f"panel '{p['title']}' has no query")
        for t in p.get("targets", []):
            n_queries += 1
            if t.get("datasource", {}).get("uid") != "${datasource}":
                errs.append(f"panel '{p['title']}' does not use the $datasource variable")
            errs += [f"panel '{p['title']}': {e}" for e in expr_errors(t["expr"], series)]
    if n_queries < 10:
        errs.append(f"only {n_queries} queries")
    # what the issue asks the dashboard to show
    text = json.dumps(d)
    for must in ("attnd_inference_request_success", "histogram_quantile", "attnd_queue_depth", 'code=\\"503\\"',
                 "attnd_inference_compute_infer_duration_us", "attnd_sequences_live"):
        if must not in text:
            errs.append(f"no panel uses {must}")
    return errs


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    with open(os.path.join(HERE, "attnd-dashboard.json")) as f:
        d = json.load(f)
    series, types = parse_metrics(live_metrics(build))
    errs = dashboard_errors(d, series)
    for e in errs:
        print(f"  {e}")
    # the check must be able to fail: a renamed metric, a wrong label, a missing datasource
    bad = 0
    for breakage in ("metric", "label", "group"):
        b = copy.deepcopy(d)
        t = next(p for p in b["panels"] if p["type"] != "row")["targets"][0]
        if breakage == "metric":
            t["expr"] = t["expr"].replace("attnd_inference_request_success", "attnd_inference_request_succeeded")
        elif breakage == "label":
            t["expr"] = t["expr"].replace('model=~', 'modl=~')
        else:
            t["expr"] = t["expr"].replace('by (model)', 'by (tenant)')
        # structure equality would flag every copy: check only the queries
        found = [e for e in dashboard_errors(b, series) if "make_dashboard" not in e]
        if not found:
            print(f"  a dashboard with a broken {breakage} passed the check")
            bad += 1
    if errs or bad:
        print("grafana: FAIL")
        return 1
    n = sum(len(p.get("targets", [])) for p in d["panels"])
    print(f"grafana: ok ({n} queries against {len(series)} exported series)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

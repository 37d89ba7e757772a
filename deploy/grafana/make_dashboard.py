"""Writes deploy/grafana/attnd-dashboard.json, the Grafana dashboard for
attnd's Prometheus metrics (docs/server.md, "Metrics"):

  /usr/bin/python3 deploy/grafana/make_dashboard.py

The panels are declared below as (title, unit, [PromQL...]); check.py tests
every query against the metric names and labels a live attnd exports."""
import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}
M = 'model=~"$model"'

ROWS = [
    ("Requests", [
        ("Inference requests / s by model", "reqps",
         [f'sum by (model) (rate(attnd_inference_request_success{{{M}}}[$__rate_interval]))']),
        ("Inference requests / s by protocol (HTTP, gRPC)", "reqps",
         [f'sum by (protocol) (rate(attnd_inference_request_success{{{M}}}[$__rate_interval]))']),
        ("Failed requests / s by reason", "reqps",
         [f'sum by (reason) (rate(attnd_inference_request_failure{{{M}}}[$__rate_interval]))']),
        ("HTTP responses / s by status", "reqps",
         ['sum by (code) (rate(attnd_http_responses[$__rate_interval]))']),
        ("503s / s (queue full, sequence limits, draining)", "reqps",
         ['sum(rate(attnd_http_responses{code="503"}[$__rate_interval]))']),
    ]),
    ("Latency", [
        ("Request latency quantiles", "s",
         [f'histogram_quantile({q}, sum by (le) (rate(attnd_inference_request_duration_seconds_bucket{{{M}}}[$__rate_interval])))'
          for q in ("0.5", "0.9", "0.99")]),
        ("p99 latency by model", "s",
         [f'histogram_quantile(0.99, sum by (le, model) (rate(attnd_inference_request_duration_seconds_bucket{{{M}}}[$__rate_interval])))']),
        ("Compute time per request by model (input, infer, output)", "µs",
         [f'sum by (model) (rate(attnd_inference_compute_{p}_duration_us{{{M}}}[$__rate_interval])) / '
          f'sum by (model) (rate(attnd_inference_exec_count{{{M}}}[$__rate_interval]))' for p in ("input", "infer", "output")]),
        ("Queue time per request by model", "µs",
         [f'sum by (model) (rate(attnd_inference_queue_duration_us{{{M}}}[$__rate_interval])) / '
          f'sum by (model) (rate(attnd_inference_request_success{{{M}}}[$__rate_interval]))']),
    ]),
    ("Load", [
        ("Queue depth and capacity", "short", ['attnd_queue_depth', 'attnd_queue_capacity']),
        ("Pending and executing requests by model", "short",
         [f'sum by (model) (attnd_inference_pending_request_count{{{M}}})',
          f'sum by (model) (attnd_inference_executing_request_count{{{M}}})']),
        ("HTTP requests in flight", "short", ['attnd_http_requests_in_flight']),
        ("Ready replicas", "short", ['sum(attnd_ready)']),
        ("Resident memory", "bytes", ['process_resident_memory_bytes{job=~"$job"}']),
    ]),
    ("Sequences", [
        ("Live sequences and capacity", "short", ['sum(attnd_sequences_live)', 'sum(attnd_sequences_capacity)']),
        ("Sequence state and budget", "bytes", ['sum(attnd_sequence_state_bytes)', 'sum(attnd_sequence_memory_budget_bytes)']),
        ("Sequence ends / s by reason", "short", ['sum by (reason) (rate(attnd_sequence_ends_total[$__rate_interval]))']),
        ("Tokens appended / s and sequences started / s", "short",
         ['sum(rate(attnd_sequence_tokens_total[$__rate_interval]))', 'sum(rate(attnd_sequences_started_total[$__rate_interval]))']),
    ]),
]


def dashboard():
    panels, pid, y = [], 1, 0
    for row, items in ROWS:
        panels.append({"id": pid, "type": "row", "title": row, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid += 1
        y += 1
        for i, (title, unit, exprs) in enumerate(items):
            panels.append({
                "id": pid, "type": "timeseries", "title": title, "datasource": DS,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": y + 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [{"refId": chr(65 + k), "datasource": DS, "expr": e, "legendFormat": "__auto"}
                            for k, e in enumerate(exprs)],
            })
            pid += 1
        y += 8 * ((len(items) + 1) // 2)
    return {
        "uid": "attnd-overview", "title": "attnd", "tags": ["attnd", "inference"],
        "schemaVersion": 39, "version": 1, "editable": True, "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
            {"name": "job", "type": "query", "datasource": DS, "label": "Job", "includeAll": True, "multi": True,
             "query": {"query": "label_values(attnd_build_info, job)", "refId": "job"}, "refresh": 2, "current": {}},
            {"name": "model", "type": "query", "datasource": DS, "label": "Model", "includeAll": True, "multi": True,
             "allValue": ".*", "query": {"query": "label_values(attnd_inference_request_success, model)", "refId": "model"},
             "refresh": 2, "current": {}},
        ]},
        "panels": panels,
    }


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attnd-dashboard.json")
    with open(out, "w") as f:
        json.dump(dashboard(), f, indent=2)
        f.write("\n")
    print(f"wrote {out}")

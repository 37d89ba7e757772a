"""flask_peer.py — the plain-Python peer of attnd for issue 6's server numbers.

A minimal Flask + PyTorch app (Debian python3-flask, python3-torch) that serves
the Open Inference Protocol JSON request attnd's built-in `full` model takes:

    POST /v2/models/full/infer
    {"inputs": [{"name": "queries", "shape": [N, L, H, E], "datatype": "FP32", "data": [...]},
                {"name": "keys", ...}, {"name": "values", ...}]}

and answers {"model_name", "model_version", "outputs": [{"name": "output", ...}]}.
The attention is computed the way fast-transformers' FullAttention does
(einsum, additive full mask and key-length mask, softmax with temperature
1/sqrt(E), einsum), in eval mode under torch.no_grad().  Nothing is tuned: this
is the app a Python user would write.  Served by werkzeug's threaded server
(Flask's own), the usual "plain Flask" deployment.

    /usr/bin/python3 bench/server/flask_peer.py [--host 127.0.0.1] [--port 0] [--torch-threads T]

Prints `listening on HOST:PORT` on stderr once it accepts connections.
"""
import argparse
import logging
import math
import sys

import torch
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

app = Flask(__name__)


def full_attention(queries, keys, values):
    # fast_transformers.attention.FullAttention.forward with FullMask / all-ones lengths
    N, L, H, E = queries.shape
    _, S, _, D = values.shape
    softmax_temp = 1. / math.sqrt(E)
    attn_mask = torch.zeros(L, S)          # FullMask(L, S).additive_matrix
    key_lengths = torch.zeros(N, S)        # LengthMask(full lengths).additive_matrix
    queries = queries * softmax_temp
    QK = torch.einsum("nlhe,nshe->nhls", queries, keys)
    QK = QK + attn_mask[None, None]
    QK = QK + key_lengths[:, None, None]
    A = torch.softmax(QK, dim=-1)          # dropout: identity in eval mode
    V = torch.einsum("nhls,nshd->nlhd", A, values)
    return V.contiguous()


@app.post("/v2/models/full/infer")
def infer():
    req = request.get_json()
    t = {}
    for i in req["inputs"]:
        if i["datatype"] != "FP32":
            return jsonify(error="only FP32"), 400
        t[i["name"]] = torch.tensor(i["data"], dtype=torch.float32).reshape(i["shape"])
    with torch.no_grad():
        out = full_attention(t["queries"], t["keys"], t["values"])
    resp = {"model_name": "full", "model_version": "1",
            "outputs": [{"name": "output", "datatype": "FP32", "shape": list(out.shape),
                         "data": out.flatten().tolist()}]}
    if "id" in req:
        resp["id"] = req["id"]
    return jsonify(resp)


@app.get("/v2/health/ready")
def ready():
    return "", 200


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    a = ap.parse_args()
    if a.torch_threads:
        torch.set_num_threads(a.torch_threads)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
    srv = make_server(a.host, a.port, app, threaded=True)
    print(f"listening on {a.host}:{srv.port}", file=sys.stderr, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()

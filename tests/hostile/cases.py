"""The hostile-input table: raw HTTP requests and what attnd must answer.

Each case is Case(group, name, request bytes, status, ...):
  status    the HTTP status expected (an int, or a tuple of acceptable ones);
  body      "json" (default): Content-Type application/json and {"error": "<non-empty>"};
            "mhd": libmicrohttpd itself refuses malformed HTTP before attnd sees the
            request, so the body is its own (HTML) text; only the 4xx status is checked;
  half_close  shut our write side after sending (for lengths that promise more:
            the request never ends, so closing without an answer (None) is right too);
  server    which server answers: "main" or "auth" (keys configured);
  msg       a text the error message must contain (None: any).

The server runs with --max-body-bytes 1M, --max-json-depth 32 (the default) and
the example repository (see hostile.py).  Models used: the built-in `full`
(queries/keys/values [N,L,H,E], optional attn_mask [L,S] BOOL and
query_lengths/key_lengths [N] INT64), the repository model full_key_lengths
(the same inputs, fixed config) and compositional_mask (x [B,N,16], mask [B,N]).
"""
import base64
import gzip
import json
import struct
import zlib

from rawhttp import binary_body, chunked, f32, floats, qkv_binary, qkv_inputs, qkv_json, request_bytes


class Case:
    def __init__(self, group, name, req, status, body="json", half_close=False, server="main", msg=None):
        self.group, self.name, self.req, self.status = group, name, req, status
        self.body, self.half_close, self.server, self.msg = body, half_close, server, msg


CASES = []
JSON = {"Content-Type": "application/json"}
OCTET = {"Content-Type": "application/octet-stream"}
INFER = "/v2/models/full/infer"


def case(group, name, req, status, **kw):
    CASES.append(Case(group, name, req, status, **kw))


def post(body, path=INFER, headers=None, **kw):
    h = dict(JSON)
    h.update(headers or {})
    return request_bytes("POST", path, body, h, **kw)


def post_bin(body_hlen, path=INFER, hlen=None, headers=None):
    body, n = body_hlen
    h = dict(OCTET)
    h["Inference-Header-Content-Length"] = str(n if hlen is None else hlen)
    h.update(headers or {})
    return request_bytes("POST", path, body, h)


def bin_edit(body_hlen, old, new):
    """Edits the JSON header of a binary request (the header length follows)."""
    body, n = body_hlen
    head = body[:n]
    assert old in head, old
    head = head.replace(old, new, 1)
    return head + body[n:], len(head)


def with_input(**fields):
    """The valid q/k/v request plus one more input."""
    return qkv_json(extra=[fields])


def one_input(**fields):
    """A request whose queries input is replaced by `fields` (keys and values stay valid)."""
    ins = qkv_inputs()
    ins[0] = dict(name="queries", **fields)
    return json.dumps({"inputs": ins}).encode()


VALID = qkv_json()


def tok(t):
    """The valid request with its first element written as the token t."""
    body = one_input(shape=[1, 3, 2, 2], datatype="FP32", data=[0.125] + floats(11))
    assert body.count(b"[0.125, ") == 1
    return post(body.replace(b"[0.125, ", b"[" + t + b", "))

# ---- truncated and malformed JSON -------------------------------------------------------
g = "truncated"
case(g, "empty body", post(b""), 400)
case(g, "just an open brace", post(b"{"), 400)
case(g, "cut after inputs", post(b'{"inputs": ['), 400)
case(g, "cut inside a string", post(b'{"inputs":[{"name":"quer'), 400)
case(g, "cut inside data", post(VALID[:VALID.index(b'"data"') + 20]), 400)
case(g, "cut at half", post(VALID[:len(VALID) // 2]), 400)
case(g, "cut one byte short", post(VALID[:-1]), 400)
case(g, "cut inside an escape", post(b'{"id":"\\u12'), 400)
case(g, "document is an array", post(b"[" + VALID + b"]"), 400)
case(g, "document is null", post(b"null"), 400)
case(g, "document is a number", post(b"42"), 400)
case(g, "trailing garbage", post(VALID + b" xyz"), 400)
case(g, "two documents", post(VALID + VALID), 400)
case(g, "byte order mark", post(b"\xef\xbb\xbf" + VALID), 400)
case(g, "invalid UTF-8 in a name", post(VALID.replace(b'"queries"', b'"q\xff\xfe"', 1)), 400)
case(g, "NUL inside the document", post(VALID[:10] + b"\0" + VALID[10:]), 400)
case(g, "single quotes", post(VALID.replace(b'"', b"'")), 400)
case(g, "comment", post(b"/* hi */" + VALID), 400)
case(g, "leading zero", tok(b'01'), 400)
case(g, "lone minus", tok(b'-'), 400)
case(g, "hex number", tok(b'0x10'), 400)
case(g, "object in data", tok(b'{"a": 1}'), 400)
case(g, "trailing comma in data", post(one_input(shape=[1, 3, 2, 2], datatype="FP32", data=floats(11) + [0.375])
                                       .replace(b"0.375]", b"0.375,]")), 400)

# ---- nesting -------------------------------------------------------------------------------
g = "nesting"
case(g, "100k open brackets", post(b"[" * 100000), 400)
case(g, "100k nested objects", post(b'{"a":' * 100000 + b"1" + b"}" * 100000), 400)
case(g, "33 nested objects (limit 32)", post(b'{"a":' * 33 + b"1" + b"}" * 33), 400)
case(g, "deep parameters", post(VALID[:-1] + b', "parameters": ' + b'{"a":' * 40 + b"1" + b"}" * 41), 400)
case(g, "10k nested data", post(one_input(shape=[1], datatype="FP32", data=None).replace(
    b'"data": null', b'"data": ' + b"[" * 10000 + b"1" + b"]" * 10000)), 400)
case(g, "data deeper than the shape", post(one_input(shape=[1, 3, 2, 2], datatype="FP32",
                                                     data=[[[[[v]] for v in floats(2)] for _ in range(3)]])), 400)
case(g, "ragged nested data", post(one_input(shape=[1, 3, 2, 2], datatype="FP32",
                                             data=[[[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 10], [11]]]])), 400)

# ---- numbers -------------------------------------------------------------------------------
g = "numbers"
case(g, "FP32 beyond range", tok(b'1e39'), 400)
case(g, "FP32 beyond range, negative", tok(b'-3.5e38'), 400)
case(g, "exponent of 1e999999999", tok(b'1e999999999'), 400)
case(g, "10k-digit number", tok(b"1" + b"0" * 10000), 400)
case(g, "INT64 beyond range", post(with_input(name="key_lengths", shape=[1], datatype="INT64",
                                              data=None).replace(b'"data": null', b'"data": [9223372036854775808]')), 400)
case(g, "INT32 beyond range", post(with_input(name="key_lengths", shape=[1], datatype="INT32", data=[2 ** 31])), 400)
case(g, "fractional length", post(with_input(name="key_lengths", shape=[1], datatype="INT64", data=[1.5])), 400)
case(g, "fractional dimension", post(one_input(shape=[1, 3.0, 2, 2], datatype="FP32", data=floats(12))), 400)
case(g, "dimension beyond int64", post(one_input(shape=[1], datatype="FP32", data=[1]).replace(
    b'"shape": [1]', b'"shape": [18446744073709551616]')), 400)
case(g, "dimension over --max-dim", post(one_input(shape=[1, 1048577, 1, 1], datatype="FP32", data=[1])), 400)
case(g, "string element", tok(b'"0.5"'), 400)
case(g, "boolean in FP32 data", tok(b'true'), 400)
BDS = b'"binary_data_size": 48'
case(g, "binary_data_size negative", post_bin(bin_edit(qkv_binary(), BDS, b'"binary_data_size": -48')), 400)
case(g, "binary_data_size not a number", post_bin(bin_edit(qkv_binary(), BDS, b'"binary_data_size": "48"')), 400)

# ---- NaN and infinities (full does not allow them) -------------------------------------------
g = "nonfinite"
for t in (b"NaN", b"Infinity", b"-Infinity", b'"NaN"', b'"-Infinity"'):
    case(g, f"{t.decode()} in JSON data", tok(t), 400)
case(g, "nan in lower case", tok(b'nan'), 400)
case(g, "NaN in a shape", post(one_input(shape=[1], datatype="FP32", data=[1]).replace(b'"shape": [1]',
                                                                                        b'"shape": [NaN]')), 400)
case(g, "NaN bits in binary data", post_bin(binary_body(
    [(n, "FP32", (1, 1, 1, 2), f32([0.5]) + b"\x00\x00\xc0\x7f") for n in ("queries", "keys", "values")])), 400)
case(g, "+Inf bits in binary data", post_bin(binary_body(
    [(n, "FP32", (1, 1, 1, 2), f32([0.5]) + b"\x00\x00\x80\x7f") for n in ("queries", "keys", "values")])), 400)

# ---- shapes --------------------------------------------------------------------------------
g = "shapes"
case(g, "product = 2^64 (wraps to 0) with no data", post(one_input(shape=[65536] * 4, datatype="FP32", data=[])), 400)
case(g, "product = 2^80 with one element", post(one_input(shape=[1048576] * 4, datatype="FP32", data=[1])), 400)
case(g, "product = 2^160 at rank 8", post(one_input(shape=[1048576] * 8, datatype="FP32", data=[1])), 400)
case(g, "product over the element limit", post(one_input(shape=[1024, 1024, 16, 2], datatype="FP32", data=[1])), 400)
case(g, "binary product = 2^64, size 0", post_bin(binary_body(
    [("queries", "FP32", (65536,) * 4, b"")] + [(n, "FP32", (1, 3, 2, 2), f32(floats(12))) for n in ("keys", "values")])),
    400)
case(g, "binary: size 2^62 claimed", post_bin(bin_edit(qkv_binary(), BDS, b'"binary_data_size": 4611686018427387904')),
     400)
case(g, "negative dimension", post(one_input(shape=[-1, 3, 2, 2], datatype="FP32", data=floats(12))), 400)
case(g, "INT64_MIN dimension", post(one_input(shape=[1, -9223372036854775808, 2, 2], datatype="FP32", data=[1])), 400)
case(g, "zero batch", post(qkv_json(shape=(0, 3, 2, 2))), 400)
case(g, "zero length", post(qkv_json(shape=(1, 0, 2, 2))), 400)
case(g, "zero heads", post(qkv_json(shape=(1, 3, 0, 2))), 400)
case(g, "zero features", post(qkv_json(shape=(1, 3, 2, 0))), 400)
case(g, "rank 9 (limit 8)", post(one_input(shape=[1] * 9, datatype="FP32", data=[1])), 400)
case(g, "rank 100000", post(one_input(shape=[1] * 100000, datatype="FP32", data=[1])), 400)
case(g, "rank 0 for a rank-4 input", post(one_input(shape=[], datatype="FP32", data=[1])), 400)
case(g, "rank 3 for a rank-4 input", post(one_input(shape=[3, 2, 2], datatype="FP32", data=floats(12))), 400)
case(g, "shape is not an array", post(one_input(shape="1,3,2,2", datatype="FP32", data=floats(12))), 400)
case(g, "more data than the shape", post(one_input(shape=[1, 3, 2, 2], datatype="FP32", data=floats(13))), 400)
case(g, "less data than the shape", post(one_input(shape=[1, 3, 2, 2], datatype="FP32", data=floats(11))), 400)
case(g, "queries and keys disagree on N", post(json.dumps({"inputs": [
    dict(qkv_inputs()[0], shape=[2, 3, 1, 2]), *qkv_inputs()[1:]]}).encode()), 400)

# ---- lengths and masks ---------------------------------------------------------------------
g = "lengths-masks"
case(g, "key_lengths beyond S", post(with_input(name="key_lengths", shape=[1], datatype="INT64", data=[4])), 400)
case(g, "key_lengths 2^62", post(with_input(name="key_lengths", shape=[1], datatype="INT64", data=[2 ** 62])), 400)
case(g, "key_lengths negative", post(with_input(name="key_lengths", shape=[1], datatype="INT64", data=[-1])), 400)
case(g, "query_lengths beyond L", post(with_input(name="query_lengths", shape=[1], datatype="INT64", data=[99])), 400)
case(g, "key_lengths for two batches of one", post(with_input(name="key_lengths", shape=[2], datatype="INT64",
                                                               data=[1, 1])), 400)
case(g, "key_lengths as FP32", post(with_input(name="key_lengths", shape=[1], datatype="FP32", data=[1.0])), 400)
case(g, "repository model: key_lengths beyond S", post(with_input(name="key_lengths", shape=[1], datatype="INT64",
                                                                  data=[1000]), path="/v2/models/full_key_lengths/infer"), 400)
case(g, "binary key_lengths beyond S", post_bin(qkv_binary(extra=[("key_lengths", "INT64", (1,),
                                                                    (1 << 40).to_bytes(8, "little"))])), 400)
case(g, "mask of the wrong shape", post(with_input(name="attn_mask", shape=[2, 3], datatype="BOOL", data=[True] * 6)), 400)
case(g, "mask of the wrong rank", post(with_input(name="attn_mask", shape=[3, 3, 1], datatype="BOOL", data=[True] * 9)),
     400)
case(g, "mask as FP32", post(with_input(name="attn_mask", shape=[3, 3], datatype="FP32", data=[1.0] * 9)), 400)
case(g, "mask element 2", post(with_input(name="attn_mask", shape=[3, 3], datatype="BOOL", data=[1, 2] + [1] * 7)), 400)
case(g, "binary mask byte 2", post_bin(qkv_binary(extra=[("attn_mask", "BOOL", (3, 3), bytes([1, 2] + [1] * 7))])), 400)
case(g, "compositional mask [B, N+1]", post(json.dumps({"inputs": [
    {"name": "x", "shape": [1, 3, 16], "datatype": "FP32", "data": floats(48)},
    {"name": "mask", "shape": [1, 4], "datatype": "BOOL", "data": [True] * 4}]}).encode(),
    path="/v2/models/compositional_mask/infer"), 400)

# ---- content types -------------------------------------------------------------------------
g = "content-type"
case(g, "multipart/form-data", post(b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n",
                                    headers={"Content-Type": "multipart/form-data; boundary=x"}), 415)
case(g, "image/png", post(VALID, headers={"Content-Type": "image/png"}), 415)
case(g, "text/html", post(VALID, headers={"Content-Type": "text/html"}), 415)
case(g, "application/xml", post(b"<inputs/>", headers={"Content-Type": "application/xml"}), 415)
case(g, "binary body labelled JSON (no header length)", post(qkv_binary()[0]), 400)
case(g, "binary body without its header length", post(qkv_binary()[0], headers=OCTET), 400)
case(g, "form-encoded body", post(b"inputs=1&x=2", headers={"Content-Type": "application/x-www-form-urlencoded"}), 400)

# ---- chunked bodies ------------------------------------------------------------------------
g = "chunked"
TE = {"Transfer-Encoding": "chunked"}
case(g, "chunked, truncated JSON", post(chunked(VALID[:200]), headers=TE), 400)
case(g, "chunked, over the body limit", post(chunked(b" " * 1100000, 65536), headers=TE), 413)
case(g, "chunk size not hex", post(b"zz\r\n" + VALID + b"\r\n0\r\n\r\n", headers=TE), (400,), body="mhd")
case(g, "chunk size overflows 64 bits", post(b"1" + b"0" * 20 + b"\r\nab\r\n0\r\n\r\n", headers=TE), (400, 413),
     body="mhd")
# A chunk-size line longer than the connection's memory (--max-header-bytes): libmicrohttpd
# 0.9.75 answers 500 itself and closes (known; attnd never sees the request).
case(g, "chunk size line of 100 KB", post(b"1;" + b"x" * 100000 + b"\r\na\r\n0\r\n\r\n", headers=TE),
     (400, 413, 431, 500), body="mhd")
case(g, "chunk shorter than announced, then EOF", post(b"100\r\n" + VALID[:50], headers=TE), (None, 400),
     half_close=True)
case(g, "chunked and Content-Length both", post(chunked(VALID), headers=dict(TE, **{"Content-Length": "5"})), 400)

# ---- length fields that lie ----------------------------------------------------------------
g = "lying-lengths"
IHCL = "Inference-Header-Content-Length"
case(g, "header length past the body", post_bin(qkv_binary(), hlen=100000), 400)
case(g, "header length negative", post_bin(qkv_binary(), hlen=-5), 400)
case(g, "header length not a number", post_bin(qkv_binary(), hlen="abc"), 400)
case(g, "header length 0", post_bin(qkv_binary(), hlen=0), 400)
case(g, "header length of 20 digits", post_bin(qkv_binary(), hlen="99999999999999999999"), 400)
case(g, "header length cuts the JSON", post_bin(qkv_binary(), hlen=30), 400)
case(g, "header length one too long", post_bin(qkv_binary(), hlen=qkv_binary()[1] + 1), 400)
case(g, "binary sizes add up past the body", post_bin((qkv_binary()[0][:-8], qkv_binary()[1])), 400)
case(g, "binary size smaller than the shape", post_bin(bin_edit(qkv_binary(), BDS, b'"binary_data_size": 44')), 400)
case(g, "binary bytes left over", post_bin((qkv_binary()[0] + b"\0\0\0\0", qkv_binary()[1])), 400)
case(g, "binary_data_size without the header", post(qkv_binary()[0][:qkv_binary()[1]]), 400)
case(g, "Content-Length over the limit (the body is read, then 413)", post(b" " * 2000000), 413)
case(g, "Content-Length over the limit, Expect: 100-continue", request_bytes(
    "POST", INFER, b"", dict(JSON, **{"Content-Length": "2000000", "Expect": "100-continue"}), length=False), 413)
case(g, "Content-Length 64 MiB past the limit, no body sent", request_bytes(
    "POST", INFER, b"", dict(JSON, **{"Content-Length": str((1 << 20) + (64 << 20) + 1)}), length=False), 413)
case(g, "Content-Length of 30 digits", request_bytes("POST", INFER, b"", dict(JSON, **{"Content-Length": "9" * 30}),
                                                     length=False), (400, 413), body="mhd")
case(g, "Content-Length negative", request_bytes("POST", INFER, VALID, dict(JSON, **{"Content-Length": "-1"}),
                                                 length=False), 400, body="mhd")
case(g, "Content-Length shorter than the body", request_bytes("POST", INFER, VALID,
                                                              dict(JSON, **{"Content-Length": "100"}), length=False), 400)
case(g, "Content-Length longer than the body, then EOF", request_bytes(
    "POST", INFER, VALID, dict(JSON, **{"Content-Length": str(len(VALID) + 100)}), length=False), (None, 400), half_close=True)
case(g, "two different Content-Lengths", request_bytes("POST", INFER, VALID, dict(JSON, **{
    "Content-Length": str(len(VALID)), "content-length": "7"}), length=False), 400)

# ---- paths and model names -----------------------------------------------------------------
g = "paths"
LOAD_BODY = json.dumps({"parameters": {"config": '{"type": "full", "config": {}}'}}).encode()
for p, st in (("/v2/repository/models/../load", 400),
              ("/v2/repository/models/%2e%2e/load", 400),
              ("/v2/repository/models/..%2F..%2Ftmp%2Fevil/load", 404),
              ("/v2/repository/models/%2E%2E%2F%2E%2E%2Fetc/load", 404),
              ("/v2/repository/models/a%2Fb/load", 404),
              ("/v2/repository/models/%2Ftmp%2Fevil/load", 404),
              ("/v2/repository/models/.hidden/load", 400),
              ("/v2/repository/models/a%00b/load", 404),
              ("/v2/repository/models/..%5C..%5Cevil/load", 400),
              ("/v2/repository/models/" + "a" * 65 + "/load", 400),
              ("/v2/repository/models/%C3%A9t%C3%A9/load", 400)):
    case(g, f"load {p}", post(LOAD_BODY, path=p), st)
for p in ("/v2/models/../../etc/passwd", "/v2/models/..%2F..%2Fetc%2Fpasswd/infer", "/v2/models/%2e%2e/infer",
          "/v2/models/full%2F..%2Ffull/infer", "/v2/models/full/../full/infer", "/v2/models//full/infer",
          "/v2/models/full/versions/..%2F1/infer"):
    case(g, f"infer {p}", post(VALID, path=p), (400, 404))
case(g, "load: a file outside weights.safetensors", post(json.dumps({"parameters": {
    "config": '{"type": "full", "config": {}}', "file:../../evil": base64.b64encode(b"x").decode()}}).encode(),
    path="/v2/repository/models/evil/load"), 400)
case(g, "load: a file in a subfolder", post(json.dumps({"parameters": {
    "config": '{"type": "full", "config": {}}', "file:2/weights.safetensors": base64.b64encode(b"x").decode()}}).encode(),
    path="/v2/repository/models/evil/load"), 400)
case(g, "GET with an absolute URI", request_bytes("GET", "http://evil.example/v2/models/full"), (400, 404))

# ---- unknown fields and names --------------------------------------------------------------
g = "unknown"
case(g, "unknown top-level field", post(qkv_json(extra_field=1)), 400)
case(g, "unknown input field", post(json.dumps({"inputs": [dict(qkv_inputs()[0], dims="N,L,H,E"),
                                                          *qkv_inputs()[1:]]}).encode()), 400)
case(g, "unknown input parameter (shared memory)", post(json.dumps({"inputs": [
    dict(qkv_inputs()[0], parameters={"shared_memory_region": "r"}), *qkv_inputs()[1:]]}).encode()), 400)
case(g, "unknown output field", post(qkv_json(outputs=[{"name": "output", "classes": 3}])), 400)
case(g, "unknown output parameter", post(qkv_json(outputs=[{"name": "output", "parameters": {"classification": 3}}])),
     400)
case(g, "unknown input name", post(with_input(name="extra", shape=[1], datatype="FP32", data=[1.0])), 400)
case(g, "unknown output name", post(qkv_json(outputs=[{"name": "logits"}])), 400)
case(g, "unknown datatype FP64", post(one_input(shape=[1, 3, 2, 2], datatype="FP64", data=floats(12))), 400)
case(g, "unknown datatype fp16 (lower case)", post(one_input(shape=[1, 3, 2, 2], datatype="fp16", data=floats(12))), 400)
case(g, "unknown datatype BYTES", post(one_input(shape=[1], datatype="BYTES", data=["x"])), 400)
case(g, "unknown config key (built-in)", post(qkv_json(parameters={"no_such_key": 1})), 400)
case(g, "any config on a repository model", post(qkv_json(parameters={"softmax_temp": 1.0}),
                                                 path="/v2/models/full_key_lengths/infer"), 400)
case(g, "unknown model", post(VALID, path="/v2/models/no_such_model/infer"), 404)
case(g, "unknown version", post(VALID, path="/v2/models/full/versions/2/infer"), 404)
case(g, "unknown endpoint", post(VALID, path="/v2/models/full/explain"), 404)
case(g, "unknown field in a load", post(json.dumps({"parameters": {"config": '{"type": "full", "config": {}}'},
                                                    "weights": "x"}).encode(), path="/v2/repository/models/u1/load"),
     400)
case(g, "unknown parameter in a load", post(json.dumps({"parameters": {"config": '{"type": "full", "config": {}}',
                                                                       "overwrite": True}}).encode(),
                                            path="/v2/repository/models/u2/load"), 400)
case(g, "unknown field in the index request", post(b'{"ready": true, "all": 1}', path="/v2/repository/index"), 400)
case(g, "duplicate key", post(VALID[:-1] + b', "inputs": []}'), 400)
case(g, "duplicate input", post(json.dumps({"inputs": qkv_inputs() + qkv_inputs()[:1]}).encode()), 400)
case(g, "65 inputs", post(json.dumps({"inputs": [dict(qkv_inputs()[0], name=f"i{k}") for k in range(65)]}).encode()),
     400)
case(g, "id is a number", post(qkv_json(id=7)), 400)
case(g, "id of 10 KB", post(qkv_json(id="x" * 10000)), 400)

# ---- FP16 and BF16 -----------------------------------------------------------------------------
g = "half"
H12 = struct.pack("<12e", *floats(12))


def half_bin(dt, raw, shape=(1, 3, 2, 2), size=None):
    ins = [(n, dt, shape, raw) for n in ("queries", "keys", "values")]
    body, n = binary_body(ins)
    if size is not None:
        body, n = bin_edit((body, n), b'"binary_data_size": %d' % len(raw), b'"binary_data_size": %d' % size)
    return post_bin((body, n))


case(g, "FP16 binary_data_size of FP32 (48 for 12 elements)", half_bin("FP16", H12 * 2), 400, msg="24 bytes")
case(g, "FP16 binary_data_size odd (23)", half_bin("FP16", H12, size=23), 400)
case(g, "BF16 binary data one byte short", half_bin("BF16", H12[:-1]), 400)
case(g, "FP16 NaN bits", half_bin("FP16", H12[:-2] + b"\x00\x7e"), 400, msg="not finite")
case(g, "FP16 -Inf bits", half_bin("FP16", H12[:-2] + b"\x00\xfc"), 400, msg="not finite")
case(g, "BF16 signalling NaN bits", half_bin("BF16", H12[:-2] + b"\x81\x7f"), 400, msg="not finite")
case(g, "BF16 +Inf bits", half_bin("BF16", H12[:-2] + b"\x80\x7f"), 400, msg="not finite")
case(g, "FP16 JSON 65520 (rounds to infinity)", post(one_input(shape=[1, 3, 2, 2], datatype="FP16",
                                                                data=[65520] + floats(11))), 400, msg="out of FP16 range")
case(g, "FP16 JSON -1e6", post(one_input(shape=[1, 3, 2, 2], datatype="FP16", data=[-1e6] + floats(11))), 400,
     msg="out of FP16 range")
case(g, "BF16 JSON 3.4e38 (rounds to infinity)", post(one_input(shape=[1, 3, 2, 2], datatype="BF16",
                                                                 data=[3.4e38] + floats(11))), 400, msg="BF16 range")
case(g, "FP16 JSON NaN", post(one_input(shape=[1, 3, 2, 2], datatype="FP16", data=None).replace(
    b'"data": null', b'"data": [NaN' + b", 0.5" * 11 + b"]")), 400)
case(g, "FP16 for an INT64 input", post(with_input(name="key_lengths", shape=[1], datatype="FP16", data=[3])), 400,
     msg="the model takes INT64")
case(g, "BF16 for a BOOL mask", post(with_input(name="attn_mask", shape=[3, 3], datatype="BF16", data=[1] * 9)), 400)
case(g, "output datatype FP64", post(qkv_json(outputs=[{"name": "output", "parameters": {"datatype": "FP64"}}])), 400,
     msg="FP32")
case(g, "output datatype INT64", post(qkv_json(outputs=[{"name": "output", "parameters": {"datatype": "INT64"}}])), 400)
case(g, "output datatype a number", post(qkv_json(outputs=[{"name": "output", "parameters": {"datatype": 16}}])), 400)
case(g, "output datatype null", post(qkv_json(outputs=[{"name": "output", "parameters": {"datatype": None}}])), 400)

# ---- compressed bodies ---------------------------------------------------------------------------
g = "encodings"
GZ, ZL = gzip.compress(VALID), zlib.compress(VALID)
BIN, BIN_N = qkv_binary()


def enc(body, coding, **kw):
    return post(body, headers={"Content-Encoding": coding}, **kw)


case(g, "gzip cut at half", enc(GZ[:len(GZ) // 2], "gzip"), 400, msg="truncated")
case(g, "gzip without its trailer", enc(GZ[:-8], "gzip"), 400, msg="truncated")
case(g, "gzip one byte short", enc(GZ[:-1], "gzip"), 400, msg="truncated")
case(g, "gzip header only", enc(GZ[:10], "gzip"), 400, msg="truncated")
case(g, "gzip with a wrong CRC", enc(GZ[:-8] + bytes(b ^ 0xff for b in GZ[-8:-4]) + GZ[-4:], "gzip"), 400,
     msg="gzip")
case(g, "gzip with a wrong length", enc(GZ[:-4] + struct.pack("<I", len(VALID) + 1), "gzip"), 400)
case(g, "gzip with a corrupt block", enc(GZ[:12] + b"\xff" * 8 + GZ[20:], "gzip"), 400)
case(g, "gzip then garbage", enc(GZ + b"garbage!", "gzip"), 400)
case(g, "zlib data labelled gzip", enc(ZL, "gzip"), 400, msg="not a valid gzip stream")
case(g, "plain JSON labelled gzip", enc(VALID, "gzip"), 400, msg="gzip")
case(g, "plain JSON labelled deflate", enc(VALID, "deflate"), 400, msg="deflate")
case(g, "deflate cut at half", enc(ZL[:len(ZL) // 2], "deflate"), 400, msg="truncated")
case(g, "deflate without its Adler-32", enc(ZL[:-4], "deflate"), 400, msg="truncated")
case(g, "deflate then more data", enc(ZL + ZL, "deflate"), 400, msg="after the end")
case(g, "deflate of one byte", enc(ZL[:1], "deflate"), 400, msg="truncated")
case(g, "gzip of gzip (inflated once)", enc(gzip.compress(GZ), "gzip"), 400)
case(g, "gzip of a truncated request", enc(gzip.compress(VALID[:-1]), "gzip"), 400)
case(g, "gzip, chunked and cut", enc(chunked(GZ[:-5]), "gzip", length=False)
     .replace(b"Content-Encoding", b"Transfer-Encoding: chunked\r\nContent-Encoding"), 400)
case(g, "unknown coding br", enc(GZ, "br"), 415, msg="gzip, deflate")
case(g, "unknown coding zstd", enc(GZ, "zstd"), 415)
case(g, "unknown coding compress", enc(GZ, "compress"), 415)
case(g, "two codings (gzip, gzip)", enc(gzip.compress(GZ), "gzip, gzip"), 415)
case(g, "a coding with parameters", enc(GZ, "gzip;q=1"), 415)
case(g, "Content-Length longer than the compressed body", request_bytes("POST", INFER, GZ, dict(
    JSON, **{"Content-Encoding": "gzip", "Content-Length": str(len(GZ) + 100)})), (400, None), half_close=True)
case(g, "Content-Length shorter than the compressed body", request_bytes("POST", INFER, GZ, dict(
    JSON, **{"Content-Encoding": "gzip", "Content-Length": str(len(GZ) - 20)})), 400, msg="truncated")
# Bombs: the limit (1M) counts on the inflated body; a few hundred KB on the wire.
case(g, "gzip bomb: 1 GB of zeros", enc(gzip.compress(b"0" * (1 << 30), 9), "gzip"), 413, msg="inflated")
case(g, "deflate bomb: 256 MB of spaces", enc(zlib.compress(b" " * (256 << 20), 9), "deflate"), 413, msg="inflated")
case(g, "raw deflate bomb", enc(zlib.compress(b"[" * (64 << 20), 9)[2:-4], "deflate"), 413)
case(g, "gzip bomb, chunked", enc(chunked(gzip.compress(b"1" * (64 << 20), 9), 4096), "gzip", length=False)
     .replace(b"Content-Encoding", b"Transfer-Encoding: chunked\r\nContent-Encoding"), 413)
case(g, "many gzip members adding up past the limit", enc(gzip.compress(b" " * (600 << 10)) * 2, "gzip"), 413)
case(g, "inflated one byte over the limit", enc(gzip.compress(VALID + b" " * ((1 << 20) + 1 - len(VALID))), "gzip"),
     413)
# Binary tensors: Inference-Header-Content-Length counts on the inflated body.
case(g, "binary, header length of the compressed body", post(gzip.compress(BIN), headers={
    "Content-Encoding": "gzip", "Inference-Header-Content-Length": str(len(gzip.compress(BIN))),
    "Content-Type": "application/octet-stream"}), 400)
case(g, "binary, header length past the inflated body", post(gzip.compress(BIN), headers={
    "Content-Encoding": "gzip", "Inference-Header-Content-Length": str(len(BIN) + 1),
    "Content-Type": "application/octet-stream"}), 400, msg="exceeds the body")
case(g, "binary, header length one short", post(gzip.compress(BIN), headers={
    "Content-Encoding": "gzip", "Inference-Header-Content-Length": str(BIN_N - 1),
    "Content-Type": "application/octet-stream"}), 400)
case(g, "binary, tensor bytes cut in the stream", post(gzip.compress(BIN[:-4]), headers={
    "Content-Encoding": "gzip", "Inference-Header-Content-Length": str(BIN_N),
    "Content-Type": "application/octet-stream"}), 400, msg="binary_data_size")

# ---- HTTP itself ---------------------------------------------------------------------------
g = "http"
case(g, "PUT on infer", request_bytes("PUT", INFER, VALID, JSON), 405)
case(g, "DELETE on a model", request_bytes("DELETE", "/v2/models/full"), 405)
case(g, "GET on load", request_bytes("GET", "/v2/repository/models/full/load"), 405)
case(g, "unknown method", request_bytes("BREW", INFER, VALID, JSON), 405)
case(g, "header line without a colon", b"GET /v2/models/full HTTP/1.1\r\nHost: x\r\nbroken\r\n\r\n", 400, body="mhd")
case(g, "header of 100 KB", request_bytes("GET", "/v2/models/full", b"", {"X-Big": "a" * 100000}), (400, 413, 431),
     body="mhd")
case(g, "URL of 100 KB", request_bytes("GET", "/v2/models/" + "a" * 100000), (400, 404, 414, 431), body="mhd")
# 505 HTTP Version Not Supported is the answer the protocol prescribes.
case(g, "HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (400, 505), body="mhd")
case(g, "HTTP/3.0", b"GET /v2 HTTP/3.0\r\nHost: x\r\n\r\n", (400, 505), body="mhd")
# A TLS ClientHello on the plain-HTTP port: libmicrohttpd closes without a word.
case(g, "TLS handshake on the HTTP port", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 40 + b"\r\n\r\n",
     (None, 400), body="mhd")

# ---- access control (a server with --api-key-file and --admin-key-file) ---------------------
g = "auth"
API, ADMIN = "hostile-api-token", "hostile-admin-token"
A = {"Authorization": f"Bearer {API}"}
for name, hdr in (("no token", {}), ("api token", A), ("wrong admin token", {"Authorization": "Bearer " + ADMIN[:-1]}),
                  ("admin token, wrong scheme", {"Authorization": f"Basic {ADMIN}"}),
                  ("admin token with a suffix", {"Authorization": f"Bearer {ADMIN}x"})):
    case(g, f"load with {name}", post(LOAD_BODY, path="/v2/repository/models/x/load", headers=hdr), 401, server="auth")
case(g, "unload with the api token", post(b"", path="/v2/repository/models/full_causal/unload", headers=A), 401,
     server="auth")
case(g, "index with no token", post(b"", path="/v2/repository/index"), 401, server="auth")
case(g, "infer with no token", post(VALID), 401, server="auth")
case(g, "infer with an empty bearer", post(VALID, headers={"Authorization": "Bearer "}), 401, server="auth")
case(g, "infer with a 100 KB token", post(VALID, headers={"Authorization": "Bearer " + "a" * 60000}), 401,
     server="auth")
case(g, "metadata with no token", request_bytes("GET", "/v2/models/full"), 401, server="auth")

# ---- sequences (Triton's sequence extension; the /sequences endpoints) -----------------------
g = "sequences"
SEQ = "/v2/models/full/sequences"
for name, val in (("a list", []), ("an object", {}), ("a boolean", True), ("negative", -5), ("a real", 1.5),
                  ("past int64", 2 ** 64), ("1e400", "1e400-raw"), ("with a space", "a b"), ("with a slash", "a/b"),
                  ("of 129 characters", "x" * 129), ("with a NUL", "a\u0000b"), ("unicode", "s\u00e9q")):
    params = {"sequence_id": val, "sequence_start": True}
    body = qkv_json(parameters=params)
    if val == "1e400-raw":
        body = body.replace(b'"1e400-raw"', b"1e400")
    case(g, f"sequence_id {name}", post(body), 400)
case(g, "sequence_start as a string", post(qkv_json(parameters={"sequence_id": 3, "sequence_start": "true"})), 400,
     msg="must be a boolean")
case(g, "sequence_end without an id", post(qkv_json(parameters={"sequence_end": True})), 400, msg="need a sequence_id")
case(g, "sequence_kind unknown", post(qkv_json(parameters={"sequence_id": 4, "sequence_start": True,
                                                           "sequence_kind": "mutual"})), 400, msg="sequence_kind")
for name, hv in (("with a space", "a b"), ("of 200 characters", "y" * 200), ("with dots and slashes", "../../etc"),
                 ("with a percent", "a%2Fb")):
    case(g, f"Sequence-Id header {name}", post(qkv_json(), headers={"Sequence-Id": hv}), 400, msg="Sequence-Id")
case(g, "header and parameter disagree", post(qkv_json(parameters={"sequence_id": "p"}), headers={"Sequence-Id": "q"}),
     400, msg="disagree")
case(g, "a step of an unknown sequence", post(qkv_json(parameters={"sequence_id": "nobody-started-this"})), 404,
     msg="never started")
case(g, "a start whose streams disagree", post(json.dumps({"parameters": {"sequence_id": "n-mismatch", "sequence_start": True},
                                                           "inputs": qkv_inputs((1, 3, 2, 2))[:1] + qkv_inputs((2, 3, 2, 2))[1:]}).encode()),
     400)
case(g, "a start with a mask", post(qkv_json(parameters={"sequence_id": "masked", "sequence_start": True},
                                             extra=[{"name": "attn_mask", "datatype": "BOOL", "shape": [3, 3],
                                                     "data": [True] * 9}])), 400, msg="attn_mask")
case(g, "a type without sequences", post(qkv_json(parameters={"sequence_id": 8, "sequence_start": True}),
                                         path="/v2/models/reformer/infer"), 400, msg="types that have them")
case(g, "restore from garbage", request_bytes("PUT", SEQ + "/g1", b"\x00" * 5000, OCTET), 400, msg="not a sequence export")
case(g, "restore from a header promising 2^60 bytes", request_bytes("PUT", SEQ + "/g2",
                                                                    struct.pack("<Q", 1 << 60) + b"{}", OCTET), 400)
empty_st = struct.pack("<Q", 8) + b"{}      "
case(g, "restore from a safetensors file with no sequence in it", request_bytes("PUT", SEQ + "/g3", empty_st, OCTET), 400)
fake_meta = b'{"seq.meta":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}'
fake_meta += b" " * (-len(fake_meta) % 8)
case(g, "restore from a forged seq.meta", request_bytes("PUT", SEQ + "/g4", struct.pack("<Q", len(fake_meta)) + fake_meta +
                                                        struct.pack("<qq", 1, 99), OCTET), 400)
case(g, "restore with an empty body", request_bytes("PUT", SEQ + "/g5", b"", OCTET), 400)
case(g, "restore with a 2 MB body", request_bytes("PUT", SEQ + "/g6", b"\x01" * (2 << 20), OCTET), 413)
case(g, "export of an unknown id", request_bytes("GET", SEQ + "/nope"), 404)
case(g, "delete of an unknown id", request_bytes("DELETE", SEQ + "/nope"), 404)
case(g, "an id with a percent in the path", request_bytes("GET", SEQ + "/a%25b"), 404)
case(g, "an id of 129 characters in the path", request_bytes("GET", SEQ + "/" + "z" * 129), 404)
case(g, "POST on a sequence", request_bytes("POST", SEQ + "/x", b"{}", JSON), 405)
case(g, "the list with the api token", request_bytes("GET", SEQ, headers=A), 401, server="auth")
case(g, "an export with no token", request_bytes("GET", SEQ + "/x"), 401, server="auth")

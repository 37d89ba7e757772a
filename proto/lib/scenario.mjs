// scenario.mjs — the exchanges that proto/test.sh sends to a live attnd (and
// that proto/capture_examples.sh records as proto/examples/): every
// operation, with JSON and binary bodies, and every error status attnd uses.
//
// The server runs with --threads 1 --max-queue 1 so that a 503 (queue full)
// and a 504 (deadline) can be produced on purpose: see `overload`.
import fs from "node:fs";
import path from "node:path";

import { ADMIN_TOKEN, API_TOKEN, chunkedUpload, request } from "./attnd.mjs";

export const SERVER_ARGS = ["--threads", "1", "--threads-per-request", "1", "--max-queue", "1", "--max-attention-elements", "128",
  "--max-body-bytes", "1M", "--shutdown-delay", "2"];

const API = { Authorization: `Bearer ${API_TOKEN}` };
const ADMIN = { Authorization: `Bearer ${ADMIN_TOKEN}` };
const JSON_CT = { "Content-Type": "application/json" };
const BIN_CT = { "Content-Type": "application/octet-stream" };

const f32 = (xs) => Buffer.from(new Float32Array(xs).buffer);
const tensor = (name, shape, data, datatype = "FP32") => ({ name, datatype, shape, data });
const qkv = (q, k, v) => [tensor("queries", [1, 2, 1, 2], q), tensor("keys", [1, 2, 1, 2], k), tensor("values", [1, 2, 1, 2], v)];
const binInput = (name, bytes) => ({ name, datatype: "FP32", shape: [1, 2, 1, 2], parameters: { binary_data_size: bytes } });

/** The repository models the scenario uses, chosen by type from the server's
 *  copy of examples/models (the first folder in name order), so that renaming
 *  an example model does not break the test (the recorded examples keep the
 *  names they were recorded with). */
function pickModels(repo) {
  const folders = fs.readdirSync(repo).sort().filter((d) => fs.existsSync(path.join(repo, d, "config.json")));
  const pick = (type, weights = false) => {
    const d = folders.find((d) => JSON.parse(fs.readFileSync(path.join(repo, d, "config.json"), "utf8")).type === type &&
      (!weights || fs.existsSync(path.join(repo, d, "weights.safetensors"))));
    if (!d) throw new Error(`${repo} has no model of type ${type}${weights ? " with weights" : ""}`);
    return d;
  };
  const aft = pick("aft_full", true);
  return {
    full: pick("full"),
    aft,
    area: pick("area"),
    layer: pick("attention_layer", true),
    aftConfig: fs.readFileSync(path.join(repo, aft, "config.json"), "utf8"),
    aftWeights: fs.readFileSync(path.join(repo, aft, "weights.safetensors")),
  };
}

// A request that keeps the one compute thread busy for about 2 s: clustered
// attention with 10^6 Lloyd iterations (the cost is in the 64 queries and 8
// clusters; keys and values are few).
function slowRequest() {
  const queries = Array.from({ length: 128 }, (_, i) => (i % 9) - 4);
  return {
    parameters: { clusters: 8, iterations: 1000000 },
    inputs: [tensor("queries", [1, 64, 1, 2], queries), tensor("keys", [1, 2, 1, 2], [1, 0, 0, 1]),
      tensor("values", [1, 2, 1, 2], [1, 2, 3, 4])],
  };
}

/** The plain steps: [{name, example?, summary, request, expect}], for a
 *  server whose repository is the folder `repo`. */
export function steps(repo) {
  const m = pickModels(repo);
  const q = [1, 0, 0, 1];
  const binHeader = {
    inputs: [binInput("queries", 16), binInput("keys", 16), binInput("values", 16)],
    outputs: [{ name: "output", parameters: { binary_data: true } }],
  };
  const binBody = Buffer.concat([f32(q), f32(q), f32([1, 2, 3, 4])]);
  return [
    // ---- health ----
    { name: "health_live", example: "health_live", summary: "Liveness: 200 and an empty body.",
      request: { method: "GET", path: "/v2/health/live" }, expect: 200 },
    { name: "health_live_head", summary: "GET routes answer HEAD too.",
      request: { method: "HEAD", path: "/v2/health/live" }, expect: 200 },
    { name: "health_ready", example: "health_ready", summary: "Readiness: 200 once the repository has loaded.",
      request: { method: "GET", path: "/v2/health/ready" }, expect: 200 },

    // ---- metadata ----
    { name: "server_metadata", example: "server_metadata", summary: "Server metadata: extensions and the limits in force.",
      request: { method: "GET", path: "/v2", headers: API }, expect: 200 },
    { name: "model_metadata", example: "model_metadata", summary: "A repository model's metadata.",
      request: { method: "GET", path: `/v2/models/${m.full}`, headers: API }, expect: 200 },
    { name: "model_metadata_builtin", example: "model_metadata_builtin",
      summary: "A built-in model's metadata lists its config keys under parameters.",
      request: { method: "GET", path: "/v2/models/full", headers: API }, expect: 200 },
    { name: "model_metadata_incomplete", example: "model_metadata_incomplete",
      summary: "A built-in whose defaults are incomplete: config null, a note, no inputs or outputs until a request configures it.",
      request: { method: "GET", path: "/v2/models/linear", headers: API }, expect: 200 },
    { name: "model_metadata_alias", summary: "A built-in under an alias.",
      request: { method: "GET", path: "/v2/models/exact-topk", headers: API }, expect: 200 },
    { name: "model_metadata_weights", summary: "A model with weights (attention_layer).",
      request: { method: "GET", path: `/v2/models/${m.layer}`, headers: ADMIN }, expect: 200 },
    { name: "model_version_metadata", example: "model_version_metadata", summary: "The same under /versions/1.",
      request: { method: "GET", path: `/v2/models/${m.aft}/versions/1`, headers: API }, expect: 200 },
    { name: "model_config", example: "model_config", summary: "A repository model's type and config.",
      request: { method: "GET", path: `/v2/models/${m.full}/config`, headers: API }, expect: 200 },
    { name: "model_config_incomplete", summary: "A built-in whose defaults are incomplete: config null.",
      request: { method: "GET", path: "/v2/models/linear/config", headers: API }, expect: 200 },
    { name: "model_version_config", example: "model_version_config", summary: "The same under /versions/1.",
      request: { method: "GET", path: `/v2/models/${m.area}/versions/1/config`, headers: API }, expect: 200 },
    { name: "model_ready", example: "model_ready", summary: "Model readiness: 200 when it serves.",
      request: { method: "GET", path: `/v2/models/${m.full}/ready` }, expect: 200 },
    { name: "model_version_ready", example: "model_version_ready", summary: "The same under /versions/1.",
      request: { method: "GET", path: "/v2/models/full/versions/1/ready" }, expect: 200 },
    { name: "model_ready_unknown", example: "model_ready_false", summary: "Model readiness: 400 (false) for an unknown model.",
      request: { method: "GET", path: "/v2/models/nope/ready" }, expect: 400 },

    // ---- inference ----
    { name: "infer_builtin", example: "infer",
      summary: "JSON tensors; a built-in model configured by the request's parameters; ids echoed.",
      request: { method: "POST", path: "/v2/models/full/infer",
        headers: { ...API, ...JSON_CT, "X-Request-Id": "example-1" },
        json: { id: "req-1", parameters: { softmax_temp: 0.5 },
          inputs: [tensor("queries", [1, 2, 1, 2], q), tensor("keys", [1, 2, 1, 2], [[[[1, 0]], [[0, 1]]]]), tensor("values", [1, 2, 1, 2], [1, 2, 3, 4])] } },
      expect: 200 },
    { name: "infer_attention", example: "infer_attention",
      summary: "The attention weights as a second output, asked for by name (here as binary data after the JSON part).",
      request: { method: "POST", path: "/v2/models/full/infer", headers: { ...API, ...JSON_CT },
        json: { inputs: qkv(q, q, [1, 2, 3, 4]),
          outputs: [{ name: "output" }, { name: "attention", parameters: { binary_data: true } }] } },
      expect: 200 },
    { name: "error_413_attention", summary: "413: the attention maps asked for pass --max-attention-elements.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: { ...API, ...JSON_CT },
        json: { inputs: [tensor("queries", [1, 2, 64, 2], Array(256).fill(1)), tensor("keys", [1, 2, 64, 2], Array(256).fill(1)),
          tensor("values", [1, 2, 64, 2], Array(256).fill(1))], outputs: [{ name: "attention" }] } },
      expect: 413 },
    { name: "infer_config_string", summary: "A built-in's whole config as a JSON string in parameters.config.",
      request: { method: "POST", path: "/v2/models/local/infer", headers: { ...API, ...JSON_CT },
        json: { parameters: { config: "{\"local_context\": 3}" }, inputs: qkv(q, q, [1, 2, 3, 4]) } },
      expect: 200 },
    { name: "infer_int64_bool", summary: "INT64 and BOOL inputs, and INT32 where INT64 is declared.",
      request: { method: "POST", path: `/v2/models/${m.full}/infer`, headers: { ...API, ...JSON_CT },
        json: { inputs: [...qkv(q, q, [1, 2, 3, 4]), tensor("key_lengths", [1], [1], "INT32"),
          tensor("attn_mask", [2, 2], [true, false, true, true], "BOOL")] } },
      expect: 200 },
    { name: "infer_version", example: "model_version_infer", summary: "A repository model under /versions/1.",
      request: { method: "POST", path: `/v2/models/${m.full}/versions/1/infer`, headers: { ...API, ...JSON_CT },
        json: { inputs: qkv(q, q, [1, 2, 3, 4]), outputs: [{ name: "output" }] } },
      expect: 200 },
    { name: "infer_binary", example: "infer_binary",
      summary: "The binary tensor data extension both ways: Inference-Header-Content-Length gives the JSON part's length, raw float32 follow.",
      request: { method: "POST", path: `/v2/models/${m.full}/infer`, headers: { ...API, ...BIN_CT },
        json: binHeader, binary: binBody },
      expect: 200 },
    { name: "infer_binary_json_out", summary: "Binary inputs, JSON output.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: API,
        json: { ...binHeader, outputs: [{ name: "output", parameters: { binary_data: false } }] }, binary: binBody },
      expect: 200 },
    { name: "infer_fp16_json", summary: "FP16 inputs as JSON numbers (rounded to FP16), the output asked for in FP16.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: { ...API, ...JSON_CT },
        json: { inputs: [tensor("queries", [1, 2, 1, 2], [0.1, 0, 0, 1], "FP16"), tensor("keys", [1, 2, 1, 2], q, "BF16"),
          tensor("values", [1, 2, 1, 2], [1, 2, 3, 4])], outputs: [{ name: "output", parameters: { datatype: "FP16" } }] } },
      expect: 200 },
    { name: "infer_bf16_binary", summary: "BF16 binary inputs (2 bytes an element) and a BF16 binary output.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: { ...API, ...BIN_CT },
        json: { inputs: [{ ...binInput("queries", 8), datatype: "BF16" }, { ...binInput("keys", 8), datatype: "BF16" },
          { ...binInput("values", 8), datatype: "FP16" }],
          outputs: [{ name: "output", parameters: { binary_data: true, datatype: "BF16" } }] },
        binary: Buffer.from([0x80, 0x3f, 0, 0, 0, 0, 0x80, 0x3f, 0x80, 0x3f, 0, 0, 0, 0, 0x80, 0x3f,
          0x00, 0x3c, 0x00, 0x40, 0x00, 0x42, 0x00, 0x44]) },
      expect: 200 },
    { name: "infer_binary_output_only", summary: "JSON inputs, binary output (parameters.binary_data_output).",
      request: { method: "POST", path: `/v2/models/${m.aft}/infer`, headers: API,
        json: { parameters: { binary_data_output: true }, inputs: qkv(q, q, [1, 2, 3, 4]) } },
      expect: 200 },

    // ---- repository ----
    { name: "repository_index", example: "repository_index", summary: "The models that serve ({\"ready\": true}).",
      request: { method: "POST", path: "/v2/repository/index", headers: { ...ADMIN, ...JSON_CT }, json: { ready: true } },
      expect: 200 },
    { name: "repository_index_all", summary: "Every model, without a body.",
      request: { method: "POST", path: "/v2/repository/index", headers: ADMIN }, expect: 200 },
    { name: "repository_load", example: "repository_load", summary: "(Re)load a model from its folder: no body.",
      request: { method: "POST", path: `/v2/repository/models/${m.full}/load`, headers: ADMIN }, expect: 200 },
    { name: "repository_load_json", example: "repository_load_json",
      summary: "Load a model given in the request: config.json's text and the weights in base64 (Triton's load_model).",
      request: { method: "POST", path: "/v2/repository/models/aft_copy/load", headers: { ...ADMIN, ...JSON_CT },
        json: { parameters: { config: m.aftConfig, "file:weights.safetensors": m.aftWeights.toString("base64") } } },
      expect: 200 },
    { name: "repository_load_object", summary: "Load a model whose config is given as an object (no weights).",
      request: { method: "POST", path: "/v2/repository/models/my_full/load", headers: { ...ADMIN, ...JSON_CT },
        json: { parameters: { config: { type: "full", config: { softmax_temp: 0.5 } } } } },
      expect: 200 },
    { name: "repository_load_binary", example: "repository_load_binary",
      summary: "Load with the binary framing: a JSON header with the config, then the raw safetensors bytes.",
      request: { method: "POST", path: "/v2/repository/models/aft_bin/load", headers: { ...ADMIN, ...BIN_CT },
        json: { parameters: { config: m.aftConfig } }, binary: m.aftWeights },
      expect: 200 },
    { name: "infer_loaded", summary: "A model loaded over HTTP serves.",
      request: { method: "POST", path: "/v2/models/aft_bin/infer", headers: { ...API, ...JSON_CT },
        json: { inputs: qkv(q, q, [1, 2, 3, 4]) } },
      expect: 200 },
    { name: "repository_unload", example: "repository_unload", summary: "Unload a model (its folder stays).",
      request: { method: "POST", path: "/v2/repository/models/my_full/unload", headers: ADMIN }, expect: 200 },
    { name: "unloaded_ready", summary: "An unloaded model is not ready.",
      request: { method: "GET", path: "/v2/models/my_full/ready" }, expect: 400 },

    // ---- metrics ----
    { name: "metrics", example: "metrics", summary: "Prometheus metrics (the example keeps one model's lines and the server-wide ones).",
      request: { method: "GET", path: "/metrics" }, expect: 200 },

    // ---- the explorer page ----
    { name: "ui_page", example: "ui_page", summary: "The explorer page (on by default on loopback; no token: the page asks for one).",
      request: { method: "GET", path: "/ui/" }, expect: 200 },
    { name: "ui_page_no_slash", summary: "/ui answers as /ui/ does.",
      request: { method: "GET", path: "/ui" }, expect: 200 },
    { name: "ui_file", example: "ui_file", summary: "A file of the page, with its Content-Type.",
      request: { method: "GET", path: "/ui/style.css" }, expect: 200 },
    { name: "ui_script", summary: "The page's script.",
      request: { method: "GET", path: "/ui/app.js" }, expect: 200 },
    { name: "ui_file_missing", example: "error_404_ui", summary: "404: a file the page does not have.",
      request: { method: "GET", path: "/ui/secrets.txt" }, expect: 404 },

    // ---- errors ----
    { name: "error_400_datatype", example: "error_400", summary: "400: a datatype attnd does not handle.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: { ...API, ...JSON_CT },
        json: { inputs: [{ name: "queries", datatype: "FP16", shape: [1, 2, 1, 2], data: q }] } },
      expect: 400 },
    { name: "error_400_fixed_config", summary: "400: a repository model has a fixed config.",
      request: { method: "POST", path: `/v2/models/${m.full}/infer`, headers: API,
        json: { parameters: { softmax_temp: 0.5 }, inputs: qkv(q, q, q) } },
      expect: 400 },
    { name: "error_400_json", summary: "400: not JSON.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: API, body: "{\"inputs\": [" }, expect: 400 },
    { name: "error_400_shape", summary: "400: the data does not fill the shape.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: API,
        json: { inputs: qkv(q, q, [1, 2, 3]) } },
      expect: 400 },
    { name: "error_400_binary_sizes", summary: "400: binary sizes that do not add up to the body.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: API, json: binHeader, binary: binBody.subarray(4) },
      expect: 400 },
    { name: "error_400_builtin_config", summary: "400: a built-in's config key out of range.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: API,
        json: { parameters: { attention_dropout: 2 }, inputs: qkv(q, q, q) } },
      expect: 400 },
    { name: "error_400_unload_builtin", summary: "400: a built-in cannot be unloaded.",
      request: { method: "POST", path: "/v2/repository/models/full/unload", headers: ADMIN }, expect: 400 },
    { name: "error_400_load_config", summary: "400: a load whose config is wrong (the old version keeps serving).",
      request: { method: "POST", path: `/v2/repository/models/${m.full}/load`, headers: ADMIN,
        json: { parameters: { config: "{\"type\": \"full\", \"config\": {\"softmax_temp\": \"hot\"}}" } } },
      expect: 400 },
    { name: "error_400_index", summary: "400: the index takes {\"ready\": true|false}.",
      request: { method: "POST", path: "/v2/repository/index", headers: ADMIN, json: { ready: 1 } }, expect: 400 },
    { name: "error_400_repo_name", summary: "400: not a model name.",
      request: { method: "POST", path: "/v2/repository/models/-x/load", headers: ADMIN }, expect: 400 },
    { name: "error_401", example: "error_401", summary: "401: no bearer token (with WWW-Authenticate).",
      request: { method: "GET", path: "/v2/models/full" }, expect: 401 },
    { name: "error_401_api_token_on_repository", summary: "401: an api token on a repository endpoint.",
      request: { method: "POST", path: "/v2/repository/index", headers: API }, expect: 401 },
    { name: "error_401_infer", summary: "401: a wrong token.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: { Authorization: "Bearer wrong" },
        json: { inputs: qkv(q, q, q) } },
      expect: 401 },
    { name: "error_404", example: "error_404", summary: "404: no such model.",
      request: { method: "GET", path: "/v2/models/nope", headers: API }, expect: 404 },
    { name: "error_404_version", summary: "404: only version 1 exists.",
      request: { method: "GET", path: `/v2/models/${m.full}/versions/2`, headers: API }, expect: 404 },
    { name: "error_404_config", summary: "404: no such model (config).",
      request: { method: "GET", path: "/v2/models/nope/config", headers: API }, expect: 404 },
    { name: "error_404_infer", summary: "404: no such model (infer).",
      request: { method: "POST", path: "/v2/models/nope/infer", headers: API, json: { inputs: [] } }, expect: 404 },
    { name: "error_404_endpoint", summary: "404: no such endpoint.",
      request: { method: "GET", path: "/v2/nothing/here", headers: API }, expect: 404 },
    { name: "error_404_unload", summary: "404: unloading a name attnd never saw.",
      request: { method: "POST", path: "/v2/repository/models/never_seen/unload", headers: ADMIN }, expect: 404 },
    { name: "error_404_load", summary: "404: loading a folder that is not in the repository.",
      request: { method: "POST", path: "/v2/repository/models/not_there/load", headers: ADMIN }, expect: 404 },
    { name: "error_405", example: "error_405", summary: "405: a GET route asked with POST.",
      request: { method: "POST", path: "/v2/health/live" }, expect: 405 },
    { name: "error_405_infer", summary: "405: a POST route asked with GET.",
      request: { method: "GET", path: "/v2/models/full/infer", headers: API }, expect: 405 },
    { name: "error_413", example: "error_413",
      summary: "413: a declared Content-Length over --max-body-bytes (the example server runs with 1M); with Expect: 100-continue the answer comes before any of the body is sent.",
      request: { method: "POST", path: "/v2/models/full/infer",
        headers: { ...API, ...JSON_CT, "Content-Length": "2000000", Expect: "100-continue" } },
      expect: 413 },
    { name: "error_413_sent", summary: "413: a body over the limit sent whole: read, dropped, then answered.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: { ...API, ...JSON_CT }, body: Buffer.alloc(1100 * 1024, 0x20) },
      expect: 413 },
    { name: "error_413_far", summary: "413 at once: a declared length far past the limit, no body sent.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: { ...API, "Content-Length": "200000000" } },
      expect: 413 },
    { name: "error_413_chunked", summary: "413: a chunked body that passes the limit.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: API, body: Buffer.alloc(1200 * 1024, 0x20), chunked: true },
      expect: 413 },
    { name: "error_400_framing", summary: "400: both Content-Length and Transfer-Encoding.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: { ...API, "Content-Length": "2" },
        body: "{}", chunked: true, terminate: true },
      expect: 400 },
    { name: "error_415", example: "error_415", summary: "415: a Content-Type attnd does not read.",
      request: { method: "POST", path: "/v2/models/full/infer", headers: { ...API, "Content-Type": "text/html" },
        json: { inputs: qkv(q, q, q) } },
      expect: 415 },
    { name: "error_415_repository", summary: "415 on a repository endpoint.",
      request: { method: "POST", path: "/v2/repository/index", headers: { ...ADMIN, "Content-Type": "application/xml" } },
      expect: 415 },
    { name: "error_500", example: "error_500",
      summary: "500: attnd's own fault: the repository cannot take the model (a plain file named like the model is in the way).",
      request: { method: "POST", path: "/v2/repository/models/blocker/load", headers: { ...ADMIN, ...JSON_CT },
        json: { parameters: { config: "{\"type\": \"full\"}" } } },
      expect: 500 },
  ];
}

/** The body, and the Inference-Header-Content-Length header for the binary
 *  framing, of a step's request. */
export function encode(req) {
  const headers = { ...(req.headers || {}) };
  let body;
  if (req.json !== undefined) {
    const text = Buffer.from(JSON.stringify(req.json));
    if (req.binary !== undefined) {
      headers["Inference-Header-Content-Length"] = String(text.length);
      body = Buffer.concat([text, Buffer.from(req.binary)]);
    } else {
      body = text;
    }
  } else if (req.body !== undefined) {
    body = Buffer.from(req.body);
  }
  return { method: req.method, path: req.path, headers, body, chunked: req.chunked, terminate: req.terminate };
}

const lowerKeys = (h) => Object.fromEntries(Object.entries(h || {}).map(([k, v]) => [k.toLowerCase(), String(v)]));

/** Sends one step: {step, request (as sent, lower-case headers), response}. */
export async function send(port, step) {
  const wire = encode(step.request);
  const response = await (wire.chunked ? chunkedUpload(port, wire) : request(port, wire));
  return { step, request: { ...wire, headers: lowerKeys(wire.headers), body: wire.body || Buffer.alloc(0) }, response };
}

/** The value of one series of /metrics, e.g. 'attnd_queue_depth'. */
async function metric(port, series) {
  const r = await request(port, { method: "GET", path: "/metrics" });
  const line = r.body.toString().split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

async function until(what, fn, ms = 10000) {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** 503 and 504 on purpose (the server has one compute thread and a queue of
 *  one): a slow request takes the thread for about 2 s; a second request,
 *  with a 0.3 s deadline, waits in the queue and gets 504 at its deadline
 *  (a queued job never starts); a third, sent while the second still waits,
 *  finds the queue full and gets 503 with Retry-After.  Returns the three
 *  exchanges (the slow one ends with 200). */
export async function overload(port) {
  const q = [1, 0, 0, 1];
  const slow = { name: "slow", summary: "Takes the one compute thread for about 2 s.",
    request: { method: "POST", path: "/v2/models/clustered/infer", headers: { ...API, ...JSON_CT }, json: slowRequest() },
    expect: 200 };
  const late = { name: "error_504", example: "error_504",
    summary: "504: the request passed its deadline (parameters.timeout, in µs; here while it waited for a compute thread, so it never ran).",
    request: { method: "POST", path: "/v2/models/full/infer", headers: { ...API, ...JSON_CT },
      json: { parameters: { timeout: 300000 }, inputs: qkv(q, q, q) } },
    expect: 504 };
  const refused = { name: "error_503", example: "error_503",
    summary: "503: the queue is full (--max-queue); Retry-After says when to try again.",
    request: { method: "POST", path: "/v2/models/full/infer", headers: { ...API, ...JSON_CT }, json: { inputs: qkv(q, q, q) } },
    expect: 503 };
  const depth = () => metric(port, "attnd_queue_depth");
  if ((await depth()) !== 0) throw new Error("the queue is not empty before the overload");
  const a = send(port, slow);
  await until("the slow request to run", async () =>
    (await metric(port, 'attnd_inference_executing_request_count{model="clustered",version="1",protocol="http"}')) === 1);
  const b = send(port, late);
  await until("the second request to wait in the queue", async () => (await depth()) === 1);
  const c = await send(port, refused);
  return [await a, await b, c];
}

/** Sequences (Triton's sequence extension) on the built-in full model: a
 *  start, a step by header, a 409, the list, an export, a restore of it
 *  under another id, an end by flag and the 404 after it, a delete, and a
 *  type without sequences.  Every sequence it starts is ended, so that the
 *  drain does not wait for them.  Returns the exchanges. */
export async function sequences(port) {
  const q = [1, 0, 0, 1];
  const one = [tensor("queries", [1, 1, 1, 2], [0, 1]), tensor("keys", [1, 1, 1, 2], [1, 1]), tensor("values", [1, 1, 1, 2], [5, 6])];
  const infer = (name, example, summary, json, expect, headers = {}) => ({ name, example, summary,
    request: { method: "POST", path: "/v2/models/full/infer", headers: { ...API, ...JSON_CT, ...headers }, json }, expect });
  const out = [];
  out.push(await send(port, infer("infer_sequence_start", "infer_sequence_start",
    "A sequence starts (sequence_id, sequence_start): the server keeps its state; the reply says its length and carries Sequence-Id.",
    { parameters: { sequence_id: 42, sequence_start: true }, inputs: qkv(q, q, [1, 2, 3, 4]) }, 200)));
  out.push(await send(port, infer("infer_sequence_step", "infer_sequence_step",
    "The next token of sequence 42, its id in the Sequence-Id header only: only the new token travels.",
    { inputs: one }, 200, { "Sequence-Id": "42" })));
  out.push(await send(port, infer("error_409", "error_409", "409: a start on a live sequence id.",
    { parameters: { sequence_id: 42, sequence_start: true }, inputs: one }, 409)));
  out.push(await send(port, { name: "sequence_list", example: "sequence_list", summary: "The model's live sequences.",
    request: { method: "GET", path: "/v2/models/full/sequences", headers: ADMIN }, expect: 200 }));
  const exp = await send(port, { name: "sequence_export", example: "sequence_export",
    summary: "Export: the sequence's state as a safetensors file with attnd's __metadata__.",
    request: { method: "GET", path: "/v2/models/full/sequences/42", headers: API }, expect: 200 });
  out.push(exp);
  out.push(await send(port, { name: "sequence_restore", example: "sequence_restore",
    summary: "Restore an export under another id (on any replica with the same model): it continues exactly.",
    request: { method: "PUT", path: "/v2/models/full/sequences/restored-42", headers: { ...API, ...BIN_CT }, body: exp.response.body },
    expect: 200 }));
  out.push(await send(port, infer("infer_sequence_end", undefined, "The restored sequence's last token (sequence_end).",
    { parameters: { sequence_id: "restored-42", sequence_end: true }, inputs: one }, 200)));
  out.push(await send(port, infer("error_404_sequence", "error_404_sequence",
    "404 for a sequence that ended, saying why.", { parameters: { sequence_id: "restored-42" }, inputs: one }, 404)));
  out.push(await send(port, { name: "sequence_end", example: "sequence_end", summary: "End a sequence (DELETE).",
    request: { method: "DELETE", path: "/v2/models/full/sequences/42", headers: API }, expect: 200 }));
  out.push(await send(port, { name: "sequence_end_unknown", summary: "404: no such sequence.",
    request: { method: "DELETE", path: "/v2/models/full/sequences/42", headers: API }, expect: 404 }));
  out.push(await send(port, { name: "error_400_sequence", summary: "400: a type without a recurrent form names those that have one.",
    request: { method: "POST", path: "/v2/models/clustered/infer", headers: { ...API, ...JSON_CT },
      json: { parameters: { sequence_id: 7, sequence_start: true }, inputs: qkv(q, q, q) } }, expect: 400 }));
  return out;
}

/** Readiness while draining: after SIGTERM (with --shutdown-delay 2) the
 *  server answers 400 on /v2/health/ready, and Connection: close. */
export const drainingReady = { name: "health_ready_draining", example: "health_ready_draining",
  summary: "Readiness after SIGTERM: 400 (false) while the server drains; responses carry Connection: close.",
  request: { method: "GET", path: "/v2/health/ready" }, expect: 400 };

/** The whole scenario on a fresh attnd (started by the caller with
 *  SERVER_ARGS): the plain steps, `extra(port)`'s exchanges if given, the
 *  overload, then readiness while draining (this stops the server).
 *  Returns the exchanges in order. */
export async function runScenario(server, { extra } = {}) {
  const out = [];
  for (const step of steps(server.repo)) out.push(await send(server.port, step));
  if (extra) out.push(...(await extra(server.port)));
  out.push(...(await sequences(server.port)));
  out.push(...(await overload(server.port)));
  server.proc.kill("SIGTERM");
  await until("the drain to begin", async () => {
    const r = await request(server.port, drainingReady.request).catch(() => null);
    return r && r.status === 400;
  }, 5000);
  out.push(await send(server.port, drainingReady));
  await server.stop();
  return out;
}

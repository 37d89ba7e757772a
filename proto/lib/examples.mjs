// examples.mjs — proto/examples/<name>.json: one recorded exchange each.
//
//   {"summary": "...",
//    "request":  {"method", "path", "headers", "json"?, "binary_base64"?, "text"?},
//    (binary_base64 without json: the whole body is binary, e.g. a sequence export)
//    "response": {"status", "headers", "json"?, "binary_base64"?, "text"?, "excerpt"?}}
//
// `json` is a JSON body, or with `binary_base64` the JSON part of the binary
// framing (Inference-Header-Content-Length is then the byte length of the
// compact JSON text, JSON.stringify's, which is also what attnd writes); `text`
// a text body; none of them: an empty body.  Headers are as sent and received,
// less Date.
import fs from "node:fs";
import path from "node:path";

import { PROTO } from "./contract.mjs";

export const EXAMPLES = path.join(PROTO, "examples");

/** An exchange from the scenario -> the example object. */
export function toExample(ex) {
  const { step, request, response } = ex;
  const req = { method: request.method, path: request.path, headers: { ...(step.request.headers || {}) } };
  if (request.headers["inference-header-content-length"] !== undefined)
    req.headers["Inference-Header-Content-Length"] = request.headers["inference-header-content-length"];
  if (step.request.json !== undefined) req.json = step.request.json;
  if (step.request.binary !== undefined) req.binary_base64 = Buffer.from(step.request.binary).toString("base64");
  if (Buffer.isBuffer(step.request.body)) req.binary_base64 = step.request.body.toString("base64");
  else if (step.request.body !== undefined) req.text = Buffer.from(step.request.body).toString("utf8");
  const headers = Object.fromEntries(
    Object.entries(response.headers).filter(([k]) => k !== "date").map(([k, v]) => [canonical(k), v]),
  );
  const res = { status: response.status, headers };
  const ctype = (response.headers["content-type"] || "").split(";")[0].trim();
  const body = response.body;
  if (ctype === "application/octet-stream" && response.headers["inference-header-content-length"] !== undefined) {
    const n = Number(response.headers["inference-header-content-length"]);
    const text = body.subarray(0, n).toString("utf8");
    res.json = JSON.parse(text);
    if (JSON.stringify(res.json) !== text) throw new Error(`${step.name}: the JSON part does not round-trip`);
    res.binary_base64 = body.subarray(n).toString("base64");
  } else if (ctype === "application/octet-stream" && body.length) {
    res.binary_base64 = body.toString("base64"); /* a whole binary body (a sequence export) */
  } else if (ctype === "application/json" && body.length) {
    res.json = JSON.parse(body.toString("utf8"));
  } else if (body.length) {
    res.text = body.toString("utf8");
  }
  return { summary: step.summary, request: req, response: res };
}

/** An example object -> {request, response} as the contract checks them. */
export function fromExample(e) {
  const body = (part) => {
    if (part.json !== undefined) {
      const text = Buffer.from(JSON.stringify(part.json));
      return part.binary_base64 !== undefined ? Buffer.concat([text, Buffer.from(part.binary_base64, "base64")]) : text;
    }
    if (part.binary_base64 !== undefined) return Buffer.from(part.binary_base64, "base64");
    if (part.text !== undefined) return Buffer.from(part.text);
    return Buffer.alloc(0);
  };
  const lower = (h) => Object.fromEntries(Object.entries(h || {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
  return {
    request: { method: e.request.method, path: e.request.path, headers: lower(e.request.headers), body: body(e.request) },
    response: { method: e.request.method, path: e.request.path, status: e.response.status, headers: lower(e.response.headers), body: body(e.response) },
  };
}

export function readExamples(dir = EXAMPLES) {
  const out = {};
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort())
    out[f.replace(/\.json$/, "")] = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
  return out;
}

function canonical(h) {
  const special = { "www-authenticate": "WWW-Authenticate", "x-request-id": "X-Request-Id" };
  return special[h] || h.replace(/(^|-)([a-z])/g, (m, d, c) => d + c.toUpperCase());
}

/** JSON with two-space indentation, but arrays of scalars on one line. */
export function format(value, indent = "") {
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object")) return `[${value.map((v) => JSON.stringify(v)).join(", ")}]`;
    const inner = indent + "  ";
    return `[\n${value.map((v) => inner + format(v, inner)).join(",\n")}\n${indent}]`;
  }
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (!keys.length) return "{}";
    const inner = indent + "  ";
    return `{\n${keys.map((k) => `${inner}${JSON.stringify(k)}: ${format(value[k], inner)}`).join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value);
}

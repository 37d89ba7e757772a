// contract.mjs — attnd's wire contract (proto/openapi.yaml and proto/schemas/)
// as validators.
//
// Schema validation is Ajv's (JSON Schema 2020-12, the dialect of OpenAPI
// 3.1); the OpenAPI document itself is validated by @readme/openapi-parser.
// What this file adds is the lookup that OpenAPI leaves to its tools: which
// operation a method and path select, which response a status code selects,
// which media type a Content-Type selects, the headers declared there, and the
// binary framing (Inference-Header-Content-Length), whose JSON part is checked
// against the schema under the media type's `x-attnd-json-header`.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { compileErrors, parse, validate as validateOpenapi } from "@readme/openapi-parser";
import Ajv2020 from "ajv/dist/2020.js";

export const PROTO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = path.resolve(PROTO, "..");
// The names under which the schemas are known to Ajv: the generated
// <type>.json files carry $id https://attnd.dev/schemas/<type>.json, and
// openapi.yaml refers to schemas/... relative to itself.
const BASE = "https://attnd.dev/";
const DOC_URI = `${BASE}openapi.yaml`;

/** Validates an OpenAPI document (a path or an object) as OpenAPI 3.1:
 *  returns [] or a list of messages. */
export async function openapiErrors(doc) {
  let result;
  try {
    result = await validateOpenapi(typeof doc === "string" ? doc : structuredClone(doc));
  } catch (e) {
    return [`not a resolvable OpenAPI document: ${e.message}`];
  }
  const errors = result.valid ? [] : [compileErrors(result)];
  const version = typeof doc === "string" ? (await parse(doc)).openapi : doc.openapi;
  if (!/^3\.1\.\d+$/.test(String(version))) errors.push(`openapi is ${version}, not 3.1.x`);
  return errors;
}

/** The JSON files of proto/schemas (name -> parsed). */
export function loadSchemaFiles(dir = path.join(PROTO, "schemas")) {
  const out = {};
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort())
    out[f] = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
  return out;
}

const pointerToken = (t) => String(t).replace(/~/g, "~0").replace(/\//g, "~1");
const fragment = (ptr) => ptr.split("/").map((t) => encodeURIComponent(t)).join("/");

export class Contract {
  /** doc: the parsed openapi.yaml (refs intact); schemaFiles: loadSchemaFiles(). */
  constructor(doc, schemaFiles) {
    this.doc = doc;
    // strict: unknown keywords, formats and ignored keywords are errors; types
    // may be unions, and a keyword need not be beside the type it applies to
    this.ajv = new Ajv2020({ strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true, allErrors: true });
    // the OpenAPI document's own fields are not JSON Schema keywords
    for (const k of Object.keys(doc)) if (!this.ajv.RULES.keywords[k]) this.ajv.addKeyword(k);
    for (const [file, schema] of Object.entries(schemaFiles)) {
      const uri = `${BASE}schemas/${file}`;
      if (schema.$id && schema.$id !== uri) throw new Error(`${file}: $id ${schema.$id}, expected ${uri}`);
      this.ajv.addSchema(schema, schema.$id ? undefined : uri);
    }
    this.ajv.addSchema(doc, DOC_URI);
    this.cache = new Map();
  }

  static async load(protoDir = PROTO) {
    const doc = await parse(path.join(protoDir, "openapi.yaml"));
    return new Contract(doc, loadSchemaFiles(path.join(protoDir, "schemas")));
  }

  /** A validator for the schema at a JSON pointer of openapi.yaml, or at a
   *  schema file's URI ("schemas/full.json"). */
  validator(where) {
    let v = this.cache.get(where);
    if (!v) {
      const ref = where.startsWith("/") ? `${DOC_URI}#${fragment(where)}` : BASE + where;
      v = this.ajv.compile({ $ref: ref });
      this.cache.set(where, v);
    }
    return v;
  }

  /** [] or the schema errors of `value`, each prefixed with `label`. */
  check(where, value, label) {
    const v = this.validator(where);
    if (v(value)) return [];
    return v.errors.map((e) => `${label}${e.instancePath || ""} ${e.message} (${e.schemaPath})`);
  }

  get(ptr) {
    let o = this.doc;
    for (const t of ptr.split("/").slice(1)) {
      o = o?.[t.replace(/~1/g, "/").replace(/~0/g, "~")];
    }
    return o;
  }

  /** Follows OpenAPI Reference Objects (local ones): {obj, ptr}. */
  deref(obj, ptr) {
    for (let n = 0; obj && typeof obj.$ref === "string"; n++) {
      if (!obj.$ref.startsWith("#/") || n > 16) throw new Error(`unsupported reference ${obj.$ref} at ${ptr}`);
      ptr = obj.$ref.slice(1);
      obj = this.get(ptr);
    }
    return { obj, ptr };
  }

  /** Every schema the document holds: components.schemas and every schema
   *  or x-attnd-json-header under paths, responses, parameters, headers, ... */
  schemaPointers() {
    const out = [];
    const walk = (o, ptr) => {
      if (!o || typeof o !== "object") return;
      for (const [k, v] of Object.entries(o)) {
        const p = `${ptr}/${pointerToken(k)}`;
        if ((k === "schema" || k === "x-attnd-json-header") && v && typeof v === "object") out.push(p);
        else if (k === "schemas" && ptr === "/components") for (const n of Object.keys(v)) out.push(`${p}/${pointerToken(n)}`);
        else walk(v, p);
      }
    };
    walk(this.doc, "");
    return out;
  }

  /** The operation a request selects: {op, ptr, pathTemplate, params} or
   *  {op: null} when none does (then x-attnd-unmatched-requests applies). */
  operation(method, urlPath) {
    let p = urlPath.split("?")[0];
    if (p.length > 1 && p.endsWith("/")) p = p.slice(0, -1); // attnd takes one trailing slash
    let best = null;
    for (const tpl of Object.keys(this.doc.paths || {})) {
      const names = [];
      const re = new RegExp(
        "^" +
          tpl.replace(/\{([^}]+)\}|[^{]+/g, (m, name) => {
            if (name) {
              names.push(name);
              return "([^/]+)";
            }
            return m.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
          }) +
          "$",
      );
      const m = re.exec(p);
      if (!m) continue;
      const literal = tpl.replace(/\{[^}]+\}/g, "").length;
      if (!best || literal > best.literal) {
        const params = {};
        names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1])));
        best = { tpl, params, literal };
      }
    }
    const verb = method.toLowerCase() === "head" ? "get" : method.toLowerCase();
    if (!best || !this.doc.paths[best.tpl][verb]) return { op: null, pathTemplate: best?.tpl ?? null };
    const ptr = `/paths/${pointerToken(best.tpl)}/${verb}`;
    return { op: this.doc.paths[best.tpl][verb], ptr, pathTemplate: best.tpl, params: best.params };
  }

  /** Checks one response against the document.  ex: {method, path, status,
   *  headers (lower-case names), body (Buffer)}.  Returns [] or messages. */
  responseErrors(ex) {
    const where = `${ex.method} ${ex.path} -> ${ex.status}`;
    const sel = this.operation(ex.method, ex.path);
    let responses, rptr;
    if (sel.op) {
      responses = sel.op.responses;
      rptr = `${sel.ptr}/responses`;
    } else {
      responses = this.doc["x-attnd-unmatched-requests"]?.responses;
      rptr = "/x-attnd-unmatched-requests/responses";
      if (!responses) return [`${where}: matches no operation`];
    }
    const code = String(ex.status);
    const key = [code, `${code[0]}XX`, "default"].find((k) => responses[k]);
    if (!key) {
      return [`${where}: status ${code} is not documented for ${sel.op ? sel.ptr : "unmatched requests"} (documented: ${Object.keys(responses).join(", ")})`];
    }
    const { obj: resp, ptr } = this.deref(responses[key], `${rptr}/${pointerToken(key)}`);
    const errors = [];
    errors.push(...this.headerErrors(resp.headers, `${ptr}/headers`, ex.headers, where));
    const ctype = ex.headers["content-type"];
    if (!resp.content || Object.keys(resp.content).length === 0) {
      if (ex.body.length) errors.push(`${where}: a body where the document has none`);
      return errors;
    }
    if (!ctype) return [...errors, `${where}: no Content-Type`];
    const essence = ctype.split(";")[0].trim().toLowerCase();
    const mkey = resp.content[ctype] ? ctype : resp.content[essence] ? essence : null;
    if (!mkey) {
      return [...errors, `${where}: Content-Type ${ctype} is not documented (documented: ${Object.keys(resp.content).join(", ")})`];
    }
    errors.push(...this.bodyErrors(resp.content[mkey], `${ptr}/content/${pointerToken(mkey)}`, mkey, ex.headers, ex.body, `${where}: body`));
    return errors;
  }

  headerErrors(decl, ptr, headers, where) {
    const errors = [];
    for (const [name, h0] of Object.entries(decl || {})) {
      const { obj: h, ptr: hptr } = this.deref(h0, `${ptr}/${pointerToken(name)}`);
      const value = headers[name.toLowerCase()];
      if (value === undefined) {
        if (h.required) errors.push(`${where}: header ${name} is missing`);
        continue;
      }
      errors.push(...this.check(`${hptr}/schema`, coerce(value, h.schema), `${where}: header ${name}`));
    }
    return errors;
  }

  /** A body against a Media Type Object (with the binary framing). */
  bodyErrors(media, mptr, mkey, headers, body, label) {
    if (mkey === "application/json") {
      let value;
      try {
        value = JSON.parse(body.toString("utf8"));
      } catch (e) {
        return [`${label} is not JSON: ${e.message}`];
      }
      return this.check(`${mptr}/schema`, value, label);
    }
    if (mkey.startsWith("text/")) return this.check(`${mptr}/schema`, body.toString("utf8"), label);
    if (media["x-attnd-safetensors"]) return safetensorsErrors(body, media["x-attnd-safetensors"], label);
    if (media["x-attnd-json-header"]) {
      const h = headers["inference-header-content-length"];
      if (h === undefined) return [`${label}: binary framing without Inference-Header-Content-Length`];
      if (!/^[0-9]+$/.test(h) || Number(h) > body.length)
        return [`${label}: Inference-Header-Content-Length ${h} does not fit a ${body.length}-byte body`];
      const n = Number(h);
      let json;
      try {
        json = JSON.parse(body.subarray(0, n).toString("utf8"));
      } catch (e) {
        return [`${label}: the first ${n} bytes are not JSON: ${e.message}`];
      }
      const errors = this.check(`${mptr}/x-attnd-json-header`, json, `${label} (JSON part)`);
      // Tensors: their binary_data_size add up to the rest of the body.
      const sized = [...(json.inputs || []), ...(json.outputs || [])].filter(
        (t) => t && t.parameters && t.parameters.binary_data_size !== undefined,
      );
      const tail = body.length - n;
      if (sized.length) {
        const sum = sized.reduce((s, t) => s + Number(t.parameters.binary_data_size), 0);
        if (sum !== tail) errors.push(`${label}: binary_data_size adds up to ${sum}, but ${tail} bytes follow the JSON part`);
      }
      return errors;
    }
    return [];
  }

  /** Checks a request against the document: path and header parameters and
   *  the body.  req: {method, path, headers (lower-case), body (Buffer)}. */
  requestErrors(req) {
    const where = `${req.method} ${req.path}`;
    const sel = this.operation(req.method, req.path);
    if (!sel.op) return [`${where}: matches no operation`];
    const errors = [];
    for (const [i, p0] of (sel.op.parameters || []).entries()) {
      const { obj: p, ptr } = this.deref(p0, `${sel.ptr}/parameters/${i}`);
      const value = p.in === "path" ? sel.params[p.name] : p.in === "header" ? req.headers[p.name.toLowerCase()] : undefined;
      if (value === undefined) {
        if (p.required) errors.push(`${where}: parameter ${p.name} is missing`);
        continue;
      }
      errors.push(...this.check(`${ptr}/schema`, coerce(value, p.schema), `${where}: parameter ${p.name}`));
    }
    const body = req.body || Buffer.alloc(0);
    if (!sel.op.requestBody) {
      if (body.length) errors.push(`${where}: a body where the document has none`);
      return errors;
    }
    const { obj: rb, ptr } = this.deref(sel.op.requestBody, `${sel.ptr}/requestBody`);
    if (!body.length) {
      if (rb.required) errors.push(`${where}: the body is missing`);
      return errors;
    }
    // attnd reads the framing from Inference-Header-Content-Length, not from Content-Type
    // (a body that is only ever binary, like a sequence restore's, is octet-stream without it)
    const onlyBinary = rb.content["application/octet-stream"] && !rb.content["application/json"];
    const mkey = req.headers["inference-header-content-length"] !== undefined || onlyBinary ? "application/octet-stream" : "application/json";
    if (!rb.content[mkey]) return [...errors, `${where}: no ${mkey} body is documented`];
    errors.push(...this.bodyErrors(rb.content[mkey], `${ptr}/content/${pointerToken(mkey)}`, mkey, req.headers, body, `${where}: request body`));
    return errors;
  }

  /** Operation ids of the document: {operationId: "METHOD template"}. */
  operations() {
    const out = {};
    for (const [tpl, item] of Object.entries(this.doc.paths))
      for (const [verb, op] of Object.entries(item))
        if (op && op.operationId) out[op.operationId] = `${verb.toUpperCase()} ${tpl}`;
    return out;
  }
}

/** A safetensors file: 8-byte little-endian header length, a JSON header
 *  whose tensors' data_offsets tile the data section, and the __metadata__
 *  keys `want.metadata` lists. */
function safetensorsErrors(body, want, label) {
  if (body.length < 8) return [`${label}: ${body.length} bytes is not a safetensors file`];
  const n = Number(body.readBigUInt64LE(0));
  if (n > body.length - 8) return [`${label}: header length ${n} passes the ${body.length}-byte body`];
  let h;
  try {
    h = JSON.parse(body.subarray(8, 8 + n).toString("utf8"));
  } catch (e) {
    return [`${label}: the safetensors header is not JSON: ${e.message}`];
  }
  const errors = [];
  let end = 0;
  for (const [k, t] of Object.entries(h)) {
    if (k === "__metadata__") continue;
    if (!t || !Array.isArray(t.data_offsets) || !Array.isArray(t.shape) || typeof t.dtype !== "string")
      errors.push(`${label}: tensor ${k} lacks dtype, shape or data_offsets`);
    else end = Math.max(end, t.data_offsets[1]);
  }
  if (8 + n + end !== body.length) errors.push(`${label}: the data section has ${body.length - 8 - n} bytes, the tensors ${end}`);
  for (const key of want.metadata || [])
    if (!h.__metadata__ || typeof h.__metadata__[key] !== "string") errors.push(`${label}: __metadata__ has no string ${key}`);
  return errors;
}

// Header and path values are strings; an integer schema means a decimal one.
function coerce(value, schema) {
  const s = schema && schema.$ref ? null : schema;
  if (s && (s.type === "integer" || s.type === "number") && /^-?[0-9]+(\.[0-9]+)?$/.test(value)) return Number(value);
  return value;
}

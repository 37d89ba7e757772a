// attnd client: attention served over the Open Inference Protocol (KServe v2 REST).
// ESM, no dependencies; runs wherever fetch does (Node 18+, browsers, Deno, Bun).

// ---- errors ----

/** Base class of every error the client throws. */
export class AttndError extends Error {
  constructor(message, { status = null, body = null, headers = {}, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    /** HTTP status, or null when no answer arrived. */
    this.status = status;
    /** The raw response body (Uint8Array) or null. */
    this.body = body;
    /** Response headers (lower-case names). */
    this.headers = headers;
  }
}
/** The server could not be reached. */
export class ConnectError extends AttndError {}
/** No answer within the timeout. */
export class RequestTimeoutError extends AttndError {}
/** The answer does not follow the protocol. */
export class ProtocolError extends AttndError {}
/** The server answered with an error status; `message` is its {"error": ...}. */
export class HTTPError extends AttndError {}
export class BadRequestError extends HTTPError {}
export class UnauthorizedError extends HTTPError {}
export class ForbiddenError extends HTTPError {}
export class ModelNotFoundError extends HTTPError {}
/** 404 on a sequence request: unknown here or ended; the message says which and why. */
export class SequenceNotFoundError extends ModelNotFoundError {}
/** 409: e.g. a sequence start (or restore) on a live id. */
export class ConflictError extends HTTPError {}
export class PayloadTooLargeError extends HTTPError {}
export class ServerError extends HTTPError {}
export class ServiceUnavailableError extends ServerError {
  /** The server's Retry-After in seconds, or null. */
  get retryAfter() {
    return retryAfterSeconds(this.headers['retry-after']);
  }
}
export class GatewayTimeoutError extends ServerError {}

const BY_STATUS = {
  400: BadRequestError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: ModelNotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  503: ServiceUnavailableError,
  504: GatewayTimeoutError,
};

function errorForStatus(status, message, body, headers) {
  const Cls = BY_STATUS[status] || (status >= 500 ? ServerError : HTTPError);
  return new Cls(message, { status, body, headers });
}

function retryAfterSeconds(value) {
  if (value === undefined || value === null || value === '') return null;
  const n = Number(value);
  if (Number.isFinite(n)) return Math.max(0, n);
  const t = Date.parse(value);
  return Number.isNaN(t) ? null : Math.max(0, (t - Date.now()) / 1000);
}

// ---- tensors ----

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// datatype -> [typed array constructor, bytes per element]
const DATATYPES = {
  BOOL: [Uint8Array, 1],
  UINT8: [Uint8Array, 1],
  UINT16: [Uint16Array, 2],
  UINT32: [Uint32Array, 4],
  UINT64: [BigUint64Array, 8],
  INT8: [Int8Array, 1],
  INT16: [Int16Array, 2],
  INT32: [Int32Array, 4],
  INT64: [BigInt64Array, 8],
  FP32: [Float32Array, 4],
  FP64: [Float64Array, 8],
  // 16-bit floats: the data is a Float32Array of the 16-bit values (rounded
  // to nearest even); on the wire, 2 little-endian bytes each.
  FP16: [Float32Array, 2],
  BF16: [Float32Array, 2], // Triton's extension: the top 16 bits of a float32
};
const HALF = new Set(['FP16', 'BF16']);

// ---- 16-bit floats ----

const cvF = new Float32Array(1);
const cvU = new Uint32Array(cvF.buffer);

/** float32 bits -> FP16 bits, nearest even (beyond the range: infinity; NaN quiet). */
function f16Bits(u) {
  const s = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return s | 0x7e00 | ((a >>> 13) & 0x3ff);
  if (a >= 0x477ff000) return s | 0x7c00;
  if (a >= 0x38800000) {
    let r = (a - 0x38000000) >>> 13;
    const rem = a & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++;
    return s | r;
  }
  const e = a >>> 23;
  const shift = 126 - e;
  if (e === 0 || shift > 24) return s;
  const m = (a & 0x7fffff) | 0x800000;
  let r = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (r & 1))) r++;
  return s | r;
}

function f16Value(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1024 + m) * 2 ** (e - 25);
}

function bf16Bits(u) {
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

function bf16Value(h) {
  cvU[0] = (h << 16) >>> 0;
  return cvF[0];
}

/** 16-bit patterns of `values` (numbers, rounded to float32 first) in `datatype`. */
function halfBits(datatype, values) {
  const out = new Uint16Array(values.length);
  const f = datatype === 'FP16' ? f16Bits : bf16Bits;
  for (let i = 0; i < values.length; i++) {
    cvF[0] = values[i];
    out[i] = f(cvU[0]);
  }
  return out;
}

function halfValues(datatype, bits) {
  const out = new Float32Array(bits.length);
  const f = datatype === 'FP16' ? f16Value : bf16Value;
  for (let i = 0; i < bits.length; i++) out[i] = f(bits[i]);
  return out;
}

/** Rounds numbers to FP16 or BF16 (nearest even); a Float32Array of the values. */
export function roundHalf(datatype, values) {
  return halfValues(datatype, halfBits(datatype, Array.from(values, Number)));
}

// Untyped arrays become FP32, BOOL when every element is a boolean, or the
// datatype that attnd's well-known input names take.
const NAME_HINTS = {
  query_lengths: 'INT64',
  key_lengths: 'INT64',
  attn_mask: 'BOOL',
  mask: 'BOOL',
  input_mask: 'BOOL',
};

function typedDatatype(data, name) {
  if (data instanceof Float32Array || data instanceof Float64Array) return 'FP32';
  if (data instanceof Int32Array) return 'INT32';
  if (data instanceof BigInt64Array) return 'INT64';
  if (data instanceof BigUint64Array) return 'UINT64';
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) {
    return NAME_HINTS[name] === 'BOOL' ? 'BOOL' : 'UINT8';
  }
  if (data instanceof Int8Array) return 'INT8';
  if (data instanceof Int16Array) return 'INT16';
  if (data instanceof Uint16Array) return 'UINT16';
  if (data instanceof Uint32Array) return 'UINT32';
  return null;
}

function flatten(value) {
  if (ArrayBuffer.isView(value)) return { flat: value, shape: [value.length] };
  if (!Array.isArray(value)) return { flat: [value], shape: [] };
  const shape = [];
  let level = [value];
  while (level.length && Array.isArray(level[0])) {
    const n = level[0].length;
    const next = [];
    for (const item of level) {
      if (!Array.isArray(item) || item.length !== n) throw new TypeError('ragged nested array: not a tensor');
      for (const x of item) next.push(x);
    }
    shape.push(n);
    level = next;
  }
  for (const x of level) if (Array.isArray(x)) throw new TypeError('ragged nested array: not a tensor');
  return { flat: level, shape };
}

function numel(shape) {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function toTyped(datatype, flat) {
  const [Ctor] = DATATYPES[datatype];
  if (HALF.has(datatype)) return roundHalf(datatype, flat);
  if (flat instanceof Ctor) return flat;
  if (Ctor === BigInt64Array || Ctor === BigUint64Array) return Ctor.from(flat, (x) => BigInt(x));
  if (datatype === 'BOOL') return Uint8Array.from(flat, (x) => (x ? 1 : 0));
  return Ctor.from(flat, (x) => Number(x));
}

/** A tensor: `data` is a typed array (Float32Array for FP32, Uint8Array for
 * BOOL, BigInt64Array for INT64, ...) in row-major order. */
export class Tensor {
  /**
   * @param data typed array, array or nested arrays
   * @param opts {shape, datatype, name}; shape defaults to the nesting (or [length])
   */
  constructor(data, { shape, datatype, name } = {}) {
    const f = flatten(data);
    if (shape === undefined) shape = f.shape;
    shape = Array.from(shape, Number);
    if (numel(shape) !== f.flat.length) {
      throw new TypeError(`shape [${shape}] holds ${numel(shape)} elements, data has ${f.flat.length}`);
    }
    if (datatype === undefined) {
      datatype = typedDatatype(f.flat, name);
      if (datatype === null) {
        if (f.flat.length && f.flat.every((x) => typeof x === 'boolean')) datatype = 'BOOL';
        else datatype = NAME_HINTS[name] || 'FP32';
      }
    }
    datatype = String(datatype).toUpperCase();
    if (!DATATYPES[datatype]) throw new TypeError(`unsupported datatype ${datatype}`);
    this.name = name;
    this.shape = shape;
    this.datatype = datatype;
    this.data = toTyped(datatype, f.flat);
  }

  /** The data as nested arrays of the tensor's shape. */
  toNested() {
    let flat = Array.from(this.data, this.datatype === 'BOOL' ? (x) => x !== 0 : (x) => x);
    if (this.shape.length === 0) return flat[0];
    for (let i = this.shape.length - 1; i >= 1; i--) {
      const d = this.shape[i];
      const next = [];
      for (let j = 0; j < flat.length; j += d) next.push(flat.slice(j, j + d));
      flat = next;
    }
    return flat;
  }

  /** Little-endian bytes of the data. */
  bytes() {
    const d = this.data;
    if (HALF.has(this.datatype)) {
      const bits = halfBits(this.datatype, d);
      const out = new Uint8Array(bits.length * 2);
      const dv = new DataView(out.buffer);
      for (let i = 0; i < bits.length; i++) dv.setUint16(2 * i, bits[i], true);
      return out;
    }
    if (LITTLE || d.BYTES_PER_ELEMENT === 1) return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    const out = new Uint8Array(d.byteLength);
    const dv = new DataView(out.buffer);
    const size = d.BYTES_PER_ELEMENT;
    for (let i = 0; i < d.length; i++) setLE(dv, i * size, this.datatype, d[i]);
    return out;
  }
}

function setLE(dv, off, datatype, v) {
  switch (datatype) {
    case 'UINT16': dv.setUint16(off, v, true); break;
    case 'INT16': dv.setInt16(off, v, true); break;
    case 'UINT32': dv.setUint32(off, v, true); break;
    case 'INT32': dv.setInt32(off, v, true); break;
    case 'UINT64': dv.setBigUint64(off, v, true); break;
    case 'INT64': dv.setBigInt64(off, v, true); break;
    case 'FP32': dv.setFloat32(off, v, true); break;
    case 'FP64': dv.setFloat64(off, v, true); break;
    default: throw new TypeError(datatype);
  }
}

function getLE(dv, off, datatype) {
  switch (datatype) {
    case 'UINT16': return dv.getUint16(off, true);
    case 'INT16': return dv.getInt16(off, true);
    case 'UINT32': return dv.getUint32(off, true);
    case 'INT32': return dv.getInt32(off, true);
    case 'UINT64': return dv.getBigUint64(off, true);
    case 'INT64': return dv.getBigInt64(off, true);
    case 'FP32': return dv.getFloat32(off, true);
    case 'FP64': return dv.getFloat64(off, true);
    default: throw new TypeError(datatype);
  }
}

/** The tensor in datatype dt (FP16, BF16, FP32) when it is a floating-point one. */
function asDatatype(t, dt) {
  if (!dt) return t;
  dt = String(dt).toUpperCase();
  if (!['FP16', 'BF16', 'FP32'].includes(dt)) throw new TypeError(`inputDatatype must be FP32, FP16 or BF16, not ${dt}`);
  if (!['FP16', 'BF16', 'FP32', 'FP64'].includes(t.datatype) || t.datatype === dt) return t;
  return new Tensor(t.data, { shape: t.shape, datatype: dt, name: t.name });
}

const COMPRESSION = ['gzip', 'deflate'];

function compressionOption(what, v) {
  if (v === undefined || v === null || v === '' || v === 'none') return null;
  const a = String(v).toLowerCase();
  if (!COMPRESSION.includes(a)) throw new TypeError(`${what} must be gzip, deflate or null, not ${v}`);
  return a;
}

/** bytes compressed as Content-Encoding algo (gzip, or deflate: the zlib format). */
export async function compressBytes(algo, bytes) {
  if (typeof CompressionStream === 'function') {
    const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream(algo));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  const zlib = await nodeModule('zlib');
  return new Uint8Array(algo === 'gzip' ? zlib.gzipSync(bytes) : zlib.deflateSync(bytes));
}

function asTensor(name, value) {
  if (value instanceof Tensor) {
    return value.name === name ? value : Object.assign(Object.create(Tensor.prototype), value, { name });
  }
  if (value && typeof value === 'object' && !Array.isArray(value) && !ArrayBuffer.isView(value) && 'data' in value) {
    return new Tensor(value.data, { shape: value.shape, datatype: value.datatype, name });
  }
  return new Tensor(value, { name });
}

function tensorFromBytes(name, datatype, shape, bytes) {
  const spec = DATATYPES[datatype];
  if (!spec) throw new ProtocolError(`output '${name}' has unsupported datatype ${datatype}`);
  const [Ctor, size] = spec;
  if (bytes.byteLength !== numel(shape) * size) {
    throw new ProtocolError(`output '${name}': ${bytes.byteLength} bytes for shape [${shape}] ${datatype}`);
  }
  let data;
  if (HALF.has(datatype)) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const bits = new Uint16Array(bytes.byteLength / 2);
    for (let i = 0; i < bits.length; i++) bits[i] = dv.getUint16(2 * i, true);
    data = halfValues(datatype, bits);
  } else if (LITTLE || size === 1) {
    // a copy: aligned, and independent of the response buffer
    data = new Ctor(bytes.slice().buffer);
  } else {
    data = new Ctor(bytes.byteLength / size);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < data.length; i++) data[i] = getLE(dv, i * size, datatype);
  }
  const t = Object.create(Tensor.prototype);
  return Object.assign(t, { name, shape, datatype, data });
}

function tensorFromJSON(name, datatype, shape, values) {
  if (!DATATYPES[datatype]) throw new ProtocolError(`output '${name}' has unsupported datatype ${datatype}`);
  const { flat } = flatten(values);
  if (flat.length !== numel(shape)) {
    throw new ProtocolError(`output '${name}': ${flat.length} elements for shape [${shape}]`);
  }
  const t = Object.create(Tensor.prototype);
  return Object.assign(t, { name, shape, datatype, data: toTyped(datatype, flat) });
}

// JSON numbers of a tensor; NaN and infinities as the tokens the server reads.
function jsonNumber(x) {
  if (typeof x === 'bigint') return x.toString();
  if (typeof x === 'boolean') return x ? 'true' : 'false';
  if (Number.isFinite(x)) return Object.is(x, -0) ? '-0.0' : String(x);
  if (Number.isNaN(x)) return 'NaN';
  return x > 0 ? 'Infinity' : '-Infinity';
}

function jsonData(t) {
  const parts = new Array(t.data.length);
  if (t.datatype === 'BOOL') for (let i = 0; i < parts.length; i++) parts[i] = t.data[i] ? 'true' : 'false';
  else for (let i = 0; i < parts.length; i++) parts[i] = jsonNumber(t.data[i]);
  return `[${parts.join(',')}]`;
}

// JSON.parse, also accepting the bare NaN / Infinity / -Infinity tokens the
// server writes for non-finite floats (they become strings, which Number() reads).
export function parseJSON(text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    if (!/NaN|Infinity/.test(text)) throw e;
  }
  let out = '';
  let i = 0;
  let start = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    const m = /^(-?Infinity|NaN)/.exec(text.slice(i, i + 9));
    if (m) {
      out += text.slice(start, i) + `"${m[1]}"`;
      i += m[1].length;
      start = i;
      continue;
    }
    i++;
  }
  return JSON.parse(out + text.slice(start));
}

// ---- base64 (Node's Buffer when present, btoa otherwise) ----

function base64(bytes) {
  if (typeof globalThis.Buffer === 'function') {
    return globalThis.Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  }
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function toBytes(x) {
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TypeError('expected bytes (Uint8Array, ArrayBuffer or a typed array)');
}

// Node modules, loaded only when a file path is given (never in browsers);
// the specifier is a variable so that bundlers leave it alone.
function nodeModule(name) {
  return import(/* webpackIgnore: true */ /* @vite-ignore */ `node:${name}`);
}

async function readFileNode(path) {
  const fs = await nodeModule('fs/promises');
  return new Uint8Array(await fs.readFile(path));
}

// ---- the client ----

// Weights larger than this go as raw bytes after the load request's JSON header.
export const BINARY_LOAD_THRESHOLD = 1 << 20;

// Below this many body bytes a broken connection is not taken for an early 413.
const EARLY_ANSWER_MIN = 1 << 16;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const enc = new TextEncoder();
const dec = new TextDecoder();

function quote(name) {
  if (typeof name !== 'string' || name === '') throw new TypeError('a model name is a non-empty string');
  return encodeURIComponent(name);
}

function errorMessage(status, bytes) {
  const text = dec.decode(bytes);
  try {
    const doc = JSON.parse(text);
    if (doc && typeof doc.error === 'string') return doc.error;
  } catch {
    // not JSON
  }
  return text.trim() || `HTTP ${status}`;
}

// JSON.stringify that writes BigInts as JSON integers (a 63-bit sequence id).
function jsonBig(value) {
  const marks = [];
  const text = JSON.stringify(value, (k, v) => {
    if (typeof v !== 'bigint') return v;
    marks.push(v.toString());
    return `\u0000big${marks.length - 1}\u0000`;
  });
  return marks.length ? text.replace(/"\\u0000big(\d+)\\u0000"/g, (m, i) => marks[Number(i)]) : text;
}

function headerObject(headers) {
  const out = {};
  headers.forEach((v, k) => {
    out[k.toLowerCase()] = v;
  });
  return out;
}

/**
 * A client of one attnd server.
 *
 * Options: apiKey (sent as `Authorization: Bearer <key>`), adminKey (default
 * apiKey; sent on the repository endpoints instead), timeout (ms per request,
 * default 60000; 0 or null: none), retries (default 3) with backoff (ms,
 * default 50, doubled each attempt, with jitter, or the server's Retry-After
 * when longer) on 503/429 and on connection failures; a wait longer than
 * maxBackoff (ms, default 10000) is not made. fetch: a fetch implementation
 * (default globalThis.fetch). headers: extra headers on every request.
 * requestCompressionAlgorithm / responseCompressionAlgorithm ('gzip',
 * 'deflate' or null; Triton's request_compression_algorithm and
 * response_compression_algorithm are accepted too): the defaults of infer's
 * options of the same names.  fetch inflates compressed replies itself.
 */
export class Client {
  constructor(url = 'http://127.0.0.1:8000', options = {}) {
    if (typeof options === 'string') options = { apiKey: options };
    this.url = String(url).replace(/\/+$/, '');
    if (!/^https?:\/\//.test(this.url)) this.url = 'http://' + this.url;
    this.apiKey = options.apiKey ?? null;
    this.adminKey = options.adminKey ?? this.apiKey;
    this.timeout = options.timeout === undefined ? 60000 : options.timeout;
    this.retries = Math.max(0, options.retries ?? 3);
    this.backoff = options.backoff ?? 50;
    this.maxBackoff = options.maxBackoff ?? 10000;
    this.headers = { ...(options.headers || {}) };
    this.fetch = options.fetch || globalThis.fetch;
    // Triton's option names (snake_case) are accepted too.
    this.requestCompressionAlgorithm = compressionOption('requestCompressionAlgorithm',
      options.requestCompressionAlgorithm ?? options.request_compression_algorithm);
    this.responseCompressionAlgorithm = compressionOption('responseCompressionAlgorithm',
      options.responseCompressionAlgorithm ?? options.response_compression_algorithm);
    if (typeof this.fetch !== 'function') throw new TypeError('no fetch: pass options.fetch (Node 18+ has one)');
  }

  _delay(attempt, retryAfter) {
    let ms = this.backoff * 2 ** attempt * (0.5 + Math.random() / 2);
    if (retryAfter !== null) ms = Math.max(ms, retryAfter * 1000);
    return ms;
  }

  async _once(method, path, body, headers, timeout, signal) {
    const ctl = new AbortController();
    let timedOut = false;
    const timer = timeout ? setTimeout(() => { timedOut = true; ctl.abort(); }, timeout) : null;
    const onAbort = () => ctl.abort();
    if (signal) {
      if (signal.aborted) ctl.abort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    try {
      const res = await this.fetch(this.url + path, { method, body, headers, signal: ctl.signal });
      const bytes = new Uint8Array(await res.arrayBuffer());
      return { status: res.status, headers: headerObject(res.headers), bytes };
    } catch (e) {
      if (timedOut) {
        throw new RequestTimeoutError(`no answer from ${this.url} within ${timeout} ms (${method} ${path})`, { cause: e });
      }
      if (signal && signal.aborted) throw e;
      throw new ConnectError(`cannot reach ${this.url}: ${e.cause?.message || e.message}`, { cause: e });
    } finally {
      if (timer) clearTimeout(timer);
      if (signal) signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Sends one request with retries; resolves {status, headers, bytes} of a
   * non-error answer, or rejects with the AttndError subclass of the status.
   */
  async request(method, path, { body, headers, timeout, admin = false, retry = true, retryConnect = true, signal } = {}) {
    const h = { ...this.headers, ...(headers || {}) };
    const key = admin ? this.adminKey : this.apiKey;
    if (key) h.authorization = `Bearer ${key}`;
    const t = timeout === undefined ? this.timeout : timeout;
    for (let attempt = 0; ; attempt++) {
      let res;
      try {
        res = await this._once(method, path, body, h, t, signal);
      } catch (e) {
        if (e instanceof ConnectError && body && body.length > EARLY_ANSWER_MIN) {
          // attnd answers 413 as soon as it sees a Content-Length over its limit
          // and closes; fetch, still sending, only sees the broken connection.
          const limit = await this._bodyLimit(h);
          if (limit !== null && body.length > limit) {
            throw new PayloadTooLargeError(
              `request body of ${body.length} bytes exceeds the server's limit of ${limit} bytes (max_body_bytes)`,
              { status: 413, cause: e });
          }
        }
        if (e instanceof ConnectError && retry && retryConnect && attempt < this.retries) {
          const ms = this._delay(attempt, null);
          if (ms <= this.maxBackoff) {
            await sleep(ms);
            continue;
          }
        }
        throw e;
      }
      if ((res.status === 503 || res.status === 429) && retry && attempt < this.retries) {
        const ms = this._delay(attempt, retryAfterSeconds(res.headers['retry-after']));
        if (ms <= this.maxBackoff) {
          await sleep(ms);
          continue;
        }
      }
      if (res.status >= 400) throw errorForStatus(res.status, errorMessage(res.status, res.bytes), res.bytes, res.headers);
      return res;
    }
  }

  // The server's body limit from GET /v2 (limits.max_body_bytes), or null.
  async _bodyLimit(headers) {
    try {
      const res = await this._once('GET', '/v2', undefined, headers, 5000, undefined);
      const limit = res.status === 200 ? parseJSON(dec.decode(res.bytes))?.limits?.max_body_bytes : undefined;
      return Number.isFinite(limit) ? limit : null;
    } catch {
      return null;
    }
  }

  async _getJSON(path, opts) {
    const res = await this.request('GET', path, opts);
    return this._json(res.bytes, `GET ${path}`);
  }

  async _postJSON(path, doc, opts = {}) {
    const res = await this.request('POST', path, {
      ...opts, body: JSON.stringify(doc), headers: { 'content-type': 'application/json' },
    });
    return res.bytes.length ? this._json(res.bytes, `POST ${path}`) : null;
  }

  _json(bytes, what) {
    try {
      return parseJSON(dec.decode(bytes));
    } catch (e) {
      throw new ProtocolError(`${what}: the server's answer is not JSON (${e.message})`, { cause: e });
    }
  }

  async _statusOK(path, opts) {
    try {
      await this.request('GET', path, { ...opts, retry: false });
      return true;
    } catch (e) {
      if (e instanceof HTTPError && e.status !== 401 && e.status !== 403) return false;
      throw e;
    }
  }

  /** {live, ready} from /v2/health/live and /v2/health/ready. */
  async health(opts = {}) {
    const [live, ready] = await Promise.all([
      this._statusOK('/v2/health/live', opts), this._statusOK('/v2/health/ready', opts)]);
    return { live, ready };
  }

  /** The server (or one model) is ready. */
  async isReady(model, opts = {}) {
    return this._statusOK(model === undefined ? '/v2/health/ready' : `/v2/models/${quote(model)}/ready`, opts);
  }

  /** GET /v2: name, version, extensions, limits. */
  async serverMetadata(opts = {}) {
    return this._getJSON('/v2', opts);
  }

  /** GET /v2/models/{name}: platform, versions, inputs, outputs. */
  async metadata(name, opts = {}) {
    return this._getJSON(`/v2/models/${quote(name)}`, opts);
  }

  /** The repository index: [{name, version?, state, reason?}, ...]. */
  async models({ ready, ...opts } = {}) {
    const out = await this._postJSON('/v2/repository/index', ready === undefined ? {} : { ready: !!ready }, { ...opts, admin: true });
    if (!Array.isArray(out)) throw new ProtocolError('repository index: expected a JSON array');
    return out;
  }

  /**
   * POST /v2/models/{name}/infer. `inputs`: an object of name -> Tensor,
   * {data, shape, datatype?}, typed array or nested arrays (or an array of
   * named Tensors). Options: parameters, binary (default true: the binary
   * tensor data extension both ways), outputs (names), id, timeout, signal,
   * inputDatatype ('FP16', 'BF16': send the floating-point inputs in that
   * format, rounded to nearest even), outputDatatype ('FP32', 'FP16', 'BF16':
   * the format the outputs come back in; the Tensor's data is a Float32Array
   * of its values), requestCompressionAlgorithm and
   * responseCompressionAlgorithm ('gzip', 'deflate'; default: the client's),
   * headers (extra HTTP headers). A BigInt parameter goes as a JSON integer.
   * Resolves {outputs: {name: Tensor}, modelName, modelVersion, id, parameters}.
   */
  async infer(name, inputs, {
    parameters, binary = true, outputs, id, timeout, signal, inputDatatype, outputDatatype,
    requestCompressionAlgorithm, responseCompressionAlgorithm, headers: extraHeaders, retryConnect,
  } = {}) {
    const reqAlgo = requestCompressionAlgorithm === undefined ? this.requestCompressionAlgorithm
      : compressionOption('requestCompressionAlgorithm', requestCompressionAlgorithm);
    const respAlgo = responseCompressionAlgorithm === undefined ? this.responseCompressionAlgorithm
      : compressionOption('responseCompressionAlgorithm', responseCompressionAlgorithm);
    if (outputDatatype !== undefined && !['FP32', 'FP16', 'BF16'].includes(String(outputDatatype).toUpperCase())) {
      throw new TypeError(`outputDatatype must be FP32, FP16 or BF16, not ${outputDatatype}`);
    }
    const tensors = (Array.isArray(inputs)
      ? inputs.map((t) => {
        if (!(t instanceof Tensor) || !t.name) throw new TypeError('inputs: an object of name -> value, or named Tensors');
        return t;
      })
      : Object.entries(inputs).map(([k, v]) => asTensor(k, v))).map((t) => asDatatype(t, inputDatatype));
    if (outputs === undefined && outputDatatype !== undefined) {
      // the outputs a request without `outputs` gets: those the metadata does not mark optional
      outputs = ((await this.metadata(name, { timeout, signal })).outputs || []).filter((o) => !o.optional).map((o) => o.name);
    }
    const params = { ...(parameters || {}) };
    if (binary) params.binary_data_output = true;
    const parts = [];
    if (id !== undefined) parts.push(`"id":${JSON.stringify(String(id))}`);
    if (Object.keys(params).length) parts.push(`"parameters":${jsonBig(params)}`);
    const raws = [];
    const ins = tensors.map((t) => {
      const head = `"name":${JSON.stringify(t.name)},"shape":${JSON.stringify(t.shape)},"datatype":"${t.datatype}"`;
      if (!binary) return `{${head},"data":${jsonData(t)}}`;
      const raw = t.bytes();
      raws.push(raw);
      return `{${head},"parameters":{"binary_data_size":${raw.byteLength}}}`;
    });
    parts.push(`"inputs":[${ins.join(',')}]`);
    if (outputs !== undefined) {
      const op = (o) => ({
        name: o,
        parameters: outputDatatype === undefined ? { binary_data: !!binary }
          : { binary_data: !!binary, datatype: String(outputDatatype).toUpperCase() },
      });
      parts.push(`"outputs":${JSON.stringify(Array.from(outputs, op))}`);
    }
    const header = enc.encode(`{${parts.join(',')}}`);
    let body;
    let headers;
    if (binary) {
      const total = raws.reduce((n, r) => n + r.byteLength, header.byteLength);
      body = new Uint8Array(total);
      body.set(header, 0);
      let off = header.byteLength;
      for (const r of raws) {
        body.set(r, off);
        off += r.byteLength;
      }
      headers = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) };
    } else {
      body = header;
      headers = { 'content-type': 'application/json' };
    }
    if (reqAlgo) {
      body = await compressBytes(reqAlgo, body);
      headers['content-encoding'] = reqAlgo;
    }
    if (respAlgo) headers['accept-encoding'] = respAlgo;
    if (extraHeaders) Object.assign(headers, extraHeaders);
    const res = await this.request('POST', `/v2/models/${quote(name)}/infer`, { body, headers, timeout, signal, retryConnect });
    return this._decode(res);
  }

  _decode(res) {
    const bytes = res.bytes;
    const hlen = res.headers['inference-header-content-length'];
    let header;
    let tail = new Uint8Array(0);
    if (hlen !== undefined) {
      const n = Number(hlen);
      if (!Number.isInteger(n) || n < 0 || n > bytes.length) {
        throw new ProtocolError(`bad Inference-Header-Content-Length ${hlen} for a body of ${bytes.length} bytes`);
      }
      header = this._json(bytes.subarray(0, n), 'inference response');
      tail = bytes.subarray(n);
    } else {
      header = this._json(bytes, 'inference response');
    }
    if (!header || !Array.isArray(header.outputs)) throw new ProtocolError('inference response without outputs');
    const outs = {};
    let off = 0;
    for (const o of header.outputs) {
      const p = o.parameters || {};
      const shape = Array.from(o.shape || [], Number);
      if (p.binary_data_size !== undefined) {
        const size = Number(p.binary_data_size);
        if (!Number.isInteger(size) || size < 0 || off + size > tail.length) {
          throw new ProtocolError(`output '${o.name}': binary_data_size ${p.binary_data_size} beyond the body`);
        }
        outs[o.name] = tensorFromBytes(o.name, o.datatype, shape, tail.subarray(off, off + size));
        off += size;
      } else {
        outs[o.name] = tensorFromJSON(o.name, o.datatype, shape, o.data ?? []);
      }
    }
    if (off !== tail.length) throw new ProtocolError(`inference response: ${tail.length - off} binary bytes left over`);
    return {
      outputs: outs,
      modelName: header.model_name,
      modelVersion: header.model_version,
      id: header.id,
      parameters: header.parameters || {},
    };
  }

  /**
   * Runs the built-in model of a mechanism type ('full', 'linear', 'local', ...)
   * on queries (N,L,H,E), keys (N,S,H,E), values (N,S,H,D). Options: attnMask,
   * queryLengths, keyLengths, binary, timeout, signal, and config: the
   * mechanism's config (the reference constructor's keyword arguments), sent
   * as the request's parameters. Resolves the output Tensor (N,L,H,D).
   */
  async attention(type, queries, keys, values, { attnMask, queryLengths, keyLengths, binary, timeout, signal, config, ...rest } = {}) {
    const inputs = { queries, keys, values };
    if (attnMask !== undefined && attnMask !== null) inputs.attn_mask = attnMask;
    if (queryLengths !== undefined && queryLengths !== null) inputs.query_lengths = queryLengths;
    if (keyLengths !== undefined && keyLengths !== null) inputs.key_lengths = keyLengths;
    const res = await this.infer(type, inputs, { parameters: { ...(config || {}), ...rest }, binary, timeout, signal });
    const names = Object.keys(res.outputs);
    if (res.outputs.output) return res.outputs.output;
    if (names.length === 1) return res.outputs[names[0]];
    throw new ProtocolError(`attention: no output named 'output' in [${names}]`);
  }

  /**
   * Loads (or atomically replaces) model `name`. `config`: {type, config}
   * (config.json's content), its JSON text, or (Node) the path of a model
   * folder or of a config.json. `weights`: the weights.safetensors bytes
   * (Uint8Array, ArrayBuffer) or (Node) its path. Without config the server
   * loads <repository>/<name>/. Sent as Triton does: parameters.config (JSON
   * text) and parameters["file:weights.safetensors"] (base64), or with
   * opts.binary (default: weights over 1 MiB) as raw bytes after the JSON
   * header (Inference-Header-Content-Length).
   */
  async loadModel(name, config, weights, opts = {}) {
    let configText;
    if (config !== undefined && config !== null) {
      if (typeof config === 'object') configText = JSON.stringify(config);
      else if (/^\s*\{/.test(config)) configText = String(config);
      else {
        const fs = await nodeModule('fs/promises');
        const path = await nodeModule('path');
        let file = String(config);
        if ((await fs.stat(file)).isDirectory()) {
          const w = path.join(file, 'weights.safetensors');
          if (weights === undefined || weights === null) {
            try {
              await fs.access(w);
              weights = w;
            } catch {
              // parameter-free type: no weights
            }
          }
          file = path.join(file, 'config.json');
        }
        configText = await fs.readFile(file, 'utf8');
      }
    }
    const params = {};
    if (configText !== undefined) params.config = configText;
    const path = `/v2/repository/models/${quote(name)}/load`;
    const { binary, ...rest } = opts;
    if (weights !== undefined && weights !== null) {
      const bytes = typeof weights === 'string' ? await readFileNode(weights) : toBytes(weights);
      if (binary || (binary === undefined && bytes.byteLength > BINARY_LOAD_THRESHOLD)) {
        const head = enc.encode(JSON.stringify({ parameters: params }));
        const body = new Uint8Array(head.byteLength + bytes.byteLength);
        body.set(head, 0);
        body.set(bytes, head.byteLength);
        await this.request('POST', path, {
          ...rest,
          body,
          admin: true,
          headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.byteLength) },
        });
        return;
      }
      params['file:weights.safetensors'] = base64(bytes);
    }
    await this._postJSON(path, Object.keys(params).length ? { parameters: params } : {}, { ...rest, admin: true });
  }

  /** Unloads model `name`. */
  async unloadModel(name, opts = {}) {
    await this._postJSON(`/v2/repository/models/${quote(name)}/unload`, {}, { ...opts, admin: true });
  }

  // ---- sequences (streaming sessions) ----

  /**
   * A Sequence of `model` (nothing is sent until its first step). Options: id
   * (a BigInt/integer in 1..2^64-1 or a string matching [A-Za-z0-9._:~-]{1,128};
   * default a random 63-bit BigInt), kind ('self' or 'cross'), config (the
   * start request's parameters: a built-in model's config).
   */
  sequence(model, { id, kind = 'self', config } = {}) {
    return new Sequence(this, model, { id, kind, config });
  }

  async _seq(method, model, id, opts) {
    try {
      return await this.request(method, seqPath(model, id), opts);
    } catch (e) {
      throw seqError(e);
    }
  }

  /** GET /v2/models/{m}/sequences/{id}: the state of a live sequence (safetensors bytes). */
  async exportSequence(model, id, opts = {}) {
    const res = await this._seq('GET', model, id, { ...opts, headers: { [SEQUENCE_HEADER]: String(id) } });
    return res.bytes;
  }

  /**
   * PUT /v2/models/{m}/sequences/{id}: makes `data` (an export) the live
   * sequence `id` (409 when it is live); resolves its Sequence, which continues
   * exactly where the export was made.
   */
  async restoreSequence(model, id, data, opts = {}) {
    const cid = checkSequenceId(id);
    const res = await this._seq('PUT', model, cid, {
      ...opts,
      body: toBytes(data),
      retryConnect: false,
      headers: { 'content-type': 'application/octet-stream', [SEQUENCE_HEADER]: String(cid) },
    });
    const doc = this._json(res.bytes, `PUT ${seqPath(model, cid)}`);
    if (!doc || typeof doc !== 'object') throw new ProtocolError('restore: expected a JSON object');
    const seq = new Sequence(this, model, { id: cid, kind: doc.kind === 'cross' ? 'cross' : 'self' });
    seq.started = true;
    seq.length = Number.isInteger(doc.sequence_length) ? doc.sequence_length : 0;
    return seq;
  }

  /** DELETE /v2/models/{m}/sequences/{id}: ends it now; resolves {model, sequence_id, ended}. */
  async deleteSequence(model, id, opts = {}) {
    const res = await this._seq('DELETE', model, id, { ...opts, headers: { [SEQUENCE_HEADER]: String(id) } });
    return this._json(res.bytes, `DELETE ${seqPath(model, id)}`);
  }

  /** GET /v2/models/{m}/sequences (admin key): [{id, model, length, bytes, idle_s, age_s, busy}]. */
  async listSequences(model, opts = {}) {
    const doc = await this._getJSON(seqPath(model), { ...opts, admin: true });
    if (!doc || !Array.isArray(doc.sequences)) throw new ProtocolError('list of sequences: no sequences array');
    return doc.sequences;
  }
}

// ---- sequences ----

/** The header that names a sequence (a load balancer can route on it). */
export const SEQUENCE_HEADER = 'Sequence-Id';

/** A random sequence id in 1 .. 2^63-1 (a BigInt). */
export function newSequenceId() {
  const w = new Uint32Array(2);
  for (;;) {
    if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(w);
    else for (let i = 0; i < 2; i++) w[i] = Math.floor(Math.random() * 2 ** 32);
    const id = ((BigInt(w[0] & 0x7fffffff) << 32n) | BigInt(w[1]));
    if (id) return id;
  }
}

function checkSequenceId(id) {
  if (typeof id === 'number') {
    if (!Number.isSafeInteger(id)) throw new TypeError(`a number sequence id must be a safe integer (use a BigInt): ${id}`);
    id = BigInt(id);
  }
  if (typeof id === 'bigint') {
    if (id <= 0n || id >= 1n << 64n) throw new RangeError(`an integer sequence id is in 1 .. 2^64-1, not ${id}`);
    return id;
  }
  if (typeof id !== 'string' || !/^[A-Za-z0-9._:~-]{1,128}$/.test(id)) {
    throw new TypeError(`a sequence id is an integer or a string matching [A-Za-z0-9._:~-]{1,128}, not ${String(id)}`);
  }
  return id;
}

function seqPath(model, id) {
  const base = `/v2/models/${quote(model)}/sequences`;
  return id === undefined ? base : `${base}/${encodeURIComponent(String(checkSequenceId(id)))}`;
}

function seqError(e) {
  if (e instanceof ModelNotFoundError && !(e instanceof SequenceNotFoundError)) {
    return new SequenceNotFoundError(e.message, { status: e.status, body: e.body, headers: e.headers, cause: e });
  }
  return e;
}

/**
 * One sequence (Client.sequence, Client.restoreSequence). `length`: the tokens
 * the server holds after the last step; `started`, `ended`: what this object
 * knows of its life.
 */
export class Sequence {
  constructor(client, model, { id, kind = 'self', config } = {}) {
    if (kind !== 'self' && kind !== 'cross') throw new TypeError(`kind must be 'self' or 'cross', not ${kind}`);
    quote(model);
    this.client = client;
    this.model = model;
    this.id = id === undefined || id === null ? newSequenceId() : checkSequenceId(id);
    this.kind = kind;
    this.config = { ...(config || {}) };
    for (const k of Object.keys(this.config)) {
      if (k.startsWith('sequence_')) throw new TypeError(`config must not carry ${k}: the sequence sets it`);
    }
    this.started = false;
    this.ended = false;
    this.length = 0;
  }

  /** {'Sequence-Id': id}. */
  get headers() {
    return { [SEQUENCE_HEADER]: String(this.id) };
  }

  /**
   * Sends the next tokens (axis 1 of every input, T >= 1); the first step
   * starts the sequence (with config and kind); options.end ends it after this
   * step. Other options are infer's (binary, outputs, parameters,
   * outputDatatype, timeout, signal, ...). A step is sent again only on
   * 503/429 (not applied), never after a lost connection. Rejects with
   * SequenceNotFoundError (404, the reason in the message), ConflictError
   * (409: a start on a live id, or a replica whose copy has another length
   * than this object counts, as a stale copy after a failover), PayloadTooLargeError (413), ServiceUnavailableError (503,
   * retryAfter), BadRequestError (400). Resolves infer's result.
   */
  async step(inputs, { end = false, parameters, ...opts } = {}) {
    const params = {};
    if (!this.started) {
      Object.assign(params, this.config, { sequence_start: true });
      if (this.kind !== 'self') params.sequence_kind = this.kind;
    }
    Object.assign(params, parameters || {}, { sequence_id: this.id });
    // the length this object counts: a replica with another (a stale copy
    // after a failover) refuses with 409 instead of answering
    if (this.started) params.attnd_expect_length = this.length;
    if (end) params.sequence_end = true;
    let res;
    try {
      res = await this.client.infer(this.model, inputs, {
        ...opts, parameters: params, headers: { ...(opts.headers || {}), ...this.headers }, retryConnect: false,
      });
    } catch (e) {
      if (e instanceof ModelNotFoundError && this.started) this.ended = true;
      throw seqError(e);
    }
    this.started = true;
    // JSON numbers lose the low bits of a 63-bit id: give back the exact one
    const echoed = res.parameters.sequence_id;
    if (typeof echoed === 'number' && typeof this.id === 'bigint' && echoed === Number(this.id)) res.parameters.sequence_id = this.id;
    if (Number.isInteger(res.parameters.sequence_length)) this.length = res.parameters.sequence_length;
    if (end || res.parameters.sequence_end === true) this.ended = true;
    return res;
  }

  /** Ends the sequence now (DELETE), without a step; a no-op when it never started or has ended. */
  async end(opts = {}) {
    if (!this.started || this.ended) {
      this.ended = this.ended || this.started;
      return;
    }
    try {
      await this.client.deleteSequence(this.model, this.id, opts);
    } finally {
      this.ended = true;
    }
  }

  /** The state (safetensors bytes) for Client.restoreSequence; the sequence stays live. */
  async export(opts = {}) {
    if (!this.started) throw new ProtocolError(`sequence ${this.id} has not started: nothing to export`);
    return this.client.exportSequence(this.model, this.id, opts);
  }
}

export default Client;

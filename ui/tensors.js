// tensors.js — tensors in the browser: typed arrays by datatype, a seeded
// random source, .npy and .safetensors readers, nested-JSON arrays, and the
// binary tensor data framing of the Open Inference Protocol (a JSON header
// of Inference-Header-Content-Length bytes, then each tensor's bytes in
// order).  Plain ES module, no dependencies.

// KServe datatype -> [typed array, bytes per element]
const TYPES = {
  FP32: [Float32Array, 4], FP64: [Float64Array, 8], INT64: [BigInt64Array, 8], INT32: [Int32Array, 4],
  INT16: [Int16Array, 2], INT8: [Int8Array, 1], UINT8: [Uint8Array, 1], BOOL: [Uint8Array, 1], FP16: [Uint16Array, 2],
  BF16: [Uint16Array, 2],
};

export function numel(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

/** A tensor: {name, datatype, shape, data (typed array)}. */
export function makeTensor(name, datatype, shape, data) {
  if (!TYPES[datatype]) throw new Error(`${name}: datatype ${datatype} is not supported by the page`);
  if (data.length !== numel(shape)) throw new Error(`${name}: ${data.length} values for shape [${shape}]`);
  return { name, datatype, shape, data };
}

// ---- a seeded random source: mulberry32, normals by Box-Muller ----
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    uniform: next,
    normal() {
      const u = 1 - next(), v = next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
  };
}

// ---- .npy (format 1.0 / 2.0 / 3.0, C order, little-endian) ----
const NPY = { "<f4": "FP32", "<f8": "FP64", "<i8": "INT64", "<i4": "INT32", "<i2": "INT16", "|i1": "INT8", "|u1": "UINT8",
  "|b1": "BOOL", "<f2": "FP16" };

export function readNpy(name, buf) {
  const u8 = new Uint8Array(buf);
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (u8.length < 10 || magic.some((b, i) => u8[i] !== b)) throw new Error(`${name}: not a .npy file (no \\x93NUMPY magic)`);
  const major = u8[6];
  const dv = new DataView(buf);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const hstart = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(u8.subarray(hstart, hstart + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new Error(`${name}: a .npy header without descr or shape`);
  if (fortran) throw new Error(`${name}: Fortran-ordered .npy is not supported (save with np.ascontiguousarray)`);
  const datatype = NPY[descr];
  if (!datatype) throw new Error(`${name}: .npy dtype ${descr} is not supported (float32, float64, int64, int32, bool, ...)`);
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s).map(Number);
  const [T, size] = TYPES[datatype];
  const start = hstart + hlen, n = numel(shape);
  if (start + n * size > u8.length) throw new Error(`${name}: the .npy file is shorter than its shape [${shape}] needs`);
  return makeTensor(name, datatype, shape, new T(buf.slice(start, start + n * size)));
}

// ---- .safetensors: u64 header length, JSON header, data ----
const ST = { F32: "FP32", F64: "FP64", I64: "INT64", I32: "INT32", I16: "INT16", I8: "INT8", U8: "UINT8", BOOL: "BOOL",
  F16: "FP16", BF16: "BF16" };

/** Every tensor of a .safetensors file: {tensorName: tensor}. */
export function readSafetensors(name, buf) {
  if (buf.byteLength < 8) throw new Error(`${name}: not a .safetensors file (${buf.byteLength} bytes)`);
  const dv = new DataView(buf);
  const hlen = Number(dv.getBigUint64(0, true));
  if (hlen < 2 || 8 + hlen > buf.byteLength) throw new Error(`${name}: not a .safetensors file (header length ${hlen} does not fit ${buf.byteLength} bytes)`);
  let header;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(buf, 8, hlen)));
  } catch (e) {
    throw new Error(`${name}: not a .safetensors file (its header is not JSON: ${e.message})`);
  }
  const out = {};
  for (const [k, v] of Object.entries(header)) {
    if (k === "__metadata__") continue;
    const datatype = ST[v.dtype];
    if (!datatype) throw new Error(`${name}: tensor ${k} has dtype ${v.dtype}, which the page does not read`);
    const [T, size] = TYPES[datatype];
    const [a, b] = v.data_offsets;
    if (b - a !== numel(v.shape) * size || 8 + hlen + b > buf.byteLength)
      throw new Error(`${name}: tensor ${k}'s data_offsets do not fit its shape`);
    out[k] = makeTensor(k, datatype, v.shape, new T(buf.slice(8 + hlen + a, 8 + hlen + b)));
  }
  return out;
}

// ---- JSON: a nested array, or {"shape": [...], "data": [...]} ----
export function readJson(name, text, datatype) {
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${name}: not JSON: ${e.message}`);
  }
  let shape, flat;
  if (v && !Array.isArray(v) && typeof v === "object") {
    shape = v.shape;
    flat = v.data.flat(Infinity);
  } else {
    shape = [];
    for (let x = v; Array.isArray(x); x = x[0]) shape.push(x.length);
    flat = Array.isArray(v) ? v.flat(Infinity) : [v];
  }
  const [T] = TYPES[datatype];
  const data = datatype === "INT64" ? BigInt64Array.from(flat, (x) => BigInt(x)) : datatype === "BOOL"
    ? Uint8Array.from(flat, (x) => (x ? 1 : 0)) : T.from(flat, (x) => (x === null ? NaN : x));
  return makeTensor(name, datatype, shape, data);
}

// ---- the binary tensor data extension ----
function bytesOf(t) {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** The request body and its Inference-Header-Content-Length. */
export function encodeRequest(tensors, outputs, parameters) {
  const header = { inputs: tensors.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape,
    parameters: { binary_data_size: t.data.byteLength } })), outputs };
  if (parameters && Object.keys(parameters).length) header.parameters = parameters;
  const h = new TextEncoder().encode(JSON.stringify(header));
  const total = h.length + tensors.reduce((a, t) => a + t.data.byteLength, 0);
  const body = new Uint8Array(total);
  body.set(h, 0);
  let off = h.length;
  for (const t of tensors) {
    body.set(bytesOf(t), off);
    off += t.data.byteLength;
  }
  return { body, headerLength: h.length, header };
}

/** A response (ArrayBuffer and its Inference-Header-Content-Length, or
 *  null for a JSON body): {header, tensors: {name: tensor}}. */
export function decodeResponse(buf, headerLength) {
  const n = headerLength === null ? buf.byteLength : headerLength;
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 0, n)));
  const tensors = {};
  let off = n;
  for (const o of header.outputs || []) {
    const size = o.parameters?.binary_data_size;
    let data;
    const [T] = TYPES[o.datatype] || [];
    if (!T) throw new Error(`output ${o.name}: datatype ${o.datatype} is not supported by the page`);
    if (size !== undefined) {
      data = new T(buf.slice(off, off + size)); // a copy: aligned for the typed array
      off += size;
    } else {
      data = o.datatype === "INT64" ? BigInt64Array.from(o.data.flat(Infinity), BigInt) : T.from(o.data.flat(Infinity));
    }
    tensors[o.name] = makeTensor(o.name, o.datatype, o.shape, data);
  }
  return { header, tensors };
}

/** min, max, mean, std and the non-finite count of a float tensor. */
export function stats(t) {
  let min = Infinity, max = -Infinity, sum = 0, sq = 0, bad = 0, n = 0;
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    const x = Number(d[i]);
    if (!Number.isFinite(x)) {
      bad++;
      continue;
    }
    n++;
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
    sq += x * x;
  }
  const mean = n ? sum / n : NaN;
  return { min, max, mean, std: n ? Math.sqrt(Math.max(0, sq / n - mean * mean)) : NaN, nonfinite: bad };
}

/** Nested JS arrays of a tensor (for the JSON form of a request). */
export function nested(t) {
  const d = Array.from(t.data, (x) => (typeof x === "bigint" ? Number(x) : t.datatype === "BOOL" ? !!x : x));
  const build = (dim, off) => {
    if (dim === t.shape.length) return d[off];
    const stride = numel(t.shape.slice(dim + 1));
    return Array.from({ length: t.shape[dim] }, (_, i) => build(dim + 1, off + i * stride));
  };
  return t.shape.length ? build(0, 0) : d[0];
}

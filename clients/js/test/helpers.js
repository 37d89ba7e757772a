// Shared by the tests: the live server test.sh started, and the golden cases
// it prepared (ATTND_GOLDEN/<case>/{case.json, inputs.safetensors,
// out.safetensors (what `attn run` computes), io.safetensors, model/}).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Tensor } from '../index.js';

export const URL = process.env.ATTND_URL || '';
export const API_KEY = process.env.ATTND_API_KEY || null;
export const ADMIN_KEY = process.env.ATTND_ADMIN_KEY || null;
export const GOLDEN = process.env.ATTND_GOLDEN || '';

export const BUILD = process.env.ATTND_BUILD || '';

/** The types `attn list` marks [built-in] (parameter-free, served by type name). */
export function builtinTypes() {
  if (!BUILD) return new Set();
  const out = execFileSync(join(BUILD, 'attn'), ['list'], { encoding: 'utf8' });
  return new Set([...out.matchAll(/^(\w+)\b.*\[built-in\]$/gm)].map((m) => m[1]));
}

export function client(opts = {}) {
  return new Client(URL, { apiKey: API_KEY, adminKey: ADMIN_KEY, timeout: 30000, ...opts });
}

const ST = { F32: 'FP32', F64: 'FP64', BOOL: 'BOOL', I64: 'INT64', I32: 'INT32', U8: 'UINT8', I8: 'INT8' };

/** {name: {datatype, shape, raw: Uint8Array}} */
export function readSafetensors(path) {
  const blob = new Uint8Array(readFileSync(path));
  const n = Number(new DataView(blob.buffer, blob.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(blob.subarray(8, 8 + n)));
  const out = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [a, b] = info.data_offsets;
    out[name] = { datatype: ST[info.dtype], shape: info.shape, raw: blob.slice(8 + n + a, 8 + n + b) };
  }
  return out;
}

export function toTensor(entry, name) {
  const Ctor = { FP32: Float32Array, FP64: Float64Array, BOOL: Uint8Array, INT64: BigInt64Array, INT32: Int32Array, UINT8: Uint8Array, INT8: Int8Array }[entry.datatype];
  const data = new Ctor(entry.raw.slice().buffer);
  return new Tensor(data, { shape: entry.shape, datatype: entry.datatype, name });
}

export function goldenCases() {
  if (!GOLDEN || !existsSync(GOLDEN)) return [];
  return readdirSync(GOLDEN).filter((d) => existsSync(join(GOLDEN, d, 'case.json'))).sort();
}

export function loadCase(id) {
  const dir = join(GOLDEN, id);
  const kase = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8'));
  const modelConfig = JSON.parse(readFileSync(join(dir, 'model', 'config.json'), 'utf8'));
  const inputs = readSafetensors(join(dir, 'inputs.safetensors'));
  const out = readSafetensors(join(dir, 'out.safetensors'));
  const io = readSafetensors(join(dir, 'io.safetensors'));
  return {
    id,
    dir,
    kase,
    modelConfig,
    inputs,
    attnRun: Object.values(out)[0],
    expected: io[kase.output],
    hasWeights: existsSync(join(dir, 'model', 'weights.safetensors')),
  };
}

/** Asserts a Tensor equals raw little-endian float32 bytes bit for bit. */
export function bitsEqual(tensor, entry) {
  const got = tensor.bytes();
  if (JSON.stringify(tensor.shape) !== JSON.stringify(entry.shape)) {
    throw new Error(`shape [${tensor.shape}] != [${entry.shape}]`);
  }
  if (got.length !== entry.raw.length) throw new Error(`${got.length} bytes != ${entry.raw.length}`);
  const a = new Float32Array(got.slice().buffer);
  const b = new Float32Array(entry.raw.slice().buffer);
  let bad = 0;
  let first = -1;
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== entry.raw[i]) {
      bad++;
      if (first < 0) first = i >> 2;
    }
  }
  if (bad) throw new Error(`${bad} bytes differ from attn run; first element ${first}: ${a[first]} vs ${b[first]}`);
}

export function withinTolerance(tensor, entry, rtol, atol) {
  const b = new Float32Array(entry.raw.slice().buffer);
  const a = tensor.data;
  if (a.length !== b.length) throw new Error('length differs');
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(b[i])) {
      if (!Number.isNaN(a[i])) throw new Error(`element ${i}: ${a[i]} vs NaN`);
    } else if (Math.abs(a[i] - b[i]) > atol + rtol * Math.abs(b[i])) {
      throw new Error(`element ${i}: ${a[i]} vs ${b[i]} beyond rtol ${rtol} atol ${atol}`);
    }
  }
}

/** An extra attnd with its own flags on a free port; resolves {url, close()}. */
export async function spawnAttnd(flags) {
  const { spawn } = await import('node:child_process');
  const bin = process.env.ATTND_BIN || join(BUILD, 'attnd');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ATTND_')));
  const proc = spawn(bin, ['--host', '127.0.0.1', '--port', '0', ...flags], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const close = () => new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', resolve);
    proc.kill('SIGTERM');
  });
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline && proc.exitCode === null) {
    const m = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
    if (m) {
      const url = `http://127.0.0.1:${m[1]}`;
      if (await new Client(url, { retries: 0 }).isReady().catch(() => false)) return { url, close };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await close();
  throw new Error(`extra attnd did not start: ${log}`);
}

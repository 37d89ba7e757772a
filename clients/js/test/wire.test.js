// FP16 and BF16 on the wire, and compressed bodies, against the live server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import * as attnd from '../index.js';
import { client } from './helpers.js';

const SHAPE = [1, 6, 2, 4];

function rand(seed, n) {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = (s / 2147483648) * 4 - 2;
  }
  return out;
}

const n = SHAPE.reduce((a, b) => a * b, 1);
const qkv = (shape = SHAPE, m = n) => Object.fromEntries(['queries', 'keys', 'values'].map((k, i) =>
  [k, new attnd.Tensor(rand(i + 1, m), { shape, datatype: 'FP32', name: k })]));

// Oracles independent of the client: FP16 through Math.fround-free integer
// rounding by distances in double, and BF16 the same way.
function nearest(v, candidates) {
  let best = candidates[0];
  for (const c of candidates) {
    const d = Math.abs(c.v - v), bd = Math.abs(best.v - v);
    if (d < bd || (d === bd && (c.bits & 1) === 0)) best = c;
  }
  return best.v;
}
function f16Oracle(v) {
  if (!Number.isFinite(v)) return v;
  const a = Math.abs(v);
  if (a >= 65520) return Math.sign(v) * Infinity;
  const e = a < 2 ** -14 ? -14 : Math.floor(Math.log2(a));
  const ulp = 2 ** (e - 10);
  const lo = Math.floor(a / ulp);
  const r = nearest(a, [{ v: lo * ulp, bits: lo }, { v: (lo + 1) * ulp, bits: lo + 1 }]);
  return v < 0 || Object.is(v, -0) ? -r : r;
}
function bf16Oracle(v) {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0];
  const lo = new Float32Array(new Uint32Array([u & 0xffff0000]).buffer)[0];
  const hi = new Float32Array(new Uint32Array([(u & 0xffff0000) + 0x10000]).buffer)[0];
  return nearest(Math.abs(f[0]), [{ v: Math.abs(lo), bits: u >>> 16 }, { v: Math.abs(hi), bits: (u >>> 16) + 1 }]) * Math.sign(f[0] || 1 / f[0]);
}

test('the client rounds FP16 and BF16 to nearest even', () => {
  const vals = Array.from(rand(7, 2000), (x) => x * 100).concat([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -25, 65504, 65519, 65520, 1e6, -0.1]);
  const h = attnd.roundHalf('FP16', vals);
  for (let i = 0; i < vals.length; i++) assert.equal(h[i], f16Oracle(Math.fround(vals[i])), `FP16 ${vals[i]}`);
  const b = attnd.roundHalf('BF16', vals);
  for (let i = 0; i < vals.length; i++) assert.equal(b[i], bf16Oracle(vals[i]), `BF16 ${vals[i]}`);
  assert.ok(Number.isNaN(attnd.roundHalf('FP16', [NaN])[0]) && Number.isNaN(attnd.roundHalf('BF16', [NaN])[0]));
  const t = new attnd.Tensor([1, 0.5, -2], { datatype: 'FP16' });
  assert.deepEqual(Array.from(t.bytes()), [0x00, 0x3c, 0x00, 0x38, 0x00, 0xc0]);
  const tb = new attnd.Tensor([1, 0.5, -2], { datatype: 'BF16' });
  assert.deepEqual(Array.from(tb.bytes()), [0x80, 0x3f, 0x00, 0x3f, 0x00, 0xc0]);
});

for (const binary of [true, false]) {
  for (const dt of ['FP16', 'BF16']) {
    test(`${dt} inputs (binary ${binary}) equal FP32 inputs of the rounded values`, async () => {
      const c = client();
      const x = qkv();
      const rounded = Object.fromEntries(Object.entries(x).map(([k, t]) =>
        [k, new attnd.Tensor(attnd.roundHalf(dt, t.data), { shape: t.shape, datatype: 'FP32' })]));
      const want = (await c.infer('full', rounded, { binary })).outputs.output.data;
      const got = (await c.infer('full', x, { binary, inputDatatype: dt })).outputs.output.data;
      assert.deepEqual(Array.from(got), Array.from(want));
      const ref = (await c.infer('full', x, { binary })).outputs.output.data;
      let err = 0;
      for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(ref[i] - got[i]));
      assert.ok(err > 0 && err < (dt === 'FP16' ? 1e-2 : 6e-2), `error ${err}`);
    });
    test(`${dt} outputs (binary ${binary})`, async () => {
      const c = client();
      const x = qkv();
      const ref = (await c.infer('full', x, { binary })).outputs.output.data;
      const res = await c.infer('full', x, { binary, outputDatatype: dt });
      assert.deepEqual(Object.keys(res.outputs), ['output'], 'the default outputs, not the optional ones');
      const out = res.outputs.output;
      assert.equal(out.datatype, dt);
      assert.deepEqual(out.shape, SHAPE);
      const o = dt === 'FP16' ? f16Oracle : bf16Oracle;
      assert.deepEqual(Array.from(out.data), Array.from(ref, (v) => o(v)));
    });
  }
}

test('metadata lists the datatypes', async () => {
  const md = await client().metadata('full');
  assert.deepEqual(md.inputs.find((i) => i.name === 'queries').datatypes, ['FP32', 'FP16', 'BF16']);
  await assert.rejects(client().infer('full', qkv(), { outputDatatype: 'INT8' }), TypeError);
  await assert.rejects(client().infer('full', qkv(), { inputDatatype: 'FP8' }), TypeError);
});

const BIG = [1, 48, 2, 4];
for (const binary of [true, false]) {
  for (const [req, resp] of [['gzip', null], ['deflate', null], [null, 'gzip'], [null, 'deflate'], ['gzip', 'deflate']]) {
    test(`compression request ${req} reply ${resp} (binary ${binary})`, async () => {
      const x = qkv(BIG, 48 * 8);
      const want = (await client().infer('full', x, { binary })).outputs.output.data;
      const got = (await client().infer('full', x, {
        binary, requestCompressionAlgorithm: req, responseCompressionAlgorithm: resp,
      })).outputs.output.data;
      assert.deepEqual(Array.from(got), Array.from(want));
      const c2 = client({ request_compression_algorithm: req, response_compression_algorithm: resp });
      assert.deepEqual(Array.from((await c2.infer('full', x, { binary })).outputs.output.data), Array.from(want));
    });
  }
}

test('the server compresses when asked, and reads a compressed body', async () => {
  const x = qkv(BIG, 48 * 8);
  const body = JSON.stringify({ inputs: Object.entries(x).map(([k, t]) => ({ name: k, datatype: 'FP32', shape: t.shape, data: Array.from(t.data) })) });
  const gz = await attnd.compressBytes('gzip', new TextEncoder().encode(body));
  assert.equal(gunzipSync(gz).toString(), body);
  // fetch inflates the reply itself; the header says what travelled
  const res = await client().request('POST', '/v2/models/full/infer', {
    body: gz, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'accept-encoding': 'gzip' },
  });
  assert.equal(res.headers['content-encoding'], 'gzip');
  assert.equal(JSON.parse(new TextDecoder().decode(res.bytes)).outputs[0].data.length, 48 * 8);
  assert.throws(() => client({ requestCompressionAlgorithm: 'br' }), TypeError);
});

// Retries, backoff, Retry-After and timeouts against a scripted local server
// (an overloaded attnd cannot be produced on demand).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as attnd from '../index.js';

function stub(script) {
  const seen = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks), t: performance.now() });
      const [status, headers, body] = script.length ? script.shift() : [500, {}, '{"error":"script ended"}'];
      if (status === 'hang') return; // never answer
      res.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers });
      res.end(body);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}`;
      resolve({ url, seen, close: () => { server.closeAllConnections?.(); server.close(); } });
    });
  });
}

const OVERLOADED = [503, { 'retry-after': '1', 'content-type': 'application/json' }, '{"error":"queue full"}'];
const OK_META = [200, { 'content-type': 'application/json' }, '{"name":"attnd","version":"x","extensions":[]}'];

test('503 is retried after Retry-After', async () => {
  const s = await stub([OVERLOADED, OVERLOADED, OK_META]);
  try {
    const md = await new attnd.Client(s.url, { retries: 3, backoff: 10 }).serverMetadata();
    assert.equal(md.name, 'attnd');
    assert.equal(s.seen.length, 3);
    assert.ok(s.seen[1].t - s.seen[0].t >= 950, `${s.seen[1].t - s.seen[0].t}`);
    assert.ok(s.seen[2].t - s.seen[1].t >= 950);
  } finally { s.close(); }
});

test('503 after the last retry: ServiceUnavailableError with message and retryAfter', async () => {
  const s = await stub([[503, { 'retry-after': '0' }, '{"error":"queue full"}'], [503, { 'retry-after': '0' }, '{"error":"queue full"}'], [503, { 'retry-after': '0' }, '{"error":"queue full"}']]);
  try {
    await assert.rejects(new attnd.Client(s.url, { retries: 2, backoff: 5 }).serverMetadata(), (e) => {
      assert.ok(e instanceof attnd.ServiceUnavailableError && e instanceof attnd.ServerError);
      assert.equal(e.status, 503);
      assert.equal(e.message, 'queue full');
      assert.equal(e.retryAfter, 0);
      return true;
    });
    assert.equal(s.seen.length, 3);
  } finally { s.close(); }
});

test('exponential backoff without Retry-After', async () => {
  const busy = [503, {}, '{"error":"busy"}'];
  const s = await stub([busy, busy, busy, OK_META]);
  try {
    await new attnd.Client(s.url, { retries: 3, backoff: 200 }).serverMetadata();
    const gaps = [0, 1, 2].map((i) => s.seen[i + 1].t - s.seen[i].t);
    assert.ok(gaps[0] >= 95 && gaps[0] < 350, `${gaps}`);
    assert.ok(gaps[1] >= 195 && gaps[1] < 600, `${gaps}`);
    assert.ok(gaps[2] >= 395 && gaps[2] < 1000, `${gaps}`);
  } finally { s.close(); }
});

test('Retry-After beyond maxBackoff is not waited', async () => {
  const s = await stub([[503, { 'retry-after': '120' }, '{"error":"draining"}'], OK_META]);
  try {
    const t0 = performance.now();
    await assert.rejects(new attnd.Client(s.url, { maxBackoff: 5000 }).serverMetadata(), (e) => e.retryAfter === 120);
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(s.seen.length, 1);
  } finally { s.close(); }
});

test('429 is retried, 400 is not, retries: 0 disables', async () => {
  let s = await stub([[429, { 'retry-after': '0' }, '{"error":"slow down"}'], OK_META]);
  try {
    await new attnd.Client(s.url, { backoff: 5 }).serverMetadata();
    assert.equal(s.seen.length, 2);
  } finally { s.close(); }
  s = await stub([[400, {}, '{"error":"bad"}'], OK_META]);
  try {
    await assert.rejects(new attnd.Client(s.url).serverMetadata(), (e) => e instanceof attnd.BadRequestError && e.message === 'bad');
    assert.equal(s.seen.length, 1);
  } finally { s.close(); }
  s = await stub([OVERLOADED, OK_META]);
  try {
    await assert.rejects(new attnd.Client(s.url, { retries: 0 }).serverMetadata(), attnd.ServiceUnavailableError);
    assert.equal(s.seen.length, 1);
  } finally { s.close(); }
});

test('infer is retried with the same body', async () => {
  const resp = JSON.stringify({ model_name: 'm', outputs: [{ name: 'output', datatype: 'FP32', shape: [2], data: [1.5, -2] }] });
  const s = await stub([[503, { 'retry-after': '0' }, '{"error":"busy"}'], [200, {}, resp]]);
  try {
    const res = await new attnd.Client(s.url, { backoff: 5 }).infer('m', { x: [1, 2] });
    assert.deepEqual(Array.from(res.outputs.output.data), [1.5, -2]);
    assert.ok(s.seen[0].body.equals(s.seen[1].body));
    assert.equal(s.seen[0].url, '/v2/models/m/infer');
  } finally { s.close(); }
});

test('timeout: RequestTimeoutError, not retried', async () => {
  const s = await stub([['hang', {}, ''], OK_META]);
  try {
    const t0 = performance.now();
    await assert.rejects(new attnd.Client(s.url, { timeout: 300, retries: 3 }).serverMetadata(), attnd.RequestTimeoutError);
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(s.seen.length, 1);
  } finally { s.close(); }
});

test('per-call timeout and AbortSignal', async () => {
  const s = await stub([['hang', {}, ''], ['hang', {}, '']]);
  try {
    const c = new attnd.Client(s.url, { timeout: 30000 });
    await assert.rejects(c.infer('m', { x: [1] }, { timeout: 200 }), attnd.RequestTimeoutError);
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 100);
    await assert.rejects(c.infer('m', { x: [1] }, { signal: ctl.signal }), (e) => e.name === 'AbortError');
  } finally { s.close(); }
});

test('connection refused is retried, then ConnectError', async () => {
  const s = await stub([]);
  const url = s.url;
  s.close();
  await new Promise((r) => setTimeout(r, 50));
  const t0 = performance.now();
  await assert.rejects(new attnd.Client(url, { retries: 2, backoff: 50 }).serverMetadata(), attnd.ConnectError);
  assert.ok(performance.now() - t0 >= 70);
});

test('a short binary body is a ProtocolError', async () => {
  const hdr = JSON.stringify({ model_name: 'm', outputs: [{ name: 'output', datatype: 'FP32', shape: [4], parameters: { binary_data_size: 16 } }] });
  const s = await stub([[200, { 'inference-header-content-length': String(Buffer.byteLength(hdr)) }, hdr + '\0'.repeat(8)]]);
  try {
    await assert.rejects(new attnd.Client(s.url).infer('m', { x: [1] }), attnd.ProtocolError);
  } finally { s.close(); }
});

test('the binary request follows the extension', async () => {
  const s = await stub([[200, {}, '{"model_name":"m","outputs":[]}']]);
  try {
    await new attnd.Client(s.url, { apiKey: 'k' }).infer('m', {
      a: new attnd.Tensor(new Float32Array([1, 2]), { shape: [1, 2] }),
      b: new attnd.Tensor([true, false, true]),
    }, { parameters: { p: 1 } });
    const { headers, body } = s.seen[0];
    const n = Number(headers['inference-header-content-length']);
    const header = JSON.parse(body.subarray(0, n).toString());
    assert.equal(headers.authorization, 'Bearer k');
    assert.equal(headers['content-type'], 'application/octet-stream');
    assert.deepEqual(header.parameters, { p: 1, binary_data_output: true });
    assert.deepEqual(header.inputs, [
      { name: 'a', shape: [1, 2], datatype: 'FP32', parameters: { binary_data_size: 8 } },
      { name: 'b', shape: [3], datatype: 'BOOL', parameters: { binary_data_size: 3 } }]);
    assert.deepEqual([...body.subarray(n)], [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 1, 0, 1]);
  } finally { s.close(); }
});

test('a URL path prefix is kept', async () => {
  const s = await stub([OK_META]);
  try {
    await new attnd.Client(s.url + '/attnd/').serverMetadata();
    assert.equal(s.seen[0].url, '/attnd/v2');
  } finally { s.close(); }
});

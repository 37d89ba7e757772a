// Sequences (streaming sessions) against the live attnd: a prefill then single
// tokens equal one causal forward of the whole sequence; export / restore; the
// end of a sequence; cross sequences; the errors (400, 404, 409, 413, 503).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as attnd from '../index.js';
import { Tensor } from '../index.js';
import { client, spawnAttnd } from './helpers.js';

const N = 2;
const H = 2;
const E = 4;
const D = 3;
const TOL = 1e-5;

let seed = 1;
function rand(shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    out[i] = (seed / 2147483648) * 2 - 1;
  }
  return new Tensor(out, { shape });
}

// tokens a..b (axis 1) of a (N, L, ...) Tensor
function cut(t, a, b) {
  const inner = t.shape.slice(2).reduce((x, y) => x * y, 1);
  const L = t.shape[1];
  const out = new Float32Array(t.shape[0] * (b - a) * inner);
  for (let n = 0; n < t.shape[0]; n++) out.set(t.data.subarray((n * L + a) * inner, (n * L + b) * inner), n * (b - a) * inner);
  return new Tensor(out, { shape: [t.shape[0], b - a, ...t.shape.slice(2)] });
}

function join(parts) {
  const s = parts[0].shape;
  const inner = s.slice(2).reduce((x, y) => x * y, 1);
  const L = parts.reduce((n, p) => n + p.shape[1], 0);
  const out = new Float32Array(s[0] * L * inner);
  let off = 0;
  for (let n = 0; n < s[0]; n++) {
    for (const p of parts) {
      const k = p.shape[1] * inner;
      out.set(p.data.subarray(n * k, (n + 1) * k), off);
      off += k;
    }
  }
  return new Tensor(out, { shape: [s[0], L, ...s.slice(2)] });
}

function assertClose(got, want, tol = TOL) {
  assert.deepEqual(got.shape, want.shape);
  let worst = 0;
  for (let i = 0; i < got.data.length; i++) worst = Math.max(worst, Math.abs(got.data[i] - want.data[i]));
  assert.ok(worst <= tol, `max |difference| ${worst} > ${tol}`);
}

function qkv(L, S = L) {
  return [rand([N, L, H, E]), rand([N, S, H, E]), rand([N, S, H, D])];
}

const tokens = ([q, k, v], a, b) => ({ queries: cut(q, a, b), keys: cut(k, a, b), values: cut(v, a, b) });

async function causalReference(c, model, [q, k, v], config) {
  const L = q.shape[1];
  const ins = { queries: q, keys: k, values: v };
  if (model === 'full') { // causal_linear is causal by itself
    const m = new Uint8Array(L * L);
    for (let i = 0; i < L; i++) for (let j = 0; j <= i; j++) m[i * L + j] = 1;
    ins.attn_mask = new Tensor(m, { shape: [L, L], datatype: 'BOOL' });
  }
  return (await c.infer(model, ins, { parameters: config })).outputs.output;
}

const CASES = [['full', undefined], ['causal_linear', { query_dimensions: E }]];

for (const [model, config] of CASES) {
  test(`${model}: a prefill then single tokens equal one causal forward`, async () => {
    const c = client();
    const L = 9;
    const x = qkv(L);
    const want = await causalReference(c, model, x, config);
    const seq = c.sequence(model, { config });
    assert.equal(typeof seq.id, 'bigint');
    assert.ok(seq.id > 0n && seq.id < 1n << 63n);
    const bounds = [[0, 4]];
    for (let t = 4; t < L; t++) bounds.push([t, t + 1]);
    const parts = [];
    let r;
    for (const [i, [a, b]] of bounds.entries()) {
      r = await seq.step(tokens(x, a, b), { end: i === bounds.length - 1 });
      assert.equal(r.parameters.sequence_id, seq.id);
      assert.equal(r.parameters.sequence_length, b);
      assert.equal(seq.length, b);
      parts.push(r.outputs.output);
    }
    assert.equal(r.parameters.sequence_end, true);
    assert.ok(seq.ended);
    assertClose(join(parts), want);
  });

  test(`${model}: export, restore under a new id, both continue identically`, async () => {
    const c = client();
    const L = 8;
    const kAt = 5;
    const x = qkv(L);
    const want = await causalReference(c, model, x, config);
    const a = c.sequence(model, { id: `js-exp-${model}-${Date.now()}`, config });
    const parts = [(await a.step(tokens(x, 0, 3))).outputs.output];
    for (let t = 3; t < kAt; t++) parts.push((await a.step(tokens(x, t, t + 1))).outputs.output);
    const state = await a.export();
    assert.ok(state instanceof Uint8Array && state.length > 8);
    const b = await c.restoreSequence(model, attnd.newSequenceId(), state);
    assert.ok(b.started && !b.ended);
    assert.equal(b.length, kAt);
    const listed = Object.fromEntries((await c.listSequences(model)).map((s) => [String(s.id), s]));
    assert.equal(listed[String(a.id)].length, kAt);
    assert.equal(listed[String(b.id)].length, kAt);
    const pa = [...parts];
    for (let t = kAt; t < L; t++) {
      const ra = (await a.step(tokens(x, t, t + 1))).outputs.output;
      const rb = (await b.step(tokens(x, t, t + 1))).outputs.output;
      assert.deepEqual(Array.from(rb.data), Array.from(ra.data), `token ${t}: the restored sequence differs`);
      pa.push(ra);
    }
    assertClose(join(pa), want);
    await a.end();
    await b.end();
    const ids = new Set((await c.listSequences(model)).map((s) => String(s.id)));
    assert.ok(!ids.has(String(a.id)) && !ids.has(String(b.id)));
  });
}

test('a step after the end: 404 with the reason', async () => {
  const c = client();
  const x = qkv(3);
  const seq = c.sequence('full', { id: `js-ended-${Date.now()}` });
  await seq.step(tokens(x, 0, 2), { end: true });
  assert.ok(seq.ended);
  await assert.rejects(seq.step(tokens(x, 2, 3)), (e) => {
    assert.ok(e instanceof attnd.SequenceNotFoundError && e instanceof attnd.ModelNotFoundError);
    assert.equal(e.status, 404);
    assert.match(e.message, /sequence_end/);
    assert.ok(e.message.includes(String(seq.id)));
    return true;
  });
  const s2 = c.sequence('full');
  await s2.step(tokens(x, 0, 1));
  await s2.end();
  await assert.rejects(s2.step(tokens(x, 1, 2)), (e) => e instanceof attnd.SequenceNotFoundError && /delete/.test(e.message));
  await assert.rejects(c.exportSequence('full', 'never-started-here'), (e) => e instanceof attnd.SequenceNotFoundError && /never started/.test(e.message));
  await assert.rejects(c.deleteSequence('full', 'never-started-here'), attnd.SequenceNotFoundError);
});

test('cross sequence on full: the start carries the memory, then queries only', async () => {
  const c = client();
  const L = 6;
  const [q, k, v] = qkv(L, 7);
  const want = (await c.infer('full', { queries: q, keys: k, values: v })).outputs.output;
  const seq = c.sequence('full', { kind: 'cross' });
  const parts = [(await seq.step({ queries: cut(q, 0, 2), keys: k, values: v })).outputs.output];
  for (let t = 2; t < L; t++) parts.push((await seq.step({ queries: cut(q, t, t + 1) }, { end: t === L - 1 })).outputs.output);
  assertClose(join(parts), want);
});

test('ids: strings, numbers, BigInts; bad ones refused locally', async () => {
  const c = client();
  const x = qkv(2);
  for (const id of ['user-7.a:b~c', (1n << 63n) - 5n, 123456789]) {
    const seq = c.sequence('full', { id });
    const r = await seq.step(tokens(x, 0, 1));
    assert.equal(String(r.parameters.sequence_id), String(id));
    await seq.end();
    await assert.rejects(c.exportSequence('full', typeof id === 'string' ? id : BigInt(id)), attnd.SequenceNotFoundError);
  }
  for (const bad of ['', 'has space', 'x'.repeat(129), 0, -1, 1n << 64n, 2 ** 60, 1.5, true]) {
    assert.throws(() => c.sequence('full', { id: bad }), (e) => e instanceof TypeError || e instanceof RangeError, String(bad));
  }
  assert.throws(() => c.sequence('full', { kind: 'sideways' }), TypeError);
  await assert.rejects(c.deleteSequence('full', 'has space'), TypeError); // checked before any request
});

test('a start on a live id: ConflictError (409)', async () => {
  const c = client();
  const x = qkv(2);
  const a = c.sequence('full', { id: `js-dup-${Date.now()}` });
  await a.step(tokens(x, 0, 1));
  await assert.rejects(c.sequence('full', { id: a.id }).step(tokens(x, 0, 1)), (e) => {
    assert.ok(e instanceof attnd.ConflictError);
    assert.equal(e.status, 409);
    assert.match(e.message, /live/);
    return true;
  });
  await assert.rejects(c.restoreSequence('full', a.id, await a.export()), attnd.ConflictError);
  await a.end();
});

test('a stale copy refuses the step: ConflictError (409), nothing applied', async () => {
  // the client sends the length it counts (attnd_expect_length)
  const c = client();
  const x = qkv(4);
  const a = c.sequence('full', { id: `js-stale-${Date.now()}` });
  await a.step(tokens(x, 0, 2));
  const old = await a.export();
  await a.step(tokens(x, 2, 3));
  assert.equal(a.length, 3);
  await c.deleteSequence('full', a.id);
  await c.restoreSequence('full', a.id, old); // the server's copy: 2 tokens
  await assert.rejects(a.step(tokens(x, 3, 4)), (e) => {
    assert.ok(e instanceof attnd.ConflictError);
    assert.equal(e.status, 409);
    assert.match(e.message, /stale/);
    return true;
  });
  const list = await c.listSequences('full');
  assert.equal(list.find((s) => s.id === a.id).length, 2);
  await c.deleteSequence('full', a.id);
});

test('a model without sequences: 400 naming the types that have them', async () => {
  const c = client();
  assert.deepEqual((await c.metadata('exact_topk')).sequence_kinds, []);
  const x = qkv(2);
  await assert.rejects(c.sequence('exact_topk').step(tokens(x, 0, 2)), (e) => {
    assert.ok(e instanceof attnd.BadRequestError);
    assert.match(e.message, /types that have them/);
    assert.match(e.message, /full/);
    return true;
  });
  const seq = c.sequence('causal_linear', { config: { query_dimensions: E } });
  await seq.step(tokens(x, 0, 1));
  await assert.rejects(seq.step(tokens(x, 1, 2), { parameters: { query_dimensions: E } }), attnd.BadRequestError);
  await seq.end();
});

test('limits: 413 past --max-sequence-tokens, 503 with Retry-After past --max-sequences', async () => {
  const srv = await spawnAttnd(['--max-sequences', '1', '--max-sequence-tokens', '4', '--sequence-evict-after', '60']);
  try {
    const c = new attnd.Client(srv.url, { retries: 0 });
    const x = qkv(6);
    const a = c.sequence('full');
    await a.step(tokens(x, 0, 3));
    await assert.rejects(a.step(tokens(x, 3, 5)), (e) => {
      assert.ok(e instanceof attnd.PayloadTooLargeError);
      assert.equal(e.status, 413);
      assert.match(e.message, /max-sequence-tokens/);
      return true;
    });
    await assert.rejects(c.sequence('full').step(tokens(x, 0, 1)), (e) => {
      assert.ok(e instanceof attnd.ServiceUnavailableError);
      assert.equal(e.status, 503);
      assert.match(e.message, /max-sequences/);
      assert.ok(e.retryAfter !== null && e.retryAfter >= 0);
      return true;
    });
    await a.step(tokens(x, 3, 4), { end: true }); // the refused step left it as it was
    assert.equal(a.length, 4);
    const b = c.sequence('full'); // room again
    await b.step(tokens(x, 0, 1), { end: true });
  } finally {
    await srv.close();
  }
});

test('every request names the sequence in the Sequence-Id header', async () => {
  const sent = [];
  const c = client({
    fetch: (url, init) => {
      sent.push([init.method, init.headers['Sequence-Id']]);
      return globalThis.fetch(url, init);
    },
  });
  const x = qkv(2);
  const seq = c.sequence('full');
  await seq.step(tokens(x, 0, 1));
  const b = await c.restoreSequence('full', `js-hdr-${Date.now()}`, await seq.export());
  await b.step(tokens(x, 1, 2), { end: true });
  await seq.end();
  assert.deepEqual(sent, [['POST', String(seq.id)], ['GET', String(seq.id)], ['PUT', b.id], ['POST', b.id], ['DELETE', String(seq.id)]]);
});

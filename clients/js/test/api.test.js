// Health, metadata, index, authentication and typed errors against the live server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as attnd from '../index.js';
import { ADMIN_KEY, API_KEY, URL, client, goldenCases, loadCase, toTensor } from './helpers.js';

const q = [[[[1, 0]], [[0, 1]]]];

test('health', async () => {
  assert.deepEqual(await client().health(), { live: true, ready: true });
  assert.equal(await client().isReady(), true);
  assert.deepEqual(await new attnd.Client(URL).health(), { live: true, ready: true }, 'health needs no key');
});

test('server metadata', async () => {
  const md = await client().serverMetadata();
  assert.equal(md.name, 'attnd');
  assert.ok(md.extensions.includes('binary_tensor_data'));
  assert.ok(md.extensions.includes('model_repository'));
});

test('model metadata and readiness', async () => {
  const md = await client().metadata('g_full_causal');
  assert.equal(md.name, 'g_full_causal');
  assert.deepEqual(md.inputs.slice(0, 3).map((i) => i.name), ['queries', 'keys', 'values']);
  assert.deepEqual(md.outputs.map((o) => o.name), ['output', 'attention']); // the map is optional
  assert.deepEqual(md.outputs.map((o) => o.optional), [false, true]);
  assert.equal(await client().isReady('g_full_causal'), true);
  assert.equal(await client().isReady('no_such_model'), false);
  assert.equal((await client().metadata('full')).name, 'full');
});

test('the index lists every golden case as READY', async () => {
  const byName = Object.fromEntries((await client().models()).map((m) => [m.name, m]));
  for (const id of goldenCases()) assert.equal(byName[`g_${id}`]?.state, 'READY', id);
  for (const m of await client().models({ ready: true })) assert.equal(m.state, 'READY');
});

test('unknown model: ModelNotFoundError with the server message', async () => {
  await assert.rejects(client().metadata('no_such_model'), (e) => {
    assert.ok(e instanceof attnd.ModelNotFoundError && e instanceof attnd.HTTPError && e instanceof attnd.AttndError);
    assert.equal(e.status, 404);
    assert.match(e.message, /no_such_model/);
    return true;
  });
  await assert.rejects(client().infer('no_such_model', { x: [1] }), attnd.ModelNotFoundError);
});

test('bad request: BadRequestError with the server message', async () => {
  const c = loadCase('full_causal');
  const ins = Object.fromEntries(Object.entries(c.inputs).map(([n, e]) => [n, toTensor(e, n)]));
  ins.keys = [[[[1, 2, 3]]]];
  await assert.rejects(client().infer('g_full_causal', ins), (e) => {
    assert.ok(e instanceof attnd.BadRequestError);
    assert.equal(e.status, 400);
    assert.equal(JSON.parse(new TextDecoder().decode(e.body)).error, e.message);
    assert.ok(e.message.length > 0);
    return true;
  });
});

test('unknown config key names itself', async () => {
  await assert.rejects(client().attention('full', q, q, q, { no_such_key: 3 }), (e) => {
    assert.ok(e instanceof attnd.BadRequestError);
    assert.match(e.message, /no_such_key/);
    return true;
  });
});

test('keys: none or wrong is 401; the api key cannot use the repository', async () => {
  await assert.rejects(new attnd.Client(URL).metadata('full'), (e) => e instanceof attnd.UnauthorizedError && e.status === 401);
  await assert.rejects(new attnd.Client(URL, { apiKey: 'wrong' }).infer('full', { queries: [1] }), attnd.UnauthorizedError);
  const apiOnly = new attnd.Client(URL, API_KEY);
  await assert.rejects(apiOnly.models(), (e) => e instanceof attnd.UnauthorizedError || e instanceof attnd.ForbiddenError);
  await assert.rejects(apiOnly.unloadModel('g_full_causal'), (e) => e instanceof attnd.UnauthorizedError || e instanceof attnd.ForbiddenError);
  const admin = new attnd.Client(URL, { apiKey: ADMIN_KEY });
  assert.equal((await admin.metadata('full')).name, 'full');
  assert.ok(Array.isArray(await admin.models()));
});

test('request id is echoed, binary and JSON', async () => {
  for (const binary of [true, false]) {
    const res = await client().infer('full', { queries: q, keys: q, values: q }, { id: 'req-7', binary });
    assert.equal(res.id, 'req-7');
    assert.equal(res.modelName, 'full');
  }
});

test('README numbers: softmax attention with softmax_temp', async () => {
  const out = await client().attention('full', q, q, [[[[10]], [[20]]]], { softmax_temp: 1 });
  assert.deepEqual(out.shape, [1, 2, 1, 1]);
  assert.ok(Math.abs(out.data[0] - 12.6894142) < 1e-5, String(out.data[0]));
  assert.ok(Math.abs(out.data[1] - 17.3105858) < 1e-5, String(out.data[1]));
  // the same config as parameters.config (an object) gives the same bits
  const again = await client().attention('full', q, q, [[[[10]], [[20]]]], { config: { softmax_temp: 1 } });
  assert.deepEqual(again.data, out.data);
});

test('NaN and infinities travel over JSON and binary', async () => {
  // a fully masked row is NaN in the reference (and in attnd)
  const mask = [[false, false], [true, true]];
  for (const binary of [true, false]) {
    const out = await client().attention('full', q, q, q, { attnMask: mask, binary });
    assert.ok(Number.isNaN(out.data[0]) && Number.isNaN(out.data[1]), `${out.data}`);
    assert.ok(Number.isFinite(out.data[2]));
  }
});

test('unreachable server: ConnectError', async () => {
  await assert.rejects(new attnd.Client('http://127.0.0.1:9', { retries: 0 }).serverMetadata(), (e) => e instanceof attnd.ConnectError && e.status === null);
});

test('requested outputs', async () => {
  for (const binary of [true, false]) {
    const res = await client().infer('full', { queries: q, keys: q, values: q }, { outputs: ['output'], binary });
    assert.deepEqual(Object.keys(res.outputs), ['output']);
    await assert.rejects(client().infer('full', { queries: q, keys: q, values: q }, { outputs: ['nope'], binary }),
      (e) => e instanceof attnd.BadRequestError && /nope/.test(e.message));
  }
});

test('concurrent requests on one client are not mixed up', async () => {
  const c = client();
  const run = async (k) => Array.from((await c.attention('full', q, q, [[[[k]], [[2 * k]]]])).data);
  const want = [];
  for (let k = 0; k < 8; k++) want.push(await run(k));
  assert.equal(new Set(want.map(String)).size, 8);
  await Promise.all(want.map(async (w, k) => {
    for (let i = 0; i < 20; i++) assert.deepEqual(await run(k), w);
  }));
});

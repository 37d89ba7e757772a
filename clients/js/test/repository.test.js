// loadModel / unloadModel against the live server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as attnd from '../index.js';
import { bitsEqual, client, loadCase, toTensor } from './helpers.js';

function inputsOf(c) {
  return Object.fromEntries(Object.entries(c.inputs).map(([n, e]) => [n, toTensor(e, n)]));
}

for (const binary of [false, true]) {
  test(`load config + weights (${binary ? 'raw' : 'base64'}) then infer exactly`, async () => {
    const c = loadCase('aft_full');
    const name = `js_aft_${binary ? 'raw' : 'b64'}`;
    const weights = new Uint8Array(readFileSync(join(c.dir, 'model', 'weights.safetensors')));
    await client().loadModel(name, c.modelConfig, weights, { binary });
    assert.equal(await client().isReady(name), true);
    bitsEqual((await client().infer(name, inputsOf(c))).outputs.output, c.attnRun);
    assert.ok((await client().models()).some((m) => m.name === name));
  });
}

test('replace atomically; a failed load keeps the old version serving', async () => {
  const a = loadCase('aft_full');
  const b = loadCase('aft_full_square');
  await client().loadModel('js_swap', join(a.dir, 'model')); // a model folder (Node)
  bitsEqual((await client().infer('js_swap', inputsOf(a))).outputs.output, a.attnRun);
  await client().loadModel('js_swap', JSON.stringify(b.modelConfig), join(b.dir, 'model', 'weights.safetensors'));
  bitsEqual((await client().infer('js_swap', inputsOf(b))).outputs.output, b.attnRun);
  await assert.rejects(
    client().loadModel('js_swap', a.modelConfig, join(b.dir, 'model', 'weights.safetensors')),
    (e) => e instanceof attnd.BadRequestError && e.message.length > 0,
  );
  bitsEqual((await client().infer('js_swap', inputsOf(b))).outputs.output, b.attnRun);
});

test('bad config: BadRequestError naming the type', async () => {
  await assert.rejects(client().loadModel('js_bad', { type: 'no_such_mechanism', config: {} }),
    (e) => e instanceof attnd.BadRequestError && /no_such_mechanism/.test(e.message));
  assert.equal(await client().isReady('js_bad'), false);
});

test('parameter-free model from config only equals the built-in', async () => {
  await client().loadModel('js_local', { type: 'local', config: { local_context: 3 } });
  const x = [[[[0.1, 0]], [[0.2, -0.2]], [[0.3, -0.4]], [[0.4, -0.6]], [[0.5, -0.8]]]];
  const out = (await client().infer('js_local', { queries: x, keys: x, values: x })).outputs.output;
  assert.deepEqual(out.shape, [1, 5, 1, 2]);
  const same = await client().attention('local', x, x, x, { local_context: 3 });
  assert.deepEqual(same.data, out.data);
  const other = await client().attention('local', x, x, x, { local_context: 1 });
  assert.notDeepEqual(other.data, out.data);
});

test('unload, then reload from the repository folder', async () => {
  const c = loadCase('full_causal');
  await client().loadModel('js_tmp', c.modelConfig);
  await client().unloadModel('js_tmp');
  assert.equal(await client().isReady('js_tmp'), false);
  await assert.rejects(client().infer('js_tmp', inputsOf(c)), attnd.ModelNotFoundError);
  await client().loadModel('js_tmp');
  bitsEqual((await client().infer('js_tmp', inputsOf(c))).outputs.output, c.attnRun);
  await client().unloadModel('js_tmp');
});

test('unload of an unknown model: ModelNotFoundError', async () => {
  await assert.rejects(client().unloadModel('js_never_loaded'), attnd.ModelNotFoundError);
});

test('without Node globals (Buffer, process), as in a browser: load with base64 and infer', async () => {
  const { execFile } = await import('node:child_process');
  const c = loadCase('aft_full');
  const here = (f) => JSON.stringify(new URL(f, import.meta.url).href);
  const script = `
    const { loadCase, toTensor } = await import(${here('./helpers.js')});
    const fs = await import('node:fs');
    const [url, apiKey, adminKey] = [process.env.ATTND_URL, process.env.ATTND_API_KEY, process.env.ATTND_ADMIN_KEY];
    const c = loadCase('aft_full');
    const weights = new Uint8Array(fs.readFileSync(c.dir + '/model/weights.safetensors'));
    const inputs = Object.fromEntries(Object.entries(c.inputs).map(([n, e]) => [n, toTensor(e, n)]));
    const stdout = process.stdout;
    // Node's own fetch needs its globals: give them back only while it runs
    const saved = { Buffer: globalThis.Buffer, process: globalThis.process };
    const realFetch = globalThis.fetch;
    const hide = () => { delete globalThis.Buffer; delete globalThis.process; };
    const fetch = async (...args) => {
      Object.assign(globalThis, saved);
      try {
        const res = await realFetch(...args);
        const body = await res.arrayBuffer();
        const headers = [...res.headers];
        return { status: res.status, headers: { forEach: (f) => headers.forEach(([k, v]) => f(v, k)) }, arrayBuffer: async () => body };
      } finally {
        hide();
      }
    };
    hide();
    const { Client } = await import(${here('../index.js')});
    const client = new Client(url, { apiKey, adminKey, fetch });
    await client.loadModel('js_nobuffer', c.modelConfig, weights, { binary: false });
    const out = (await client.infer('js_nobuffer', inputs)).outputs.output;
    stdout.write(JSON.stringify({ buffer: typeof Buffer, process: typeof process, bytes: Array.from(out.bytes()) }));
  `;
  const stdout = await new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 60000 },
      (err, out, errOut) => (err ? reject(new Error(`child failed:\n${errOut}`)) : resolve(out)));
  });
  const res = JSON.parse(stdout);
  assert.equal(res.buffer, 'undefined');
  assert.equal(res.process, 'undefined');
  assert.deepEqual(new Uint8Array(res.bytes), c.attnRun.raw);
});

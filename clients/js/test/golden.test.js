// Numerics over HTTP: every golden case, as a repository model (and for
// parameter-free types as the built-in model with its config in the
// request), equals `attn run` bit for bit over binary and JSON, with Tensors,
// {data, shape} objects and nested arrays; and is within the case's tolerance
// of the reference output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../index.js';
import { GOLDEN, bitsEqual, builtinTypes, client, goldenCases, loadCase, toTensor, withinTolerance } from './helpers.js';

const CASES = goldenCases();

test('golden cases were prepared', () => {
  assert.ok(GOLDEN, 'ATTND_GOLDEN is not set: run clients/js/test.sh');
  assert.ok(CASES.length >= 10, `only ${CASES.length} cases`);
});

function inputsFor(c, mode) {
  const out = {};
  for (const [name, e] of Object.entries(c.inputs)) {
    const t = toTensor(e, name);
    if (mode.endsWith('tensor')) out[name] = t;
    else if (mode.endsWith('object')) out[name] = { data: t.data, shape: t.shape };
    else out[name] = t.toNested(); // datatypes from booleans and the well-known names
  }
  return out;
}

const MODES = ['binary-tensor', 'json-tensor', 'binary-object', 'json-nested'];

for (const id of CASES) {
  for (const mode of MODES) {
    test(`repository model ${id} (${mode})`, async () => {
      const c = loadCase(id);
      const res = await client().infer(`g_${id}`, inputsFor(c, mode), { binary: mode.startsWith('binary') });
      assert.deepEqual(Object.keys(res.outputs), ['output']);
      assert.equal(res.modelName, `g_${id}`);
      const out = res.outputs.output;
      assert.ok(out instanceof Tensor);
      assert.equal(out.datatype, 'FP32');
      assert.ok(out.data instanceof Float32Array);
      bitsEqual(out, c.attnRun);
      withinTolerance(out, c.expected, c.kase.rtol, c.kase.atol);
    });
  }
}

const BUILTIN = builtinTypes();

test('built-in types', async () => {
  for (const t of ['full', 'linear', 'local']) assert.ok(BUILTIN.has(t), t);
  for (const t of BUILTIN) assert.equal((await client().metadata(t)).name, t);
});

for (const id of CASES) {
  const c = loadCase(id);
  if (!BUILTIN.has(c.modelConfig.type)) continue;
  for (const binary of [true, false]) {
    test(`built-in ${c.modelConfig.type} with the config of ${id} (${binary ? 'binary' : 'json'})`, async () => {
      const t = (n) => toTensor(c.inputs[n], n);
      const config = c.modelConfig.config || {};
      let out;
      if (c.inputs.queries && c.inputs.keys && c.inputs.values) {
        const opts = { binary, config };
        if (c.inputs.attn_mask) opts.attnMask = t('attn_mask');
        if (c.inputs.query_lengths) opts.queryLengths = t('query_lengths');
        if (c.inputs.key_lengths) opts.keyLengths = t('key_lengths');
        out = await client().attention(c.modelConfig.type, t('queries'), t('keys'), t('values'), opts);
      } else {
        const inputs = Object.fromEntries(Object.keys(c.inputs).map((n) => [n, t(n)]));
        const res = await client().infer(c.modelConfig.type, inputs, { parameters: config, binary });
        assert.equal(res.modelName, c.modelConfig.type);
        out = res.outputs.output;
      }
      bitsEqual(out, c.attnRun);
    });
  }
}

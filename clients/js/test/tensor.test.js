// Tensor encoding and decoding without a server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, parseJSON } from '../index.js';

test('nested arrays: shape, datatype, round trip', () => {
  const t = new Tensor([[[1, 2, 3], [4, 5, 6]]]);
  assert.deepEqual(t.shape, [1, 2, 3]);
  assert.equal(t.datatype, 'FP32');
  assert.ok(t.data instanceof Float32Array);
  assert.deepEqual(t.toNested(), [[[1, 2, 3], [4, 5, 6]]]);
  assert.throws(() => new Tensor([[1, 2], [3]]), TypeError);
  assert.throws(() => new Tensor([[1, 2], 3]), TypeError);
  assert.throws(() => new Tensor(new Float32Array(3), { shape: [2, 2] }), TypeError);
});

test('datatype guesses', () => {
  assert.equal(new Tensor([[true, false]]).datatype, 'BOOL');
  assert.equal(new Tensor([1, 2], { name: 'key_lengths' }).datatype, 'INT64');
  assert.deepEqual([...new Tensor([[1, 0]], { name: 'attn_mask' }).data], [1, 0]);
  assert.equal(new Tensor(new Uint8Array([1, 0]), { name: 'attn_mask' }).datatype, 'BOOL');
  assert.equal(new Tensor(new Uint8Array([1, 0])).datatype, 'UINT8');
  assert.equal(new Tensor(new Int32Array([1])).datatype, 'INT32');
  assert.equal(new Tensor(new Float64Array([0.1])).datatype, 'FP32');
  assert.equal(new Tensor([3, 5], { datatype: 'int32' }).datatype, 'INT32');
  assert.throws(() => new Tensor([1], { datatype: 'FP8' }), TypeError);
});

test('bytes are little-endian', () => {
  assert.deepEqual([...new Tensor([1, -2]).bytes()], [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
  assert.deepEqual([...new Tensor([1, -1], { datatype: 'INT64' }).bytes()],
    [1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255]);
  const sub = new Float32Array([9, 1, 2]).subarray(1); // a view with an offset
  assert.deepEqual([...new Tensor(sub).bytes()], [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
});

test('parseJSON reads the non-finite tokens, not inside strings', () => {
  const doc = parseJSON('{"data":[NaN,-Infinity,Infinity,1.5],"s":"NaN \\" Infinity"}');
  const f = Float32Array.from(doc.data, Number);
  assert.ok(Number.isNaN(f[0]));
  assert.equal(f[1], -Infinity);
  assert.equal(f[2], Infinity);
  assert.equal(f[3], 1.5);
  assert.equal(doc.s, 'NaN " Infinity');
  assert.deepEqual(parseJSON('[1,2]'), [1, 2]);
  assert.throws(() => parseJSON('{bad'), SyntaxError);
});

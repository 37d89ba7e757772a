// The server's limits as the client sees them, on extra attnd processes: 503 +
// Retry-After when the queue is full (and retries getting through), 504 past
// the server's deadline, 413 past the body limit, and the client's own
// timeout. The heavy request is a full attention over 65536 positions of 16
// features on one thread (~275 GFLOP: seconds even with AVX-512, so that it
// is still running when the next requests arrive).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as attnd from '../index.js';
import { spawnAttnd } from './helpers.js';

function heavy(L = 65536, E = 16) {
  const data = new Float32Array(L * E);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 1000) / 1000;
  return { data, shape: [1, L, 1, E] };
}
const small = [[[[1, 0]], [[0, 1]]]];
let busy;
let strict;

before(async () => {
  busy = await spawnAttnd(['--threads', '1', '--threads-per-request', '1', '--max-queue', '1',
    '--retry-after', '1', '--max-body-bytes', '64M', '--timeout', '120']);
  strict = await spawnAttnd(['--threads', '1', '--threads-per-request', '1', '--timeout', '0.1',
    '--max-body-bytes', '16M']);
});

after(async () => {
  await busy?.close();
  await strict?.close();
});

test('a full queue is 503 with Retry-After; retries get through', async () => {
  const x = heavy();
  const running = [];
  for (let i = 0; i < 2; i++) { // one computing, one waiting: the queue (1) is full
    running.push(new attnd.Client(busy.url, { retries: 0, timeout: 120000 }).attention('full', x, x, x));
    await new Promise((r) => setTimeout(r, 300));
  }
  try {
    await assert.rejects(new attnd.Client(busy.url, { retries: 0 }).attention('full', small, small, small), (e) => {
      assert.ok(e instanceof attnd.ServiceUnavailableError);
      assert.equal(e.status, 503);
      assert.equal(e.retryAfter, 1);
      assert.ok(e.message.length > 0);
      return true;
    });
    const t0 = performance.now();
    const out = await new attnd.Client(busy.url, { retries: 20, maxBackoff: 5000, timeout: 120000 })
      .attention('full', small, small, small);
    assert.ok(performance.now() - t0 >= 900);
    assert.deepEqual(out.shape, [1, 2, 1, 2]);
  } finally {
    await Promise.all(running);
  }
});

test('the client timeout on a live request', async () => {
  const x = heavy();
  const t0 = performance.now();
  await assert.rejects(new attnd.Client(busy.url, { timeout: 200 }).attention('full', x, x, x), attnd.RequestTimeoutError);
  assert.ok(performance.now() - t0 < 5000);
  await new Promise((r) => setTimeout(r, 2000)); // the abandoned request finishes or is cut at close
});

test("past the server's deadline: 504", async () => {
  const x = heavy(8192, 128);
  await assert.rejects(new attnd.Client(strict.url, { retries: 0 }).attention('full', x, x, x), (e) => {
    assert.ok(e instanceof attnd.GatewayTimeoutError && e instanceof attnd.ServerError);
    assert.equal(e.status, 504);
    assert.ok(e.message.length > 0);
    return true;
  });
});

test('past the body limit: 413', async () => {
  const x = heavy(16384, 128); // 3 x 8 MB > 16M
  for (const binary of [true, false]) {
    await assert.rejects(new attnd.Client(strict.url).attention('full', x, x, x, { binary }), (e) => {
      assert.ok(e instanceof attnd.PayloadTooLargeError, `${e}`);
      assert.equal(e.status, 413);
      return true;
    });
  }
  const out = await new attnd.Client(strict.url).attention('full', small, small, small);
  assert.deepEqual(out.shape, [1, 2, 1, 2]);
});

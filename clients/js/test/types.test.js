// index.d.ts declares what index.js exports, and (when a TypeScript compiler
// is installed: Debian's node-typescript) type-checks a program that uses
// every method under --strict, resolving the package through its exports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as attnd from '../index.js';

const PKG = dirname(dirname(fileURLToPath(import.meta.url)));
const DTS = readFileSync(join(PKG, 'index.d.ts'), 'utf8');
const JS = readFileSync(join(PKG, 'index.js'), 'utf8');

test('every export of index.js is declared, and nothing more', () => {
  const declared = new Set([...DTS.matchAll(/^export (?:declare )?(?:class|function|const|let) (\w+)/gm)].map((m) => m[1]));
  if (/^export default/m.test(DTS)) declared.add('default');
  assert.deepEqual([...declared].sort(), Object.keys(attnd).sort());
});

test('every Client method is declared', () => {
  const body = DTS.slice(DTS.indexOf('export class Client'));
  const methods = Object.getOwnPropertyNames(attnd.Client.prototype).filter((m) => m !== 'constructor' && !m.startsWith('_'));
  assert.ok(methods.length >= 10, methods.join());
  for (const m of methods) assert.match(body, new RegExp(`\\n  ${m}\\(`), `Client.${m} is not in index.d.ts`);
});

test('index.js runs in browsers: no static imports, no Node globals outside guarded spots', () => {
  assert.doesNotMatch(JS, /^import /m);
  assert.doesNotMatch(JS, /import\(['"]/); // Node modules only through nodeModule()
  assert.doesNotMatch(JS, /require\(/);
  assert.doesNotMatch(JS, /\bprocess\./);
  // Buffer only as globalThis.Buffer, behind a typeof check
  assert.doesNotMatch(JS, /(?<![\w.])Buffer\s*[.(]/);
});

const USAGE = `
import Client, { Tensor, ModelNotFoundError, ServiceUnavailableError, type InferResult } from 'attnd-client';

async function main(): Promise<void> {
  const c = new Client('http://127.0.0.1:8000', { apiKey: 'k', timeout: 1000, retries: 2 });
  const h: { live: boolean; ready: boolean } = await c.health();
  const ready: boolean = await c.isReady('m');
  const md = await c.metadata('full');
  const names: string[] = md.inputs.map((i) => i.name);
  const ext: string[] = (await c.serverMetadata()).extensions;
  const idx = await c.models({ ready: true });
  const q = new Tensor(new Float32Array(8), { shape: [1, 2, 2, 2] });
  const out: Tensor<Float32Array> = await c.attention('full', q, q, { data: new Float32Array(8), shape: [1, 2, 2, 2] },
    { softmax_temp: 0.5, attnMask: [[true, false], [true, true]], binary: false });
  const f: Float32Array = out.data;
  const r: InferResult = await c.infer('m', { x: [[1, 2]], y: q }, { parameters: { a: 1 }, outputs: ['output'], id: 'x' });
  const o: Tensor | undefined = r.outputs.output;
  await c.loadModel('m', { type: 'local', config: { local_context: 3 } }, new Uint8Array(4), { binary: true });
  await c.unloadModel('m');
  try { await c.metadata('x'); } catch (e) {
    if (e instanceof ModelNotFoundError) { const s: number = e.status; }
    if (e instanceof ServiceUnavailableError) { const ra: number | null = e.retryAfter; }
  }
  void h; void ready; void names; void ext; void idx; void f; void o;
}
void main;
`;

function findTsc() {
  for (const cmd of ['tsc']) {
    const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return cmd;
  }
  return null;
}

test('TypeScript: a program using the declarations type-checks under --strict', (t) => {
  const tsc = findTsc();
  if (!tsc) {
    t.skip('no tsc (Debian package node-typescript)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'attnd-js-types-'));
  try {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(PKG, join(dir, 'node_modules', 'attnd-client'), 'dir');
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    writeFileSync(join(dir, 'usage.ts'), USAGE);
    writeFileSync(join(dir, 'bad.ts'), "import { Client } from 'attnd-client';\nconst n: number = new Client().url;\n");
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext',
        target: 'es2020', lib: ['es2020', 'dom'], types: [], skipLibCheck: false,
      },
      files: ['usage.ts'],
    }));
    execFileSync(tsc, ['-p', '.'], { cwd: dir, encoding: 'utf8' });
    // and the check can fail: a wrong type is reported
    writeFileSync(join(dir, 'tsconfig.json'), readFileSync(join(dir, 'tsconfig.json'), 'utf8').replace('usage.ts', 'bad.ts'));
    const bad = spawnSync(tsc, ['-p', '.'], { cwd: dir, encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stdout, /not assignable to type 'number'/);
  } catch (e) {
    throw new Error(`tsc: ${e.stdout || ''}${e.stderr || ''}${e.message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

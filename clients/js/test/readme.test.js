// The README's example runs as written, importing the package by its name
// (through package.json "exports"), against the live server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { URL } from './helpers.js';

const PKG = dirname(dirname(fileURLToPath(import.meta.url)));

export function readmeExample() {
  const text = readFileSync(join(PKG, 'README.md'), 'utf8');
  const section = text.split('## Example')[1];
  const m = /```js\n([\s\S]*?)```/.exec(section || '');
  if (!m) throw new Error('README has no js example');
  return m[1];
}

test('README example', async () => {
  assert.ok(URL, 'ATTND_URL is not set');
  const dir = mkdtempSync(join(tmpdir(), 'attnd-js-readme-'));
  try {
    const name = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8')).name;
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(PKG, join(dir, 'node_modules', name), 'dir');
    writeFileSync(join(dir, 'example.mjs'), readmeExample());
    const { stdout } = await new Promise((resolve, reject) => {
      execFile(process.execPath, ['example.mjs'], { cwd: dir, env: process.env, timeout: 60000 }, (err, out, errOut) => {
        if (err) reject(new Error(`example failed: ${err.message}\n${out}\n${errOut}`));
        else resolve({ stdout: out });
      });
    });
    const lines = stdout.trim().split('\n');
    assert.equal(lines[0], '{ live: true, ready: true }');
    assert.match(lines[1], /^\[ 12\.68941\d*, 17\.31058\d* \]$/);
    assert.match(lines[2], /^local3 \[ 1, 2, 1, 1 \]$/);
    assert.match(lines[3], /^404 .+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

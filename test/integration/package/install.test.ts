/**
 * `npm install -g .` on a fresh clone (no `npm ci` before it) gives a working
 * `ul2tp` and its man page under the chosen prefix. The `prepare` step
 * (scripts/prepare.mjs) installs the compiler and the dependencies itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../../support/proc.js';

const ok = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { cwd: ROOT }).status === 0;
const skip = !ok('npm', ['--version']) ? 'npm not found' : !ok('git', ['rev-parse', '--git-dir']) ? 'not a git checkout' : undefined;

test('npm install -g . on a fresh clone installs a working ul2tp and its man page', { skip, timeout: 600_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ul2tp-install-'));
  try {
    const clone = join(tmp, 'clone');
    const prefix = join(tmp, 'prefix');
    const c = spawnSync('git', ['clone', '-q', ROOT, clone], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
    assert.equal(existsSync(join(clone, 'node_modules')), false, 'a fresh clone has no node_modules');
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (/^npm_/i.test(k)) delete env[k]; // as from a shell, not from npm test
    const i = spawnSync('npm', ['install', '-g', '.', '--prefix', prefix, '--no-audit', '--no-fund'], { cwd: clone, encoding: 'utf8', env, timeout: 540_000 });
    assert.equal(i.status, 0, i.stdout + i.stderr);
    const h = spawnSync(join(prefix, 'bin', 'ul2tp'), ['--help'], { encoding: 'utf8' });
    assert.equal(h.status, 0, h.stderr);
    assert.match(h.stdout, /^Usage: ul2tp /);
    const v = spawnSync(join(prefix, 'bin', 'ul2tp'), ['--version'], { encoding: 'utf8' });
    assert.match(v.stdout, /^\d+\.\d+\.\d+/);
    assert.ok(existsSync(join(prefix, 'share', 'man', 'man8', 'ul2tp.8')), 'man page installed');
    assert.ok(existsSync(join(prefix, 'bin', 'ul2tp-ip')), 'ul2tp-ip installed');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

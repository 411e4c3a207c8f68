/**
 * README's first command is `npm ci && npm run demo`: without ping the demo
 * says what to install instead of failing half-way through.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netnsUnavailable } from '../../../support/netns.js';
import { ROOT } from '../../../support/proc.js';

test('npm run demo without ping: one line naming the package to install, exit 1, before anything is created', { skip: netnsUnavailable() || undefined }, () => {
  const bin = mkdtempSync(join(tmpdir(), 'ul2tp-noping-'));
  const tmp = mkdtempSync(join(tmpdir(), 'ul2tp-noping-tmp-'));
  try {
    symlinkSync('/bin/sh', join(bin, 'sh')); // a PATH with a shell and no ping
    const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'src', 'demo', 'demo.js')], { encoding: 'utf8', env: { ...process.env, PATH: bin, TMPDIR: tmp }, timeout: 30_000 });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /^ul2tp demo: .*ping is not installed: apt-get install iputils-ping/m);
    assert.doesNotMatch(r.stdout, /Two hosts/, 'stopped before creating anything');
    assert.deepEqual(readdirSync(tmp), [], 'no run directory left behind');
  } finally {
    rmSync(bin, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  }
});

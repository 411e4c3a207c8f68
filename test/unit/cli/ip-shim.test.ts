import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isL2tpObject, planShim } from '../../../src/cli/ip-plan.js';
import { findRealIp } from '../../../src/control/netinfo.js';
import { USAGE } from '../../../src/api/usage.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const SHIM = join(ROOT, 'bin/ul2tp-ip.js');
const REAL_IP = findRealIp(SHIM);

test('object word: l2, l2t, l2tp select l2tp; l is link', () => {
  for (const w of ['l2', 'l2t', 'l2tp']) assert.equal(isL2tpObject(w), true, w);
  for (const w of ['l', 'li', 'link', 'l2tpx', 'L2tp', '', 'l2p', 'addr']) assert.equal(isL2tpObject(w), false, w);
});

test('planShim: global options as ip/ip.c reads them', () => {
  const l2tp = (args: string[], json = false, pretty = false, oneline = false, stats = false) => ({ kind: 'l2tp', args, json, pretty, oneline, stats });
  assert.deepEqual(planShim(['l2tp', 'show', 'tunnel']), l2tp(['show', 'tunnel']));
  assert.deepEqual(planShim(['l2']), l2tp([]));
  assert.deepEqual(planShim(['-j', 'l2tp', 'show', 'session']), l2tp(['show', 'session'], true));
  assert.deepEqual(planShim(['-json', '-pretty', 'l2t', 'ls', 'tunnel']), l2tp(['ls', 'tunnel'], true, true));
  assert.deepEqual(planShim(['--json', '--pr', 'l2tp']), l2tp([], true, true));
  assert.deepEqual(planShim(['-o', 'l2tp', 'show', 'tunnel']), l2tp(['show', 'tunnel'], false, false, true));
  // -s/-stats: ul2tp's counters (iproute2 prints none for l2tp).
  for (const s of ['-s', '-stats', '-statistics', '--stat'])
    assert.deepEqual(planShim([s, '-j', 'l2tp', 'show', 'session']), l2tp(['show', 'session'], true, false, false, true), s);
  // Accepted and without effect on l2tp, like in iproute2.
  for (const opts of [['-d'], ['-4'], ['-6'], ['-h'], ['-r'], ['-t'], ['-ts'], ['-br'], ['-N'], ['-a'],
    ['-c'], ['-color=never'], ['-iec'], ['-f', 'inet6'], ['-family', 'inet'], ['-l', '3'], ['-rc', '1000'], ['-force'], ['-echo'], ['-0']])
    assert.deepEqual(planShim([...opts, 'l2tp', 'show', 'tunnel']), l2tp(['show', 'tunnel']), opts.join(' '));
  // `--` ends the options.
  assert.deepEqual(planShim(['-j', '--', 'l2tp', 'show']), l2tp(['show'], true));
  // l2tp options after the object word are the l2tp command's.
  assert.deepEqual(planShim(['l2tp', '-j', 'show']), l2tp(['-j', 'show']));
});

test('planShim: -n NETNS re-executes inside the namespace with the rest unchanged', () => {
  assert.deepEqual(planShim(['-n', 'siteA', 'l2tp', 'show', 'tunnel']), { kind: 'netns', netns: 'siteA', argv: ['l2tp', 'show', 'tunnel'] });
  assert.deepEqual(planShim(['-j', '-netns', 'b', '-p', 'l2tp', 'show', 'session']), {
    kind: 'netns',
    netns: 'b',
    argv: ['-j', '-p', 'l2tp', 'show', 'session'],
  });
  assert.deepEqual(planShim(['--netns', 'b', 'l2']), { kind: 'netns', netns: 'b', argv: ['l2'] });
  assert.deepEqual(planShim(['-n', 'a', '-j', '-n', 'b', 'l2tp', 'show']), { kind: 'netns', netns: 'b', argv: ['-j', 'l2tp', 'show'] });
});

test('planShim: -batch FILE is the shim\'s (l2tp lines to ul2tp, the rest to ip with the same options)', () => {
  const plan = (file: string, force: boolean, ipOptions: string[], json = false) => ({ kind: 'batch', file, force, ipOptions, json, pretty: false, oneline: false, stats: false });
  assert.deepEqual(planShim(['-b', 'cmds.txt']), plan('cmds.txt', false, []));
  assert.deepEqual(planShim(['-batch', 'x', 'l2tp']), plan('x', false, []), 'the rest of the line is ignored, as by ip');
  assert.deepEqual(planShim(['-force', '-4', '-j', '-batch', '-']), plan('-', true, ['-4', '-j'], true));
  assert.deepEqual(planShim(['-n', 'siteA', '-batch', 'f']), { kind: 'netns', netns: 'siteA', argv: ['-batch', 'f'] });
  assert.deepEqual(planShim(['-batch']), { kind: 'ip' }, 'no file: ip prints its error');
});

test('planShim: everything else goes to the real ip', () => {
  for (const argv of [[], ['link'], ['l', 'show'], ['-V'], ['-Version'], ['-help'],
    ['-n', 'x', 'link'], ['-x', 'l2tp', 'show'], ['-j', 'addr'], ['-n'], ['-j'], ['help'], ['netns', 'exec', 'a', 'ip', 'l2tp']])
    assert.deepEqual(planShim(argv), { kind: 'ip' }, argv.join(' '));
});

let tmp = '';
before(() => {
  tmp = mkdtempSync(join(tmpdir(), `ul2tp-shim-${process.pid}-`));
});
after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function run(file: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(file, args, { encoding: 'utf8', env: { ...process.env, UL2TP_RUNDIR: join(tmp, 'run'), ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('findRealIp never returns the shim, even when it is first in PATH as ip', (t) => {
  if (REAL_IP === null) return t.skip('no iproute2 ip on this machine');
  const bin = join(tmp, 'bin');
  spawnSync('mkdir', ['-p', bin]);
  symlinkSync(SHIM, join(bin, 'ip'));
  const saved = process.env.PATH;
  process.env.PATH = `${bin}:${saved ?? ''}`;
  try {
    const found = findRealIp(join(bin, 'ip'));
    assert.ok(found !== null);
    assert.notEqual(realpathSync(found), realpathSync(SHIM));
  } finally {
    process.env.PATH = saved;
  }
});

test('the shim passes ip -V and ip link show lo through unchanged', (t) => {
  if (REAL_IP === null) return t.skip('no iproute2 ip on this machine');
  assert.deepEqual(run(process.execPath, [SHIM, '-V']), run(REAL_IP, ['-V']));
  const lo = run(process.execPath, [SHIM, 'link', 'show', 'lo']);
  assert.equal(lo.status, 0);
  assert.deepEqual(lo, run(REAL_IP, ['link', 'show', 'lo']));
  // Exit status and stderr of a failing command pass through too.
  const missing = `nodev${process.pid}`;
  const bad = run(process.execPath, [SHIM, 'link', 'show', 'dev', missing]);
  assert.notEqual(bad.status, 0);
  assert.deepEqual(bad, run(REAL_IP, ['link', 'show', 'dev', missing]));
});

test('the shim handles ip l2tp itself, also when installed as ip first in PATH', (t) => {
  if (REAL_IP === null) return t.skip('no iproute2 ip on this machine');
  const never = { UL2TP_DAEMON_ENTRY: '/nonexistent/daemon.js' };
  assert.deepEqual(run(process.execPath, [SHIM, 'l2tp', 'help'], never), { status: 255, stdout: '', stderr: USAGE });
  assert.deepEqual(run(process.execPath, [SHIM, '-j', 'l2', 'frob'], never), {
    status: 255,
    stdout: '',
    stderr: 'Command "frob" is unknown, try "ip l2tp help".\n',
  });
  const bin = join(tmp, 'path-bin');
  spawnSync('mkdir', ['-p', bin]);
  if (!existsSync(join(bin, 'ip'))) symlinkSync(SHIM, join(bin, 'ip'));
  const env = { ...never, PATH: `${bin}:${process.env.PATH ?? ''}` };
  const viaPath = (args: string[]) => {
    const r = spawnSync('ip', args, { encoding: 'utf8', env: { ...process.env, UL2TP_RUNDIR: join(tmp, 'run'), ...env } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  assert.deepEqual(viaPath(['l2tp', 'add', 'tunnel', 'tunnel_id', 'abc']), {
    status: 255,
    stdout: '',
    stderr: 'Error: argument "abc" is wrong: invalid ID\n\n',
  });
  assert.deepEqual(viaPath(['link', 'show', 'lo']), run(REAL_IP, ['link', 'show', 'lo']));
});

test('ip -n NETNS l2tp runs inside that namespace (root only)', (t) => {
  if (REAL_IP === null) return t.skip('no iproute2 ip on this machine');
  if (process.getuid?.() !== 0) return t.skip('needs root for ip netns');
  const ns = `ul2tpcli${process.pid}`;
  const add = spawnSync(REAL_IP, ['netns', 'add', ns], { encoding: 'utf8' });
  if (add.status !== 0) return t.skip(`ip netns add failed: ${add.stderr.trim()}`);
  try {
    assert.deepEqual(run(process.execPath, [SHIM, '-n', ns, 'l2tp', 'help']), { status: 255, stdout: '', stderr: USAGE });
    // Non-l2tp commands keep -n and go to the real ip.
    const lo = run(process.execPath, [SHIM, '-n', ns, '-o', 'link', 'show', 'lo']);
    assert.equal(lo.status, 0);
    assert.match(lo.stdout, /^1: lo: <LOOPBACK> .* state DOWN /);
    // The l2tp command reaches a daemon of the namespace (started there, on demand).
    const mark = join(tmp, 'netns-daemon');
    const fake = join(ROOT, 'test/fixtures/cli/fake-daemon.mjs');
    const r = run(process.execPath, [SHIM, '-j', '-n', ns, 'l2tp', 'show', 'tunnel'], {
      UL2TP_DAEMON_ENTRY: fake,
      FAKE_DAEMON_MODE: 'serve',
      FAKE_DAEMON_MARK: mark,
    });
    assert.deepEqual(r, { status: 0, stdout: '[]\n', stderr: '' });
    assert.equal(existsSync(mark), true);
    // Its run directory is the namespace's, not ours.
    const inode = spawnSync(REAL_IP, ['netns', 'exec', ns, 'stat', '-L', '-c', '%i', '/proc/self/ns/net'], { encoding: 'utf8' }).stdout.trim();
    assert.equal(existsSync(join(tmp, 'run', inode)), true);
  } finally {
    spawnSync(REAL_IP, ['netns', 'del', ns]);
  }
});

/**
 * Who may talk to the daemon (issue 9): the control socket is mode 0600 and
 * owned by root, in a root-only 0700 directory; the state file and log are
 * 0600. A process running as another uid cannot connect, neither through the
 * directory nor, when the directory is opened up by hand, to the socket
 * itself; the CLI run as that user fails with a clear error and starts nothing.
 */
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IP } from '../../../support/ip.js';
import { Netns, netnsUnavailable } from '../../../support/netns.js';
import { CLI, ROOT, run } from '../../../support/proc.js';
import { control } from '../../../support/ul2tp.js';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
});
const skip = netnsUnavailable() || (SETPRIV ? '' : 'no setpriv');
if (skip) console.log(`# skipping control access: ${skip}`);
const NOBODY = 65534;

/** Run node as uid/gid 65534 in the namespace, with the namespace's UL2TP_RUNDIR. */
function asNobody(ns: Netns, args: string[]): { status: number; stdout: string; stderr: string } {
  return run(IP, ['netns', 'exec', ns.name, SETPRIV!, `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', process.execPath, ...args], 30_000, ns.env());
}

const CONNECT = `
const s = require('node:net').createConnection(process.argv[1]);
s.on('connect', () => { console.log('CONNECTED'); s.write('{"id":1,"op":"status","attrs":{}}\\n'); });
s.on('data', (d) => { console.log(String(d)); process.exit(0); });
s.on('error', (e) => { console.log(e.code); process.exit(3); });`;

/**
 * The CLI as the package installs it (bin/, dist/, package.json and the
 * runtime dependencies), copied to a world-readable temporary directory, so
 * that another uid can run it whatever the checkout's path and modes are.
 * Returns the copied bin/ul2tp.js (removed at exit).
 */
let copied = '';
function readableCopy(): string {
  if (copied !== '') return join(copied, 'bin', 'ul2tp.js');
  copied = mkdtempSync(join(tmpdir(), 'ul2tp-cli-copy-'));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const deps = Object.keys(pkg.dependencies ?? {}).map((d) => join('node_modules', d));
  for (const p of ['bin', 'package.json', join('dist', 'src'), join('dist', 'native-free'), ...deps]) {
    cpSync(join(ROOT, p), join(copied, p), { recursive: true });
  }
  run('chmod', ['-R', 'a+rX', copied]);
  process.on('exit', () => rmSync(copied, { recursive: true, force: true }));
  return join(copied, 'bin', 'ul2tp.js');
}

describe('control socket access', { skip: skip || undefined }, () => {
  let ns: Netns;
  let dir = '';
  before(() => {
    ns = new Netns('ul2p');
    ns.ok('show', 'tunnel'); // starts the daemon
    // Open up the test's own base directory so that only ul2tp's modes protect.
    chmodSync(ns.runDir, 0o755);
    dir = join(ns.runDir, readdirSync(ns.runDir).find((x) => /^\d+$/.test(x))!);
  });
  after(() => ns?.destroy());

  it('directory 0700, socket 0600, state file and log 0600, all owned by root', () => {
    const d = statSync(dir);
    assert.ok(d.isDirectory());
    assert.equal(d.mode & 0o777, 0o700);
    assert.equal(d.uid, 0);
    const s = statSync(join(dir, 'ctl.sock'));
    assert.ok(s.isSocket());
    assert.equal(s.mode & 0o777, 0o600);
    assert.equal(s.uid, 0);
    ns.ok('add', 'tunnel', 'tunnel_id', '9', 'peer_tunnel_id', '9', 'local', '127.0.0.1', 'remote', '127.0.0.1', 'udp_sport', '9001', 'udp_dport', '9002');
    ns.ok('del', 'tunnel', 'tunnel_id', '9');
    for (const f of ['daemon.log', 'state.json']) {
      const st = statSync(join(dir, f));
      assert.equal(st.mode & 0o077, 0, `${f} is private`);
      assert.equal(st.uid, 0);
    }
  });

  it('another uid cannot connect (directory), nor to the socket itself (socket mode)', () => {
    const sock = join(dir, 'ctl.sock');
    const r1 = asNobody(ns, ['-e', CONNECT, sock]);
    assert.equal(r1.status, 3, r1.stdout + r1.stderr);
    assert.match(r1.stdout, /EACCES/);
    // Even with the directory opened up by hand, the socket's own mode refuses.
    chmodSync(dir, 0o711);
    try {
      const r2 = asNobody(ns, ['-e', CONNECT, sock]);
      assert.equal(r2.status, 3, r2.stdout + r2.stderr);
      assert.match(r2.stdout, /EACCES/);
      assert.doesNotMatch(r2.stdout, /CONNECTED/);
    } finally {
      chmodSync(dir, 0o700);
    }
    // Root still can.
    assert.ok(control<{ pid: number }>(ns).pid > 0);
  });

  it('the CLI as another user: a clear error, non-zero, no second daemon', () => {
    const pid = control<{ pid: number }>(ns).pid;
    // Wherever the checkout lives (a 0700 mktemp directory included), uid 65534
    // runs a copy of the installed files from a directory it can read.
    const cli = readableCopy();
    const r = asNobody(ns, [cli, 'show', 'tunnel']);
    console.log(`as uid ${NOBODY}: ul2tp show tunnel → ${r.status}: ${r.stderr.trim()}`);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /^Error: .*(EACCES|permission denied)/im);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    const add = asNobody(ns, [cli, 'add', 'tunnel', 'tunnel_id', '1', 'peer_tunnel_id', '1', 'local', '127.0.0.1', 'remote', '127.0.0.1', 'udp_sport', '1', 'udp_dport', '2']);
    assert.notEqual(add.status, 0);
    assert.equal(control<{ pid: number; tunnels: number }>(ns).pid, pid);
    assert.equal(control<{ tunnels: number }>(ns).tunnels, 0, 'nothing was created');
  });

  it('the abstract lock: connections to it are closed at once (no fd build-up)', async () => {
    const pid = control<{ pid: number }>(ns).pid;
    const fds0 = readdirSync(`/proc/${pid}/fd`).length;
    const name = `ul2tp-daemon:${dir}`;
    // 200 connections from another uid, held open for a second.
    const r = asNobody(ns, [
      '-e',
      `const net = require('node:net'); let closed = 0; const socks = [];
       for (let i = 0; i < 200; i++) { const s = net.createConnection('\\0' + process.argv[1]); s.on('error', () => {}); s.on('close', () => closed++); socks.push(s); }
       setTimeout(() => { console.log(closed); process.exit(0); }, 1500);`,
      name,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(Number(r.stdout.trim()), 200, 'the daemon closed every connection to its lock');
    assert.ok(readdirSync(`/proc/${pid}/fd`).length - fds0 <= 1, 'no file descriptors piled up');
  });
});

describe('daemon lock squatted by another user', { skip: skip || undefined }, () => {
  it('a clear error naming the holder, then a normal start once it is gone', async () => {
    const ns = new Netns('ul2q');
    try {
      chmodSync(ns.runDir, 0o755);
      const inode = ns.exec('stat', ['-L', '-c', '%i', '/proc/self/ns/net']).stdout.trim();
      const name = `ul2tp-daemon:${ns.runDir}/${inode}`;
      const squatter = ns.spawn(SETPRIV!, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', process.execPath, '-e', `require('node:net').createServer().listen('\\0' + process.argv[1], () => console.log('BOUND'))`, name]);
      let out = '';
      squatter.stdout!.on('data', (d: string) => (out += d));
      const t = Date.now();
      while (!out.includes('BOUND') && Date.now() - t < 10_000) await new Promise((r) => setTimeout(r, 50));
      assert.ok(out.includes('BOUND'), 'squatter bound the name');
      const r = ns.ul2tp('show', 'tunnel');
      console.log(`squatted lock: ul2tp show tunnel → ${r.status}: ${r.stderr.trim()}`);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, new RegExp(`held by pid ${squatter.pid} \\(uid ${NOBODY}\\), which is not a ul2tp daemon`));
      const fg = ns.exec(process.execPath, [CLI, 'daemon'], 20_000);
      assert.equal(fg.status, 1);
      assert.match(fg.stderr, /is held by pid/);
      process.kill(squatter.pid!, 'SIGKILL');
      await new Promise((r) => squatter.once('exit', r));
      assert.equal(ns.ul2tp('show', 'tunnel').status, 0, 'starts once the squatter is gone');
    } finally {
      ns.destroy();
    }
  });
});

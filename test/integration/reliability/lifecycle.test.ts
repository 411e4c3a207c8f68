/**
 * A daemon's life against the outside world (issue 14):
 * - namespace identity: a run directory left by a deleted namespace whose
 *   inode the kernel hands to a new one is never restored, and is emptied;
 *   run directories of namespaces nobody holds are removed (both backends'
 *   identities: the netns cookie, and the loopback-alias marker used without koffi);
 * - `ip netns del`: the daemon notices nobody uses its namespace any more,
 *   removes its state and exits within 10 s;
 * - `ul2tp daemon status` / `ul2tp daemon stop`;
 * - a hostile run directory: planted symlinks are never followed, a base
 *   directory owned by another user or writable by others is refused;
 * - bounded waits: a stopped daemon makes the CLI fail within seconds;
 *   half-typed requests are closed, connections are capped.
 */
import assert from 'node:assert/strict';

import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { IP } from '../../../support/ip.js';
import { Netns, netnsUnavailable, uniq } from '../../../support/netns.js';
import { CLI, pidAlive, run, waitFor } from '../../../support/proc.js';
import { control } from '../../../support/ul2tp.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping lifecycle tests: ${skip}`);

const alive = pidAlive;

const noSock = (src: string): boolean => !src.endsWith('ctl.sock');

function inodeOf(ns: Netns): string {
  return ns.exec('stat', ['-L', '-c', '%i', '/proc/self/ns/net']).stdout.trim();
}

/** A namespace with one veth address and one tunnel (local 192.0.2.1). */
function withTunnel(ns: Netns, tid = 1): void {
  const v = uniq('vl');
  ns.ip('link', 'add', v, 'type', 'veth', 'peer', 'name', uniq('vp'));
  ns.ip('addr', 'add', '192.0.2.1/24', 'dev', v);
  ns.ip('link', 'set', v, 'up');
  ns.ok('add', 'tunnel', 'tunnel_id', String(tid), 'peer_tunnel_id', '2', 'encap', 'udp', 'local', '192.0.2.1', 'remote', '192.0.2.2', 'udp_sport', '5000', 'udp_dport', '6000');
}

/** The CLI in `ns` with extra environment (inherited by an auto-started daemon). */
function cliEnv(ns: Netns, env: Record<string, string>, ...args: string[]) {
  const e = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return run(IP, ['netns', 'exec', ns.name, 'env', ...e, process.execPath, CLI, ...args], 30_000, ns.env());
}

describe('namespace identity', { skip: skip || undefined }, () => {
  for (const mode of ['cookie', 'alias'] as const) {
    it(`a reused namespace inode never restores the dead namespace's state (${mode} identity); stale directories are removed`, async () => {
      const a = new Netns('ul2ia');
      const b = new Netns('ul2ib');
      try {
        const env: Record<string, string> = mode === 'alias' ? { UL2TP_NETNS_ID: 'alias' } : {};
        assert.equal(cliEnv(a, env, 'show', 'tunnel').status, 0);
        withTunnel(a, 3000);
        const pidA = control<{ pid: number }>(a).pid;
        process.kill(pidA, 'SIGKILL');
        assert.ok(await waitFor(() => !alive(pidA), 5000));
        const dirA = join(a.runDir, inodeOf(a));
        assert.match(readFileSync(join(dirA, 'state.json'), 'utf8'), /"tunnelId":3000/);
        // The kernel gives a deleted namespace's inode to a new one: B finds A's
        // directory under its own inode (same addresses, so a restore would succeed).
        const inoB = inodeOf(b);
        cpSync(dirA, join(b.runDir, inoB), { recursive: true, filter: noSock });
        // And a directory of a namespace that no longer exists at all.
        const deadIno = '4026599999';
        cpSync(dirA, join(b.runDir, deadIno), { recursive: true, filter: noSock });
        const v = uniq('vl');
        b.ip('link', 'add', v, 'type', 'veth', 'peer', 'name', uniq('vp'));
        b.ip('addr', 'add', '192.0.2.1/24', 'dev', v);
        b.ip('link', 'set', v, 'up');
        const r = cliEnv(b, env, 'show', 'tunnel');
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout, '', `B restored A's tunnel:\n${r.stdout}`);
        const dirB = join(b.runDir, inoB);
        assert.ok(!existsSync(join(dirB, 'state.json')) || !/3000/.test(readFileSync(join(dirB, 'state.json'), 'utf8')), "A's state is gone from B's directory");
        const logB = readFileSync(join(dirB, 'daemon.log'), 'utf8');
        assert.match(logB, /belonged to a deleted network namespace/);
        assert.ok(!logB.includes('tunnel 3000'), "A's log lines are gone too");
        assert.ok(!existsSync(join(b.runDir, deadIno)), 'the directory of a namespace nobody holds is removed');
        if (mode === 'alias') assert.match(b.ip('-d', 'link', 'show', 'lo'), /alias ul2tp-netns:[0-9a-f]{32}/);
        // B's own configuration survives its own restarts.
        withTunnel(b, 7);
        const pidB = control<{ pid: number }>(b).pid;
        process.kill(pidB, 'SIGKILL');
        assert.ok(await waitFor(() => !alive(pidB), 5000));
        assert.match(cliEnv(b, env, 'show', 'tunnel').stdout, /Tunnel 7,/);
      } finally {
        a.destroy();
        b.destroy();
      }
    });
  }
});

describe('daemon lifecycle', { skip: skip || undefined }, () => {
  it('ip netns del: the daemon removes its state and exits within 10 s', async () => {
    const ns = new Netns('ul2id');
    let pid = 0;
    try {
      withTunnel(ns);
      ns.ok('add', 'session', 'tunnel_id', '1', 'session_id', '1', 'peer_session_id', '2', 'name', uniq('ld'));
      pid = control<{ pid: number }>(ns).pid;
      const dir = join(ns.runDir, inodeOf(ns));
      assert.ok(existsSync(join(dir, 'state.json')));
      const t0 = Date.now();
      run(IP, ['netns', 'del', ns.name]);
      assert.ok(await waitFor(() => !alive(pid), 12_000, 100), 'the daemon is still running 12 s after ip netns del');
      const took = Date.now() - t0;
      console.log(`daemon exited ${took} ms after ip netns del`);
      assert.ok(took <= 10_000, `exited after ${took} ms`);
      assert.ok(!existsSync(dir), 'its run directory is removed');
    } finally {
      if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
      ns.destroy();
    }
  });

  it('a namespace still used by a process keeps its daemon', async () => {
    const ns = new Netns('ul2ik');
    try {
      ns.ok('show', 'tunnel');
      const pid = control<{ pid: number }>(ns).pid;
      const sleeper = ns.spawn('sleep', ['30']);
      await new Promise((r) => setTimeout(r, 300));
      run(IP, ['netns', 'del', ns.name]);
      await new Promise((r) => setTimeout(r, 7000));
      assert.ok(alive(pid), 'the daemon stayed while another process uses the namespace');
      process.kill(sleeper.pid!, 'SIGKILL');
      assert.ok(await waitFor(() => !alive(pid), 12_000, 100), 'then it exits');
    } finally {
      ns.destroy();
    }
  });

  it('ul2tp daemon status and ul2tp daemon stop (configuration kept)', async () => {
    const ns = new Netns('ul2is');
    try {
      let r = ns.ul2tp('daemon', 'status');
      assert.equal(r.status, 3, `not running: status 3 (${r.stdout}${r.stderr})`);
      assert.match(r.stdout, /not running/);
      assert.equal(readdirSync(ns.runDir).length, 0, 'status starts no daemon');
      withTunnel(ns);
      const pid = control<{ pid: number }>(ns).pid;
      r = ns.ul2tp('daemon', 'status');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`running, pid ${pid}`));
      assert.match(r.stdout, /backend (koffi|native-free)/);
      assert.match(r.stdout, /1 tunnel\(s\), 0 session\(s\)/);
      assert.match(r.stdout, /uptime \d+ s/);
      r = ns.ul2tp('-j', 'daemon', 'status');
      assert.equal(r.status, 0, r.stderr);
      const st = JSON.parse(r.stdout) as { running: boolean; pid: number; backend: string; tunnels: number; sessions: number; uptime_s: number };
      assert.deepEqual([st.running, st.pid, st.tunnels, st.sessions], [true, pid, 1, 0]);
      assert.match(st.backend, /^(koffi|native-free)$/);
      assert.equal(typeof st.uptime_s, 'number');
      r = ns.ul2tp('daemon', 'stop');
      assert.equal(r.status, 0, r.stderr);
      assert.ok(!alive(pid), 'stopped when the command returns');
      assert.match(r.stdout, new RegExp(`stopped.*${pid}`));
      r = ns.ul2tp('daemon', 'stop');
      assert.equal(r.status, 0, 'stopping a stopped daemon is not an error');
      assert.match(r.stdout, /not running/);
      r = ns.ul2tp('-j', 'daemon', 'status');
      assert.equal(r.status, 3);
      assert.equal((JSON.parse(r.stdout) as { running: boolean }).running, false);
      assert.match(ns.ok('show', 'tunnel'), /Tunnel 1,/, 'the next command restores the configuration');
    } finally {
      ns.destroy();
    }
  });
});

describe('hostile run directory', { skip: skip || undefined }, () => {
  it('planted symlinks for the state file temp name and the log are never followed', async () => {
    const ns = new Netns('ul2ih');
    const victimDir = mkdtempSync(join(tmpdir(), 'ul2tp-victim-'));
    try {
      ns.ok('show', 'tunnel');
      const dir = join(ns.runDir, inodeOf(ns));
      const pid = control<{ pid: number }>(ns).pid;
      process.kill(pid, 'SIGKILL');
      assert.ok(await waitFor(() => !alive(pid), 5000));
      const victim = join(victimDir, 'precious');
      writeFileSync(victim, 'precious\n', { mode: 0o600 });
      const logVictim = join(victimDir, 'log-precious');
      writeFileSync(logVictim, 'log precious\n', { mode: 0o600 });
      rmSync(join(dir, 'daemon.log'), { force: true });
      symlinkSync(victim, join(dir, 'state.json.tmp'));
      symlinkSync(logVictim, join(dir, 'daemon.log'));
      withTunnel(ns);
      assert.equal(readFileSync(victim, 'utf8'), 'precious\n', 'the state write did not go through the symlink');
      assert.equal(readFileSync(logVictim, 'utf8'), 'log precious\n', 'the log did not go through the symlink');
      assert.match(readFileSync(join(dir, 'state.json'), 'utf8'), /"tunnelId":1/);
      assert.ok(!statSync(join(dir, 'daemon.log'), { throwIfNoEntry: false })?.isSymbolicLink());
      // A state.json that is a symlink is refused, not read.
      const pid2 = control<{ pid: number }>(ns).pid;
      process.kill(pid2, 'SIGKILL');
      assert.ok(await waitFor(() => !alive(pid2), 5000));
      rmSync(join(dir, 'state.json'));
      symlinkSync(victim, join(dir, 'state.json'));
      const r = ns.ul2tp('show', 'tunnel');
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /state file/);
      assert.equal(readlinkSync(join(dir, 'state.json')), victim);
    } finally {
      ns.destroy();
      rmSync(victimDir, { recursive: true, force: true });
    }
  });

  for (const [what, prep] of [
    ['owned by another user', (d: string) => chownSync(d, 65534, 65534)],
    ['writable by others', (d: string) => chmodSync(d, 0o777)],
    ['a symlink', (d: string) => {
      const real = `${d}-real`;
      mkdirSync(real, { mode: 0o700 });
      rmSync(d, { recursive: true });
      symlinkSync(real, d);
    }],
  ] as const) {
    it(`a run directory ${what}: the daemon refuses with a clear error`, () => {
      const ns = new Netns('ul2ir');
      const base = join(ns.runDir, 'base');
      try {
        mkdirSync(base, { mode: 0o700 });
        prep(base);
        const r = run(IP, ['netns', 'exec', ns.name, process.execPath, CLI, 'daemon'], 20_000, { ...process.env, UL2TP_RUNDIR: base });
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /run directory .* refusing to use it/);
        const c = run(IP, ['netns', 'exec', ns.name, process.execPath, CLI, 'show', 'tunnel'], 20_000, { ...process.env, UL2TP_RUNDIR: base });
        assert.notEqual(c.status, 0);
        assert.match(c.stderr, /refusing to use it|cannot start ul2tp daemon/);
      } finally {
        rmSync(`${base}-real`, { recursive: true, force: true });
        ns.destroy();
      }
    });
  }
});

describe('bounded waits', { skip: skip || undefined }, () => {
  it('a stopped daemon: the CLI fails within seconds with a clear error', () => {
    const ns = new Netns('ul2iw');
    let pid = 0;
    try {
      ns.ok('show', 'tunnel');
      pid = control<{ pid: number }>(ns).pid;
      process.kill(pid, 'SIGSTOP');
      const t0 = Date.now();
      const r = ns.exec(process.execPath, [CLI, 'show', 'tunnel'], 30_000);
      const took = Date.now() - t0;
      console.log(`CLI gave up on a stopped daemon after ${took} ms`);
      assert.notEqual(r.status, 0);
      assert.ok(r.status !== null, 'the CLI exited by itself');
      assert.match(r.stderr, /does not respond/);
      assert.ok(took < 10_000, `took ${took} ms`);
      process.kill(pid, 'SIGCONT');
      assert.equal(ns.ul2tp('show', 'tunnel').status, 0, 'a busy-but-alive daemon is still served');
    } finally {
      if (pid) process.kill(pid, 'SIGCONT');
      ns.destroy();
    }
  });

  it('half-typed requests are closed, and connections are capped', async () => {
    const ns = new Netns('ul2ic');
    try {
      ns.ok('show', 'tunnel');
      const pid = control<{ pid: number }>(ns).pid;
      const fds = () => readdirSync(`/proc/${pid}/fd`).length;
      const base = fds();
      const sock = join(ns.runDir, inodeOf(ns), 'ctl.sock');
      const script = `
        const net = require('node:net');
        const socks = [];
        let closed = 0;
        for (let i = 0; i < 400; i++) {
          const s = net.createConnection(process.argv[1]);
          s.on('connect', () => s.write('{"id":1,"op":"sta'));
          s.on('error', () => {});
          s.on('close', () => closed++);
          socks.push(s);
        }
        setInterval(() => console.log('closed ' + closed), 1000);
        setTimeout(() => process.exit(0), 16000);`;
      const c = ns.spawn(process.execPath, ['-e', script, sock]);
      let out = '';
      c.stdout!.on('data', (d: string) => (out += d));
      await new Promise((r) => setTimeout(r, 3000));
      const held = fds() - base;
      console.log(`daemon fds: ${base} before, +${held} with 400 half-typed connections`);
      assert.ok(held <= 256 + 8, `the daemon holds at most 256 connections (+${held})`);
      assert.ok(await waitFor(() => fds() <= base + 2, 15_000, 200), `half-typed connections closed within 15 s (${fds()} fds, ${base} before)`);
      assert.equal(ns.ul2tp('show', 'tunnel').status, 0);
    } finally {
      ns.destroy();
    }
  });
});



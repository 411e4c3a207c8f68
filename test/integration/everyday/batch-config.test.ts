/**
 * Batch mode and declarative configuration, on real namespaces:
 *   - `ul2tp -batch FILE`: a good file; a failing line stops the batch
 *     (exit 1, "Command failed FILE:LINE", later lines not run) unless
 *     -force; a line iproute2 rejects while parsing ends the batch with its
 *     status; stdin (`-`);
 *   - the ip shim's `ip -batch FILE` mixing l2tp lines and link/address lines;
 *   - `ul2tp daemon --config FILE`: applied at start, `ul2tp daemon reload`
 *     and SIGHUP converge on an edited file while a ping runs across the
 *     reload (the kept session's interface, counters and pings untouched);
 *     `ul2tp save` round-trips; a reboot-like restart (daemon stopped, run
 *     directory and interfaces gone) comes back from the saved file alone;
 *   - `ul2tp -j stats` is NDJSON; daemon.log lines carry timestamps.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { IP } from '../../../support/ip.js';
import { netnsUnavailable, ping, underlay, type Netns, type Underlay } from '../../../support/netns.js';
import { CLI, ROOT, run, waitFor } from '../../../support/proc.js';
import { sessionCounters } from '../../../support/ul2tp.js';

const SHIM = join(ROOT, 'bin', 'ul2tp-ip.js');
const skip = netnsUnavailable();
if (skip) console.log(`# skipping batch/config tests: ${skip}`);

interface Side {
  tid: number;
  ptid: number;
  local: string;
  remote: string;
  sport: number;
  dport: number;
  addr: string;
}

function tunnelLine(s: Side): string {
  return `l2tp add tunnel tunnel_id ${s.tid} peer_tunnel_id ${s.ptid} encap udp local ${s.local} remote ${s.remote} udp_sport ${s.sport} udp_dport ${s.dport}`;
}

interface LinkRow {
  ifname: string;
  ifindex: number;
  mtu: number;
  flags: string[];
  addr_info: Array<{ family: string; local: string; prefixlen: number; scope: string }>;
}

function links(ns: Netns): Map<string, LinkRow> {
  return new Map((JSON.parse(ns.ip('-j', 'address', 'show')) as LinkRow[]).map((l) => [l.ifname, l]));
}

function v4(l: LinkRow | undefined): string[] {
  return (l?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
}

/** `ul2tp daemon --config FILE` in the foreground; stderr collected. */
function startDaemon(ns: Netns, config: string): { proc: ChildProcess; log: () => string } {
  const proc = ns.spawn(process.execPath, [CLI, 'daemon', '--config', config]);
  let err = '';
  proc.stderr!.on('data', (s: string) => (err += s));
  return { proc, log: () => err };
}

/** Stops the background daemon a CLI command started in `ns` (by its PID), if any. */
async function stopBackground(ns: Netns): Promise<void> {
  const pid = ns.daemonPid();
  if (pid === undefined) return;
  process.kill(pid, 'SIGTERM');
  assert.ok(await waitFor(() => ns.daemonPid() === undefined, 15_000), 'background daemon stopped');
}

async function stopDaemon(d: { proc: ChildProcess }): Promise<void> {
  if (d.proc.exitCode !== null) return;
  d.proc.kill('SIGTERM');
  await once(d.proc, 'exit');
}

describe('batch mode and --config', { skip: skip || undefined }, () => {
  let u: Underlay;
  let dir: string;
  before(() => {
    u = underlay();
    dir = mkdtempSync(join(tmpdir(), `ul2tp-batch-${process.pid}-`));
  });
  after(() => {
    u?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ul2tp -batch: runs a file over one daemon; a failing line stops it unless -force; parse errors end it with their status', () => {
    const ns = u.a;
    const good = join(dir, 'good.batch');
    writeFileSync(
      good,
      [
        '# a comment line, then a blank one',
        '',
        `l2tp add tunnel tunnel_id 71 peer_tunnel_id 72 local ${u.a4} remote ${u.b4} udp_sport 7100 udp_dport 7200`,
        'add session tunnel_id 71 session_id 1 \\',
        '    peer_session_id 1 name "bt%d"   # continued line, quoted name',
        "add session tunnel_id 71 session_id 2 peer_session_id 2 name 'bt%d'",
        'show session tunnel_id 71',
      ].join('\n') + '\n',
    );
    const r = ns.ul2tp('-batch', good);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /Session 1 in tunnel 71\n.*\n {2}interface name: bt0\n/);
    assert.match(r.stdout, /Session 2 in tunnel 71\n.*\n {2}interface name: bt1\n/);

    // A failing line: its error, then "Command failed FILE:LINE"; the rest is not run.
    const bad = join(dir, 'bad.batch');
    writeFileSync(
      bad,
      [
        'add session tunnel_id 71 session_id 3 peer_session_id 3 name bt3',
        'add session tunnel_id 71 session_id 1 peer_session_id 1',
        'add session tunnel_id 71 session_id 4 peer_session_id 4 name bt4',
        'del session tunnel_id 71 session_id 99',
        'add session tunnel_id 71 session_id 5 peer_session_id 5 name bt5',
      ].join('\n') + '\n',
    );
    const b = ns.ul2tp('-batch', bad);
    assert.equal(b.status, 1);
    assert.equal(b.stderr, `RTNETLINK answers: File exists\nCommand failed ${bad}:2\n`);
    const after1 = links(ns);
    assert.ok(after1.has('bt3') && !after1.has('bt4'), 'lines before the failure ran, lines after did not');

    // -force: every line runs, each failure reported; the status is still 1.
    const f = ns.ul2tp('-force', '-batch', bad);
    assert.equal(f.status, 1);
    assert.equal(
      f.stderr,
      `RTNETLINK answers: File exists\nCommand failed ${bad}:1\n` +
        `RTNETLINK answers: File exists\nCommand failed ${bad}:2\n` +
        `RTNETLINK answers: No such device\nCommand failed ${bad}:4\n`,
    );
    const after2 = links(ns);
    assert.ok(after2.has('bt4') && after2.has('bt5'));

    // iproute2 exits while parsing: the batch ends with that status, without "Command failed".
    const parse = join(dir, 'parse.batch');
    writeFileSync(parse, 'del session tunnel_id 71 session_id 5\nadd session tunnel_id abc\ndel session tunnel_id 71 session_id 4\n');
    const p = ns.ul2tp('-force', '-batch', parse);
    assert.equal(p.status, 255);
    assert.equal(p.stderr, 'Error: argument "abc" is wrong: invalid ID\n\n');
    const after3 = links(ns);
    assert.ok(!after3.has('bt5') && after3.has('bt4'), 'the line before ran, the one after did not');

    // stdin, and the batch deletes (grouped into one request).
    const s = ns.exec(process.execPath, [CLI, '-batch', '-'], 30_000);
    assert.equal(s.status, 0); // nothing on stdin: nothing to do
    const delAll = ns.exec('/bin/sh', ['-c', `printf 'del session tunnel_id 71 session_id %s\\n' 1 2 3 4 | ${process.execPath} ${CLI} -batch -`]);
    assert.equal(delAll.status, 0, delAll.stderr);
    const after4 = links(ns);
    for (const n of ['bt0', 'bt1', 'bt3', 'bt4']) assert.ok(!after4.has(n), `${n} deleted`);
    assert.equal(ns.ok('show', 'session', 'tunnel_id', '71'), '');
    ns.ok('del', 'tunnel', 'tunnel_id', '71');
  });

  it('ip -batch through the shim: l2tp lines to ul2tp, link/address lines to the real ip, in order', () => {
    const ns = u.b;
    const f = join(dir, 'mixed.batch');
    writeFileSync(
      f,
      [
        `l2tp add tunnel tunnel_id 81 peer_tunnel_id 82 local ${u.b4} remote ${u.a4} udp_sport 8100 udp_dport 8200`,
        'l2tp add session tunnel_id 81 session_id 1 peer_session_id 1 name mx0',
        'link set mx0 up mtu 1400',
        'addr add 10.81.0.2/24 dev mx0',
        'link set nosuchdev-81 up',
        'l2tp show session',
      ].join('\n') + '\n',
    );
    const r = ns.exec(process.execPath, [SHIM, '-batch', f], 60_000);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `Cannot find device "nosuchdev-81"\nCommand failed ${f}:5\n`);
    assert.equal(r.stdout, '', 'the show line after the failure did not run');
    const l = links(ns).get('mx0');
    assert.ok(l, 'the session interface exists');
    assert.ok(l.flags.includes('UP'));
    assert.equal(l.mtu, 1400);
    assert.deepEqual(v4(l), ['10.81.0.2/24']);
    ns.ok('del', 'tunnel', 'tunnel_id', '81');
  });

  it('--config: applied at start; reload/SIGHUP converge with a ping running across; save round-trips; a reboot restores from the file', async () => {
    const A: Side = { tid: 91, ptid: 92, local: u.a4, remote: u.b4, sport: 9100, dport: 9200, addr: '10.91.0.1/24' };
    const B: Side = { tid: 92, ptid: 91, local: u.b4, remote: u.a4, sport: 9200, dport: 9100, addr: '10.91.0.2/24' };
    const conf = (s: Side, extra: string[] = []): string =>
      [
        '# ul2tp configuration (test)',
        tunnelLine(s),
        `l2tp add session name cf0 tunnel_id ${s.tid} session_id 1 peer_session_id 1 seq both`,
        ...extra,
        'link set dev cf0 mtu 1400 up',
        `address add ${s.addr} dev cf0`,
      ].join('\n') + '\n';
    const confA = join(dir, 'a.conf');
    const confB = join(dir, 'b.conf');
    writeFileSync(confA, conf(A));
    writeFileSync(confB, conf(B));
    await stopBackground(u.a);
    await stopBackground(u.b);
    const da = startDaemon(u.a, confA);
    const db = startDaemon(u.b, confB);
    try {
      assert.ok(await waitFor(() => da.log().includes('listening on') && db.log().includes('listening on'), 20_000), `${da.log()} ${db.log()}`);
      assert.match(da.log(), /config: 2 added, 0 removed, 0 unchanged/);
      assert.ok(await waitFor(() => ping(u.a, '10.91.0.2', 1) === 1, 15_000), 'the configured tunnel carries pings');
      const before = links(u.a).get('cf0')!;
      assert.equal(before.mtu, 1400);

      // A ping runs across both reloads: 0.05 s apart, for about 4 s.
      const pinger = u.a.spawn('ping', ['-c', '80', '-i', '0.05', '-w', '20', '10.91.0.2']);
      let pingOut = '';
      pinger.stdout!.on('data', (s: string) => (pingOut += s));
      await waitFor(() => /icmp_seq=5 /.test(pingOut), 10_000);
      const rxBefore = sessionCounters(u.a, 91, 1).rx_packets;

      // Edit: a second session (with its own interface settings); reload adds it, keeps cf0.
      writeFileSync(confA, conf(A, [`l2tp add session name cf1 tunnel_id 91 session_id 2 peer_session_id 2`, 'link set dev cf1 mtu 1300 up']));
      const r1 = u.a.ul2tp('daemon', 'reload');
      assert.equal(r1.status, 0, r1.stderr);
      assert.equal(r1.stdout, '1 added, 0 removed, 2 unchanged\n');
      const l1 = links(u.a);
      assert.equal(l1.get('cf1')?.mtu, 1300);
      assert.ok(l1.get('cf1')?.flags.includes('UP'));

      // Back to the original file, by SIGHUP: cf1 goes, cf0 stays.
      writeFileSync(confA, conf(A));
      assert.equal(u.a.daemonPid(), da.proc.pid);
      process.kill(da.proc.pid!, 'SIGHUP');
      assert.ok(await waitFor(() => /SIGHUP: config: 0 added, 1 removed, 2 unchanged/.test(da.log()), 10_000), da.log());
      assert.ok(!links(u.a).has('cf1'), 'the session the file no longer names is gone');

      await once(pinger, 'exit');
      const m = /(\d+) packets transmitted, (\d+) received/.exec(pingOut);
      assert.ok(m, pingOut);
      assert.equal(m[2], m[1], `no ping lost across the reloads: ${m[0]}`);
      const after = links(u.a).get('cf0')!;
      assert.equal(after.ifindex, before.ifindex, 'the kept session interface was never re-created');
      assert.ok(sessionCounters(u.a, 91, 1).rx_packets > rxBefore, 'its counters went on, not reset');

      // A reload of a file that does not parse changes nothing (exit 1, the reason on stderr).
      writeFileSync(confA, conf(A, ['l2tp add session tunnel_id 91 session_id zz']));
      const bad = u.a.ul2tp('daemon', 'reload');
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /a\.conf:4: Error: argument "zz" is wrong: invalid ID/);
      assert.ok(links(u.a).has('cf0'));

      // save prints the running configuration as such a file.
      const saved = u.a.ok('save');
      assert.match(saved, new RegExp(`^${tunnelLine(A)}$`, 'm'));
      assert.match(saved, /^l2tp add session name cf0 tunnel_id 91 session_id 1 peer_session_id 1 seq both$/m);
      assert.match(saved, /^link set dev cf0 mtu 1400 up$/m);
      assert.match(saved, /^address add 10\.91\.0\.1\/24 dev cf0$/m);
      const savedFile = join(dir, 'saved.conf');
      writeFileSync(savedFile, saved);

      // Reboot-like, both ends: stop, lose the run directories and the interfaces, start from the saved files.
      const savedB = join(dir, 'saved-b.conf');
      writeFileSync(savedB, u.b.ok('save'));
      await stopDaemon(da);
      await stopDaemon(db);
      for (const ns of [u.a, u.b]) {
        rmSync(ns.runDir, { recursive: true, force: true });
        ns.ip('link', 'del', 'cf0');
        assert.ok(!links(ns).has('cf0'));
      }
      const da2 = startDaemon(u.a, savedFile);
      const db2 = startDaemon(u.b, savedB);
      try {
        assert.ok(await waitFor(() => da2.log().includes('listening on') && db2.log().includes('listening on'), 20_000), da2.log() + db2.log());
        assert.match(da2.log(), /config: 2 added, 0 removed, 0 unchanged/);
        const l = links(u.a).get('cf0');
        assert.ok(l, 'same interface name');
        assert.equal(l.mtu, 1400, 'same MTU');
        assert.ok(l.flags.includes('UP'));
        assert.deepEqual(v4(l), ['10.91.0.1/24'], 'same address');
        assert.equal(u.a.ok('save').split('\n').slice(2).join('\n'), saved.split('\n').slice(2).join('\n'), 'same configuration');
        assert.ok(await waitFor(() => ping(u.a, '10.91.0.2', 1) === 1, 15_000), 'traffic flows again');
      } finally {
        await stopDaemon(da2);
        await stopDaemon(db2);
      }
    } finally {
      await stopDaemon(da);
      await stopDaemon(db);
    }
  });

  it('-j stats prints one JSON object per interval; daemon.log lines carry timestamps and rotate', async () => {
    const ns = u.b;
    await stopBackground(ns);
    rmSync(ns.runDir, { recursive: true, force: true });
    // The first command starts the background daemon, here with a tiny log size limit.
    const first = run(IP, ['netns', 'exec', ns.name, process.execPath, CLI, 'show', 'tunnel'], 30_000, { ...ns.env(), UL2TP_LOG_MAX_BYTES: '300' });
    assert.equal(first.status, 0, first.stderr);
    ns.ok('add', 'tunnel', 'tunnel_id', '61', 'peer_tunnel_id', '62', 'local', u.b4, 'remote', u.a4, 'udp_sport', '6100', 'udp_dport', '6200');
    ns.ok('add', 'session', 'tunnel_id', '61', 'session_id', '1', 'peer_session_id', '1', 'name', 'js0');
    const r = ns.ul2tp('-j', 'stats', '-i', '0.2', '-c', '2');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2);
    for (const l of lines) {
      const o = JSON.parse(l) as { time: string; interval: number; sessions: Array<{ tunnel_id: number; session_id: number; ifname: string; rx_pps: number; drops: Record<string, number> }> };
      assert.ok(!Number.isNaN(Date.parse(o.time)));
      assert.equal(o.interval, 0.2);
      const s = o.sessions.find((x) => x.tunnel_id === 61);
      assert.ok(s);
      assert.equal(s.ifname, 'js0');
      assert.equal(typeof s.rx_pps, 'number');
      assert.equal(s.drops.rx_errors, 0);
    }
    ns.ok('del', 'tunnel', 'tunnel_id', '61');
    // The background daemon logs to daemon.log with timestamps; past 300 bytes the log moves to daemon.log.1.
    const pid = ns.daemonPid()!;
    const [sub] = readdirSync(ns.runDir); // <run dir>/<netns inode>/
    const logFile = join(ns.runDir, sub, 'daemon.log');
    const hups = (): number => [logFile, `${logFile}.1`].map((f) => (existsSync(f) ? readFileSync(f, 'utf8').split('SIGHUP').length - 1 : 0)).reduce((a, b) => a + b);
    // Each SIGHUP logs "SIGHUP: no --config, nothing to reload"; one at a time (pending signals merge).
    for (let i = 0; i < 20 && !existsSync(`${logFile}.1`); i++) {
      const before = hups();
      process.kill(pid, 'SIGHUP');
      assert.ok(await waitFor(() => hups() > before || existsSync(`${logFile}.1`), 5000), 'the daemon logged the SIGHUP');
    }
    assert.ok(existsSync(`${logFile}.1`), 'rotated');
    const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ul2tp\[\d+\]: /;
    const old = readFileSync(`${logFile}.1`, 'utf8');
    for (const text of [old, readFileSync(logFile, 'utf8')]) {
      assert.ok(text.length < 300 + 200, 'each file stays near the limit');
      for (const line of text.split('\n').filter(Boolean)) assert.match(line, stamp);
    }
  });
});

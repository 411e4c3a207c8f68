/**
 * Crash-consistent interfaces (issue 14): a daemon killed with kill -9 at a
 * random moment of a burst of pipelined session creates and deletes; the next
 * start ends with exactly the interfaces its configuration names: no orphaned
 * session TAP (found by ul2tp's mark and removed), no missing one, and a
 * user's own TAP in the same namespace untouched. Repeated, on both backends.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { IP } from '../../../support/ip.js';
import { Netns, netnsUnavailable, uniq } from '../../../support/netns.js';
import { CLI, pidAlive, run, waitFor } from '../../../support/proc.js';
import { control } from '../../../support/ul2tp.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping crash/interface tests: ${skip}`);

const alive = pidAlive;

const BURST = `
const net = require('node:net');
const [path, first, n] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const s = net.createConnection(path);
// Chunks of pipelined requests: each chunk is committed (state written) before its replies.
const chunks = [];
let id = 1;
let lines = '';
for (let i = 0; i < n; i++) {
  const sid = first + i;
  lines += JSON.stringify({ id: id++, op: 'session_create', attrs: { tunnel_id: 1, session_id: sid, peer_session_id: sid } }) + '\\n';
  if (i % 3 === 2) lines += JSON.stringify({ id: id++, op: 'session_delete', attrs: { tunnel_id: 1, session_id: sid - 2 } }) + '\\n';
  if (i % 12 === 11 || i === n - 1) { chunks.push(lines); lines = ''; }
}
let waiting = 0;
let buf = '';
const next = () => { const c = chunks.shift(); if (c === undefined) return; waiting = c.split('\\n').length - 1; s.write(c); };
s.on('connect', next);
s.on('data', (d) => { buf += d; let k; while ((k = buf.indexOf('\\n')) >= 0) { buf = buf.slice(k + 1); if (--waiting === 0) next(); } });
s.on('error', () => process.exit(0));
s.on('close', () => process.exit(0));`;

interface LinkRow {
  ifname: string;
  ifalias?: string;
  link?: string;
  linkinfo?: { info_kind?: string };
}

/** The session interfaces that exist, by the backend's own structure (not by the mark under test). */
function sessionIfaces(ns: Netns, backend: string, userTap: string): string[] {
  const links = JSON.parse(ns.ip('-j', '-d', 'link', 'show')) as LinkRow[];
  if (backend === 'koffi') return links.filter((l) => l.linkinfo?.info_kind === 'tun' && l.ifname !== userTap).map((l) => l.ifname).sort();
  // native-free: the user-side end of each veth pair whose other end is a hidden ul2tp<hex> peer
  return links.filter((l) => l.linkinfo?.info_kind === 'veth' && /^ul2tp[0-9a-f]{8}$/.test(l.link ?? '')).map((l) => l.ifname).sort();
}

describe('crash-consistent session interfaces', { skip: skip || undefined }, () => {
  for (const [backend, perRound, rounds] of [
    ['koffi', 300, 5],
    ['native-free', 30, 3],
  ] as const) {
    it(`${backend}: kill -9 at random points of create/delete bursts, ${rounds} rounds: exactly the configured interfaces`, async () => {
      const ns = new Netns('ul2ic');
      const env = { ...ns.env(), UL2TP_BACKEND: backend };
      const cli = (...args: string[]) => run(IP, ['netns', 'exec', ns.name, process.execPath, CLI, ...args], 120_000, env);
      let seed = 4;
      const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
      try {
        const v = uniq('vc');
        ns.ip('link', 'add', v, 'type', 'veth', 'peer', 'name', uniq('vd'));
        ns.ip('addr', 'add', '192.0.2.1/24', 'dev', v);
        ns.ip('link', 'set', v, 'up');
        const userTap = uniq('ut');
        ns.ip('tuntap', 'add', 'mode', 'tap', 'name', userTap);
        let r = cli('add', 'tunnel', 'tunnel_id', '1', 'peer_tunnel_id', '1', 'encap', 'udp', 'local', '192.0.2.1', 'remote', '192.0.2.2', 'udp_sport', '5000', 'udp_dport', '5000');
        assert.equal(r.status, 0, r.stderr);
        const sock = join(ns.runDir, ns.exec('stat', ['-L', '-c', '%i', '/proc/self/ns/net']).stdout.trim(), 'ctl.sock');
        let orphansSeen = 0;
        for (let round = 0; round < rounds; round++) {
          const pid = control<{ pid: number }>(ns).pid;
          const burst = ns.spawn(process.execPath, ['-e', BURST, sock, String(1000 + round * 1000), String(perRound)], { UL2TP_BACKEND: backend });
          const killAfter = Math.round(150 + rand() * (backend === 'koffi' ? 1500 : 2500));
          await new Promise((res) => setTimeout(res, killAfter));
          const before = sessionIfaces(ns, backend, userTap).length;
          process.kill(pid, 'SIGKILL');
          assert.ok(await waitFor(() => !alive(pid), 5000));
          if (burst.exitCode === null) burst.kill('SIGKILL');
          r = cli('-j', 'show', 'session');
          assert.equal(r.status, 0, r.stderr);
          const configured = (JSON.parse(r.stdout || '[]') as Array<{ interface?: string; ifname?: string }>).map((s) => s.interface ?? s.ifname ?? '').sort();
          const present = sessionIfaces(ns, backend, userTap);
          const log = run('cat', [join(sock, '..', 'daemon.log')]).stdout;
          const m = [...log.matchAll(/removed (\d+) orphaned session interface/g)];
          const removed = m.length > orphansSeen ? Number(m[m.length - 1][1]) : 0;
          orphansSeen = m.length;
          console.log(`${backend} round ${round + 1}: killed after ${killAfter} ms with ${before} session interfaces; configured ${configured.length}, present ${present.length}, orphans removed ${removed}`);
          assert.deepEqual(present, configured, 'exactly the configured session interfaces exist');
          assert.ok(ns.ip('link', 'show', 'dev', userTap).includes(userTap), "the user's own TAP is untouched");
        }
      } finally {
        ns.destroy();
      }
    });
  }
});

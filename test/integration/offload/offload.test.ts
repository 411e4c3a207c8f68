/**
 * Offload mode end to end: two namespaces, ul2tp on the koffi backend with offloads on at
 * one end and off at the other (UL2TP_OFFLOAD per daemon), then on at both. Bulk TCP both
 * ways checked by sha256 (super-frames segmented on one side, coalesced on the other), IPv6
 * overlay and underlay, seq both + cookies, ICMP, UDP datagrams of many sizes, and a
 * VLAN-tagged interface on top of the session.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Netns, netnsUnavailable, ping, underlay, type Underlay } from '../../../support/netns.js';
import { CLI, waitFor } from '../../../support/proc.js';
import { makeLink, sessionCounters } from '../../../support/ul2tp.js';
import { assertNoSequenceErrors, bulkTransfer } from '../lib/xfer.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping offload e2e: ${skip}`);

/** Make every ul2tp command (and so the daemon it starts) in `ns` run with UL2TP_OFFLOAD=v. */
function setOffloadEnv(ns: Netns, on: boolean): void {
  const base = ns.env.bind(ns);
  (ns as unknown as { env: () => NodeJS.ProcessEnv }).env = () => ({ ...base(), UL2TP_OFFLOAD: on ? '1' : '0', UL2TP_BACKEND: 'koffi' });
}

/** TCP segmentation offload state of an interface, from ethtool -k. */
function tsoOn(ns: Netns, ifname: string): boolean {
  const r = ns.exec('ethtool', ['-k', ifname]);
  return /^tcp-segmentation-offload: on/m.test(r.stdout);
}

/** A kernel counter of an interface (/sys/class/net/IF/statistics/NAME). */
function ifStat(ns: Netns, ifname: string, name: string): number {
  return Number(ns.exec('cat', [`/sys/class/net/${ifname}/statistics/${name}`]).stdout.trim());
}

/** The underlay veth of a namespace (the one interface named va…/vb…). */
function vethOf(ns: Netns): string {
  const names = ns.exec('ls', ['/sys/class/net']).stdout.split(/\s+/);
  return names.find((x) => /^v[ab]\d/.test(x))!;
}


/** UDP datagrams of sizes 1..1472 (step) from `from` to addr:port; returns [sent, received, ok]. */
const UDP_SCRIPT = `
const dgram = require('node:dgram');
const [mode, addr, port] = process.argv.slice(1);
const crypto = require('node:crypto');
if (mode === 'serve') {
  const s = dgram.createSocket(addr.includes(':') ? 'udp6' : 'udp4');
  let n = 0, bad = 0;
  s.on('message', (m) => { const len = m.readUInt16BE(0); if (len !== m.length || crypto.createHash('sha1').update(m.subarray(22)).digest().compare(m.subarray(2, 22)) !== 0) bad++; n++; });
  s.bind(Number(port), addr, () => console.log('READY'));
  setTimeout(() => { console.log(n + ' ' + bad); process.exit(0); }, 4000);
} else {
  const s = dgram.createSocket(addr.includes(':') ? 'udp6' : 'udp4');
  const sizes = []; for (let l = 22; l <= 1400; l += 23) sizes.push(l);
  let i = 0;
  const next = () => {
    if (i === sizes.length) { console.log(String(sizes.length)); s.close(); return; }
    const len = sizes[i++]; const m = crypto.randomBytes(len); m.writeUInt16BE(len, 0);
    crypto.createHash('sha1').update(m.subarray(22)).digest().copy(m, 2);
    s.send(m, Number(port), addr, () => setTimeout(next, 2));
  };
  next();
}`;

async function udpBurst(from: Netns, to: Netns, bindAddr: string, addr: string, port: number): Promise<{ sent: number; got: number; bad: number }> {
  const server = to.spawn(process.execPath, ['-e', UDP_SCRIPT, 'serve', bindAddr, String(port)]);
  let out = '';
  server.stdout!.on('data', (d: string) => (out += d));
  assert.ok(await waitFor(() => out.includes('READY'), 10_000), 'udp receiver did not start');
  const r = from.exec(process.execPath, ['-e', UDP_SCRIPT, 'send', addr, String(port)], 30_000);
  assert.equal(r.status, 0, r.stderr);
  if (server.exitCode === null && server.signalCode === null) await once(server, 'exit');
  const [got, bad] = out.split('\n')[1].trim().split(' ').map(Number);
  return { sent: Number(r.stdout.trim()), got: got, bad: bad };
}

/** Sends five 802.1Q frames (VLAN 7, ethertype 0x88b5, 1000-byte payload) on an interface. */
const VLAN_SEND = `
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for i in range(5):
    s.send(b'\\xff' * 6 + b'\\x02\\x00\\x00\\x00\\x00\\x07' + struct.pack('!HHH', 0x8100, 7, 0x88b5) + bytes([i]) * 1000)
`;

const MODES: Array<[string, boolean, boolean]> = [
  ['offload on at A, off at B', true, false],
  ['offload on at both ends', true, true],
];

for (const [title, onA, onB] of MODES) {
  describe(`offload e2e: ${title}`, { skip: skip || undefined }, () => {
    let u: Underlay;
    before(() => {
      u = underlay();
      setOffloadEnv(u.a, onA);
      setOffloadEnv(u.b, onB);
    });
    after(() => u?.destroy());

    it('session TAPs have TSO exactly where offload is on; ping v4/v6 and full-size ICMP', () => {
      const l = makeLink(u, { n: 1 });
      try {
        assert.equal(tsoOn(u.a, l.ifA), onA);
        assert.equal(tsoOn(u.b, l.ifB), onB);
        // (≥ 2 of 3: a reply may be late when the shared machine is busy)
        assert.ok(ping(u.a, l.b4, 3) >= 2, 'IPv4 ping');
        assert.ok(ping(u.b, l.a6, 3) >= 2, 'IPv6 ping');
        assert.ok(ping(u.a, l.b4, 3, 1400) >= 2, 'full-size IPv4 ping A→B');
        assert.ok(ping(u.b, l.a4, 3, 1400) >= 2, 'full-size IPv4 ping B→A');
      } finally {
        l.remove();
      }
    });

    it('bulk TCP both ways (IPv4 and IPv6 overlay) arrives intact', async () => {
      const l = makeLink(u, { n: 2 });
      try {
        const bytes = 40 * 1024 * 1024;
        const tapTx0 = ifStat(u.a, l.ifA, 'tx_packets');
        const tapRx0 = ifStat(u.b, l.ifB, 'rx_packets');
        const { sent: s1, got: g1 } = await bulkTransfer(u.a, u.b, l.b4, 7101, bytes);
        assert.equal(g1, s1);
        // Frames through the TAPs vs L2TP packets on the wire: super-frames where offload is on.
        const wire = sessionCounters(u.b, l.tidB, l.sidB).rx_packets;
        const tapTx = ifStat(u.a, l.ifA, 'tx_packets') - tapTx0; // frames ul2tp read at A
        const tapRx = ifStat(u.b, l.ifB, 'rx_packets') - tapRx0; // frames ul2tp wrote at B
        console.log(`# A→B: ${wire} L2TP packets, ${tapTx} frames read from A's TAP, ${tapRx} written to B's TAP`);
        if (onA) assert.ok(tapTx < wire / 3, 'A read TCP super-frames (TSO)');
        if (onB) assert.ok(tapRx < wire / 3, 'B wrote coalesced super-frames (GRO)');
        else assert.ok(tapRx >= wire * 0.95, 'B wrote one frame per packet');
        const { sent: s2, got: g2 } = await bulkTransfer(u.b, u.a, l.a4, 7102, bytes);
        assert.equal(g2, s2);
        const { sent: s3, got: g3 } = await bulkTransfer(u.a, u.b, l.b6, 7103, bytes);
        assert.equal(g3, s3);
        assert.match(s1, new RegExp(`^${bytes} [0-9a-f]{64}$`));
        const cb = sessionCounters(u.b, l.tidB, l.sidB);
        const ca = sessionCounters(u.a, l.tidA, l.sidA);
        // every segment was an ordinary L2TP packet of at most one MTU
        assert.ok(cb.rx_packets > bytes / 1500, `B received ${cb.rx_packets} packets`);
        assert.ok(ca.tx_bytes / ca.tx_packets < 1600, 'mean packet size is one MTU frame or less');
        assert.equal(cb.rx_errors, 0);
      } finally {
        l.remove();
      }
    });

    it('seq both with 8-byte cookies over an IPv6 underlay: TCP both ways, no sequence errors', async () => {
      const l = makeLink(u, { n: 3, family: 6, seq: 'both', cookies: ['0102030405060708', 'a1a2a3a4'] });
      try {
        const drops0 = [u.a.udpRcvbufErrors(), u.b.udpRcvbufErrors()];
        const veth = vethOf(u.a);
        const v0 = ifStat(u.a, veth, 'tx_packets');
        const c0 = sessionCounters(u.a, l.tidA, l.sidA).tx_packets;
        const { sent: s1, got: g1 } = await bulkTransfer(u.a, u.b, l.b4, 7201, 20 * 1024 * 1024);
        assert.equal(g1, s1);
        // IPv6 tunnels send UDP checksums (udp6_csum_tx on), so A may use UDP GSO: the veth
        // then carries far fewer (GSO) packets than there are L2TP packets.
        const dv = ifStat(u.a, veth, 'tx_packets') - v0;
        const dc = sessionCounters(u.a, l.tidA, l.sidA).tx_packets - c0;
        console.log(`# IPv6 underlay A→B: ${dc} L2TP packets, ${dv} packets through A's veth`);
        if (onA) assert.ok(dv < dc / 2, 'UDP GSO in use');
        else assert.ok(dv >= dc, 'one veth packet per L2TP packet');
        const { sent: s2, got: g2 } = await bulkTransfer(u.b, u.a, l.a4, 7202, 20 * 1024 * 1024);
        assert.equal(g2, s2);
        for (const [i, ns, t, s] of [[0, u.a, l.tidA, l.sidA], [1, u.b, l.tidB, l.sidB]] as const) {
          const c = sessionCounters(ns, t, s);
          assert.equal(c.rx_cookie_discards, 0);
          assertNoSequenceErrors(c, ns.udpRcvbufErrors() - drops0[i], ns.name);
          assert.equal(c.rx_oos_packets, 0, 'segments were numbered in order');
        }
      } finally {
        l.remove();
      }
    });

    it('UDP datagrams of many sizes, both ways, IPv4 and IPv6', async () => {
      const l = makeLink(u, { n: 4 });
      try {
        for (const [from, to, bind, addr, port] of [
          [u.a, u.b, l.b4, l.b4, 7301],
          [u.b, u.a, l.a4, l.a4, 7302],
          [u.a, u.b, l.b6, l.b6, 7303],
        ] as const) {
          const r = await udpBurst(from, to, bind, addr, port);
          assert.ok(r.sent > 50);
          assert.equal(r.bad, 0, 'no datagram was damaged');
          assert.ok(r.got >= r.sent - 2, `${r.got}/${r.sent} datagrams arrived`);
        }
      } finally {
        l.remove();
      }
    });

    it('VLAN-tagged frames cross in both directions (raw 802.1Q frames, seen by tcpdump)', async () => {
      const l = makeLink(u, { n: 5 });
      try {
        for (const [from, to, ifFrom, ifTo] of [
          [u.a, u.b, l.ifA, l.ifB],
          [u.b, u.a, l.ifB, l.ifA],
        ] as const) {
          const dump = to.spawn('tcpdump', ['-i', ifTo, '-nn', '-e', '-l', '-c', '5', 'vlan 7']);
          let out = '';
          dump.stdout!.on('data', (d: string) => (out += d));
          let err = '';
          dump.stderr!.on('data', (d: string) => (err += d));
          assert.ok(await waitFor(() => err.includes('listening'), 10_000), 'tcpdump did not start');
          const r = from.exec('python3', ['-c', VLAN_SEND, ifFrom]);
          assert.equal(r.status, 0, r.stderr);
          assert.ok(await waitFor(() => out.split('\n').filter((x) => /vlan 7/.test(x)).length >= 5, 10_000), `tagged frames seen: ${out}`);
          assert.match(out, /ethertype 802\.1Q.*vlan 7.*0x88b5/);
          assert.match(out, /length 1018/);
        }
      } finally {
        l.remove();
      }
    });
  });
}

describe('offload e2e: a daemon restarted with the other mode adopts its TAPs', { skip: skip || undefined }, () => {
  let u: Underlay;
  before(() => {
    u = underlay();
    setOffloadEnv(u.a, true);
    setOffloadEnv(u.b, true);
  });
  after(() => u?.destroy());

  // Known problem, under investigation: since the packet path was redesigned this passes run
  // alone, after the e2e, everyday, io and native-free files and under CPU load (6 runs), but
  // failed "traffic resumes" in both full-suite runs. `todo` keeps it running and reported,
  // with the counters and daemon logs below, without failing the suite.
  // (It once failed now and then: a kill right after the transfers, before the next
  // state write, restarted behind the peer's window; see restart.test.ts "right after a burst".)
  it('on → kill -9 → off → kill -9 → on: TSO follows the mode, traffic intact each time', async (t) => {
    const l = makeLink(u, { n: 6, seq: 'both' });
    const why = (round: string): string => {
      const side = (ns: Netns): string => {
        const logs = ns.exec('sh', ['-c', `tail -n 20 ${ns.runDir}/*/daemon.log 2>&1`]).stdout;
        return `${ns.name}:\n${ns.exec(process.execPath, [CLI, '-s', 'show', 'session']).stdout}\n${logs}`;
      };
      return `traffic resumes (${round})\n${side(u.a)}\n${side(u.b)}`;
    };
    try {
      let port = 7601;
      for (const on of [false, true]) {
        const pid = u.a.daemonPid();
        assert.ok(pid);
        process.kill(pid, 'SIGKILL');
        assert.ok(await waitFor(() => u.a.daemonPid() === undefined, 10_000), 'daemon died');
        setOffloadEnv(u.a, on);
        const t0 = Date.now();
        u.a.ok('show', 'tunnel'); // restarts the daemon, which restores the session and adopts the TAP
        const t1 = Date.now();
        if (!(await waitFor(() => ping(u.a, l.b4, 1) === 1, 30_000))) assert.fail(why(`offload ${on ? 'on' : 'off'}`));
        t.diagnostic(`offload ${on ? 'on' : 'off'}: daemon back in ${t1 - t0} ms, first ping answered ${Date.now() - t1} ms later`);
        assert.equal(tsoOn(u.a, l.ifA), on);
        const { sent: s1, got: g1 } = await bulkTransfer(u.a, u.b, l.b4, port++, 10 * 1024 * 1024);
        assert.equal(g1, s1);
        const { sent: s2, got: g2 } = await bulkTransfer(u.b, u.a, l.a4, port++, 10 * 1024 * 1024);
        assert.equal(g2, s2);
      }
    } finally {
      l.remove();
    }
  });

  it('the daemon flag --no-offload (not the environment, which says on) opens plain TAPs', async () => {
    const l = makeLink(u, { n: 7 });
    try {
      assert.equal(tsoOn(u.a, l.ifA), true, 'offload on first');
      const pid = u.a.daemonPid();
      assert.ok(pid);
      process.kill(pid, 'SIGKILL');
      assert.ok(await waitFor(() => u.a.daemonPid() === undefined, 10_000), 'daemon died');
      // UL2TP_OFFLOAD=1 stays in this namespace's environment: the flag must win
      const d = u.a.spawn(process.execPath, [CLI, 'daemon', '--foreground', '--no-offload']);
      assert.ok(await waitFor(() => u.a.daemonPid() === d.pid, 15_000), 'flagged daemon runs');
      assert.ok(await waitFor(() => ping(u.a, l.b4, 1) === 1, 30_000), 'traffic resumes');
      assert.equal(tsoOn(u.a, l.ifA), false, 'adopted TAP reopened without offloads');
      assert.equal(ping(u.a, l.b4, 3), 3);
    } finally {
      l.remove();
    }
  });
});

/**
 * Everyday features without a daemon: impairment configuration (its packet
 * path is tested in test/unit/engine/impair.test.ts), the capture ring, pcap synthesis, metrics text,
 * CLI parsing and the -s printer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CaptureRing, captureOne, drainRing, ringDrops, CTL_ON } from '../../../src/io/capture-ring.js';
import { impairFromJson, impairToJson, type ImpairJson } from '../../../src/engine/impair.js';
import { formatImpair, parseRate } from '../../../src/cli/impair-text.js';
import { formatSessions, formatTunnels } from '../../../src/cli/print.js';
import { parseCaptureArgs } from '../../../src/cli/capture.js';
import { parseImpairArgs, runImpair } from '../../../src/cli/impair.js';
import { parseStatsArgs, rateLine, formatBits, runStats } from '../../../src/cli/stats.js';
import { L2tpError } from '../../../src/errors.js';
import { fakeCliIo, type FakeCliIo } from '../../../support/fake-daemon.js';
import { outerPacket, innerFrame, pcapHeader, pcapRecord, summarize, summaryLine, describeFrame } from '../../../src/cli/pcap.js';
import { parseListen, renderMetrics } from '../../../src/control/metrics.js';
import type { SessionInfo, TunnelInfo } from '../../../src/control/protocol.js';
import { validateRequest } from '../../../src/control/validate.js';

const cfg = (o: Record<string, number>): ImpairJson => impairToJson(impairFromJson(o));

describe('impairment configuration', () => {
  it('config text and validation', () => {
    assert.equal(formatImpair(cfg({ loss: 5, delay: 10, jitter: 2, rate: 10_000_000, seed: 7 })), 'loss 5% delay 10ms jitter 2ms rate 10mbit seed 7');
    assert.equal(formatImpair(cfg({ reorder: 25, distance: 3, duplicate: 0.5 })), 'duplicate 0.5% reorder 25% distance 3');
    assert.equal(parseRate('800kbit'), 800_000);
    assert.equal(parseRate('1.5mbit'), 1_500_000);
    assert.equal(parseRate('fast'), null);
    assert.throws(() => impairFromJson({ loss: 101 }), /"loss" must be/);
    assert.throws(() => validateRequest({ id: 1, op: 'impair', attrs: { tunnel_id: 1, session_id: 1, loss: -1 } }), /loss/);
    assert.throws(() => validateRequest({ id: 1, op: 'impair', attrs: { tunnel_id: 1, session_id: 1, bogus: 1 } }), /unknown attribute/);
    assert.deepEqual(validateRequest({ id: 1, op: 'capture', attrs: {} }).attrs, { tunnel_id: 0, session_id: 0 });
  });
});

describe('capture ring', () => {
  it('carries records in order, wraps, and drops when full', () => {
    const r = new CaptureRing(undefined, 1024);
    const pkt = Buffer.alloc(400, 0xab);
    pkt.writeUInt32BE(7, 0);
    for (let i = 0; i < 4; i++) captureOne(r, pkt, 0, 300 + i, 0, 0, 1, 2, 1000 + i);
    assert.equal(ringDrops(r), 1, 'three 336-byte records fit in 1016 usable bytes, the 4th does not');
    const got: number[] = [];
    drainRing(r, (p) => {
      got.push(p.data.length);
      assert.equal(p.dir, 'tx');
      assert.equal(p.tunnelId, 1);
      assert.equal(p.sessionId, 2);
      assert.equal(p.data[0], 0);
      assert.equal(p.data[5], 0xab);
    });
    assert.deepEqual(got, [300, 301, 302]);
    // Now the head is near the end: the next records wrap to the start.
    for (let round = 0; round < 20; round++) {
      captureOne(r, pkt, 0, 150, 1, 1, 0, 9, round);
      captureOne(r, pkt, 0, 150, 1, 1, 0, 9, round);
      const seen: number[] = [];
      drainRing(r, (p) => seen.push(p.timeMs));
      assert.deepEqual(seen, [round, round], `round ${round}`);
    }
    assert.equal(ringDrops(r), 1);
    assert.equal(r.ctl[CTL_ON], 0);
  });
});

describe('pcap synthesis and summaries', () => {
  const tun = { tunnel_id: 1, encap: 'udp' as const, local: '192.0.2.1', remote: '192.0.2.2', udp_sport: 5000, udp_dport: 6000 };
  const ses = { tunnel_id: 1, session_id: 10, cookie: '01020304', peer_cookie: '', l2spec_type: 'default' as const };
  const frame = Buffer.alloc(14 + 20 + 8);
  Buffer.from('020000000002020000000001', 'hex').copy(frame, 0);
  frame.writeUInt16BE(0x0800, 12);
  frame[14] = 0x45;
  frame[14 + 9] = 1;
  Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(frame, 14 + 12);
  const l2tp = Buffer.concat([Buffer.from('00030000000000140102030440000005', 'hex'), frame]);

  it('outer packet: IPv4 + UDP with valid checksums, directions swapped for rx', () => {
    const tx = outerPacket({ t: 0, dir: 'tx', encap: 'udp', tunnel_id: 1, session_id: 10, data: l2tp }, tun);
    assert.equal(tx.length, 20 + 8 + l2tp.length);
    assert.equal(tx.readUInt16BE(2), tx.length);
    assert.deepEqual([...tx.subarray(12, 20)], [192, 0, 2, 1, 192, 0, 2, 2]);
    assert.equal(tx.readUInt16BE(20), 5000);
    assert.equal(tx.readUInt16BE(22), 6000);
    let s = 0;
    for (let i = 0; i < 20; i += 2) s += tx.readUInt16BE(i);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    assert.equal(s, 0xffff, 'IPv4 header checksum verifies');
    const rx = outerPacket({ t: 0, dir: 'rx', encap: 'ip', tunnel_id: 1, session_id: 10, data: l2tp.subarray(4) }, { ...tun, encap: 'ip', local: '2001:db8::1', remote: '2001:db8::2' });
    assert.equal(rx[0] >> 4, 6);
    assert.equal(rx[6], 115);
    assert.equal(rx[23], 2, 'source is the remote');
  });

  it('inner frame and summary line', () => {
    const p = { t: Date.UTC(2026, 0, 1, 12, 0, 0, 250), dir: 'tx' as const, encap: 'udp' as const, tunnel_id: 1, session_id: 10, data: l2tp };
    assert.deepEqual(innerFrame(p, ses), frame);
    assert.match(summaryLine(p, ses), /^\d\d:\d\d:\d\d\.250000 tx tunnel 1 session 10 seq 5 len 58: 02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 10\.0\.0\.1 > 10\.0\.0\.2 ICMP$/);
    // `ul2tp -j capture`: the same facts as one JSON object.
    assert.deepEqual(JSON.parse(JSON.stringify(summarize(p, ses))), {
      time: '2026-01-01T12:00:00.250Z',
      dir: 'tx',
      encap: 'udp',
      tunnel_id: 1,
      session_id: 10,
      seq: 5,
      len: 58,
      frame: '02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 10.0.0.1 > 10.0.0.2 ICMP',
    });
    assert.equal(summarize({ ...p, session_id: 99 }, undefined).frame, '(unknown session)');
    assert.match(describeFrame(Buffer.alloc(10)), /short frame/);
    assert.equal(pcapHeader(101).readUInt32LE(20), 101);
    const rec = pcapRecord(1500.5, Buffer.alloc(3));
    assert.deepEqual([rec.readUInt32LE(0), rec.readUInt32LE(4), rec.readUInt32LE(8)], [1, 500500, 3]);
  });
});

describe('CLI parsing and printing', () => {
  it('stats/capture/impair arguments', () => {
    assert.deepEqual(parseStatsArgs(['tid', '5', '-i', '0.5', '-c', '3']), { tunnelId: 5, sessionId: 0, intervalS: 0.5, count: 3 });
    assert.deepEqual(parseCaptureArgs(['session_id', '0x10', '-w', 'f.pcap', '--inner']), { tunnelId: 0, sessionId: 16, file: 'f.pcap', inner: true, count: 0 });
    assert.deepEqual(parseImpairArgs(['tunnel_id', '1', 'session_id', '2', 'loss', '5%', 'delay', '10ms', 'jitter', '1', 'rate', '1mbit', 'seed', '3']), {
      tunnel_id: 1, session_id: 2, loss: 5, delay: 10, jitter: 1, rate: 1_000_000, seed: 3,
    });
    assert.throws(() => parseImpairArgs(['tunnel_id', '1', 'session_id', '2', 'off', 'loss', '1']), /cannot be combined/);
    assert.throws(() => parseImpairArgs(['session_id', '2']), /"tunnel_id" is required/);
    assert.throws(() => parseImpairArgs(['tunnel_id', '1', 'session_id', '2', 'jitter', '1']), /needs "delay"/);
    assert.throws(() => parseImpairArgs(['tunnel_id', '1', 'session_id', '2', 'loss', '150']), /percentage/);
    assert.throws(() => parseStatsArgs(['-c']), /needs a value/);
  });

  it('watch-mode line', () => {
    const mk = (rx: number, rb: number, err: number): SessionInfo =>
      ({ tunnel_id: 1, session_id: 2, ifname: 'l2tpeth0', stats: { rx_packets: rx, rx_bytes: rb, tx_packets: rx, tx_bytes: rb, rx_errors: err, rx_seq_discards: err }, drops: {} }) as unknown as SessionInfo;
    const line = rateLine(mk(0, 0, 0), mk(200, 250_000, 5), 2, new Date(2026, 0, 1, 9, 8, 7));
    assert.equal(line, '09:08:07 tunnel 1 session 2 l2tpeth0: rx 100 pkt/s 1.00 Mbit/s, tx 100 pkt/s 1.00 Mbit/s, drops rx_errors 5 rx_seq_discards 5');
    assert.equal(formatBits(999), '999 bit/s');
    const imp = (lost: number, full: number): SessionInfo =>
      ({ tunnel_id: 1, session_id: 2, ifname: 'x', stats: {}, drops: { tx_impair_lost: lost, tx_impair_drops: full } }) as unknown as SessionInfo;
    assert.match(rateLine(imp(0, 0), imp(7, 2), 1, new Date()), /drops tx_impair_lost 7 tx_impair_drops 2$/, 'impairment losses and queue drops shown');
  });

  it('-s blocks and JSON objects; unchanged without -s', () => {
    const stats = { tx_packets: 1, tx_bytes: 2, tx_errors: 3, rx_packets: 4, rx_bytes: 5, rx_errors: 6, rx_seq_discards: 7, rx_oos_packets: 8, rx_cookie_discards: 9, rx_invalid: 10 };
    const t = { tunnel_id: 1, peer_tunnel_id: 2, encap: 'ip', family: 4, local: '1.2.3.4', remote: '5.6.7.8', udp_sport: 0, udp_dport: 0, udp_csum: false, udp6_csum_tx: true, udp6_csum_rx: true, stats, drops: { rx_no_session: 11, rx_control: 12, rx_short: 13, rx_dev_drops: 14, tx_impair_lost: 15, tx_impair_drops: 16 } } as TunnelInfo;
    assert.equal(formatTunnels([t], { json: false, pretty: false }), 'Tunnel 1, encap IP\n  From 1.2.3.4 to 5.6.7.8\n  Peer tunnel 2\n');
    assert.equal(
      formatTunnels([t], { json: false, pretty: false, stats: true }),
      'Tunnel 1, encap IP\n  From 1.2.3.4 to 5.6.7.8\n  Peer tunnel 2\n' +
        '    RX: packets 4 bytes 5 errors 6 seq_discards 7 oos_packets 8 cookie_discards 9 invalid 10\n' +
        '    TX: packets 1 bytes 2 errors 3\n' +
        '    drops: no_session 11 control 12 short 13 dev_drops 14 impair_lost 15 impair_drops 16\n',
    );
    const j = formatTunnels([t], { json: true, pretty: false, stats: true });
    assert.ok(j.endsWith(',"stats":{"tx_packets":1,"tx_bytes":2,"tx_errors":3,"rx_packets":4,"rx_bytes":5,"rx_errors":6,"rx_seq_discards":7,"rx_oos_packets":8,"rx_cookie_discards":9,"rx_invalid":10},"drops":{"rx_no_session":11,"rx_control":12,"rx_short":13,"rx_dev_drops":14,"tx_impair_lost":15,"tx_impair_drops":16}}]\n'), j);
    const p = formatTunnels([t], { json: true, pretty: true, stats: true });
    assert.match(p, /"peer_tunnel": 2,\n {8}"stats": \{\n {12}"tx_packets": 1,\n[^]*"rx_invalid": 10\n {8}\},\n {8}"drops": \{/);
    assert.deepEqual((JSON.parse(p) as Array<{ drops: Record<string, number> }>)[0].drops.rx_dev_drops, 14);
    const s = { tunnel_id: 1, session_id: 2, peer_session_id: 3, peer_tunnel_id: 2, ifname: 'x', cookie: '', peer_cookie: '', l2spec_type: 'default', send_seq: false, recv_seq: false, reorder_timeout: 0, stats, impairment: { loss: 5, duplicate: 0, reorder: 0, distance: 1, delay: 0, jitter: 0, rate: 0, seed: null } } as SessionInfo;
    assert.equal(formatSessions([s], { json: false, pretty: false }), 'Session 2 in tunnel 1\n  Peer session 3, tunnel 2\n  interface name: x\n  offset 0, peer offset 0\n\n  impairment: loss 5%\n');
  });

  it('metrics text and listen address checks', () => {
    const body = renderMetrics(
      {
        tunnelGet: () => ({ tunnels: [{ tunnel_id: 1, encap: 'udp', stats: { rx_packets: 3 }, drops: { rx_no_session: 2 } }] }),
        sessionGet: () => ({ sessions: [{ tunnel_id: 1, session_id: 2, ifname: 'a"b', stats: { rx_packets: 3 } }] }),
      },
      { version: '1', backend: 'koffi' },
    );
    assert.match(body, /^ul2tp_tunnel_rx_packets_total\{tunnel_id="1",encap="udp"\} 3$/m);
    assert.match(body, /^ul2tp_tunnel_rx_no_session_total\{tunnel_id="1",encap="udp"\} 2$/m);
    assert.match(body, /^ul2tp_session_rx_packets_total\{tunnel_id="1",session_id="2",ifname="a\\"b"\} 3$/m);
    assert.match(body, /^# TYPE ul2tp_session_rx_packets_total counter$/m);
    assert.ok(body.endsWith('\n'));
    assert.deepEqual(parseListen('127.0.0.1:9100'), { host: '127.0.0.1', port: 9100 });
    assert.deepEqual(parseListen('[::1]:9100'), { host: '::1', port: 9100 });
    assert.deepEqual(parseListen('9100'), { host: '127.0.0.1', port: 9100 });
    assert.throws(() => parseListen('0.0.0.0:9100'), /not a loopback/);
    assert.deepEqual(parseListen('0.0.0.0:9100', true), { host: '0.0.0.0', port: 9100 });
    assert.throws(() => parseListen('127.0.0.1:0'), /port/);
  });
});

describe('stats and impair commands with a fake daemon', () => {
  /**
   * A daemon whose sessions 1 and 2 (tunnel 1) grow by 100 packets / 125 kB received and 50 packets / 1 kB sent
   * per session_get; from the second reply on, each also has 5 rx_errors and `seqDiscards` rx_seq_discards.
   */
  function growingSessions(seqDiscards: number): FakeCliIo {
    let n = 0;
    return fakeCliIo(() => {
      n++;
      const mk = (sid: number, k: number) => ({
        tunnel_id: 1, session_id: sid, peer_session_id: 9, peer_tunnel_id: 9, ifname: `l2tpeth${sid}`, cookie: '', peer_cookie: '',
        send_seq: true, recv_seq: true,
        stats: { rx_packets: 100 * k, rx_bytes: 125_000 * k, tx_packets: 50 * k, tx_bytes: 1000 * k, rx_errors: k > 1 ? 5 : 0, rx_seq_discards: k > 1 ? seqDiscards : 0 },
        drops: { rx_dev_drops: 0 },
      });
      return { sessions: [mk(1, n), mk(2, n)] };
    });
  }

  it('stats: one line per session per interval, from counter deltas', async () => {
    const io = growingSessions(5);
    const slept: number[] = [];
    const code = await runStats(['session_id', '1', '-c', '2', '-i', '0.5'], io.io, async (ms) => void slept.push(ms));
    assert.equal(code, 0, io.err());
    assert.deepEqual(slept, [500, 500]);
    const lines = io.out().trim().split('\n');
    assert.equal(lines.length, 2, 'session 2 filtered out');
    // The fake sleep takes no time: the rates use half the nominal interval (0.25 s) as the floor.
    assert.match(lines[0], /^\d\d:\d\d:\d\d tunnel 1 session 1 l2tpeth1: rx 400 pkt\/s 4\.00 Mbit\/s, tx 200 pkt\/s 32\.00 kbit\/s, drops rx_errors 5 rx_seq_discards 5$/);
    assert.match(lines[1], /drops 0$/);
  });

  it('stats -j: one JSON object per interval with every session\'s rates and drops', async () => {
    const io = growingSessions(0);
    const code = await runStats(['-c', '2', '-i', '0.5'], io.io, async () => {}, true);
    assert.equal(code, 0, io.err());
    const objs = io.out().trimEnd().split('\n').map((l: string) => JSON.parse(l) as { time: string; interval: number; sessions: Array<Record<string, unknown>> });
    assert.equal(objs.length, 2);
    assert.equal(objs[0].interval, 0.5);
    assert.ok(!Number.isNaN(Date.parse(objs[0].time)));
    assert.deepEqual(objs[0].sessions[0], {
      tunnel_id: 1,
      session_id: 1,
      ifname: 'l2tpeth1',
      rx_pps: 400,
      rx_bps: 4_000_000,
      tx_pps: 200,
      tx_bps: 32_000,
      drops: { rx_errors: 5, rx_seq_discards: 0, rx_cookie_discards: 0, tx_errors: 0, rx_dev_drops: 0, tx_impair_lost: 0, tx_impair_drops: 0 },
    });
    assert.equal(objs[1].sessions.length, 2);
  });

  it('impair: daemon errors map to RTNETLINK text / Error and exit 2; usage errors exit 255', async () => {
    const enodev = fakeCliIo(() => {
      throw new L2tpError('KERNEL', 'no such session', 'ENODEV');
    });
    assert.equal(await runImpair(['tid', '1', 'sid', '2', 'loss', '1'], enodev.io), 2);
    assert.equal(enodev.err(), 'RTNETLINK answers: No such device\n');
    let got: unknown;
    const ok = fakeCliIo((op, attrs) => ((got = { op, attrs }), {}));
    assert.equal(await runImpair(['tid', '1', 'sid', '2', 'reorder', '5', 'distance', '3', 'seed', '0'], ok.io), 0);
    assert.deepEqual(got, { op: 'impair', attrs: { tunnel_id: 1, session_id: 2, reorder: 5, distance: 3, seed: 0 } });
    const bad = fakeCliIo(() => ({}));
    assert.equal(await runImpair(['tid', '1'], bad.io), 255);
    assert.match(bad.err(), /^Error: argument "session_id" is required\nUsage: ul2tp impair/);
    assert.deepEqual(bad.calls, [], 'nothing sent for a usage error');
  });
});

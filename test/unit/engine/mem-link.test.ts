/** End-to-end over io/mem: two endpoints, both encaps and families, faults with explicit time. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemLink, type MemEndpoint } from '../../../src/io/mem/link.js';
import { Rng } from '../../../src/io/mem/fault-injector.js';
import { RX_RESULT_NAMES } from '../../../src/engine/decap.js';
import * as C from '../../../src/engine/stats.js';
import type { SessionConfig } from '../../../src/engine/config.js';
import { frameN, numOf } from './helpers.js';

interface PairOpts {
  encap?: 'udp' | 'ip';
  family?: 4 | 6;
  cookieA?: string;
  cookieB?: string;
  l2spec?: 'none' | 'default';
  a?: Partial<SessionConfig>;
  b?: Partial<SessionConfig>;
}

function pair(link: MemLink, o: PairOpts = {}) {
  const encap = o.encap ?? 'udp';
  const [la, lb] = o.family === 6 ? ['2001:db8::1', '2001:db8::2'] : ['192.0.2.1', '192.0.2.2'];
  const udp = encap === 'udp';
  link.a.addTunnel({ tunnelId: 1, peerTunnelId: 2, encap, local: la, remote: lb, udpSport: udp ? 5000 : 0, udpDport: udp ? 6000 : 0 });
  link.b.addTunnel({ tunnelId: 2, peerTunnelId: 1, encap, local: lb, remote: la, udpSport: udp ? 6000 : 0, udpDport: udp ? 5000 : 0 });
  const l2specType = o.l2spec ?? 'default';
  const sa = link.a.addSession({ tunnelId: 1, sessionId: 100, peerSessionId: 200, cookie: o.cookieA ?? '', peerCookie: o.cookieB ?? '', l2specType, ...o.a });
  const sb = link.b.addSession({ tunnelId: 2, sessionId: 200, peerSessionId: 100, cookie: o.cookieB ?? '', peerCookie: o.cookieA ?? '', l2specType, ...o.b });
  return { sa, sb };
}

const nums = (e: MemEndpoint) => e.received.map((r) => numOf(r.frame));
const count = (x: { stats: Float64Array; base: number }, i: number) => x.stats[x.base + i];

for (const [encap, family] of [['udp', 4], ['udp', 6], ['ip', 4], ['ip', 6]] as const) {
  test(`clean link, encap ${encap} IPv${family}: frames arrive intact both ways, tx bytes = rx bytes`, () => {
    const link = MemLink.pair();
    const { sa, sb } = pair(link, { encap, family, cookieA: 'a1b2c3d4', cookieB: '0102030405060708', a: { sendSeq: true, recvSeq: true }, b: { sendSeq: true, recvSeq: true } });
    for (let i = 0; i < 20; i++) link.a.send(1, 100, frameN(i, 60 + i));
    for (let i = 0; i < 5; i++) link.b.send(2, 200, frameN(1000 + i));
    link.flush();
    assert.deepEqual(nums(link.b), [...Array(20).keys()]);
    assert.deepEqual(link.b.received.map((r) => r.frame.length), [...Array(20).keys()].map((i) => 60 + i));
    assert.deepEqual(nums(link.a), [1000, 1001, 1002, 1003, 1004]);
    assert.equal(count(sa, C.TX_BYTES), count(sb, C.RX_BYTES));
    assert.equal(count(sb, C.TX_BYTES), count(sa, C.RX_BYTES));
    assert.equal(count(sb, C.RX_ERRORS), 0);
    assert.equal(sa.ns, 20);
    assert.equal(sb.nr, 20);
  });
}

test('wrong cookie configuration: every packet dropped as a cookie discard', () => {
  const link = MemLink.pair();
  const { sb } = pair(link, { cookieA: 'deadbeef', b: { peerCookie: 'deadbeee' } });
  for (let i = 0; i < 7; i++) link.a.send(1, 100, frameN(i));
  link.flush();
  assert.equal(link.b.received.length, 0);
  assert.equal(count(sb, C.RX_COOKIE_DISCARDS), 7);
  assert.equal(count(sb, C.RX_ERRORS), 7);
});

test('UDP socket matching: a tunnel with the wrong port never sees the packets', () => {
  const link = MemLink.pair();
  link.a.addTunnel({ tunnelId: 1, local: '192.0.2.1', remote: '192.0.2.2', udpSport: 5000, udpDport: 6000 });
  link.b.addTunnel({ tunnelId: 2, local: '192.0.2.2', remote: '192.0.2.1', udpSport: 6001, udpDport: 5000 });
  link.a.addSession({ tunnelId: 1, sessionId: 1, peerSessionId: 1 });
  link.b.addSession({ tunnelId: 2, sessionId: 1, peerSessionId: 1 });
  link.a.send(1, 1, frameN(0));
  link.flush();
  assert.equal(link.b.unmatched, 1);
  assert.equal(link.b.received.length, 0);
});

test('random configurations over a clean link: every frame round-trips byte-exact', () => {
  const rng = new Rng(7);
  for (let iter = 0; iter < 60; iter++) {
    const link = MemLink.pair();
    const cookies = ['', 'deadbeef', '0102030405060708', 'ffffffff00000000'];
    // both sides use the same seq mode: `recv` facing a peer that does not sequence drops everything (tested elsewhere)
    const seqs = [{}, { sendSeq: true }, { sendSeq: true, recvSeq: true }];
    const l2spec = rng.int(2) ? 'default' : 'none';
    const mode = l2spec === 'default' ? seqs[rng.int(3)] : {};
    const { sa, sb } = pair(link, {
      encap: rng.int(2) ? 'udp' : 'ip',
      family: rng.int(2) ? 4 : 6,
      cookieA: cookies[rng.int(4)],
      cookieB: cookies[rng.int(4)],
      l2spec,
      a: mode,
      b: mode,
    });
    const frames: Buffer[] = [];
    for (let i = 0; i < 10; i++) {
      const f = Buffer.alloc(14 + rng.int(1500));
      rng.fill(f);
      frames.push(f);
      link.a.send(1, 100, f);
    }
    link.flush();
    assert.deepEqual(link.b.received.map((r) => r.frame), frames, `iteration ${iter}`);
    assert.equal(count(sa, C.TX_BYTES), count(sb, C.RX_BYTES));
  }
});

test('faults (seed 11): drops, duplicates, reorders and corruption are either delivered or counted', () => {
  const link = MemLink.pair({ seed: 11, drop: 0.05, duplicate: 0.05, reorder: 0.05, corrupt: 0.05 });
  const { sb } = pair(link, { cookieA: 'deadbeef', a: { sendSeq: true } });
  const N = 2000;
  for (let i = 0; i < N; i++) {
    link.a.send(1, 100, frameN(i));
    if (i % 7 === 0) link.flush();
    link.advance(1);
  }
  link.flush();
  const f = link.faults.counts;
  assert.ok(f.dropped > 0 && f.duplicated > 0 && f.reordered > 0 && f.corrupted > 0, JSON.stringify(f));
  const arrived = N - f.dropped + f.duplicated;
  const decapped = link.b.results.reduce((a, b) => a + b, 0);
  assert.equal(decapped + link.b.unmatched, arrived);
  const t = link.b.table.getTunnel(2)!;
  const counted =
    count(sb, C.RX_PACKETS) + count(sb, C.RX_ERRORS) + count(t, C.RX_INVALID) + count(t, C.RX_NO_SESSION) + count(t, C.RX_CONTROL) + count(t, C.RX_SHORT);
  assert.equal(counted, decapped, RX_RESULT_NAMES.map((n, i) => `${n}=${link.b.results[i]}`).join(' '));
  assert.equal(link.b.received.length, count(sb, C.RX_PACKETS) - count(sb, C.RX_DEV_DROPS));
  assert.ok(count(sb, C.RX_COOKIE_DISCARDS) > 0 && count(sb, C.RX_SEQ_DISCARDS) > 0 && count(sb, C.RX_ERRORS) > 0);
});

test('faults without corruption, seq on: delivered frames are strictly increasing, never duplicated', () => {
  const link = MemLink.pair({ seed: 12, drop: 0.05, duplicate: 0.05, reorder: 0.05 });
  const { sb } = pair(link, { a: { sendSeq: true } });
  for (let i = 0; i < 2000; i++) link.a.send(1, 100, frameN(i));
  link.flush();
  const got = nums(link.b);
  assert.ok(got.length > 1000);
  for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1], `order ${got[i - 1]} → ${got[i]}`);
  // duplicates and swapped-behind packets are outside the window: rx_errors only
  assert.ok(count(sb, C.RX_ERRORS) >= link.faults.counts.duplicated);
});

test('reorder mode puts swapped packets back in order (rx_oos_packets = swaps)', () => {
  const link = MemLink.pair({ seed: 3, reorder: 0.2 });
  const { sb } = pair(link, { a: { sendSeq: true }, b: { reorderTimeoutMs: 100 } });
  for (let i = 0; i < 500; i++) link.a.send(1, 100, frameN(i));
  link.flush();
  assert.deepEqual(nums(link.b), [...Array(500).keys()]);
  assert.ok(link.faults.counts.reordered > 20);
  assert.equal(count(sb, C.RX_OOS_PACKETS), link.faults.counts.reordered);
  assert.equal(count(sb, C.RX_ERRORS), 0);
});

test('reorder mode with a lost packet: the queue waits for the timeout, then resyncs', () => {
  const link = MemLink.pair();
  const { sb } = pair(link, { a: { sendSeq: true }, b: { reorderTimeoutMs: 100 } });
  link.a.send(1, 100, frameN(0));
  link.faults.dropNext();
  link.a.send(1, 100, frameN(1));
  link.a.send(1, 100, frameN(2));
  link.flush();
  assert.deepEqual(nums(link.b), [0]);
  link.advance(101);
  link.a.send(1, 100, frameN(3));
  link.flush();
  assert.deepEqual(nums(link.b), [0, 3]);
  assert.equal(count(sb, C.RX_SEQ_DISCARDS), 1, 'packet 2 expired');
});

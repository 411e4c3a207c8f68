/** Sequencing with the kernel's semantics (docs/protocol.md §2.5–2.7, TV5). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decapUdp, expire, RX_OK, RX_OUT_OF_WINDOW, RX_QUEUED, RX_QUEUE_FULL, RX_SEQ_DISCARD, RX_SEQ_REQUIRED, RX_RESULT_NAMES } from '../../../src/engine/decap.js';
import { encap } from '../../../src/engine/encap.js';
import { NR_OOS_COUNT_MAX, SEQ_MASK, SEQ_WINDOW, seqDelta, seqInWindow, seqNext } from '../../../src/engine/seq.js';
import { RECV_SEQ, RX_BYTES, RX_ERRORS, RX_OOS_PACKETS, RX_PACKETS, RX_SEQ_DISCARDS, SEND_SEQ } from '../../../src/engine/stats.js';
import { REORDER_CAPACITY } from '../../../src/engine/reorder.js';
import type { SessionConfig } from '../../../src/engine/config.js';
import { Collect, frameN, numOf, packet, setup, slot } from './helpers.js';

test('seq.ts constants and arithmetic around 0 and 2^24-1', () => {
  assert.equal(SEQ_MASK, 0xffffff);
  assert.equal(SEQ_WINDOW, 0x7fffff);
  assert.equal(NR_OOS_COUNT_MAX, 4);
  const rows: Array<[number, number, number]> = [
    [0, 0, 0],
    [1, 0, 1],
    [0, 1, 0xffffff],
    [0, 0xffffff, 1],
    [0xffffff, 0, 0xffffff],
    [2, 0xfffffe, 4],
    [0x7ffffe, 0, 0x7ffffe],
    [0x7fffff, 0, 0x7fffff],
  ];
  for (const [ns, nr, d] of rows) assert.equal(seqDelta(ns, nr), d, `${ns} - ${nr}`);
  assert.equal(seqNext(0xffffff), 0);
  assert.equal(seqInWindow(0x7ffffe, 0), true);
  assert.equal(seqInWindow(0x7fffff, 0), false);
  assert.equal(seqInWindow(0, 0xfffffe), true);
  assert.equal(seqInWindow(0xfffffd, 0xfffffe), false, 'one behind is outside');
});

/** Feeds UDP packets with the given ns values (null = S=0) to one session; records results and delivered ns. */
function rig(s: Partial<SessionConfig> = {}) {
  const r = setup({}, s);
  const sink = new Collect();
  const results: number[] = [];
  let now = 0;
  return {
    ...r,
    sink,
    results,
    setNow(t: number) {
      now = t;
    },
    feed(nsList: Array<number | null>) {
      for (const ns of nsList) {
        const p = packet({ encap: 'udp', sid: r.session.sessionId, cookie: s.peerCookie, l2spec: (s.l2specType ?? 'default') === 'default', ns, frame: frameN(ns ?? 0xdead) });
        const buf = Buffer.alloc(p.length + 20, 0x77);
        p.copy(buf, 10);
        results.push(decapUdp(r.table, r.tunnel, buf, 10, p.length, now, sink));
      }
    },
    delivered(): number[] {
      return sink.got.map((d) => numOf(d.frame));
    },
    c(idx: number): number {
      return r.session.stats[r.session.base + idx];
    },
  };
}

// ---- docs/protocol.md §7 TV5, row by row ----

const TV5: Array<{ arrivals: number[]; delivered: number[]; seqDiscards: number; errors: number; nr: number }> = [
  { arrivals: [0, 1, 2], delivered: [0, 1, 2], seqDiscards: 0, errors: 0, nr: 3 },
  { arrivals: [5, 6, 7], delivered: [5, 6, 7], seqDiscards: 0, errors: 0, nr: 8 },
  { arrivals: [0, 1, 3, 4, 5, 6, 7, 8, 9], delivered: [0, 1, 8, 9], seqDiscards: 5, errors: 5, nr: 10 },
  { arrivals: [0, 1, 2, 1], delivered: [0, 1, 2], seqDiscards: 0, errors: 1, nr: 3 },
  { arrivals: [0x800000], delivered: [], seqDiscards: 0, errors: 1, nr: 0 },
];

for (const row of TV5) {
  test(`TV5: arrivals ${row.arrivals.map((n) => n.toString(16)).join(',')} on a fresh session`, () => {
    const r = rig();
    r.feed(row.arrivals);
    assert.deepEqual(r.delivered(), row.delivered);
    assert.equal(r.c(RX_SEQ_DISCARDS), row.seqDiscards);
    assert.equal(r.c(RX_ERRORS), row.errors);
    assert.equal(r.c(RX_PACKETS), row.delivered.length);
    assert.equal(r.session.nr, row.nr);
  });
}

test('TV5: wrap 0xFFFFFE,0xFFFFFF,0,1 with the session at nr=0xFFFFFE reached by traffic', () => {
  const r = rig();
  // A fresh session rejects 0xFFFFFE (outside the window) ...
  r.feed([0xfffffe]);
  assert.equal(r.results[0], RX_OUT_OF_WINDOW);
  // ... so get there by traffic: resync to 0x7FFFFE, then 6 consecutive OOS packets resync to 0xFFFFF8+5.
  r.feed([0x7ffffe, 0xfffff8, 0xfffff9, 0xfffffa, 0xfffffb, 0xfffffc, 0xfffffd]);
  assert.equal(r.session.nr, 0xfffffe);
  assert.deepEqual(r.delivered(), [0x7ffffe, 0xfffffd]);
  const before = slot(r.session);
  r.sink.clear();
  r.feed([0xfffffe, 0xffffff, 0, 1]);
  assert.deepEqual(r.delivered(), [0xfffffe, 0xffffff, 0, 1]);
  const after = slot(r.session);
  assert.equal(after[RX_ERRORS] - before[RX_ERRORS], 0);
  assert.equal(after[RX_SEQ_DISCARDS] - before[RX_SEQ_DISCARDS], 0);
  assert.equal(r.session.nr, 2);
});

test('loss without reordering: one lost packet costs 5 more, the 6th resyncs (docs/protocol.md §2.6)', () => {
  const r = rig();
  r.feed([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]); // nr = 10
  r.feed([11, 12, 13, 14, 15, 16, 17]); // 10 lost
  assert.deepEqual(r.delivered(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17]);
  assert.equal(r.c(RX_SEQ_DISCARDS), 5);
  assert.equal(r.c(RX_ERRORS), 5);
  assert.deepEqual(r.results.slice(10), [RX_SEQ_DISCARD, RX_SEQ_DISCARD, RX_SEQ_DISCARD, RX_SEQ_DISCARD, RX_SEQ_DISCARD, RX_OK, RX_OK]);
  assert.equal(r.session.nr, 18);
});

test('nr_oos_count is not reset by in-order packets or by a resync', () => {
  const r = rig();
  r.feed([0, 1]); // nr = 2
  r.feed([100, 101, 102, 103]); // count 0,1,2,3: dropped
  r.feed([2, 3]); // in order, delivered; count stays 3
  assert.equal(r.session.nrOosCount, 3);
  r.feed([104]); // count 4: dropped
  r.feed([105]); // count 5 > 4: resync
  assert.deepEqual(r.delivered(), [0, 1, 2, 3, 105]);
  assert.equal(r.c(RX_SEQ_DISCARDS), 5);
  assert.equal(r.session.nr, 106);
  assert.equal(r.session.nrOosCount, 5, 'kept after the resync');
  assert.equal(r.session.nrOos, 105);
});

test('reordering inside the window without a reorder timeout: the late packet is delivered, the early one is lost', () => {
  const r = rig();
  r.feed([0, 1, 3, 2, 4, 5, 6, 7, 8]);
  // 3 dropped (OOS); 2 in order; 4..7 count 1..4 from nr_oos=3 → dropped; 8 → 5 → resync
  assert.deepEqual(r.delivered(), [0, 1, 2, 8]);
  assert.equal(r.c(RX_SEQ_DISCARDS), 5);
  assert.equal(r.c(RX_ERRORS), 5);
});

test('window edges: nr + 0x7FFFFE is inside (OOS), nr + 0x7FFFFF and nr - 1 are outside (rx_errors only)', () => {
  const r = rig();
  r.feed([10]); // nr = 11
  r.feed([(11 + 0x7fffff) & SEQ_MASK, 10, 11 + 0x7ffffe]);
  assert.deepEqual(r.results.slice(1), [RX_OUT_OF_WINDOW, RX_OUT_OF_WINDOW, RX_SEQ_DISCARD]);
  assert.equal(r.c(RX_ERRORS), 3);
  assert.equal(r.c(RX_SEQ_DISCARDS), 1);
});

test('duplicates are dropped as outside the window, counted only in rx_errors', () => {
  const r = rig();
  r.feed([0, 0, 1, 1, 1, 2]);
  assert.deepEqual(r.delivered(), [0, 1, 2]);
  assert.equal(r.c(RX_ERRORS), 3);
  assert.equal(r.c(RX_SEQ_DISCARDS), 0);
});

// ---- seq none|send|recv|both and the LAC rule (docs/protocol.md §2.5) ----

test('seq none: a peer sending S=1 turns our send_seq on; S=0 turns it off again; both delivered', () => {
  const r = rig({ sendSeq: false, recvSeq: false });
  r.feed([0]);
  assert.equal(r.c(SEND_SEQ), 1);
  assert.equal(r.session.sendSeq, true);
  // tx now carries sequence numbers
  const buf = Buffer.alloc(64);
  const p = encap(r.session, buf, 32, 20);
  assert.equal(buf[p + 8], 0x40);
  r.feed([null]);
  assert.equal(r.c(SEND_SEQ), 0);
  assert.deepEqual(r.results, [RX_OK, RX_OK]);
});

test('seq send: a peer that never sequences turns send_seq off at the first packet', () => {
  const r = rig({ sendSeq: true });
  assert.equal(r.c(SEND_SEQ), 1);
  r.feed([null]);
  assert.equal(r.c(SEND_SEQ), 0);
  assert.equal(r.c(RX_PACKETS), 1);
});

test('seq recv: unsequenced packets dropped (rx_seq_discards + rx_errors); sequenced accepted and send_seq flips on', () => {
  const r = rig({ recvSeq: true });
  assert.equal(r.c(RECV_SEQ), 1);
  r.feed([null, null]);
  assert.deepEqual(r.results, [RX_SEQ_REQUIRED, RX_SEQ_REQUIRED]);
  assert.equal(r.c(RX_SEQ_DISCARDS), 2);
  assert.equal(r.c(RX_ERRORS), 2);
  assert.equal(r.c(SEND_SEQ), 0);
  r.feed([0]);
  assert.equal(r.c(SEND_SEQ), 1);
  assert.deepEqual(r.delivered(), [0]);
});

test('seq both: send_seq stays on when unsequenced packets are dropped', () => {
  const r = rig({ sendSeq: true, recvSeq: true });
  r.feed([0, null, 1]);
  assert.deepEqual(r.results, [RX_OK, RX_SEQ_REQUIRED, RX_OK]);
  assert.equal(r.c(SEND_SEQ), 1);
});

test('seq both with l2spec none: every packet is dropped', () => {
  const r = rig({ sendSeq: true, recvSeq: true, l2specType: 'none' });
  r.feed([null, null, null]);
  assert.deepEqual(r.results, [RX_SEQ_REQUIRED, RX_SEQ_REQUIRED, RX_SEQ_REQUIRED]);
  assert.equal(r.c(RX_SEQ_DISCARDS), 3);
  assert.equal(r.c(RX_PACKETS), 0);
});

test('seq send with l2spec none: nothing to put on the wire; rx turns send_seq off', () => {
  const r = rig({ sendSeq: true, l2specType: 'none' });
  const buf = Buffer.alloc(64, 0xa5);
  const p = encap(r.session, buf, 32, 14);
  assert.equal(p, 24);
  assert.equal(r.session.ns, 0);
  r.feed([null]);
  assert.equal(r.c(SEND_SEQ), 0);
  assert.equal(r.c(RX_PACKETS), 1);
});

test('sequence checking runs for S=1 packets whatever recv_seq says (seq none)', () => {
  const r = rig();
  r.feed([0, 0]);
  assert.deepEqual(r.results, [RX_OK, RX_OUT_OF_WINDOW]);
});

// ---- reorder mode (reorder_timeout > 0: netlink only) ----

test('reorder mode: in-order packets delivered in place; early ones queued (copied) and released in order', () => {
  const r = rig({ reorderTimeoutMs: 100 });
  r.feed([0]);
  assert.equal(r.results[0], RX_OK);
  assert.notEqual(r.sink.got[0].buf, r.session.queue.data, 'delivered zero-copy');
  r.feed([2, 3]);
  assert.deepEqual(r.results.slice(1), [RX_QUEUED, RX_QUEUED]);
  assert.equal(r.session.queue.count, 2);
  assert.deepEqual(r.delivered(), [0]);
  r.feed([1]); // inserted ahead of 2: rx_oos_packets
  assert.deepEqual(r.delivered(), [0, 1, 2, 3]);
  assert.equal(r.sink.got[2].buf, r.session.queue.data, 'released from the queue copy');
  assert.equal(r.c(RX_OOS_PACKETS), 1);
  assert.equal(r.c(RX_ERRORS), 0);
  assert.equal(r.c(RX_PACKETS), 4);
  assert.equal(r.session.nr, 4);
  assert.equal(r.session.queue.count, 0);
});

test('reorder mode: a packet waiting for a lost one expires when now > arrival + timeout, then the queue resyncs', () => {
  const r = rig({ reorderTimeoutMs: 100 });
  r.feed([0, 1, 2, 3]); // nr = 4; 4 is lost
  r.setNow(1000);
  r.feed([6]); // queued, expires 1100
  r.setNow(1100);
  r.feed([7]); // 6 not expired (1100 > 1100 is false); queued
  assert.deepEqual(r.delivered(), [0, 1, 2, 3]);
  assert.equal(r.session.queue.count, 2);
  r.setNow(1101);
  r.feed([8]); // 6 expires: rx_seq_discards+1, rx_errors+1, resync to 7; 7 and 8 released
  assert.deepEqual(r.delivered(), [0, 1, 2, 3, 7, 8]);
  assert.equal(r.c(RX_SEQ_DISCARDS), 1);
  assert.equal(r.c(RX_ERRORS), 1);
  assert.equal(r.session.nr, 9);
});

test('reorder mode: unsequenced packets queue behind sequenced ones; expire() drives the queue without traffic', () => {
  const r = rig({ reorderTimeoutMs: 50 });
  r.feed([0]); // nr = 1
  r.feed([3, null]);
  assert.deepEqual(r.results, [RX_OK, RX_QUEUED, RX_QUEUED]);
  assert.equal(r.session.queue.count, 2);
  assert.equal(expire(r.session, 50, r.sink), 0, 'nothing expired yet');
  // at 51 the packet with ns=3 expires; the unsequenced one was queued at the same time and expires too
  assert.equal(expire(r.session, 51, r.sink), 0);
  assert.equal(r.c(RX_SEQ_DISCARDS), 2);
  assert.equal(r.session.queue.count, 0);
  assert.equal(r.session.reorderSkip, 1);
});

test('reorder mode: unsequenced packet released after the sequenced packet ahead of it', () => {
  const r = rig({ reorderTimeoutMs: 50 });
  r.feed([0, 2, null]);
  assert.equal(r.session.queue.count, 2);
  r.feed([1]);
  assert.deepEqual(r.delivered(), [0, 1, 2, 0xdead]);
  assert.equal(r.c(RX_OOS_PACKETS), 1);
});

test('reorder mode: queue full → RX_QUEUE_FULL counted in rx_errors; delete purges the queue into rx_errors', () => {
  const r = rig({ reorderTimeoutMs: 100 });
  r.feed([0]); // nr = 1
  const arrivals: number[] = [];
  for (let i = 0; i < REORDER_CAPACITY; i++) arrivals.push(2 + i);
  r.feed(arrivals);
  assert.equal(r.session.queue.count, REORDER_CAPACITY);
  r.feed([500]);
  assert.equal(RX_RESULT_NAMES[r.results[r.results.length - 1]], 'QUEUE_FULL');
  assert.equal(r.results[r.results.length - 1], RX_QUEUE_FULL);
  assert.equal(r.c(RX_ERRORS), 1);
  r.table.removeSession(1, r.session.sessionId);
  assert.equal(r.c(RX_ERRORS), 1 + REORDER_CAPACITY);
  assert.equal(r.session.queue.count, 0);
  assert.equal(r.c(RX_BYTES) > 0, true);
});

/**
 * The pump's impairment stage over the in-memory link (the production packet path):
 * exact sequence-rule consequences of loss, duplication and reordering, the delay and
 * rate schedule, and the per-session counters of what the impairment lost or dropped.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IMPAIR_DROPS, IMPAIR_LOST, RX_ERRORS, RX_PACKETS, RX_SEQ_DISCARDS, TX_PACKETS } from '../../../src/engine/stats.js';
import { impairFromJson, type ImpairConfig } from '../../../src/engine/impair.js';
import { MemBatch, MemLink } from '../../../src/io/mem/link.js';
import { Impairer, QUEUE_SLOTS } from '../../../src/io/stages/impair.js';
import { Prng } from '../../../src/io/stages/prng.js';

const cfg = (o: Record<string, number>): ImpairConfig => impairFromJson(o);

/** A → B over a clean in-memory link, sessions sequenced both ways; `sent` = ns of every packet that reached B's socket. */
function rig() {
  const link = MemLink.pair();
  link.now = 1000;
  link.a.addTunnel({ tunnelId: 1, peerTunnelId: 2, local: '192.0.2.1', remote: '192.0.2.2', udpSport: 5000, udpDport: 6000 });
  link.b.addTunnel({ tunnelId: 2, peerTunnelId: 1, local: '192.0.2.2', remote: '192.0.2.1', udpSport: 6000, udpDport: 5000 });
  const tx = link.a.addSession({ tunnelId: 1, sessionId: 100, peerSessionId: 200, sendSeq: true, recvSeq: true });
  const rx = link.b.addSession({ tunnelId: 2, sessionId: 200, peerSessionId: 100, sendSeq: true, recvSeq: true });
  const sent: number[] = [];
  const transmit = link.transmit.bind(link);
  link.transmit = (from, t, buf, off, len) => {
    sent.push(buf.readUInt32BE(off + 8) & 0xffffff);
    transmit(from, t, buf, off, len);
  };
  const frame = Buffer.alloc(60, 0x5a);
  const tick = (): void => {
    link.a.tick();
    link.flush();
  };
  /** Sends `n` 60-byte frames, `step` ms apart. */
  const send = (n: number, step = 1): void => {
    for (let k = 0; k < n; k++) {
      link.a.send(1, 100, frame);
      link.advance(step);
      tick();
    }
  };
  const impair = (c: ImpairConfig | null): void => link.a.setImpairment(1, 100, c);
  return { link, tx, rx, send, sent, impair, advance: (ms: number) => (link.advance(ms), tick()), waitMs: () => link.a.pump.waitMs(-1, link.now) };
}

describe('impairment stage over the in-memory link', () => {
  it('Prng is reproducible per seed and uniform enough', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const xs = Array.from({ length: 1000 }, () => a.next());
    assert.deepEqual(xs, Array.from({ length: 1000 }, () => b.next()));
    assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, () => c.next()));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(mean > 0.45 && mean < 0.55, `mean ${mean}`);
    assert.ok(xs.every((x) => x >= 0 && x < 1));
  });

  it('one lost packet costs 5 sequence discards at the receiver; losses are counted per session', () => {
    const r = rig();
    // Seed 51 at 4% loses 12 packets, each more than 6 apart and not near the end.
    r.impair(cfg({ loss: 4, seed: 51 }));
    r.send(400);
    r.impair(null);
    const lostNs: number[] = [];
    for (let ns = 0, i = 0; ns < 400; ns++) {
      if (r.sent[i] === ns) i++;
      else lostNs.push(ns);
    }
    assert.ok(lostNs.length >= 5, `some losses: ${lostNs.length}`);
    const gaps = lostNs.filter((ns, i) => i === 0 || ns - lostNs[i - 1] > 6).length;
    const isolated = lostNs.every((ns, i) => i === 0 || ns - lostNs[i - 1] > 6);
    const st = r.rx.stats;
    const b = r.rx.base;
    const discards = st[b + RX_SEQ_DISCARDS];
    assert.ok(isolated, 'seed 51 gives isolated losses (a fixed seed makes this deterministic)');
    assert.equal(discards, 5 * gaps);
    assert.equal(st[b + RX_ERRORS], discards, 'rx_errors == rx_seq_discards');
    assert.equal(st[b + RX_PACKETS] + discards + lostNs.length, 400, 'every packet delivered, discarded or lost');
    assert.equal(r.tx.stats[r.tx.base + TX_PACKETS], 400, 'lost packets count as sent');
    assert.equal(r.tx.stats[r.tx.base + IMPAIR_LOST], lostNs.length, 'tx_impair_lost counts exactly the lost ones');
    assert.equal(r.tx.stats[r.tx.base + IMPAIR_DROPS], 0);
  });

  it('same seed, same losses', () => {
    const a = rig();
    a.impair(cfg({ loss: 10, seed: 5 }));
    a.send(200);
    const b = rig();
    b.impair(cfg({ loss: 10, seed: 5 }));
    b.send(200);
    assert.deepEqual(a.sent, b.sent);
    assert.ok(a.sent.length < 200 && a.sent.length > 150);
  });

  it('duplicates are out of window: rx_errors only', () => {
    const r = rig();
    r.impair(cfg({ duplicate: 20, seed: 1 }));
    r.send(200);
    r.impair(null);
    const dups = r.sent.length - 200;
    assert.ok(dups > 20, `dups ${dups}`);
    assert.equal(r.rx.stats[r.rx.base + RX_ERRORS], dups, 'rx_errors');
    assert.equal(r.rx.stats[r.rx.base + RX_SEQ_DISCARDS], 0, 'rx_seq_discards');
    assert.equal(r.rx.stats[r.rx.base + RX_PACKETS], 200, 'every original delivered');
  });

  it('reorder by distance 8: held packets arrive after the resync and are out of window', () => {
    const r = rig();
    r.impair(cfg({ reorder: 3, distance: 8, seed: 9 }));
    r.send(400);
    r.advance(1000);
    r.impair(null);
    assert.equal(r.sent.length, 400, 'nothing lost');
    const late = r.sent.filter((ns, i) => i > 0 && ns < r.sent[i - 1]).length;
    assert.ok(late > 3, `reordered ${late}`);
    const st = r.rx.stats;
    const b = r.rx.base;
    assert.ok(st[b + RX_SEQ_DISCARDS] > 0, 'seq discards');
    assert.ok(st[b + RX_ERRORS] > st[b + RX_SEQ_DISCARDS], 'plus out-of-window errors');
  });

  it('delay and rate hold packets until due; the wait loop sleeps exactly that long', () => {
    const r = rig();
    r.impair(cfg({ delay: 50, seed: 1 }));
    r.send(1, 0);
    assert.equal(r.sent.length, 0, 'held');
    assert.equal(r.waitMs(), 50);
    r.advance(49);
    assert.equal(r.sent.length, 0);
    r.advance(1);
    assert.equal(r.sent.length, 1);
    assert.equal(r.waitMs(), -1, 'nothing held: wait forever again');
    // 1 Mbit/s: a 76-byte packet takes 0.608 ms; 100 of them about 61 ms.
    r.impair(cfg({ rate: 1_000_000 }));
    r.send(100, 0);
    assert.ok(r.sent.length <= 2, `rate-limited: ${String(r.sent.length)}`);
    r.advance(30);
    assert.ok(r.sent.length > 40 && r.sent.length < 60, `half way: ${String(r.sent.length)}`);
    r.advance(40);
    assert.equal(r.sent.length, 101);
    r.impair(null);
  });

  it('a full impairment queue drops packets and counts them per session (tx_impair_drops)', () => {
    const r = rig();
    r.impair(cfg({ delay: 1000, seed: 1 }));
    const extra = 37;
    r.send(QUEUE_SLOTS + extra, 0);
    assert.equal(r.sent.length, 0, 'all held by the delay');
    assert.equal(r.tx.stats[r.tx.base + IMPAIR_DROPS], extra, 'queue overflow counted');
    assert.equal(r.tx.stats[r.tx.base + IMPAIR_LOST], 0);
    r.advance(1000);
    assert.equal(r.sent.length, QUEUE_SLOTS, 'the queued ones leave when due');
  });
});

/** One unsequenced session on side A of an in-memory link, for an Impairer driven by hand; `sent()` counts packets put on the link. */
function oneSession() {
  const link = MemLink.pair();
  link.a.addTunnel({ tunnelId: 1, peerTunnelId: 2, local: '192.0.2.1', remote: '192.0.2.2', udpSport: 5000, udpDport: 6000 });
  const s = link.a.addSession({ tunnelId: 1, sessionId: 100, peerSessionId: 200 });
  let n = 0;
  link.transmit = () => void n++;
  return { s, sent: () => n };
}

describe('the Impairer driven by hand', () => {
  it('an Impairer built with maxSlots never writes the output batch beyond them, and still sends everything', () => {
    // The koffi io worker shares its receive batch with the impairment stage: the slots
    // after BATCH hold coalescing flows, which a release must not overwrite.
    const { s, sent } = oneSession();
    const out = new MemBatch(8, 256);
    out.buf.fill(0xee, 4 * 256); // slots 4..7: someone else's
    const imp = new Impairer(out, 4);
    imp.set(s, cfg({ delay: 10 }));
    const src = new MemBatch(8, 256);
    for (let j = 0; j < 8; j++) {
      src.buf.fill(j, j * 256, j * 256 + 100);
      src.off[j] = 0;
      src.len[j] = 100;
    }
    imp.take(s, src, 0, 8, 1000);
    assert.equal(sent(), 0, 'delayed');
    imp.flushAll(1020);
    assert.equal(sent(), 8, 'all eight released, four per send');
    assert.ok(out.buf.subarray(4 * 256).every((x) => x === 0xee), 'slots 4..7 untouched');
  });

  it('a delayed packet leaves when its delay has passed to the fraction of a millisecond, not before', () => {
    const { s, sent } = oneSession();
    const imp = new Impairer(new MemBatch(4, 256));
    imp.set(s, cfg({ delay: 40 }));
    const src = new MemBatch(1, 256);
    src.len[0] = 100;
    imp.take(s, src, 0, 1, 1000.7);
    assert.equal(imp.waitMs(-1, 1000.7), 40);
    imp.flushAll(1040.6);
    assert.equal(sent(), 0, '39.9 ms after it was read');
    assert.equal(imp.waitMs(-1, 1040.6), 1, 'the wait rounds up');
    imp.flushAll(1040.7);
    assert.equal(sent(), 1, '40 ms after');
  });
});

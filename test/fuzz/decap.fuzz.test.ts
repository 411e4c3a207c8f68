/**
 * Fuzz the receive path: >= 1,000,000 random and mutated packets through
 * decapUdp / decapIp over several session configurations (cookies 0/4/8,
 * l2spec none/default, every seq mode, reorder mode, a session id shared by
 * two UDP tunnels). Checks, per packet:
 * - no exception escapes, the result is a known RxResult;
 * - every packet is either delivered or counted: (all drop counters + all
 *   rx_packets + packets waiting in reorder queues) grows by exactly 1;
 * - nothing outside [off, off+len) is read: a twin engine gets the same packet
 *   surrounded by a different sentinel and must behave identically;
 * - nothing is written: the receive buffer is unchanged afterwards;
 * - frames handed to the sink lie inside the packet (or a reorder queue).
 * Seeded (FUZZ_SEED to change), so failures reproduce.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Table } from '../../src/engine/table.js';
import { decapIp, decapUdp, purge, RX_RESULT_NAMES, type RxSink } from '../../src/engine/decap.js';
import type { Session } from '../../src/engine/session.js';
import type { Tunnel } from '../../src/engine/tunnel.js';
import { SESSION_DEFAULTS, TUNNEL_DEFAULTS, type SessionConfig } from '../../src/engine/config.js';
import * as C from '../../src/engine/stats.js';
import { Rng } from '../../src/io/mem/fault-injector.js';

const PACKETS = Number(process.env.FUZZ_PACKETS ?? 1_000_000);
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
const OFF = 24;
const BUF_LEN = 2048;

interface SessionSpec extends Partial<SessionConfig> {
  tunnelId: number;
  sessionId: number;
}

const TUNNELS = [
  { tunnelId: 1, encap: 'udp' as const, udpSport: 1 },
  { tunnelId: 2, encap: 'udp' as const, udpSport: 2 },
  { tunnelId: 3, encap: 'ip' as const, udpSport: 0 },
];
const SESSIONS: SessionSpec[] = [
  { tunnelId: 1, sessionId: 1 },
  { tunnelId: 1, sessionId: 2, peerCookie: 'deadbeef', recvSeq: true },
  { tunnelId: 1, sessionId: 3, peerCookie: '0102030405060708', l2specType: 'none' },
  { tunnelId: 1, sessionId: 4, peerCookie: 'a1b2c3d4', reorderTimeoutMs: 30 },
  { tunnelId: 1, sessionId: 5, sendSeq: true },
  { tunnelId: 2, sessionId: 5, peerCookie: 'cafef00d' }, // same id as 1/5: ambiguous from other sockets
  { tunnelId: 2, sessionId: 6, l2specType: 'none', recvSeq: true },
  { tunnelId: 3, sessionId: 10, l2specType: 'none' },
  { tunnelId: 3, sessionId: 11, peerCookie: '0102030405060708', sendSeq: true, recvSeq: true },
  { tunnelId: 3, sessionId: 12, peerCookie: 'deadbeef', reorderTimeoutMs: 20 },
  { tunnelId: 3, sessionId: 13, peerCookie: 'ffffffff' },
];

class CheckSink implements RxSink {
  delivered = 0;
  lastLen = -1;
  lastSum = 0;
  pktBuf: Buffer | null = null;
  pktOff = 0;
  pktLen = 0;
  bad = '';
  deliver(s: Session, buf: Buffer, off: number, len: number): void {
    this.delivered++;
    if (buf === this.pktBuf) {
      if (off < this.pktOff || off + len > this.pktOff + this.pktLen) this.bad = `frame [${off}, ${off + len}) outside packet [${this.pktOff}, ${this.pktOff + this.pktLen})`;
    } else if (buf !== s.queue.data || off + len > buf.length) {
      this.bad = 'frame from an unexpected buffer';
    }
    if (len < 14) this.bad = `frame of ${len} bytes reached the sink`;
    this.lastLen = len;
    let sum = 0;
    for (let i = 0; i < len; i += 7) sum = (sum * 31 + buf[off + i]) | 0;
    this.lastSum = sum;
  }
}

interface Engine {
  table: Table;
  tunnels: Tunnel[];
  sessions: Session[];
  stats: Float64Array;
  sink: CheckSink;
  buf: Buffer;
}

function build(): Engine {
  const n = 1 + TUNNELS.length + SESSIONS.length;
  const stats = new Float64Array(n * C.SLOT_SIZE);
  const table = new Table(stats.subarray(0, C.SLOT_SIZE));
  let slot = 1;
  const tunnels = TUNNELS.map((t) =>
    table.addTunnel({ ...TUNNEL_DEFAULTS, peerTunnelId: t.tunnelId, family: 4, local: '10.0.0.1', remote: '10.0.0.2', udpDport: 9, ...t }, stats, C.SLOT_SIZE * slot++),
  );
  const sessions = SESSIONS.map((s) => table.addSession({ ...SESSION_DEFAULTS, peerSessionId: 1, ...s }, stats, C.SLOT_SIZE * slot++));
  return { table, tunnels, sessions, stats, sink: new CheckSink(), buf: Buffer.alloc(BUF_LEN) };
}

/** Everything that accounts for a packet: drop counters, rx_packets, queued packets. */
function accounted(e: Engine): number {
  const st = e.stats;
  let sum = st[C.RX_SHORT] + st[C.RX_CONTROL] + st[C.RX_NO_SESSION];
  for (const t of e.tunnels) sum += st[t.base + C.RX_INVALID] + st[t.base + C.RX_NO_SESSION] + st[t.base + C.RX_CONTROL] + st[t.base + C.RX_SHORT];
  for (const s of e.sessions) sum += st[s.base + C.RX_PACKETS] + st[s.base + C.RX_ERRORS] + s.queue.count;
  return sum;
}

/** Valid-looking packet for a random session, written at `p` of `out`; returns its length. */
function valid(rng: Rng, out: Buffer, p: number, spec: SessionSpec, encap: 'udp' | 'ip', ns: number): number {
  const start = p;
  if (encap === 'udp') {
    out[p++] = 0;
    out[p++] = 3;
    out[p++] = 0;
    out[p++] = 0;
  }
  out.writeUInt32BE(spec.sessionId, p);
  p += 4;
  const ck = spec.peerCookie ?? '';
  for (let i = 0; i < ck.length; i += 2) out[p++] = parseInt(ck.slice(i, i + 2), 16);
  if ((spec.l2specType ?? 'default') === 'default') {
    const seq = rng.int(4) !== 0;
    out.writeUInt32BE(seq ? (0x40000000 | ns) >>> 0 : 0, p);
    p += 4;
  }
  const frameLen = rng.int(8) === 0 ? rng.int(20) : 14 + rng.int(200);
  rng.fill(out, p, frameLen);
  return p + frameLen - start;
}

test(`fuzz decapUdp/decapIp with ${PACKETS} random and mutated packets`, () => {
  const rng = new Rng(SEED);
  const A = build();
  const B = build();
  const pkt = Buffer.alloc(BUF_LEN - 2 * OFF);
  const before = Buffer.alloc(BUF_LEN);
  const results = new Array<number>(RX_RESULT_NAMES.length).fill(0);
  const nsBySession = new Map<number, number>();
  let now = 0;
  let accA = accounted(A);
  const t0 = Date.now();

  for (let n = 0; n < PACKETS; n++) {
    if (n % 16 === 0) now += 1;
    // ---- make a packet ----
    const kind = rng.int(10);
    const ti = rng.int(3);
    const encap = TUNNELS[ti].encap;
    let len: number;
    if (kind < 2) {
      len = rng.int(kind === 0 ? 24 : 160);
      rng.fill(pkt, 0, len);
    } else {
      const candidates = SESSIONS.filter((s) => (TUNNELS.find((t) => t.tunnelId === s.tunnelId)!.encap === encap));
      const spec = candidates[rng.int(candidates.length)];
      const key = spec.tunnelId * 100 + spec.sessionId;
      let ns = nsBySession.get(key) ?? 0;
      ns = rng.int(10) === 0 ? rng.u32() & 0xffffff : (ns + (rng.int(6) === 0 ? rng.int(8) : 1)) & 0xffffff;
      nsBySession.set(key, ns);
      len = valid(rng, pkt, 0, spec, encap, ns);
      if (kind >= 6) {
        // mutate: bit flips, truncation, extension, session id / flags tweaks
        const m = rng.int(6);
        if (m === 0) for (let k = 1 + rng.int(3); k > 0; k--) pkt[rng.int(len || 1)] ^= 1 << rng.int(8);
        else if (m === 1) len = rng.int(len + 1);
        else if (m === 2) {
          const extra = rng.int(30);
          rng.fill(pkt, len, extra);
          len += extra;
        } else if (m === 3 && len >= 8) pkt[encap === 'udp' ? 7 : 3] ^= 1 + rng.int(15);
        else if (m === 4 && len >= 2) pkt[encap === 'udp' ? 1 : 0] = rng.u32() & 0xff;
        else if (len > 0) pkt[0] |= 0x80;
      }
    }
    // ---- run it through both engines with different surroundings ----
    A.buf.fill(0x00);
    B.buf.fill(0xff);
    pkt.copy(A.buf, OFF, 0, len);
    pkt.copy(B.buf, OFF, 0, len);
    A.buf.copy(before);
    A.sink.pktBuf = A.buf;
    A.sink.pktOff = OFF;
    A.sink.pktLen = len;
    B.sink.pktBuf = B.buf;
    B.sink.pktOff = OFF;
    B.sink.pktLen = len;
    const dA = A.sink.delivered;
    const dB = B.sink.delivered;
    let rA: number;
    let rB: number;
    if (encap === 'udp') {
      rA = decapUdp(A.table, A.tunnels[ti], A.buf, OFF, len, now, A.sink);
      rB = decapUdp(B.table, B.tunnels[ti], B.buf, OFF, len, now, B.sink);
    } else {
      rA = decapIp(A.table, A.buf, OFF, len, now, A.sink);
      rB = decapIp(B.table, B.buf, OFF, len, now, B.sink);
    }
    // ---- checks ----
    if (!(rA >= 0 && rA < RX_RESULT_NAMES.length && Number.isInteger(rA))) assert.fail(`unknown RxResult ${rA}`);
    results[rA]++;
    if (rA !== rB || A.sink.delivered - dA !== B.sink.delivered - dB || A.sink.lastLen !== B.sink.lastLen || A.sink.lastSum !== B.sink.lastSum) {
      assert.fail(`packet ${n} (${encap}, ${pkt.subarray(0, len).toString('hex')}): result depends on bytes outside [off, off+len): ${RX_RESULT_NAMES[rA]} vs ${RX_RESULT_NAMES[rB]}`);
    }
    if (!A.buf.equals(before)) assert.fail(`packet ${n}: decap wrote into the receive buffer`);
    if (A.sink.bad) assert.fail(`packet ${n}: ${A.sink.bad}`);
    const acc = accounted(A);
    if (acc !== accA + 1) assert.fail(`packet ${n} (${encap}, ${RX_RESULT_NAMES[rA]}, ${pkt.subarray(0, len).toString('hex')}): accounted grew by ${acc - accA}`);
    accA = acc;
  }

  // ---- totals ----
  assert.deepEqual(A.stats, B.stats, 'twin engines diverged');
  assert.equal(accounted(A), PACKETS);
  let rxPackets = 0;
  let devDrops = 0;
  for (const s of A.sessions) {
    rxPackets += A.stats[s.base + C.RX_PACKETS];
    devDrops += A.stats[s.base + C.RX_DEV_DROPS];
  }
  assert.equal(A.sink.delivered, rxPackets - devDrops, 'delivered = rx_packets - dev drops');
  // tunnel slots never carry session-only counters
  for (const t of A.tunnels) {
    for (const i of [C.RX_ERRORS, C.RX_SEQ_DISCARDS, C.RX_OOS_PACKETS, C.RX_COOKIE_DISCARDS]) assert.equal(A.stats[t.base + i], 0);
  }
  // purge on delete: what was queued moves to rx_errors, the total is unchanged
  for (const s of A.sessions) purge(s);
  assert.equal(accounted(A), PACKETS);
  // every outcome occurred
  const summary = RX_RESULT_NAMES.map((name, i) => `${name}=${results[i]}`).join(' ');
  for (let i = 0; i < results.length; i++) assert.ok(results[i] > 0, `no ${RX_RESULT_NAMES[i]} in ${summary}`);
  console.log(`fuzz: ${PACKETS} packets in ${Date.now() - t0} ms: ${summary}`);
});

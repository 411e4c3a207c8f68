/** Shared helpers for engine tests: build tunnels/sessions, collect frames, compare whole counter slots. */
import assert from 'node:assert/strict';
import type { SessionConfig, TunnelConfig } from '../../../src/engine/config.js';
import { SESSION_DEFAULTS, TUNNEL_DEFAULTS } from '../../../src/engine/config.js';
import { COUNTER_SLOTS, newSlot } from '../../../src/engine/stats.js';
import { Table } from '../../../src/engine/table.js';
import type { Session } from '../../../src/engine/session.js';
import type { Tunnel } from '../../../src/engine/tunnel.js';
import type { RxSink } from '../../../src/engine/decap.js';

export function tunnelCfg(over: Partial<TunnelConfig> = {}): TunnelConfig {
  return {
    ...TUNNEL_DEFAULTS,
    tunnelId: 1,
    peerTunnelId: 1,
    family: 4,
    local: '192.0.2.1',
    remote: '192.0.2.2',
    udpSport: 5000,
    udpDport: 6000,
    ...over,
  };
}

export function sessionCfg(over: Partial<SessionConfig> = {}): SessionConfig {
  return { ...SESSION_DEFAULTS, tunnelId: 1, sessionId: 2000, peerSessionId: 2000, ...over };
}

/** A table with one tunnel and one session (each with its own standalone slot). */
export function setup(t: Partial<TunnelConfig> = {}, s: Partial<SessionConfig> = {}): { table: Table; tunnel: Tunnel; session: Session } {
  const table = new Table();
  const tunnel = table.addTunnel(tunnelCfg(t), newSlot(), 0);
  const session = table.addSession(sessionCfg({ tunnelId: tunnel.tunnelId, ...s }), newSlot(), 0);
  return { table, tunnel, session };
}

export interface Delivered {
  session: Session;
  frame: Buffer;
  off: number;
  len: number;
  buf: Buffer;
}

/** RxSink that records copies of delivered frames. */
export class Collect implements RxSink {
  readonly got: Delivered[] = [];
  deliver(session: Session, buf: Buffer, off: number, len: number): void {
    this.got.push({ session, frame: Buffer.from(buf.subarray(off, off + len)), off, len, buf });
  }
  clear(): void {
    this.got.length = 0;
  }
}

/** The slot's counters and flags as a plain array (the sequence shadows after them are not counters). */
export function slot(x: { stats: Float64Array; base: number }): number[] {
  return Array.from(x.stats.subarray(x.base, x.base + COUNTER_SLOTS));
}

/** Slot with the given indices set (others 0). */
export function expected(values: Record<number, number>): number[] {
  const out = new Array<number>(COUNTER_SLOTS).fill(0);
  for (const [k, v] of Object.entries(values)) out[Number(k)] = v;
  return out;
}

/** Assert the whole slot equals `values` (everything else 0). */
export function assertSlot(x: { stats: Float64Array; base: number }, values: Record<number, number>, msg?: string): void {
  assert.deepEqual(slot(x), expected(values), msg);
}

/** Build a sequenced/unsequenced L2TP data packet by hand for tests (UDP or IP header, cookie, sublayer, frame). */
export function packet(opts: { encap: 'udp' | 'ip'; sid: number; cookie?: string; l2spec?: boolean; ns?: number | null; frame?: Buffer; flags?: number }): Buffer {
  const parts: Buffer[] = [];
  if (opts.encap === 'udp') {
    const h = Buffer.alloc(4);
    h.writeUInt16BE(opts.flags ?? 0x0003, 0);
    parts.push(h);
  }
  const sid = Buffer.alloc(4);
  sid.writeUInt32BE(opts.sid >>> 0, 0);
  parts.push(sid);
  if (opts.cookie) parts.push(Buffer.from(opts.cookie, 'hex'));
  if (opts.l2spec ?? true) {
    const w = Buffer.alloc(4);
    if (opts.ns !== null && opts.ns !== undefined) w.writeUInt32BE((0x40000000 | opts.ns) >>> 0, 0);
    parts.push(w);
  }
  parts.push(opts.frame ?? frameN(0));
  return Buffer.concat(parts);
}

/** A 60-byte Ethernet frame carrying `n` in its payload (distinct frames for ordering checks). */
export function frameN(n: number, len = 60): Buffer {
  const f = Buffer.alloc(len);
  f.fill(0xff, 0, Math.min(6, len));
  if (len >= 14) {
    f.set([2, 0, 0, 0, 0, 1], 6);
    f.writeUInt16BE(0x88b5, 12);
  }
  if (len >= 18) f.writeUInt32BE(n >>> 0, 14);
  return f;
}

/** The number carried by frameN. */
export const numOf = (f: Buffer): number => f.readUInt32BE(14);

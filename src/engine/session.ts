/**
 * A session's run-time state (the kernel's struct l2tp_session): cookies
 * preconverted to bytes, header layouts, tx state (`ns`), rx state (`nr`,
 * `nrOos`, `nrOosCount`, `reorderSkip`, reorder queue).
 *
 * Ownership: tx fields (`ns`) belong to the thread that transmits for the
 * session, rx fields to the thread that receives for its tunnel. `send_seq`
 * lives in `stats[base + SEND_SEQ]` because both use it: rx flips it (LAC
 * rule, docs/protocol.md §2.5), tx reads it. `recv_seq` lives in
 * `stats[base + RECV_SEQ]`.
 */
import type { SessionConfig } from './config.js';
import { NR_SHADOW, NS_SHADOW, RECV_SEQ, RX_ERRORS, SEND_SEQ } from './stats.js';
import { SEQ_MASK } from './seq.js';
import { txLayout, rxLayout, type SessionLayout } from './layout.js';
import { ReorderQueue, REORDER_CAPACITY } from './reorder.js';
import type { Tunnel } from './tunnel.js';
import { hexToBytes } from '../wire/hex.js';

export class Session {
  readonly cfg: SessionConfig;
  readonly tunnel: Tunnel;
  readonly stats: Float64Array;
  readonly base: number;
  readonly sessionId: number;
  /** Written into every header we send. */
  readonly peerSessionId: number;
  /** Bytes we send (`cookie`). */
  readonly cookie: Buffer;
  /** Bytes we expect (`peer_cookie`); empty = not checked. */
  readonly peerCookie: Buffer;
  readonly tx: SessionLayout;
  readonly rx: SessionLayout;
  /** Hot-path copies of layout fields. */
  readonly txHdrLen: number;
  readonly txL2specOff: number;
  readonly rxCookieLen: number;
  readonly rxL2specOff: number;
  readonly rxHdrLen: number;
  readonly reorderTimeoutMs: number;
  /** The tunnel is encap udp (hot-path copy). */
  readonly txUdp: boolean;
  /** Cookies as big-endian u32 words (bytes 0..3, 4..7; 0 where absent) for word-wise write/compare. */
  readonly cookieW0: number;
  readonly cookieW1: number;
  readonly peerCookieW0: number;
  readonly peerCookieW1: number;

  // ---- tx state ----
  /** Next sequence number to send (24-bit). */
  ns = 0;

  // ---- rx state (docs/protocol.md §2.1 initial values) ----
  /** Next expected sequence number. */
  nr = 0;
  /** Last out-of-sequence ns seen. */
  nrOos = 0;
  /** Run length of consecutive OOS ns values (not reset after a resync). */
  nrOosCount = 0;
  /** 1 = accept the next sequenced packet as the new nr. */
  reorderSkip = 1;
  /** Reorder mode only has capacity; see reorder.ts. */
  readonly queue: ReorderQueue;

  /** The I/O layer's handle (e.g. the TAP fd); -1 when none. */
  dev = -1;
  /** Free for the backend. */
  ctx: unknown = null;

  constructor(cfg: SessionConfig, tunnel: Tunnel, stats: Float64Array, base: number) {
    this.cfg = cfg;
    this.tunnel = tunnel;
    this.stats = stats;
    this.base = base;
    this.sessionId = cfg.sessionId >>> 0;
    this.peerSessionId = cfg.peerSessionId >>> 0;
    this.cookie = hexToBytes(cfg.cookie ?? '');
    this.peerCookie = hexToBytes(cfg.peerCookie ?? '');
    if (this.cookie.length > 8 || this.peerCookie.length > 8) throw new RangeError('cookie longer than 8 bytes');
    const l2spec = cfg.l2specType ?? 'default';
    this.tx = txLayout(tunnel.cfg.encap, this.cookie.length, l2spec);
    this.rx = rxLayout(tunnel.cfg.encap, this.peerCookie.length, l2spec);
    this.txHdrLen = this.tx.hdrLen;
    this.txL2specOff = this.tx.l2specOff;
    this.rxCookieLen = this.rx.cookieLen;
    this.rxL2specOff = this.rx.l2specOff;
    this.rxHdrLen = this.rx.hdrLen;
    this.reorderTimeoutMs = cfg.reorderTimeoutMs > 0 ? cfg.reorderTimeoutMs : 0;
    this.txUdp = tunnel.isUdp;
    this.cookieW0 = word(this.cookie, 0);
    this.cookieW1 = word(this.cookie, 4);
    this.peerCookieW0 = word(this.peerCookie, 0);
    this.peerCookieW1 = word(this.peerCookie, 4);
    this.queue = new ReorderQueue(this.reorderTimeoutMs > 0 ? REORDER_CAPACITY : 0);
    stats[base + SEND_SEQ] = cfg.sendSeq ? 1 : 0;
    stats[base + RECV_SEQ] = cfg.recvSeq ? 1 : 0;
    this.ns = (cfg.initialNs ?? 0) & SEQ_MASK;
    this.nr = (cfg.initialNr ?? 0) & SEQ_MASK;
    stats[base + NS_SHADOW] = this.ns;
    stats[base + NR_SHADOW] = this.nr;
  }

  /** Current send_seq (the LAC rule may have flipped the configured value). */
  get sendSeq(): boolean {
    return this.stats[this.base + SEND_SEQ] !== 0;
  }

  get recvSeq(): boolean {
    return this.stats[this.base + RECV_SEQ] !== 0;
  }
}

/** Big-endian u32 of b[at, at+4), missing bytes read as 0. */
function word(b: Buffer, at: number): number {
  let w = 0;
  for (let i = 0; i < 4; i++) w = w * 256 + (at + i < b.length ? b[at + i] : 0);
  return w;
}

/** On session delete: drop every queued packet, counting each in rx_errors. Returns the count. */
export function purge(s: Session): number {
  const n = s.queue.clear();
  s.stats[s.base + RX_ERRORS] += n;
  return n;
}

/**
 * Transmit path (SPEC.md §3.1, the kernel's l2tp_build_l2tpv3_header):
 * the header is written in place in the headroom in front of the frame.
 * No allocation, no throwing.
 */
import type { Session } from './session.js';
import { NS_SHADOW, SEND_SEQ, TX_BYTES, TX_ERRORS, TX_PACKETS } from './stats.js';
import { SEQ_MASK } from './seq.js';

/**
 * Write `s`'s L2TP header into buf[frameOff - hdrLen, frameOff) and return
 * the packet's start offset (packet length = hdrLen + frameLen). With the
 * default sublayer and send_seq on, writes `0x40000000 | ns` and advances
 * `ns` (even if the send later fails, like the kernel); otherwise writes 0.
 * Returns -1 (writing nothing) when there is not enough headroom.
 * Does not count: call countTx / countTxError once the send result is known.
 */
export function encap(s: Session, buf: Buffer, frameOff: number, frameLen: number): number {
  const start = frameOff - s.txHdrLen;
  if (start < 0 || frameLen < 0 || frameOff + frameLen > buf.length) return -1;
  let p = start;
  if (s.txUdp) {
    // flags/version 0x0003 (T = 0, Ver = 3), Reserved 0
    buf[p] = 0;
    buf[p + 1] = 3;
    buf[p + 2] = 0;
    buf[p + 3] = 0;
    p += 4;
  }
  const sid = s.peerSessionId;
  buf[p] = sid >>> 24;
  buf[p + 1] = (sid >>> 16) & 0xff;
  buf[p + 2] = (sid >>> 8) & 0xff;
  buf[p + 3] = sid & 0xff;
  p += 4;
  const cl = s.cookie.length;
  if (cl === 4 || cl === 8) {
    let w = s.cookieW0;
    buf[p] = w >>> 24;
    buf[p + 1] = (w >>> 16) & 0xff;
    buf[p + 2] = (w >>> 8) & 0xff;
    buf[p + 3] = w & 0xff;
    if (cl === 8) {
      w = s.cookieW1;
      buf[p + 4] = w >>> 24;
      buf[p + 5] = (w >>> 16) & 0xff;
      buf[p + 6] = (w >>> 8) & 0xff;
      buf[p + 7] = w & 0xff;
    }
  } else {
    const cookie = s.cookie;
    for (let i = 0; i < cl; i++) buf[p + i] = cookie[i];
  }
  if (s.txL2specOff >= 0) {
    p = start + s.txL2specOff;
    if (s.stats[s.base + SEND_SEQ] !== 0) {
      const ns = s.ns;
      buf[p] = 0x40;
      buf[p + 1] = ns >>> 16;
      buf[p + 2] = (ns >>> 8) & 0xff;
      buf[p + 3] = ns & 0xff;
      s.ns = (ns + 1) & SEQ_MASK;
      s.stats[s.base + NS_SHADOW] = s.ns;
    } else {
      buf[p] = 0;
      buf[p + 1] = 0;
      buf[p + 2] = 0;
      buf[p + 3] = 0;
    }
  }
  return start;
}

/** Count a successful send of `pktLen` bytes (L2TP header + frame) on the session and its tunnel. */
export function countTx(s: Session, pktLen: number): void {
  const st = s.stats;
  const b = s.base;
  st[b + TX_PACKETS]++;
  st[b + TX_BYTES] += pktLen;
  const t = s.tunnel;
  const ts = t.stats;
  const tb = t.base;
  ts[tb + TX_PACKETS]++;
  ts[tb + TX_BYTES] += pktLen;
}

/** Count a failed send on the session and its tunnel. */
export function countTxError(s: Session): void {
  s.stats[s.base + TX_ERRORS]++;
  const t = s.tunnel;
  t.stats[t.base + TX_ERRORS]++;
}

/**
 * Transmit path (docs/protocol.md §3.1, the kernel's l2tp_build_l2tpv3_header):
 * the header is written in place in the headroom in front of the frame,
 * through wire/'s allocation-free writers.
 * No allocation, no throwing.
 */
import type { Session } from './session.js';
import { NS_SHADOW, SEND_SEQ, TX_BYTES, TX_ERRORS, TX_PACKETS } from './stats.js';
import { SEQ_MASK } from './seq.js';
import { L2TP_IP_HDR_LEN, L2TP_UDP_HDR_LEN, writeIpHeader, writeU32, writeUdpHeader } from '../wire/l2tpv3.js';
import { writeSublayer } from '../wire/sublayer.js';

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
    writeUdpHeader(buf, p, s.peerSessionId);
    p += L2TP_UDP_HDR_LEN;
  } else {
    writeIpHeader(buf, p, s.peerSessionId);
    p += L2TP_IP_HDR_LEN;
  }
  const cl = s.cookie.length;
  if (cl === 4 || cl === 8) {
    writeU32(buf, p, s.cookieW0);
    if (cl === 8) writeU32(buf, p + 4, s.cookieW1);
  } else {
    const cookie = s.cookie;
    for (let i = 0; i < cl; i++) buf[p + i] = cookie[i]!;
  }
  if (s.txL2specOff >= 0) {
    if (s.stats[s.base + SEND_SEQ] !== 0) {
      const ns = s.ns;
      writeSublayer(buf, start + s.txL2specOff, true, ns);
      s.ns = (ns + 1) & SEQ_MASK;
      s.stats[s.base + NS_SHADOW] = s.ns;
    } else {
      writeSublayer(buf, start + s.txL2specOff, false, 0);
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

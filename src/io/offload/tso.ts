/**
 * Transmit side of the offload path: frames read from a TAP opened with IFF_VNET_HDR and
 * TUNSETOFFLOAD CSUM|TSO4|TSO6.
 *
 * - `completeCsum`: a non-GSO frame flagged NEEDS_CSUM carries a partial checksum (the
 *   pseudo-header sum) at csum_start + csum_offset; finish it like the kernel's
 *   skb_checksum_help (sum from csum_start to the end, 0 → 0xffff).
 * - `parseSuper` + `writeSegment`: a TCP super-frame (gso_type TCPV4/TCPV6, gso_size = MSS)
 *   becomes ceil(payload / MSS) ordinary Ethernet frames: headers copied and rewritten per
 *   segment (IPv4 total length, id + k, header checksum; IPv6 payload length; TCP sequence
 *   + k·MSS; CWR only on the first, FIN/PSH only on the last) and the full TCP checksum
 *   computed, so the frames are ordinary frames on the wire. Segment k is computed from k
 *   alone, so a caller can stop when its output batch is full, flush, and go on.
 *
 * No allocation, no throwing: malformed input returns a negative TSO_* code.
 */
import { csumAdd, finish, fold } from './csum.js';
import { GSO_ECN, GSO_TCPV4, GSO_TCPV6, VnetHdr } from './vnet.js';

export const TSO_OK = 0;
/** Frame too short for its headers, or headers inconsistent with the frame. */
export const TSO_MALFORMED = -1;
/** gso_type not TCPV4/TCPV6, or the ethertype / IP version does not match it. */
export const TSO_BAD_TYPE = -2;
/** gso_size 0, or a segment would not fit the output slot. */
export const TSO_BAD_SIZE = -3;
/** IPv6 with extension headers, IPv4 not TCP, or a fragment. */
export const TSO_UNSUPPORTED = -4;

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const TCP_CWR = 0x80;
const TCP_PSH = 0x08;
const TCP_FIN = 0x01;

/** A parsed TCP super-frame; one reusable instance per worker. */
export class SuperFrame {
  /** Offsets relative to the frame start. */
  l3Off = 0;
  l4Off = 0;
  /** Ethernet (+ VLAN) + IP + TCP header bytes copied into every segment. */
  hdrLen = 0;
  payLen = 0;
  mss = 0;
  nseg = 0;
  v6 = false;
  ihl = 0;
  ipId = 0;
  seq = 0;
  flags = 0;
  /** Sums of the constant parts (folded): pseudo-header addresses + protocol + TCP header without seq/flags/checksum. */
  tcpBase = 0;
  /** IPv4 header without total length, id and checksum. */
  ipBase = 0;
}

function w16(buf: Uint8Array, o: number): number {
  return (buf[o] << 8) | buf[o + 1];
}

/** Ones'-complement "minus x" for a 16-bit x. */
function neg(x: number): number {
  return ~x & 0xffff;
}

/** L3 offset after Ethernet and up to two VLAN tags; sets `etherType`; -1 when too short. */
let etherType = 0;
function l3Of(buf: Uint8Array, off: number, len: number): number {
  let p = 12;
  for (let i = 0; i < 3; i++) {
    if (p + 2 > len) return -1;
    const t = (buf[off + p] << 8) | buf[off + p + 1];
    if (t === ETH_P_8021Q || t === ETH_P_8021AD) {
      p += 4;
      continue;
    }
    etherType = t;
    return p + 2;
  }
  return -1;
}

/**
 * Parses the super-frame buf[off, off+len) described by `h` into `sf`. `maxSeg` is the
 * largest segment (Ethernet frame) the caller can take. Returns TSO_OK or a TSO_* code.
 */
export function parseSuper(buf: Uint8Array, off: number, len: number, h: VnetHdr, maxSeg: number, sf: SuperFrame): number {
  const gt = h.gsoType & ~GSO_ECN;
  if (gt !== GSO_TCPV4 && gt !== GSO_TCPV6) return TSO_BAD_TYPE;
  if (h.gsoSize === 0) return TSO_BAD_SIZE;
  const l3 = l3Of(buf, off, len);
  if (l3 < 0) return TSO_MALFORMED;
  let l4: number;
  if (gt === GSO_TCPV4) {
    if (etherType !== ETH_P_IP || l3 + 20 > len) return TSO_BAD_TYPE;
    const vi = buf[off + l3];
    if (vi >> 4 !== 4) return TSO_BAD_TYPE;
    const ihl = (vi & 15) << 2;
    if (ihl < 20 || l3 + ihl > len) return TSO_MALFORMED;
    if (buf[off + l3 + 9] !== 6) return TSO_UNSUPPORTED;
    if ((((buf[off + l3 + 6] << 8) | buf[off + l3 + 7]) & 0x3fff) !== 0) return TSO_UNSUPPORTED;
    sf.v6 = false;
    sf.ihl = ihl;
    sf.ipId = (buf[off + l3 + 4] << 8) | buf[off + l3 + 5];
    l4 = l3 + ihl;
  } else {
    if (etherType !== ETH_P_IPV6 || l3 + 40 > len) return TSO_BAD_TYPE;
    if (buf[off + l3] >> 4 !== 6) return TSO_BAD_TYPE;
    if (buf[off + l3 + 6] !== 6) return TSO_UNSUPPORTED;
    sf.v6 = true;
    sf.ihl = 40;
    sf.ipId = 0;
    l4 = l3 + 40;
  }
  if (l4 + 20 > len) return TSO_MALFORMED;
  const doff = (buf[off + l4 + 12] >> 4) << 2;
  if (doff < 20 || l4 + doff > len) return TSO_MALFORMED;
  const hdrLen = l4 + doff;
  const payLen = len - hdrLen;
  if (payLen <= 0) return TSO_MALFORMED;
  const mss = h.gsoSize;
  if (hdrLen + (mss < payLen ? mss : payLen) > maxSeg) return TSO_BAD_SIZE;
  sf.l3Off = l3;
  sf.l4Off = l4;
  sf.hdrLen = hdrLen;
  sf.payLen = payLen;
  sf.mss = mss;
  sf.nseg = Math.ceil(payLen / mss);
  sf.seq = ((buf[off + l4 + 4] << 24) | (buf[off + l4 + 5] << 16) | (buf[off + l4 + 6] << 8) | buf[off + l4 + 7]) >>> 0;
  sf.flags = buf[off + l4 + 13]!;
  const t = off + l4;
  let base = csumAdd(buf, t, doff, 0) + neg(w16(buf, t + 4)) + neg(w16(buf, t + 6)) + neg(sf.flags) + neg(w16(buf, t + 16));
  base += sf.v6 ? csumAdd(buf, off + l3 + 8, 32, 6) : csumAdd(buf, off + l3 + 12, 8, 6);
  sf.tcpBase = fold(base);
  if (!sf.v6) {
    const i = off + l3;
    sf.ipBase = fold(csumAdd(buf, i, sf.ihl, 0) + neg(w16(buf, i + 2)) + neg(w16(buf, i + 4)) + neg(w16(buf, i + 10)));
  }
  return TSO_OK;
}

/**
 * Writes segment k (0 ≤ k < sf.nseg) of the super-frame at src[srcOff] as a complete
 * Ethernet frame at dst[dstOff]; returns its length. `dst` may be `src` (then the copies
 * allocate nothing) if the ranges do not overlap.
 */
export function writeSegment(sf: SuperFrame, src: Buffer, srcOff: number, k: number, dst: Buffer, dstOff: number): number {
  const hl = sf.hdrLen;
  const pOff = k * sf.mss;
  const rest = sf.payLen - pOff;
  const plen = rest < sf.mss ? rest : sf.mss;
  const payAt = srcOff + hl + pOff;
  if (src === dst) {
    // one slab (the worker's): copyWithin allocates nothing (Buffer.copy makes a view)
    dst.copyWithin(dstOff, srcOff, srcOff + hl);
    dst.copyWithin(dstOff + hl, payAt, payAt + plen);
  } else {
    src.copy(dst, dstOff, srcOff, srcOff + hl);
    src.copy(dst, dstOff + hl, payAt, payAt + plen);
  }
  const l3 = dstOff + sf.l3Off;
  const l4 = dstOff + sf.l4Off;
  const tcpLen = hl - sf.l4Off + plen;
  if (!sf.v6) {
    const tot = sf.ihl + tcpLen;
    dst[l3 + 2] = tot >>> 8;
    dst[l3 + 3] = tot & 0xff;
    const id = (sf.ipId + k) & 0xffff;
    dst[l3 + 4] = id >>> 8;
    dst[l3 + 5] = id & 0xff;
    const ic = finish(sf.ipBase + tot + id);
    dst[l3 + 10] = ic >>> 8;
    dst[l3 + 11] = ic & 0xff;
  } else {
    dst[l3 + 4] = tcpLen >>> 8;
    dst[l3 + 5] = tcpLen & 0xff;
  }
  const seq = (sf.seq + pOff) >>> 0;
  dst[l4 + 4] = seq >>> 24;
  dst[l4 + 5] = (seq >>> 16) & 0xff;
  dst[l4 + 6] = (seq >>> 8) & 0xff;
  dst[l4 + 7] = seq & 0xff;
  let fl = sf.flags;
  if (k > 0) fl &= ~TCP_CWR;
  if (k < sf.nseg - 1) fl &= ~(TCP_FIN | TCP_PSH);
  dst[l4 + 13] = fl;
  const sum = csumAdd(src, payAt, plen, sf.tcpBase + tcpLen + (seq >>> 16) + (seq & 0xffff) + fl);
  const c = finish(sum);
  dst[l4 + 16] = c >>> 8;
  dst[l4 + 17] = c & 0xff;
  return hl + plen;
}

/**
 * Completes a partial checksum in place (NEEDS_CSUM on a non-GSO frame): the 16-bit field at
 * csumStart + csumOffset holds the pseudo-header sum; the result is the checksum of
 * buf[off + csumStart, off + len). Returns false (changing nothing) when the offsets do not
 * fit the frame.
 */
export function completeCsum(buf: Uint8Array, off: number, len: number, csumStart: number, csumOffset: number): boolean {
  const at = csumStart + csumOffset;
  if (csumStart >= len || at + 2 > len) return false;
  let c = finish(csumAdd(buf, off + csumStart, len - csumStart, 0));
  if (c === 0) c = 0xffff;
  buf[off + at] = c >>> 8;
  buf[off + at + 1] = c & 0xff;
  return true;
}

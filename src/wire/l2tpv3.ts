/**
 * L2TPv3 data message session headers (RFC 3931 §4.1; docs/protocol.md §1.2–1.4).
 *
 * Over UDP, RFC 3931 §4.1.2.1:
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |T|x|x|x|x|x|x|x|x|x|x|x|  Ver  |             Reserved          |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                 Session ID                                    |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |               Cookie (optional, maximum 64 bits)...
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *                                                                  |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Over IP (protocol 115), RFC 3931 §4.1.1.1 — no flags word:
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                 Session ID                                    |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |               Cookie (optional, maximum 64 bits)...
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * RFC 3931 §4.1.1.2: session id 0 over IP is reserved for control messages.
 * Over UDP the T bit marks control. Linux sends the UDP flags word as exactly
 * 0x0003 0x0000 and reads only T, Ver and the session id (the other x bits and
 * Reserved are ignored, as the RFC requires).
 *
 * The cookie (0, 4 or 8 bytes; an opaque byte string) and the L2-specific
 * sublayer that follow are present by configuration only (sublayer.ts).
 */

import { L2SPEC_LEN } from './sublayer.js';

export type WireEncap = 'udp' | 'ip';

/** IPv4 protocol / IPv6 next header for L2TPv3 over IP. */
export const L2TP_IP_PROTO = 115;

/** UDP session header: 16-bit flags/version, 16 reserved, 32-bit session id. */
export const L2TP_UDP_HDR_LEN = 8;
export const L2TP_UDP_FLAGS = 0;
export const L2TP_UDP_RESERVED = 2;
export const L2TP_UDP_SESSION = 4;
/** IP session header: the 32-bit session id only. */
export const L2TP_IP_HDR_LEN = 4;
export const L2TP_IP_SESSION = 0;

/** T bit (control message) of the UDP flags word. */
export const L2TP_FLAG_T = 0x8000;
/** Ver field of the UDP flags word. */
export const L2TP_VER_MASK = 0x000f;
export const L2TP_VERSION_2 = 2;
export const L2TP_VERSION_3 = 3;
/** The first 32-bit word of every data packet Linux (and QEMU) sends over UDP. */
export const L2TP_UDP_DATA_WORD = 0x0003_0000;
/** Session id 0 over IP = control message. */
export const L2TP_IP_CONTROL_SESSION = 0;

/** Linux drops UDP L2TP payloads shorter than this before any lookup (docs/protocol.md §2.2 step 2). */
export const L2TP_UDP_MIN_LEN = 14;
/** Cookie length limit (RFC 3931 §4.1: at most 64 bits). */
export const L2TP_MAX_COOKIE_LEN = 8;

// ---- accessors: unvalidated; call a check* function first ----

/** 16-bit flags/version word of a UDP header. */
export const udpFlagsAt = (b: Buffer, off: number): number => (b[off] << 8) | b[off + 1];
/** T bit of a UDP header. */
export const udpIsControlAt = (b: Buffer, off: number): boolean => (b[off] & 0x80) !== 0;
/** Ver field of a UDP header. */
export const udpVersionAt = (b: Buffer, off: number): number => b[off + 1] & L2TP_VER_MASK;
/** Session id of a UDP header. */
export const udpSessionIdAt = (b: Buffer, off: number): number => u32At(b, off + L2TP_UDP_SESSION);
/** Session id of an IP header (0 = control). */
export const ipSessionIdAt = (b: Buffer, off: number): number => u32At(b, off);

/** Big-endian u32 at `off` without bounds checks (callers validated the length). */
export function u32At(b: Buffer, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}

/** Big-endian u32 store without bounds checks. */
export function writeU32(b: Buffer, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/** Write the 8-byte UDP data header (0x00030000, session id). Caller sized the buffer. */
export function writeUdpHeader(b: Buffer, off: number, sessionId: number): void {
  b[off] = 0;
  b[off + 1] = L2TP_VERSION_3;
  b[off + 2] = 0;
  b[off + 3] = 0;
  writeU32(b, off + 4, sessionId);
}

/** Write the 4-byte IP data header (session id). Caller sized the buffer. */
export function writeIpHeader(b: Buffer, off: number, sessionId: number): void {
  writeU32(b, off, sessionId);
}

/** Session header length without cookie and sublayer. */
export const sessionHeaderLen = (encap: WireEncap): number => (encap === 'udp' ? L2TP_UDP_HDR_LEN : L2TP_IP_HDR_LEN);

/** Full L2TP header length: session header + cookie + (L2SPEC_LEN if default sublayer). */
export const l2tpHeaderLen = (encap: WireEncap, cookieLen: number, l2spec: boolean): number =>
  sessionHeaderLen(encap) + cookieLen + (l2spec ? L2SPEC_LEN : 0);

/** Offset of the cookie from the start of the L2TP header (right after the session header). */
export const cookieOffset = (encap: WireEncap): number => sessionHeaderLen(encap);

/** Offset of the default L2-specific sublayer from the start of the L2TP header. */
export const l2specOffset = (encap: WireEncap, cookieLen: number): number => sessionHeaderLen(encap) + cookieLen;

/** Outer header lengths around an L2TP header: UDP, IPv4 (no options), IPv6, and the inner Ethernet header. */
/** Where the optional fields of one direction's L2TP header are (the kernel's hdr_len, QEMU's offsets). */
export interface HeaderLayout {
  /** Whole L2TP header: session header + cookie + sublayer. The frame starts here. */
  readonly hdrLen: number;
  /** Offset of the cookie from the start of the L2TP header. */
  readonly cookieOff: number;
  readonly cookieLen: number;
  /** Offset of the default sublayer, -1 = l2spec none. */
  readonly l2specOff: number;
}

/** The layout of a header with `cookieLen` cookie bytes, with or without the default sublayer. */
export function headerLayout(encap: WireEncap, cookieLen: number, l2spec: boolean): HeaderLayout {
  return {
    hdrLen: l2tpHeaderLen(encap, cookieLen, l2spec),
    cookieOff: cookieOffset(encap),
    cookieLen,
    l2specOff: l2spec ? l2specOffset(encap, cookieLen) : -1,
  };
}

export const UDP_HDR_LEN = 8;
export const IPV4_HDR_LEN = 20;
export const IPV6_HDR_LEN = 40;
export const ETH_HDR_LEN = 14;

/**
 * Bytes a tunnel adds to an Ethernet frame's payload (the kernel's l2tp_eth MTU overhead):
 * outer IP + UDP (encap udp) + L2TP header + the inner Ethernet header. The session MTU on an
 * underlay of MTU M is M minus this.
 */
export function tunnelOverhead(encap: WireEncap, family: 4 | 6, cookieLen: number, l2spec: boolean): number {
  return (family === 6 ? IPV6_HDR_LEN : IPV4_HDR_LEN) + (encap === 'udp' ? UDP_HDR_LEN : 0) + l2tpHeaderLen(encap, cookieLen, l2spec) + ETH_HDR_LEN;
}

/**
 * Length check, done once before any accessor (smoltcp's check_len):
 * returns true when [off, off+len) lies inside `b` and holds the full header
 * for this configuration. After it succeeds no accessor reads out of bounds.
 */
export function checkHeader(
  b: Buffer,
  off: number,
  len: number,
  encap: WireEncap,
  cookieLen: number,
  l2spec: boolean,
): boolean {
  return off >= 0 && len >= 0 && off + len <= b.length && len >= l2tpHeaderLen(encap, cookieLen, l2spec);
}

// ---- Repr: control plane, tests, debugging (allocates) ----

/** One parsed data-message header. Field presence comes from the configuration. */
export interface L2tpv3Repr {
  encap: WireEncap;
  /** UDP only: the 16-bit flags/version word (0x0003 for data). 0 for IP. */
  flags: number;
  sessionId: number;
  /** Cookie bytes (0, 4 or 8), copied. */
  cookie: Buffer;
  /** null = l2spec none; otherwise the default sublayer. */
  l2spec: { sequenced: boolean; ns: number } | null;
}

/** Thrown by L2tpv3Repr.parse/emit (control plane only; the hot path never throws). */
export class WireError extends Error {
  constructor(
    readonly code: 'TRUNCATED' | 'CONTROL' | 'BAD_VERSION' | 'BAD_FIELD',
    message: string,
  ) {
    super(message);
    this.name = 'WireError';
  }
}

export const L2tpv3Repr = {
  headerLen(r: L2tpv3Repr): number {
    return l2tpHeaderLen(r.encap, r.cookie.length, r.l2spec !== null);
  },

  /**
   * Parse a data header at `off` (len = bytes available from off). Control
   * messages (T bit over UDP, session id 0 over IP) and UDP versions other
   * than 3 are rejected with WireError; the payload is at off + headerLen.
   */
  parse(b: Buffer, off: number, len: number, encap: WireEncap, cookieLen: number, l2spec: boolean): L2tpv3Repr {
    if (!checkHeader(b, off, len, encap, cookieLen, l2spec)) throw new WireError('TRUNCATED', 'l2tpv3: truncated header');
    let p = off;
    let flags = 0;
    if (encap === 'udp') {
      flags = udpFlagsAt(b, p);
      if (flags & L2TP_FLAG_T) throw new WireError('CONTROL', 'l2tpv3: control message (T bit)');
      if ((flags & L2TP_VER_MASK) !== L2TP_VERSION_3) throw new WireError('BAD_VERSION', `l2tpv3: version ${flags & L2TP_VER_MASK}`);
      p += 4;
    }
    const sessionId = u32At(b, p);
    p += 4;
    if (encap === 'ip' && sessionId === L2TP_IP_CONTROL_SESSION) throw new WireError('CONTROL', 'l2tpv3: control message (session id 0)');
    const cookie = Buffer.from(b.subarray(p, p + cookieLen));
    p += cookieLen;
    let sub: L2tpv3Repr['l2spec'] = null;
    if (l2spec) sub = { sequenced: (b[p] & 0x40) !== 0, ns: ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0 };
    return { encap, flags, sessionId, cookie, l2spec: sub };
  },

  /**
   * Write exactly headerLen(r) bytes at `off` and return that count. UDP
   * Reserved is written 0; an unsequenced sublayer is written as 0 (Linux).
   */
  emit(r: L2tpv3Repr, b: Buffer, off: number): number {
    const n = L2tpv3Repr.headerLen(r);
    if (r.cookie.length > L2TP_MAX_COOKIE_LEN) throw new WireError('BAD_FIELD', 'l2tpv3: cookie longer than 8 bytes');
    if (off < 0 || off + n > b.length) throw new WireError('TRUNCATED', 'l2tpv3: buffer too small');
    let p = off;
    if (r.encap === 'udp') {
      b[p] = (r.flags >>> 8) & 0xff;
      b[p + 1] = r.flags & 0xff;
      b[p + 2] = 0;
      b[p + 3] = 0;
      p += 4;
    }
    writeU32(b, p, r.sessionId >>> 0);
    p += 4;
    for (let i = 0; i < r.cookie.length; i++) b[p + i] = r.cookie[i];
    p += r.cookie.length;
    if (r.l2spec) {
      const w = r.l2spec.sequenced ? (0x4000_0000 | (r.l2spec.ns & 0xff_ffff)) >>> 0 : 0;
      writeU32(b, p, w);
      p += 4;
    }
    return p - off;
  },
};

/** One-line description of a header, for test failures and debug traces. */
export function formatL2tp(b: Buffer, off: number, len: number, encap: WireEncap, cookieLen: number, l2spec: boolean): string {
  try {
    const r = L2tpv3Repr.parse(b, off, len, encap, cookieLen, l2spec);
    const parts = [`L2TPv3/${encap}`, `sid=${r.sessionId}`];
    if (encap === 'udp') parts.push(`flags=0x${r.flags.toString(16).padStart(4, '0')}`);
    if (r.cookie.length) parts.push(`cookie=${r.cookie.toString('hex')}`);
    if (r.l2spec) parts.push(r.l2spec.sequenced ? `ns=${r.l2spec.ns}` : 'S=0');
    parts.push(`payload=${len - L2tpv3Repr.headerLen(r)}`);
    return parts.join(' ');
  } catch (e) {
    return `L2TPv3/${encap} <${(e as Error).message}>`;
  }
}

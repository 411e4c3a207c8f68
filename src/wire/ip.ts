/**
 * Raw-IP receive for L2TPv3 over IP (RFC 3931 §4.1.1; docs/protocol.md §2.3, §6.4).
 *
 * An AF_INET SOCK_RAW socket for protocol 115 delivers the whole IPv4
 * datagram, header included (RFC 791 §3.1):
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |Version|  IHL  |Type of Service|          Total Length         |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |         Identification        |Flags|      Fragment Offset    |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  Time to Live |Protocol = 115 |         Header Checksum       |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                       Source Address                          |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                    Destination Address                        |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                    Options (IHL > 5)                          |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The header is IHL*4 bytes: never assume 20 (QEMU does; IP options exist).
 * An AF_INET6 raw socket delivers no IPv6 header: the L2TP session header is
 * at offset 0 and the source address comes from recvfrom
 * (IPV6_RAW_HDR_LEN = 0). The kernel reassembles fragments before raw delivery.
 */

export const IPV4_MIN_HDR_LEN = 20;
export const IPV4_VER_IHL = 0;
export const IPV4_TOS = 1;
export const IPV4_TOTAL_LEN = 2;
export const IPV4_ID = 4;
export const IPV4_FRAG = 6;
export const IPV4_TTL = 8;
export const IPV4_PROTO = 9;
export const IPV4_CSUM = 10;
export const IPV4_SRC = 12;
export const IPV4_DST = 16;
/** Bytes of IPv6 header an AF_INET6 raw socket delivers: none. */
export const IPV6_RAW_HDR_LEN = 0;
/** L2TPv3 over IP protocol number. */
export const IPPROTO_L2TP = 115;

export const ipv4VersionAt = (b: Buffer, off: number): number => b[off] >>> 4;
/** Header length in bytes (IHL * 4). */
export const ipv4HeaderLenAt = (b: Buffer, off: number): number => (b[off] & 0x0f) << 2;
export const ipv4TotalLenAt = (b: Buffer, off: number): number => (b[off + 2] << 8) | b[off + 3];
export const ipv4ProtoAt = (b: Buffer, off: number): number => b[off + IPV4_PROTO];

/**
 * Validate a raw-socket IPv4 datagram at [off, off+len) carrying protocol
 * 115 and return its header length in bytes (>= 20), or -1 when it is not a
 * well-formed IPv4/115 datagram (version, IHL < 5, header or total length
 * beyond `len`, other protocol). The L2TP payload is
 * [off + hl, off + ipv4PayloadEnd(...)).
 * Never reads outside [off, off+len); never allocates.
 */
export function checkIpv4L2tp(b: Buffer, off: number, len: number): number {
  if (len < IPV4_MIN_HDR_LEN || off < 0 || off + len > b.length) return -1;
  if (b[off] >>> 4 !== 4) return -1;
  const hl = (b[off] & 0x0f) << 2;
  if (hl < IPV4_MIN_HDR_LEN || hl > len) return -1;
  if (b[off + IPV4_PROTO] !== IPPROTO_L2TP) return -1;
  const total = (b[off + 2] << 8) | b[off + 3];
  if (total < hl || total > len) return -1;
  return hl;
}

/** L2TP payload length of a datagram that passed checkIpv4L2tp (trailing bytes beyond Total Length ignored). */
export const ipv4PayloadLen = (b: Buffer, off: number, hl: number): number => ipv4TotalLenAt(b, off) - hl;

/** RFC 1071 ones'-complement sum over [off, off+len), folded (not inverted). */
export function onesSum(b: Uint8Array, off: number, len: number, init = 0): number {
  let sum = init;
  let i = 0;
  for (; i + 1 < len; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  if (i < len) sum += b[off + i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Parsed IPv4 header (control plane, tests). Options are kept as raw bytes. */
export interface Ipv4Repr {
  tos: number;
  totalLen: number;
  id: number;
  /** Flags (3 bits) and fragment offset, as the 16-bit field. */
  frag: number;
  ttl: number;
  proto: number;
  /** Checksum as found by parse; emit computes it. */
  csum: number;
  src: string;
  dst: string;
  options: Buffer;
}

const v4text = (b: Buffer, off: number) => `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;

export const Ipv4Repr = {
  headerLen(r: Ipv4Repr): number {
    return IPV4_MIN_HDR_LEN + r.options.length;
  },
  parse(b: Buffer, off: number, len: number): Ipv4Repr {
    if (len < IPV4_MIN_HDR_LEN || off + len > b.length || b[off] >>> 4 !== 4) throw new RangeError('ipv4: not an IPv4 header');
    const hl = ipv4HeaderLenAt(b, off);
    if (hl < IPV4_MIN_HDR_LEN || hl > len) throw new RangeError('ipv4: bad IHL');
    return {
      tos: b[off + 1],
      totalLen: ipv4TotalLenAt(b, off),
      id: b.readUInt16BE(off + IPV4_ID),
      frag: b.readUInt16BE(off + IPV4_FRAG),
      ttl: b[off + IPV4_TTL],
      proto: b[off + IPV4_PROTO],
      csum: b.readUInt16BE(off + IPV4_CSUM),
      src: v4text(b, off + IPV4_SRC),
      dst: v4text(b, off + IPV4_DST),
      options: Buffer.from(b.subarray(off + IPV4_MIN_HDR_LEN, off + hl)),
    };
  },
  /** Writes headerLen(r) bytes with a freshly computed header checksum; returns the count. */
  emit(r: Ipv4Repr, b: Buffer, off: number): number {
    const hl = Ipv4Repr.headerLen(r);
    if (hl % 4 !== 0 || hl > 60) throw new RangeError('ipv4: options must pad to a multiple of 4, at most 40 bytes');
    if (off < 0 || off + hl > b.length) throw new RangeError('ipv4: buffer too small');
    b[off] = 0x40 | (hl >>> 2);
    b[off + 1] = r.tos;
    b.writeUInt16BE(r.totalLen, off + 2);
    b.writeUInt16BE(r.id, off + IPV4_ID);
    b.writeUInt16BE(r.frag, off + IPV4_FRAG);
    b[off + IPV4_TTL] = r.ttl;
    b[off + IPV4_PROTO] = r.proto;
    b.writeUInt16BE(0, off + IPV4_CSUM);
    const put = (s: string, at: number) => {
      const p = s.split('.').map(Number);
      if (p.length !== 4 || p.some((x) => !(x >= 0 && x <= 255))) throw new RangeError(`ipv4: bad address ${s}`);
      for (let i = 0; i < 4; i++) b[at + i] = p[i];
    };
    put(r.src, off + IPV4_SRC);
    put(r.dst, off + IPV4_DST);
    r.options.copy(b, off + IPV4_MIN_HDR_LEN);
    b.writeUInt16BE(~onesSum(b, off, hl) & 0xffff, off + IPV4_CSUM);
    return hl;
  },
};

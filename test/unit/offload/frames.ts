/**
 * Test helpers: build Ethernet/IPv4/IPv6/TCP frames and super-frames, and an independent
 * (byte-at-a-time) Internet checksum to check the offload code against.
 */

/** Reference checksum: plain big-endian 16-bit ones'-complement sum, byte by byte. */
export function refSum(bytes: Uint8Array, init = 0): number {
  let s = init;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i] << 8) + (i + 1 < bytes.length ? bytes[i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

export interface TcpFrameOpts {
  v6?: boolean;
  vlan?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  id?: number;
  ttl?: number;
  tos?: number;
  window?: number;
  options?: number[];
  payload: Buffer;
  /** Fill the TCP checksum: 'full' (valid), 'pseudo' (partial, like a TSO frame), 'bad'. */
  csum?: 'full' | 'pseudo' | 'bad';
  srcPort?: number;
  dstPort?: number;
  src4?: number[];
  dst4?: number[];
  /** IPv4 total length field override (super-frames carry the whole length). */
  df?: boolean;
}

export const MAC_A = [0x02, 0, 0, 0, 0, 0xa];
export const MAC_B = [0x02, 0, 0, 0, 0, 0xb];
const SRC6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/** A complete Ethernet frame carrying IPv4 or IPv6 + TCP. */
export function tcpFrame(o: TcpFrameOpts): Buffer {
  const opts = o.options ?? [];
  const tcpHl = 20 + opts.length;
  if (tcpHl % 4 !== 0) throw new Error('options must pad to 4');
  const ipHl = o.v6 ? 40 : 20;
  const l2 = 14 + (o.vlan !== undefined ? 4 : 0);
  const tcpLen = tcpHl + o.payload.length;
  const b = Buffer.alloc(l2 + ipHl + tcpLen);
  b.set(MAC_B, 0);
  b.set(MAC_A, 6);
  let p = 12;
  if (o.vlan !== undefined) {
    b.writeUInt16BE(0x8100, 12);
    b.writeUInt16BE(o.vlan, 14);
    p = 16;
  }
  b.writeUInt16BE(o.v6 ? 0x86dd : 0x0800, p);
  const l3 = l2;
  if (!o.v6) {
    b[l3] = 0x45;
    b[l3 + 1] = o.tos ?? 0;
    b.writeUInt16BE(Math.min(65535, ipHl + tcpLen), l3 + 2);
    b.writeUInt16BE(o.id ?? 0x1234, l3 + 4);
    b.writeUInt16BE(o.df === false ? 0 : 0x4000, l3 + 6);
    b[l3 + 8] = o.ttl ?? 64;
    b[l3 + 9] = 6;
    b.set(o.src4 ?? [10, 0, 0, 1], l3 + 12);
    b.set(o.dst4 ?? [10, 0, 0, 2], l3 + 16);
    b.writeUInt16BE(~refSum(b.subarray(l3, l3 + 20)) & 0xffff, l3 + 10);
  } else {
    b.writeUInt32BE(0x60000000 | ((o.tos ?? 0) << 20), l3);
    b.writeUInt16BE(Math.min(65535, tcpLen), l3 + 4);
    b[l3 + 6] = 6;
    b[l3 + 7] = o.ttl ?? 64;
    b.set(SRC6, l3 + 8);
    b.set(DST6, l3 + 24);
  }
  const l4 = l3 + ipHl;
  b.writeUInt16BE(o.srcPort ?? 40000, l4);
  b.writeUInt16BE(o.dstPort ?? 5201, l4 + 2);
  b.writeUInt32BE((o.seq ?? 1000) >>> 0, l4 + 4);
  b.writeUInt32BE((o.ack ?? 777) >>> 0, l4 + 8);
  b[l4 + 12] = (tcpHl / 4) << 4;
  b[l4 + 13] = o.flags ?? 0x10;
  b.writeUInt16BE(o.window ?? 502, l4 + 14);
  b.set(opts, l4 + 20);
  o.payload.copy(b, l4 + tcpHl);
  const ps = pseudoRef(b, l3, !!o.v6, tcpLen);
  const mode = o.csum ?? 'full';
  if (mode === 'pseudo') b.writeUInt16BE(ps, l4 + 16);
  else {
    const c = ~refSum(b.subarray(l4), ps) & 0xffff;
    b.writeUInt16BE(mode === 'bad' ? c ^ 0x5a5a : c, l4 + 16);
  }
  return b;
}

export function pseudoRef(b: Buffer, l3: number, v6: boolean, tcpLen: number): number {
  const addrs = v6 ? b.subarray(l3 + 8, l3 + 40) : b.subarray(l3 + 12, l3 + 20);
  return refSum(addrs, 6 + tcpLen);
}

/** Parsed view of a frame for assertions. */
export interface Parsed {
  v6: boolean;
  l3: number;
  l4: number;
  ipLen: number;
  id: number;
  seq: number;
  flags: number;
  payload: Buffer;
  tcpOk: boolean;
  ipOk: boolean;
}

export function parseFrame(b: Buffer): Parsed {
  let l3 = 14;
  let et = b.readUInt16BE(12);
  if (et === 0x8100) {
    et = b.readUInt16BE(16);
    l3 = 18;
  }
  const v6 = et === 0x86dd;
  const ipHl = v6 ? 40 : (b[l3] & 15) * 4;
  const ipLen = v6 ? b.readUInt16BE(l3 + 4) + 40 : b.readUInt16BE(l3 + 2);
  const l4 = l3 + ipHl;
  const tcpHl = (b[l4 + 12] >> 4) * 4;
  const end = l3 + ipLen;
  const tcpLen = end - l4;
  const ps = pseudoRef(b, l3, v6, tcpLen);
  return {
    v6,
    l3,
    l4,
    ipLen,
    id: v6 ? 0 : b.readUInt16BE(l3 + 4),
    seq: b.readUInt32BE(l4 + 4),
    flags: b[l4 + 13],
    payload: b.subarray(l4 + tcpHl, end),
    tcpOk: refSum(b.subarray(l4, end), ps) === 0xffff,
    ipOk: v6 || refSum(b.subarray(l3, l3 + ipHl)) === 0xffff,
  };
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** Timestamp option (NOP NOP TS) as Linux sends it. */
export const TS_OPT = [1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78];

/**
 * Turning captured L2TP packets (src/control/capture.ts) into pcap records
 * and one-line summaries.
 *
 * The daemon captures the L2TP packet only (from the session header on).
 * For an outer capture we rebuild what was on the wire from the tunnel's
 * configuration: an IPv4 or IPv6 header (addresses in the packet's
 * direction), plus a UDP header for encap udp, with correct lengths and
 * checksums; the file's link type is RAW (101), so Wireshark/tshark decode
 * IP → UDP → L2TP (with `-d udp.port==PORT,l2tp` when the port is not 1701)
 * or IP proto 115 → L2TP. An inner capture (`--inner`) holds the Ethernet
 * frames carried by the session (link type EN10MB, 1).
 */
import { addressBytes, formatAddress } from '../wire/address.js';
import { headerLayout, type HeaderLayout } from '../wire/l2tpv3.js';

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;

/** A packet line's payload from the daemon. */
export interface WirePacket {
  t: number;
  dir: 'tx' | 'rx';
  encap: 'udp' | 'ip';
  tunnel_id: number;
  session_id: number;
  data: Buffer;
}

export interface TunnelView {
  tunnel_id: number;
  encap: 'udp' | 'ip';
  local: string;
  remote: string;
  udp_sport: number;
  udp_dport: number;
}

export interface SessionView {
  tunnel_id: number;
  session_id: number;
  cookie: string;
  peer_cookie: string;
  l2spec_type: 'none' | 'default';
}

/** pcap global header (microsecond timestamps, little-endian). */
export function pcapHeader(linktype: number, snaplen = 65535): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(0xa1b2c3d4, 0);
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeInt32LE(0, 8);
  b.writeUInt32LE(0, 12);
  b.writeUInt32LE(snaplen, 16);
  b.writeUInt32LE(linktype, 20);
  return b;
}

/** One pcap record: 16-byte header + data. */
export function pcapRecord(timeMs: number, data: Buffer): Buffer {
  const h = Buffer.alloc(16);
  const sec = Math.floor(timeMs / 1000);
  const usec = Math.min(999999, Math.round((timeMs - sec * 1000) * 1000));
  h.writeUInt32LE(sec >>> 0, 0);
  h.writeUInt32LE(usec, 4);
  h.writeUInt32LE(data.length, 8);
  h.writeUInt32LE(data.length, 12);
  return Buffer.concat([h, data]);
}

/** One's-complement sum of 16-bit words (for checksums). */
function sum16(b: Buffer, off: number, len: number, acc = 0): number {
  let i = off;
  for (; i + 1 < off + len; i += 2) acc += b.readUInt16BE(i);
  if (i < off + len) acc += b[i] << 8;
  return acc;
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >>> 16);
  return ~acc & 0xffff;
}

/** The outer IP (+ UDP) packet as it was on the wire, built from the tunnel's addresses and ports. */
export function outerPacket(p: WirePacket, t: TunnelView): Buffer {
  const tx = p.dir === 'tx';
  const src = addressBytes(tx ? t.local : t.remote);
  const dst = addressBytes(tx ? t.remote : t.local);
  const udp = p.encap === 'udp';
  const l4Len = (udp ? 8 : 0) + p.data.length;
  const proto = udp ? 17 : 115;
  const v4 = src.length === 4;
  const ipLen = v4 ? 20 : 40;
  const b = Buffer.alloc(ipLen + l4Len);
  if (v4) {
    b[0] = 0x45;
    b.writeUInt16BE(Math.min(0xffff, b.length), 2);
    b[8] = 64;
    b[9] = proto;
    src.copy(b, 12);
    dst.copy(b, 16);
    b.writeUInt16BE(fold(sum16(b, 0, 20)), 10);
  } else {
    b.writeUInt32BE(0x60000000, 0);
    b.writeUInt16BE(Math.min(0xffff, l4Len), 4);
    b[6] = proto;
    b[7] = 64;
    src.copy(b, 8);
    dst.copy(b, 24);
  }
  if (udp) {
    const u = ipLen;
    b.writeUInt16BE(tx ? t.udp_sport : t.udp_dport, u);
    b.writeUInt16BE(tx ? t.udp_dport : t.udp_sport, u + 2);
    b.writeUInt16BE(Math.min(0xffff, l4Len), u + 4);
    p.data.copy(b, u + 8);
    // Pseudo-header checksum (RFC 768 / RFC 8200 §8.1).
    let acc = sum16(src, 0, src.length) + sum16(dst, 0, dst.length) + proto + l4Len;
    acc = sum16(b, u, l4Len, acc);
    const c = fold(acc);
    b.writeUInt16BE(c === 0 ? 0xffff : c, u + 6);
  } else {
    p.data.copy(b, ipLen);
  }
  return b;
}

/** Header layout of the packet (tx: our cookie; rx: the peer's cookie length). */
export function layoutOf(p: WirePacket, s: SessionView): HeaderLayout {
  return p.dir === 'tx'
    ? headerLayout(p.encap, s.cookie.length / 2, s.l2spec_type === 'default')
    : headerLayout(p.encap, s.peer_cookie.length / 2, s.l2spec_type === 'default');
}

/** The Ethernet frame inside, or null when the packet is too short for its header. */
export function innerFrame(p: WirePacket, s: SessionView): Buffer | null {
  const l = layoutOf(p, s);
  return p.data.length >= l.hdrLen ? p.data.subarray(l.hdrLen) : null;
}

function mac(b: Buffer, off: number): string {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push(b[off + i].toString(16).padStart(2, '0'));
  return parts.join(':');
}

const IP_PROTO: Readonly<Record<number, string>> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 115: 'L2TP' };

/** `aa:..:01 > bb:..:02, IPv4 10.0.0.1 > 10.0.0.2 ICMP` for an Ethernet frame. */
export function describeFrame(f: Buffer): string {
  if (f.length < 14) return `short frame (${f.length} bytes)`;
  let et = f.readUInt16BE(12);
  let off = 14;
  let vlan = '';
  if (et === 0x8100 && f.length >= 18) {
    vlan = `vlan ${f.readUInt16BE(14) & 0xfff}, `;
    et = f.readUInt16BE(16);
    off = 18;
  }
  let what: string;
  if (et === 0x0800 && f.length >= off + 20) {
    const src = Array.from(f.subarray(off + 12, off + 16)).join('.');
    const dst = Array.from(f.subarray(off + 16, off + 20)).join('.');
    const pr = f[off + 9];
    what = `IPv4 ${src} > ${dst} ${IP_PROTO[pr] ?? `proto ${pr}`}`;
  } else if (et === 0x86dd && f.length >= off + 40) {
    const src = formatAddress(f.subarray(off + 8, off + 24));
    const dst = formatAddress(f.subarray(off + 24, off + 40));
    const nh = f[off + 6];
    what = `IPv6 ${src} > ${dst} ${IP_PROTO[nh] ?? `next header ${nh}`}`;
  } else if (et === 0x0806) {
    what = 'ARP';
  } else {
    what = `ethertype 0x${et.toString(16).padStart(4, '0')}`;
  }
  return `${mac(f, 6)} > ${mac(f, 0)}, ${vlan}${what}`;
}

function clock(timeMs: number): string {
  const d = new Date(Math.floor(timeMs));
  const us = Math.round((timeMs % 1000) * 1000) % 1000000;
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${String(us).padStart(6, '0')}`;
}

/**
 * One summary line:
 * `12:00:00.123456 tx tunnel 1 session 1 seq 5 len 102: 02:..:01 > 02:..:02, IPv4 10.0.0.1 > 10.0.0.2 ICMP`
 * (`len` is the L2TP packet's length; `seq` only when the packet carries one).
 */
/** What one captured packet says, for the summary line and its JSON form. */
export interface PacketSummary {
  time: string; // ISO 8601
  dir: 'tx' | 'rx';
  encap: 'udp' | 'ip';
  tunnel_id: number;
  session_id: number;
  len: number;
  seq?: number;
  /** The carried frame ("unknown session" / "truncated" when it cannot be read). */
  frame: string;
}

export function summarize(p: WirePacket, s: SessionView | undefined): PacketSummary {
  const sum: PacketSummary = { time: new Date(p.t).toISOString(), dir: p.dir, encap: p.encap, tunnel_id: p.tunnel_id, session_id: p.session_id, len: p.data.length, frame: '(unknown session)' };
  if (s === undefined) return sum;
  const l = layoutOf(p, s);
  if (l.l2specOff >= 0 && p.data.length >= l.l2specOff + 4) {
    const w = p.data.readUInt32BE(l.l2specOff);
    if (w & 0x40000000) sum.seq = w & 0xffffff;
  }
  const f = innerFrame(p, s);
  sum.frame = f === null ? 'truncated' : describeFrame(f);
  return { time: sum.time, dir: sum.dir, encap: sum.encap, tunnel_id: sum.tunnel_id, session_id: sum.session_id, ...(sum.seq !== undefined ? { seq: sum.seq } : {}), len: sum.len, frame: sum.frame };
}

export function summaryLine(p: WirePacket, s: SessionView | undefined): string {
  const sum = summarize(p, s);
  const line = `${clock(p.t)} ${p.dir} tunnel ${p.tunnel_id} session ${p.session_id}`;
  if (s === undefined) return `${line} len ${p.data.length}: (unknown session)`;
  return `${line}${sum.seq !== undefined ? ` seq ${sum.seq}` : ''} len ${sum.len}: ${sum.frame}`;
}

/**
 * UDP tunnel sockets shaped like the kernel's L2TP tunnel socket (docs/protocol.md §2.2, §3.2, §3.3,
 * §6.4), plus the sockaddr codecs shared with rawip.ts and batch.ts.
 *
 * Ownership: returned fds belong to the caller (close(2) them). The socket is created in the
 * calling thread's network namespace. Errors are thrown as kernelError (cold path); nothing
 * is left open on a throw. Thread-safe.
 */
import { isIPv4, isIPv6 } from 'node:net';
import {
  libc,
  setIntOpt,
  AF_INET,
  AF_INET6,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_CLOEXEC,
  SOL_SOCKET,
  SO_NO_CHECK,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOL_IP,
  IP_MTU_DISCOVER,
  IP_PMTUDISC_DONT,
  SOL_IPV6,
  IPV6_MTU_DISCOVER,
  IPV6_PMTUDISC_DONT,
  IPV6_V6ONLY,
  SOL_UDP,
  UDP_NO_CHECK6_TX,
  UDP_NO_CHECK6_RX,
  UDP_GRO,
  POLLOUT,
} from './libc.js';
import { EINVAL, EAFNOSUPPORT, throwErrno } from './errno.js';
import { getIfindex } from './netdev.js';
import type { TunnelConfig } from '../../engine/config.js';

export const SOCKADDR_IN_SIZE = 16;
export const SOCKADDR_IN6_SIZE = 28;
/** Bytes reserved per address in batch.ts (≥ sockaddr_in6, 8-aligned). */
export const SOCKADDR_SLOT = 32;
/** Default socket buffer size (bytes) asked for with SO_{RCV,SND}BUFFORCE. */
export const SOCK_BUF_BYTES = 4 * 1024 * 1024;

/** 4 or 16 address bytes for a textual IPv4/IPv6 address (IPv6 may carry `%scope`). Throws EINVAL. */
export function parseAddr(addr: string, family: 4 | 6): { bytes: Buffer; scope: number } {
  let scope = 0;
  let a = addr;
  const pct = a.indexOf('%');
  if (family === 6 && pct >= 0) {
    const z = a.slice(pct + 1);
    a = a.slice(0, pct);
    scope = /^\d+$/.test(z) ? Number(z) : getIfindex(z);
  }
  if (family === 4) {
    if (!isIPv4(a)) throwErrno(EINVAL, `bad IPv4 address "${addr}"`);
    const p = a.split('.');
    return { bytes: Buffer.from(p.map(Number)), scope };
  }
  if (!isIPv6(a)) throwErrno(EINVAL, `bad IPv6 address "${addr}"`);
  return { bytes: ipv6Bytes(a), scope };
}

function ipv6Bytes(a: string): Buffer {
  const out = Buffer.alloc(16);
  let s = a;
  // trailing dotted quad (::ffff:1.2.3.4)
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  let tailWords: number[] = [];
  if (tail.includes('.')) {
    const q = tail.split('.').map(Number);
    tailWords = [(q[0] << 8) | q[1], (q[2] << 8) | q[3]];
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = s.indexOf('::');
  let words: number[];
  if (dbl >= 0) {
    const head = s.slice(0, dbl).split(':').filter((x) => x !== '');
    const rest = s.slice(dbl + 2).split(':').filter((x) => x !== '');
    const fill = 8 - head.length - rest.length;
    words = [...head.map((h) => parseInt(h, 16)), ...new Array<number>(fill).fill(0), ...rest.map((h) => parseInt(h, 16))];
  } else {
    words = s.split(':').map((h) => parseInt(h, 16));
  }
  if (tailWords.length) {
    words[6] = tailWords[0]!;
    words[7] = tailWords[1]!;
  }
  for (let i = 0; i < 8; i++) out.writeUInt16BE(words[i] & 0xffff, i * 2);
  return out;
}

/** Writes a sockaddr_in (16 bytes) at `off`; returns its length. */
export function writeSockaddrIn(buf: Uint8Array, off: number, addr4: Uint8Array, port: number): number {
  buf.fill(0, off, off + SOCKADDR_IN_SIZE);
  buf[off] = AF_INET & 0xff; // sa_family_t, host order (little-endian on x64/arm64)
  buf[off + 1] = AF_INET >> 8;
  buf[off + 2] = (port >> 8) & 0xff;
  buf[off + 3] = port & 0xff;
  buf.set(addr4.subarray(0, 4), off + 4);
  return SOCKADDR_IN_SIZE;
}

/** Writes a sockaddr_in6 (28 bytes) at `off`; returns its length. */
export function writeSockaddrIn6(buf: Uint8Array, off: number, addr16: Uint8Array, port: number, scope = 0): number {
  buf.fill(0, off, off + SOCKADDR_IN6_SIZE);
  buf[off] = AF_INET6 & 0xff;
  buf[off + 1] = AF_INET6 >> 8;
  buf[off + 2] = (port >> 8) & 0xff;
  buf[off + 3] = port & 0xff;
  buf.set(addr16.subarray(0, 16), off + 8);
  buf[off + 24] = scope & 0xff;
  buf[off + 25] = (scope >>> 8) & 0xff;
  buf[off + 26] = (scope >>> 16) & 0xff;
  buf[off + 27] = (scope >>> 24) & 0xff;
  return SOCKADDR_IN6_SIZE;
}

/** Alias of `sockaddr` (worker.ts name). */
export function sockaddrFor(family: 4 | 6, addr: string, port: number): Buffer {
  return sockaddr(family, addr, port);
}

/** A new sockaddr for `addr:port` (cold path). */
export function sockaddr(family: 4 | 6, addr: string, port: number): Buffer {
  const { bytes, scope } = parseAddr(addr, family);
  const b = Buffer.alloc(family === 4 ? SOCKADDR_IN_SIZE : SOCKADDR_IN6_SIZE);
  if (family === 4) writeSockaddrIn(b, 0, bytes, port);
  else writeSockaddrIn6(b, 0, bytes, port, scope);
  return b;
}

/** Decode a sockaddr_in/in6 at `off` (diagnostics, tests). */
export function readSockaddr(buf: Uint8Array, off: number): { family: 4 | 6; addr: string; port: number } | null {
  const fam = buf[off] | (buf[off + 1] << 8);
  const port = (buf[off + 2] << 8) | buf[off + 3];
  if (fam === AF_INET) return { family: 4, addr: `${buf[off + 4]}.${buf[off + 5]}.${buf[off + 6]}.${buf[off + 7]}`, port };
  if (fam === AF_INET6) {
    const w: string[] = [];
    for (let i = 0; i < 8; i++) w.push(((buf[off + 8 + 2 * i] << 8) | buf[off + 9 + 2 * i]).toString(16));
    return { family: 6, addr: compressV6(w), port };
  }
  return null;
}

function compressV6(w: string[]): string {
  // longest run of zeros (length ≥ 2) → '::'
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === '0') j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return w.join(':');
  return `${w.slice(0, best).join(':')}::${w.slice(best + bestLen).join(':')}`;
}

/** `::ffff:a.b.c.d` → 'a.b.c.d', otherwise null. */
export function v4Mapped(addr: string): string | null {
  if (!isIPv6(addr.split('%')[0])) return null;
  const b = ipv6Bytes(addr.split('%')[0]);
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return null;
  if (b[10] !== 0xff || b[11] !== 0xff) return null;
  return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
}

/** Large socket buffers: *BUFFORCE (root, ignores rmem_max) then the capped plain option. */
export function setBigBuffers(fd: number, bytes = SOCK_BUF_BYTES): void {
  if (setIntOpt(fd, SOL_SOCKET, SO_RCVBUFFORCE, bytes) < 0) setIntOpt(fd, SOL_SOCKET, SO_RCVBUF, bytes);
  if (setIntOpt(fd, SOL_SOCKET, SO_SNDBUFFORCE, bytes) < 0) setIntOpt(fd, SOL_SOCKET, SO_SNDBUF, bytes);
}

export interface UdpTunnelSocketOptions {
  family: 4 | 6;
  local: string;
  sport: number;
  remote: string;
  dport: number;
  /** IPv4: false = checksum 0 (the kernel's default); true or undefined = real checksums (engine/config.ts sendsUdpChecksums). */
  udpCsum?: boolean;
  /** IPv6: send checksums (default true). false → zero checksum (UDP_NO_CHECK6_TX). */
  udp6CsumTx?: boolean;
  /** IPv6: require checksums on receive (default true). false → accept zero (UDP_NO_CHECK6_RX). */
  udp6CsumRx?: boolean;
  /** Socket buffer size; default SOCK_BUF_BYTES. */
  bufBytes?: number;
}

function normalize(c: UdpTunnelSocketOptions | TunnelConfig): UdpTunnelSocketOptions {
  if ('sport' in c) return c;
  return {
    family: c.family,
    local: c.local,
    sport: c.udpSport,
    remote: c.remote,
    dport: c.udpDport,
    udpCsum: c.udpCsum,
    udp6CsumTx: c.udp6CsumTx,
    udp6CsumRx: c.udp6CsumRx,
  };
}

function must(r: number, what: string): void {
  if (r < 0) throwErrno(r, what);
}

/**
 * What every tunnel socket (UDP or raw IP) needs: DF off, as the kernel's L2TP
 * sockets send (docs/protocol.md §3.3).
 */
export function setTunnelSocketBasics(fd: number, family: 4 | 6): void {
  if (family === 4) must(setIntOpt(fd, SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT), 'IP_MTU_DISCOVER');
  else must(setIntOpt(fd, SOL_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DONT), 'IPV6_MTU_DISCOVER');
}

/**
 * A nonblocking, close-on-exec UDP socket bound to local:sport and connected to
 * remote:dport, as the kernel's tunnel socket: only the peer's packets are received.
 * No SO_REUSEADDR. DF=0 / local fragmentation (IP_PMTUDISC_DONT, IPV6_PMTUDISC_DONT).
 * Checksum options per the fields above (the IPv6 ones are ignored for IPv4 and vice versa).
 * An IPv6 tunnel whose local and remote are both v4-mapped (::ffff:a.b.c.d) is opened as IPv4.
 * Errors: kernelError EADDRINUSE (port busy), EADDRNOTAVAIL (local address not on this host),
 * EINVAL (bad address), ENETUNREACH (no route to remote), EPERM, ...
 * Returns the fd; the caller owns it.
 */
export function openUdpTunnelSocket(cfg: UdpTunnelSocketOptions | TunnelConfig): number {
  const o = normalize(cfg);
  // Zero checksums only when asked (engine/config.ts sendsUdpChecksums); a v4-mapped
  // IPv6 tunnel keeps its IPv6 setting on the IPv4 socket it gets.
  const zeroCsum = o.family === 4 ? o.udpCsum === false : o.udp6CsumTx === false;
  let family = o.family;
  let local = o.local;
  let remote = o.remote;
  if (family === 6) {
    const l4 = v4Mapped(local);
    const r4 = v4Mapped(remote);
    if (l4 !== null && r4 !== null) {
      family = 4;
      local = l4;
      remote = r4;
    }
  }
  const la = sockaddr(family, local, o.sport);
  const ra = sockaddr(family, remote, o.dport);
  const c = libc();
  const fd = c.socket(family === 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throwErrno(c.errno() || EAFNOSUPPORT, 'socket');
  try {
    setTunnelSocketBasics(fd, family);
    if (family === 4) {
      must(setIntOpt(fd, SOL_SOCKET, SO_NO_CHECK, zeroCsum ? 1 : 0), 'SO_NO_CHECK');
    } else {
      must(setIntOpt(fd, SOL_IPV6, IPV6_V6ONLY, 1), 'IPV6_V6ONLY'); // a raw socket refuses this (EINVAL): UDP only
      if (zeroCsum) must(setIntOpt(fd, SOL_UDP, UDP_NO_CHECK6_TX, 1), 'UDP_NO_CHECK6_TX');
      if (o.udp6CsumRx === false) must(setIntOpt(fd, SOL_UDP, UDP_NO_CHECK6_RX, 1), 'UDP_NO_CHECK6_RX');
    }
    setBigBuffers(fd, o.bufBytes);
    if (c.bind(fd, la, la.length) < 0) throwErrno(c.errno(), `bind ${local}:${o.sport}`);
    if (c.connect(fd, ra, ra.length) < 0) throwErrno(c.errno(), `connect ${remote}:${o.dport}`);
    return fd;
  } catch (e) {
    c.close(fd);
    throw e;
  }
}

/** Local address and port actually bound (sport 0 → the kernel's choice). */
export function localAddress(fd: number): { family: 4 | 6; addr: string; port: number } | null {
  const c = libc();
  const b = Buffer.alloc(SOCKADDR_SLOT);
  const l = Buffer.alloc(4);
  l.writeUInt32LE(SOCKADDR_SLOT, 0);
  if (c.getsockname(fd, b, l) < 0) throwErrno(c.errno(), 'getsockname');
  return readSockaddr(b, 0);
}

const pollMem = new ArrayBuffer(8);
const pollW = new Int32Array(pollMem);
let pollPtr = -1;

/**
 * Wait up to `timeoutMs` until `fd` is writable (poll POLLOUT), e.g. after sendBatch returned
 * -EAGAIN/-ENOBUFS. Returns 1 when writable (or an error/hangup is pending), 0 on timeout,
 * -errno on failure. Blocks the calling thread; no allocation.
 */
export function waitWritable(fd: number, timeoutMs: number): number {
  const c = libc();
  if (pollPtr < 0) pollPtr = c.addressOf(pollMem);
  pollW[0] = fd;
  pollW[1] = POLLOUT; // events (low 16 bits), revents (high 16 bits) cleared
  const r = c.poll(pollPtr, 1, timeoutMs);
  return r < 0 ? -c.errno() : r;
}

/**
 * Offload mode: ask for UDP GRO on a tunnel socket, so that a run of equal-sized datagrams
 * from the peer (its UDP GSO sends, or the receiving device's GRO) is queued and read as one,
 * with the segment size in a UDP_GRO control message (batch.ts `gso[i]`; the rx worker
 * splits it again). Returns whether the kernel took it (the caller decides, from the
 * dataplane options, whether to ask).
 * Nothing changes on the wire. Cold path.
 */
export function enableUdpGro(fd: number): boolean {
  return setIntOpt(fd, SOL_UDP, UDP_GRO, 1) === 0;
}

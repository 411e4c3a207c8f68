/**
 * Raw IP sockets for L2TPv3 over IP (protocol 115), docs/protocol.md §2.3 and §6.4.
 *
 * Receive: an AF_INET raw socket delivers the IPv4 header too (skip IHL*4 bytes, never assume
 * 20); an AF_INET6 raw socket delivers only the payload, and the source comes from msg_name
 * (recvBatch records it per slot). The kernel reassembles fragments before raw delivery.
 * Send: the kernel builds the IP header (no IP_HDRINCL); give the destination per packet
 * (sockaddr with port 0, see `rawDest`) or connect the socket with `remote`.
 * Ownership: the caller owns returned fds. Errors are thrown as kernelError (cold path).
 */
import {
  libc,
  AF_INET,
  AF_INET6,
  SOCK_RAW,
  SOCK_NONBLOCK,
  SOCK_CLOEXEC,
  IPPROTO_L2TP,
} from './libc.js';
import { throwErrno } from './errno.js';
import { setBigBuffers, setTunnelSocketBasics, sockaddr, parseAddr, writeSockaddrIn, writeSockaddrIn6 } from './udp.js';

export interface RawIpSocketOptions {
  family: 4 | 6;
  /** Bound address: only packets to this address are received; it is the source of sent packets. */
  local: string;
  /** Optional: connect(2) to this peer (then only its packets are received and sendBatch needs no destination). */
  remote?: string;
  /** Socket buffer size; default 4 MB. */
  bufBytes?: number;
}

/**
 * socket(AF_INET[6], SOCK_RAW|SOCK_NONBLOCK|SOCK_CLOEXEC, 115) bound to `local`, DF=0 like
 * the kernel (PMTUDISC_DONT), large buffers. Errors: EPERM without CAP_NET_RAW,
 * EADDRNOTAVAIL when `local` is not on this host, EINVAL for a bad address.
 */
export function openRawIpSocket(o: RawIpSocketOptions): number {
  const la = sockaddr(o.family, o.local, 0);
  const ra = o.remote !== undefined ? sockaddr(o.family, o.remote, 0) : null;
  const c = libc();
  const fd = c.socket(o.family === 4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_L2TP);
  if (fd < 0) throwErrno(c.errno(), 'socket(SOCK_RAW, 115)');
  try {
    setTunnelSocketBasics(fd, o.family);
    setBigBuffers(fd, o.bufBytes);
    if (c.bind(fd, la, la.length) < 0) throwErrno(c.errno(), `bind ${o.local}`);
    if (ra && c.connect(fd, ra, ra.length) < 0) throwErrno(c.errno(), `connect ${o.remote}`);
    return fd;
  } catch (e) {
    c.close(fd);
    throw e;
  }
}

/** A destination sockaddr for raw sends (port 0), as a new Buffer (cold path; cache it per tunnel). */
export function rawDest(family: 4 | 6, addr: string): Buffer {
  return sockaddr(family, addr, 0);
}

/**
 * Write a raw destination into `buf` at `off` (e.g. a Batch's address area) from address
 * bytes (4 or 16); returns the sockaddr length. No allocation.
 */
export function writeRawDest(buf: Uint8Array, off: number, addrBytes: Uint8Array): number {
  return addrBytes.length === 4 ? writeSockaddrIn(buf, off, addrBytes, 0) : writeSockaddrIn6(buf, off, addrBytes, 0);
}

/** Address bytes (4 or 16) for a textual address (cold path). */
export function addrBytes(family: 4 | 6, addr: string): Buffer {
  return parseAddr(addr, family).bytes;
}

/** IPv4 header length of a received raw IPv4 packet at `off` (IHL*4), or 0 if not IPv4. */
export function ipv4HeaderLen(buf: Uint8Array, off: number): number {
  const b = buf[off];
  return b >> 4 === 4 ? (b & 0xf) << 2 : 0;
}

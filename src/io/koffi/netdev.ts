/**
 * Interface configuration through ioctl(2) on a throwaway AF_INET datagram socket
 * (no `ip` process, a few µs per call: 10,000 sessions are configured in well under a second).
 *
 * Namespace: each call opens its control socket in the calling *thread's* network namespace
 * at call time, so these work after setns(2) (tests) and from any worker thread.
 * Errors: cold path, throw `kernelError(<errno name>)` (ENODEV when the name does not exist,
 * EPERM without CAP_NET_ADMIN, EINVAL for a bad value). Thread-safe (no shared state).
 */
import { randomBytes } from 'node:crypto';
import { libc, AF_INET, SOCK_DGRAM, SOCK_CLOEXEC } from './libc.js';
import { throwErrno, EINVAL } from './errno.js';

export const IFNAMSIZ = 16;
export const IFREQ_SIZE = 40;
export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const SIOCGIFMTU = 0x8921;
export const SIOCSIFMTU = 0x8922;
export const SIOCSIFHWADDR = 0x8924;
export const SIOCGIFHWADDR = 0x8927;
export const SIOCGIFINDEX = 0x8933;
export const SIOCGIFTXQLEN = 0x8942;
export const SIOCSIFTXQLEN = 0x8943;
export const IFF_UP = 0x1;
export const ARPHRD_ETHER = 1;

/**
 * A zeroed `struct ifreq` (40 bytes) with `ifr_name` = name. Throws EINVAL when the name is
 * empty, longer than 15 bytes, or contains '/', ':' or whitespace (the kernel's rules).
 */
export function ifreq(name: string): Buffer {
  const b = Buffer.alloc(IFREQ_SIZE);
  const n = Buffer.byteLength(name);
  if (n === 0 || n >= IFNAMSIZ || /[/:\s]/.test(name)) throwErrno(EINVAL, `bad interface name "${name}"`);
  b.write(name, 0, 'utf8');
  return b;
}

/** The NUL-terminated name in an ifreq. */
export function ifreqName(b: Buffer): string {
  const end = b.indexOf(0);
  return b.toString('utf8', 0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end);
}

function ctl(name: string, req: number, b: Buffer): void {
  const c = libc();
  const s = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) throwErrno(c.errno(), 'socket');
  const r = c.ioctlBuf(s, req, b);
  const e = r < 0 ? c.errno() : 0;
  c.close(s);
  if (r < 0) throwErrno(e, name);
}

/** MTU of `name`. */
export function getMtu(name: string): number {
  const b = ifreq(name);
  ctl(name, SIOCGIFMTU, b);
  return b.readInt32LE(16);
}

/** Set the MTU (the kernel enforces the device's min/max; a TAP accepts 68..65521). */
export function setMtu(name: string, mtu: number): void {
  const b = ifreq(name);
  b.writeInt32LE(mtu, 16);
  ctl(name, SIOCSIFMTU, b);
}

/** ifindex of `name` (throws ENODEV when absent). */
export function getIfindex(name: string): number {
  const b = ifreq(name);
  ctl(name, SIOCGIFINDEX, b);
  return b.readInt32LE(16);
}

/** True when an interface called `name` exists in this thread's namespace. Never throws for absence. */
export function ifExists(name: string): boolean {
  try {
    getIfindex(name);
    return true;
  } catch {
    return false;
  }
}

/** Ethernet address of `name` (6 bytes). */
export function getMac(name: string): Buffer {
  const b = ifreq(name);
  ctl(name, SIOCGIFHWADDR, b);
  return Buffer.from(b.subarray(18, 24));
}

/** Set the Ethernet address (6 bytes). The device must be a Ethernet-type device (TAP is). */
export function setMac(name: string, mac: Uint8Array): void {
  if (mac.length !== 6) throwErrno(EINVAL, 'MAC must be 6 bytes');
  const b = ifreq(name);
  b.writeUInt16LE(ARPHRD_ETHER, 16);
  b.set(mac, 18);
  ctl(name, SIOCSIFHWADDR, b);
}

/**
 * A random unicast, locally administered MAC, as the kernel's eth_random_addr() gives
 * l2tp_eth devices: first octet has bit 0 (multicast) clear and bit 1 (local) set.
 */
export function randomMac(): Buffer {
  const m = randomBytes(6);
  m[0] = (m[0]! & 0xfe) | 0x02;
  return m;
}

/** Interface flags (IFF_*, low 16 bits). */
export function getFlags(name: string): number {
  const b = ifreq(name);
  ctl(name, SIOCGIFFLAGS, b);
  return b.readUInt16LE(16);
}

/** Bring `name` up or down (read-modify-write of IFF_UP). */
export function setUp(name: string, up: boolean): void {
  const b = ifreq(name);
  ctl(name, SIOCGIFFLAGS, b);
  const fl = b.readUInt16LE(16);
  const nfl = up ? fl | IFF_UP : fl & ~IFF_UP;
  if (nfl === fl) return;
  b.writeUInt16LE(nfl, 16);
  ctl(name, SIOCSIFFLAGS, b);
}

/** txqueuelen (l2tp_eth has 1000 from ether_setup; a TAP starts at 1000 on current kernels). */
export function getTxQueueLen(name: string): number {
  const b = ifreq(name);
  ctl(name, SIOCGIFTXQLEN, b);
  return b.readInt32LE(16);
}

export function setTxQueueLen(name: string, qlen: number): void {
  const b = ifreq(name);
  b.writeInt32LE(qlen, 16);
  ctl(name, SIOCSIFTXQLEN, b);
}

/** Format a MAC as aa:bb:cc:dd:ee:ff. */
export function macToString(mac: Uint8Array): string {
  let s = '';
  for (let i = 0; i < mac.length; i++) s += (i ? ':' : '') + (mac[i]! < 16 ? '0' : '') + mac[i]!.toString(16);
  return s;
}

export { deleteTap } from './tap.js';

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
import { libc, AF_INET, AF_NETLINK, SOCK_DGRAM, SOCK_RAW, SOCK_CLOEXEC } from './libc.js';
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
  m[0] = (m[0] & 0xfe) | 0x02;
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
  for (let i = 0; i < mac.length; i++) s += (i ? ':' : '') + (mac[i] < 16 ? '0' : '') + mac[i].toString(16);
  return s;
}


// ---------------------------------------------------------------- rtnetlink (batch delete)

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const NLM_F_REQUEST = 1;
const NLM_F_ACK = 4;
const NLMSG_ERROR = 2;
const IFLA_GROUP = 27;
let nlSeq = 1;

const IFLA_IFALIAS = 20;

/** One rtnetlink request (ifinfomsg + optional u32 IFLA_GROUP, or a string attribute) and its ack; returns 0 or -errno. */
function nlLink(fd: number, type: number, ifindex: number, group: number, strAttr?: [number, string]): number {
  const c = libc();
  const str = strAttr === undefined ? null : Buffer.from(strAttr[1] + '\0');
  const attrLen = str === null ? 8 : (4 + str.length + 3) & ~3;
  const len = 16 + 16 + attrLen;
  const m = Buffer.alloc(len);
  const seq = nlSeq++;
  m.writeUInt32LE(len, 0);
  m.writeUInt16LE(type, 4);
  m.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK, 6);
  m.writeUInt32LE(seq, 8);
  m.writeInt32LE(ifindex, 16 + 4); // ifinfomsg.ifi_index (family 0 = AF_UNSPEC)
  if (str === null) {
    m.writeUInt16LE(8, 32); // rtattr len
    m.writeUInt16LE(IFLA_GROUP, 34);
    m.writeUInt32LE(group >>> 0, 36);
  } else {
    m.writeUInt16LE(4 + str.length, 32);
    m.writeUInt16LE(strAttr![0], 34);
    str.copy(m, 36);
  }
  if (c.writeBuf(fd, m, len) < 0) return -c.errno();
  const r = Buffer.alloc(4096);
  for (;;) {
    const n = c.readBuf(fd, r, r.length);
    if (n < 0) return -c.errno();
    for (let o = 0; o + 16 <= n; ) {
      const ml = r.readUInt32LE(o);
      if (ml < 16) break;
      if (r.readUInt16LE(o + 4) === NLMSG_ERROR && r.readUInt32LE(o + 8) === seq) return r.readInt32LE(o + 16);
      o += (ml + 3) & ~3;
    }
  }
}

/**
 * Set the interface alias (IFLA_IFALIAS, `ip link set NAME alias TEXT`). ul2tp
 * marks its own session TAPs with one, so that a restarted daemon can tell its
 * orphans (a crash between creating a TAP and saving the configuration) from
 * anybody else's. Throws kernelError.
 */
export function setIfAlias(name: string, alias: string): void {
  const idx = getIfindex(name);
  const c = libc();
  const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) throwErrno(c.errno(), 'netlink socket');
  try {
    const r = nlLink(fd, RTM_NEWLINK, idx, 0, [IFLA_IFALIAS, alias]);
    if (r < 0) throwErrno(-r, 'set link alias');
  } finally {
    c.close(fd);
  }
}

/**
 * Delete many interfaces at once (e.g. all TAPs of a tunnel, or every TAP at shutdown):
 * moves them into a private, random interface group and deletes the group with one
 * RTM_DELLINK, so the kernel unregisters them together and waits for RCU once instead of once
 * per device (~15 ms each on this kernel). Works for TAPs whether or not an fd is still
 * attached (the fds then fail with EBADFD/EIO; close them). Names that do not exist are skipped.
 * Returns how many were deleted. Throws kernelError on other failures (EPERM, ...).
 */
export function deleteLinks(names: readonly string[]): number {
  const idx: number[] = [];
  for (const n of names) {
    try {
      idx.push(getIfindex(n));
    } catch {
      /* already gone */
    }
  }
  if (idx.length === 0) return 0;
  const c = libc();
  const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) throwErrno(c.errno(), 'netlink socket');
  try {
    // a group number nothing else uses: random, high bit set, checked unused by the kernel's
    // ENODEV answer being impossible here since we just moved devices into it.
    const group = (0x80000000 | Math.floor(Math.random() * 0x7fffffff)) >>> 0;
    for (const i of idx) {
      const r = nlLink(fd, RTM_NEWLINK, i, group);
      if (r < 0 && r !== -19) throwErrno(r, 'set link group');
    }
    const r = nlLink(fd, RTM_DELLINK, 0, group);
    if (r < 0) throwErrno(r, 'delete link group');
    return idx.length;
  } finally {
    c.close(fd);
  }
}

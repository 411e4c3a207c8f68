/**
 * TAP devices through /dev/net/tun (TUNSETIFF), standing in for the kernel's l2tp_eth netdev.
 *
 * Namespace: the device is created in the calling thread's network namespace.
 * Ownership: `openTap` returns an fd the caller owns and must close(2); a non-persistent
 * TAP disappears when its last fd closes, a persistent one stays (NO-CARRIER) until
 * `deleteTap` or `setPersist(fd, false)` + close. Errors (cold path) are thrown as
 * `kernelError(name)`; see openTap for the mapping. Thread-safe (no shared state).
 */
import { libc, O_RDWR, O_CLOEXEC, O_NONBLOCK } from './libc.js';
import { EBUSY, EEXIST, EINVAL, ENOENT, ENODEV, errnoError, throwErrno } from './errno.js';
import { ifreq, ifreqName, ifExists, setIfAlias } from './netdev.js';

export const TUNSETIFF = 0x400454ca;
export const TUNSETPERSIST = 0x400454cb;
export const TUNGETIFF = 0x800454d2;
export const TUNSETVNETHDRSZ = 0x400454d8;
export const TUNSETOFFLOAD = 0x400454d0;
/** TUNSETOFFLOAD flags (with IFF_VNET_HDR): checksum and TCP/UDP segmentation offloads. */
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_UFO = 0x10;
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;
/** sizeof(struct virtio_net_hdr) (10); 12 with num_buffers (virtio_net_hdr_mrg_rxbuf). */
export const VNET_HDR_LEN = 10;
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
export const IFF_TUN_EXCL = 0x8000;

export const TUN_PATH = '/dev/net/tun';

export interface TapOptions {
  /** TUNSETPERSIST 1 after creation: the device outlives the fd (daemon restarts). */
  persist?: boolean;
  /** IFF_MULTI_QUEUE: open the same name again with this flag to get one fd per queue. */
  multiQueue?: boolean;
  /** IFF_VNET_HDR: every read/write starts with a virtio_net_hdr (10 bytes by default). */
  vnetHdr?: boolean;
  /** O_NONBLOCK on the fd (read returns EAGAIN instead of blocking). Default false. */
  nonBlocking?: boolean;
  /**
   * Fail with EEXIST when an interface with this name already exists (IFF_TUN_EXCL),
   * like creating an l2tp_eth device. Default false: attach to an existing persistent TAP
   * of the same name (adopt after a daemon restart).
   */
  exclusive?: boolean;
  /**
   * Interface alias to set before the device is made persistent: a crash in
   * between leaves no device at all (it dies with the fd), and a persistent
   * one always carries the mark (see SESSION_TAP_ALIAS).
   */
  alias?: string;
}

/** The alias marking ul2tp's own session TAPs (orphans are found by it after a crash). */
export const SESSION_TAP_ALIAS = 'ul2tp-session';

export interface TapHandle {
  fd: number;
  /** The kernel's name for the device (`%d` expanded). */
  name: string;
}

/**
 * Create (or attach to) the TAP `name`; `name` may contain `%d` (e.g. 'l2tpeth%d'), the
 * kernel picks the lowest free number and the real name is returned. Created DOWN with a
 * random locally administered MAC and MTU 1500. Frames have no packet-info prefix
 * (IFF_NO_PI). Errors: EEXIST when the name is taken (with `exclusive`, or by a device that
 * is not a compatible TAP), EBUSY when a non-multiqueue TAP of that name is already attached
 * to another fd, EPERM without CAP_NET_ADMIN, EINVAL for a bad name, ENOENT/ENODEV when
 * /dev/net/tun is missing.
 */
export function openTap(name: string, opts: TapOptions = {}): TapHandle {
  const c = libc();
  const req = ifreq(name);
  let flags = IFF_TAP | IFF_NO_PI;
  if (opts.multiQueue) flags |= IFF_MULTI_QUEUE;
  if (opts.vnetHdr) flags |= IFF_VNET_HDR;
  if (opts.exclusive) flags |= IFF_TUN_EXCL;
  req.writeUInt16LE(flags, 16);
  const fd = c.open(TUN_PATH, O_RDWR | O_CLOEXEC | (opts.nonBlocking ? O_NONBLOCK : 0), 0);
  if (fd < 0) {
    const e = c.errno();
    throwErrno(e === ENOENT ? ENODEV : e, TUN_PATH);
  }
  if (c.ioctlBuf(fd, TUNSETIFF, req) < 0) {
    const e = c.errno();
    c.close(fd);
    if (e === EBUSY && opts.exclusive) throw errnoError(EEXIST, name);
    if (e === EINVAL && !name.includes('%') && ifExists(name)) throw errnoError(EEXIST, name);
    throwErrno(e, name);
  }
  const real = ifreqName(req);
  if (opts.alias !== undefined) {
    try {
      setIfAlias(real, opts.alias);
    } catch (e) {
      c.close(fd);
      throw e;
    }
  }
  if (opts.persist && c.ioctlInt(fd, TUNSETPERSIST, 1) < 0) {
    const e = c.errno();
    c.close(fd);
    throwErrno(e, real);
  }
  return { fd, name: real };
}

/** TUNSETPERSIST on an fd from openTap. Throws kernelError on failure. */
export function setPersist(fd: number, on: boolean): void {
  const c = libc();
  if (c.ioctlInt(fd, TUNSETPERSIST, on ? 1 : 0) < 0) throwErrno(c.errno(), 'TUNSETPERSIST');
}

/**
 * TUNSETOFFLOAD (needs IFF_VNET_HDR): which offloads the kernel may hand us (TUN_F_* mask;
 * 0 = none, the default: every frame is a complete, checksummed Ethernet frame). With TSO the
 * kernel may give up to 64 KB TCP frames described by the virtio_net_hdr, which the caller must
 * then segment itself. Throws kernelError (EINVAL for unsupported flags).
 */
export function setOffload(fd: number, flags: number): void {
  const c = libc();
  if (c.ioctlInt(fd, TUNSETOFFLOAD, flags) < 0) throwErrno(c.errno(), 'TUNSETOFFLOAD');
}

/** TUNSETVNETHDRSZ: size of the per-frame virtio header (10 default, 12 with num_buffers). */
export function setVnetHdrSize(fd: number, size: number): void {
  const c = libc();
  const b = Buffer.alloc(4);
  b.writeInt32LE(size, 0);
  if (c.ioctlBuf(fd, TUNSETVNETHDRSZ, b) < 0) throwErrno(c.errno(), 'TUNSETVNETHDRSZ');
}

/** The device name and IFF_* flags bound to a TAP fd (TUNGETIFF). */
export function tapInfo(fd: number): { name: string; flags: number } {
  const c = libc();
  const b = Buffer.alloc(40);
  if (c.ioctlBuf(fd, TUNGETIFF, b) < 0) throwErrno(c.errno(), 'TUNGETIFF');
  return { name: ifreqName(b), flags: b.readUInt16LE(16) };
}

/** True when an interface named `name` exists (any type) in this thread's namespace. */
export function tapExists(name: string): boolean {
  return ifExists(name);
}

/**
 * Remove a (persistent) TAP: attach to it with TUNSETIFF, clear persist, close.
 * Returns false when no interface of that name exists. Throws EBUSY when a non-multiqueue
 * TAP is still attached to some fd (its owner must close it: the TAP then disappears unless
 * persistent), EINVAL when `name` is not a TAP. Tries both queue modes.
 */
export function deleteTap(name: string): boolean {
  if (!ifExists(name)) return false;
  const c = libc();
  let lastErr = 0;
  for (const mq of [0, IFF_MULTI_QUEUE]) {
    const req = ifreq(name);
    req.writeUInt16LE(IFF_TAP | IFF_NO_PI | mq, 16);
    const fd = c.open(TUN_PATH, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) throwErrno(c.errno(), TUN_PATH);
    if (c.ioctlBuf(fd, TUNSETIFF, req) < 0) {
      lastErr = c.errno();
      c.close(fd);
      if (lastErr === EINVAL) continue; // queue mode mismatch: try the other one
      break;
    }
    const r = c.ioctlInt(fd, TUNSETPERSIST, 0);
    const e = r < 0 ? c.errno() : 0;
    c.close(fd);
    if (r < 0) throwErrno(e, name);
    return true;
  }
  throwErrno(lastErr, name);
}

/**
 * libc bindings through koffi (optional dependency), for Linux x86_64 / aarch64 (LP64).
 *
 * Loading: `libc()` loads koffi and libc.so.6 on first use *in the calling thread* and
 * caches the bound functions in module state. ES modules are instantiated per
 * worker_thread, so every worker gets its own bindings; nothing here is shared between
 * threads except file descriptors (process-wide) and whatever memory the caller passes.
 *
 * Calling convention: every function returns the raw libc result (-1 on error) and never
 * throws for an OS error; read the cause with `errno()` immediately after the failing call
 * (koffi saves errno per thread right after each call). Hot-path pointer parameters are
 * declared `uintptr_t` and take the address as a JS number (see `addressOf`), which is
 * ~35% cheaper per call than passing a Buffer (measured: write(2) on a bad fd 263 ns vs
 * 400 ns) because koffi does no buffer lookup. Cold-path functions take Buffers.
 *
 * Pointer numbers: user-space addresses on LP64 Linux are < 2^47, so they are exact as
 * JS numbers. The memory behind an address must stay alive (referenced from JS) for as
 * long as the kernel may use it; the caller owns that (see batch.ts).
 */
import { createRequire } from 'node:module';

type Koffi = typeof import('koffi');

/** Bound libc functions. Pointer arguments named `*Ptr` are numeric addresses. */
export interface Libc {
  readonly koffi: Koffi;
  open(path: string, flags: number, mode: number): number;
  close(fd: number): number;
  /** read(2) into an address. */
  read(fd: number, bufPtr: number, len: number): number;
  /** write(2) from an address. */
  write(fd: number, bufPtr: number, len: number): number;
  /** read(2) into a Buffer (cold path). */
  readBuf(fd: number, buf: Uint8Array, len: number): number;
  /** write(2) from a Buffer (cold path). */
  writeBuf(fd: number, buf: Uint8Array, len: number): number;
  readv(fd: number, iovPtr: number, iovcnt: number): number;
  writev(fd: number, iovPtr: number, iovcnt: number): number;
  /** ioctl(fd, req, struct *) with a Buffer argument (ifreq and friends). */
  ioctlBuf(fd: number, req: number, arg: Uint8Array): number;
  /** ioctl(fd, req, unsigned long) with an integer argument (TUNSETPERSIST, ...). */
  ioctlInt(fd: number, req: number, arg: number): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, addrLen: number): number;
  connect(fd: number, addr: Uint8Array, addrLen: number): number;
  setsockopt(fd: number, level: number, name: number, val: Uint8Array, valLen: number): number;
  /** getsockopt; `lenBuf` is a 4-byte in/out socklen_t. */
  getsockopt(fd: number, level: number, name: number, val: Uint8Array, lenBuf: Uint8Array): number;
  getsockname(fd: number, addr: Uint8Array, lenBuf: Uint8Array): number;
  /** fcntl(fd, cmd, int) */
  fcntl(fd: number, cmd: number, arg: number): number;
  recvmmsg(fd: number, msgvecPtr: number, vlen: number, flags: number, timeoutPtr: number): number;
  sendmmsg(fd: number, msgvecPtr: number, vlen: number, flags: number): number;
  recvmsg(fd: number, msgPtr: number, flags: number): number;
  sendmsg(fd: number, msgPtr: number, flags: number): number;
  epoll_create1(flags: number): number;
  epoll_ctl(epfd: number, op: number, fd: number, event: Uint8Array | null): number;
  epoll_wait(epfd: number, eventsPtr: number, maxEvents: number, timeoutMs: number): number;
  eventfd(initval: number, flags: number): number;
  poll(fdsPtr: number, nfds: number, timeoutMs: number): number;
  /** setns(2): switch the calling *thread* to another namespace (tests). */
  setns(fd: number, nstype: number): number;
  /** errno of the last call made through koffi in this thread. */
  errno(): number;
  /** Numeric address of a Buffer/TypedArray's first byte (see module comment). */
  addressOf(buf: Uint8Array | ArrayBufferLike): number;
}

// --- constants (Linux, generic and x86_64/aarch64 agree on these) ---
export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_NO_CHECK = 11;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const SOL_IP = 0;
export const IP_MTU_DISCOVER = 10;
export const IP_PMTUDISC_DONT = 0;
export const SOL_IPV6 = 41;
export const IPV6_MTU_DISCOVER = 23;
export const IPV6_PMTUDISC_DONT = 0;
export const IPV6_V6ONLY = 26;
export const SOL_UDP = 17;
export const UDP_NO_CHECK6_TX = 101;
export const UDP_NO_CHECK6_RX = 102;
/** UDP_SEGMENT (send: gso_size per message) and UDP_GRO (receive coalesced datagrams). */
export const UDP_SEGMENT = 103;
export const UDP_GRO = 104;
export const IPPROTO_UDP = 17;
export const IPPROTO_L2TP = 115;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const MSG_WAITFORONE = 0x10000;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLET = 0x80000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLL_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const CLONE_NEWNET = 0x40000000;

let cached: Libc | null = null;
let failed = false;

function supportedPlatform(): boolean {
  return process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64');
}

/**
 * True when koffi and libc can be loaded in this thread. Never throws; caches a failure.
 * Used by src/io/select.ts for backend selection.
 */
export function koffiAvailable(): boolean {
  if (cached) return true;
  if (failed) return false;
  try {
    libc();
    return true;
  } catch {
    return false;
  }
}

/**
 * The bound libc functions for this thread, loaded on first call.
 * Throws a plain Error (startup path only) when koffi or libc cannot be loaded.
 */
export function libc(): Libc {
  if (cached) return cached;
  if (failed) throw new Error('koffi is not available');
  if (!supportedPlatform()) {
    failed = true;
    throw new Error(`koffi backend unsupported on ${process.platform}/${process.arch}`);
  }
  try {
    cached = bind();
    return cached;
  } catch (e) {
    failed = true;
    throw e;
  }
}

function bind(): Libc {
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as Koffi;
  const lib = koffi.load('libc.so.6');
  // Variadic libc functions (open, ioctl, fcntl) are declared with fixed arguments: on
  // the LP64 SysV and AAPCS64 ABIs integer/pointer varargs travel exactly like fixed ones.
  const f = (decl: string) => lib.func(decl) as (...a: unknown[]) => number;
  const open = f('int open(const char *path, int flags, uint32_t mode)');
  const close = f('int close(int fd)');
  const read = f('intptr_t read(int fd, uintptr_t buf, size_t n)');
  const write = f('intptr_t write(int fd, uintptr_t buf, size_t n)');
  const readBuf = f('intptr_t read(int fd, _Out_ uint8_t *buf, size_t n)');
  const writeBuf = f('intptr_t write(int fd, const uint8_t *buf, size_t n)');
  const readv = f('intptr_t readv(int fd, uintptr_t iov, int cnt)');
  const writev = f('intptr_t writev(int fd, uintptr_t iov, int cnt)');
  const ioctlBuf = f('int ioctl(int fd, unsigned long req, _Inout_ uint8_t *arg)');
  const ioctlInt = f('int ioctl(int fd, unsigned long req, unsigned long arg)');
  const socket = f('int socket(int domain, int type, int protocol)');
  const bindFn = f('int bind(int fd, const uint8_t *addr, uint32_t len)');
  const connect = f('int connect(int fd, const uint8_t *addr, uint32_t len)');
  const setsockopt = f('int setsockopt(int fd, int level, int name, const uint8_t *val, uint32_t len)');
  const getsockopt = f('int getsockopt(int fd, int level, int name, _Out_ uint8_t *val, _Inout_ uint8_t *len)');
  const getsockname = f('int getsockname(int fd, _Out_ uint8_t *addr, _Inout_ uint8_t *len)');
  const fcntl = f('int fcntl(int fd, int cmd, int arg)');
  const recvmmsg = f('int recvmmsg(int fd, uintptr_t vec, unsigned int vlen, int flags, uintptr_t timeout)');
  const sendmmsg = f('int sendmmsg(int fd, uintptr_t vec, unsigned int vlen, int flags)');
  const recvmsg = f('intptr_t recvmsg(int fd, uintptr_t msg, int flags)');
  const sendmsg = f('intptr_t sendmsg(int fd, uintptr_t msg, int flags)');
  const epoll_create1 = f('int epoll_create1(int flags)');
  const epoll_ctl = f('int epoll_ctl(int epfd, int op, int fd, uint8_t *event)');
  const epoll_wait = f('int epoll_wait(int epfd, uintptr_t events, int max, int timeout)');
  const eventfd = f('int eventfd(unsigned int initval, int flags)');
  const poll = f('int poll(uintptr_t fds, unsigned long nfds, int timeout)');
  const setns = f('int setns(int fd, int nstype)');
  const errno = koffi.errno;
  // Direct references (no wrapper closures): one JS→native hop per call.
  return {
    koffi,
    open: open,
    close: close,
    read: read,
    write: write,
    readBuf: readBuf,
    writeBuf: writeBuf,
    readv: readv,
    writev: writev,
    ioctlBuf: ioctlBuf,
    ioctlInt: ioctlInt,
    socket: socket,
    bind: bindFn,
    connect: connect,
    setsockopt: setsockopt,
    getsockopt: getsockopt,
    getsockname: getsockname,
    fcntl: fcntl,
    recvmmsg: recvmmsg,
    sendmmsg: sendmmsg,
    recvmsg: recvmsg,
    sendmsg: sendmsg,
    epoll_create1: epoll_create1,
    epoll_ctl: epoll_ctl,
    epoll_wait: epoll_wait,
    eventfd: eventfd,
    poll: poll,
    setns: setns,
    errno: errno,
    addressOf: (buf) => Number(koffi.address(buf)),
  };
}

/** Scratch 4-byte int buffer for setsockopt (cold path; per thread). */
const intOpt = Buffer.alloc(4);

/** setsockopt with an int value; returns 0 or -errno. */
export function setIntOpt(fd: number, level: number, name: number, value: number): number {
  const c = libc();
  intOpt.writeInt32LE(value, 0);
  return c.setsockopt(fd, level, name, intOpt, 4) < 0 ? -c.errno() : 0;
}

/** getsockopt with an int value; returns the value, or throws a plain Error (tests/diagnostics). */
export function getIntOpt(fd: number, level: number, name: number): number {
  const c = libc();
  const val = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4, 0);
  if (c.getsockopt(fd, level, name, val, len) < 0) throw new Error(`getsockopt(${level},${name}) errno ${c.errno()}`);
  return val.readInt32LE(0);
}

let asyncClose: { async: (fd: number, cb: (err: unknown, res: number) => void) => void } | null = null;

/**
 * close(2) on koffi's async thread pool: resolves to 0 or -errno. Closing the last fd of a
 * non-persistent TAP unregisters the device, which blocks ~15 ms in the kernel (RCU wait);
 * this keeps the event loop free, and several such closes overlap. Resolves to 0, or -1 on
 * failure (errno of a pool thread is not observable). Never rejects.
 */
export function closeAsync(fd: number): Promise<number> {
  const c = libc();
  if (!asyncClose) asyncClose = c.koffi.load('libc.so.6').func('int close(int fd)');
  return new Promise((resolve) => {
    asyncClose!.async(fd, (err, res) => resolve(err || res < 0 ? -1 : 0));
  });
}

/** Set or clear O_NONBLOCK; returns 0 or -errno. */
export function setNonBlocking(fd: number, on: boolean): number {
  const c = libc();
  const fl = c.fcntl(fd, F_GETFL, 0);
  if (fl < 0) return -c.errno();
  const nfl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
  if (nfl === fl) return 0;
  return c.fcntl(fd, F_SETFL, nfl) < 0 ? -c.errno() : 0;
}

/**
 * Names the calling thread (prctl PR_SET_NAME: /proc/PID/task/TID/comm, top -H, perf),
 * at most 15 bytes. Returns 0 or -errno. Cold path.
 */
export function setThreadName(name: string): number {
  const c = libc();
  const prctl = c.koffi.load('libc.so.6').func('int prctl(int option, const char *name, unsigned long a3, unsigned long a4, unsigned long a5)') as (
    ...a: unknown[]
  ) => number;
  return prctl(PR_SET_NAME, name.slice(0, 15), 0, 0, 0) < 0 ? -c.errno() : 0;
}

const PR_SET_NAME = 15;

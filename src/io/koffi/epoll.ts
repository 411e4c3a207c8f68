/**
 * epoll and eventfd wrappers for worker threads.
 *
 * A worker blocks in `epollWait` (a synchronous koffi call: the thread sleeps in the kernel)
 * and is woken by data on its fds or by an eventfd another thread signals (`eventSignal`
 * from any thread, including the main thread through its own bindings — fds are
 * process-wide; `node:fs` writeSync of 8 bytes works too).
 *
 * Hot-path functions (`epollWait`, `eventDrain`, `EpollEvents` accessors) return numbers
 * (-errno on failure) and do not allocate. Setup functions throw kernelError.
 * `struct epoll_event` is packed on x86_64 (12 bytes, data at +4) and naturally aligned on
 * aarch64 (16 bytes, data at +8); this module handles both.
 */
import { libc, EPOLL_CLOEXEC, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, EFD_CLOEXEC, EFD_NONBLOCK } from './libc.js';
import { EAGAIN, EINTR, ENOENT, throwErrno } from './errno.js';

export { EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLET } from './libc.js';

export const EPOLL_EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
const DATA_WORD = process.arch === 'x64' ? 1 : 2;
const STRIDE_WORDS = EPOLL_EVENT_SIZE / 4;

/** A new epoll instance (close-on-exec). Caller owns the fd. */
export function epollCreate(): number {
  const c = libc();
  const fd = c.epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throwErrno(c.errno(), 'epoll_create1');
  return fd;
}

function ctl(epfd: number, op: number, fd: number, events: number, data: number): number {
  const c = libc();
  const ev = Buffer.alloc(EPOLL_EVENT_SIZE);
  ev.writeUInt32LE(events >>> 0, 0);
  ev.writeUInt32LE(data >>> 0, DATA_WORD * 4);
  return c.epoll_ctl(epfd, op, fd, ev) < 0 ? -c.errno() : 0;
}

/** Watch `fd` for `events` (EPOLLIN, ...); `data` (u32) comes back with each event. Throws kernelError. */
export function epollAdd(epfd: number, fd: number, events: number, data: number): void {
  const r = ctl(epfd, EPOLL_CTL_ADD, fd, events, data);
  if (r < 0) throwErrno(r, 'EPOLL_CTL_ADD');
}

/** Change the events/data of a watched fd. Throws kernelError. */
export function epollMod(epfd: number, fd: number, events: number, data: number): void {
  const r = ctl(epfd, EPOLL_CTL_MOD, fd, events, data);
  if (r < 0) throwErrno(r, 'EPOLL_CTL_MOD');
}

/** Stop watching `fd`. Returns false if it was not watched (ENOENT) or already closed (EBADF). */
export function epollDel(epfd: number, fd: number): boolean {
  const c = libc();
  if (c.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, null) < 0) {
    const e = c.errno();
    if (e === ENOENT || e === 9) return false;
    throwErrno(e, 'EPOLL_CTL_DEL');
  }
  return true;
}

/** Preallocated `struct epoll_event[max]` with allocation-free accessors. One per thread. */
export class EpollEvents {
  readonly max: number;
  readonly ptr: number;
  private readonly w: Uint32Array;
  private readonly mem: ArrayBuffer;
  constructor(max: number) {
    this.max = max;
    this.mem = new ArrayBuffer(max * 16);
    this.w = new Uint32Array(this.mem);
    this.ptr = libc().addressOf(this.mem);
  }
  /** Event mask of entry i. */
  events(i: number): number {
    return this.w[i * STRIDE_WORDS];
  }
  /** The u32 `data` registered for entry i's fd. */
  data(i: number): number {
    return this.w[i * STRIDE_WORDS + DATA_WORD];
  }
}

/**
 * epoll_wait into `ev`: returns the number of ready entries (0 on timeout or EINTR), or
 * -errno. timeoutMs: -1 = block, 0 = poll. Blocks the calling thread (use in workers).
 */
export function epollWait(epfd: number, ev: EpollEvents, max: number, timeoutMs: number): number {
  const c = libc();
  const r = c.epoll_wait(epfd, ev.ptr, max < ev.max ? max : ev.max, timeoutMs);
  if (r < 0) {
    const e = c.errno();
    return e === EINTR ? 0 : -e;
  }
  return r;
}

const one = new BigUint64Array([1n]);
const oneBytes = new Uint8Array(one.buffer);
const drainBuf = new ArrayBuffer(8);
const drainWords = new Uint32Array(drainBuf);
let drainPtr = -1;

/** A nonblocking, close-on-exec eventfd (counter 0). Caller owns the fd. */
export function eventCreate(): number {
  const c = libc();
  const fd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throwErrno(c.errno(), 'eventfd');
  return fd;
}

/** Add 1 to the eventfd counter (wakes epoll_wait). Any thread. Returns 0 or -errno. */
export function eventSignal(fd: number): number {
  const c = libc();
  return c.writeBuf(fd, oneBytes, 8) < 0 ? -c.errno() : 0;
}

/** Reset the counter; returns the count read (0 when it was already 0), or -errno. */
export function eventDrain(fd: number): number {
  const c = libc();
  if (drainPtr < 0) drainPtr = c.addressOf(drainBuf);
  const r = c.read(fd, drainPtr, 8);
  if (r < 0) {
    const e = c.errno();
    return e === EAGAIN ? 0 : -e;
  }
  return drainWords[0] + drainWords[1] * 4294967296;
}

/** close(2); returns 0 or -errno. Cold path helper for fds from this layer. */
export function closeFd(fd: number): number {
  if (fd < 0) return 0;
  const c = libc();
  return c.close(fd) < 0 ? -c.errno() : 0;
}

/** Aliases (dataplane/worker naming). */
export const eventfdCreate = eventCreate;
export const eventfdSignal = eventSignal;
export const eventfdDrain = eventDrain;

/**
 * An epoll instance with its preallocated event array: `add/mod/del` (cold, throw
 * kernelError), `wait(timeoutMs)` → ready count (0 on timeout/EINTR, -errno), then
 * `data(i)` / `events(i)` for i < count. Owned by one thread; `close()` releases the fd.
 */
export class EpollSet {
  readonly fd: number;
  readonly ev: EpollEvents;
  constructor(max = 64) {
    this.fd = epollCreate();
    this.ev = new EpollEvents(max);
  }
  add(fd: number, events: number, data: number): void {
    epollAdd(this.fd, fd, events, data);
  }
  mod(fd: number, events: number, data: number): void {
    epollMod(this.fd, fd, events, data);
  }
  del(fd: number): boolean {
    return epollDel(this.fd, fd);
  }
  wait(timeoutMs: number): number {
    return epollWait(this.fd, this.ev, this.ev.max, timeoutMs);
  }
  data(i: number): number {
    return this.ev.data(i);
  }
  events(i: number): number {
    return this.ev.events(i);
  }
  close(): void {
    closeFd(this.fd);
  }
}

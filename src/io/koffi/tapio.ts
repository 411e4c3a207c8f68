/**
 * TAP I/O through koffi: read(2)/write(2) of frames into and out of Batch slots or
 * long-lived buffers. Counts or -errno, never throws, never allocates on the hot path.
 */
import { libc, type Libc } from './libc.js';
import { EAGAIN } from './errno.js';
import type { Batch } from './batch.js';

/**
 * Repeated read(2) of a nonblocking TAP fd into slots [0, maxN) at off[i] (`headroom` ≥ 0
 * first sets every off[i] to it): one frame per
 * read, stops at EAGAIN or maxN. Returns the number of frames (len[i] set), 0 when none was
 * ready, or -errno when the first read failed for another reason. An error after some frames
 * ends the batch early (it will be reported by the next call).
 */
export function readFrames(fd: number, b: Batch, maxN: number, headroom = -1): number {
  const c = b.c;
  const n = maxN < b.n ? maxN : b.n;
  if (headroom >= 0) b.off.fill(headroom, 0, n);
  const base = b.base;
  const ss = b.slotSize;
  const off = b.off;
  const len = b.len;
  for (let i = 0; i < n; i++) {
    const o = off[i];
    const r = c.read(fd, base + i * ss + o, ss - o);
    if (r < 0) {
      if (i > 0) return i;
      const e = c.errno();
      return e === EAGAIN ? 0 : -e;
    }
    len[i] = r;
  }
  return n;
}

/**
 * write(2) of slots [start, start+count) to a TAP fd, one frame each. Returns the number
 * written before the first failure, or -errno when the first one failed (the caller counts
 * the failing frame as dropped and may continue after it; EIO = device down).
 */
export function writeFrames(fd: number, b: Batch, start: number, count: number): number {
  const c = b.c;
  const base = b.base;
  const ss = b.slotSize;
  const end = start + count;
  for (let i = start; i < end; i++) {
    const r = c.write(fd, base + i * ss + b.off[i], b.len[i]);
    if (r < 0) return i > start ? i - start : -c.errno();
  }
  return count;
}

// Address cache for writeFrame: the slab and the engine's reorder rings are long-lived
// Buffers; their address is looked up once (koffi.address allocates a BigInt).
let lastBuf: Uint8Array | null = null;
let lastPtr = 0;
const ptrCache = new WeakMap<ArrayBufferLike, number>();

/** Address of buf[0] (cached per ArrayBuffer; for long-lived buffers). */
export function bufAddress(c: Libc, buf: Uint8Array): number {
  if (buf === lastBuf) return lastPtr;
  const ab = buf.buffer;
  let p = ptrCache.get(ab);
  if (p === undefined) {
    p = c.addressOf(ab);
    ptrCache.set(ab, p);
  }
  lastBuf = buf;
  lastPtr = p + buf.byteOffset;
  return lastPtr;
}

/**
 * One write(2) of `buf[off, off+len)` (a frame to a TAP). `buf` must be long-lived (its
 * ArrayBuffer's address is cached; do not pass throwaway Buffers on the hot path — small
 * pooled ones are fine but cost a lookup). Returns bytes written or -errno (EIO = TAP down).
 */
export function writeFrame(fd: number, buf: Uint8Array, off: number, len: number): number {
  const c = libc();
  const r = c.write(fd, bufAddress(c, buf) + off, len);
  return r < 0 ? -c.errno() : r;
}

/** One write(2) from an address (e.g. `batch.ptr(i)`); returns bytes written or -errno. */
export function writePtr(fd: number, ptr: number, len: number): number {
  const c = libc();
  const r = c.write(fd, ptr, len);
  return r < 0 ? -c.errno() : r;
}

/** One read(2) into an address; returns bytes, or -errno (-EAGAIN when empty and nonblocking). */
export function readPtr(fd: number, ptr: number, len: number): number {
  const c = libc();
  const r = c.read(fd, ptr, len);
  return r < 0 ? -c.errno() : r;
}

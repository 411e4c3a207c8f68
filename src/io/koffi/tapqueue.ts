/**
 * The coalescer's queued TAP writes (../offload/gro.ts `TapQueue`) for a koffi worker: each
 * frame is a writev(2) of up to MAX_SEGS + 2 iovecs kept in this object's own iovec area, and
 * `sync()` writes the queued frames in order — one `io_uring_enter` for the lot when there
 * are URING_MIN or more and the worker has a ring, else one writev(2) each (a lone frame, a
 * ping's, is cheaper that way). A frame whose write fails counts its segments as dropped in
 * stats[base + dropIdx]. Hot path: no allocation, no throwing.
 *
 * Ordering: the kernel runs these TAP writes inline and in submission order, because TAP
 * files take nonblocking I/O (`tapNowaitIo`); where they do not, the worker passes no ring.
 */
import { libc, O_CLOEXEC, O_NONBLOCK, O_RDWR, type Libc } from './libc.js';
import { MAX_SEGS, type TapQueue } from '../offload/gro.js';
import { bufAddress } from './tapio.js';
import { EBADFD } from './errno.js';
import { TUN_PATH } from './tap.js';
import type { Uring } from './uring.js';

const TWO32 = 4294967296;
/** Frames per sync at most (a fuller queue syncs by itself). */
const MAX_FRAMES = 64;
/** Pieces of one frame at most: a super-frame's headers, first payload and MAX_SEGS - 1 more. */
const MAX_PIECES_PER_FRAME = MAX_SEGS + 2;
const MAX_PIECES = 512;
/** From this many frames on, one io_uring_enter is cheaper than a writev(2) each. */
const URING_MIN = 3;

export class TapWriteQueue implements TapQueue {
  /** Frames whose write failed, and frames written through io_uring. */
  writeErrors = 0;
  uringFrames = 0;
  private readonly c: Libc;
  private readonly iov: Uint32Array;
  private readonly iovAddr: number;
  private readonly fd = new Int32Array(MAX_FRAMES);
  private readonly base = new Int32Array(MAX_FRAMES);
  private readonly nseg = new Int32Array(MAX_FRAMES);
  private readonly first = new Int32Array(MAX_FRAMES);
  private readonly count = new Int32Array(MAX_FRAMES);
  private n = 0;
  private pieces = 0;

  constructor(
    private readonly stats: Float64Array,
    private readonly dropIdx: number,
    private readonly ring: Uring | null,
  ) {
    this.c = libc();
    const mem = new ArrayBuffer(MAX_PIECES * 16);
    this.iov = new Uint32Array(mem);
    this.iovAddr = this.c.addressOf(mem);
  }

  get queued(): number {
    return this.n;
  }

  address(buf: Buffer): number {
    return bufAddress(this.c, buf);
  }

  begin(fd: number, base: number, nseg: number): void {
    if (this.n === MAX_FRAMES || this.pieces + MAX_PIECES_PER_FRAME > MAX_PIECES) this.sync();
    const k = this.n++;
    this.fd[k] = fd;
    this.base[k] = base;
    this.nseg[k] = nseg;
    this.first[k] = this.pieces;
    this.count[k] = 0;
  }

  piece(addr: number, len: number): void {
    const o = this.pieces++ << 2;
    const w = this.iov;
    w[o] = addr >>> 0;
    w[o + 1] = Math.floor(addr / TWO32);
    w[o + 2] = len;
    w[o + 3] = 0;
    this.count[this.n - 1]++;
  }

  sync(): void {
    const n = this.n;
    if (n === 0) return;
    this.n = 0;
    this.pieces = 0;
    const ring = this.ring;
    let k = 0;
    if (ring !== null && n >= URING_MIN) {
      for (let j = 0; j < n; j++) ring.queueWritev(this.fd[j], this.iovAddr + this.first[j] * 16, this.count[j], j);
      const r = ring.submit();
      if (r > 0) {
        const got = ring.reap();
        for (let j = 0; j < got; j++) if (ring.res[j] < 0) this.failed(ring.tag[j]);
        this.uringFrames += r;
        k = r; // the kernel took frames [0, r); the rest, if any, one writev each, after them
      }
    }
    const c = this.c;
    for (; k < n; k++) if (c.writev(this.fd[k], this.iovAddr + this.first[k] * 16, this.count[k]) < 0) this.failed(k);
  }

  private failed(k: number): void {
    this.writeErrors++;
    this.stats[this.base[k] + this.dropIdx] += this.nseg[k];
  }
}

let nowait: boolean | null = null;

/**
 * True when io_uring runs TAP reads and writes inline, in order (the TAP file takes
 * nonblocking I/O: FMODE_NOWAIT). Probed once per thread with an RWF_NOWAIT read of a
 * /dev/net/tun file attached to no device: a kernel with it passes the read on and the file
 * answers EBADFD; anything else (EOPNOTSUPP: refused before the file is asked; EINVAL: no
 * IORING_OP_READ) means no. Never throws.
 */
export function tapNowaitIo(ring: Uring): boolean {
  if (nowait !== null) return nowait;
  nowait = false;
  const c = libc();
  const fd = c.open(TUN_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) return false;
  const buf = new ArrayBuffer(64);
  if (ring.queueRead(fd, c.addressOf(buf), 64, 0) && ring.submit() === 1 && ring.reap() === 1) {
    nowait = ring.res[0] === -EBADFD;
  }
  c.close(fd);
  return nowait;
}

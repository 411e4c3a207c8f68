/**
 * Preallocated packet batches for recvmmsg/sendmmsg/read/write through koffi: the hot path.
 *
 * Memory: one ArrayBuffer per Batch, allocated once, holding
 *   [ slab: n × slotSize ][ mmsghdr × n ][ iovec × n ][ src sockaddr × n ][ dst sockaddr × n ]
 *   [ cmsg × n, only with `cmsg: true` ]
 * (sockaddr slots are SOCKADDR_SLOT = 32 bytes, control slots CMSG_SLOT = 32 bytes). Sources (written by receives) and
 * destinations (read by sends) are kept apart so a receive never redirects a later send.
 * Its address is taken once (ArrayBuffer backing stores never move); every mmsghdr points at
 * its iovec, and every iovec at its slot. Each call only rewrites the few words that depend
 * on `off[i]` / `len[i]` (plain Uint32Array stores) and passes the arrays' *address as a
 * number* to koffi, so no marshalling happens per call and nothing is allocated.
 *
 * Slot i's data lives at `buf[i * slotSize + off[i]]`, `len[i]` bytes. `off[i]` is the
 * caller's headroom (e.g. HEADROOM for TAP reads so that encap can prepend the header in
 * place; the packet start for sends). Receives write at `off[i]` and may use up to
 * `slotSize - off[i]` bytes; a longer datagram is truncated (`flags[i] & MSG_TRUNC`).
 *
 * Return values: counts ≥ 0, or a negative errno (-EAGAIN, -ENOBUFS = backpressure; see
 * errno.ts). These functions never throw and never allocate.
 *
 * Thread-safety: a Batch belongs to one thread (create it in the worker that uses it).
 * The memory must not be reused while a call on another thread could still be using it;
 * all calls here are synchronous, so returning means the kernel is done with it.
 * Layout assumes LP64 Linux (x86_64, aarch64): iovec 16 bytes, msghdr 56, mmsghdr 64.
 */
import type { PacketBatch } from '../device.js';
import { checksumMemory } from '../offload/csum.js';
import { libc, SOL_UDP, UDP_GRO, type Libc } from './libc.js';
import { EAGAIN, ECONNREFUSED, EHOSTUNREACH, ENETUNREACH } from './errno.js';
import { SOCKADDR_SLOT } from './udp.js';

/** errnos that only report an ICMP error queued on a connected socket (consumed by the call). */
function isIcmpReport(e: number): boolean {
  return e === ECONNREFUSED || e === EHOSTUNREACH || e === ENETUNREACH || e === 112; // EHOSTDOWN
}

export const MMSGHDR_SIZE = 64;
export const IOVEC_SIZE = 16;
// msghdr field offsets (bytes)
const MSG_NAMELEN = 8;
const MSG_IOV = 16;
const MSG_IOVLEN = 24;
const MSG_CONTROL = 32;
const MSG_CONTROLLEN = 40;
const MSG_FLAGS = 48;
const MSG_LEN = 56; // mmsghdr.msg_len
const TWO32 = 4294967296;
/** Control bytes per slot for receives: room for one CMSG_SPACE(sizeof(int)) = 24, 8-aligned. */
export const CMSG_SLOT = 32;

export interface BatchOptions {
  /** Number of slots (max packets per call). */
  n: number;
  /** Bytes per slot; rounded up to a multiple of 64. Headroom + max packet. */
  slotSize: number;
  /** Initial off[i] for every slot (default 0). */
  headroom?: number;
  /**
   * Receives read ancillary data (default false): `gso[i]` is then set from a UDP_GRO
   * control message (a socket with UDP_GRO on hands over runs of datagrams as one).
   */
  cmsg?: boolean;
  /**
   * The memory comes from `checksumMemory` (default false): Internet checksums over its
   * slots run as WebAssembly SIMD (the tx offload slab, where every TSO segment is summed).
   */
  checksums?: boolean;
}

export class Batch implements PacketBatch {
  readonly n: number;
  readonly slotSize: number;
  /** Whole slab: slot i = buf[i*slotSize, (i+1)*slotSize). */
  readonly buf: Buffer;
  /** Data offset inside each slot (caller-managed). */
  readonly off: Uint32Array;
  /** Data length per slot: set by receives, read by sends. */
  readonly len: Uint32Array;
  /** msg_flags per slot after recvBatch (MSG_TRUNC = 0x20 means the datagram was cut). */
  readonly flags: Uint32Array;
  /** Source sockaddrs written by recvBatch, SOCKADDR_SLOT bytes per slot (see srcAt/srcAddrOff). */
  readonly src: Buffer;
  /** Per-slot source sockaddr length after recvBatch. */
  readonly srcLen: Uint32Array;
  /** Per-slot destination sockaddrs for sendBatch (see setDest/dstAt), SOCKADDR_SLOT bytes each. */
  readonly dst: Buffer;
  /** Per-slot destination length for sendBatch; 0 = none (connected socket). Caller-managed. */
  readonly dstLen: Uint32Array;
  /**
   * After recvBatch on a batch made with `cmsg: true`: the segment size when slot i holds
   * several datagrams coalesced by UDP GRO (each `gso[i]` bytes, the last may be shorter),
   * else 0. Always 0 without `cmsg`.
   */
  readonly gso: Uint32Array;
  /** Address of buf[0] (number). */
  readonly base: number;
  /** Address of mmsghdr[0]. */
  readonly msgvec: number;
  private readonly srcBase: number;
  private readonly dstBase: number;
  /** Address of the control slots (0 = receives read no ancillary data). */
  private readonly ctlBase: number;
  /** 32-bit view of the control slots (empty without `cmsg`). */
  private readonly cw: Int32Array;
  /** 32-bit view of the control area (mmsghdr + iovec). */
  private readonly w: Uint32Array;
  private readonly iovW: number; // word index of iovec[0]
  private readonly mem: ArrayBuffer;
  /** This thread's libc bindings (used by the batch functions). */
  readonly c: Libc;

  /** Shared destinations (addDest): SOCKADDR_SLOT bytes each, grown on the cold path. */
  private dests: ArrayBuffer;
  private destBase: number;
  private destLen: Uint32Array;
  private readonly destFree: number[] = [];
  private destUsed = 0;

  /** `new Batch({n, slotSize, headroom})` or `new Batch(n, slotSize)`. */
  constructor(nOrOpts: number | BatchOptions, slotBytes?: number) {
    const o: BatchOptions = typeof nOrOpts === 'number' ? { n: nOrOpts, slotSize: slotBytes ?? 2048 } : nOrOpts;
    if (!(o.n > 0 && o.n <= 1024)) throw new RangeError('Batch n must be 1..1024 (UIO_MAXIOV)');
    const slotSize = Math.ceil(o.slotSize / 64) * 64;
    this.n = o.n;
    this.slotSize = slotSize;
    const slab = o.n * slotSize;
    const ctlOff = slab;
    const iovOff = ctlOff + o.n * MMSGHDR_SIZE;
    const addrOff = iovOff + o.n * IOVEC_SIZE;
    const dstOff = addrOff + o.n * SOCKADDR_SLOT;
    const cmsgOff = dstOff + o.n * SOCKADDR_SLOT;
    const total = cmsgOff + (o.cmsg ? o.n * CMSG_SLOT : 0);
    this.mem = o.checksums === true ? checksumMemory(total) : new ArrayBuffer(total);
    this.c = libc();
    const memBase = this.c.addressOf(this.mem);
    this.buf = Buffer.from(this.mem, 0, slab);
    this.src = Buffer.from(this.mem, addrOff, o.n * SOCKADDR_SLOT);
    this.dst = Buffer.from(this.mem, dstOff, o.n * SOCKADDR_SLOT);
    this.w = new Uint32Array(this.mem, ctlOff, (addrOff - ctlOff) / 4);
    this.iovW = (iovOff - ctlOff) / 4;
    this.base = memBase;
    this.msgvec = memBase + ctlOff;
    this.srcBase = memBase + addrOff;
    this.dstBase = memBase + dstOff;
    this.ctlBase = o.cmsg ? memBase + cmsgOff : 0;
    this.cw = new Int32Array(this.mem, cmsgOff, o.cmsg ? (o.n * CMSG_SLOT) / 4 : 0);
    this.gso = new Uint32Array(o.n);
    this.off = new Uint32Array(o.n).fill(o.headroom ?? 0);
    this.len = new Uint32Array(o.n);
    this.flags = new Uint32Array(o.n);
    this.srcLen = new Uint32Array(o.n);
    this.dstLen = new Uint32Array(o.n);
    this.dests = new ArrayBuffer(16 * SOCKADDR_SLOT);
    this.destBase = this.c.addressOf(this.dests);
    this.destLen = new Uint32Array(16);
    const w = this.w;
    for (let i = 0; i < o.n; i++) {
      const m = (i * MMSGHDR_SIZE) / 4;
      const iovAddr = memBase + iovOff + i * IOVEC_SIZE;
      w[m + MSG_IOV / 4] = iovAddr >>> 0;
      w[m + MSG_IOV / 4 + 1] = Math.floor(iovAddr / TWO32);
      w[m + MSG_IOVLEN / 4] = 1;
      const v = this.iovW + i * 4;
      const slot = memBase + i * slotSize;
      w[v] = slot >>> 0;
      w[v + 1] = Math.floor(slot / TWO32);
    }
  }

  /** Alias of `buf` (the slab). */
  get slab(): Buffer {
    return this.buf;
  }

  /** Alias of `src`: received source sockaddrs, SOCKADDR_SLOT bytes per slot. */
  get srcAddr(): Buffer {
    return this.src;
  }

  /**
   * Offset in `srcAddr` of slot i's source *address bytes* after recvBatch: +4 in a
   * sockaddr_in (4 bytes), +8 in a sockaddr_in6 (16 bytes).
   */
  srcAddrOff(i: number): number {
    const o = i * SOCKADDR_SLOT;
    return this.src[o] === 2 ? o + 4 : o + 8;
  }

  /**
   * Register a destination sockaddr shared by many sends (e.g. a raw-IP tunnel's remote);
   * returns its index for sendBatch's `dest`. Cold path (may grow the table).
   */
  addDest(sa: Uint8Array): number {
    let i = this.destFree.pop();
    if (i === undefined) {
      i = this.destUsed++;
      if (i >= this.destLen.length) {
        const cap = this.destLen.length * 2;
        const nd = new ArrayBuffer(cap * SOCKADDR_SLOT);
        new Uint8Array(nd).set(new Uint8Array(this.dests));
        const nl = new Uint32Array(cap);
        nl.set(this.destLen);
        this.dests = nd;
        this.destLen = nl;
        this.destBase = this.c.addressOf(nd);
      }
    }
    new Uint8Array(this.dests, i * SOCKADDR_SLOT, SOCKADDR_SLOT).set(sa.subarray(0, SOCKADDR_SLOT));
    this.destLen[i] = sa.length;
    return i;
  }

  /** Release an index from addDest. */
  freeDest(i: number): void {
    this.destLen[i] = 0;
    this.destFree.push(i);
  }

  /** Address of slot i's data (base + i*slotSize + off[i]). */
  ptr(i: number): number {
    return this.base + i * this.slotSize + this.off[i];
  }

  /** Byte offset of slot i's data in `buf`. */
  at(i: number): number {
    return i * this.slotSize + this.off[i];
  }

  /** Byte offset of slot i's sockaddr in `src`. */
  srcAt(i: number): number {
    return i * SOCKADDR_SLOT;
  }

  /** Byte offset of slot i's sockaddr in `dst`. */
  dstAt(i: number): number {
    return i * SOCKADDR_SLOT;
  }

  /** Copy a sockaddr (e.g. from rawDest) into slot i's destination (no allocation). */
  setDest(i: number, sa: Uint8Array): void {
    this.dst.set(sa, i * SOCKADDR_SLOT);
    this.dstLen[i] = sa.length;
  }

  /** Fill msg i for a receive (iov at off[i], room to the slot end). */
  prepRecv(i: number, withSource: boolean): void {
    const w = this.w;
    const m = i << 4; // MMSGHDR_SIZE / 4
    const o = this.off[i];
    const a = this.base + i * this.slotSize + o;
    const v = this.iovW + (i << 2);
    w[v] = a >>> 0;
    w[v + 1] = Math.floor(a / TWO32);
    w[v + 2] = this.slotSize - o;
    w[v + 3] = 0;
    if (withSource) {
      const s = this.srcBase + i * SOCKADDR_SLOT;
      w[m] = s >>> 0;
      w[m + 1] = Math.floor(s / TWO32);
      w[m + 2] = SOCKADDR_SLOT;
    } else {
      w[m] = 0;
      w[m + 1] = 0;
      w[m + 2] = 0;
    }
    if (this.ctlBase !== 0) {
      const c = this.ctlBase + i * CMSG_SLOT;
      w[m + MSG_CONTROL / 4] = c >>> 0;
      w[m + MSG_CONTROL / 4 + 1] = Math.floor(c / TWO32);
      w[m + MSG_CONTROLLEN / 4] = CMSG_SLOT; // the kernel writes back what it used
    }
    w[m + MSG_FLAGS / 4] = 0;
  }

  /**
   * After a receive: the UDP_GRO segment size in slot i's ancillary data, or 0. The slot
   * holds at most one control message (struct cmsghdr: size_t len; int level; int type;
   * then an int gso_size), since UDP_GRO is the only one a tunnel socket asks for.
   */
  groSize(i: number): number {
    if (this.ctlBase === 0 || this.w[(i << 4) + MSG_CONTROLLEN / 4] < 20) return 0;
    const c = (i * CMSG_SLOT) >>> 2;
    const cw = this.cw;
    return cw[c] >= 20 && cw[c + 2] === SOL_UDP && cw[c + 3] === UDP_GRO ? cw[c + 4] >>> 0 : 0;
  }

  /**
   * Fill msg i for a send (iov = off[i], len[i]). Destination: shared `dest` (addDest index)
   * when ≥ 0, else slot i's own `dst` when dstLen[i] > 0, else none (connected socket).
   */
  prepSend(i: number, dest: number): void {
    const w = this.w;
    const m = i << 4;
    const a = this.base + i * this.slotSize + this.off[i];
    const v = this.iovW + (i << 2);
    w[v] = a >>> 0;
    w[v + 1] = Math.floor(a / TWO32);
    w[v + 2] = this.len[i]!;
    w[v + 3] = 0;
    if (dest >= 0) {
      const s = this.destBase + dest * SOCKADDR_SLOT;
      w[m] = s >>> 0;
      w[m + 1] = Math.floor(s / TWO32);
      w[m + 2] = this.destLen[dest]!;
      if (this.ctlBase !== 0) this.noControl(m);
      w[m + MSG_FLAGS / 4] = 0;
      return;
    }
    const al = this.dstLen[i];
    if (al > 0) {
      const s = this.dstBase + i * SOCKADDR_SLOT;
      w[m] = s >>> 0;
      w[m + 1] = Math.floor(s / TWO32);
      w[m + 2] = al;
    } else {
      w[m] = 0;
      w[m + 1] = 0;
      w[m + 2] = 0;
    }
    if (this.ctlBase !== 0) this.noControl(m);
    w[m + MSG_FLAGS / 4] = 0;
  }

  /** Sends carry no ancillary data: clears what a receive into the same mmsghdr set. */
  private noControl(m: number): void {
    const w = this.w;
    w[m + MSG_CONTROL / 4] = 0;
    w[m + MSG_CONTROL / 4 + 1] = 0;
    w[m + MSG_CONTROLLEN / 4] = 0;
    w[m + MSG_CONTROLLEN / 4 + 1] = 0;
  }

  /** msg_len of mmsghdr i (after a call). */
  msgLen(i: number): number {
    return this.w[(i << 4) + MSG_LEN / 4];
  }

  /** msg_namelen of mmsghdr i (after a receive). */
  nameLen(i: number): number {
    return this.w[(i << 4) + MSG_NAMELEN / 4];
  }

  /** msg_flags of mmsghdr i (after a receive). */
  msgFlags(i: number): number {
    return this.w[(i << 4) + MSG_FLAGS / 4];
  }
}

/**
 * recvmmsg(fd) into slots [0, n): returns n ≥ 1, 0 when nothing was ready (EAGAIN on a
 * nonblocking socket or with MSG_DONTWAIT), or -errno. `headroom` ≥ 0 first sets every
 * off[i] to it (-1 keeps the caller's off[]). Sets len[i], flags[i] (MSG_TRUNC = cut), and
 * the source sockaddr per slot (`src` / `srcLen[i]`, `srcAddrOff(i)`) — needed for raw
 * IPv6, cheap for the rest; `withSource = false` skips it (srcLen[i] = 0) — and, for a
 * batch made with `cmsg: true`, gso[i] (UDP GRO segment size, 0 for a single datagram). `flags`:
 * MSG_DONTWAIT, MSG_WAITFORONE (block for the first only; the fd must be blocking).
 */
export function recvBatch(fd: number, b: Batch, maxN: number, headroom = -1, flags = 0, withSource = true): number {
  const n = maxN < b.n ? maxN : b.n;
  if (headroom >= 0) b.off.fill(headroom, 0, n);
  for (let i = 0; i < n; i++) b.prepRecv(i, withSource);
  const r = b.c.recvmmsg(fd, b.msgvec, n, flags, 0);
  if (r < 0) {
    const e = b.c.errno();
    // EAGAIN: nothing ready. ICMP reports (ECONNREFUSED, ...) on a connected UDP socket are
    // consumed by this call and mean nothing to L2TP (the kernel never sees them): 0.
    return e === EAGAIN || isIcmpReport(e) ? 0 : -e;
  }
  for (let i = 0; i < r; i++) {
    b.len[i] = b.msgLen(i);
    b.flags[i] = b.msgFlags(i);
    b.srcLen[i] = withSource ? b.nameLen(i) : 0;
    b.gso[i] = b.groSize(i);
  }
  return r;
}

/**
 * sendmmsg(fd) of slots [start, start+count): each slot sends `len[i]` bytes from `off[i]`,
 * to the shared destination `dest` (an addDest index) when ≥ 0, else to `dst`/`dstLen[i]`
 * when dstLen[i] > 0 (raw/unconnected sockets), else to the connected peer. Returns how many were accepted (the rest are backpressure or failed:
 * retry or drop them), or -errno when the first one failed (-EAGAIN/-ENOBUFS =
 * backpressure). On a connected UDP socket an ICMP error from the peer (port unreachable, ...)
 * is reported by the kernel in place of sending one packet: when that hits the first packet
 * it is retried here once; when it hits a later one the count is short and the caller's
 * normal "send the rest" retry sends it.
 */
export function sendBatch(fd: number, b: Batch, start: number, count: number, dest = -1, flags = 0): number {
  const end = start + count;
  for (let i = start; i < end; i++) b.prepSend(i, dest);
  let r = b.c.sendmmsg(fd, b.msgvec + start * MMSGHDR_SIZE, count, flags);
  if (r < 0) {
    const e = b.c.errno();
    if (!isIcmpReport(e)) return -e;
    // A pending ICMP error (peer port unreachable, ...) was reported instead of sending the
    // first packet, and is now cleared: retry once, so the packet is not lost (the kernel's
    // L2TP transmit path never reports these either).
    r = b.c.sendmmsg(fd, b.msgvec + start * MMSGHDR_SIZE, count, flags);
    if (r < 0) return -b.c.errno();
  }
  return r;
}

/**
 * The koffi workers' offload path (see README.md here): used for session
 * TAPs opened with IFF_VNET_HDR and TUNSETOFFLOAD CSUM|TSO4|TSO6 (dataplane.ts).
 *
 * tx (`TxOffload.run`): frames read from the TAP each start with a virtio_net_hdr. TCP
 * super-frames are cut into MSS-sized frames (tso.ts), partial checksums are completed,
 * every resulting frame is copied or written into a slot of `out` at HEADROOM, gets its
 * own L2TP header (engine encap: own sequence number, cookie) and leaves with sendmmsg in
 * batches of up to OUT_N packets. On the wire nothing differs from the per-frame path.
 *
 * rx: the worker's sink hands frames for such TAPs to a `Coalescer` (gro.ts), flushed at the
 * end of every receive batch.
 *
 * Which TAP fds carry a virtio_net_hdr is kept in a byte per fd (`markVnet`, `isVnet`).
 * Hot path: no allocation, no throwing.
 */
import { countTx, countTxError, encap } from '../../engine/encap.js';
import { HEADROOM } from '../../engine/layout.js';
import type { Session } from '../../engine/session.js';
import { Batch, MMSGHDR_SIZE, readFrames, sendBatch } from '../koffi/batch.js';
import { SOL_UDP, UDP_SEGMENT } from '../koffi/libc.js';
import { waitWritable } from '../koffi/udp.js';
import { completeCsum, parseSuper, SuperFrame, TSO_OK, writeSegment } from './tso.js';
import { GSO_NONE, parseVnet, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, VnetHdr } from './vnet.js';

/** Packets per sendmmsg on the offload path. */
export const OUT_N = 128;
/** Output slot: headroom + the largest frame a TAP can hand us (pages are touched lazily). */
const OUT_SLOT = HEADROOM + 65535 + 64;

let vnetFds = new Uint8Array(1024);

/** Remember whether TAP `fd` carries a virtio_net_hdr on every frame (cold path). */
export function markVnet(fd: number, on: boolean): void {
  if (fd < 0) return;
  if (fd >= vnetFds.length) {
    let n = vnetFds.length;
    while (n <= fd) n *= 2;
    const a = new Uint8Array(n);
    a.set(vnetFds);
    vnetFds = a;
  }
  vnetFds[fd] = on ? 1 : 0;
}

/** True when TAP `fd` was marked with markVnet(fd, true). */
export function isVnet(fd: number): boolean {
  return fd >= 0 && fd < vnetFds.length && vnetFds[fd] === 1;
}

/**
 * Called with each output batch before it is sent (capture, impairment), slots
 * [first, first + n) of `b`: returns true when it took the packets (then they are neither
 * sent nor counted here).
 */
export type OutHook = (s: Session, b: Batch, first: number, n: number) => boolean;

/** Segments per GSO send (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels). */
const GSO_MAX_SEGS = 64;
/** Bytes per GSO send (UDP payload; the IPv4 limit is 65507). */
const GSO_MAX_BYTES = 65000;
const CMSG_SPACE_U16 = 24; // CMSG_SPACE(2) on LP64
const TWO32 = 4294967296;

/**
 * UDP GSO for tunnels that send UDP checksums (the kernel refuses UDP_SEGMENT with
 * SO_NO_CHECK): runs of equal-sized packets (the last may be shorter) leave as one sendmsg
 * with a UDP_SEGMENT control message; each segment is still one ordinary L2TP packet on the
 * wire. Its own mmsghdr/iovec/cmsg arrays point into the caller's slab. A tunnel whose socket
 * refuses it (EINVAL/EIO) is switched back to sendmmsg of single packets for good.
 */
class GsoSender {
  private readonly mem: ArrayBuffer;
  private readonly w: Uint32Array;
  private readonly memBase: number;
  private readonly iovOff: number;
  private readonly cmsgOff: number;
  /** Per message: first slot and slot count. */
  private readonly first: Uint32Array;
  private readonly count: Uint32Array;
  /** GSO sends made and segments sent in them. */
  sends = 0;
  segments = 0;

  constructor(private readonly b: Batch, private readonly n: number) {
    this.iovOff = n * MMSGHDR_SIZE;
    this.cmsgOff = this.iovOff + n * 16;
    this.mem = new ArrayBuffer(this.cmsgOff + n * CMSG_SPACE_U16);
    this.w = new Uint32Array(this.mem);
    this.memBase = b.c.addressOf(this.mem);
    this.first = new Uint32Array(n);
    this.count = new Uint32Array(n);
    for (let g = 0; g < n; g++) {
      const c = (this.cmsgOff + g * CMSG_SPACE_U16) >>> 2;
      this.w[c] = 18; // cmsg_len = CMSG_LEN(2)
      this.w[c + 1] = 0;
      this.w[c + 2] = SOL_UDP;
      this.w[c + 3] = UDP_SEGMENT;
    }
  }

  private put64(word: number, v: number): void {
    this.w[word] = v >>> 0;
    this.w[word + 1] = Math.floor(v / TWO32);
  }

  /**
   * Sends slots [first, first + n) of the batch on the connected socket `fd`; counts each
   * segment sent with `countTx`. Returns -1 when the socket refused GSO before anything was
   * sent (the caller falls back), else 0 (other failures counted as tx errors).
   */
  send(s: Session, fd: number, first: number, n: number): number {
    const b = this.b;
    const ss = b.slotSize;
    const w = this.w;
    // Group the slots into messages.
    let msgs = 0;
    let i = first;
    const end = first + n;
    let iov = 0;
    while (i < end) {
      const size = b.len[i]!;
      let k = 1;
      let bytes = size;
      while (i + k < end && k < GSO_MAX_SEGS) {
        const l = b.len[i + k]!;
        if (l > size || bytes + l > GSO_MAX_BYTES) break;
        k++;
        bytes += l;
        if (l < size) break; // a shorter packet ends the run
      }
      const m = (msgs * MMSGHDR_SIZE) >>> 2;
      w[m] = 0; // msg_name
      w[m + 1] = 0;
      w[m + 2] = 0; // msg_namelen
      this.put64(m + 4, this.memBase + this.iovOff + iov * 16); // msg_iov
      w[m + 6] = k; // msg_iovlen
      w[m + 7] = 0;
      if (k > 1) {
        this.put64(m + 8, this.memBase + this.cmsgOff + msgs * CMSG_SPACE_U16); // msg_control
        w[m + 10] = CMSG_SPACE_U16; // msg_controllen
        w[((this.cmsgOff + msgs * CMSG_SPACE_U16) >>> 2) + 4] = size; // gso_size (u16, little-endian)
      } else {
        w[m + 8] = 0;
        w[m + 9] = 0;
        w[m + 10] = 0;
      }
      w[m + 11] = 0;
      w[m + 12] = 0; // msg_flags
      for (let j = 0; j < k; j++) {
        const v = (this.iovOff >>> 2) + (iov + j) * 4;
        this.put64(v, b.base + (i + j) * ss + b.off[i + j]!);
        w[v + 2] = b.len[i + j]!;
        w[v + 3] = 0;
      }
      this.first[msgs] = i;
      this.count[msgs] = k;
      iov += k;
      msgs++;
      i += k;
    }
    let done = 0;
    let tries = 0;
    while (done < msgs) {
      const r = b.c.sendmmsg(fd, this.memBase + done * MMSGHDR_SIZE, msgs - done, 0);
      if (r > 0) {
        for (let g = done; g < done + r; g++) {
          const f = this.first[g]!;
          const k = this.count[g]!;
          for (let j = f; j < f + k; j++) countTx(s, b.len[j]!);
          if (k > 1) {
            this.sends++;
            this.segments += k;
          }
        }
        done += r;
        tries = 0;
        continue;
      }
      const e = b.c.errno();
      if ((e === 11 || e === 105) && tries++ < 50) {
        waitWritable(fd, 2);
        continue;
      }
      if ((e === 22 || e === 5) && done === 0) return -1; // EINVAL / EIO: no GSO on this socket
      // other errors (ICMP reports, no route): the message's packets are lost
      for (let j = 0; j < this.count[done]!; j++) countTxError(s);
      done++;
    }
    return 0;
  }
}

/** Coalescing flows per rx worker (extra slots of its receive slab). */
export const GRO_FLOWS = 8;

/** TAP reads per round on the offload path. */
export const IN_N = 64;

export class TxOffload {
  /**
   * One slab for reads and output: slots [0, IN_N) take (super-)frames from the TAP, slots
   * [IN_N, IN_N + OUT_N) the packets to send, so that frames move with copyWithin (no
   * allocation) and one sendmmsg covers the output slots.
   */
  readonly io: Batch;
  /** Staging for hooks that want slots [0, n) of a batch of their own (impairment). */
  readonly out: Batch;
  /** Super-frames segmented, segments produced, frames dropped as malformed. */
  superFrames = 0;
  segments = 0;
  malformed = 0;
  private on = 0;
  private readonly vh = new VnetHdr();
  private readonly sf = new SuperFrame();
  private readonly gso: GsoSender;
  /** Per socket fd: 1 = try UDP GSO, 2 = refused (do not try again), 0 = never. */
  private gsoFd = new Uint8Array(1024);

  constructor(private readonly hook: OutHook) {
    this.io = new Batch(IN_N + OUT_N, OUT_SLOT);
    this.out = new Batch(OUT_N, OUT_SLOT);
    this.gso = new GsoSender(this.io, OUT_N);
  }

  /** GSO sends and the segments they carried (UDP tunnels with checksums). */
  get gsoSends(): number {
    return this.gso.sends;
  }

  /**
   * Cold path (tunnel added): `fd` is a connected UDP tunnel socket that sends checksums
   * (IPv4 udp_csum on, IPv6 udp6_csum_tx on), so UDP GSO may be used on it. `on` false
   * forgets it (tunnel removed; the fd number may be reused).
   */
  setGso(fd: number, on: boolean): void {
    if (fd < 0) return;
    if (process.env.UL2TP_UDP_GSO === '0') on = false;
    if (fd >= this.gsoFd.length) {
      let n = this.gsoFd.length;
      while (n <= fd) n *= 2;
      const a = new Uint8Array(n);
      a.set(this.gsoFd);
      this.gsoFd = a;
    }
    this.gsoFd[fd] = on ? 1 : 0;
  }

  /**
   * Registers a shared destination (raw IP tunnel remote) in the offload batches under the
   * same index the worker's batch gave it (`idx`): the worker's TunnelCtx.dest, which the
   * impairment code also uses with `out`, is then valid here too. All batches see the same
   * add/free sequence, so the indices agree; a mismatch (never expected) throws on this cold
   * path rather than sending to a wrong address.
   */
  mirrorDest(sa: Uint8Array, idx: number): void {
    const a = this.io.addDest(sa);
    const b = this.out.addDest(sa);
    if (a !== idx || b !== idx) throw new Error(`offload destination index mismatch (${idx}, ${a}, ${b})`);
  }

  /** Releases a destination registered with mirrorDest. */
  mirrorFreeDest(idx: number): void {
    this.io.freeDest(idx);
    this.out.freeDest(idx);
  }

  /**
   * Up to `rounds` batches from the TAP of session `s` (each frame behind a virtio_net_hdr)
   * → L2TP packets sent on `fd` (raw IP: shared destination `dest`).
   */
  pump(s: Session, fd: number, dest: number, rounds: number): void {
    for (let round = 0; round < rounds; round++) {
      const n = readFrames(s.dev, this.io, IN_N, HEADROOM);
      if (n <= 0) return;
      this.run(s, n, fd, dest);
      if (n < IN_N) return;
    }
  }

  /** Copies slots [first, first + n) of `b` into out[0, n) (for OutHook implementations). */
  stage(b: Batch, first: number, n: number): Batch {
    const o = this.out;
    for (let j = 0; j < n; j++) {
      const at = (first + j) * b.slotSize + b.off[first + j]!;
      const len = b.len[first + j]!;
      b.buf.copy(o.buf, j * o.slotSize + HEADROOM, at, at + len);
      o.off[j] = HEADROOM;
      o.len[j] = len;
    }
    return o;
  }

  /**
   * Frames in io slots [0, n) (at off[j], len[j]: virtio_net_hdr + frame) → packets sent in
   * batches. Called by pump(); public for tests that place frames themselves.
   */
  run(s: Session, n: number, fd: number, dest: number): void {
    const io = this.io;
    const slab = io.buf;
    const ss = io.slotSize;
    const maxSeg = ss - HEADROOM;
    const vh = this.vh;
    const sf = this.sf;
    // Leading ordinary frames (no GSO): L2TP header written in place over the virtio_net_hdr,
    // sent straight from the input slots, like the per-frame path (small packets pay nothing
    // extra but the header parse and, for partial checksums, the checksum).
    let j = 0;
    for (; j < n; j++) {
      const at = j * ss + io.off[j]!;
      const len = io.len[j]!;
      if (!parseVnet(slab, at, len, vh) || vh.gsoType !== GSO_NONE || len < VNET_HDR_LEN + 14) break;
      const fo = at + VNET_HDR_LEN;
      const fl = len - VNET_HDR_LEN;
      if ((vh.flags & VNET_F_NEEDS_CSUM) !== 0 && !completeCsum(slab, fo, fl, vh.csumStart, vh.csumOffset)) break;
      const st = encap(s, slab, fo, fl);
      io.off[j] = st - j * ss;
      io.len[j] = fl + (fo - st);
    }
    if (j > 0) this.send(s, fd, dest, 0, j);
    for (; j < n; j++) {
      const at = j * ss + io.off[j]!;
      const len = io.len[j]!;
      if (!parseVnet(slab, at, len, vh)) {
        this.malformed++;
        countTxError(s);
        continue;
      }
      const fo = at + VNET_HDR_LEN;
      const fl = len - VNET_HDR_LEN;
      if (vh.gsoType === GSO_NONE) {
        if (fl < 14 || fl > maxSeg) {
          this.malformed++;
          countTxError(s);
          continue;
        }
        if ((vh.flags & VNET_F_NEEDS_CSUM) !== 0 && !completeCsum(slab, fo, fl, vh.csumStart, vh.csumOffset)) {
          this.malformed++;
          countTxError(s);
          continue;
        }
        if (this.on === OUT_N) this.flush(s, fd, dest);
        const o = (IN_N + this.on) * ss + HEADROOM;
        slab.copyWithin(o, fo, fo + fl);
        this.push(s, o, fl);
        continue;
      }
      if (parseSuper(slab, fo, fl, vh, maxSeg, sf) !== TSO_OK) {
        this.malformed++;
        countTxError(s);
        continue;
      }
      this.superFrames++;
      const nseg = sf.nseg;
      for (let k = 0; k < nseg; k++) {
        if (this.on === OUT_N) this.flush(s, fd, dest);
        const o = (IN_N + this.on) * ss + HEADROOM;
        this.push(s, o, writeSegment(sf, slab, fo, k, slab, o));
      }
      this.segments += nseg;
    }
    this.flush(s, fd, dest);
  }

  private push(s: Session, o: number, len: number): void {
    const i = IN_N + this.on++;
    const io = this.io;
    const st = encap(s, io.buf, o, len);
    io.off[i] = st - i * io.slotSize;
    io.len[i] = len + (o - st);
  }

  /** Sends the output slots. */
  private flush(s: Session, fd: number, dest: number): void {
    const n = this.on;
    if (n === 0) return;
    this.on = 0;
    this.send(s, fd, dest, IN_N, n);
  }

  /** Sends io slots [first, first + n): like the per-frame path (backpressure waits briefly, errors drop one). */
  private send(s: Session, fd: number, dest: number, first: number, n: number): void {
    const b = this.io;
    if (this.hook(s, b, first, n)) return;
    if (n > 1 && dest < 0 && fd < this.gsoFd.length && this.gsoFd[fd] === 1) {
      if (this.gso.send(s, fd, first, n) === 0) return;
      this.gsoFd[fd] = 2; // refused: plain sendmmsg from now on
    }
    const end = first + n;
    let done = first;
    let tries = 0;
    while (done < end) {
      const r = sendBatch(fd, b, done, end - done, dest);
      if (r > 0) {
        for (let j = done; j < done + r; j++) countTx(s, b.len[j]!);
        done += r;
        tries = 0;
        continue;
      }
      if ((r === -11 || r === -105) && tries++ < 50) {
        waitWritable(fd, 2);
        continue;
      }
      countTxError(s);
      done++;
    }
  }
}

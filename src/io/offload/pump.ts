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
import { Batch, readFrames, sendBatch } from '../koffi/batch.js';
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

  constructor(private readonly hook: OutHook) {
    this.io = new Batch(IN_N + OUT_N, OUT_SLOT);
    this.out = new Batch(OUT_N, OUT_SLOT);
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

  /** Frames in io slots [0, n) → segments in the output slots, sent in batches. */
  private run(s: Session, n: number, fd: number, dest: number): void {
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

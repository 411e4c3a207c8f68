/**
 * The koffi workers' offload path (see docs/ARCHITECTURE.md, io/offload): used for session
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
import { Batch, sendBatch } from '../koffi/batch.js';
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
 * Called with each output batch before it is sent (capture, impairment): returns true when
 * it took the packets (then they are neither sent nor counted here).
 */
export type OutHook = (s: Session, b: Batch, n: number) => boolean;

export class TxOffload {
  readonly out: Batch;
  /** Super-frames segmented, segments produced, frames dropped as malformed. */
  superFrames = 0;
  segments = 0;
  malformed = 0;
  private on = 0;
  private readonly vh = new VnetHdr();
  private readonly sf = new SuperFrame();

  constructor(private readonly hook: OutHook) {
    this.out = new Batch(OUT_N, OUT_SLOT);
  }

  /**
   * Frames in slots [0, n) of `inb` (each a virtio_net_hdr + frame, as read from the TAP of
   * session `s`) → L2TP packets sent on `fd` (raw IP: shared destination `dest`).
   */
  run(s: Session, inb: Batch, n: number, fd: number, dest: number): void {
    const slab = inb.buf;
    const ss = inb.slotSize;
    const out = this.out;
    const oslab = out.buf;
    const oss = out.slotSize;
    const maxSeg = oss - HEADROOM;
    const vh = this.vh;
    const sf = this.sf;
    for (let j = 0; j < n; j++) {
      const at = j * ss + inb.off[j]!;
      const len = inb.len[j]!;
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
        const o = this.on * oss + HEADROOM;
        slab.copy(oslab, o, fo, fo + fl);
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
        const o = this.on * oss + HEADROOM;
        this.push(s, o, writeSegment(sf, slab, fo, k, oslab, o));
      }
      this.segments += nseg;
    }
    this.flush(s, fd, dest);
  }

  private push(s: Session, o: number, len: number): void {
    const i = this.on++;
    const st = encap(s, this.out.buf, o, len);
    const oss = this.out.slotSize;
    this.out.off[i] = st - i * oss;
    this.out.len[i] = len + (o - st);
  }

  /** Sends out[0, on): like the per-frame path (backpressure waits briefly, errors drop one). */
  private flush(s: Session, fd: number, dest: number): void {
    const n = this.on;
    if (n === 0) return;
    this.on = 0;
    const b = this.out;
    if (this.hook(s, b, n)) return;
    let done = 0;
    let tries = 0;
    while (done < n) {
      const r = sendBatch(fd, b, done, n - done, dest);
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

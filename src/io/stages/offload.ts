/**
 * Offload stage of the pump, for frame devices with CAP_VNET_HDR (session TAPs
 * opened with IFF_VNET_HDR and TUNSETOFFLOAD CSUM|TSO4|TSO6; see ../offload/README.md).
 *
 * Frames read from the device each start with a virtio_net_hdr. Ordinary frames get
 * their partial checksum completed and the L2TP header written in place over the
 * virtio_net_hdr; TCP super-frames are cut into MSS-sized frames (../offload/tso.ts),
 * each copied into an output slot at HEADROOM with its own L2TP header (own sequence
 * number, cookie). Both leave through the pump's output (capture, impairment, send,
 * count) in batches of up to OUT_N packets. On the wire nothing differs from the
 * per-frame path. The receive side's counterpart is the coalescer (../offload/gro.ts).
 *
 * One instance per thread; `io` is a batch of that thread's (IN_N + OUT_N slots).
 * Hot path: no allocation, no throwing.
 */
import { countTxError, encap } from '../../engine/encap.js';
import { HEADROOM } from '../../engine/layout.js';
import type { Session } from '../../engine/session.js';
import type { FrameDevice, PacketBatch } from '../device.js';
import { completeCsum, parseSuper, SuperFrame, TSO_OK, writeSegment } from '../offload/tso.js';
import { GSO_NONE, parseVnet, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, VnetHdr } from '../offload/vnet.js';
import type { Pump } from '../pump.js';

/** Packets per send on the offload path. */
export const OUT_N = 128;
/** TAP reads per round on the offload path. */
export const IN_N = 64;
/** Slots of the offload stage's batch: IN_N for reads, OUT_N for output. */
export const OFFLOAD_SLOTS = IN_N + OUT_N;
/** Slot size of that batch: headroom + the largest frame a TAP can hand us (pages are touched lazily). */
export const OFFLOAD_SLOT_BYTES = HEADROOM + 65535 + 64;
/** Coalescing flows per rx thread (extra slots of its receive slab). */
export const GRO_FLOWS = 8;

export class TxOffload {
  /** Super-frames segmented, segments produced, frames dropped as malformed. */
  superFrames = 0;
  segments = 0;
  malformed = 0;
  private on = 0;
  private readonly vh = new VnetHdr();
  private readonly sf = new SuperFrame();
  private owner: Pump | null = null;

  /**
   * `io`: one slab for reads and output: slots [0, IN_N) take (super-)frames from the
   * device, slots [IN_N, IN_N + OUT_N) the packets to send, so that frames move with
   * copyWithin (no allocation) and one send call covers the output slots.
   */
  constructor(readonly io: PacketBatch) {
    if (io.n < OFFLOAD_SLOTS) throw new RangeError(`offload batch needs ${OFFLOAD_SLOTS} slots`);
  }

  /** Called once by the Pump that runs this stage. */
  attach(p: Pump): void {
    this.owner = p;
  }

  /** Up to `rounds` batches from session `s`'s device (each frame behind a virtio_net_hdr) → packets sent. */
  pump(s: Session, dev: FrameDevice, rounds: number): void {
    for (let round = 0; round < rounds; round++) {
      const n = dev.read(this.io, IN_N, HEADROOM);
      if (n <= 0) return;
      this.run(s, n);
      if (n < IN_N) return;
    }
  }

  /**
   * Frames in io slots [0, n) (at off[j], len[j]: virtio_net_hdr + frame) → packets sent in
   * batches. Called by pump(); public for tests that place frames themselves.
   */
  run(s: Session, n: number): void {
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
      const at = j * ss + io.off[j];
      const len = io.len[j];
      if (!parseVnet(slab, at, len, vh) || vh.gsoType !== GSO_NONE || len < VNET_HDR_LEN + 14) break;
      const fo = at + VNET_HDR_LEN;
      const fl = len - VNET_HDR_LEN;
      if ((vh.flags & VNET_F_NEEDS_CSUM) !== 0 && !completeCsum(slab, fo, fl, vh.csumStart, vh.csumOffset)) break;
      const st = encap(s, slab, fo, fl);
      io.off[j] = st - j * ss;
      io.len[j] = fl + (fo - st);
    }
    if (j > 0) this.send(s, 0, j);
    for (; j < n; j++) {
      const at = j * ss + io.off[j];
      const len = io.len[j];
      if (!parseVnet(slab, at, len, vh)) {
        this.drop(s);
        continue;
      }
      const fo = at + VNET_HDR_LEN;
      const fl = len - VNET_HDR_LEN;
      if (vh.gsoType === GSO_NONE) {
        if (fl < 14 || fl > maxSeg) {
          this.drop(s);
          continue;
        }
        if ((vh.flags & VNET_F_NEEDS_CSUM) !== 0 && !completeCsum(slab, fo, fl, vh.csumStart, vh.csumOffset)) {
          this.drop(s);
          continue;
        }
        if (this.on === OUT_N) this.flush(s);
        const o = (IN_N + this.on) * ss + HEADROOM;
        slab.copyWithin(o, fo, fo + fl);
        this.push(s, o, fl);
        continue;
      }
      if (parseSuper(slab, fo, fl, vh, maxSeg, sf) !== TSO_OK) {
        this.drop(s);
        continue;
      }
      this.superFrames++;
      const nseg = sf.nseg;
      for (let k = 0; k < nseg; k++) {
        if (this.on === OUT_N) this.flush(s);
        const o = (IN_N + this.on) * ss + HEADROOM;
        this.push(s, o, writeSegment(sf, slab, fo, k, slab, o));
      }
      this.segments += nseg;
    }
    this.flush(s);
  }

  /** A malformed frame: one tx error. */
  private drop(s: Session): void {
    this.malformed++;
    countTxError(s);
  }

  private push(s: Session, o: number, len: number): void {
    const i = IN_N + this.on++;
    const io = this.io;
    const st = encap(s, io.buf, o, len);
    io.off[i] = st - i * io.slotSize;
    io.len[i] = len + (o - st);
  }

  /** Sends the output slots. */
  private flush(s: Session): void {
    const n = this.on;
    if (n === 0) return;
    this.on = 0;
    this.send(s, IN_N, n);
  }

  /** io slots [first, first + n) → the pump's output (capture, impairment, send, count). */
  private send(s: Session, first: number, n: number): void {
    this.owner!.output(s, this.io, first, n);
  }
}

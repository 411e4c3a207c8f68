/**
 * The session's reorder queue (the kernel's reorder_q) for reorder mode
 * (reorder_timeout > 0). Fixed capacity, allocated once when the session is
 * created; frames are copied into preallocated slots, so queuing never
 * allocates. Single owner: the thread that receives for the session's
 * tunnel.
 *
 * Without a reorder timeout the kernel's queue never holds a packet across
 * calls (every accepted packet is deliverable at once), so those sessions get
 * a zero-capacity queue and decap delivers in place.
 *
 * Removal happens only at the head (the kernel's dequeue loop removes the head
 * or stops); insertion may be anywhere (ordered by ns).
 */
import { Ring } from './ring.js';

/** Default number of queued packets per reorder-mode session. */
export const REORDER_CAPACITY = 64;
/** Bytes per slot: frames longer than this cannot be queued (jumbo frames fit). */
export const REORDER_SLOT_BYTES = 9216;

export class ReorderQueue {
  readonly capacity: number;
  readonly slotBytes: number;
  /** Frame bytes: slot i occupies [i * slotBytes, i * slotBytes + frameLen[i]). */
  readonly data: Buffer;
  /** Per physical slot. */
  readonly ns: Uint32Array;
  readonly hasSeq: Uint8Array;
  /** L2TP-level length (counted in rx_bytes on delivery). */
  readonly pktLen: Uint32Array;
  readonly frameLen: Uint32Array;
  /** Arrival + (reorderTimeoutMs || 1000); dropped when now > expires. */
  readonly expires: Float64Array;
  /** Logical order: order[ring.slot(i)] is the physical slot of entry i. */
  private readonly order: Int32Array;
  private readonly ring: Ring;
  private readonly free: Int32Array;
  private nFree: number;

  constructor(capacity = 0, slotBytes = REORDER_SLOT_BYTES) {
    this.capacity = capacity;
    this.slotBytes = capacity > 0 ? slotBytes : 0;
    this.data = Buffer.alloc(capacity * this.slotBytes);
    this.ns = new Uint32Array(capacity);
    this.hasSeq = new Uint8Array(capacity);
    this.pktLen = new Uint32Array(capacity);
    this.frameLen = new Uint32Array(capacity);
    this.expires = new Float64Array(capacity);
    this.order = new Int32Array(capacity);
    this.ring = new Ring(capacity);
    this.free = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.free[i] = capacity - 1 - i;
    this.nFree = capacity;
  }

  /** Number of queued packets. */
  get count(): number {
    return this.ring.count;
  }

  /** Physical slot of the i-th queued entry (0 = head). */
  slotAt(i: number): number {
    return this.order[this.ring.slot(i)];
  }

  /** Byte offset of a physical slot's frame in `data`. */
  offsetOf(slot: number): number {
    return slot * this.slotBytes;
  }

  /** True when a frame of `frameLen` bytes can be queued now. */
  canQueue(frameLen: number): boolean {
    return this.nFree > 0 && frameLen <= this.slotBytes;
  }

  /**
   * The kernel's insertion rule (l2tp_recv_queue_skb): before the first
   * queued packet whose ns is greater (plain integer compare, not
   * wrap-aware), else at the tail. Unsequenced packets go to the tail
   * (their ns is treated as 0). Returns the logical position.
   */
  insertPos(hasSeq: boolean, ns: number): number {
    if (!hasSeq) return this.count;
    for (let i = 0; i < this.count; i++) {
      const s = this.slotAt(i);
      if (this.hasSeq[s] !== 0 && this.ns[s] > ns) return i;
    }
    return this.count;
  }

  /**
   * Copy a frame into a free slot and insert it at logical position `pos`.
   * Caller checked canQueue. Returns the physical slot.
   */
  insert(pos: number, buf: Buffer, frameOff: number, frameLen: number, hasSeq: boolean, ns: number, pktLen: number, expires: number): number {
    const slot = this.free[--this.nFree];
    buf.copy(this.data, slot * this.slotBytes, frameOff, frameOff + frameLen);
    this.ns[slot] = ns;
    this.hasSeq[slot] = hasSeq ? 1 : 0;
    this.pktLen[slot] = pktLen;
    this.frameLen[slot] = frameLen;
    this.expires[slot] = expires;
    const r = this.ring;
    r.push();
    for (let i = r.count - 1; i > pos; i--) this.order[r.slot(i)] = this.order[r.slot(i - 1)];
    this.order[r.slot(pos)] = slot;
    return slot;
  }

  /** Remove the head entry and free its slot. Its bytes stay readable until the next insert. */
  shift(): void {
    const slot = this.order[this.ring.head];
    this.ring.shift(1);
    this.free[this.nFree++] = slot;
  }

  /** Drop everything; returns how many were queued. */
  clear(): number {
    const n = this.count;
    while (this.ring.count > 0) this.shift();
    this.ring.clear();
    return n;
  }
}

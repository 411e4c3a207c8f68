/**
 * Impairment stage of the pump (semantics and configuration: ../impair.ts).
 * Per session, after encapsulation and counting: packets are lost, held back
 * (reorder), duplicated, or queued until due (delay, jitter, rate) in
 * preallocated slots, and sent from the wait loop (`flushAll`) through the
 * tunnel's socket using the caller's output batch. Nothing is allocated per
 * packet; a session's slots are allocated when its impairment is set.
 *
 * One instance per thread that runs a pump; all state is on the instance.
 * Counted per session and in its tunnel: packets the impairment lost (IMPAIR_LOST)
 * and packets it dropped because its queue was full or the packet too large (IMPAIR_DROPS).
 */
import type { Session } from '../../engine/session.js';
import { IMPAIR_DROPS, IMPAIR_LOST } from '../../engine/stats.js';
import type { PacketBatch, TunnelSocket } from '../device.js';
import { impairActive, type ImpairConfig } from '../../engine/impair.js';
import { Ring } from '../../engine/ring.js';
import type { TunnelPort } from '../pump.js';
import { isBackpressure } from '../device.js';
import { Prng } from './prng.js';

/** Packets queued per session (like netem's default limit of 1000). */
export const QUEUE_SLOTS = 1024;
/** Largest packet that can be delayed (L2TP header + jumbo frame); larger ones are dropped. */
export const SLOT_BYTES = 9216 + 64;
/** Reordered packets held at once per session; more are sent in order. */
export const HOLD_SLOTS = 64;
/** A held packet leaves after this long even when no later packet comes. */
export const REORDER_HOLD_MS = 200;

/** One impaired session's queues. */
export class ImpairState {
  readonly rng: Prng;
  readonly slab: Buffer;
  readonly due: Float64Array;
  readonly plen: Uint32Array;
  /** The delay queue's order: slot i holds slab[i * SLOT_BYTES, + plen[i]), leaving at due[i]. */
  readonly queue = new Ring(QUEUE_SLOTS);
  lastDepart = 0;
  readonly hold: Buffer;
  readonly holdLen: Uint32Array;
  readonly holdLeft: Int32Array;
  readonly holdUntil: Float64Array;
  holdCount = 0;
  lost = 0;
  duplicated = 0;
  reordered = 0;
  overflow = 0;

  constructor(
    readonly s: Session,
    readonly cfg: ImpairConfig,
    readonly sock: TunnelSocket,
  ) {
    this.rng = new Prng(cfg.seed ?? (Math.random() * 4294967296) >>> 0);
    this.slab = Buffer.alloc(QUEUE_SLOTS * SLOT_BYTES);
    this.due = new Float64Array(QUEUE_SLOTS);
    this.plen = new Uint32Array(QUEUE_SLOTS);
    this.hold = Buffer.alloc(cfg.reorder > 0 ? HOLD_SLOTS * SLOT_BYTES : 0);
    this.holdLen = new Uint32Array(HOLD_SLOTS);
    this.holdLeft = new Int32Array(HOLD_SLOTS);
    this.holdUntil = new Float64Array(HOLD_SLOTS);
  }

  private dropFull(): void {
    this.overflow++;
    const s = this.s;
    s.stats[s.base + IMPAIR_DROPS]++;
    s.tunnel.stats[s.tunnel.base + IMPAIR_DROPS]++;
  }

  enqueue(src: Buffer, off: number, len: number, now: number): void {
    if (this.queue.full || len > SLOT_BYTES) {
      this.dropFull();
      return;
    }
    const c = this.cfg;
    let at = now + c.delayMs;
    if (c.jitterMs > 0) at += (this.rng.next() * 2 - 1) * c.jitterMs;
    if (at < now) at = now;
    if (at < this.lastDepart) at = this.lastDepart; // keep order
    if (c.rateBps > 0) at += (len * 8000) / c.rateBps;
    this.lastDepart = at;
    const i = this.queue.push();
    src.copy(this.slab, i * SLOT_BYTES, off, off + len);
    this.plen[i] = len;
    this.due[i] = at;
  }

  /** Moves held (reordered) packets whose turn came into the queue. */
  releaseHeld(now: number, tick: boolean): void {
    for (let k = 0; k < this.holdCount; ) {
      if (tick) this.holdLeft[k]--;
      if (this.holdLeft[k] <= 0 || this.holdUntil[k] <= now) {
        this.enqueue(this.hold, k * SLOT_BYTES, this.holdLen[k], now);
        // Keep the remaining held packets in arrival order.
        const last = this.holdCount - 1;
        for (let m = k; m < last; m++) {
          this.hold.copy(this.hold, m * SLOT_BYTES, (m + 1) * SLOT_BYTES, (m + 1) * SLOT_BYTES + this.holdLen[m + 1]);
          this.holdLen[m] = this.holdLen[m + 1]!;
          this.holdLeft[m] = this.holdLeft[m + 1]!;
          this.holdUntil[m] = this.holdUntil[m + 1]!;
        }
        this.holdCount--;
      } else {
        k++;
      }
    }
  }

  /** A packet the impairment lost on purpose. */
  lose(): void {
    this.lost++;
    const s = this.s;
    s.stats[s.base + IMPAIR_LOST]++;
    s.tunnel.stats[s.tunnel.base + IMPAIR_LOST]++;
  }
}

export class Impairer {
  private readonly states: ImpairState[] = [];
  private readonly bySession = new Map<Session, ImpairState>();
  /** Number of impaired sessions (the hot path's only check when none). */
  active = 0;

  /**
   * `out`: a batch of this thread's that can be sent on its sockets, idle between sends;
   * releases use its slots [0, maxSlots) only (the koffi io worker keeps coalescing flows
   * in the slots after those).
   */
  constructor(
    private readonly out: PacketBatch,
    private readonly maxSlots = out.n,
  ) {}

  /** Sets (or with null / an inactive config, clears) a session's impairment. Queued packets are dropped. */
  set(s: Session, cfg: ImpairConfig | null): void {
    this.clear(s);
    if (cfg === null || !impairActive(cfg)) return;
    const st = new ImpairState(s, cfg, (s.tunnel.ctx as TunnelPort).sock);
    this.states.push(st);
    this.bySession.set(s, st);
    this.active = this.states.length;
  }

  /** Forgets a session (deleted or impairment off). */
  clear(s: Session): void {
    const st = this.bySession.get(s);
    if (st === undefined) return;
    this.bySession.delete(s);
    this.states.splice(this.states.indexOf(st), 1);
    this.active = this.states.length;
  }

  has(s: Session): boolean {
    return this.bySession.has(s);
  }

  /** Test/diagnostic view of a session's state. */
  stateOf(s: Session): ImpairState | undefined {
    return this.bySession.get(s);
  }

  /**
   * Hot path, after encap and counting: takes the packets in slots [first, first + n) of
   * `b` for impaired session `s`, queues or drops them, and sends what is due now.
   */
  take(s: Session, b: PacketBatch, first: number, n: number, now: number): void {
    const st = this.bySession.get(s);
    if (st === undefined) return;
    const c = st.cfg;
    const buf = b.buf;
    const ss = b.slotSize;
    for (let j = first; j < first + n; j++) {
      const off = j * ss + b.off[j];
      const len = b.len[j];
      if (c.loss > 0 && st.rng.next() * 100 < c.loss) {
        st.lose();
        if (st.holdCount > 0) st.releaseHeld(now, false);
        continue;
      }
      if (c.reorder > 0 && st.holdCount < HOLD_SLOTS && len <= SLOT_BYTES && st.rng.next() * 100 < c.reorder) {
        const k = st.holdCount++;
        buf.copy(st.hold, k * SLOT_BYTES, off, off + len);
        st.holdLen[k] = len;
        st.holdLeft[k] = c.distance;
        st.holdUntil[k] = now + REORDER_HOLD_MS;
        st.reordered++;
        continue;
      }
      st.enqueue(buf, off, len, now);
      if (c.duplicate > 0 && st.rng.next() * 100 < c.duplicate) {
        st.enqueue(buf, off, len, now);
        st.duplicated++;
      }
      if (st.holdCount > 0) st.releaseHeld(now, true);
    }
    this.flush(st, now);
  }

  /** Sends the packets of `st` that are due; keeps the rest (and on backpressure, everything). */
  private flush(st: ImpairState, now: number): void {
    const b = this.out;
    if (st.holdCount > 0) st.releaseHeld(now, false);
    const q = st.queue;
    while (q.count > 0 && st.due[q.head] <= now) {
      let k = 0;
      for (; k < this.maxSlots && k < q.count; k++) {
        const i = q.slot(k);
        if (st.due[i] > now) break;
        const len = st.plen[i];
        st.slab.copy(b.buf, k * b.slotSize, i * SLOT_BYTES, i * SLOT_BYTES + len);
        b.off[k] = 0;
        b.len[k] = len;
      }
      const r = st.sock.send(b, 0, k, st.s);
      // Backpressure: keep them for the next round; other errors drop one.
      const done = r > 0 ? r : isBackpressure(r) ? 0 : 1;
      if (done === 0) return;
      q.shift(done);
    }
  }

  /** Wait loop: sends every impaired session's due packets. */
  flushAll(now: number): void {
    for (let i = 0; i < this.states.length; i++) this.flush(this.states[i], now);
  }

  /** The wait timeout (ms): `dflt` (-1 = forever) unless a session holds packets, then the time until the first is due. */
  waitMs(dflt: number, now: number): number {
    let best = dflt;
    for (let i = 0; i < this.states.length; i++) {
      const st = this.states[i];
      let next = Infinity;
      if (st.queue.count > 0) next = st.due[st.queue.head]!;
      for (let k = 0; k < st.holdCount; k++) if (st.holdUntil[k] < next) next = st.holdUntil[k]!;
      if (next === Infinity) continue;
      let ms = Math.ceil(next - now);
      if (ms < 0) ms = 0;
      if (best < 0 || ms < best) best = ms;
    }
    return best;
  }
}

/**
 * Network impairment for experiments (netem is often missing where ul2tp
 * runs): per session, on transmit, after encapsulation, so sequence numbers
 * are assigned before packets are lost, duplicated, reordered or delayed, as
 * a real network between two LCCEs would do.
 *
 * Two halves:
 * - configuration (`ImpairConfig`, validation, text form): used by the CLI,
 *   the control protocol and the daemon; no I/O.
 * - the per-session queue run by the tx worker (`impairTake`,
 *   `impairFlushAll`, `impairWaitMs`): packets are copied into preallocated
 *   slots and released from the worker loop when due. Nothing is allocated
 *   per packet; the slots are allocated once when a session's impairment is
 *   set. This module never imports koffi: the worker hands it its batch and
 *   its send function once (`impairInit`).
 *
 * Semantics (documented in docs/usage.md):
 * - loss P%: each packet is dropped with probability P (it still counts as
 *   sent: the "network" lost it).
 * - duplicate P%: each packet that survives is sent twice.
 * - reorder P% distance N: a packet is held back with probability P and sent
 *   after the next N packets of the session (or after REORDER_HOLD_MS when
 *   traffic stops).
 * - delay D [jitter J]: each packet leaves D ± J ms after it was read
 *   (uniform); packets keep their order (jitter never reorders).
 * - rate R: packets leave no faster than R bits/s (serialisation time of the
 *   L2TP packet), queued in order behind each other.
 * - the queue holds QUEUE_SLOTS packets of up to SLOT_BYTES; more are dropped.
 * - seed S: the random generator (xorshift128, seeded by splitmix32) starts
 *   from S, so the same traffic sees the same decisions.
 */
import type { Session } from '../engine/session.js';

export interface ImpairConfig {
  /** Percentages, 0..100 (fractions allowed). */
  loss: number;
  duplicate: number;
  reorder: number;
  /** Packets a reordered packet is held behind (>= 1). */
  distance: number;
  delayMs: number;
  jitterMs: number;
  /** Bits per second, 0 = unlimited. */
  rateBps: number;
  /** null = a random seed. */
  seed: number | null;
}

export const IMPAIR_OFF: ImpairConfig = Object.freeze({
  loss: 0,
  duplicate: 0,
  reorder: 0,
  distance: 1,
  delayMs: 0,
  jitterMs: 0,
  rateBps: 0,
  seed: null,
});

/** The attributes of the `impair` control op (iproute2-like key names). */
export const IMPAIR_KEYS = ['loss', 'duplicate', 'reorder', 'distance', 'delay', 'jitter', 'rate', 'seed'] as const;

/** True when the configuration changes anything. */
export function impairActive(c: ImpairConfig): boolean {
  return c.loss > 0 || c.duplicate > 0 || c.reorder > 0 || c.delayMs > 0 || c.jitterMs > 0 || c.rateBps > 0;
}

function pct(n: number): string {
  return `${Number(n.toFixed(4))}%`;
}

/** `1mbit`, `512kbit`, `1500bit`: the largest unit that divides the rate. */
export function formatRate(bps: number): string {
  if (bps >= 1e9 && bps % 1e9 === 0) return `${bps / 1e9}gbit`;
  if (bps >= 1e6 && bps % 1e6 === 0) return `${bps / 1e6}mbit`;
  if (bps >= 1e3 && bps % 1e3 === 0) return `${bps / 1e3}kbit`;
  return `${bps}bit`;
}

/** Parses `RATE` as tc does for the units we accept: bit, kbit, mbit, gbit (decimal). */
export function parseRate(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)?$/i.exec(text);
  if (!m) return null;
  const mult = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 }[(m[2] ?? 'bit').toLowerCase() as 'bit'];
  const v = Math.round(Number(m[1]) * mult);
  return v > 0 && Number.isSafeInteger(v) ? v : null;
}

/** The one-line text form: `loss 5% delay 10ms jitter 2ms rate 1mbit seed 7` (only what is set). */
export function formatImpair(c: ImpairConfig): string {
  const parts: string[] = [];
  if (c.loss > 0) parts.push(`loss ${pct(c.loss)}`);
  if (c.duplicate > 0) parts.push(`duplicate ${pct(c.duplicate)}`);
  if (c.reorder > 0) parts.push(`reorder ${pct(c.reorder)} distance ${c.distance}`);
  if (c.delayMs > 0 || c.jitterMs > 0) parts.push(`delay ${c.delayMs}ms` + (c.jitterMs > 0 ? ` jitter ${c.jitterMs}ms` : ''));
  if (c.rateBps > 0) parts.push(`rate ${formatRate(c.rateBps)}`);
  if (c.seed !== null) parts.push(`seed ${c.seed}`);
  return parts.join(' ');
}

/** The JSON form used on the control socket and in `show -j` (keys as in the CLI). */
export interface ImpairJson {
  loss: number;
  duplicate: number;
  reorder: number;
  distance: number;
  delay: number;
  jitter: number;
  rate: number;
  seed: number | null;
}

export function impairToJson(c: ImpairConfig): ImpairJson {
  return {
    loss: c.loss,
    duplicate: c.duplicate,
    reorder: c.reorder,
    distance: c.distance,
    delay: c.delayMs,
    jitter: c.jitterMs,
    rate: c.rateBps,
    seed: c.seed,
  };
}

/**
 * Validates the JSON form (daemon side, untrusted). Missing keys are off.
 * Throws a plain Error naming the bad key; the caller wraps it.
 */
export function impairFromJson(o: Record<string, unknown>): ImpairConfig {
  const get = (k: string, lo: number, hi: number, int: boolean): number => {
    const v = o[k];
    if (v === undefined || v === null) return k === 'distance' ? 1 : 0;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (int && !Number.isInteger(v)))
      throw new Error(`"${k}" must be ${int ? 'an integer' : 'a number'} in ${lo}..${hi}`);
    return v;
  };
  const seedRaw = o.seed;
  let seed: number | null = null;
  if (seedRaw !== undefined && seedRaw !== null) {
    if (typeof seedRaw !== 'number' || !Number.isInteger(seedRaw) || seedRaw < 0 || seedRaw > 0xffffffff)
      throw new Error('"seed" must be an integer in 0..4294967295');
    seed = seedRaw;
  }
  return {
    loss: get('loss', 0, 100, false),
    duplicate: get('duplicate', 0, 100, false),
    reorder: get('reorder', 0, 100, false),
    distance: get('distance', 1, 1000, true),
    delayMs: get('delay', 0, 60_000, false),
    jitterMs: get('jitter', 0, 60_000, false),
    rateBps: get('rate', 0, 1e12, true),
    seed,
  };
}

// ---------------------------------------------------------------------------
// Seeded random numbers: splitmix32 to spread the seed, xorshift128 to draw.

/** Small, fast, reproducible PRNG; `next()` returns a float in [0, 1). No allocation. */
export class Prng {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  constructor(seed: number) {
    let s = seed >>> 0;
    const mix = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix() | 1; // never all zero
  }

  nextU32(): number {
    let t = this.d;
    const s = this.a;
    this.d = this.c;
    this.c = this.b;
    this.b = s;
    t ^= t << 11;
    t ^= t >>> 8;
    this.a = (t ^ s ^ (s >>> 19)) >>> 0;
    return this.a;
  }

  next(): number {
    return this.nextU32() / 4294967296;
  }
}

// ---------------------------------------------------------------------------
// Worker side: per-session queues. Owned by the tx worker thread.

/** Packets queued per session (like netem's default limit of 1000). */
export const QUEUE_SLOTS = 1024;
/** Largest packet that can be delayed (L2TP header + jumbo frame); larger ones are dropped. */
export const SLOT_BYTES = 9216 + 64;
/** Reordered packets held at once per session; more are sent in order. */
export const HOLD_SLOTS = 64;
/** A held packet leaves after this long even when no later packet comes. */
export const REORDER_HOLD_MS = 200;

/** The slice of the worker's koffi batch that impairment needs (structural, no import). */
export interface SendBatchLike {
  readonly n: number;
  readonly slotSize: number;
  readonly slab: Buffer;
  readonly off: Uint32Array;
  readonly len: Uint32Array;
}
export type SendFn = (fd: number, b: never, start: number, count: number, dest: number) => number;

/** Counters of what the impairment did (read by the worker's owner in tests/logs). */
export class ImpairState {
  readonly cfg: ImpairConfig;
  readonly s: Session;
  readonly fd: number;
  readonly dest: number;
  readonly rng: Prng;
  readonly slab: Buffer;
  readonly due: Float64Array;
  readonly plen: Uint32Array;
  head = 0;
  count = 0;
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

  constructor(s: Session, cfg: ImpairConfig, fd: number, dest: number) {
    this.s = s;
    this.cfg = cfg;
    this.fd = fd;
    this.dest = dest;
    this.rng = new Prng(cfg.seed ?? (Math.random() * 4294967296) >>> 0);
    this.slab = Buffer.alloc(QUEUE_SLOTS * SLOT_BYTES);
    this.due = new Float64Array(QUEUE_SLOTS);
    this.plen = new Uint32Array(QUEUE_SLOTS);
    this.hold = Buffer.alloc(cfg.reorder > 0 ? HOLD_SLOTS * SLOT_BYTES : 0);
    this.holdLen = new Uint32Array(HOLD_SLOTS);
    this.holdLeft = new Int32Array(HOLD_SLOTS);
    this.holdUntil = new Float64Array(HOLD_SLOTS);
  }
}

let batchRef: SendBatchLike | null = null;
let sendRef: SendFn | null = null;
const states: ImpairState[] = [];
const bySession = new Map<Session, ImpairState>();

/** Number of impaired sessions in this worker (the hot path's only check when none). */
export let impairedSessions = 0;

/** Once, in the tx worker: the batch used to send released packets and the send function. */
export function impairInit(batch: SendBatchLike, send: SendFn): void {
  batchRef = batch;
  sendRef = send;
}

/** Sets (or with null / an inactive config, clears) a session's impairment. Queued packets are dropped. */
export function setImpair(s: Session, cfg: ImpairConfig | null, fd: number, dest: number): void {
  clearImpair(s);
  if (cfg === null || !impairActive(cfg)) return;
  const st = new ImpairState(s, cfg, fd, dest);
  states.push(st);
  bySession.set(s, st);
  impairedSessions = states.length;
}

/** Forgets a session (deleted or impairment off). */
export function clearImpair(s: Session): void {
  const st = bySession.get(s);
  if (st === undefined) return;
  bySession.delete(s);
  states.splice(states.indexOf(st), 1);
  impairedSessions = states.length;
}

function enqueue(st: ImpairState, src: Buffer, off: number, len: number, now: number): void {
  if (st.count >= QUEUE_SLOTS || len > SLOT_BYTES) {
    st.overflow++;
    return;
  }
  const c = st.cfg;
  let at = now + c.delayMs;
  if (c.jitterMs > 0) at += (st.rng.next() * 2 - 1) * c.jitterMs;
  if (at < now) at = now;
  if (at < st.lastDepart) at = st.lastDepart; // keep order
  if (c.rateBps > 0) at += (len * 8000) / c.rateBps;
  st.lastDepart = at;
  let i = st.head + st.count;
  if (i >= QUEUE_SLOTS) i -= QUEUE_SLOTS;
  src.copy(st.slab, i * SLOT_BYTES, off, off + len);
  st.plen[i] = len;
  st.due[i] = at;
  st.count++;
}

/** Moves held (reordered) packets whose turn came into the queue. */
function releaseHeld(st: ImpairState, now: number, tick: boolean): void {
  for (let k = 0; k < st.holdCount; ) {
    if (tick) st.holdLeft[k]--;
    if (st.holdLeft[k] <= 0 || st.holdUntil[k] <= now) {
      enqueue(st, st.hold, k * SLOT_BYTES, st.holdLen[k], now);
      // Keep the remaining held packets in arrival order.
      const last = st.holdCount - 1;
      for (let m = k; m < last; m++) {
        st.hold.copy(st.hold, m * SLOT_BYTES, (m + 1) * SLOT_BYTES, (m + 1) * SLOT_BYTES + st.holdLen[m + 1]);
        st.holdLen[m] = st.holdLen[m + 1];
        st.holdLeft[m] = st.holdLeft[m + 1];
        st.holdUntil[m] = st.holdUntil[m + 1];
      }
      st.holdCount--;
    } else {
      k++;
    }
  }
}

/**
 * Tx hot path, after encap: when `s` is impaired, takes the n encapsulated
 * packets of `b` (slot j at j * slotSize + off[j], len[j] bytes), counts them
 * as sent (countTx is passed in to avoid a cycle), queues or drops them, and
 * sends what is due now. Returns false (touching nothing) when `s` is not
 * impaired.
 */
export function impairTake(s: Session, b: SendBatchLike, n: number, now: number, count: (s: Session, len: number) => void): boolean {
  const st = bySession.get(s);
  if (st === undefined) return false;
  const c = st.cfg;
  const slab = b.slab;
  const ss = b.slotSize;
  for (let j = 0; j < n; j++) {
    const off = j * ss + b.off[j];
    const len = b.len[j];
    count(s, len);
    if (c.loss > 0 && st.rng.next() * 100 < c.loss) {
      st.lost++;
      if (st.holdCount > 0) releaseHeld(st, now, false);
      continue;
    }
    if (c.reorder > 0 && st.holdCount < HOLD_SLOTS && len <= SLOT_BYTES && st.rng.next() * 100 < c.reorder) {
      const k = st.holdCount++;
      slab.copy(st.hold, k * SLOT_BYTES, off, off + len);
      st.holdLen[k] = len;
      st.holdLeft[k] = c.distance;
      st.holdUntil[k] = now + REORDER_HOLD_MS;
      st.reordered++;
      continue;
    }
    enqueue(st, slab, off, len, now);
    if (c.duplicate > 0 && st.rng.next() * 100 < c.duplicate) {
      enqueue(st, slab, off, len, now);
      st.duplicated++;
    }
    if (st.holdCount > 0) releaseHeld(st, now, true);
  }
  flush(st, now);
  return true;
}

/** Sends the packets of `st` that are due; keeps the rest (and on backpressure, everything). */
function flush(st: ImpairState, now: number): void {
  const b = batchRef;
  const send = sendRef;
  if (b === null || send === null) return;
  if (st.holdCount > 0) releaseHeld(st, now, false);
  while (st.count > 0 && st.due[st.head] <= now) {
    let k = 0;
    let i = st.head;
    while (k < b.n && k < st.count && st.due[i] <= now) {
      const len = st.plen[i];
      st.slab.copy(b.slab, k * b.slotSize, i * SLOT_BYTES, i * SLOT_BYTES + len);
      b.off[k] = 0;
      b.len[k] = len;
      k++;
      if (++i === QUEUE_SLOTS) i = 0;
    }
    const r = send(st.fd, b as never, 0, k, st.dest);
    // Backpressure (-EAGAIN/-ENOBUFS): keep them for the next round; other errors drop one.
    const done = r > 0 ? r : r === -11 || r === -105 ? 0 : 1;
    if (done === 0) return;
    st.head = (st.head + done) % QUEUE_SLOTS;
    st.count -= done;
  }
}

/** Worker loop: sends every impaired session's due packets. */
export function impairFlushAll(now: number): void {
  for (let i = 0; i < states.length; i++) flush(states[i], now);
}

/**
 * The epoll_wait timeout (ms) the worker should use: `dflt` (-1 = forever)
 * unless an impaired session holds packets, then the time until the first is due.
 */
export function impairWaitMs(dflt: number, now: number): number {
  let best = dflt;
  for (let i = 0; i < states.length; i++) {
    const st = states[i];
    let next = Infinity;
    if (st.count > 0) next = st.due[st.head];
    for (let k = 0; k < st.holdCount; k++) if (st.holdUntil[k] < next) next = st.holdUntil[k];
    if (next === Infinity) continue;
    let ms = Math.ceil(next - now);
    if (ms < 0) ms = 0;
    if (best < 0 || ms < best) best = ms;
  }
  return best;
}

/** Test/diagnostic view of a session's impairment state in this thread. */
export function impairStateOf(s: Session): ImpairState | undefined {
  return bySession.get(s);
}

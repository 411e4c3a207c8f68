/**
 * Network impairment for experiments (netem is often missing where ul2tp
 * runs): per session, on transmit, after encapsulation, so sequence numbers
 * are assigned before packets are lost, duplicated, reordered or delayed, as
 * a real network between two LCCEs would do.
 *
 * This file is the configuration (`ImpairConfig`, validation, text form), used
 * by the CLI, the control protocol and the daemon; no I/O. The per-session
 * queues are the pump's impairment stage (stages/impair.ts), seeded by
 * stages/prng.ts.
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

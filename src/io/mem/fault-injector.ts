/**
 * Seeded fault injector for the in-memory link (smoltcp's FaultInjector,
 * wireguard-go's tuntest): drop, duplicate, reorder (swap with the next
 * packet) and corrupt (flip one byte), each with its own probability, plus
 * forced faults for scripted scenarios. Deterministic for a given seed.
 * Test and example harness: allocates freely.
 */

/** Small deterministic PRNG (mulberry32). */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform u32. */
  u32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 0x1_0000_0000;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }
  /** Fill buf[off, off+len) with random bytes. */
  fill(buf: Uint8Array, off = 0, len = buf.length - off): void {
    for (let i = 0; i < len; i++) buf[off + i] = this.u32() & 0xff;
  }
}

export interface FaultOptions {
  seed?: number;
  /** Probability that a packet is lost. */
  drop?: number;
  /** Probability that a packet is delivered twice. */
  duplicate?: number;
  /** Probability that a packet is held back and delivered after the next one (ignored while one is already held). */
  reorder?: number;
  /** Probability that one random byte of the packet is changed. */
  corrupt?: number;
}

export interface FaultCounts {
  passed: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
}

/** What to do with one packet. */
export interface FaultDecision {
  drop: boolean;
  duplicate: boolean;
  reorder: boolean;
  /** Byte index to corrupt, -1 = none. */
  corruptAt: number;
}

export class FaultInjector {
  readonly rng: Rng;
  readonly opts: Required<FaultOptions>;
  readonly counts: FaultCounts = { passed: 0, dropped: 0, duplicated: 0, reordered: 0, corrupted: 0 };
  private forcedDrops = 0;
  private forcedDuplicates = 0;
  private forcedReorders = 0;

  constructor(opts: FaultOptions = {}) {
    this.opts = { seed: opts.seed ?? 1, drop: opts.drop ?? 0, duplicate: opts.duplicate ?? 0, reorder: opts.reorder ?? 0, corrupt: opts.corrupt ?? 0 };
    this.rng = new Rng(this.opts.seed);
  }

  /** Drop the next `n` packets whatever the probabilities say. */
  dropNext(n = 1): void {
    this.forcedDrops += n;
  }
  duplicateNext(n = 1): void {
    this.forcedDuplicates += n;
  }
  /** Hold the next packet back behind the one after it. */
  reorderNext(n = 1): void {
    this.forcedReorders += n;
  }

  /** Decide the fate of a packet of `len` bytes. */
  decide(len: number): FaultDecision {
    const o = this.opts;
    const d: FaultDecision = { drop: false, duplicate: false, reorder: false, corruptAt: -1 };
    if (this.forcedDrops > 0) {
      this.forcedDrops--;
      d.drop = true;
    } else if (o.drop > 0 && this.rng.float() < o.drop) d.drop = true;
    if (d.drop) {
      this.counts.dropped++;
      return d;
    }
    if (this.forcedDuplicates > 0) {
      this.forcedDuplicates--;
      d.duplicate = true;
    } else if (o.duplicate > 0 && this.rng.float() < o.duplicate) d.duplicate = true;
    if (this.forcedReorders > 0) {
      this.forcedReorders--;
      d.reorder = true;
    } else if (o.reorder > 0 && this.rng.float() < o.reorder) d.reorder = true;
    if (o.corrupt > 0 && len > 0 && this.rng.float() < o.corrupt) d.corruptAt = this.rng.int(len);
    if (d.duplicate) this.counts.duplicated++;
    // reordered is counted by the link when it actually holds a packet back
    if (d.corruptAt >= 0) this.counts.corrupted++;
    this.counts.passed++;
    return d;
  }
}

/**
 * Index arithmetic of a fixed-capacity FIFO ring: which physical slot
 * (0 .. capacity-1) holds the i-th queued entry. The owner keeps the entries
 * themselves in its own preallocated storage (typed arrays, a byte slab)
 * indexed by slot; the ring only moves `head` and `count`.
 *
 * Hot path: no allocation, no modulo, O(1) per call. The caller checks the
 * bounds (not `full` before `push`, n <= count for `shift`); nothing throws.
 */
export class Ring {
  readonly capacity: number;
  /** Physical slot of the oldest entry. */
  head = 0;
  /** Number of queued entries. */
  count = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get full(): boolean {
    return this.count >= this.capacity;
  }

  /** Physical slot of the i-th entry (0 = head), for 0 <= i <= capacity. */
  slot(i: number): number {
    const j = this.head + i;
    return j >= this.capacity ? j - this.capacity : j;
  }

  /** Appends one entry at the tail; returns its physical slot. */
  push(): number {
    const s = this.slot(this.count);
    this.count++;
    return s;
  }

  /** Removes the n oldest entries. */
  shift(n: number): void {
    this.head = this.slot(n);
    this.count -= n;
  }

  /** Empties the ring and starts again at slot 0. */
  clear(): void {
    this.head = 0;
    this.count = 0;
  }
}

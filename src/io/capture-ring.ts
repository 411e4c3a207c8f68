/**
 * Packet capture from the dataplane workers to the daemon: one byte ring per
 * worker in a SharedArrayBuffer, single producer (the worker), single
 * consumer (the daemon's main thread).
 *
 * Cost when off: the worker reads `ring.ctl[CTL_ON]` once per batch (a plain
 * Int32Array load) and does nothing else. When on, each packet is copied into
 * the ring with a fixed 32-byte record header; when the ring is full the
 * packet is not copied and `ctl[CTL_DROPS]` is incremented (drop-on-full: the
 * dataplane never waits for a capture).
 *
 * Memory layout of the SharedArrayBuffer:
 *   [ ctl: CTL_WORDS × Int32 ][ data: RING_BYTES ]
 * ctl: ON (number of active captures, written by the daemon), HEAD (next
 * write offset, producer), TAIL (next read offset, consumer), DROPS.
 * Records are 8-byte aligned:
 *   +0  u32 recLen (header + data, padded to 8; 0 = "wrapped, continue at 0")
 *   +4  u32 len    (bytes of packet data that follow the header)
 *   +8  u32 tunnel id (0 = unknown: raw IP receive)
 *   +12 u32 session id (tx: ours; rx: from the packet's header, 0 if too short)
 *   +16 f64 time (ms since the epoch, fractional)
 *   +24 u8  direction (DIR_TX / DIR_RX)
 *   +25 u8  encap (ENCAP_UDP: data = UDP payload; ENCAP_IP: data = IP payload)
 * The data is the L2TP packet as sent or received (from the session header
 * on, without the outer IP/UDP headers).
 *
 * Ordering: the producer writes the record, then publishes it with
 * Atomics.store(HEAD); the consumer reads HEAD with Atomics.load, reads the
 * records, then frees the space with Atomics.store(TAIL).
 */
export const CTL_ON = 0;
export const CTL_HEAD = 1;
export const CTL_TAIL = 2;
export const CTL_DROPS = 3;
const CTL_WORDS = 8;
const CTL_BYTES = CTL_WORDS * 4;

export const REC_HDR = 32;
export const DIR_TX = 0;
export const DIR_RX = 1;
export const ENCAP_UDP = 0;
export const ENCAP_IP = 1;

/** Default data bytes per ring (per worker). */
export const RING_BYTES = 4 << 20;
/** Longest packet copied; longer ones are cut (len keeps the copied part only). */
export const SNAPLEN = 65535;

export class CaptureRing {
  readonly sab: SharedArrayBuffer;
  readonly ctl: Int32Array;
  /** The data area (RING_BYTES long). */
  readonly data: Buffer;
  readonly size: number;

  constructor(sab?: SharedArrayBuffer, bytes: number = RING_BYTES) {
    this.sab = sab ?? new SharedArrayBuffer(CTL_BYTES + bytes);
    this.ctl = new Int32Array(this.sab, 0, CTL_WORDS);
    this.size = this.sab.byteLength - CTL_BYTES;
    if (this.size <= 0 || this.size % 8 !== 0) throw new RangeError('capture ring size must be a positive multiple of 8');
    this.data = Buffer.from(this.sab, CTL_BYTES, this.size);
  }

  /** True while at least one capture is running (the workers' once-per-batch check). */
  get on(): boolean {
    return this.ctl[CTL_ON] !== 0;
  }
}

/**
 * Producer side (worker): copy one packet. Never allocates or throws; on a
 * full ring the packet is counted in DROPS and skipped.
 */
export function captureOne(
  r: CaptureRing,
  buf: Buffer,
  off: number,
  len: number,
  dir: number,
  encap: number,
  tunnelId: number,
  sessionId: number,
  timeMs: number,
): void {
  const ctl = r.ctl;
  const size = r.size;
  const d = r.data;
  if (len > SNAPLEN) len = SNAPLEN;
  if (len < 0) return;
  const rec = (REC_HDR + len + 7) & ~7;
  let head = Atomics.load(ctl, CTL_HEAD);
  const tail = Atomics.load(ctl, CTL_TAIL);
  // Free bytes, keeping one 8-byte gap so that head == tail always means empty.
  const used = head >= tail ? head - tail : size - tail + head;
  let free = size - used - 8;
  if (head + rec > size) {
    // Does not fit before the end: waste the rest of the ring (a wrap marker) if that leaves room.
    const waste = size - head;
    if (free < waste + rec || tail === 0) {
      ctl[CTL_DROPS]++;
      return;
    }
    d.writeUInt32LE(0, head);
    free -= waste;
    head = 0;
  }
  if (free < rec) {
    ctl[CTL_DROPS]++;
    return;
  }
  d.writeUInt32LE(rec, head);
  d.writeUInt32LE(len, head + 4);
  d.writeUInt32LE(tunnelId >>> 0, head + 8);
  d.writeUInt32LE(sessionId >>> 0, head + 12);
  d.writeDoubleLE(timeMs, head + 16);
  d[head + 24] = dir;
  d[head + 25] = encap;
  buf.copy(d, head + REC_HDR, off, off + len);
  let next = head + rec;
  if (next === size) next = 0;
  Atomics.store(ctl, CTL_HEAD, next);
}

/** One captured packet as the consumer sees it (the data is a copy). */
export interface CapturedPacket {
  timeMs: number;
  dir: 'tx' | 'rx';
  encap: 'udp' | 'ip';
  tunnelId: number;
  sessionId: number;
  data: Buffer;
}

/** Consumer side (daemon): hand every complete record to `fn` and free its space. */
export function drainRing(r: CaptureRing, fn: (p: CapturedPacket) => void): number {
  const ctl = r.ctl;
  const d = r.data;
  const head = Atomics.load(ctl, CTL_HEAD);
  let tail = Atomics.load(ctl, CTL_TAIL);
  let count = 0;
  while (tail !== head) {
    const rec = d.readUInt32LE(tail);
    if (rec === 0) {
      tail = 0;
      continue;
    }
    const len = d.readUInt32LE(tail + 4);
    fn({
      tunnelId: d.readUInt32LE(tail + 8),
      sessionId: d.readUInt32LE(tail + 12),
      timeMs: d.readDoubleLE(tail + 16),
      dir: d[tail + 24] === DIR_TX ? 'tx' : 'rx',
      encap: d[tail + 25] === ENCAP_IP ? 'ip' : 'udp',
      data: Buffer.from(d.subarray(tail + REC_HDR, tail + REC_HDR + len)),
    });
    count++;
    tail += rec;
    if (tail >= r.size) tail = 0;
  }
  Atomics.store(ctl, CTL_TAIL, tail);
  return count;
}

/** Drops since the ring was created. */
export function ringDrops(r: CaptureRing): number {
  return r.ctl[CTL_DROPS];
}

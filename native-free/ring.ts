/**
 * Single-producer single-consumer ring between a session's tx reader worker
 * (producer: frames read from the macvtap device) and the main thread
 * (consumer: encap + UDP send). One SharedArrayBuffer per session:
 *
 *   [ctl: CTL_INTS int32][lens: SLOTS int32][slots: SLOTS x SLOT_BYTES]
 *
 * A slot holds HEADROOM bytes (the L2TP header is written there by encap)
 * followed by the frame; the 10-byte virtio_net_hdr is read into the last 10
 * bytes of the headroom and overwritten by encap. Slot i is owned by the
 * worker while `head - tail <= i`, by the main thread after `head` passes it
 * and until `tail` passes it (the main thread releases a slot only once its
 * UDP send has completed, since dgram may keep the memory until then).
 * Counters are int32 and wrap; compare them with `(a - b) | 0`.
 */
import { HEADROOM } from '../src/engine/layout.js';
import { FRAME_DROP, VNET_HDR_LEN } from './vnet.js';

export { VNET_HDR_LEN };

/** Producer count (frames published). Written by the worker. */
export const HEAD = 0;
/** Consumer count (slots released). Written by the main thread. */
export const TAIL = 1;
/** 1 = the main thread waits for a wake-up message; the worker clears it and posts one. */
export const SLEEP = 2;
/** 1 = the worker must exit. */
export const STOP = 3;
/** Frames the worker dropped (GSO frames it cannot pass on, bad checksum offsets). */
export const DROPS = 4;
export const CTL_INTS = 16;

export const SLOTS = 128;
/** Headroom + the largest frame a 65535-MTU interface sends (+ VLAN tag) + slack. */
export const SLOT_BYTES = HEADROOM + 65536 + 32;
/** Where the read lands inside a slot, and how much it may fill. */
export const READ_OFF = HEADROOM - VNET_HDR_LEN;
export const READ_CAP = SLOT_BYTES - READ_OFF;

export const LENS_OFF = CTL_INTS * 4;
export const DATA_OFF = (LENS_OFF + SLOTS * 4 + 63) & ~63;
export const RING_BYTES = DATA_OFF + SLOTS * SLOT_BYTES;

/** Frame length stored for a slot whose frame must be counted as a tx error and not sent. */
export const LEN_DROP = FRAME_DROP;

export interface RingViews {
  readonly ctl: Int32Array;
  readonly lens: Int32Array;
  /** The slot area; slot i starts at i * SLOT_BYTES. */
  readonly data: Buffer;
}

export function ringViews(sab: SharedArrayBuffer): RingViews {
  return {
    ctl: new Int32Array(sab, 0, CTL_INTS),
    lens: new Int32Array(sab, LENS_OFF, SLOTS),
    data: Buffer.from(sab, DATA_OFF, SLOTS * SLOT_BYTES),
  };
}

export function newRing(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(RING_BYTES);
  // The consumer starts asleep: the first frame wakes it.
  new Int32Array(sab, 0, CTL_INTS)[SLEEP] = 1;
  return sab;
}

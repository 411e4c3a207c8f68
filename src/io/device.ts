/**
 * The two device interfaces every backend implements, modelled on wireguard-go's
 * `tun.Device` (frames) and `conn.Bind` (datagrams): batch-first, headroom-aware,
 * with capability flags. The pump (pump.ts) runs the packet path over them and is
 * the only code that calls the engine per packet or counts; a backend implements
 * these devices plus its wait loop (epoll, libuv events, an in-memory queue).
 *
 * Ownership: a batch, a device and a socket belong to one thread (the worker or
 * event loop that runs the pump). Nothing here allocates or throws per packet:
 * results are counts or negative errno values.
 */
import type { Session } from '../engine/session.js';

/**
 * Preallocated packet slots (wireguard-go's `bufs`/`sizes`): slot j's data is
 * `buf[j * slotSize + off[j], + len[j])`. Reads place data at `off[j]` (the
 * headroom, where encap writes the L2TP header in front of the frame); writes send
 * `len[j]` bytes from `off[j]`.
 */
export interface PacketBatch {
  /** Number of slots. */
  readonly n: number;
  readonly slotSize: number;
  readonly buf: Buffer;
  readonly off: Uint32Array;
  readonly len: Uint32Array;
}

/** Frames carry a 10-byte virtio_net_hdr in front (TAP IFF_VNET_HDR, macvtap): TSO super-frames, partial checksums. */
export const CAP_VNET_HDR = 1;
/** The socket can send a run of equal-sized datagrams in one call (UDP_SEGMENT). */
export const CAP_UDP_GSO = 2;
/** Receives may hand over a run of datagrams in one slot (UDP_GRO; `PacketBatch`'s owner reports segment sizes). */
export const CAP_UDP_GRO = 4;

/** Negative results of `send`/`write` that mean "no room now, try again" (errno values). */
export const EAGAIN = 11;
export const ENOBUFS = 105;

/** Backpressure waits allowed in a row before the packet at the head counts as a tx error. */
export const SEND_RETRY_LIMIT = 50;
/** Longest single wait for socket room (ms). */
export const SEND_WAIT_MS = 2;

/** True for send results that mean "no room now" (-EAGAIN, -ENOBUFS). */
export function isBackpressure(r: number): boolean {
  return r === -EAGAIN || r === -ENOBUFS;
}

/** A session's Ethernet side: TAP, macvtap, or an in-memory queue. */
export interface FrameDevice {
  /** CAP_* flags, fixed for the device's lifetime. */
  readonly caps: number;
  /** Opaque number the receive-side coalescer keys flows by (the fd for real devices). */
  readonly id: number;
  /**
   * Reads up to `max` frames into slots [0, max) of `b`, each at `headroom`
   * (off[j] is set). Returns the count (0 = nothing ready) or -errno.
   */
  read(b: PacketBatch, max: number, headroom: number): number;
  /** Writes one frame `buf[off, off + len)`; returns bytes written or -errno (the pump counts a drop). */
  write(buf: Buffer, off: number, len: number): number;
}

/** Where a socket reports packets it accepted but then could not send (the pump counts them). */
export interface LateFailures {
  sendFailed(owner: Session): void;
}

/** A tunnel's network side: connected UDP socket, raw IP socket, dgram, or an in-memory link. */
export interface TunnelSocket {
  /** CAP_* flags. */
  readonly caps: number;
  /**
   * Sends slots [first, first + n) of `b` (complete L2TP packets, UDP payload or
   * after the IP header), packets of session `owner`. Returns how many were accepted,
   * in order (the rest are backpressure or failed), or -errno when the first one
   * failed. A socket that learns only later that an accepted packet was not sent
   * (node:dgram's completion callback) tells its LateFailures sink, with `owner`.
   */
  send(b: PacketBatch, first: number, n: number, owner: Session): number;
  /** Waits up to `ms` for room after a backpressure result (may return at once). */
  waitWritable(ms: number): void;
}

/**
 * The koffi backend's devices (../device.ts): a TAP read and written with
 * read(2)/write(2), a connected UDP socket (sendmmsg, optionally UDP GSO) and a
 * raw IP socket (sendmmsg to a shared destination). Every batch handed to them
 * is a koffi Batch (batch.ts) allocated by the same worker: its slots have
 * stable addresses the kernel reads and writes directly.
 */
import { CAP_UDP_GSO, type FrameDevice, type PacketBatch, type TunnelSocket } from '../device.js';
import { type Batch, sendBatch } from './batch.js';
import { readFrames, writeFrame } from './tapio.js';
import { readFramesUring, type Uring } from './uring.js';
import { EINVAL, EIO } from './errno.js';
import type { GsoSender } from './gso.js';
import { waitWritable } from './udp.js';

/** Below this many frames per read, one read(2) per frame is cheaper than an io_uring batch. */
const URING_MIN = 4;

/**
 * A session TAP (nonblocking fd); `caps` has CAP_VNET_HDR when it was opened with IFF_VNET_HDR.
 * With a `ring` (the worker's io_uring), reads switch to one io_uring_enter for a batch of
 * read(2)s while the TAP keeps handing over several frames per wake-up (asking for twice as
 * many as the last read returned), and back to one read(2) per frame when it does not: a
 * batch costs ~0.4 µs less per frame from 4 frames on, but more for a lone frame (a ping).
 */
export class TapDevice implements FrameDevice {
  readonly id: number;

  /** Frames the last read returned (sizes the next io_uring batch). */
  private last = 0;
  /** Frames read through io_uring batches (the rest one read(2) each). */
  uringFrames = 0;

  constructor(
    readonly fd: number,
    readonly caps: number,
    private ring: Uring | null = null,
  ) {
    this.id = fd;
  }

  read(b: PacketBatch, max: number, headroom: number): number {
    const ring = this.ring;
    let n: number;
    if (ring !== null && this.last >= URING_MIN) {
      const want = this.last * 2 < max ? this.last * 2 : max;
      n = readFramesUring(ring, this.fd, b as Batch, want, headroom);
      if (n > 0) this.uringFrames += n;
      else if (n < 0) {
        // e.g. EOPNOTSUPP: a kernel whose TAPs take no RWF_NOWAIT reads; read(2) from now on
        this.ring = null;
        n = readFrames(this.fd, b as Batch, max, headroom);
      }
    } else n = readFrames(this.fd, b as Batch, max, headroom);
    this.last = n > 0 ? n : 0;
    return n;
  }

  write(buf: Buffer, off: number, len: number): number {
    return writeFrame(this.fd, buf, off, len);
  }
}

/**
 * A connected UDP tunnel socket. With a GsoSender (tunnels that send UDP checksums: the
 * kernel refuses UDP_SEGMENT with SO_NO_CHECK) runs of equal-sized packets leave as one
 * GSO send; a socket that refuses it (EINVAL/EIO) falls back to plain sendmmsg for good.
 */
export class UdpSocket implements TunnelSocket {
  caps: number;

  constructor(
    readonly fd: number,
    private readonly gso: GsoSender | null,
  ) {
    this.caps = gso !== null ? CAP_UDP_GSO : 0;
  }

  send(b: PacketBatch, first: number, n: number): number {
    if (n > 1 && (this.caps & CAP_UDP_GSO) !== 0) {
      const r = this.gso!.send(b as Batch, this.fd, first, n);
      if (r !== -EINVAL && r !== -EIO) return r;
      this.caps &= ~CAP_UDP_GSO; // refused: plain sendmmsg from now on
    }
    return sendBatch(this.fd, b as Batch, first, n, -1);
  }

  waitWritable(ms: number): void {
    waitWritable(this.fd, ms);
  }
}

/** A raw IP socket (shared by the IP tunnels on one local address) sending to `dest`, an addDest index valid in every batch of the worker. */
export class RawIpSocket implements TunnelSocket {
  readonly caps = 0;

  constructor(
    readonly fd: number,
    readonly dest: number,
  ) {}

  send(b: PacketBatch, first: number, n: number): number {
    return sendBatch(this.fd, b as Batch, first, n, this.dest);
  }

  waitWritable(ms: number): void {
    waitWritable(this.fd, ms);
  }
}

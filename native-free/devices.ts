/**
 * The native-free backend's devices (src/io/device.ts) over Node built-ins:
 * a macvtap character device written with fs.writeSync behind a zero
 * virtio_net_hdr, and a connected node:dgram tunnel socket.
 *
 * dgram may keep a buffer's memory until the send completes (it queues when the
 * socket buffer is full), so slots handed to `DgramSocket.send` belong to the
 * socket until their completion: a batch that is a `SlotBatch` is told when a
 * slot is taken (`owner.held`) and given back (`owner.released`). dgram completes
 * the sends of one socket in submission order, so the slots in flight form a FIFO.
 */
import fs from 'node:fs';
import type dgram from 'node:dgram';
import type { FrameDevice, LateFailures, PacketBatch, TunnelSocket } from '../src/io/device.js';
import type { Session } from '../src/engine/session.js';
import { VNET_HDR_LEN } from './vnet.js';

/** -EBADF: the socket was closed under us. */
const EBADF = 9;

/** Who must hear when the socket takes and gives back a slot of a SlotBatch. */
export interface SlotOwner {
  held(slot: number): void;
  released(slot: number): void;
}

/** Slots over a buffer the caller owns (a reader's slot area or shared ring). */
export class SlotBatch implements PacketBatch {
  readonly off: Uint32Array;
  readonly len: Uint32Array;
  constructor(
    readonly buf: Buffer,
    readonly n: number,
    readonly slotSize: number,
    readonly owner: SlotOwner,
  ) {
    this.off = new Uint32Array(n);
    this.len = new Uint32Array(n);
  }
}

/** A session's macvtap device: every write starts with a zero virtio_net_hdr (no offload). */
export class MacvtapDevice implements FrameDevice {
  readonly caps = 0;
  readonly id: number;
  private readonly out = Buffer.alloc(VNET_HDR_LEN + 65536);

  constructor(readonly fd: number) {
    this.id = fd;
  }

  /** Frames are read by the session's reader (txreader.ts), not through this call. */
  read(): number {
    return 0;
  }

  write(buf: Buffer, off: number, len: number): number {
    if (len > this.out.length - VNET_HDR_LEN) return -1;
    buf.copy(this.out, VNET_HDR_LEN, off, off + len);
    try {
      return fs.writeSync(this.fd, this.out, 0, VNET_HDR_LEN + len);
    } catch {
      return -1;
    }
  }
}

/**
 * A connected dgram tunnel socket. Accepted sends count as sent; dgram reports a failure
 * later, in the completion callback: then the datagram was not sent (typically the
 * ICMP port-unreachable error queued on the connected socket by an earlier packet,
 * which the next send returns instead of sending), and the sink counts a transmit
 * error for its session, as the koffi backend's sendmmsg returning that error does
 * (the packet also stays in tx_packets, counted when dgram accepted it).
 */
export class DgramSocket implements TunnelSocket {
  readonly caps = 0;
  /** Sends in flight: their batches and slots (FIFO, grown on the cold path). */
  private fifoBatch: Array<SlotBatch | null> = new Array<SlotBatch | null>(64).fill(null);
  private fifoSlot = new Int32Array(64);
  private fifoOwner: Array<Session | null> = new Array<Session | null>(64).fill(null);
  private head = 0;
  private count = 0;
  private readonly onSent: (err: Error | null) => void;

  constructor(
    readonly sock: dgram.Socket,
    private readonly late: LateFailures,
  ) {
    this.onSent = (err) => this.sent(err);
  }

  send(b: PacketBatch, first: number, n: number, owner: Session): number {
    const sb = b instanceof SlotBatch ? b : null;
    for (let j = first; j < first + n; j++) {
      try {
        this.sock.send(b.buf, j * b.slotSize + b.off[j], b.len[j], this.onSent);
      } catch {
        return j > first ? j - first : -EBADF;
      }
      if (this.count === this.fifoSlot.length) this.grow();
      const at = (this.head + this.count) % this.fifoSlot.length;
      this.fifoBatch[at] = sb;
      this.fifoSlot[at] = j;
      this.fifoOwner[at] = owner;
      this.count++;
      if (sb !== null) sb.owner.held(j);
    }
    return n;
  }

  waitWritable(): void {
    // dgram queues instead of refusing: never called with backpressure
  }

  private sent(err: Error | null): void {
    const h = this.head;
    const sb = this.fifoBatch[h] ?? null;
    const slot = this.fifoSlot[h];
    const owner = this.fifoOwner[h];
    this.fifoBatch[h] = null;
    this.fifoOwner[h] = null;
    // (not for a session or tunnel already torn down: their counter slots may be reused)
    if (err && owner !== null && owner.ctx !== null && owner.tunnel.ctx !== null) this.late.sendFailed(owner);
    this.head = (h + 1) % this.fifoSlot.length;
    this.count--;
    if (sb !== null) sb.owner.released(slot);
  }

  private grow(): void {
    const cap = this.fifoSlot.length;
    const nb = new Array<SlotBatch | null>(cap * 2).fill(null);
    const ns = new Int32Array(cap * 2);
    const no = new Array<Session | null>(cap * 2).fill(null);
    for (let k = 0; k < this.count; k++) {
      nb[k] = this.fifoBatch[(this.head + k) % cap]!;
      ns[k] = this.fifoSlot[(this.head + k) % cap]!;
      no[k] = this.fifoOwner[(this.head + k) % cap];
    }
    this.fifoBatch = nb;
    this.fifoSlot = ns;
    this.fifoOwner = no;
    this.head = 0;
  }
}

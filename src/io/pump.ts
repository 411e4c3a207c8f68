/**
 * The one packet path. Every backend (koffi worker threads, native-free on the
 * event loop, the in-memory link) runs this code over its own devices
 * (device.ts); a backend only reads and waits. Per batch:
 *
 *   tx: frames in slots (at HEADROOM) → offload stage for virtio_net_hdr devices
 *       (checksum completion, TSO segmentation) → encap in place → capture stage →
 *       impairment stage → TunnelSocket.send with the one retry policy → count.
 *   rx: L2TP packet (UDP payload, or raw IP) → capture stage → decap (engine) →
 *       deliver: coalesce stage for virtio_net_hdr devices, else FrameDevice.write
 *       → count device drops.
 *
 * Stages are null when unused and cost one check per batch then. The session's
 * and tunnel's I/O objects live on `session.ctx` / `tunnel.ctx` as SessionPort /
 * TunnelPort (backends subclass them to keep their own handles).
 *
 * Owned by one thread. Hot path: no allocation, no throwing, indexed loops.
 */
import { countTx, countTxError, encap } from '../engine/encap.js';
import { decapIp, decapUdp, expire, RX_NO_SESSION as NO_SESSION, type RxResult, type RxSink } from '../engine/decap.js';
import { HEADROOM } from '../engine/layout.js';
import type { Session } from '../engine/session.js';
import { RX_DEV_DROPS, RX_NO_SESSION } from '../engine/stats.js';
import type { Table } from '../engine/table.js';
import type { Tunnel } from '../engine/tunnel.js';
import { CAP_VNET_HDR, isBackpressure, SEND_RETRY_LIMIT, SEND_WAIT_MS, type FrameDevice, type LateFailures, type PacketBatch, type TunnelSocket } from './device.js';
import type { CaptureStage } from './stages/capture.js';
import type { Impairer } from './stages/impair.js';
import type { TxOffload } from './stages/offload.js';
import type { Coalescer } from './offload/gro.js';

export { SEND_RETRY_LIMIT, SEND_WAIT_MS } from './device.js';

/** A session's I/O: its frame device. Backends subclass it for their own handles. */
export class SessionPort {
  constructor(readonly dev: FrameDevice) {}
}

/** A tunnel's I/O: its socket, and for raw IP the remote address bytes (source check). */
export class TunnelPort {
  constructor(
    readonly sock: TunnelSocket,
    /** Remote address bytes (4 or 16), for raw IP's source check; empty for UDP. */
    readonly remote: Buffer,
  ) {}
}

export interface PumpStages {
  capture?: CaptureStage | null;
  impair?: Impairer | null;
  offload?: TxOffload | null;
  coalesce?: Coalescer | null;
}

/**
 * Milliseconds, monotonic, with sub-millisecond resolution. Each thread counts from its
 * own start: these times never leave the thread that read them and are never compared
 * with Date.now().
 */
export const monotonicMs = (): number => performance.now();

export class Pump implements RxSink, LateFailures {
  readonly capture: CaptureStage | null;
  readonly impair: Impairer | null;
  readonly offload: TxOffload | null;
  readonly coalesce: Coalescer | null;
  /**
   * The pump's time in milliseconds, for every deadline it keeps (reorder timeouts, the
   * impairment stage's schedule). Monotonic and finer than 1 ms: a packet delayed by D ms
   * leaves no sooner than D ms after it was read (Date.now() truncates the read time, so
   * it left up to 1 ms early), and a step of the wall clock neither holds nor releases
   * queued packets. The in-memory link drives its own time.
   */
  clock: () => number = monotonicMs;
  /** Receive buffer whose frames the coalescer may hold in place until detach()/flush() (the backend's rx slab). */
  rxSlab: Buffer | null = null;

  constructor(
    readonly table: Table,
    stages: PumpStages = {},
  ) {
    this.capture = stages.capture ?? null;
    this.impair = stages.impair ?? null;
    this.offload = stages.offload ?? null;
    this.coalesce = stages.coalesce ?? null;
    if (this.offload !== null) this.offload.attach(this);
  }

  // ------------------------------------------------------------------ tx

  /**
   * Up to `rounds` reads of session `s`'s device into `b` (up to `max` frames each), each
   * batch sent. Returns after a short read. The backend's wait loop calls this when the
   * device is readable.
   */
  pumpSession(s: Session, b: PacketBatch, max: number, rounds: number): void {
    const dev = (s.ctx as SessionPort).dev;
    const off = this.offload;
    if (off !== null && (dev.caps & CAP_VNET_HDR) !== 0) {
      off.pump(s, dev, rounds);
      return;
    }
    for (let round = 0; round < rounds; round++) {
      const n = dev.read(b, max, HEADROOM);
      if (n <= 0) return;
      this.txFrames(s, b, 0, n);
      if (n < max) return;
    }
  }

  /**
   * Frames in slots [first, first + n) of `b` (at off/len): encapsulate in place, then
   * output. Every slot carries at least HEADROOM (>= MAX_HDR_LEN) bytes in front of its frame.
   */
  txFrames(s: Session, b: PacketBatch, first: number, n: number): void {
    const buf = b.buf;
    const ss = b.slotSize;
    const end = first + n;
    for (let j = first; j < end; j++) {
      const at = j * ss + b.off[j];
      const hdr = at - encap(s, buf, at, b.len[j]);
      b.off[j] -= hdr;
      b.len[j] += hdr;
    }
    this.output(s, b, first, n);
  }

  /** Encapsulated packets in slots [first, first + n): capture, impairment, send, count. */
  output(s: Session, b: PacketBatch, first: number, n: number): void {
    const cap = this.capture;
    if (cap !== null && cap.on()) cap.tx(s, b, first, n);
    const imp = this.impair;
    if (imp !== null && imp.active !== 0 && imp.has(s)) {
      // The "network" takes them: counted as sent, then lost, queued or duplicated there.
      for (let j = first; j < first + n; j++) countTx(s, b.len[j]);
      imp.take(s, b, first, n, this.clock());
      return;
    }
    this.send(s, (s.tunnel.ctx as TunnelPort).sock, b, first, n);
  }

  /**
   * The one send-and-count policy: accepted packets count as sent; backpressure waits
   * briefly (up to SEND_RETRY_LIMIT times in a row, like a blocking kernel send); any other
   * error drops the packet at the head (tx_errors) and the rest are tried again.
   */
  send(s: Session, sock: TunnelSocket, b: PacketBatch, first: number, n: number): void {
    const end = first + n;
    let done = first;
    let tries = 0;
    while (done < end) {
      const r = sock.send(b, done, end - done, s);
      if (r > 0) {
        for (let j = done; j < done + r; j++) countTx(s, b.len[j]);
        done += r;
        tries = 0;
        continue;
      }
      if (isBackpressure(r) && tries++ < SEND_RETRY_LIMIT) {
        sock.waitWritable(SEND_WAIT_MS);
        continue;
      }
      countTxError(s);
      done++;
    }
  }

  /** LateFailures: a packet a socket accepted, then found it could not send (node:dgram): one tx error. */
  sendFailed(owner: Session): void {
    countTxError(owner);
  }

  /** A frame the backend read but could not use (malformed, no slot free): one tx error. */
  txDropped(s: Session): void {
    countTxError(s);
  }

  // ------------------------------------------------------------------ rx

  /** One UDP payload (an L2TP packet) received on tunnel `t`'s socket. */
  rxUdp(t: Tunnel, buf: Buffer, off: number, len: number, now: number): RxResult {
    const cap = this.capture;
    if (cap !== null && cap.on()) cap.rxUdp(t, buf, off, len);
    return decapUdp(this.table, t, buf, off, len, now, this);
  }

  /**
   * A UDP GRO run (several datagrams of `seg` bytes, the last possibly shorter) in one
   * receive slot; seg 0 = a single datagram.
   */
  rxUdpRun(t: Tunnel, buf: Buffer, off: number, len: number, seg: number, now: number): void {
    if (seg === 0 || seg >= len) {
      this.rxUdp(t, buf, off, len, now);
      return;
    }
    for (let o = 0; o < len; o += seg) this.rxUdp(t, buf, off + o, len - o < seg ? len - o : seg, now);
  }

  /**
   * One raw IP packet: with `ipHeader` (IPv4 raw sockets) buf[off] is the IPv4 header,
   * whose IHL is skipped and whose source address is checked; without it (IPv6) off is the
   * L2TP session id and the source address bytes are at src[srcOff]. IP encap has no tunnel
   * context on the wire: the session id names the session globally. Unlike the kernel, the
   * packet must also come from that session's tunnel remote (invisible to a correct peer).
   */
  rxIp(buf: Buffer, off: number, len: number, ipHeader: boolean, src: Buffer, srcOff: number, now: number): RxResult {
    const table = this.table;
    if (ipHeader) {
      const ihl = (buf[off] & 0x0f) << 2;
      if (len < ihl || ihl < 20) {
        table.orphan[RX_NO_SESSION]++;
        return NO_SESSION;
      }
      // A payload shorter than a session id (even none) is counted by decapIp as rx_short.
      src = buf;
      srcOff = off + 12;
      off += ihl;
      len -= ihl;
    }
    const cap = this.capture;
    if (cap !== null && cap.on()) cap.rxIp(buf, off, len);
    if (len >= 4) {
      const sid = buf.readUInt32BE(off);
      if (sid !== 0) {
        const s = table.lookupIp(sid);
        if (s !== undefined) {
          const remote = (s.tunnel.ctx as TunnelPort).remote;
          for (let k = 0; k < remote.length; k++) {
            if (src[srcOff + k] !== remote[k]) {
              table.orphan[RX_NO_SESSION]++;
              return NO_SESSION;
            }
          }
        }
      }
    }
    return decapIp(table, buf, off, len, now, this);
  }

  /** RxSink: a decapsulated frame for session `s` (zero-copy, valid during the call only). */
  deliver(s: Session, buf: Buffer, off: number, len: number): void {
    const port = s.ctx as SessionPort | null;
    if (port === null) {
      s.stats[s.base + RX_DEV_DROPS]++;
      return;
    }
    const dev = port.dev;
    const co = this.coalesce;
    if (co !== null && (dev.caps & CAP_VNET_HDR) !== 0) {
      co.add(dev.id, s.base, buf, off, len, buf === this.rxSlab);
      return;
    }
    if (dev.write(buf, off, len) < 0) s.stats[s.base + RX_DEV_DROPS]++;
  }

  /** End of one receive batch: nothing the coalescer holds or queues may point into the rx slab after it (see Coalescer.detach). */
  rxBatchDone(): void {
    const co = this.coalesce;
    if (co !== null && co.pending !== 0) co.detach();
  }

  /**
   * End of a wake-up (and before a device can go away): coalesced frames are written,
   * reorder queues expired (when `expireReorder`), impaired packets that are due sent.
   */
  idle(now: number, expireReorder: boolean): void {
    if (expireReorder) {
      for (const s of this.table.sessions()) if (s.cfg.reorderTimeoutMs > 0) expire(s, now, this);
    }
    const co = this.coalesce;
    if (co !== null && co.pending !== 0) co.flush();
    const imp = this.impair;
    if (imp !== null && imp.active !== 0) imp.flushAll(now);
  }

  /** Writes what the coalescer holds (before a device closes). */
  flushCoalesced(): void {
    const co = this.coalesce;
    if (co !== null && co.pending !== 0) co.flush();
  }

  /** How long the wait loop may sleep (ms, -1 = until an event): `dflt` unless impairment holds packets. */
  waitMs(dflt: number, now: number): number {
    const imp = this.impair;
    return imp !== null && imp.active !== 0 ? imp.waitMs(dflt, now) : dflt;
  }
}

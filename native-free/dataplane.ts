/**
 * The native-free dataplane: the same tunnels as the koffi backend with
 * nothing but Node's built-ins (fs, dgram, worker_threads, child_process for
 * `ip`/`mknod`) plus src/engine and src/wire. Never imports koffi.
 *
 * Per session: a macvtap-backed interface (macvtap.ts) and one worker thread
 * reading it (tx-worker.ts) into a shared ring (ring.ts). Per tunnel: a
 * connected dgram socket (udp.ts).
 *
 *   tx: worker read [vnet hdr][frame] into a ring slot → main: encap in the
 *       slot's headroom → socket.send(slot) → slot released when the send completes
 *   rx: dgram 'message' → decapUdp → sink copies [10 zero bytes][frame] into
 *       a preallocated buffer → fs.writeSync(macvtap fd)
 *
 * Limits (documented in udp.ts and below): no `encap ip` (raw sockets need
 * native code); UDP checksums always sent; zero-checksum IPv6 not received.
 */
import fs from 'node:fs';
import type dgram from 'node:dgram';
import { Worker } from 'node:worker_threads';
import type { Dataplane, SessionHandle, TunnelHandle } from '../src/io/types.js';
import type { SessionConfig, TunnelConfig } from '../src/engine/config.js';
import { RX_DEV_DROPS, SLOT_SIZE } from '../src/engine/stats.js';
import { HEADROOM } from '../src/engine/layout.js';
import { Table } from '../src/engine/table.js';
import type { Tunnel } from '../src/engine/tunnel.js';
import type { Session } from '../src/engine/session.js';
import { encap, countTx, countTxError } from '../src/engine/encap.js';
import { decapUdp, expire, type RxSink } from '../src/engine/decap.js';
import { kernelError, L2tpError } from '../src/errors.js';
import { openTunnelSocket } from './udp.js';
import { openSessionInterface, removeSessionInterface, resolveName, type MacvtapInterface } from './macvtap.js';
import { HEAD, LEN_DROP, SLEEP, SLOT_BYTES, SLOTS, STOP, TAIL, VNET_HDR_LEN, newRing, ringViews } from './ring.js';

/** Text of the `encap ip` refusal (the CLI prints it after "RTNETLINK answers: "). */
export const ENCAP_IP_MESSAGE =
  'Protocol not supported (encap ip needs raw IP sockets, which the native-free backend cannot open: ' +
  'install the optional dependency koffi (npm install koffi, or do not use --omit=optional) and run the daemon ' +
  'with the native backend, or use encap udp)';

/** Counter slots available (slot 0 = namespace-level drops). */
export const MAX_SLOTS = 8192;
/** Frames handled per drain before yielding to the event loop. */
const DRAIN_BUDGET = 256;
/** How often queued frames are expired, only while a session uses reordering. */
const EXPIRE_INTERVAL_MS = 20;

export interface NativeFreeOptions {
  /** Delete the session interfaces on close() (default false: they stay and are adopted on the next start). */
  readonly removeInterfacesOnClose?: boolean;
}

/** Per-tunnel I/O state (tunnel.ctx). */
class TunnelIo {
  constructor(
    readonly tunnel: Tunnel,
    readonly sock: dgram.Socket,
  ) {}
}

/** Per-session I/O state (session.ctx): the device, its reader worker and the consumer side of the ring. */
class SessionIo {
  readonly ctl: Int32Array;
  readonly lens: Int32Array;
  readonly data: Buffer;
  /** Slots whose send is in flight, in order (dgram completes sends in order). */
  private readonly inflightSeq = new Int32Array(SLOTS);
  private readonly inflightLen = new Int32Array(SLOTS);
  private inflightHead = 0;
  private inflightCount = 0;
  /** Frames taken from the ring so far (int32, wraps). */
  private consumed = 0;
  private stopped = false;
  worker: Worker | null = null;
  readonly drainFn: () => void;
  readonly onSent: (err: Error | null) => void;

  constructor(
    readonly s: Session,
    readonly iface: MacvtapInterface,
    readonly sab: SharedArrayBuffer,
    readonly sock: dgram.Socket,
  ) {
    const v = ringViews(sab);
    this.ctl = v.ctl;
    this.lens = v.lens;
    this.data = v.data;
    this.drainFn = () => this.drain();
    this.onSent = (err) => this.sent(err);
  }

  /** Publish how far the worker may reuse slots: up to the oldest send still in flight. */
  private release(): void {
    const upTo = this.inflightCount === 0 ? this.consumed : this.inflightSeq[this.inflightHead];
    Atomics.store(this.ctl, TAIL, upTo);
    Atomics.notify(this.ctl, TAIL);
  }

  private sent(err: Error | null): void {
    const pktLen = this.inflightLen[this.inflightHead];
    this.inflightHead = (this.inflightHead + 1) % SLOTS;
    this.inflightCount--;
    if (err) countTxError(this.s);
    else countTx(this.s, pktLen);
    this.release();
  }

  /** Take frames from the ring, encapsulate and send them. Hot path. */
  drain(): void {
    if (this.stopped) return;
    const ctl = this.ctl;
    const s = this.s;
    const data = this.data;
    let budget = DRAIN_BUDGET;
    for (;;) {
      const head = Atomics.load(ctl, HEAD);
      while (this.consumed !== head && budget > 0) {
        const seq = this.consumed;
        const slot = (seq >>> 0) % SLOTS;
        const len = this.lens[slot];
        this.consumed = (seq + 1) | 0;
        budget--;
        if (len === LEN_DROP) {
          countTxError(s);
          continue;
        }
        const frameOff = slot * SLOT_BYTES + HEADROOM;
        const start = encap(s, data, frameOff, len);
        if (start < 0) {
          countTxError(s);
          continue;
        }
        const pktLen = frameOff + len - start;
        const at = (this.inflightHead + this.inflightCount) % SLOTS;
        this.inflightSeq[at] = seq;
        this.inflightLen[at] = pktLen;
        this.inflightCount++;
        try {
          this.sock.send(data, start, pktLen, this.onSent);
        } catch {
          // socket closed under us: undo the in-flight entry
          this.inflightCount--;
          countTxError(s);
        }
      }
      this.release();
      if (budget === 0) {
        setImmediate(this.drainFn);
        return;
      }
      Atomics.store(ctl, SLEEP, 1);
      if (Atomics.load(ctl, HEAD) === this.consumed) return;
      // frames arrived meanwhile: take them unless the worker already posted a wake-up
      if (Atomics.compareExchange(ctl, SLEEP, 1, 0) !== 1) return;
    }
  }

  start(onError: (msg: string) => void): void {
    const w = new Worker(new URL('./tx-worker.js', import.meta.url), {
      workerData: { fd: this.iface.fd, sab: this.sab },
      stdout: false,
      stderr: false,
    });
    w.on('message', (m: unknown) => {
      if (m === 0) this.drain();
      else onError(`${this.iface.name}: reader stopped: ${(m as { error?: string }).error ?? 'unknown'}`);
    });
    w.on('error', (e) => onError(`${this.iface.name}: reader failed: ${e.message}`));
    this.worker = w;
  }

  /** Stop the reader (it notices within ~1 ms) and wait for it to exit. */
  async stop(): Promise<void> {
    this.stopped = true;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.notify(this.ctl, STOP);
    const w = this.worker;
    this.worker = null;
    if (w) {
      await new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        // a worker that never started its loop exits on terminate()
        setTimeout(() => void w.terminate(), 2000).unref();
      });
    }
  }
}

/** Rx sink: [10 zero bytes = virtio_net_hdr][frame] in one write to the session's device. */
class MacvtapSink implements RxSink {
  private readonly out = Buffer.alloc(VNET_HDR_LEN + 65536);

  deliver(s: Session, buf: Buffer, off: number, len: number): void {
    if (s.dev < 0 || len > this.out.length - VNET_HDR_LEN) {
      s.stats[s.base + RX_DEV_DROPS]++;
      return;
    }
    buf.copy(this.out, VNET_HDR_LEN, off, off + len);
    try {
      fs.writeSync(s.dev, this.out, 0, VNET_HDR_LEN + len);
    } catch {
      s.stats[s.base + RX_DEV_DROPS]++;
    }
  }
}

export class NativeFreeDataplane implements Dataplane {
  readonly name = 'native-free';
  readonly stats: Float64Array;
  private readonly table: Table;
  private readonly sink = new MacvtapSink();
  private readonly freeSlots: number[] = [];
  private readonly removeOnClose: boolean;
  private expireTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Serialises control operations (they await `ip`). */
  private chain: Promise<unknown> = Promise.resolve();
  /** Called with one-line warnings (reader failures); default: stderr. */
  onWarning: (msg: string) => void = (msg) => process.stderr.write(`ul2tp: ${msg}\n`);

  constructor(opts: NativeFreeOptions = {}) {
    this.stats = new Float64Array(new SharedArrayBuffer(MAX_SLOTS * SLOT_SIZE * 8));
    this.table = new Table(this.stats.subarray(0, SLOT_SIZE));
    for (let i = MAX_SLOTS - 1; i >= 1; i--) this.freeSlots.push(i * SLOT_SIZE);
    this.removeOnClose = opts.removeInterfacesOnClose ?? false;
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.chain.then(op, op);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private takeSlot(): number {
    const base = this.freeSlots.pop();
    if (base === undefined) throw kernelError('ENOSPC', 'no free counter slot');
    this.stats.fill(0, base, base + SLOT_SIZE);
    return base;
  }

  private giveSlot(base: number): void {
    this.stats.fill(0, base, base + SLOT_SIZE);
    this.freeSlots.push(base);
  }

  private checkOpen(): void {
    if (this.closed) throw kernelError('ENODEV', 'dataplane closed');
  }

  addTunnel(cfg: TunnelConfig): Promise<TunnelHandle> {
    return this.serial(async () => {
      this.checkOpen();
      if (cfg.encap !== 'udp') throw new L2tpError('KERNEL', ENCAP_IP_MESSAGE, 'EPROTONOSUPPORT');
      this.table.checkTunnel(cfg);
      const base = this.takeSlot();
      let sock: dgram.Socket;
      try {
        sock = await openTunnelSocket(cfg);
      } catch (e) {
        this.giveSlot(base);
        throw e;
      }
      const t = this.table.addTunnel(cfg, this.stats, base);
      const io = new TunnelIo(t, sock);
      t.ctx = io;
      const table = this.table;
      const sink = this.sink;
      sock.on('message', (msg: Buffer) => {
        decapUdp(table, t, msg, 0, msg.length, Date.now(), sink);
      });
      // connected UDP sockets report ICMP errors (ECONNREFUSED) on later sends; those are counted there
      sock.on('error', () => undefined);
      return { statsBase: base };
    });
  }

  addSession(cfg: SessionConfig, mtu: number): Promise<SessionHandle> {
    return this.serial(async () => {
      this.checkOpen();
      this.table.checkSession(cfg);
      const t = this.table.getTunnel(cfg.tunnelId)!;
      const tio = t.ctx as TunnelIo;
      const name = await resolveName(cfg.ifname);
      const base = this.takeSlot();
      let iface: MacvtapInterface;
      try {
        iface = await openSessionInterface(name, mtu);
      } catch (e) {
        this.giveSlot(base);
        throw e;
      }
      const s = this.table.addSession(name === cfg.ifname ? cfg : { ...cfg, ifname: name }, this.stats, base);
      s.dev = iface.fd;
      const io = new SessionIo(s, iface, newRing(), tio.sock);
      s.ctx = io;
      io.start((msg) => this.onWarning(msg));
      if (s.reorderTimeoutMs > 0) this.startExpiry();
      return { statsBase: base, ifname: name };
    });
  }

  private startExpiry(): void {
    if (this.expireTimer) return;
    this.expireTimer = setInterval(() => {
      const now = Date.now();
      let any = false;
      for (const s of this.table.sessions()) {
        if (s.reorderTimeoutMs > 0) {
          any = true;
          expire(s, now, this.sink);
        }
      }
      if (!any && this.expireTimer) {
        clearInterval(this.expireTimer);
        this.expireTimer = null;
      }
    }, EXPIRE_INTERVAL_MS);
    this.expireTimer.unref();
  }

  /** Stop a session's I/O; delete its interface unless `keepInterface`. */
  private async teardownSession(s: Session, keepInterface: boolean): Promise<void> {
    const io = s.ctx as SessionIo | null;
    s.dev = -1;
    if (!io) return;
    s.ctx = null;
    await io.stop();
    try {
      if (keepInterface) fs.closeSync(io.iface.fd);
      else await removeSessionInterface(io.iface);
    } finally {
      this.giveSlot(s.base);
    }
  }

  removeSession(tunnelId: number, sessionId: number): Promise<void> {
    return this.serial(async () => {
      const s = this.table.removeSession(tunnelId, sessionId);
      await this.teardownSession(s, false);
    });
  }

  removeTunnel(tunnelId: number): Promise<void> {
    return this.serial(async () => {
      const t = this.table.getTunnel(tunnelId);
      const removed = this.table.removeTunnel(tunnelId);
      let firstError: unknown = null;
      for (const s of removed) {
        try {
          await this.teardownSession(s, false);
        } catch (e) {
          firstError ??= e;
        }
      }
      if (t) this.closeTunnel(t);
      if (firstError) throw firstError;
    });
  }

  private closeTunnel(t: Tunnel): void {
    const io = t.ctx as TunnelIo | null;
    t.ctx = null;
    if (io) {
      try {
        io.sock.close();
      } catch {
        /* already closed */
      }
    }
    this.giveSlot(t.base);
  }

  /** Stop all I/O. Interfaces stay (adopted by the next start) unless removeInterfacesOnClose. */
  close(): Promise<void> {
    return this.serial(async () => {
      if (this.closed) return;
      this.closed = true;
      if (this.expireTimer) clearInterval(this.expireTimer);
      this.expireTimer = null;
      for (const t of this.table.tunnels()) {
        const removed = this.table.removeTunnel(t.tunnelId);
        for (const s of removed) await this.teardownSession(s, !this.removeOnClose).catch(() => undefined);
        this.closeTunnel(t);
      }
    });
  }
}

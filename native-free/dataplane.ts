/**
 * The native-free dataplane: the same tunnels as the koffi backend with
 * nothing but Node's built-ins (fs, dgram, worker_threads, child_process for
 * `ip`/`mknod`) plus src/engine, src/wire and the shared pump (src/io/pump.ts,
 * src/io/device.ts). Never imports koffi.
 *
 * Per session: a macvtap-backed interface (macvtap.ts, MacvtapDevice) and a tx
 * reader (txreader.ts: event-driven on the main thread by default; the options'
 * nfReader selects a worker thread instead).
 * Per tunnel: a connected dgram socket (udp.ts, DgramSocket).
 * The packet path is the shared pump (src/io/pump.ts):
 *
 *   tx: read [vnet hdr][frame] into a preallocated slot → pump.txFrames (encap in
 *       the slot's headroom, DgramSocket.send, count) → slot reused when the send completes
 *   rx: dgram 'message' → pump.rxUdp (decap, count) → MacvtapDevice.write:
 *       [10 zero bytes][frame] → fs.writeSync(macvtap fd)
 *
 * Limits (documented in udp.ts and below): no `encap ip` (raw sockets need
 * native code); UDP checksums always sent; zero-checksum IPv6 not received.
 */
import fs from 'node:fs';
import type dgram from 'node:dgram';
import type { Dataplane, SessionHandle, TunnelHandle } from '../src/io/types.js';
import type { SessionConfig, TunnelConfig } from '../src/engine/config.js';
import { SLOT_SIZE, SlotAllocator } from '../src/engine/stats.js';
import { Table } from '../src/engine/table.js';
import type { Tunnel } from '../src/engine/tunnel.js';
import type { Session } from '../src/engine/session.js';
import type { ImpairConfig } from '../src/engine/impair.js';
import type { CaptureRing } from '../src/io/capture-ring.js';
import { dataplaneOptions, type DataplaneOptions } from '../src/io/options.js';
import { Pump, SessionPort, TunnelPort } from '../src/io/pump.js';
import { kernelError, L2tpError } from '../src/errors.js';
import { openTunnelSocket } from './udp.js';
import { openSessionInterface, removeSessionInterface, resolveName, type MacvtapInterface } from './macvtap.js';
import { DgramSocket, MacvtapDevice } from './devices.js';
import { startTxReader, type TxReader } from './txreader.js';

/** Text of the `encap ip` refusal (the CLI prints it after "RTNETLINK answers: "). */
export const ENCAP_IP_MESSAGE =
  'Protocol not supported\n' +
  'encap ip needs raw IP sockets, which the native-free backend cannot open: install the optional ' +
  'dependency koffi (npm install koffi, or do not use --omit=optional) so the daemon runs the native ' +
  'backend, or use encap udp.';

/** Counter slots available (slot 0 = namespace-level drops). */
export const MAX_SLOTS = 8192;
/** Longest wait for a session's reader to stop before its interface is deleted anyway. */
const READER_STOP_TIMEOUT_MS = 3000;
/** How often queued frames are expired, only while a session uses reordering. */
const EXPIRE_INTERVAL_MS = 20;

export interface NativeFreeOptions extends Partial<DataplaneOptions> {
  /** Delete the session interfaces on close() (default false: they stay and are adopted on the next start). */
  readonly removeInterfacesOnClose?: boolean;
}

/** Per-tunnel I/O (tunnel.ctx): the pump's port over the dgram socket. */
class TunnelIo extends TunnelPort {
  constructor(readonly dsock: DgramSocket) {
    super(dsock, Buffer.alloc(0));
  }
}

/** Per-session I/O (session.ctx): the pump's port over the macvtap, plus the interface and its reader. */
class SessionIo extends SessionPort {
  constructor(
    dev: MacvtapDevice,
    readonly iface: MacvtapInterface,
    public reader: TxReader | null,
  ) {
    super(dev);
  }
}

export class NativeFreeDataplane implements Dataplane {
  readonly name = 'native-free';
  /** No capture and no impairment here: the daemon refuses both with a message that says why. */
  readonly features = { capture: false, impair: false } as const;
  readonly captureRings: readonly CaptureRing[] = [];
  readonly stats: Float64Array;
  private readonly table: Table;
  /** The packet path (no stages: capture, impairment and offloads are koffi-only). */
  private readonly pump: Pump;
  private readonly options: DataplaneOptions;
  private readonly slots: SlotAllocator;
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
    this.pump = new Pump(this.table);
    this.options = dataplaneOptions(opts);
    this.slots = new SlotAllocator(this.stats, MAX_SLOTS);
    this.removeOnClose = opts.removeInterfacesOnClose ?? false;
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.chain.then(op, op);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private takeSlot(): number {
    const base = this.slots.take();
    if (base === null) throw kernelError('ENOSPC', 'no free counter slot');
    return base;
  }

  private giveSlot(base: number): void {
    this.slots.give(base);
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
      t.ctx = new TunnelIo(new DgramSocket(sock, this.pump));
      const pump = this.pump;
      sock.on('message', (msg: Buffer) => {
        pump.rxUdp(t, msg, 0, msg.length, pump.clock());
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
      const name = await resolveName(cfg.ifname);
      const base = this.takeSlot();
      let iface: MacvtapInterface;
      try {
        iface = await openSessionInterface(name, mtu);
      } catch (e) {
        this.giveSlot(base);
        throw e;
      }
      let s: Session | null = null;
      try {
        s = this.table.addSession(name === cfg.ifname ? cfg : { ...cfg, ifname: name }, this.stats, base);
        const io = new SessionIo(new MacvtapDevice(iface.fd), iface, null);
        s.ctx = io;
        s.dev = iface.fd;
        io.reader = startTxReader(s, this.pump, iface.fd, this.options.nfReader, (msg) => this.onWarning(msg));
      } catch (e) {
        // leave nothing behind (an adopted interface stays as it was found)
        if (s) this.table.removeSession(cfg.tunnelId, cfg.sessionId);
        try {
          fs.closeSync(iface.fd);
        } catch {
          /* not open */
        }
        if (!iface.adopted) await removeSessionInterface(iface).catch(() => undefined);
        this.giveSlot(base);
        throw e instanceof L2tpError ? e : kernelError('EIO', (e as Error).message);
      }
      if (s.reorderTimeoutMs > 0) this.startExpiry();
      return { statsBase: base, ifname: name };
    });
  }

  /** Which tx reader a session runs ('event', 'worker' or 'poll'); undefined when no such session. */
  readerOf(tunnelId: number, sessionId: number): string | undefined {
    const io = this.table.getSession(tunnelId, sessionId)?.ctx as SessionIo | null | undefined;
    return io?.reader?.kind;
  }

  private startExpiry(): void {
    if (this.expireTimer) return;
    this.expireTimer = setInterval(() => {
      const now = this.pump.clock();
      let any = false;
      for (const s of this.table.sessions()) if (s.reorderTimeoutMs > 0) any = true;
      if (any) this.pump.idle(now, true);
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
    if (!io.reader) return;
    // closes the device fd; never let a stuck reader block the removal
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      io.reader.stop().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), READER_STOP_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!stopped) this.onWarning(`${io.iface.name}: reader did not stop within ${READER_STOP_TIMEOUT_MS} ms`);
    try {
      if (!keepInterface) await removeSessionInterface(io.iface);
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

  /** One by one: veth pairs have no batched removal worth having here. */
  async removeSessions(keys: ReadonlyArray<readonly [number, number]>): Promise<void> {
    for (const [t, s] of keys) await this.removeSession(t, s);
  }

  setImpairment(): Promise<void> {
    return Promise.reject(new L2tpError('DAEMON', `impairment is not supported by the ${this.name} backend (use the koffi backend)`));
  }

  impairment(): ImpairConfig | null {
    return null;
  }

  removeTunnel(tunnelId: number): Promise<void> {
    return this.serial(async () => {
      const t = this.table.getTunnel(tunnelId);
      const removed = this.table.removeTunnel(tunnelId);
      let firstError: Error | null = null;
      for (const s of removed) {
        try {
          await this.teardownSession(s, false);
        } catch (e) {
          firstError ??= e instanceof Error ? e : new Error(String(e));
        }
      }
      if (t) this.closeTunnel(t);
      if (firstError !== null) throw firstError;
    });
  }

  private closeTunnel(t: Tunnel): void {
    const io = t.ctx as TunnelIo | null;
    t.ctx = null;
    if (io) {
      try {
        io.dsock.sock.close();
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

/**
 * Tx path of one session: frames read from its macvtap device are
 * encapsulated in place (the header goes into the slot's headroom) and sent
 * on the tunnel's connected dgram socket.
 *
 * dgram may keep a buffer's memory until the send completes (it queues when
 * the socket buffer is full), so a slot is reused only after its send
 * callback; dgram completes sends in submission order, so the slots in
 * flight form a FIFO.
 *
 * Readers (UL2TP_NF_READER chooses; default `event`):
 * - `event` (EventReader): the device fd is wrapped in a libuv pipe handle
 *   (pipewrap.ts: process.binding('pipe_wrap'), the only built-in way to get
 *   epoll readiness on a character device) and read on the main thread with
 *   net.Socket's `onread` user-buffer mode into preallocated slots: no
 *   thread, no polling, no per-frame allocation on our side, immediate close,
 *   lowest latency, and nothing extra per session. The default.
 * - `worker` (WorkerReader): the same event-driven read in a worker thread
 *   per session, into a shared ring (ring.ts, tx-worker.ts) that the main
 *   thread drains; checksum completion moves off the main thread. Somewhat
 *   faster for one busy session on a multi-core machine, but each worker
 *   costs a V8 isolate (~15 MB) and a thread hop per batch.
 * - `poll`: the worker polls the O_NONBLOCK device (used when pipe_wrap is
 *   missing). A blocking read cannot be used: a read blocked on a macvtap is
 *   woken neither by deleting the interface nor by closing the fd, so it could
 *   never exit. Idle polling costs a few percent of a core per session.
 */
import fs from 'node:fs';
import type net from 'node:net';
import type dgram from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { HEADROOM } from '../src/engine/layout.js';
import type { Session } from '../src/engine/session.js';
import { encap, countTx, countTxError } from '../src/engine/encap.js';
import { DROPS, HEAD, LEN_DROP, SLEEP, SLOT_BYTES, SLOTS, STOP, TAIL, READ_OFF, newRing, ringViews } from './ring.js';
import { FRAME_DROP, finishFrame } from './vnet.js';
import { getPipeWrap, watchFd } from './pipewrap.js';

/** Frames handled per drain before yielding to the event loop (worker reader). */
const DRAIN_BUDGET = 256;
/** Slots of the event reader. */
const EVENT_SLOTS = 64;

export interface TxReader {
  readonly kind: ReaderKind;
  /** Stop reading; the device fd is closed once this resolves. */
  stop(): Promise<void>;
}

/** Send bookkeeping shared by both readers. */
abstract class TxBase {
  private readonly inflightTok: Int32Array;
  private readonly inflightLen: Int32Array;
  private inflightHead = 0;
  protected inflightCount = 0;
  private readonly cap: number;
  protected readonly onSent: (err: Error | null) => void;

  constructor(
    protected readonly s: Session,
    protected readonly sock: dgram.Socket,
    cap: number,
  ) {
    this.cap = cap;
    this.inflightTok = new Int32Array(cap);
    this.inflightLen = new Int32Array(cap);
    this.onSent = (err) => this.sent(err);
  }

  /** Token of the oldest send in flight, or `none`. */
  protected oldestInflight(none: number): number {
    return this.inflightCount === 0 ? none : this.inflightTok[this.inflightHead];
  }

  /** A send with token `tok` completed (slot reusable). */
  protected abstract completed(tok: number): void;

  private sent(err: Error | null): void {
    const h = this.inflightHead;
    const tok = this.inflightTok[h];
    const pktLen = this.inflightLen[h];
    this.inflightHead = (h + 1) % this.cap;
    this.inflightCount--;
    if (err) countTxError(this.s);
    else countTx(this.s, pktLen);
    this.completed(tok);
  }

  /** Encapsulate buf[frameOff, frameOff+len) in place and send it. Returns false when nothing is in flight for it. Hot path. */
  protected sendFrame(buf: Buffer, frameOff: number, len: number, tok: number): boolean {
    const s = this.s;
    const start = encap(s, buf, frameOff, len);
    if (start < 0) {
      countTxError(s);
      return false;
    }
    const pktLen = frameOff + len - start;
    const at = (this.inflightHead + this.inflightCount) % this.cap;
    this.inflightTok[at] = tok;
    this.inflightLen[at] = pktLen;
    this.inflightCount++;
    try {
      this.sock.send(buf, start, pktLen, this.onSent);
    } catch {
      // socket closed under us
      this.inflightCount--;
      countTxError(s);
      return false;
    }
    return true;
  }
}

export type ReaderKind = 'event' | 'worker' | 'poll';

/**
 * Which reader to use: UL2TP_NF_READER=event (main thread), worker (worker
 * thread, event-driven) or poll (worker thread, polling); default event, and
 * poll when process.binding('pipe_wrap') is missing.
 */
export function readerKind(): ReaderKind {
  const want = process.env.UL2TP_NF_READER;
  if (want === 'poll') return 'poll';
  if (!getPipeWrap()) return 'poll';
  return want === 'worker' ? 'worker' : 'event';
}

/** Main-thread reader on a libuv pipe handle wrapping the device fd (which it then owns). */
export class EventReader extends TxBase implements TxReader {
  readonly kind = 'event' as const;
  private readonly data: Buffer;
  private readonly dv: DataView;
  /** Read views per slot (at READ_OFF) plus one overflow view at index EVENT_SLOTS. */
  private readonly views: Buffer[] = [];
  private readonly busy = new Uint8Array(EVENT_SLOTS);
  /** Slot handed to libuv for the next read (EVENT_SLOTS = overflow: the frame is dropped). */
  private cur = EVENT_SLOTS;
  private nextSlot = 0;
  private readonly stream: net.Socket;
  private stopped = false;

  constructor(s: Session, sock: dgram.Socket, fd: number, onError: (msg: string) => void) {
    super(s, sock, EVENT_SLOTS);
    // allocUnsafeSlow: untouched pages of large slots are never committed
    this.data = Buffer.allocUnsafeSlow((EVENT_SLOTS + 1) * SLOT_BYTES);
    this.dv = new DataView(this.data.buffer, this.data.byteOffset, this.data.byteLength);
    for (let i = 0; i <= EVENT_SLOTS; i++) this.views.push(this.data.subarray(i * SLOT_BYTES + READ_OFF, (i + 1) * SLOT_BYTES));
    this.stream = watchFd(
      fd,
      () => this.nextBuffer(),
      (n) => this.onFrame(n),
    );
    this.stream.on('error', (e) => {
      if (!this.stopped) onError(`${s.cfg.ifname}: device read failed: ${e.message}`);
    });
  }

  private nextBuffer(): Buffer {
    const n = this.nextSlot;
    if (this.busy[n] === 0) {
      this.cur = n;
      this.nextSlot = (n + 1) % EVENT_SLOTS;
    } else {
      this.cur = EVENT_SLOTS; // every slot is in flight: read into the overflow view, drop the frame
    }
    return this.views[this.cur];
  }

  /** One read = one frame at views[cur]. Hot path. */
  private onFrame(nread: number): void {
    const slot = this.cur;
    if (slot === EVENT_SLOTS || this.stopped) {
      if (!this.stopped) countTxError(this.s);
      return;
    }
    const base = slot * SLOT_BYTES;
    const len = finishFrame(this.data, this.dv, base + READ_OFF, nread);
    if (len === FRAME_DROP) {
      countTxError(this.s);
      return;
    }
    if (this.sendFrame(this.data, base + HEADROOM, len, slot)) this.busy[slot] = 1;
  }

  protected completed(tok: number): void {
    this.busy[tok] = 0;
  }

  stop(): Promise<void> {
    this.stopped = true;
    return new Promise((resolve) => {
      if (this.stream.destroyed) resolve();
      else {
        this.stream.once('close', () => resolve());
        this.stream.destroy();
      }
    });
  }
}

/** Worker thread reading the device into a shared ring (tx-worker.ts); the main thread drains it. */
export class WorkerReader extends TxBase implements TxReader {
  readonly kind: 'worker' | 'poll';
  /** The worker closed the fd (it owns it while running). */
  private fdClosed = false;
  private readonly sab: SharedArrayBuffer;
  private readonly ctl: Int32Array;
  private readonly lens: Int32Array;
  private readonly data: Buffer;
  /** Frames taken from the ring so far (int32, wraps). */
  private consumed = 0;
  private stopped = false;
  private worker: Worker | null;
  private readonly drainFn: () => void;

  constructor(
    s: Session,
    sock: dgram.Socket,
    private readonly fd: number,
    onError: (msg: string) => void,
    kind: 'worker' | 'poll',
  ) {
    super(s, sock, SLOTS);
    this.kind = kind;
    this.sab = newRing();
    const v = ringViews(this.sab);
    this.ctl = v.ctl;
    this.lens = v.lens;
    this.data = v.data;
    this.drainFn = () => this.drain();
    const w = new Worker(new URL('./tx-worker.js', import.meta.url), {
      workerData: { fd, sab: this.sab, mode: kind === 'poll' ? 'poll' : 'events' },
      stdout: false,
      stderr: false,
    });
    w.on('message', (m: unknown) => {
      if (m === 0) this.drain();
      else if (m === 'closed') this.fdClosed = true;
      else if (!this.stopped) onError(`${s.cfg.ifname}: reader stopped: ${(m as { error?: string }).error ?? 'unknown'}`);
    });
    w.on('error', (e) => onError(`${s.cfg.ifname}: reader failed: ${e.message}`));
    this.worker = w;
  }

  /** Publish how far the worker may reuse slots: up to the oldest send still in flight. */
  private release(): void {
    Atomics.store(this.ctl, TAIL, this.oldestInflight(this.consumed));
    Atomics.notify(this.ctl, TAIL);
  }

  protected completed(): void {
    this.release();
  }

  /** Take frames from the ring, encapsulate and send them. Hot path. */
  private drain(): void {
    if (this.stopped) return;
    const ctl = this.ctl;
    let budget = DRAIN_BUDGET;
    if (Atomics.load(ctl, DROPS) !== 0) {
      // frames the worker could not place (ring full)
      for (let d = Atomics.exchange(ctl, DROPS, 0); d > 0; d--) countTxError(this.s);
    }
    for (;;) {
      const head = Atomics.load(ctl, HEAD);
      while (this.consumed !== head && budget > 0) {
        const seq = this.consumed;
        const slot = (seq >>> 0) % SLOTS;
        const len = this.lens[slot];
        this.consumed = (seq + 1) | 0;
        budget--;
        if (len === LEN_DROP) countTxError(this.s);
        else this.sendFrame(this.data, slot * SLOT_BYTES + HEADROOM, len, seq);
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

  async stop(): Promise<void> {
    this.stopped = true;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.notify(this.ctl, STOP);
    const w = this.worker;
    this.worker = null;
    if (w) {
      w.postMessage('stop');
      await new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        // a worker that never reached its loop is ended by terminate()
        setTimeout(() => void w.terminate(), 2000).unref();
      });
    }
    if (!this.fdClosed) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* already closed */
      }
    }
  }
}

/** Start the tx reader for a session whose device is open at `fd` (the reader owns the fd from now on). */
export function startTxReader(s: Session, sock: dgram.Socket, fd: number, onError: (msg: string) => void): TxReader {
  const kind = readerKind();
  if (kind === 'event') {
    try {
      return new EventReader(s, sock, fd, onError);
    } catch {
      /* fall back to polling */
      return new WorkerReader(s, sock, fd, onError, 'poll');
    }
  }
  return new WorkerReader(s, sock, fd, onError, kind);
}

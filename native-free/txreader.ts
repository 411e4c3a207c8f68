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
 * Two readers:
 * - EventReader (default): the device fd is wrapped in a libuv pipe handle
 *   (process.binding('pipe_wrap'), the only built-in way to get epoll
 *   readiness on a character device) and read on the main thread with
 *   net.Socket's `onread` user-buffer mode into preallocated slots: no
 *   thread, no polling, no per-frame allocation on our side, and closing is
 *   immediate.
 * - WorkerReader (fallback, or UL2TP_NF_READER=worker): a worker thread
 *   polls the O_NONBLOCK device into a shared ring (tx-worker.ts). A
 *   blocking read cannot be used: a reader blocked on a macvtap is not woken
 *   by deleting the interface or closing the fd, so it could never exit.
 */
import fs from 'node:fs';
import net from 'node:net';
import type dgram from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { HEADROOM } from '../src/engine/layout.js';
import type { Session } from '../src/engine/session.js';
import { encap, countTx, countTxError } from '../src/engine/encap.js';
import { HEAD, LEN_DROP, SLEEP, SLOT_BYTES, SLOTS, STOP, TAIL, READ_OFF, newRing, ringViews } from './ring.js';
import { FRAME_DROP, finishFrame } from './vnet.js';

/** Frames handled per drain before yielding to the event loop (worker reader). */
const DRAIN_BUDGET = 256;
/** Slots of the event reader. */
const EVENT_SLOTS = 64;

export interface TxReader {
  readonly kind: 'event' | 'worker';
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

interface PipeHandle {
  open(fd: number): number;
}
type PipeWrap = { Pipe: new (type: number) => PipeHandle; constants: { SOCKET: number } };

let pipeWrap: PipeWrap | null | undefined;

/** process.binding('pipe_wrap') when this Node has it, else null. */
function getPipeWrap(): PipeWrap | null {
  if (pipeWrap !== undefined) return pipeWrap;
  try {
    const binding = (process as unknown as { binding(name: string): unknown }).binding('pipe_wrap') as PipeWrap;
    pipeWrap = typeof binding?.Pipe === 'function' && typeof binding.constants?.SOCKET === 'number' ? binding : null;
  } catch {
    pipeWrap = null;
  }
  return pipeWrap;
}

/** Which reader to use: UL2TP_NF_READER=event|worker, else event when available. */
export function readerKind(): 'event' | 'worker' {
  const want = process.env.UL2TP_NF_READER;
  if (want === 'worker') return 'worker';
  return getPipeWrap() ? 'event' : 'worker';
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
    const pw = getPipeWrap();
    if (!pw) throw new Error('pipe_wrap binding unavailable');
    const handle = new pw.Pipe(pw.constants.SOCKET);
    const err = handle.open(fd);
    if (err !== 0) throw new Error(`cannot watch the device (uv error ${err})`);
    this.stream = new net.Socket({
      handle,
      readable: true,
      writable: false,
      onread: { buffer: () => this.nextBuffer(), callback: (n: number) => this.onFrame(n) },
    } as unknown as net.SocketConstructorOpts);
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
  private onFrame(nread: number): boolean {
    const slot = this.cur;
    if (slot === EVENT_SLOTS || this.stopped) {
      if (!this.stopped) countTxError(this.s);
      return true;
    }
    const base = slot * SLOT_BYTES;
    const len = finishFrame(this.data, this.dv, base + READ_OFF, nread);
    if (len === FRAME_DROP) {
      countTxError(this.s);
      return true;
    }
    if (this.sendFrame(this.data, base + HEADROOM, len, slot)) this.busy[slot] = 1;
    return true;
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

/** Worker thread polling the device into a shared ring; the main thread drains it. */
export class WorkerReader extends TxBase implements TxReader {
  readonly kind = 'worker' as const;
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
  ) {
    super(s, sock, SLOTS);
    this.sab = newRing();
    const v = ringViews(this.sab);
    this.ctl = v.ctl;
    this.lens = v.lens;
    this.data = v.data;
    this.drainFn = () => this.drain();
    const w = new Worker(new URL('./tx-worker.js', import.meta.url), {
      workerData: { fd, sab: this.sab },
      stdout: false,
      stderr: false,
    });
    w.on('message', (m: unknown) => {
      if (m === 0) this.drain();
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
      await new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        // a worker that never reached its loop is ended by terminate()
        setTimeout(() => void w.terminate(), 2000).unref();
      });
    }
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}

/** Start the tx reader for a session whose device is open at `fd` (the reader owns the fd from now on). */
export function startTxReader(s: Session, sock: dgram.Socket, fd: number, onError: (msg: string) => void): TxReader {
  if (readerKind() === 'event') {
    try {
      return new EventReader(s, sock, fd, onError);
    } catch {
      /* fall back */
    }
  }
  return new WorkerReader(s, sock, fd, onError);
}

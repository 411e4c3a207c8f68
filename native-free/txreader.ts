/**
 * Tx path of one session: frames read from its macvtap device are handed to
 * the pump (src/io/pump.ts), which encapsulates them in place (the header goes
 * into the slot's headroom), sends them on the tunnel's DgramSocket and counts.
 *
 * dgram may keep a buffer's memory until the send completes (it queues when
 * the socket buffer is full), so a slot is reused only after its send
 * callback; dgram completes sends in submission order, so the slots in
 * flight form a FIFO.
 *
 * Readers (the dataplane options' `nfReader` chooses; default `event`):
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
import { Worker } from 'node:worker_threads';
import { HEADROOM } from '../src/engine/layout.js';
import type { Session } from '../src/engine/session.js';
import type { ReaderKind } from '../src/io/options.js';
import type { Pump } from '../src/io/pump.js';
import { DROPS, HEAD, LEN_DROP, SLEEP, SLOT_BYTES, SLOTS, STOP, TAIL, READ_OFF, newRing, ringViews } from './ring.js';
import { FRAME_DROP, finishFrame } from './vnet.js';
import { getPipeWrap, watchFd } from './pipewrap.js';
import { SlotBatch, type SlotOwner } from './devices.js';

export type { ReaderKind };

/** Frames handled per drain before yielding to the event loop (worker reader). */
const DRAIN_BUDGET = 256;
/** Slots of the event reader. */
const EVENT_SLOTS = 64;

export interface TxReader {
  readonly kind: ReaderKind;
  /** Stop reading; the device fd is closed once this resolves. */
  stop(): Promise<void>;
}

/**
 * The reader kind that can run: `want`, except that without
 * process.binding('pipe_wrap') only `poll` works.
 */
export function readerKind(want: ReaderKind): ReaderKind {
  if (want === 'poll' || !getPipeWrap()) return 'poll';
  return want;
}

/** Main-thread reader on a libuv pipe handle wrapping the device fd (which it then owns). */
export class EventReader implements TxReader, SlotOwner {
  readonly kind = 'event' as const;
  private readonly data: Buffer;
  private readonly batch: SlotBatch;
  /** Read views per slot (at READ_OFF) plus one overflow view at index EVENT_SLOTS. */
  private readonly views: Buffer[] = [];
  private readonly busy = new Uint8Array(EVENT_SLOTS);
  /** Slot handed to libuv for the next read (EVENT_SLOTS = overflow: the frame is dropped). */
  private cur = EVENT_SLOTS;
  private nextSlot = 0;
  private readonly stream: net.Socket;
  private stopped = false;

  constructor(
    private readonly s: Session,
    private readonly pump: Pump,
    fd: number,
    onError: (msg: string) => void,
  ) {
    // allocUnsafeSlow: untouched pages of large slots are never committed
    this.data = Buffer.allocUnsafeSlow((EVENT_SLOTS + 1) * SLOT_BYTES);
    this.batch = new SlotBatch(this.data, EVENT_SLOTS, SLOT_BYTES, this);
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
      if (!this.stopped) this.pump.txDropped(this.s);
      return;
    }
    const len = finishFrame(this.data, slot * SLOT_BYTES + READ_OFF, nread);
    if (len === FRAME_DROP) {
      this.pump.txDropped(this.s);
      return;
    }
    const b = this.batch;
    b.off[slot] = HEADROOM;
    b.len[slot] = len;
    this.pump.txFrames(this.s, b, slot, 1);
  }

  /** SlotOwner: dgram holds the slot until its send completes. */
  held(slot: number): void {
    this.busy[slot] = 1;
  }

  released(slot: number): void {
    this.busy[slot] = 0;
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
export class WorkerReader implements TxReader, SlotOwner {
  readonly kind: 'worker' | 'poll';
  private readonly batch: SlotBatch;
  /** Ring sequence numbers of the sends in flight, oldest first (FIFO of SLOTS). */
  private readonly inflight = new Int32Array(SLOTS);
  private inflightHead = 0;
  private inflightCount = 0;
  /** Sequence number of the frame being handed to the pump. */
  private curSeq = 0;
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
    private readonly s: Session,
    private readonly pump: Pump,
    private readonly fd: number,
    onError: (msg: string) => void,
    kind: 'worker' | 'poll',
  ) {
    this.kind = kind;
    this.sab = newRing();
    const v = ringViews(this.sab);
    this.ctl = v.ctl;
    this.lens = v.lens;
    this.data = v.data;
    this.batch = new SlotBatch(this.data, SLOTS, SLOT_BYTES, this);
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
    Atomics.store(this.ctl, TAIL, this.inflightCount === 0 ? this.consumed : this.inflight[this.inflightHead]);
    Atomics.notify(this.ctl, TAIL);
  }

  /** SlotOwner: the frame with sequence number curSeq is in flight. */
  held(): void {
    this.inflight[(this.inflightHead + this.inflightCount) % SLOTS] = this.curSeq;
    this.inflightCount++;
  }

  /** SlotOwner: the oldest send in flight completed (one reader's sends complete in order). */
  released(): void {
    this.inflightHead = (this.inflightHead + 1) % SLOTS;
    this.inflightCount--;
    this.release();
  }

  /** Take frames from the ring, encapsulate and send them. Hot path. */
  private drain(): void {
    if (this.stopped) return;
    const ctl = this.ctl;
    let budget = DRAIN_BUDGET;
    if (Atomics.load(ctl, DROPS) !== 0) {
      // frames the worker could not place (ring full)
      for (let d = Atomics.exchange(ctl, DROPS, 0); d > 0; d--) this.pump.txDropped(this.s);
    }
    for (;;) {
      const head = Atomics.load(ctl, HEAD);
      while (this.consumed !== head && budget > 0) {
        const seq = this.consumed;
        const slot = (seq >>> 0) % SLOTS;
        const len = this.lens[slot];
        this.consumed = (seq + 1) | 0;
        budget--;
        if (len === LEN_DROP) this.pump.txDropped(this.s);
        else {
          const b = this.batch;
          b.off[slot] = HEADROOM;
          b.len[slot] = len;
          this.curSeq = seq;
          this.pump.txFrames(this.s, b, slot, 1);
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
export function startTxReader(s: Session, pump: Pump, fd: number, want: ReaderKind, onError: (msg: string) => void): TxReader {
  const kind = readerKind(want);
  if (kind === 'event') {
    try {
      return new EventReader(s, pump, fd, onError);
    } catch {
      /* fall back to polling */
      return new WorkerReader(s, pump, fd, onError, 'poll');
    }
  }
  return new WorkerReader(s, pump, fd, onError, kind);
}

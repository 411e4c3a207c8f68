/**
 * Tx reader for one session (worker thread): reads frames from the session's
 * macvtap device into the shared ring (ring.ts), finishes partial checksums
 * (vnet.ts) and wakes the main thread, which encapsulates and sends.
 *
 * Two ways to wait for frames:
 * - events (when process.binding('pipe_wrap') exists, see pipewrap.ts): the
 *   worker's own event loop watches the fd; reads land directly in ring
 *   slots. Idle costs nothing; the main thread's 'stop' message ends it.
 * - polling (fallback): the fd is O_NONBLOCK and read in a loop; when empty
 *   we sleep on Atomics.wait with a short, growing timeout (50 µs up to
 *   1 ms), and STOP wakes us at once. A blocking read cannot be used: a read
 *   blocked on a macvtap is woken neither by deleting the interface nor by
 *   closing the fd, so the worker could never exit.
 *
 * The worker owns the fd and closes it before exiting (posting 'closed').
 */
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { DROPS, HEAD, READ_CAP, READ_OFF, SLEEP, SLOT_BYTES, SLOTS, STOP, TAIL, ringViews } from './ring.js';
import { finishFrame } from './vnet.js';
import { getPipeWrap, watchFd } from './pipewrap.js';

Error.stackTraceLimit = 0;

const init = workerData as { fd: number; sab: SharedArrayBuffer; mode?: string };
const fd = init.fd;
const { ctl, lens, data } = ringViews(init.sab);
let head = Atomics.load(ctl, HEAD);

/** Publish the frame just read into `slot` (n bytes incl. the vnet header) and wake the main thread if it sleeps. */
function publish(slot: number, n: number): void {
  lens[slot] = finishFrame(data, slot * SLOT_BYTES + READ_OFF, n);
  head = (head + 1) | 0;
  Atomics.store(ctl, HEAD, head);
  if (Atomics.load(ctl, SLEEP) === 1 && Atomics.compareExchange(ctl, SLEEP, 1, 0) === 1) parentPort!.postMessage(0);
}

function closeFd(): void {
  try {
    fs.closeSync(fd);
  } catch {
    /* closed by the pipe handle */
  }
  parentPort!.postMessage('closed');
}

function runEvents(): boolean {
  if (!getPipeWrap()) return false;
  // Slot views at READ_OFF, plus an overflow buffer for when the ring is full (frame dropped).
  const views: Buffer[] = [];
  for (let i = 0; i < SLOTS; i++) views.push(data.subarray(i * SLOT_BYTES + READ_OFF, (i + 1) * SLOT_BYTES));
  const overflow = Buffer.allocUnsafeSlow(READ_CAP);
  let cur = -1;
  const next = (): Buffer => {
    if (((head - Atomics.load(ctl, TAIL)) | 0) >= SLOTS) {
      cur = -1;
      return overflow;
    }
    cur = (head >>> 0) % SLOTS;
    return views[cur];
  };
  let stream;
  try {
    stream = watchFd(fd, next, (n) => {
      if (cur < 0) Atomics.add(ctl, DROPS, 1);
      else publish(cur, n);
    });
  } catch {
    return false;
  }
  const stop = (): void => {
    stream.once('close', () => {
      parentPort!.postMessage('closed');
      parentPort!.close();
    });
    stream.destroy();
  };
  stream.on('error', (e: Error) => {
    parentPort!.postMessage({ error: e.message });
  });
  parentPort!.on('message', (m: unknown) => {
    if (m === 'stop') stop();
  });
  if (Atomics.load(ctl, STOP) !== 0) stop();
  return true;
}

function runPolling(): void {
  let idle = 0;
  for (;;) {
    if (Atomics.load(ctl, STOP) !== 0) break;
    const tail = Atomics.load(ctl, TAIL);
    if (((head - tail) | 0) >= SLOTS) {
      // ring full: wait for the main thread to release slots
      Atomics.wait(ctl, TAIL, tail, 20);
      continue;
    }
    const slot = (head >>> 0) % SLOTS;
    let n: number;
    try {
      n = fs.readSync(fd, data, slot * SLOT_BYTES + READ_OFF, READ_CAP, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR') {
        idle++;
        Atomics.wait(ctl, STOP, 0, idle < 40 ? 0.05 : idle < 200 ? 0.25 : 1);
        continue;
      }
      // EBADF, EIO, ...: report and exit
      parentPort!.postMessage({ error: String(code) });
      break;
    }
    idle = 0;
    publish(slot, n);
  }
  closeFd();
  parentPort!.close();
}

if (init.mode === 'poll' || !runEvents()) runPolling();

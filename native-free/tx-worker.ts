/**
 * Tx reader for one session (worker thread): reads frames from the session's
 * macvtap device into the shared ring (ring.ts) and wakes the main thread.
 *
 * The device is opened O_NONBLOCK: a blocking read(2) on a macvtap cannot be
 * interrupted (deleting the interface does not wake it, closing the fd does
 * not either), so a blocked worker could never exit. When the device is
 * empty we sleep on Atomics.wait with a short, growing timeout (50 µs up to
 * 1 ms); STOP wakes us at once. While frames flow there is no sleeping.
 *
 * Allocation-free while frames flow; an EAGAIN costs one exception object
 * (fs.readSync reports errors only by throwing), hence the backoff.
 */
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { DROPS, HEAD, LEN_DROP, READ_CAP, READ_OFF, SLEEP, SLOT_BYTES, SLOTS, STOP, TAIL, ringViews } from './ring.js';
import { finishFrame } from './vnet.js';

Error.stackTraceLimit = 0;

function run(): void {
  const fd = workerData.fd as number;
  const { ctl, lens, data } = ringViews(workerData.sab as SharedArrayBuffer);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let head = Atomics.load(ctl, HEAD);
  let idle = 0;
  for (;;) {
    if (Atomics.load(ctl, STOP) !== 0) return;
    const tail = Atomics.load(ctl, TAIL);
    if (((head - tail) | 0) >= SLOTS) {
      // ring full: wait for the main thread to release slots
      Atomics.wait(ctl, TAIL, tail, 20);
      continue;
    }
    const slot = (head >>> 0) % SLOTS;
    const p = slot * SLOT_BYTES + READ_OFF;
    let n: number;
    try {
      n = fs.readSync(fd, data, p, READ_CAP, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR') {
        idle++;
        Atomics.wait(ctl, STOP, 0, idle < 40 ? 0.05 : idle < 200 ? 0.25 : 1);
        continue;
      }
      // device gone (EBADF after close, EIO/EFAULT after removal): report and exit
      parentPort?.postMessage({ error: String(code) });
      return;
    }
    idle = 0;
    const len = finishFrame(data, dv, p, n);
    if (len === LEN_DROP) Atomics.add(ctl, DROPS, 1);
    lens[slot] = len;
    head = (head + 1) | 0;
    Atomics.store(ctl, HEAD, head);
    if (Atomics.load(ctl, SLEEP) === 1 && Atomics.compareExchange(ctl, SLEEP, 1, 0) === 1) parentPort?.postMessage(0);
  }
}

run();

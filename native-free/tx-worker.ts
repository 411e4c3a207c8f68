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
import { DROPS, HEAD, LEN_DROP, READ_CAP, READ_OFF, SLEEP, SLOT_BYTES, SLOTS, STOP, TAIL, VNET_HDR_LEN, ringViews } from './ring.js';

Error.stackTraceLimit = 0;

const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;

/**
 * Check and finish a frame read at buf[p, p + n) (virtio_net_hdr + frame):
 * complete a partial checksum (the stack leaves the pseudo-header sum in the
 * field; we add the rest, like skb_checksum_help). Returns the frame length
 * or LEN_DROP.
 */
function finish(buf: Buffer, p: number, n: number): number {
  const len = n - VNET_HDR_LEN;
  if (len < 0) return LEN_DROP;
  // gso_type != VIRTIO_NET_HDR_GSO_NONE: a super-frame we would have to segment (NAME has gso_max_segs 1, so unexpected)
  if (buf[p + 1] !== 0) return LEN_DROP;
  if ((buf[p] & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) {
    const start = buf[p + 6] | (buf[p + 7] << 8);
    const field = start + (buf[p + 8] | (buf[p + 9] << 8));
    if (field + 2 > len) return LEN_DROP;
    const f = p + VNET_HDR_LEN;
    const end = f + len;
    let sum = 0;
    let i = f + start;
    for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
    if (i < end) sum += buf[i] << 8;
    while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
    let c = ~sum & 0xffff;
    if (c === 0) c = 0xffff; // CSUM_MANGLED_0: 0 means "no checksum" for UDP
    buf[f + field] = c >>> 8;
    buf[f + field + 1] = c & 0xff;
  }
  return len;
}

function run(): void {
  const fd = workerData.fd as number;
  const { ctl, lens, data } = ringViews(workerData.sab as SharedArrayBuffer);
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
    const len = finish(data, p, n);
    if (len === LEN_DROP) Atomics.add(ctl, DROPS, 1);
    lens[slot] = len;
    head = (head + 1) | 0;
    Atomics.store(ctl, HEAD, head);
    if (Atomics.load(ctl, SLEEP) === 1 && Atomics.compareExchange(ctl, SLEEP, 1, 0) === 1) parentPort?.postMessage(0);
  }
}

run();

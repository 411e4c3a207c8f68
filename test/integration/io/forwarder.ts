/**
 * Test-only worker: a minimal TAP ⇄ UDP forwarder built from the koffi primitives (no L2TP
 * header): frames read from tap[i] are sent on udp[i]; datagrams received on udp[i] are
 * written to tap[i]. Blocks in epoll_wait; an eventfd signal stops it.
 * workerData: { taps: number[], udps: number[], evfd: number, counters: SharedArrayBuffer }
 * counters (Float64): [0] frames TAP→UDP, [1] datagrams UDP→TAP, [2] errors.
 */
import { workerData, parentPort } from 'node:worker_threads';
import { Batch, recvBatch, sendBatch } from '../../../src/io/koffi/batch.js';
import { readFrames, writeFrames } from '../../../src/io/koffi/tapio.js';
import { EpollSet, EPOLLIN, eventDrain } from '../../../src/io/koffi/epoll.js';
import { waitWritable } from '../../../src/io/koffi/udp.js';

const { taps, udps, evfd, counters } = workerData as { taps: number[]; udps: number[]; evfd: number; counters: SharedArrayBuffer };
const cnt = new Float64Array(counters);
const BATCH = 32;
const b = new Batch({ n: BATCH, slotSize: 2048, headroom: 32 });
const ep = new EpollSet(16);
const STOP = 0xffff;
for (let i = 0; i < taps.length; i++) {
  ep.add(taps[i], EPOLLIN, i * 2);
  ep.add(udps[i], EPOLLIN, i * 2 + 1);
}
ep.add(evfd, EPOLLIN, STOP);
parentPort!.postMessage('ready');

let running = true;
while (running) {
  const n = ep.wait(-1);
  for (let k = 0; k < n; k++) {
    const d = ep.data(k);
    if (d === STOP) {
      eventDrain(evfd);
      running = false;
      break;
    }
    const i = d >> 1;
    if ((d & 1) === 0) {
      for (;;) {
        const m = readFrames(taps[i], b, BATCH, 32);
        if (m <= 0) break;
        let done = 0;
        while (done < m) {
          const r = sendBatch(udps[i], b, done, m - done);
          if (r > 0) done += r;
          else if (r === -11 || r === -105) waitWritable(udps[i], 5);
          else {
            cnt[2]++;
            done++;
          }
        }
        cnt[0] += m;
        if (m < BATCH) break;
      }
    } else {
      for (;;) {
        const m = recvBatch(udps[i], b, BATCH, 32);
        if (m <= 0) break;
        let done = 0;
        while (done < m) {
          const r = writeFrames(taps[i], b, done, m - done);
          if (r > 0) done += r;
          else {
            cnt[2]++;
            done++;
          }
        }
        cnt[1] += m;
        if (m < BATCH) break;
      }
    }
  }
}
ep.close();

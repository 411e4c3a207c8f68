import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { libc } from '../../../src/io/koffi/libc.js';
import { Batch } from '../../../src/io/koffi/batch.js';
import { Uring, readFramesUring, writeFramesUring } from '../../../src/io/koffi/uring.js';
import { readFrames, writeFrames } from '../../../src/io/koffi/tapio.js';
import { TapDevice } from '../../../src/io/koffi/devices.js';
import { TapWriteQueue, tapNowaitIo } from '../../../src/io/koffi/tapqueue.js';
import { openTap, setOffload, setVnetHdrSize, tapInfo, IFF_VNET_HDR, VNET_HDR_LEN } from '../../../src/io/koffi/tap.js';
import { setUp } from '../../../src/io/koffi/netdev.js';
import { skipReason, inNetns, ip, sleep } from './helpers.js';
import { Netns } from '../../../support/netns.js';

const reason = skipReason() || (Uring.available() ? '' : 'io_uring unavailable');
const skip = reason || false;
if (skip) console.log(`# skipping io_uring TAP tests: ${reason}`);

let ns = '';
let cleanup = () => {};
const fds: number[] = [];
before(() => {
  if (skip) return;
  const n = new Netns('ul2io');
  ns = n.name;
  cleanup = () => n.destroy();
});
after(() => {
  for (const fd of fds) libc().close(fd);
  cleanup();
});

function frame(b: Batch, i: number, len: number, seed: number): void {
  const at = b.at(i);
  // unknown unicast destination, local source: the bridge floods it to the other port
  b.buf.set([0x02, 0, 0, 0, 0, 0x99, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5], at);
  for (let k = 14; k < len; k++) b.buf[at + k] = (k + seed * 13) & 0xff;
  b.len[i] = len;
}

/** Slot i's frame in b. */
function slot(b: Batch, i: number): Buffer {
  return b.buf.subarray(b.at(i), b.at(i) + b.len[i]);
}

/**
 * Calls `read` (frames into rx slots [0, n), or -errno: fails the test) until `want` frames
 * made by frame() arrived, or 50 tries; copies of those frames, in order.
 */
async function ours(rx: Batch, want: number, read: () => number): Promise<Buffer[]> {
  const got: Buffer[] = [];
  for (let tries = 0; tries < 50 && got.length < want; tries++) {
    const n = read();
    assert.ok(n >= 0, `errno ${-n}`);
    for (let i = 0; i < n; i++) if (rx.buf[rx.at(i) + 5] === 0x99) got.push(Buffer.from(slot(rx, i)));
    if (n === 0) await sleep(10);
  }
  return got;
}

/** Two nonblocking TAPs `<p>a`, `<p>b` on a bridge `<p>br` in the test namespace: a frame written to A comes out of B. */
async function bridgedTaps(p: string): Promise<{ A: { fd: number }; B: { fd: number } }> {
  const taps = inNetns(ns, () => {
    const A = openTap(`${p}a`, { nonBlocking: true });
    const B = openTap(`${p}b`, { nonBlocking: true });
    fds.push(A.fd, B.fd);
    ip('-n', ns, 'link', 'add', `${p}br`, 'type', 'bridge', 'stp_state', '0');
    ip('-n', ns, 'link', 'set', `${p}a`, 'master', `${p}br`);
    ip('-n', ns, 'link', 'set', `${p}b`, 'master', `${p}br`);
    for (const n of [`${p}a`, `${p}b`, `${p}br`]) setUp(n, true);
    return { A, B };
  });
  await sleep(50);
  return taps;
}

test('io_uring batched TAP writes and reads move the same frames as write/read', { skip }, async () => {
  const { A, B } = await bridgedTaps('uq');
  const ring = new Uring(64);
  const tx = new Batch({ n: 32, slotSize: 2048, headroom: 32 });
  const rx = new Batch({ n: 32, slotSize: 2048 });
  try {
    // drain anything the kernel sent on its own (IPv6 router/MLD chatter)
    while (readFrames(B.fd, rx, 32) > 0);
    assert.equal(readFramesUring(ring, B.fd, rx, 16, 8), 0, 'nothing ready → 0');
    for (let i = 0; i < 20; i++) frame(tx, i, 60 + i * 50, i);
    assert.equal(writeFramesUring(ring, A.fd, tx, 0, 20), 20);
    for (let j = 0; j < 20; j++) assert.equal(ring.res[j], tx.len[ring.tag[j]], 'every write complete');
    await sleep(20);
    const got: Buffer[] = [];
    for (let tries = 0; tries < 50 && got.length < 20; tries++) {
      const n = readFramesUring(ring, B.fd, rx, 32, 16);
      assert.ok(n >= 0, `errno ${-n}`);
      for (let i = 0; i < n; i++) {
        assert.equal(rx.off[i], 16);
        got.push(Buffer.from(rx.buf.subarray(rx.at(i), rx.at(i) + rx.len[i])));
      }
      if (n === 0) await sleep(10);
    }
    const mine = got.filter((f) => f[5] === 0x99);
    assert.equal(mine.length, 20);
    for (let i = 0; i < 20; i++) {
      assert.ok(mine[i].equals(slot(tx, i)), `frame ${i} content/order`);
    }
    // a down TAP refuses writes with EIO, reported per frame
    inNetns(ns, () => setUp('uqa', false));
    assert.equal(writeFramesUring(ring, A.fd, tx, 0, 3), 0);
    for (let j = 0; j < 3; j++) assert.equal(ring.res[j], -5);
  } finally {
    ring.close();
  }
});

test('TapDevice: io_uring reads once the TAP hands over 4+ frames per read, back to read(2) when it does not; order kept', { skip }, async () => {
  const { A, B } = await bridgedTaps('ud');
  const ring = new Uring(64);
  const dev = new TapDevice(B.fd, 0, ring);
  const tx = new Batch({ n: 64, slotSize: 2048, headroom: 32 });
  const rx = new Batch({ n: 32, slotSize: 2048 });
  const readAll = (want: number, from = dev): Promise<Buffer[]> => ours(rx, want, () => from.read(rx, 32, 16));
  try {
    while (readFrames(B.fd, rx, 32) > 0);
    // one frame at a time: read(2) each
    for (let k = 0; k < 3; k++) {
      frame(tx, 0, 100, k);
      assert.equal(writeFrames(A.fd, tx, 0, 1), 1);
      await sleep(5);
      assert.equal((await readAll(1)).length, 1);
    }
    assert.equal(dev.uringFrames, 0, 'lone frames: no io_uring');
    // 60 frames queued: the first read(2) batch returns 32, later ones go through io_uring
    for (let i = 0; i < 60; i++) frame(tx, i, 60 + i * 20, i);
    assert.equal(writeFrames(A.fd, tx, 0, 60), 60);
    await sleep(20);
    const got = await readAll(60);
    assert.equal(got.length, 60);
    for (let i = 0; i < 60; i++) assert.ok(got[i].equals(slot(tx, i)), `frame ${i} content/order`);
    assert.ok(dev.uringFrames >= 20, `frames read through io_uring: ${dev.uringFrames}`);
    // once a read finds the TAP empty, the next lone frame is read with read(2) again
    while (dev.read(rx, 32, 16) > 0);
    const before = dev.uringFrames;
    frame(tx, 0, 100, 9);
    assert.equal(writeFrames(A.fd, tx, 0, 1), 1);
    await sleep(5);
    assert.equal((await readAll(1)).length, 1);
    assert.equal(dev.uringFrames, before);

    // a kernel that refuses the batched reads (EOPNOTSUPP): read(2) from then on, no frame lost
    let submits = 0;
    const refusing = { entries: 64, queueRead: () => true, submit: () => (submits++, -95), reap: () => 0 } as unknown as Uring;
    const dev2 = new TapDevice(B.fd, 0, refusing);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 40; i++) frame(tx, i, 60 + i * 20, 100 + round * 40 + i);
      assert.equal(writeFrames(A.fd, tx, 0, 40), 40);
      await sleep(20);
      const got2 = await readAll(40, dev2);
      assert.equal(got2.length, 40, `round ${round}: every frame read`);
      for (let i = 0; i < 40; i++) assert.ok(got2[i].equals(slot(tx, i)), `round ${round} frame ${i}`);
    }
    assert.equal(submits, 1, 'tried once, then read(2) only');
    assert.equal(dev2.uringFrames, 0);
  } finally {
    ring.close();
  }
});

test('TapWriteQueue: frames queued as iovecs reach the TAP in order at sync(), through io_uring from 3 on; failures counted per segment', { skip }, async (t) => {
  const ring = new Uring(128);
  if (!tapNowaitIo(ring)) {
    ring.close();
    t.skip('this kernel does not run TAP I/O inline through io_uring (the worker uses plain system calls)');
    return;
  }
  const { A, B } = await bridgedTaps('uw');
  const stats = new Float64Array(16);
  const q = new TapWriteQueue(stats, 2, ring);
  const rx = new Batch({ n: 32, slotSize: 2048 });
  const tx = new Batch({ n: 16, slotSize: 2048, headroom: 32 });
  for (let i = 0; i < 16; i++) frame(tx, i, 80 + i * 30, 50 + i);
  const split = (i: number): void => {
    // every frame in two pieces: its first 20 bytes, then the rest
    q.begin(A.fd, 4, 1);
    q.piece(tx.ptr(i), 20);
    q.piece(tx.ptr(i) + 20, tx.len[i] - 20);
  };
  const arrived = (n: number): Promise<Buffer[]> => ours(rx, n, () => readFrames(B.fd, rx, 32));
  try {
    while (readFrames(B.fd, rx, 32) > 0);
    for (let i = 0; i < 10; i++) split(i);
    assert.equal(q.queued, 10);
    assert.equal((await arrived(1)).length, 0, 'nothing written before sync()');
    q.sync();
    assert.equal(q.queued, 0);
    assert.equal(q.uringFrames, 10);
    let got = await arrived(10);
    assert.equal(got.length, 10);
    for (let i = 0; i < 10; i++) assert.ok(got[i].equals(slot(tx, i)), `frame ${i} content/order`);
    // two frames: one writev(2) each
    split(3);
    split(4);
    q.sync();
    assert.equal(q.uringFrames, 10);
    got = await arrived(2);
    assert.equal(got.length, 2);
    assert.ok(got[0].equals(slot(tx, 3)));
    assert.ok(got[1].equals(slot(tx, 4)));
    // a frame the kernel cannot even start (bad iovec) stops the submission after it: it
    // counts as a drop, the frames behind it are still written, in order, and nothing the
    // kernel did not take runs later
    const errs = q.writeErrors;
    split(5);
    q.begin(A.fd, 4, 1);
    q.piece(4096, 100); // unmapped
    split(6);
    split(7);
    q.sync();
    assert.equal(q.writeErrors, errs + 1);
    assert.equal(stats[4 + 2], 1);
    got = await arrived(3);
    assert.deepEqual(got.map((f) => f[14 + 10]), [5, 6, 7].map((i) => tx.buf[tx.at(i) + 24]), 'frames 5, 6, 7 in order');
    for (const i of [8, 9, 10]) split(i);
    const before = q.uringFrames;
    q.sync();
    assert.equal(q.uringFrames, before + 3);
    got = await arrived(4);
    assert.equal(got.length, 3, 'exactly the three new frames');
    for (const [j, i] of [8, 9, 10].entries()) assert.ok(got[j].equals(slot(tx, i)));
    // a ring that takes only the first of three: the other two are written with writev(2), in order
    const short = { queueWritev: () => true, submit: () => 1, reap: () => 1, res: new Int32Array([1]), tag: new Uint32Array([0]) } as unknown as Uring;
    const q2 = new TapWriteQueue(stats, 2, short);
    for (const i of [11, 12, 13]) {
      q2.begin(A.fd, 4, 1);
      q2.piece(tx.ptr(i), tx.len[i]);
    }
    q2.sync();
    assert.equal(q2.uringFrames, 1);
    got = await arrived(3);
    assert.equal(got.length, 2, 'the frame the (fake) ring took is its business; the other two are written here');
    for (const [j, i] of [12, 13].entries()) assert.ok(got[j].equals(slot(tx, i)));
    stats.fill(0);
    // a TAP that is down refuses them (EIO): each frame's segments count as dropped
    inNetns(ns, () => setUp('uwa', false));
    const errsDown = q.writeErrors;
    for (const n of [2, 5]) {
      for (let i = 0; i < n; i++) {
        q.begin(A.fd, 4, 3);
        q.piece(tx.ptr(i), tx.len[i]);
      }
      q.sync();
    }
    assert.equal(q.writeErrors - errsDown, 7);
    assert.equal(stats[4 + 2], 21, '7 frames of 3 segments');
  } finally {
    ring.close();
  }
});

test('Uring.submit: what the kernel did not take (it stops after an operation it cannot start) is withdrawn, never run later', { skip }, () => {
  const ring = new Uring(16);
  const c = libc();
  const fd = c.open('/dev/null', 1, 0);
  fds.push(fd);
  const buf = Buffer.alloc(64);
  const iov = new BigUint64Array([BigInt(c.addressOf(buf.buffer)), 64n]);
  const iovAddr = c.addressOf(iov.buffer);
  try {
    ring.queueWritev(fd, iovAddr, 1, 1);
    ring.queueWritev(fd, 4096, 1, 2); // the iovec array itself unmapped: refused at submission
    ring.queueWritev(fd, iovAddr, 1, 3);
    const r = ring.submit();
    assert.ok(r >= 2 && r <= 3, `taken ${r}`);
    let k = ring.reap();
    const first = [...ring.tag.subarray(0, k)];
    assert.equal(k, r, 'one completion for everything taken');
    assert.deepEqual(first.slice(0, 2), [1, 2]);
    assert.ok(ring.res[first.indexOf(2)] < 0, 'the bad one failed');
    ring.queueWritev(fd, iovAddr, 1, 10);
    assert.equal(ring.submit(), 1);
    k = ring.reap();
    assert.deepEqual([...ring.tag.subarray(0, k)], [10], 'only the new operation ran');
    assert.equal(ring.res[0], 64);
  } finally {
    ring.close();
  }
});

test('Uring works from a worker thread too', { skip }, async () => {
  const { Worker } = await import('node:worker_threads');
  const src = `
    import { Uring } from ${JSON.stringify(new URL('../../../src/io/koffi/uring.js', import.meta.url).href)};
    import { parentPort } from 'node:worker_threads';
    const r = new Uring(8);
    parentPort.postMessage(r.entries);
    r.close();
  `;
  const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(src)}`));
  const entries = await new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  assert.equal(entries, 8);
  await w.terminate();
});

test('vnetHdr TAP: frames carry a virtio_net_hdr prefix (no offloads = all-zero header)', { skip }, async () => {
  const { A, V } = inNetns(ns, () => {
    const A = openTap('uva', { nonBlocking: true });
    const V = openTap('uvb', { nonBlocking: true, vnetHdr: true });
    fds.push(A.fd, V.fd);
    assert.equal(tapInfo(V.fd).flags & IFF_VNET_HDR, IFF_VNET_HDR);
    setVnetHdrSize(V.fd, VNET_HDR_LEN);
    setOffload(V.fd, 0);
    ip('-n', ns, 'link', 'add', 'uvbr', 'type', 'bridge', 'stp_state', '0');
    ip('-n', ns, 'link', 'set', 'uva', 'master', 'uvbr');
    ip('-n', ns, 'link', 'set', 'uvb', 'master', 'uvbr');
    for (const n of ['uva', 'uvb', 'uvbr']) setUp(n, true);
    return { A, V };
  });
  await sleep(50);
  const tx = new Batch({ n: 4, slotSize: 2048 });
  const rx = new Batch({ n: 32, slotSize: 2048 });
  while (readFrames(V.fd, rx, 32) > 0);
  frame(tx, 0, 100, 3);
  assert.equal(writeFrames(A.fd, tx, 0, 1), 1);
  await sleep(20);
  let found = false;
  for (let tries = 0; tries < 20 && !found; tries++) {
    const n = readFrames(V.fd, rx, 32);
    for (let i = 0; i < n; i++) {
      const at = rx.at(i);
      if (rx.len[i] === 100 + VNET_HDR_LEN && rx.buf[at + VNET_HDR_LEN + 5] === 0x99) {
        assert.ok(rx.buf.subarray(at, at + VNET_HDR_LEN).every((x) => x === 0), 'zero virtio header');
        assert.ok(rx.buf.subarray(at + VNET_HDR_LEN, at + VNET_HDR_LEN + 100).equals(tx.buf.subarray(tx.at(0), tx.at(0) + 100)));
        found = true;
      }
    }
    if (!found) await sleep(10);
  }
  assert.ok(found, 'frame with virtio header read');
});

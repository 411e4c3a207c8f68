/**
 * Microbenchmark of the koffi syscall layer (root; runs in a private namespace it creates):
 * per-call and per-packet cost of sendBatch / recvBatch (UDP on loopback), readFrames /
 * writeFrames (TAPs joined by a bridge), and the bare FFI overhead (pointer as number vs
 * Buffer), so the dataplane can choose batch sizes.
 *
 *   node dist/test/integration/io/io.bench.js [--quick]
 */
import { libc, type Libc } from '../../../src/io/koffi/libc.js';
import { Batch, recvBatch, sendBatch } from '../../../src/io/koffi/batch.js';
import { readFrames, writeFrames } from '../../../src/io/koffi/tapio.js';
import { Uring, readFramesUring, writeFramesUring } from '../../../src/io/koffi/uring.js';
import { openUdpTunnelSocket } from '../../../src/io/koffi/udp.js';
import { openTap } from '../../../src/io/koffi/tap.js';
import { setUp, setMtu } from '../../../src/io/koffi/netdev.js';
import { EpollSet, EPOLLIN, eventCreate, eventSignal, eventDrain } from '../../../src/io/koffi/epoll.js';
import { inNetns, ip, skipReason } from './helpers.js';
import { Netns } from '../../../support/netns.js';

const quick = process.argv.includes('--quick');
const BATCHES = [1, 4, 8, 16, 32, 64, 128];

function now(): number {
  return performance.now();
}

function stats(xs: number[]): { min: number; med: number } {
  const a = [...xs].sort((x, y) => x - y);
  return { min: a[0], med: a[a.length >> 1] };
}

function fmt(x: { min: number; med: number }): string {
  return `${x.min.toFixed(0)} / ${x.med.toFixed(0)}`;
}

function row(cells: (string | number)[]): string {
  return `| ${cells.map((c) => (typeof c === 'number' ? c.toFixed(c < 10 ? 2 : 0) : c)).join(' | ')} |`;
}

function ffi(c: Libc): void {
  const N = quick ? 200_000 : 1_000_000;
  const buf = Buffer.alloc(256);
  const ptr = c.addressOf(buf);
  const koffi = c.koffi;
  const lib = koffi.load('libc.so.6');
  const writeBuf = lib.func('intptr_t write(int fd, const uint8_t *buf, size_t n)') as (fd: number, b: Buffer, n: number) => number;
  const getppid = lib.func('int getppid()') as () => number;
  const measure = (name: string, fn: () => void) => {
    for (let i = 0; i < N / 10; i++) fn();
    const t = now();
    for (let i = 0; i < N; i++) fn();
    const ns = ((now() - t) * 1e6) / N;
    console.log(row([name, ns]));
  };
  console.log('\n### Bare FFI cost (ns per call)\n');
  console.log('| call | ns |\n|---|---|');
  measure('getppid() (syscall, no args)', () => getppid());
  measure('write(-1, ptr as number, 0) → EBADF', () => c.write(-1, ptr, 0));
  measure('write(-1, Buffer, 0) → EBADF', () => writeBuf(-1, buf, 0));
  measure('koffi.errno()', () => c.errno());
}

function overhead(): void {
  // sendBatch/recvBatch on fd -1: the kernel fails at once (EBADF), so this is our JS
  // preparation of the mmsghdr/iovec words + one FFI call + errno.
  const b = new Batch({ n: 128, slotSize: 2048, headroom: 32 });
  b.len.fill(100);
  console.log('\n### Our per-call overhead: batch prep + FFI + errno (fd -1 → EBADF), ns per call\n');
  console.log('| batch | sendBatch | recvBatch | readFrames (1 read) |\n|---|---|---|---|');
  const N = quick ? 50_000 : 200_000;
  for (const B of BATCHES) {
    const m = (fn: () => void) => {
      for (let i = 0; i < N / 10; i++) fn();
      const t = now();
      for (let i = 0; i < N; i++) fn();
      return ((now() - t) * 1e6) / N;
    };
    console.log(row([B, m(() => sendBatch(-1, b, 0, B)), m(() => recvBatch(-1, b, B)), m(() => readFrames(-1, b, B))]));
  }
}

function udp(): void {
  const c = libc();
  console.log('\n### UDP on loopback (connected tunnel sockets; min / median over samples)\n');
  console.log('sendBatch on loopback includes the kernel delivering each datagram to the receiving socket.\n');
  console.log('| payload | batch | sendBatch ns/pkt | recvBatch ns/pkt |');
  console.log('|---|---|---|---|');
  for (const payload of [64, 1400]) {
    const a = openUdpTunnelSocket({ family: 4, local: '127.0.0.1', sport: 5001, remote: '127.0.0.1', dport: 5002 });
    const b = openUdpTunnelSocket({ family: 4, local: '127.0.0.1', sport: 5002, remote: '127.0.0.1', dport: 5001 });
    const tx = new Batch({ n: 128, slotSize: 2048, headroom: 32 });
    const rx = new Batch({ n: 128, slotSize: 2048, headroom: 32 });
    tx.len.fill(payload);
    // packets that fit in the 4 MB receive buffer (truesize ≈ 2.3 KB for 1400 B, ~0.8 KB for 64 B)
    const burst = payload > 1000 ? 1024 : 2048;
    for (const B of BATCHES) {
      const rounds = quick ? 7 : 25;
      const sendS: number[] = [];
      const recvS: number[] = [];
      let lost = 0;
      for (let r = 0; r < rounds; r++) {
        let t = now();
        let s = 0;
        while (s < burst) {
          const k = sendBatch(a, tx, 0, Math.min(B, burst - s));
          if (k > 0) s += k;
          else break;
        }
        sendS.push(((now() - t) * 1e6) / s);
        t = now();
        let got = 0;
        for (;;) {
          const k = recvBatch(b, rx, B);
          if (k <= 0) break;
          got += k;
        }
        recvS.push(((now() - t) * 1e6) / got);
        lost += s - got;
      }
      if (lost) console.log(`# note: ${lost} datagrams dropped at the receiver`);
      console.log(row([payload, B, fmt(stats(sendS)), fmt(stats(recvS))]));
    }
    c.close(a);
    c.close(b);
  }
}

function tap(ns: string): void {
  const c = libc();
  // tapA and tapB in one bridge: frames written to tapA come out of tapB.
  const A = openTap('bencha', { nonBlocking: true });
  const B = openTap('benchb', { nonBlocking: true });
  ip('-n', ns, 'link', 'add', 'benchbr', 'type', 'bridge');
  ip('-n', ns, 'link', 'set', 'bencha', 'master', 'benchbr');
  ip('-n', ns, 'link', 'set', 'benchb', 'master', 'benchbr');
  for (const n of ['bencha', 'benchb']) {
    setMtu(n, 1500);
    setUp(n, true);
  }
  setUp('benchbr', true);
  ip('-n', ns, 'link', 'set', 'benchbr', 'type', 'bridge', 'stp_state', '0');
  const tx = new Batch({ n: 128, slotSize: 2048, headroom: 32 });
  const rx = new Batch({ n: 128, slotSize: 2048, headroom: 32 });
  console.log('\n### TAP (bridge tapA → tapB; ns per frame / per call)\n');
  console.log('min / median over samples; writeFrames includes the bridge forwarding the frame to tapB.\n');
  const ring = Uring.available() ? new Uring(256) : null;
  console.log('| frame | batch | writeFrames ns/frame | readFrames ns/frame | empty read (EAGAIN) ns | writeFramesUring ns/frame | readFramesUring ns/frame |');
  console.log('|---|---|---|---|---|---|---|');
  for (const frame of [64, 1400]) {
    for (let i = 0; i < 128; i++) {
      const at = tx.at(i);
      // unknown unicast destination: flooded by the bridge to the other port
      tx.buf.set([0x02, 0, 0, 0, 0, 0x99, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5], at);
      tx.len[i] = frame;
    }
    for (const Bn of BATCHES) {
      const rounds = quick ? 7 : 25;
      const burst = 256; // tun queue is txqueuelen (1000) frames
      const wS: number[] = [];
      const rS: number[] = [];
      const wU: number[] = [];
      const rU: number[] = [];
      let w = 0;
      let r = 0;
      for (let k = 0; k < rounds; k++) {
        let t = now();
        let s = 0;
        while (s < burst) {
          const n = writeFrames(A.fd, tx, 0, Math.min(128, burst - s));
          if (n <= 0) break;
          s += n;
        }
        wS.push(((now() - t) * 1e6) / s);
        w += s;
        t = now();
        let got = 0;
        for (;;) {
          const n = readFrames(B.fd, rx, Bn);
          if (n <= 0) break;
          got += n;
        }
        rS.push(((now() - t) * 1e6) / got);
        r += got;
        if (!ring) continue;
        t = now();
        s = 0;
        while (s < burst) {
          const n = writeFramesUring(ring, A.fd, tx, 0, Math.min(Bn, burst - s));
          if (n <= 0) break;
          s += n;
        }
        wU.push(((now() - t) * 1e6) / s);
        t = now();
        got = 0;
        for (;;) {
          const n = readFramesUring(ring, B.fd, rx, Bn);
          if (n <= 0) break;
          got += n;
        }
        rU.push(((now() - t) * 1e6) / got);
      }
      // cost of the final empty read
      const E = 20000;
      const t = now();
      for (let k = 0; k < E; k++) readFrames(B.fd, rx, 1);
      const emptyNs = ((now() - t) * 1e6) / E;
      if (r < w * 0.9) console.log(`# note: read ${r} of ${w} frames`);
      console.log(row([frame, Bn, fmt(stats(wS)), fmt(stats(rS)), emptyNs, ring ? fmt(stats(wU)) : '-', ring ? fmt(stats(rU)) : '-']));
    }
  }
  ring?.close();
  c.close(A.fd);
  c.close(B.fd);
}

function wake(): void {
  const ep = new EpollSet(8);
  const ev = eventCreate();
  ep.add(ev, EPOLLIN, 1);
  const N = quick ? 50_000 : 200_000;
  let t = now();
  for (let i = 0; i < N; i++) ep.wait(0);
  const pollNs = ((now() - t) * 1e6) / N;
  t = now();
  for (let i = 0; i < N; i++) {
    eventSignal(ev);
    ep.wait(0);
    eventDrain(ev);
  }
  const sigNs = ((now() - t) * 1e6) / N;
  console.log('\n### epoll / eventfd (same thread)\n');
  console.log('| op | ns |\n|---|---|');
  console.log(row(['epoll_wait(timeout 0), nothing ready', pollNs]));
  console.log(row(['eventfd signal + epoll_wait + drain', sigNs]));
  ep.close();
  libc().close(ev);
}

const skip = skipReason();
if (skip) {
  console.log(`io.bench: skipped: ${skip}`);
} else {
  const n = new Netns('ul2io');
  const ns = n.name;
  try {
    console.log(`## koffi I/O microbenchmark — ${new Date().toISOString()} — node ${process.version}, ${process.arch}`);
    ffi(libc());
    overhead();
    inNetns(ns, () => {
      udp();
      tap(ns);
      wake();
    });
  } finally {
    n.destroy();
  }
}

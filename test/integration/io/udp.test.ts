import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { L2tpError } from '../../../src/errors.js';
import { libc, getIntOpt, SOL_SOCKET, SO_RCVBUF, SO_NO_CHECK } from '../../../src/io/koffi/libc.js';
import { Batch, recvBatch, sendBatch } from '../../../src/io/koffi/batch.js';
import { openUdpTunnelSocket, localAddress, readSockaddr, type UdpTunnelSocketOptions } from '../../../src/io/koffi/udp.js';
import { waitWritable } from '../../../src/io/koffi/udp.js';
import { skipReason, makePair, inNetns, sleep, startCapture, stopCapture, readPcap, parseUdp, type Pair } from './helpers.js';

const skip = skipReason() || false;
if (skip) console.log(`# skipping koffi UDP tests: ${skip}`);

let p: Pair;
let tmp = '';
const fds: number[] = [];
before(() => {
  if (skip) return;
  p = makePair('u');
  tmp = mkdtempSync(join(tmpdir(), 'ul2io-'));
});
after(() => {
  for (const fd of fds) libc().close(fd);
  p?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function open(ns: string, o: UdpTunnelSocketOptions): number {
  const fd = inNetns(ns, () => openUdpTunnelSocket(o));
  fds.push(fd);
  return fd;
}

function close(fd: number): void {
  const i = fds.indexOf(fd);
  if (i >= 0) fds.splice(i, 1);
  libc().close(fd);
}

/** Receive up to `want` datagrams within ~1 s (copies, in arrival order). */
async function recvAll(fd: number, b: Batch, want: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let tries = 0; tries < 100 && out.length < want; tries++) {
    const n = recvBatch(fd, b, want - out.length);
    assert.ok(n >= 0, `recvBatch errno ${-n}`);
    if (n === 0) {
      await sleep(10);
      continue;
    }
    for (let i = 0; i < n; i++) out.push(Buffer.from(b.buf.subarray(b.at(i), b.at(i) + b.len[i])));
  }
  return out;
}

function fill(b: Batch, count: number, seed: number): void {
  for (let i = 0; i < count; i++) {
    const len = 60 + ((i * 97 + seed) % 1300);
    b.len[i] = len;
    const at = b.at(i);
    for (let k = 0; k < len; k++) b.buf[at + k] = (k * 31 + i * 7 + seed) & 0xff;
  }
}

function check(tx: Batch, got: Buffer[], count: number): void {
  assert.equal(got.length, count);
  for (let i = 0; i < count; i++) {
    assert.equal(got[i].length, tx.len[i], `len of ${i}`);
    assert.ok(got[i].equals(tx.buf.subarray(tx.at(i), tx.at(i) + tx.len[i])), `content of ${i}`);
  }
}

for (const family of [4, 6] as const) {
  test(`IPv${family}: tunnel sockets in two namespaces exchange batches (sendBatch/recvBatch)`, { skip }, async () => {
    const la = family === 4 ? p.a4 : p.a6;
    const lb = family === 4 ? p.b4 : p.b6;
    const a = open(p.a, { family, local: la, sport: 1701, remote: lb, dport: 1702 });
    const b = open(p.b, { family, local: lb, sport: 1702, remote: la, dport: 1701 });
    assert.deepEqual(localAddress(a), { family, addr: la, port: 1701 });
    assert.ok(getIntOpt(a, SOL_SOCKET, SO_RCVBUF) >= 4 * 1024 * 1024, 'big receive buffer');
    const tx = new Batch({ n: 32, slotSize: 2048, headroom: 32 });
    const rx = new Batch({ n: 32, slotSize: 2048, headroom: 16 });
    for (const [from, to, seed] of [
      [a, b, 1],
      [b, a, 2],
    ] as const) {
      fill(tx, 32, seed);
      let sent = 0;
      while (sent < 32) {
        const r = sendBatch(from, tx, sent, 32 - sent);
        if (r < 0) {
          assert.ok(r === -11 || r === -105, `sendBatch errno ${-r}`);
          waitWritable(from, 100);
          continue;
        }
        sent += r;
      }
      const got = await recvAll(to, rx, 32);
      check(tx, got, 32);
      // the source of the datagrams (last batch) is the connected peer
      const src = readSockaddr(rx.src, rx.srcAt(0));
      assert.deepEqual(src, { family, addr: from === a ? la : lb, port: from === a ? 1701 : 1702 });
    }
    // a connected socket ignores other senders: a third socket on another port in A
    const c = open(p.a, { family, local: la, sport: 1703, remote: lb, dport: 1702 });
    fill(tx, 1, 3);
    assert.equal(sendBatch(c, tx, 0, 1), 1);
    await sleep(50);
    assert.equal(recvBatch(b, rx, 32), 0, 'datagram from a non-peer port is not delivered');
    close(a);
    close(b);
    close(c);
  });
}

function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof L2tpError);
    assert.equal(e.code, 'KERNEL');
    return e.errno;
  }
  assert.fail('expected a throw');
}

test('bind errors map to kernelError EADDRINUSE / EADDRNOTAVAIL; nothing leaks', { skip }, () => {
  const a = open(p.a, { family: 4, local: p.a4, sport: 1801, remote: p.b4, dport: 1801 });
  assert.equal(errnoOf(() => open(p.a, { family: 4, local: p.a4, sport: 1801, remote: p.b4, dport: 1802 })), 'EADDRINUSE');
  assert.equal(errnoOf(() => open(p.a, { family: 4, local: '10.254.254.254', sport: 1801, remote: p.b4, dport: 1801 })), 'EADDRNOTAVAIL');
  assert.equal(errnoOf(() => open(p.a, { family: 6, local: 'fd00:dead::1', sport: 1801, remote: p.b6, dport: 1801 })), 'EADDRNOTAVAIL');
  assert.equal(errnoOf(() => open(p.a, { family: 4, local: 'bogus', sport: 1801, remote: p.b4, dport: 1801 })), 'EINVAL');
  // after closing, the port is free again (no SO_REUSEADDR needed for that with UDP)
  close(a);
  const again = open(p.a, { family: 4, local: p.a4, sport: 1801, remote: p.b4, dport: 1802 });
  close(again);
});

test('v4-mapped IPv6 tunnel addresses open an IPv4 socket', { skip }, () => {
  const fd = open(p.a, { family: 6, local: `::ffff:${p.a4}`, sport: 1901, remote: `::ffff:${p.b4}`, dport: 1901 });
  assert.deepEqual(localAddress(fd), { family: 4, addr: p.a4, port: 1901 });
  assert.equal(getIntOpt(fd, SOL_SOCKET, SO_NO_CHECK), 0, 'checksums, as udp6_csum_tx (on by default) says');
  close(fd);
  const zero = open(p.a, { family: 6, local: `::ffff:${p.a4}`, sport: 1902, remote: `::ffff:${p.b4}`, dport: 1902, udp6CsumTx: false });
  assert.equal(getIntOpt(zero, SOL_SOCKET, SO_NO_CHECK), 1, 'udp6_csum_tx off: zero checksums');
  close(zero);
});

interface Case {
  name: string;
  family: 4 | 6;
  opts: Partial<UdpTunnelSocketOptions>;
  zero: boolean;
}

test('checksum options are visible on the wire (tcpdump in the peer namespace); IPv4 DF=0', { skip }, async () => {
  const cases: Case[] = [
    { name: 'v4 udp_csum off', family: 4, opts: { udpCsum: false }, zero: true },
    { name: 'v4 udp_csum on', family: 4, opts: { udpCsum: true }, zero: false },
    { name: 'v4 udp_csum not given', family: 4, opts: {}, zero: false },
    { name: 'v6 csum_tx on', family: 6, opts: {}, zero: false },
    { name: 'v6 csum_tx off', family: 6, opts: { udp6CsumTx: false }, zero: true },
  ];
  const file = join(tmp, 'csum.pcap');
  const cap = await startCapture(p.b, p.vb, file, ['udp', 'and', 'portrange', '2000-2010']);
  const tx = new Batch({ n: 4, slotSize: 2048 });
  try {
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i];
      const la = c.family === 4 ? p.a4 : p.a6;
      const lb = c.family === 4 ? p.b4 : p.b6;
      const fd = open(p.a, { family: c.family, local: la, sport: 2000 + i, remote: lb, dport: 2000 + i, ...c.opts });
      // a receiver, so that no ICMP port-unreachable comes back
      const peer = open(p.b, { family: c.family, local: lb, sport: 2000 + i, remote: la, dport: 2000 + i, udp6CsumRx: false });
      fill(tx, 2, i);
      assert.equal(sendBatch(fd, tx, 0, 2), 2);
      close(fd);
      close(peer);
    }
    await sleep(300);
  } finally {
    await stopCapture(cap);
  }
  const pkts = readPcap(readFileSync(file)).map(parseUdp).filter((x) => x !== null);
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    const mine = pkts.filter((u) => u.sport === 2000 + i);
    assert.equal(mine.length, 2, `${c.name}: captured`);
    for (const u of mine) {
      assert.equal(u.v, c.family);
      if (c.zero) assert.equal(u.csum, 0, `${c.name}: zero checksum`);
      else assert.notEqual(u.csum, 0, `${c.name}: checksum present`);
      if (c.family === 4) assert.equal(u.df, false, `${c.name}: DF clear like the kernel`);
    }
  }
});

test('IPv6 zero-checksum datagrams: dropped unless udp6CsumRx is off', { skip }, async () => {
  const tx = new Batch({ n: 4, slotSize: 2048 });
  const rx = new Batch({ n: 4, slotSize: 2048 });
  for (const [rxOpt, expect] of [
    [true, 0],
    [false, 3],
  ] as const) {
    const a = open(p.a, { family: 6, local: p.a6, sport: 2101, remote: p.b6, dport: 2102, udp6CsumTx: false });
    const b = open(p.b, { family: 6, local: p.b6, sport: 2102, remote: p.a6, dport: 2101, udp6CsumRx: rxOpt });
    fill(tx, 3, 9);
    assert.equal(sendBatch(a, tx, 0, 3), 3);
    const got = await recvAll(b, rx, expect || 1);
    assert.equal(got.length, expect, `udp6CsumRx ${rxOpt}`);
    if (expect) check(tx, got, expect);
    close(a);
    close(b);
  }
});

test('ICMP port unreachable on a connected socket does not lose packets or surface as an error', { skip }, async () => {
  const a = open(p.a, { family: 4, local: p.a4, sport: 2201, remote: p.b4, dport: 2202 });
  const tx = new Batch({ n: 8, slotSize: 2048 });
  const rx = new Batch({ n: 8, slotSize: 2048 });
  fill(tx, 8, 5);
  // nobody listens on 2202: each datagram draws an ICMP error that the kernel reports on the
  // next send/recv; the caller's normal "send the rest" loop must still get every packet out.
  let sent = 0;
  let calls = 0;
  while (sent < 8 && calls++ < 20) {
    const r = sendBatch(a, tx, sent, 8 - sent);
    assert.ok(r > 0, `sendBatch returned ${r}`);
    sent += r;
  }
  assert.equal(sent, 8);
  await sleep(20);
  assert.equal(recvBatch(a, rx, 8), 0, 'the pending ICMP report reads as "nothing"');
  assert.equal(recvBatch(a, rx, 8), 0);
  close(a);
});

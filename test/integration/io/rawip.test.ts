import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { L2tpError } from '../../../src/errors.js';
import { libc } from '../../../src/io/koffi/libc.js';
import { Batch, recvBatch, sendBatch } from '../../../src/io/koffi/batch.js';
import { openRawIpSocket, rawDest, ipv4HeaderLen, addrBytes, writeRawDest } from '../../../src/io/koffi/rawip.js';
import { readSockaddr } from '../../../src/io/koffi/udp.js';
import { skipReason, makePair, inNetns, sleep, type Pair } from './helpers.js';

const skip = skipReason() || false;
if (skip) console.log(`# skipping koffi raw IP tests: ${skip}`);

let p: Pair;
const fds: number[] = [];
before(() => {
  if (!skip) p = makePair('r');
});
after(() => {
  for (const fd of fds) libc().close(fd);
  p?.cleanup();
});

function open(ns: string, family: 4 | 6, local: string, remote?: string): number {
  const fd = inNetns(ns, () => openRawIpSocket({ family, local, remote }));
  fds.push(fd);
  return fd;
}

async function recvSome(fd: number, b: Batch, want: number): Promise<number> {
  for (let tries = 0; tries < 100; tries++) {
    const n = recvBatch(fd, b, want);
    assert.ok(n >= 0, `recvBatch errno ${-n}`);
    if (n > 0) return n;
    await sleep(10);
  }
  return 0;
}

/** An L2TPv3-over-IP-like payload: session id, then a pattern. */
function fillSlot(b: Batch, i: number, sid: number, len: number): void {
  const at = b.at(i);
  b.buf.writeUInt32BE(sid, at);
  for (let k = 4; k < len; k++) b.buf[at + k] = (k + sid) & 0xff;
  b.len[i] = len;
}

for (const family of [4, 6] as const) {
  test(`IPv${family}: raw protocol-115 send (shared and per-slot destinations) and receive between namespaces`, { skip }, async () => {
    const la = family === 4 ? p.a4 : p.a6;
    const lb = family === 4 ? p.b4 : p.b6;
    const a = open(p.a, family, la);
    const b = open(p.b, family, lb);
    const tx = new Batch({ n: 8, slotSize: 2048, headroom: 32 });
    const rx = new Batch({ n: 8, slotSize: 2048, headroom: 32 });

    // shared destination (addDest) for a whole batch
    const d = tx.addDest(rawDest(family, lb));
    for (let i = 0; i < 4; i++) fillSlot(tx, i, 0x1000 + i, 100 + i * 10);
    assert.equal(sendBatch(a, tx, 0, 4, d), 4);
    const n = await recvSome(b, rx, 8);
    assert.equal(n, 4);
    for (let i = 0; i < n; i++) {
      let off = rx.at(i);
      let len = rx.len[i];
      if (family === 4) {
        // IPv4 raw sockets include the IP header: protocol 115, source = a
        const ihl = ipv4HeaderLen(rx.buf, off);
        assert.equal(ihl, 20);
        assert.equal(rx.buf[off + 9], 115);
        assert.equal(rx.buf.subarray(off + 12, off + 16).join('.'), la);
        assert.equal(rx.buf.readUInt16BE(off + 6) & 0x4000, 0, 'DF clear');
        off += ihl;
        len -= ihl;
      } else {
        // IPv6: payload only; the source comes from msg_name
        assert.ok(rx.srcLen[i] >= 24);
        assert.equal(readSockaddr(rx.src, rx.srcAt(i))!.addr, la);
        const so = rx.srcAddrOff(i);
        assert.ok(rx.src.subarray(so, so + 16).equals(addrBytes(6, la)));
      }
      assert.equal(len, 100 + i * 10);
      assert.equal(rx.buf.readUInt32BE(off), 0x1000 + i);
      for (let k = 4; k < len; k++) assert.equal(rx.buf[off + k], (k + 0x1000 + i) & 0xff);
    }
    tx.freeDest(d);

    // per-slot destinations (setDest / writeRawDest), from b back to a
    fillSlot(tx, 0, 0x2000, 64);
    tx.setDest(0, rawDest(family, la));
    fillSlot(tx, 1, 0x2001, 65);
    tx.dstLen[1] = writeRawDest(tx.dst, tx.dstAt(1), addrBytes(family, la));
    assert.equal(sendBatch(b, tx, 0, 2), 2);
    const m = await recvSome(a, rx, 8);
    assert.equal(m, 2);
    const hdr = family === 4 ? 20 : 0;
    assert.equal(rx.buf.readUInt32BE(rx.at(1) + hdr), 0x2001);
    assert.equal(rx.len[1], 65 + hdr);
    tx.dstLen.fill(0);
  });
}

test('raw socket connected to a remote: no destination needed; errors map to kernelError', { skip }, async () => {
  const a = open(p.a, 4, p.a4, p.b4);
  const b = open(p.b, 4, p.b4);
  const tx = new Batch({ n: 2, slotSize: 2048 });
  const rx = new Batch({ n: 2, slotSize: 2048 });
  fillSlot(tx, 0, 77, 80);
  assert.equal(sendBatch(a, tx, 0, 1), 1);
  assert.equal(await recvSome(b, rx, 2), 1);
  assert.equal(rx.buf.readUInt32BE(rx.at(0) + 20), 77);
  try {
    open(p.a, 4, '10.254.254.254');
    assert.fail('expected EADDRNOTAVAIL');
  } catch (e) {
    assert.ok(e instanceof L2tpError);
    assert.equal(e.errno, 'EADDRNOTAVAIL');
  }
});

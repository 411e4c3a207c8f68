/**
 * Offload path: checksum helpers, TSO segmentation, partial-checksum completion and GRO
 * coalescing, checked against an independent byte-at-a-time checksum; fuzzed headers and
 * malformed frames never throw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csumAdd, fold, ipv4HeaderOk } from '../../../src/io/offload/csum.js';
import { completeCsum, parseSuper, SuperFrame, TSO_BAD_SIZE, TSO_BAD_TYPE, TSO_OK, TSO_UNSUPPORTED, writeSegment } from '../../../src/io/offload/tso.js';
import { Coalescer, MAX_SEGS } from '../../../src/io/offload/gro.js';
import { emitVnet, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, parseVnet, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, VnetHdr } from '../../../src/io/offload/vnet.js';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bytes, MAC_A, parseFrame, refSum, tcpFrame, TS_OPT } from './frames.js';

const HEAD = 32;

test('csumAdd matches the reference at every alignment and length', () => {
  const big = bytes(5000, 7);
  const ab = Buffer.alloc(6000);
  for (let len = 0; len < 300; len += 7) {
    for (let off = 0; off < 9; off++) {
      big.copy(ab, off, 0, len);
      assert.equal(csumAdd(ab, off, len, 0), refSum(ab.subarray(off, off + len)), `off ${off} len ${len}`);
    }
  }
  for (const len of [1447, 1448, 1500, 4095, 4999]) {
    for (let off = 0; off < 5; off++) {
      big.copy(ab, off, 0, len);
      assert.equal(csumAdd(ab, off, len, 12345), refSum(ab.subarray(off, off + len), 12345));
    }
  }
  // a Buffer that is a view at an odd byteOffset of a larger ArrayBuffer
  const view = Buffer.from(ab.buffer, ab.byteOffset + 3, 4000);
  assert.equal(csumAdd(view, 5, 3000, 0), refSum(view.subarray(5, 3005)));
  assert.equal(fold(0x1ffff), 1);
  assert.equal(fold(2 ** 40 + 5), refSum(Buffer.alloc(0), 0) + fold(2 ** 40 + 5));
});

test('vnet header round trip', () => {
  const b = Buffer.alloc(12);
  emitVnet(b, 1, VNET_F_NEEDS_CSUM, GSO_TCPV6, 74, 1428, 54, 16);
  const h = new VnetHdr();
  assert.ok(parseVnet(b, 1, 10, h));
  assert.deepEqual({ ...h }, { flags: 1, gsoType: 4, hdrLen: 74, gsoSize: 1428, csumStart: 54, csumOffset: 16 });
  assert.ok(!parseVnet(b, 5, 9, h));
});

/** Segment a super-frame into separate buffers. */
function segmentAll(superFrame: Buffer, mss: number, gso: number): Buffer[] {
  const h = new VnetHdr();
  h.gsoType = gso;
  h.gsoSize = mss;
  h.flags = VNET_F_NEEDS_CSUM;
  const sf = new SuperFrame();
  const src = Buffer.alloc(superFrame.length + 40);
  superFrame.copy(src, 40);
  assert.equal(parseSuper(src, 40, superFrame.length, h, 9000, sf), TSO_OK);
  const out: Buffer[] = [];
  const dst = Buffer.alloc(HEAD + 9000);
  for (let k = 0; k < sf.nseg; k++) {
    const n = writeSegment(sf, src, 40, k, dst, HEAD);
    out.push(Buffer.from(dst.subarray(HEAD, HEAD + n)));
  }
  return out;
}

for (const v6 of [false, true]) {
  for (const vlan of [undefined, 5]) {
    test(`TSO segmentation: IPv${v6 ? 6 : 4}${vlan ? ' VLAN' : ''}, options, flags, ids, checksums`, () => {
      const payload = bytes(10000, 3);
      const mss = 1448 - (v6 ? 20 : 0);
      const seq0 = 0xfffff000; // wraps
      const sup = tcpFrame({ v6, vlan, payload, seq: seq0, id: 0xfffe, flags: 0x80 | 0x10 | 0x08 | 0x01, options: TS_OPT, csum: 'pseudo' });
      const segs = segmentAll(sup, mss, v6 ? GSO_TCPV6 : GSO_TCPV4);
      assert.equal(segs.length, Math.ceil(10000 / mss));
      const got: Buffer[] = [];
      segs.forEach((s, k) => {
        const p = parseFrame(s);
        assert.ok(p.tcpOk, `segment ${k} TCP checksum`);
        assert.ok(p.ipOk, `segment ${k} IP header checksum`);
        assert.equal(p.ipLen + p.l3, s.length);
        assert.equal(p.seq, (seq0 + k * mss) >>> 0);
        if (!v6) assert.equal(p.id, (0xfffe + k) & 0xffff);
        const last = k === segs.length - 1;
        assert.equal(p.flags & 0x80, k === 0 ? 0x80 : 0, 'CWR only first');
        assert.equal(p.flags & 0x09, last ? 0x09 : 0, 'FIN/PSH only last');
        assert.equal(p.flags & 0x10, 0x10);
        assert.deepEqual([...s.subarray(p.l4 + 20, p.l4 + 32)], TS_OPT);
        if (vlan) assert.equal(s.readUInt16BE(12), 0x8100);
        got.push(p.payload);
      });
      assert.ok(Buffer.concat(got).equals(payload));
    });
  }
}

test('TSO: one-segment super-frame, and malformed ones are refused with a code', () => {
  const h = new VnetHdr();
  const sf = new SuperFrame();
  const f = tcpFrame({ payload: bytes(100), csum: 'pseudo' });
  h.gsoType = GSO_TCPV4;
  h.gsoSize = 1448;
  assert.equal(parseSuper(f, 0, f.length, h, 9000, sf), TSO_OK);
  assert.equal(sf.nseg, 1);
  h.gsoType = GSO_TCPV6;
  assert.equal(parseSuper(f, 0, f.length, h, 9000, sf), TSO_BAD_TYPE);
  h.gsoType = GSO_UDP_L4;
  assert.equal(parseSuper(f, 0, f.length, h, 9000, sf), TSO_BAD_TYPE);
  h.gsoType = GSO_TCPV4;
  h.gsoSize = 0;
  assert.equal(parseSuper(f, 0, f.length, h, 9000, sf), TSO_BAD_SIZE);
  h.gsoSize = 1448;
  assert.equal(parseSuper(f, 0, f.length, h, 100, sf), TSO_BAD_SIZE);
  const frag = Buffer.from(f);
  frag[14 + 6] |= 0x20;
  assert.equal(parseSuper(frag, 0, frag.length, h, 9000, sf), TSO_UNSUPPORTED);
  assert.notEqual(parseSuper(f, 0, 54, h, 9000, sf), TSO_OK); // no payload
});

test('completeCsum finishes partial TCP and UDP checksums', () => {
  const f = tcpFrame({ payload: bytes(777, 9), csum: 'pseudo' });
  assert.ok(completeCsum(f, 0, f.length, 34, 16));
  assert.ok(parseFrame(f).tcpOk);
  // UDP: build by hand
  const udp = Buffer.alloc(14 + 20 + 8 + 33);
  udp.writeUInt16BE(0x0800, 12);
  udp[14] = 0x45;
  udp[23] = 17;
  udp.set([10, 0, 0, 1, 10, 0, 0, 2], 26);
  udp.writeUInt16BE(41, 38);
  bytes(33, 4).copy(udp, 42);
  udp.writeUInt16BE(refSum(udp.subarray(26, 34), 17 + 41), 40);
  assert.ok(completeCsum(udp, 0, udp.length, 34, 6));
  assert.equal(refSum(udp.subarray(34), refSum(udp.subarray(26, 34), 17 + 41)), 0xffff);
  assert.ok(!completeCsum(udp, 0, udp.length, udp.length, 6));
  assert.ok(!completeCsum(udp, 0, udp.length, 34, udp.length));
});

// ---------------------------------------------------------------- GRO

interface Written {
  fd: number;
  vnet: VnetHdr;
  frame: Buffer;
}

function collector(): { out: Written[]; write: (fd: number, b: Buffer, o: number, l: number) => number } {
  const out: Written[] = [];
  return {
    out,
    write(fd, b, o, l) {
      const vnet = new VnetHdr();
      parseVnet(b, o, l, vnet);
      out.push({ fd, vnet, frame: Buffer.from(b.subarray(o + VNET_HDR_LEN, o + l)) });
      return l;
    },
  };
}

/** Feed frames as a receive slab would hold them (in place, headroom in front). */
function feed(c: Coalescer, frames: Buffer[], fd = 3, inPlace = true): void {
  const slab = Buffer.alloc(frames.length * 2048 + 100000);
  let at = 0;
  for (const f of frames) {
    const off = at + 48;
    f.copy(slab, off);
    c.add(fd, 0, slab, off, f.length, inPlace);
    at = off + f.length + 64;
  }
  c.flush();
}

/** Re-segment a coalesced super-frame and compare with the original segments. */
function resegment(w: Written, expect: Buffer[]): void {
  // written for the kernel to verify: no NEEDS_CSUM / DATA_VALID, a complete TCP checksum
  assert.equal(w.vnet.flags, 0);
  const p = parseFrame(w.frame);
  assert.equal(w.vnet.csumStart, 0);
  assert.ok(p.tcpOk, 'super-frame TCP checksum (derived from the segments) is valid');
  assert.ok(p.ipOk);
  const segs = segmentAll(w.frame, w.vnet.gsoSize, w.vnet.gsoType);
  assert.equal(segs.length, expect.length);
  for (let i = 0; i < segs.length; i++) assert.ok(segs[i].equals(expect[i]), `segment ${i} identical after GRO + TSO`);
}

for (const v6 of [false, true]) {
  test(`GRO: a TSO train coalesces back into one super-frame (IPv${v6 ? 6 : 4}), in place and copied`, () => {
    const payload = bytes(20000, 11);
    const sup = tcpFrame({ v6, payload, seq: 5, id: 100, flags: 0x18, options: TS_OPT, csum: 'pseudo' });
    const segs = segmentAll(sup, 1400, v6 ? GSO_TCPV6 : GSO_TCPV4);
    for (const inPlace of [true, false]) {
      const { out, write } = collector();
      const stats = new Float64Array(4);
      const c = new Coalescer(write, stats, 1);
      feed(c, segs, 3, inPlace);
      assert.equal(out.length, 1);
      assert.equal(out[0].vnet.gsoType, v6 ? GSO_TCPV6 : GSO_TCPV4);
      assert.equal(out[0].vnet.gsoSize, 1400);
      assert.equal(out[0].vnet.hdrLen, (v6 ? 54 : 34) + 32);
      assert.equal(parseFrame(out[0].frame).flags & 0x08, 0x08, 'PSH of the last kept');
      resegment(out[0], segs);
      assert.equal(c.merged, segs.length - 1);
      assert.equal(stats[1], 0);
    }
  });
}

test('GRO: flows stored in the receive slab itself (arena) give the same super-frames', () => {
  const sup = tcpFrame({ v6: true, payload: bytes(30000, 12), seq: 77, flags: 0x18, options: TS_OPT, csum: 'pseudo' });
  const segs = segmentAll(sup, 1220, GSO_TCPV6);
  const stride = 10 + 14 + 65535 + 64;
  const slab = Buffer.alloc(segs.length * 2048 + 4 * stride);
  const { out, write } = collector();
  const c = new Coalescer(write, new Float64Array(2), 1, 4, slab, segs.length * 2048, stride);
  segs.forEach((f, i) => {
    f.copy(slab, i * 2048 + 48);
    c.add(3, 0, slab, i * 2048 + 48, f.length, true);
  });
  c.flush();
  assert.equal(out.length, 1);
  resegment(out[0], segs);
});

test('GRO: detach() lets flows grow over several batches while the slab is reused', () => {
  const segs = segmentAll(tcpFrame({ payload: bytes(40 * 1000, 21), seq: 9, csum: 'pseudo' }), 1000, GSO_TCPV4);
  const stride = 10 + 14 + 65535 + 64;
  const slab = Buffer.alloc(10 * 2048 + 2 * stride);
  const { out, write } = collector();
  const c = new Coalescer(write, new Float64Array(2), 1, 2, slab, 10 * 2048, stride);
  for (let i = 0; i < segs.length; i++) {
    const at = (i % 10) * 2048 + 48;
    segs[i].copy(slab, at);
    c.add(3, 0, slab, at, segs[i].length, true);
    if (i % 10 === 9) {
      c.detach();
      slab.fill(0xee, 0, 10 * 2048); // the next batch overwrites the receive slots
    }
  }
  c.flush();
  assert.equal(out.length, 1);
  resegment(out[0], segs);
});

/**
 * A TapQueue over plain Buffers that writes only at sync(), as the worker's may: an
 * "address" is a registered ArrayBuffer's number times 2^36 plus the byte offset. Each
 * piece's bytes are read when it is queued and again at sync(): they must not differ (the
 * coalescer may not reuse memory a queued frame names). `pieces` lists each written frame's
 * piece count; `syncs` counts sync() calls that wrote something.
 */
function queue(write: (fd: number, b: Buffer, o: number, l: number) => number) {
  const abs: ArrayBufferLike[] = [];
  const SPAN = 2 ** 36;
  const pieces: number[] = [];
  const address = (buf: Buffer): number => {
    let k = abs.indexOf(buf.buffer);
    if (k < 0) k = abs.push(buf.buffer) - 1;
    return (k + 1) * SPAN + buf.byteOffset;
  };
  const at = (addr: number, len: number): Buffer => Buffer.from(abs[Math.floor(addr / SPAN) - 1], addr % SPAN, len);
  const bytesOf = (ps: Array<[number, number]>): Buffer => Buffer.concat(ps.map(([a, l]) => at(a, l)));
  let frames: Array<{ fd: number; ps: Array<[number, number]>; snaps: Buffer[] }> = [];
  const q = {
    syncs: 0,
    get queued(): number {
      return frames.length;
    },
    address,
    begin(fd: number) {
      frames.push({ fd, ps: [], snaps: [] });
    },
    piece(addr: number, len: number) {
      const f = frames[frames.length - 1];
      f.ps.push([addr, len]);
      f.snaps.push(Buffer.from(at(addr, len)));
    },
    sync() {
      if (frames.length === 0) return;
      q.syncs++;
      for (const f of frames) {
        const all = bytesOf(f.ps);
        assert.ok(all.equals(Buffer.concat(f.snaps)), 'memory named by a queued frame changed before sync()');
        pieces.push(f.ps.length);
        write(f.fd, all, 0, all.length);
      }
      frames = [];
    },
  };
  return { q, pieces };
}

const ARENA_STRIDE = 10 + 14 + 65535 + 64;

for (const v6 of [false, true]) {
  test(`GRO gathered (IPv${v6 ? 6 : 4}): a super-frame still in the slab is written with writev from where it lies, same bytes as copied`, () => {
    const segs = segmentAll(tcpFrame({ v6, payload: bytes(20000, 31), seq: 5, id: 100, flags: 0x18, options: TS_OPT, csum: 'pseudo' }), 1400, v6 ? GSO_TCPV6 : GSO_TCPV4);
    const { out, write } = collector();
    const g = queue(write);
    const slab = Buffer.alloc(segs.length * 2048 + 2 * ARENA_STRIDE);
    const c = new Coalescer(write, new Float64Array(2), 1, 2, slab, segs.length * 2048, ARENA_STRIDE, g.q);
    segs.forEach((f, i) => {
      f.copy(slab, i * 2048 + 48);
      c.add(3, 0, slab, i * 2048 + 48, f.length, true);
    });
    c.flush();
    assert.equal(out.length, 1);
    assert.deepEqual(g.pieces, [segs.length + 1], 'one frame: headers, then every payload');
    assert.equal(out[0].vnet.gsoSize, 1400);
    resegment(out[0], segs);
  });
}

test('GRO gathered: detach() writes gathered super-frames, copies one-segment flows, and the slab may then be reused', () => {
  const a = segmentAll(tcpFrame({ payload: bytes(5000, 41), seq: 9, srcPort: 1111, csum: 'pseudo' }), 1000, GSO_TCPV4);
  const b = segmentAll(tcpFrame({ payload: bytes(5000, 42), seq: 99, srcPort: 2222, csum: 'pseudo' }), 1000, GSO_TCPV4);
  const { out, write } = collector();
  const g = queue(write);
  const slab = Buffer.alloc(8 * 2048 + 2 * ARENA_STRIDE);
  const c = new Coalescer(write, new Float64Array(2), 1, 2, slab, 8 * 2048, ARENA_STRIDE, g.q);
  const batch = (frames: Buffer[]) => {
    frames.forEach((f, i) => {
      f.copy(slab, i * 2048 + 48);
      c.add(3, 0, slab, i * 2048 + 48, f.length, true);
    });
    c.detach();
    slab.fill(0xee, 0, 8 * 2048); // the next receive overwrites the slots
  };
  batch([...a, b[0]]);
  assert.equal(out.length, 1, 'the gathered flow is written at the end of its batch');
  resegment(out[0], a);
  batch(b.slice(1));
  c.flush();
  assert.equal(out.length, 2);
  resegment(out[1], b);
  assert.deepEqual(g.pieces, [a.length + 1, 1], 'the second flow, copied at the first detach, is written from its storage');
});

test('GRO gathered: a segment that is not in the slab makes the flow copy itself together first', () => {
  const segs = segmentAll(tcpFrame({ payload: bytes(8000, 51), seq: 1, csum: 'pseudo' }), 1000, GSO_TCPV4);
  const { out, write } = collector();
  const g = queue(write);
  const slab = Buffer.alloc(8 * 2048 + 2 * ARENA_STRIDE);
  const c = new Coalescer(write, new Float64Array(2), 1, 2, slab, 8 * 2048, ARENA_STRIDE, g.q);
  segs.forEach((f, i) => {
    const inPlace = i < 4; // the rest as from a reorder queue: valid during the call only
    const buf = inPlace ? slab : Buffer.from(f);
    const off = inPlace ? i * 2048 + 48 : 0;
    if (inPlace) f.copy(slab, off);
    c.add(3, 0, buf, off, f.length, inPlace);
    if (!inPlace) buf.fill(0xee);
  });
  c.flush();
  assert.equal(out.length, 1);
  assert.deepEqual(g.pieces, [1], 'written from the flow storage');
  resegment(out[0], segs);
});

test('GRO queued: frames from outside the slab are queued from the scratch, written before it is reused', () => {
  const { out, write } = collector();
  const g = queue(write);
  const c = new Coalescer(write, new Float64Array(2), 1, 2, undefined, 0, 0, g.q);
  const f1 = arpFrame();
  const f2 = arpFrame();
  f2[41] = 7;
  for (const f of [f1, f2]) {
    const tmp = Buffer.from(f); // as from a reorder queue: valid during the call only
    c.add(3, 0, tmp, 0, tmp.length, false);
    tmp.fill(0xee);
  }
  assert.equal(g.q.syncs, 1, 'the second frame needed the scratch: the first was written');
  c.flush();
  assert.deepEqual(out.map((w) => w.frame), [f1, f2]);
  assert.deepEqual(g.pieces, [2, 2], 'each behind the shared zero virtio_net_hdr');
  assert.ok(out.every((w) => w.vnet.gsoType === GSO_NONE && w.vnet.flags === 0));
});

test("GRO queued: a flow's storage named by a queued write is written before a new flow reuses it", () => {
  const segs = segmentAll(tcpFrame({ payload: bytes(3000, 61), seq: 1, srcPort: 1111, csum: 'pseudo' }), 1000, GSO_TCPV4);
  const ack = tcpFrame({ payload: Buffer.alloc(0), seq: 3001, id: 9, srcPort: 1111 });
  const other = tcpFrame({ payload: bytes(1000, 62), seq: 5, srcPort: 2222 });
  const otherAck = tcpFrame({ payload: Buffer.alloc(0), seq: 1005, id: 9, srcPort: 2222 });
  const third = tcpFrame({ payload: bytes(1000, 63), seq: 5, srcPort: 3333 });
  const { out, write } = collector();
  const g = queue(write);
  const c = new Coalescer(write, new Float64Array(2), 1, 1, undefined, 0, 0, g.q);
  // a super-frame, then a one-segment flow, each written from the storage the next flow takes
  for (const f of [...segs, ack, other, otherAck, third]) {
    const tmp = Buffer.from(f);
    c.add(3, 0, tmp, 0, tmp.length, false); // copied into the one flow's storage
    tmp.fill(0xee);
  }
  c.flush();
  assert.equal(out.length, 5);
  resegment(out[0], segs);
  for (const [i, f] of [ack, other, otherAck, third].entries()) assert.ok(out[i + 1].frame.equals(f), `frame ${i + 1}`);
});

test('GRO: bounded at 64 segments and 65535 bytes', () => {
  const segs = segmentAll(tcpFrame({ payload: bytes(100 * 70, 2), csum: 'pseudo' }), 100, GSO_TCPV4);
  const { out, write } = collector();
  const c = new Coalescer(write, new Float64Array(2), 1);
  feed(c, segs);
  assert.equal(out.length, 2);
  assert.equal(parseFrame(out[0].frame).payload.length, 100 * MAX_SEGS);
  const big = segmentAll(tcpFrame({ payload: bytes(1448 * 60, 2), csum: 'pseudo' }), 1448, GSO_TCPV4);
  const o2 = collector();
  const c2 = new Coalescer(o2.write, new Float64Array(2), 1);
  feed(c2, big);
  assert.equal(o2.out.length, 2);
  for (const w of o2.out) assert.ok(parseFrame(w.frame).ipLen <= 65535);
  resegment(o2.out[0], big.slice(0, Math.floor((65535 - 52) / 1448)));
});

test('GRO: what must not merge is written as it came, in flow order', () => {
  const mk = (seq: number, extra: Partial<Parameters<typeof tcpFrame>[0]> = {}) =>
    tcpFrame({ payload: bytes(1000, seq), seq, id: 1 + (seq - 1) / 1000, ...extra });
  const cases: Array<[string, Buffer[], number]> = [
    ['gap in sequence', [mk(1), mk(2001, { id: 2 })], 2],
    ['FIN', [mk(1), mk(1001, { flags: 0x11 })], 2],
    ['SYN', [mk(1, { flags: 0x12 })], 1],
    ['URG', [mk(1), mk(1001, { flags: 0x30 })], 2],
    ['ECE', [mk(1), mk(1001, { flags: 0x50 })], 2],
    ['CWR', [mk(1), mk(1001, { flags: 0x90 })], 2],
    ['RST', [mk(1), mk(1001, { flags: 0x14 })], 2],
    ['ip id not incrementing', [mk(1), mk(1001, { id: 9 })], 2],
    ['different TTL', [mk(1), mk(1001, { ttl: 3 })], 2],
    ['different TOS', [mk(1), mk(1001, { tos: 4 })], 2],
    ['different ack', [mk(1), mk(1001, { ack: 5 })], 2],
    ['different window', [mk(1), mk(1001, { window: 9 })], 2],
    ['different options', [mk(1, { options: TS_OPT }), mk(1001, { options: [1, 1, 8, 10, 0, 0, 0x12, 0x35, 0, 0, 0x56, 0x78] })], 2],
    ['PSH ends the train', [mk(1, { flags: 0x18 }), mk(1001)], 2],
    ['larger than the first', [tcpFrame({ payload: bytes(500), seq: 1, id: 1 }), mk(501, { id: 2 })], 2],
    ['after a short one', [mk(1), tcpFrame({ payload: bytes(500), seq: 1001, id: 2 }), tcpFrame({ payload: bytes(500), seq: 1501, id: 3 })], 2],
    ['pure ACK', [mk(1), tcpFrame({ payload: Buffer.alloc(0), seq: 1001, id: 2 })], 2],
    ['other port', [mk(1), mk(1001, { srcPort: 1 })], 2],
    ['IPv4 fragment flag', [mk(1, { df: false }), mk(1001, { df: true })], 2],
  ];
  for (const [name, frames, n] of cases) {
    const { out, write } = collector();
    const c = new Coalescer(write, new Float64Array(2), 1);
    feed(c, frames);
    assert.equal(out.length, n, name);
    if (n === frames.length) {
      for (let i = 0; i < n; i++) {
        assert.ok(out[i].frame.equals(frames[i]), `${name}: frame ${i} unchanged and in order`);
        assert.equal(out[i].vnet.gsoType, GSO_NONE);
        assert.equal(out[i].vnet.flags, 0);
      }
    }
  }
  // a control: contiguous frames do merge
  const { out, write } = collector();
  feed(new Coalescer(write, new Float64Array(2), 1), [mk(1), mk(1001, { id: 2 }), mk(2001, { id: 3 })]);
  assert.equal(out.length, 1);
});

test('GRO: a damaged segment makes the whole super-frame fail the checksum (odd MSS too)', () => {
  for (const mss of [1000, 999]) {
    for (const bad of [-1, 0, 1, 3]) {
      const frames = [0, 1, 2, 3].map((k) =>
        tcpFrame({ payload: bytes(mss, 40 + k), seq: 1 + k * mss, id: 1 + k, options: TS_OPT, csum: k === bad ? 'bad' : 'full' }),
      );
      const { out, write } = collector();
      feed(new Coalescer(write, new Float64Array(2), 1), frames);
      assert.equal(out.length, 1);
      assert.equal(parseFrame(out[0].frame).tcpOk, bad < 0, `mss ${mss}, bad segment ${bad}`);
    }
  }
});

/** A 42-byte ARP frame from MAC_A (not TCP: never held). */
function arpFrame(): Buffer {
  const arp = Buffer.alloc(42);
  arp.writeUInt16BE(0x0806, 12);
  arp.set(MAC_A, 6);
  return arp;
}

test('GRO: interleaved flows and TAPs coalesce separately; non-TCP passes at once', () => {
  const a = (k: number) => tcpFrame({ payload: bytes(1000, k), seq: 1 + 1000 * k, id: k, srcPort: 1111 });
  const b = (k: number) => tcpFrame({ payload: bytes(1000, 50 + k), seq: 9 + 1000 * k, id: 70 + k, srcPort: 2222 });
  const arp = arpFrame();
  const { out, write } = collector();
  const c = new Coalescer(write, new Float64Array(2), 1);
  const slab = Buffer.alloc(100000);
  let at = 64;
  const put = (fd: number, f: Buffer) => {
    f.copy(slab, at);
    c.add(fd, 0, slab, at, f.length, true);
    at += 2048;
  };
  put(3, a(0));
  put(3, b(0));
  put(3, a(1));
  put(3, arp);
  put(4, a(2)); // same flow, other TAP: a flow of its own
  put(3, b(1));
  put(3, a(2));
  c.flush();
  assert.equal(out.length, 4);
  assert.ok(out[0].frame.equals(arp));
  assert.equal(parseFrame(out[1].frame).payload.length, 3000);
  assert.equal(parseFrame(out[2].frame).payload.length, 2000);
  assert.equal(out[3].fd, 4);
  assert.equal(out[3].vnet.gsoType, GSO_NONE);
});

test('GRO: a frame written in place does not clobber a held frame 8 bytes in front of it (UDP GRO run, no cookie, l2spec none)', () => {
  // One UDP GRO run: datagrams back to back, each an 8-byte L2TP header and a frame, so the
  // virtio_net_hdr written in front of the second frame overlaps the held first frame's tail.
  const seg = tcpFrame({ payload: bytes(1000, 3), seq: 1, id: 1 });
  const arp = arpFrame();
  const { out, write } = collector();
  const c = new Coalescer(write, new Float64Array(2), 1);
  const slab = Buffer.alloc(8192);
  const first = 64 + 8;
  seg.copy(slab, first);
  const second = first + seg.length + 8;
  arp.copy(slab, second);
  c.add(3, 0, slab, first, seg.length, true);
  c.add(3, 0, slab, second, arp.length, true);
  c.flush();
  assert.equal(out.length, 2);
  assert.ok(out[0].frame.equals(arp));
  assert.ok(out[1].frame.equals(seg), 'held segment written intact');
});

test('GRO: a failed TAP write counts every segment as a drop', () => {
  const stats = new Float64Array(8);
  const c = new Coalescer(() => -5, stats, 3);
  const segs = segmentAll(tcpFrame({ payload: bytes(5000), csum: 'pseudo' }), 1000, GSO_TCPV4);
  const slab = Buffer.alloc(20000);
  segs.forEach((s, i) => {
    s.copy(slab, 100 + i * 2000);
    c.add(7, 4, slab, 100 + i * 2000, s.length, true);
  });
  c.flush();
  assert.equal(stats[4 + 3], 5);
});

test('fuzz: random vnet headers and mutated frames never throw', () => {
  let x = 0x9e3779b9;
  const rnd = (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
  const h = new VnetHdr();
  const sf = new SuperFrame();
  const dst = Buffer.alloc(HEAD + 9000);
  const { write } = collector();
  const c = new Coalescer(write, new Float64Array(2), 1);
  const base = [
    tcpFrame({ payload: bytes(3000), csum: 'pseudo', options: TS_OPT }),
    tcpFrame({ v6: true, payload: bytes(3000), csum: 'pseudo' }),
    tcpFrame({ vlan: 3, payload: bytes(300) }),
  ];
  const slab = Buffer.alloc(70000);
  let segments = 0;
  let refused = 0;
  for (let iter = 0; iter < 20000; iter++) {
    const f = Buffer.from(base[rnd(base.length)]);
    const flips = rnd(6);
    for (let i = 0; i < flips; i++) f[rnd(Math.min(f.length, 80))] = rnd(256);
    const len = rnd(4) === 0 ? rnd(f.length + 1) : f.length;
    const vh = Buffer.alloc(10);
    for (let i = 0; i < 10; i++) vh[i] = rnd(4) === 0 ? rnd(256) : 0;
    vh[1] = [0, 1, 3, 4, 5, 0x81, rnd(256)][rnd(7)]!;
    if (rnd(2)) vh.writeUInt16LE(rnd(3000), 4);
    slab.set(vh, 0);
    f.copy(slab, 10, 0, len);
    parseVnet(slab, 0, len + 10, h);
    if (parseSuper(slab, 10, len, h, 9000, sf) === TSO_OK) {
      for (let k = 0; k < sf.nseg && k < 50; k++) {
        const n = writeSegment(sf, slab, 10, k, dst, HEAD);
        assert.ok(n > 0 && n <= 9000);
        segments++;
      }
    } else refused++;
    completeCsum(slab, 10, len, h.csumStart, h.csumOffset);
    c.add(3, 0, slab, 10, len, true);
    if (rnd(3) === 0) c.flush();
  }
  c.flush();
  assert.ok(segments > 1000 && refused > 1000, `${segments} segments, ${refused} refused`);
});

test('ipv4HeaderOk', () => {
  const f = tcpFrame({ payload: bytes(10) });
  assert.ok(ipv4HeaderOk(f, 14, 20));
  f[22] ^= 1;
  assert.ok(!ipv4HeaderOk(f, 14, 20));
});

/** Real super-frames recorded from a TAP (test/integration/offload/tap-pair.test.ts). */
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'test', 'unit', 'offload', 'fixtures');

test('recorded TSO super-frames from the kernel: segments valid, coalesce back to the same segments', () => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.bin'));
  assert.ok(files.length >= 4, 'fixtures present');
  for (const f of files) {
    const raw = readFileSync(join(FIXTURES, f));
    const h = new VnetHdr();
    assert.ok(parseVnet(raw, 0, raw.length, h));
    assert.equal(h.flags & VNET_F_NEEDS_CSUM, VNET_F_NEEDS_CSUM, `${f}: kernel asks for the checksum`);
    assert.equal(h.gsoType, f.includes('v6') ? GSO_TCPV6 : GSO_TCPV4);
    const frame = raw.subarray(VNET_HDR_LEN);
    const segs = segmentAll(frame, h.gsoSize, h.gsoType);
    assert.ok(segs.length >= 3);
    const first = parseFrame(Buffer.from(frame));
    segs.forEach((s, k) => {
      const p = parseFrame(s);
      assert.ok(p.tcpOk && p.ipOk, `${f} segment ${k} checksums`);
      assert.equal(p.seq, (first.seq + k * h.gsoSize) >>> 0);
      if (!p.v6) assert.equal(p.id, (first.id + k) & 0xffff);
      assert.ok(s.length <= 14 + 1500);
    });
    const { out, write } = collector();
    feed(new Coalescer(write, new Float64Array(2), 1), segs);
    assert.equal(out.length, 1, `${f}: one super-frame again`);
    resegment(out[0], segs);
  }
});

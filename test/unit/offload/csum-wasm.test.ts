/**
 * The WebAssembly SIMD checksum (src/io/offload/csum.wat) behind csumAdd for memory from
 * checksumMemory: the committed module is the .wat's compilation, its sums equal the
 * byte-at-a-time reference (alignments, odd lengths, its chunk boundary), and TSO segments
 * cut inside such a slab carry valid checksums.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checksumMemory, csumAdd, fastChecksums } from '../../../src/io/offload/csum.js';
import { CSUM_WASM_BASE64 } from '../../../src/io/offload/csum-wasm.js';
import { parseSuper, SuperFrame, TSO_OK, writeSegment } from '../../../src/io/offload/tso.js';
import { GSO_TCPV4, GSO_TCPV6, VNET_F_NEEDS_CSUM, VnetHdr } from '../../../src/io/offload/vnet.js';
import { bytes, parseFrame, refSum, tcpFrame, TS_OPT } from './frames.js';

test('csum-wasm.ts holds exactly what csum.wat compiles to (run `node scripts/wasm.mjs` after editing the .wat)', async () => {
  const script = new URL('../../../../scripts/wasm.mjs', import.meta.url).href; // outside the TypeScript tree
  const { compileWat } = (await import(script)) as { compileWat: () => Promise<Buffer> };
  assert.equal((await compileWat()).toString('base64'), CSUM_WASM_BASE64);
});

test('checksumMemory gives SIMD sums; other buffers keep the JS loop', () => {
  const mem = Buffer.from(checksumMemory(100_000), 0, 100_000);
  assert.ok(mem.length >= 100_000);
  assert.equal(fastChecksums(mem), true);
  assert.equal(fastChecksums(mem.subarray(7)), true);
  assert.equal(fastChecksums(Buffer.alloc(100_000)), false);
});

test('SIMD sums equal the reference at every alignment, odd and even lengths, across its chunk size', () => {
  const size = 600_000;
  const mem = Buffer.from(checksumMemory(size), 0, size);
  bytes(size, 11).copy(mem);
  for (let len = 0; len < 400; len += 3) {
    for (let off = 0; off < 17; off++) {
      assert.equal(csumAdd(mem, off, len, 0), refSum(mem.subarray(off, off + len)), `off ${off} len ${len}`);
    }
  }
  for (const len of [1447, 1448, 1500, 9001, 65535, 262143, 262144, 262145, 524289, 599_990]) {
    for (const off of [0, 1, 2, 3, 5, 8]) {
      assert.equal(csumAdd(mem, off, len, 4321), refSum(mem.subarray(off, off + len), 4321), `off ${off} len ${len}`);
    }
  }
  // all-0xff data: the largest lane sums, folded at the end
  mem.fill(0xff, 0, 300_000);
  for (const len of [64, 1448, 65536, 262144, 299_999]) assert.equal(csumAdd(mem, 1, len, 0xffff), refSum(mem.subarray(1, 1 + len), 0xffff));
  // a Buffer that is a view at an odd byteOffset of the memory
  const view = mem.subarray(3);
  bytes(5000, 2).copy(view);
  assert.equal(csumAdd(view, 5, 3000, 0), refSum(view.subarray(5, 3005)));
});

for (const v6 of [false, true]) {
  test(`TSO segments cut inside a checksumMemory slab carry valid checksums (IPv${v6 ? 6 : 4})`, () => {
    const payload = bytes(60_000, 5);
    const mss = 1448 - (v6 ? 20 : 0);
    const sup = tcpFrame({ v6, payload, seq: 12345, id: 7, flags: 0x10 | 0x08, options: TS_OPT, csum: 'pseudo' });
    const slab = Buffer.from(checksumMemory(200_000), 0, 200_000);
    const at = 64; // input slot, like the offload stage's
    sup.copy(slab, at);
    const h = new VnetHdr();
    h.gsoType = v6 ? GSO_TCPV6 : GSO_TCPV4;
    h.gsoSize = mss;
    h.flags = VNET_F_NEEDS_CSUM;
    const sf = new SuperFrame();
    assert.equal(parseSuper(slab, at, sup.length, h, 9000, sf), TSO_OK);
    const got: Buffer[] = [];
    for (let k = 0; k < sf.nseg; k++) {
      const o = 100_000 + (k % 4) * 2000 + (k & 1); // output slots in the same slab, odd offsets too
      const n = writeSegment(sf, slab, at, k, slab, o);
      const p = parseFrame(Buffer.from(slab.subarray(o, o + n)));
      assert.ok(p.tcpOk, `segment ${k} TCP checksum`);
      assert.ok(p.ipOk, `segment ${k} IP header checksum`);
      got.push(p.payload);
    }
    assert.ok(Buffer.concat(got).equals(payload));
  });
}

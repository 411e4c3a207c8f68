/**
 * virtio_net_hdr handling of frames read from a macvtap (no root needed):
 * partial checksums are completed exactly like a reference byte-pair sum,
 * GSO frames and bad offsets are dropped.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FRAME_DROP, VNET_HDR_LEN, finishFrame } from '../../../native-free/vnet.js';

function refChecksum(b: Buffer, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i += 2) sum += (b[i] << 8) | (i + 1 < to ? b[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  return c === 0 ? 0xffff : c;
}

/** A read buffer: [pad][vnet hdr][frame] with NEEDS_CSUM at csumStart/csumOff. */
function frame(pad: number, frameLen: number, csumStart: number, csumOff: number, seed: number): Buffer {
  const b = Buffer.alloc(pad + VNET_HDR_LEN + frameLen);
  let x = seed;
  for (let i = pad + VNET_HDR_LEN; i < b.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  b[pad] = 1; // NEEDS_CSUM
  b.writeUInt16LE(csumStart, pad + 6);
  b.writeUInt16LE(csumOff, pad + 8);
  return b;
}

describe('native-free virtio_net_hdr', () => {
  test('partial checksums are completed like the reference sum, any length and alignment', () => {
    for (const [pad, len, start, off] of [
      [22, 74, 34, 16], // TCP/IPv4 minimal
      [22, 1514, 34, 16],
      [23, 1515, 54, 16], // odd length, odd alignment, TCP/IPv6
      [22, 61, 34, 6], // UDP, odd
      [21, 9000, 34, 16],
      [22, 64, 57, 2], // start not 4-aligned
    ] as const) {
      const b = frame(pad, len, start, off, len * 31 + pad);
      const f = pad + VNET_HDR_LEN;
      // the field holds the pseudo-header sum the stack left; the reference sums over it too
      const want = refChecksum(b, f + start, f + len);
      const pseudo = b.readUInt16BE(f + start + off);
      assert.equal(finishFrame(b, pad, VNET_HDR_LEN + len), len);
      assert.equal(b.readUInt16BE(f + start + off), want, `pad ${pad} len ${len} start ${start}`);
      // the receiver's check: region (now holding the checksum) + pseudo-header sum = 0xffff
      let sum = pseudo;
      for (let i = f + start; i < f + len; i += 2) sum += (b[i] << 8) | (i + 1 < f + len ? b[i + 1] : 0);
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      assert.equal(sum, 0xffff, 'verifies');
    }
  });

  test('a computed 0 is sent as 0xffff', () => {
    // frame whose data sums to 0xffff so the complement is 0
    const pad = 22;
    const b = Buffer.alloc(pad + VNET_HDR_LEN + 40);
    const f = pad + VNET_HDR_LEN;
    b[pad] = 1;
    b.writeUInt16LE(20, pad + 6);
    b.writeUInt16LE(6, pad + 8);
    b.writeUInt16BE(0xfffe, f + 20);
    b.writeUInt16BE(0x0001, f + 30);
    assert.equal(finishFrame(b, pad, VNET_HDR_LEN + 40), 40);
    assert.equal(b.readUInt16BE(f + 26), 0xffff);
  });

  test('frames without NEEDS_CSUM pass untouched; GSO frames and bad offsets are dropped', () => {
    const b = frame(0, 100, 34, 16, 7);
    b[0] = 0;
    const copy = Buffer.from(b);
    assert.equal(finishFrame(b, 0, b.length), 100);
    assert.deepEqual(b, copy);
    b[1] = 1; // VIRTIO_NET_HDR_GSO_TCPV4
    assert.equal(finishFrame(b, 0, b.length), FRAME_DROP);
    const bad = frame(0, 50, 40, 16, 3); // field beyond the frame
    assert.equal(finishFrame(bad, 0, bad.length), FRAME_DROP);
    assert.equal(finishFrame(b, 0, 5), FRAME_DROP); // shorter than the header
  });
});

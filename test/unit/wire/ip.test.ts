import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkIpv4L2tp, ipv4HeaderLenAt, ipv4PayloadLen, Ipv4Repr, onesSum } from '../../../src/wire/ip.js';
import { loadFixture, loadVector } from './fixtures.js';

test('TV3 (raw IPv4, proto 115): IHL gives the L2TP offset, payload equals the L2TP vector', () => {
  const f = loadFixture('tv3-ipv4-ip');
  const hl = checkIpv4L2tp(f.bytes, 0, f.bytes.length);
  assert.equal(hl, 20);
  assert.equal(ipv4PayloadLen(f.bytes, 0, hl), 58);
  assert.deepEqual(f.bytes.subarray(hl), loadVector('ip-c8-default').bytes);
  const r = Ipv4Repr.parse(f.bytes, 0, f.bytes.length);
  assert.deepEqual({ ...r, options: r.options.length }, {
    tos: 0, totalLen: 0x4e, id: 0x1240, frag: 0, ttl: 64, proto: 115, csum: 0xe3f9, src: '192.0.2.1', dst: '192.0.2.2', options: 0,
  });
});

test('IPv4 options: IHL=6 puts the L2TP header at 24, not 20', () => {
  const f = loadFixture('tv3-ipv4-ip-options');
  const hl = checkIpv4L2tp(f.bytes, 0, f.bytes.length);
  assert.equal(hl, 24);
  assert.equal(ipv4HeaderLenAt(f.bytes, 0), 24);
  assert.deepEqual(f.bytes.subarray(hl), loadVector('ip-c8-default').bytes);
  assert.equal(onesSum(f.bytes, 0, 24), 0xffff, 'header checksum verifies');
});

test('Ipv4Repr.emit reproduces the TV1/TV2/TV3 headers including the checksum, over 0xa5', () => {
  for (const name of ['tv1-ipv4-udp', 'tv2-ipv4-udp', 'tv3-ipv4-ip', 'tv3-ipv4-ip-options']) {
    const f = loadFixture(name);
    const hl = Number(f.meta.iphdr);
    const r = Ipv4Repr.parse(f.bytes, 0, f.bytes.length);
    const b = Buffer.alloc(hl + 8, 0xa5);
    assert.equal(Ipv4Repr.emit(r, b, 4), hl);
    assert.deepEqual(b.subarray(4, 4 + hl), f.bytes.subarray(0, hl), name);
    assert.deepEqual([...b.subarray(0, 4), ...b.subarray(4 + hl)], new Array(8).fill(0xa5));
  }
});

test('TV1/TV2 UDP payloads equal the udp L2TP vectors', () => {
  const t1 = loadFixture('tv1-ipv4-udp');
  assert.deepEqual(t1.bytes.subarray(28), loadVector('udp-c0-none').bytes);
  const t2 = loadFixture('tv2-ipv4-udp');
  assert.deepEqual(t2.bytes.subarray(28), loadVector('udp-c4-default').bytes);
  assert.equal(checkIpv4L2tp(t1.bytes, 0, t1.bytes.length), -1, 'protocol 17 is not L2TP/IP');
});

test('checkIpv4L2tp rejects malformed datagrams without reading outside [off, off+len)', () => {
  const good = loadFixture('tv3-ipv4-ip').bytes;
  const cases: Array<[string, (b: Buffer) => void, number?]> = [
    ['version 6', (b) => (b[0] = 0x65)],
    ['IHL 4', (b) => (b[0] = 0x44)],
    ['IHL 15 beyond length', (b) => (b[0] = 0x4f), 40],
    ['protocol 17', (b) => (b[9] = 17)],
    ['total length > len', (b) => b.writeUInt16BE(0x4f, 2)],
    ['total length < IHL', (b) => b.writeUInt16BE(19, 2)],
  ];
  for (const [what, mut, len] of cases) {
    const b = Buffer.from(good);
    mut(b);
    assert.equal(checkIpv4L2tp(b, 0, len ?? b.length), -1, what);
  }
  assert.equal(checkIpv4L2tp(good, 0, 19), -1, 'shorter than 20');
  assert.equal(checkIpv4L2tp(good, 1, good.length), -1, 'runs past the buffer');
  // at an offset inside a larger buffer
  const big = Buffer.alloc(good.length + 13, 0);
  good.copy(big, 9);
  assert.equal(checkIpv4L2tp(big, 9, good.length), 20);
});

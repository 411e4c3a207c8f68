import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkHeader,
  formatL2tp,
  ipSessionIdAt,
  l2tpHeaderLen,
  L2tpv3Repr,
  udpFlagsAt,
  udpIsControlAt,
  udpSessionIdAt,
  udpVersionAt,
  WireError,
  type L2tpv3Repr as Repr,
} from '../../../src/wire/l2tpv3.js';
import { Rng } from '../../../src/io/mem/fault-injector.js';
import { ARP_FRAME, loadVector, VECTOR_NAMES } from './fixtures.js';

for (const name of VECTOR_NAMES) {
  const v = loadVector(name);
  const l2spec = v.l2spec === 'default';
  const cookie = Buffer.from(v.cookie, 'hex');

  test(`vector ${name}: deconstruct every field`, () => {
    const b = v.bytes;
    assert.equal(b.length, v.hdrLen + 42, 'fixture length');
    assert.equal(l2tpHeaderLen(v.encap, cookie.length, l2spec), v.hdrLen);
    assert.ok(checkHeader(b, 0, b.length, v.encap, cookie.length, l2spec));
    if (v.encap === 'udp') {
      assert.equal(udpFlagsAt(b, 0), 0x0003);
      assert.equal(udpIsControlAt(b, 0), false);
      assert.equal(udpVersionAt(b, 0), 3);
      assert.equal(udpSessionIdAt(b, 0), v.session);
    } else {
      assert.equal(ipSessionIdAt(b, 0), v.session);
    }
    const r = L2tpv3Repr.parse(b, 0, b.length, v.encap, cookie.length, l2spec);
    assert.equal(r.encap, v.encap);
    assert.equal(r.flags, v.encap === 'udp' ? 3 : 0);
    assert.equal(r.sessionId, v.session);
    assert.equal(r.cookie.toString('hex'), v.cookie);
    if (l2spec) assert.deepEqual(r.l2spec, { sequenced: v.sequenced, ns: v.ns });
    else assert.equal(r.l2spec, null);
    assert.equal(L2tpv3Repr.headerLen(r), v.hdrLen);
    assert.deepEqual(b.subarray(v.hdrLen), ARP_FRAME);
    assert.match(formatL2tp(b, 0, b.length, v.encap, cookie.length, l2spec), new RegExp(`sid=${v.session}`));
  });

  test(`vector ${name}: construct byte-exact over a 0xa5-filled buffer, at offset 0 and 10`, () => {
    const repr: Repr = {
      encap: v.encap,
      flags: v.encap === 'udp' ? 0x0003 : 0,
      sessionId: v.session,
      cookie,
      l2spec: l2spec ? { sequenced: v.sequenced, ns: v.ns } : null,
    };
    for (const off of [0, 10]) {
      const b = Buffer.alloc(off + v.hdrLen + 42 + 3, 0xa5);
      assert.equal(L2tpv3Repr.emit(repr, b, off), v.hdrLen);
      ARP_FRAME.copy(b, off + v.hdrLen);
      assert.deepEqual(b.subarray(off, off + v.bytes.length), v.bytes);
      for (let i = 0; i < off; i++) assert.equal(b[i], 0xa5, `byte ${i} before the header touched`);
      for (let i = off + v.bytes.length; i < b.length; i++) assert.equal(b[i], 0xa5, `byte ${i} after the packet touched`);
    }
  });

  test(`vector ${name}: every truncation is rejected`, () => {
    for (let len = 0; len < v.hdrLen; len++) {
      assert.equal(checkHeader(v.bytes, 0, len, v.encap, cookie.length, l2spec), false);
      assert.throws(() => L2tpv3Repr.parse(v.bytes, 0, len, v.encap, cookie.length, l2spec), (e: unknown) => e instanceof WireError && e.code === 'TRUNCATED');
    }
    // a length running past the end of the buffer is rejected too
    assert.equal(checkHeader(v.bytes, 1, v.bytes.length, v.encap, cookie.length, l2spec), false);
  });
}

test('parse rejects control messages and other versions', () => {
  const ctl = Buffer.from('c8030014000000000000000000000000', 'hex');
  assert.throws(() => L2tpv3Repr.parse(ctl, 0, ctl.length, 'udp', 0, false), (e: unknown) => (e as WireError).code === 'CONTROL');
  const ipctl = Buffer.from('00000000c8030014000000000000', 'hex');
  assert.throws(() => L2tpv3Repr.parse(ipctl, 0, ipctl.length, 'ip', 0, false), (e: unknown) => (e as WireError).code === 'CONTROL');
  const v2 = Buffer.from('00020000000007d0', 'hex');
  assert.throws(() => L2tpv3Repr.parse(v2, 0, v2.length, 'udp', 0, false), (e: unknown) => (e as WireError).code === 'BAD_VERSION');
  // x bits and Reserved are ignored on parse
  const x = Buffer.from('7ff3ffff000007d0', 'hex');
  assert.equal(L2tpv3Repr.parse(x, 0, x.length, 'udp', 0, false).sessionId, 2000);
});

test('emit refuses a too-small buffer or a cookie over 8 bytes, writing nothing', () => {
  const r: Repr = { encap: 'udp', flags: 3, sessionId: 1, cookie: Buffer.alloc(4), l2spec: null };
  const b = Buffer.alloc(11, 0xa5);
  assert.throws(() => L2tpv3Repr.emit(r, b, 0), WireError);
  assert.ok(b.every((x) => x === 0xa5));
  assert.throws(() => L2tpv3Repr.emit({ ...r, cookie: Buffer.alloc(9) }, Buffer.alloc(64), 0), WireError);
});

test('round-trip property: random headers emit → parse → equal, headerLen = bytes written, at random offsets', () => {
  const rng = new Rng(0xc0ffee);
  for (let i = 0; i < 5000; i++) {
    const encap = rng.int(2) ? 'udp' : 'ip';
    const cookieLen = [0, 4, 8][rng.int(3)];
    const cookie = Buffer.alloc(cookieLen);
    rng.fill(cookie);
    const hasL2 = rng.int(2) === 1;
    const sequenced = rng.int(2) === 1;
    const sessionId = encap === 'ip' ? 1 + (rng.u32() % 0xffffffff) : rng.u32();
    const repr: Repr = {
      encap,
      flags: encap === 'udp' ? 0x0003 : 0,
      sessionId,
      cookie,
      l2spec: hasL2 ? { sequenced, ns: sequenced ? rng.u32() & 0xffffff : 0 } : null,
    };
    const off = rng.int(40);
    const payload = rng.int(100);
    const b = Buffer.alloc(off + 20 + payload, 0xa5);
    const n = L2tpv3Repr.emit(repr, b, off);
    assert.equal(n, L2tpv3Repr.headerLen(repr));
    const back = L2tpv3Repr.parse(b, off, n + payload, encap, cookieLen, hasL2);
    assert.deepEqual(back, repr);
    for (let j = 0; j < off; j++) assert.equal(b[j], 0xa5);
    for (let j = off + n; j < b.length; j++) assert.equal(b[j], 0xa5);
  }
});

/** Engine encap/decap against the hand-written vectors (udp/ip × cookie 0/4/8 × l2spec none/default). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encap, countTx } from '../../../src/engine/encap.js';
import { decapIp, decapUdp, RX_OK } from '../../../src/engine/decap.js';
import { HEADROOM, MAX_HDR_LEN } from '../../../src/engine/layout.js';
import { RX_BYTES, RX_PACKETS, SEND_SEQ, TX_BYTES, TX_PACKETS } from '../../../src/engine/stats.js';
import { ARP_FRAME, loadVector, VECTOR_NAMES } from '../wire/fixtures.js';
import { assertSlot, Collect, setup } from './helpers.js';

assert.ok(HEADROOM >= MAX_HDR_LEN);

for (const name of VECTOR_NAMES) {
  const v = loadVector(name);

  test(`encap ${name}: header written in place in front of the frame, byte-exact`, () => {
    const { session: s, tunnel: t } = setup(
      { encap: v.encap, udpSport: v.encap === 'udp' ? 5000 : 0, udpDport: v.encap === 'udp' ? 6000 : 0 },
      { peerSessionId: v.session, sessionId: 77, cookie: v.cookie, l2specType: v.l2spec, sendSeq: v.sequenced },
    );
    assert.equal(s.txHdrLen, v.hdrLen);
    s.ns = v.ns;
    const buf = Buffer.alloc(HEADROOM + ARP_FRAME.length + 8, 0xa5);
    ARP_FRAME.copy(buf, HEADROOM);
    const start = encap(s, buf, HEADROOM, ARP_FRAME.length);
    assert.equal(start, HEADROOM - v.hdrLen);
    assert.deepEqual(buf.subarray(start, HEADROOM + ARP_FRAME.length), v.bytes);
    for (let i = 0; i < start; i++) assert.equal(buf[i], 0xa5, `headroom byte ${i} touched`);
    for (let i = HEADROOM + ARP_FRAME.length; i < buf.length; i++) assert.equal(buf[i], 0xa5);
    // ns advances only when a sequence number went on the wire
    assert.equal(s.ns, v.sequenced && v.l2spec === 'default' ? v.ns + 1 : v.ns);
    // encap does not count; countTx counts header + frame on session and tunnel
    assertSlot(s, { [SEND_SEQ]: v.sequenced ? 1 : 0 });
    countTx(s, v.bytes.length);
    assertSlot(s, { [SEND_SEQ]: v.sequenced ? 1 : 0, [TX_PACKETS]: 1, [TX_BYTES]: v.bytes.length });
    assertSlot(t, { [TX_PACKETS]: 1, [TX_BYTES]: v.bytes.length });
  });

  test(`decap ${name}: frame delivered zero-copy at the right offset, rx counted`, () => {
    const { table, session: s, tunnel: t } = setup(
      { encap: v.encap },
      { sessionId: v.session, peerSessionId: 9, peerCookie: v.cookie, l2specType: v.l2spec },
    );
    const off = 13;
    const buf = Buffer.alloc(off + v.bytes.length + 5, 0x5a);
    v.bytes.copy(buf, off);
    const sink = new Collect();
    const r = v.encap === 'udp' ? decapUdp(table, t, buf, off, v.bytes.length, 0, sink) : decapIp(table, buf, off, v.bytes.length, 0, sink);
    assert.equal(r, RX_OK);
    assert.equal(sink.got.length, 1);
    assert.equal(sink.got[0].buf, buf, 'zero-copy: the sink sees the receive buffer');
    assert.equal(sink.got[0].off, off + v.hdrLen);
    assert.deepEqual(sink.got[0].frame, ARP_FRAME);
    // docs/protocol.md §2.4-2.7: rx_bytes = L2TP-level length; a sequenced packet flips send_seq on (LAC rule)
    const seqd = v.sequenced && v.l2spec === 'default';
    assertSlot(s, { [RX_PACKETS]: 1, [RX_BYTES]: v.bytes.length, [SEND_SEQ]: seqd ? 1 : 0 });
    assertSlot(t, { [RX_PACKETS]: 1, [RX_BYTES]: v.bytes.length });
    if (seqd) assert.equal(s.nr, (v.ns + 1) & 0xffffff);
  });
}

test('TV2 second packet: ns=1 after ns=0, send_seq on', () => {
  const v = loadVector('udp-c4-default');
  const { session: s } = setup({}, { peerSessionId: 2000, cookie: 'deadbeef', sendSeq: true });
  const buf = Buffer.alloc(HEADROOM + 42);
  ARP_FRAME.copy(buf, HEADROOM);
  encap(s, buf, HEADROOM, 42);
  const start = encap(s, buf, HEADROOM, 42);
  const second = Buffer.from(v.bytes);
  second[15] = 0x01; // docs/protocol.md §7 TV2: byte 0x2b of the IP packet = L2TP byte 15
  assert.deepEqual(buf.subarray(start), second);
});

test('encap refuses missing headroom without writing', () => {
  const { session: s } = setup({}, { cookie: '0102030405060708' });
  const buf = Buffer.alloc(64, 0xa5);
  assert.equal(encap(s, buf, 19, 10), -1);
  assert.equal(encap(s, buf, 20, 45), -1, 'frame beyond buffer');
  assert.ok(buf.every((x) => x === 0xa5));
  assert.equal(encap(s, buf, 20, 10), 0);
});

test('encap: sequence wraps at 2^24 and send_seq is read live from the stats slot', () => {
  const { session: s } = setup({}, { sendSeq: true });
  s.ns = 0xffffff;
  const buf = Buffer.alloc(HEADROOM + 14);
  let p = encap(s, buf, HEADROOM, 14);
  assert.deepEqual([...buf.subarray(p + 8, p + 12)], [0x40, 0xff, 0xff, 0xff]);
  p = encap(s, buf, HEADROOM, 14);
  assert.deepEqual([...buf.subarray(p + 8, p + 12)], [0x40, 0, 0, 0]);
  s.stats[s.base + SEND_SEQ] = 0;
  p = encap(s, buf, HEADROOM, 14);
  assert.deepEqual([...buf.subarray(p + 8, p + 12)], [0, 0, 0, 0]);
  assert.equal(s.ns, 1, 'ns does not advance while send_seq is off');
});

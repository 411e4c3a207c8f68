/**
 * Each kind of bad packet increments exactly the counters the kernel would
 * (docs/protocol.md §2.2–2.9, TV4 a–h) plus our own drop counters, and nothing else:
 * whole slots (session, tunnel, orphan) are compared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decapIp, decapUdp, RX_BAD_COOKIE, RX_BAD_VERSION, RX_CONTROL, RX_DEV_DROP, RX_INVALID, RX_NO_SESSION, RX_OK, RX_OUT_OF_WINDOW, RX_SEQ_REQUIRED, RX_SHORT } from '../../../src/engine/decap.js';
import * as C from '../../../src/engine/stats.js';
import { Table } from '../../../src/engine/table.js';
import { newSlot } from '../../../src/engine/stats.js';
import { loadVector } from '../wire/fixtures.js';
import { assertSlot, Collect, frameN, packet, sessionCfg, setup, tunnelCfg } from './helpers.js';

/** Run one UDP packet at an offset; return the result. */
function udp(r: ReturnType<typeof setup>, bytes: Buffer, sink = new Collect()): number {
  const buf = Buffer.alloc(bytes.length + 9, 0x33);
  bytes.copy(buf, 4);
  return decapUdp(r.table, r.tunnel, buf, 4, bytes.length, 0, sink);
}

function ip(table: Table, bytes: Buffer, sink = new Collect()): number {
  const buf = Buffer.alloc(bytes.length + 9, 0x33);
  bytes.copy(buf, 4);
  return decapIp(table, buf, 4, bytes.length, 0, sink);
}

const orphanOf = (t: Table) => ({ stats: t.orphan, base: 0 });
const ARP_LEN = 42;

test('TV4 a: UDP control (T=1): dropped, RX_CONTROL in the tunnel slot, no session counters', () => {
  const r = setup();
  const sink = new Collect();
  assert.equal(udp(r, Buffer.from('c80300140000000000000000000000000000', 'hex'), sink), RX_CONTROL);
  assertSlot(r.session, {});
  assertSlot(r.tunnel, { [C.RX_CONTROL]: 1 });
  assert.equal(sink.got.length, 0);
});

test('TV4 a: T bit is checked before the version (T=1, Ver=2)', () => {
  const r = setup();
  assert.equal(udp(r, Buffer.from('8002000000000000000007d0000000000000', 'hex')), RX_CONTROL);
  assertSlot(r.tunnel, { [C.RX_CONTROL]: 1 });
});

test('TV4 b: IP control (session id 0): dropped, RX_CONTROL in the orphan slot', () => {
  const r = setup({ encap: 'ip' });
  assert.equal(ip(r.table, Buffer.from('00000000c8030014000000000000000000000000', 'hex')), RX_CONTROL);
  assertSlot(orphanOf(r.table), { [C.RX_CONTROL]: 1 });
  assertSlot(r.tunnel, {});
  assertSlot(r.session, {});
});

test('TV4 c: unknown session: dropped, RX_NO_SESSION only', () => {
  const r = setup();
  const p = packet({ encap: 'udp', sid: 2001, ns: 0 });
  assert.equal(p.readUInt32BE(4), 0x7d1);
  assert.equal(udp(r, p), RX_NO_SESSION);
  assertSlot(r.session, {});
  assertSlot(r.tunnel, { [C.RX_NO_SESSION]: 1 });
});

test('TV4 d: Ver=2 on a known session id: parsed as L2TPv2, no session, no rx_invalid', () => {
  const r = setup();
  assert.equal(udp(r, Buffer.from('00020000000007d0' + '00'.repeat(50), 'hex')), RX_NO_SESSION);
  assertSlot(r.session, {});
  assertSlot(r.tunnel, { [C.RX_NO_SESSION]: 1 });
});

test('other versions (1, 4, 15) after a successful lookup: tunnel rx_invalid', () => {
  for (const ver of [0, 1, 4, 15]) {
    const r = setup();
    const p = packet({ encap: 'udp', sid: 2000, ns: 0, flags: ver });
    assert.equal(udp(r, p), RX_BAD_VERSION, `ver ${ver}`);
    assertSlot(r.session, {});
    assertSlot(r.tunnel, { [C.RX_INVALID]: 1 });
  }
});

test('TV4 e: TV2 bytes with peer_cookie deadbeee: rx_cookie_discards+1, rx_errors+1', () => {
  const r = setup({}, { peerCookie: 'deadbeee' });
  assert.equal(udp(r, loadVector('udp-c4-default').bytes), RX_BAD_COOKIE);
  assertSlot(r.session, { [C.RX_COOKIE_DISCARDS]: 1, [C.RX_ERRORS]: 1 });
  assertSlot(r.tunnel, {});
});

test('cookie mismatch in any byte position of an 8-byte cookie, over IP', () => {
  for (let i = 0; i < 8; i++) {
    const r = setup({ encap: 'ip' }, { peerCookie: '0102030405060708' });
    const p = Buffer.from(loadVector('ip-c8-default').bytes);
    p[4 + i] ^= 0x80;
    assert.equal(ip(r.table, p), RX_BAD_COOKIE, `byte ${i}`);
    assertSlot(r.session, { [C.RX_COOKIE_DISCARDS]: 1, [C.RX_ERRORS]: 1 });
    assertSlot(r.tunnel, {});
    assertSlot(orphanOf(r.table), {});
  }
});

test('TV4 f: TV1 bytes to a default-l2spec session: ff ff ff ff read as S=1 ns=0xffffff → send_seq flips, then out of window', () => {
  const r = setup({}, { l2specType: 'default' });
  assert.equal(udp(r, loadVector('udp-c0-none').bytes), RX_OUT_OF_WINDOW);
  assertSlot(r.session, { [C.SEND_SEQ]: 1, [C.RX_ERRORS]: 1 });
  assertSlot(r.tunnel, {});
});

test('TV4 g: S=0 with seq recv: rx_seq_discards+1, rx_errors+1 per packet', () => {
  const r = setup({}, { peerCookie: 'deadbeef', recvSeq: true });
  const p = Buffer.from('00030000000007d0deadbeef00000000' + loadVector('udp-c0-none').bytes.subarray(8).toString('hex'), 'hex');
  assert.equal(udp(r, p), RX_SEQ_REQUIRED);
  assert.equal(udp(r, p), RX_SEQ_REQUIRED);
  assertSlot(r.session, { [C.RECV_SEQ]: 1, [C.RX_SEQ_DISCARDS]: 2, [C.RX_ERRORS]: 2 });
  assertSlot(r.tunnel, {});
});

test('TV4 h: 13-byte UDP L2TP payload: dropped before lookup; only our RX_SHORT', () => {
  const r = setup();
  assert.equal(udp(r, loadVector('udp-c0-none').bytes.subarray(0, 13)), RX_SHORT);
  assertSlot(r.session, {});
  assertSlot(r.tunnel, { [C.RX_SHORT]: 1 });
  // 14 bytes pass the first check (then: frame of 2 bytes → counted as received, dev drop)
  const r2 = setup({}, { l2specType: 'none' });
  const p = Buffer.from('00030000000007d0' + 'aabbccddeeff', 'hex');
  assert.equal(udp(r2, p), RX_DEV_DROP);
  assertSlot(r2.session, { [C.RX_PACKETS]: 1, [C.RX_BYTES]: 14, [C.RX_DEV_DROPS]: 1 });
  assertSlot(r2.tunnel, { [C.RX_PACKETS]: 1, [C.RX_BYTES]: 14 });
});

test('UDP packet too short for cookie + sublayer: tunnel rx_invalid', () => {
  const r = setup({}, { peerCookie: '0102030405060708' }); // needs 8 + 8 + 4 = 20
  for (const len of [14, 19]) {
    const p = Buffer.alloc(len);
    p.writeUInt32BE(0x00030000, 0);
    p.writeUInt32BE(2000, 4);
    assert.equal(udp(r, p), RX_INVALID);
  }
  assertSlot(r.session, {});
  assertSlot(r.tunnel, { [C.RX_INVALID]: 2 });
});

test('IP: < 4 bytes → orphan RX_SHORT; unknown session → orphan RX_NO_SESSION; too short for cookie → tunnel RX_SHORT', () => {
  const r = setup({ encap: 'ip' }, { peerCookie: 'deadbeef' });
  assert.equal(ip(r.table, Buffer.from('000007', 'hex')), RX_SHORT);
  assert.equal(ip(r.table, packet({ encap: 'ip', sid: 2001, cookie: 'deadbeef', ns: 0 })), RX_NO_SESSION);
  assertSlot(orphanOf(r.table), { [C.RX_SHORT]: 1, [C.RX_NO_SESSION]: 1 });
  assert.equal(ip(r.table, Buffer.from('000007d0deadbeef000000', 'hex')), RX_SHORT); // 11 < 4 + 4 + 4
  assertSlot(r.tunnel, { [C.RX_SHORT]: 1 });
  assertSlot(r.session, {});
  assertSlot(orphanOf(r.table), { [C.RX_SHORT]: 1, [C.RX_NO_SESSION]: 1 });
});

test('frames shorter than 14 bytes are counted as received, then dropped; 14 bytes are delivered', () => {
  const r = setup({ encap: 'ip' }, { l2specType: 'none' });
  const sink = new Collect();
  assert.equal(ip(r.table, packet({ encap: 'ip', sid: 2000, l2spec: false, frame: frameN(0, 13) }), sink), RX_DEV_DROP);
  assert.equal(sink.got.length, 0);
  assert.equal(ip(r.table, packet({ encap: 'ip', sid: 2000, l2spec: false, frame: frameN(0, 14) }), sink), RX_OK);
  assert.equal(sink.got.length, 1);
  assertSlot(r.session, { [C.RX_PACKETS]: 2, [C.RX_BYTES]: 17 + 18, [C.RX_DEV_DROPS]: 1 });
  assertSlot(r.tunnel, { [C.RX_PACKETS]: 2, [C.RX_BYTES]: 17 + 18 });
});

test('good packets: rx_bytes is the L2TP-level length (UDP payload incl. flags word; IP payload)', () => {
  const r = setup({}, { peerCookie: 'deadbeef' });
  assert.equal(udp(r, loadVector('udp-c4-default').bytes), RX_OK);
  assertSlot(r.session, { [C.RX_PACKETS]: 1, [C.RX_BYTES]: 16 + ARP_LEN, [C.SEND_SEQ]: 1 });
  assertSlot(r.tunnel, { [C.RX_PACKETS]: 1, [C.RX_BYTES]: 16 + ARP_LEN });
});

test('tunnel counters sum over sessions; rx_errors never at tunnel level', () => {
  const table = new Table();
  const t = table.addTunnel(tunnelCfg(), newSlot(), 0);
  const s1 = table.addSession(sessionCfg({ sessionId: 1 }), newSlot(), 0);
  const s2 = table.addSession(sessionCfg({ sessionId: 2, peerCookie: 'deadbeef' }), newSlot(), 0);
  const r = { table, tunnel: t, session: s1 };
  udp(r, packet({ encap: 'udp', sid: 1, ns: 0 }));
  udp(r, packet({ encap: 'udp', sid: 2, cookie: 'deadbeef', ns: null }));
  udp(r, packet({ encap: 'udp', sid: 2, cookie: 'deadbeee', ns: null }));
  const len1 = 8 + 4 + 60;
  const len2 = 8 + 4 + 4 + 60;
  assertSlot(s1, { [C.RX_PACKETS]: 1, [C.RX_BYTES]: len1, [C.SEND_SEQ]: 1 });
  assertSlot(s2, { [C.RX_PACKETS]: 1, [C.RX_BYTES]: len2, [C.RX_COOKIE_DISCARDS]: 1, [C.RX_ERRORS]: 1 });
  assertSlot(t, { [C.RX_PACKETS]: 2, [C.RX_BYTES]: len1 + len2 });
});

test('UDP lookup like current kernels: own tunnel first, else the only session with that id; ambiguous → no session', () => {
  const table = new Table();
  const A = table.addTunnel(tunnelCfg({ tunnelId: 1 }), newSlot(), 0);
  const B = table.addTunnel(tunnelCfg({ tunnelId: 2, udpSport: 5001 }), newSlot(), 0);
  const Ct = table.addTunnel(tunnelCfg({ tunnelId: 3, udpSport: 5002 }), newSlot(), 0);
  const sB = table.addSession(sessionCfg({ tunnelId: 2, sessionId: 50 }), newSlot(), 0);
  const sink = new Collect();
  // arrives on A's socket, id 50 exists only in B → B's session, counted on B
  assert.equal(udp({ table, tunnel: A, session: sB }, packet({ encap: 'udp', sid: 50, ns: null }), sink), RX_OK);
  assert.equal(sink.got[0].session, sB);
  assertSlot(B, { [C.RX_PACKETS]: 1, [C.RX_BYTES]: 8 + 4 + 60 });
  assertSlot(A, {});
  // now C also has 50: a packet on A is ambiguous → no session (on A)
  table.addSession(sessionCfg({ tunnelId: 3, sessionId: 50 }), newSlot(), 0);
  assert.equal(udp({ table, tunnel: A, session: sB }, packet({ encap: 'udp', sid: 50, ns: null }), sink), RX_NO_SESSION);
  assertSlot(A, { [C.RX_NO_SESSION]: 1 });
  // on C's own socket → C's session
  assert.equal(udp({ table, tunnel: Ct, session: sB }, packet({ encap: 'udp', sid: 50, ns: null }), sink), RX_OK);
  assert.equal(sink.got[1].session.tunnel, Ct);
});

test('IP lookup is global over IP-encap sessions only', () => {
  const table = new Table();
  table.addTunnel(tunnelCfg({ tunnelId: 1 }), newSlot(), 0);
  table.addTunnel(tunnelCfg({ tunnelId: 2, encap: 'ip' }), newSlot(), 0);
  table.addSession(sessionCfg({ tunnelId: 1, sessionId: 7 }), newSlot(), 0);
  const sIp = table.addSession(sessionCfg({ tunnelId: 2, sessionId: 8 }), newSlot(), 0);
  assert.equal(ip(table, packet({ encap: 'ip', sid: 7, ns: null })), RX_NO_SESSION, 'UDP session not reachable over IP');
  const sink = new Collect();
  assert.equal(ip(table, packet({ encap: 'ip', sid: 8, ns: null }), sink), RX_OK);
  assert.equal(sink.got[0].session, sIp);
});

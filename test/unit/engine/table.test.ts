/** Kernel id rules (docs/protocol.md §5) and table bookkeeping. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Table } from '../../../src/engine/table.js';
import { Session } from '../../../src/engine/session.js';
import { Tunnel } from '../../../src/engine/tunnel.js';
import { L2tpError } from '../../../src/errors.js';
import { newSlot, RECV_SEQ, SEND_SEQ, SLOT_SIZE } from '../../../src/engine/stats.js';
import { sessionCfg, tunnelCfg } from './helpers.js';

const errno = (e: string) => (err: unknown) => err instanceof L2tpError && err.code === 'KERNEL' && err.errno === e;

function twoTunnels(encapA: 'udp' | 'ip', encapB: 'udp' | 'ip'): Table {
  const t = new Table();
  t.addTunnel(tunnelCfg({ tunnelId: 1, encap: encapA }));
  t.addTunnel(tunnelCfg({ tunnelId: 2, encap: encapB, udpSport: 5001 }));
  return t;
}

test('tunnel ids are unique per namespace: duplicate → EEXIST, nothing changed', () => {
  const t = new Table();
  t.addTunnel(tunnelCfg({ tunnelId: 9 }));
  assert.throws(() => t.checkTunnel(tunnelCfg({ tunnelId: 9, encap: 'ip' })), errno('EEXIST'));
  assert.throws(() => t.addTunnel(tunnelCfg({ tunnelId: 9 })), errno('EEXIST'));
  assert.equal(t.tunnelCount, 1);
  assert.doesNotThrow(() => t.checkTunnel(tunnelCfg({ tunnelId: 10 })));
  assert.equal(t.tunnelCount, 1, 'check does not add');
});

test('session in a missing tunnel → ENODEV; duplicate id in one tunnel → EEXIST', () => {
  const t = twoTunnels('udp', 'udp');
  assert.throws(() => t.addSession(sessionCfg({ tunnelId: 3, sessionId: 1 })), errno('ENODEV'));
  t.addSession(sessionCfg({ tunnelId: 1, sessionId: 1 }));
  assert.throws(() => t.checkSession(sessionCfg({ tunnelId: 1, sessionId: 1 })), errno('EEXIST'));
  assert.throws(() => t.addSession(sessionCfg({ tunnelId: 1, sessionId: 1 })), errno('EEXIST'));
  assert.equal(t.sessions().length, 1);
});

test('UDP: the same session id may be used in different UDP tunnels', () => {
  const t = twoTunnels('udp', 'udp');
  t.addSession(sessionCfg({ tunnelId: 1, sessionId: 5 }));
  assert.doesNotThrow(() => t.addSession(sessionCfg({ tunnelId: 2, sessionId: 5 })));
  assert.equal(t.sessions().length, 2);
});

test('IP encap: a new IP session collides with any session with that id (UDP or IP)', () => {
  const t = twoTunnels('udp', 'ip');
  t.addSession(sessionCfg({ tunnelId: 1, sessionId: 5 }));
  assert.throws(() => t.addSession(sessionCfg({ tunnelId: 2, sessionId: 5 })), errno('EEXIST'));
  t.addTunnel(tunnelCfg({ tunnelId: 3, encap: 'ip' }));
  t.addSession(sessionCfg({ tunnelId: 2, sessionId: 6 }));
  assert.throws(() => t.addSession(sessionCfg({ tunnelId: 3, sessionId: 6 })), errno('EEXIST'));
  assert.equal(t.sessions().length, 2);
});

test('IP encap: a new UDP session collides with an existing IP-encap session', () => {
  const t = twoTunnels('ip', 'udp');
  t.addSession(sessionCfg({ tunnelId: 1, sessionId: 5 }));
  assert.throws(() => t.addSession(sessionCfg({ tunnelId: 2, sessionId: 5 })), errno('EEXIST'));
  assert.doesNotThrow(() => t.addSession(sessionCfg({ tunnelId: 2, sessionId: 6 })));
});

test('removal: missing → ENODEV; ids become free again; lookups forget the session', () => {
  const t = twoTunnels('ip', 'udp');
  const s = t.addSession(sessionCfg({ tunnelId: 1, sessionId: 5 }));
  assert.equal(t.lookupIp(5), s);
  assert.throws(() => t.removeSession(1, 6), errno('ENODEV'));
  assert.throws(() => t.removeSession(7, 5), errno('ENODEV'));
  assert.equal(t.removeSession(1, 5), s);
  assert.equal(t.lookupIp(5), undefined);
  // the UDP lookup's one-entry cache forgets a removed session
  const u = t.getTunnel(2)!;
  const su = t.addSession(sessionCfg({ tunnelId: 2, sessionId: 9 }));
  assert.equal(t.lookupUdp(u, 9), su);
  assert.equal(t.lookupUdp(u, 9), su, 'cached');
  t.removeSession(2, 9);
  assert.equal(t.lookupUdp(u, 9), undefined);
  assert.equal(t.getSession(1, 5), undefined);
  assert.doesNotThrow(() => t.addSession(sessionCfg({ tunnelId: 2, sessionId: 5 })));
  assert.throws(() => t.removeTunnel(3), errno('ENODEV'));
});

test('removeTunnel removes its sessions and returns them in id order', () => {
  const t = twoTunnels('udp', 'udp');
  for (const sid of [30, 10, 20]) t.addSession(sessionCfg({ tunnelId: 1, sessionId: sid }));
  t.addSession(sessionCfg({ tunnelId: 2, sessionId: 10 }));
  const removed = t.removeTunnel(1);
  assert.deepEqual(removed.map((s) => s.sessionId), [10, 20, 30]);
  assert.equal(t.getTunnel(1), undefined);
  assert.deepEqual(t.sessions().map((s) => [s.tunnel.tunnelId, s.sessionId]), [[2, 10]]);
  assert.throws(() => t.addSession(sessionCfg({ tunnelId: 1, sessionId: 40 })), errno('ENODEV'));
  // tunnel 2's session 10 is now the only one: found from any tunnel
  const t3 = t.addTunnel(tunnelCfg({ tunnelId: 3, udpSport: 5003 }));
  assert.equal(t.lookupUdp(t3, 10)?.tunnel.tunnelId, 2);
});

test('tunnels() ascending; sessions() grouped by tunnel, then session id (unsigned order)', () => {
  const t = new Table();
  for (const id of [0xffffffff, 3, 100]) t.addTunnel(tunnelCfg({ tunnelId: id, udpSport: id & 0xffff }));
  t.addSession(sessionCfg({ tunnelId: 100, sessionId: 0x80000000 }));
  t.addSession(sessionCfg({ tunnelId: 100, sessionId: 2 }));
  t.addSession(sessionCfg({ tunnelId: 3, sessionId: 9 }));
  t.addSession(sessionCfg({ tunnelId: 0xffffffff, sessionId: 1 }));
  assert.deepEqual(t.tunnels().map((x) => x.tunnelId), [3, 100, 0xffffffff]);
  assert.deepEqual(t.sessions().map((s) => [s.tunnel.tunnelId, s.sessionId]), [[3, 9], [100, 2], [100, 0x80000000], [0xffffffff, 1]]);
});

test('prebuilt Tunnel/Session objects with backend-assigned slots', () => {
  const stats = new Float64Array(4 * SLOT_SIZE);
  const t = new Table(stats.subarray(0, SLOT_SIZE));
  const tun = new Tunnel(tunnelCfg({ tunnelId: 4 }), stats, SLOT_SIZE);
  assert.equal(t.addTunnel(tun), tun);
  const s = new Session(sessionCfg({ tunnelId: 4, sessionId: 1, sendSeq: true, recvSeq: true }), tun, stats, 2 * SLOT_SIZE);
  assert.equal(stats[2 * SLOT_SIZE + SEND_SEQ], 1, 'constructor initialises send_seq');
  assert.equal(stats[2 * SLOT_SIZE + RECV_SEQ], 1);
  assert.equal(t.addSession(s), s);
  assert.equal(t.getSession(4, 1), s);
  assert.equal(s.dev, -1);
  assert.equal(s.ctx, null);
  const other = new Tunnel(tunnelCfg({ tunnelId: 4 }), newSlot(), 0);
  assert.throws(() => t.addSession(new Session(sessionCfg({ tunnelId: 4, sessionId: 2 }), other, newSlot(), 0)), errno('ENODEV'));
});

test('Session preconverts cookies and layouts', () => {
  const t = new Table();
  t.addTunnel(tunnelCfg({ tunnelId: 1, encap: 'ip' }));
  const s = t.addSession(sessionCfg({ tunnelId: 1, sessionId: 3, cookie: 'DEADBEEF', peerCookie: '0102030405060708', l2specType: 'none' }));
  assert.deepEqual([...s.cookie], [0xde, 0xad, 0xbe, 0xef]);
  assert.equal(s.peerCookie.length, 8);
  assert.deepEqual(s.tx, { hdrLen: 8, cookieOff: 4, cookieLen: 4, l2specOff: -1 });
  assert.deepEqual(s.rx, { hdrLen: 12, cookieOff: 4, cookieLen: 8, l2specOff: -1 });
  assert.equal(s.reorderSkip, 1);
  assert.equal(s.nr, 0);
  assert.equal(s.ns, 0);
});

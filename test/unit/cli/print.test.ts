import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { formatSessions, formatTunnels, jsonArray, jsonString } from '../../../src/cli/print.js';
import type { SessionInfo, TunnelInfo } from '../../../src/control/protocol.js';
import { sessionInfo, tunnelInfo } from '../../../support/fake-daemon.js';

// dist/test/unit/cli/ → repository root
const FIXTURES = new URL('../../../../test/fixtures/cli/', import.meta.url);
const golden = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');

/** A tunnel with every field the output depends on given (ports default to 0). */
function tunnel(t: Partial<TunnelInfo> & Pick<TunnelInfo, 'tunnel_id' | 'peer_tunnel_id' | 'local' | 'remote'>): TunnelInfo {
  return tunnelInfo({ udp_sport: 0, udp_dport: 0, ...t });
}

/** A session with every id and its interface name given. */
function session(s: Partial<SessionInfo> & Pick<SessionInfo, 'tunnel_id' | 'session_id' | 'peer_session_id' | 'peer_tunnel_id' | 'ifname'>): SessionInfo {
  return sessionInfo(s);
}

/** The configurations of test/fixtures/cli/tunnels.*. */
const TUNNELS: TunnelInfo[] = [
  tunnel({ tunnel_id: 1, peer_tunnel_id: 2, encap: 'ip', local: '192.0.2.1', remote: '192.0.2.2' }),
  tunnel({ tunnel_id: 6, peer_tunnel_id: 60, local: 'fd00::1', remote: 'fd00::2', udp_sport: 6000, udp_dport: 6001, udp6_csum_tx: true, udp6_csum_rx: false }),
  tunnel({ tunnel_id: 7, peer_tunnel_id: 70, local: 'fd00::1', remote: 'fd00::2', udp_sport: 7000, udp_dport: 7001, udp6_csum_tx: false, udp6_csum_rx: true }),
  tunnel({ tunnel_id: 8, peer_tunnel_id: 80, local: 'fd00::1', remote: 'fd00::2', udp_sport: 8000, udp_dport: 8001, udp6_csum_tx: false, udp6_csum_rx: false }),
  tunnel({ tunnel_id: 10, peer_tunnel_id: 20, encap: 'ip', local: '2001:db8::1', remote: '2001:db8::2' }),
  tunnel({ tunnel_id: 3000, peer_tunnel_id: 4000, local: '1.2.3.4', remote: '5.6.7.8', udp_sport: 5000, udp_dport: 6000 }),
  tunnel({ tunnel_id: 3001, peer_tunnel_id: 4001, local: '10.0.0.1', remote: '10.0.0.2', udp_sport: 1701, udp_dport: 1701, udp_csum: true }),
  tunnel({ tunnel_id: 4294967295, peer_tunnel_id: 1, local: 'fd00::1', remote: 'fd00::2', udp_sport: 65535, udp_dport: 1 }),
];

/** The configurations of test/fixtures/cli/sessions.*. */
const SESSIONS: SessionInfo[] = [
  session({ tunnel_id: 3000, session_id: 1000, peer_session_id: 2000, peer_tunnel_id: 4000, ifname: 'l2tpeth0', cookie: '01020304', peer_cookie: '0a0b0c0d', send_seq: true, recv_seq: true }),
  session({ tunnel_id: 3000, session_id: 1001, peer_session_id: 2001, peer_tunnel_id: 4000, ifname: 'l2tpeth1' }),
  session({ tunnel_id: 3001, session_id: 1, peer_session_id: 1, peer_tunnel_id: 4001, ifname: 'site-a', send_seq: true }),
  session({ tunnel_id: 3001, session_id: 2, peer_session_id: 7, peer_tunnel_id: 4001, ifname: 'l2tpeth2', peer_cookie: '0102030405060708', l2spec_type: 'none' }),
  session({ tunnel_id: 3001, session_id: 3, peer_session_id: 8, peer_tunnel_id: 4001, ifname: 'l2tpeth3', cookie: 'a1b2c3d4e5f60718', recv_seq: true }),
  session({ tunnel_id: 4294967295, session_id: 4294967295, peer_session_id: 4294967295, peer_tunnel_id: 1, ifname: 'l2tpeth4', cookie: 'deadbeef', reorder_timeout: 100, send_seq: true }),
];

const TEXT = { json: false, pretty: false };
const JSON_COMPACT = { json: true, pretty: false };
const JSON_PRETTY = { json: true, pretty: true };

test('show tunnel: protocol.md §4.7 examples, literally', () => {
  assert.equal(
    formatTunnels([TUNNELS[5]], TEXT),
    'Tunnel 3000, encap UDP\n  From 1.2.3.4 to 5.6.7.8\n  Peer tunnel 4000\n  UDP source / dest ports: 5000/6000\n  UDP checksum: disabled\n',
  );
  assert.equal(formatTunnels([TUNNELS[4]], TEXT), 'Tunnel 10, encap IP\n  From 2001:db8::1 to 2001:db8::2\n  Peer tunnel 20\n');
  assert.equal(
    formatTunnels([TUNNELS[5]], JSON_COMPACT),
    '[{"tunnel_id":3000,"encap":"UDP","local":"1.2.3.4","peer":"5.6.7.8","peer_tunnel":4000,"local_port":5000,"peer_port":6000,"checksum":false}]\n',
  );
  assert.equal(
    formatTunnels([TUNNELS[0], TUNNELS[5]], JSON_PRETTY),
    `[ {
        "tunnel_id": 1,
        "encap": "IP",
        "local": "192.0.2.1",
        "peer": "192.0.2.2",
        "peer_tunnel": 2
    },{
        "tunnel_id": 3000,
        "encap": "UDP",
        "local": "1.2.3.4",
        "peer": "5.6.7.8",
        "peer_tunnel": 4000,
        "local_port": 5000,
        "peer_port": 6000,
        "checksum": false
    } ]
`,
  );
});

test('show tunnel: UDP over IPv4 with checksums, UDP over IPv6 in all four checksum states', () => {
  const v4on = formatTunnels([TUNNELS[6]], TEXT);
  assert.match(v4on, /\n {2}UDP checksum: enabled\n$/);
  const state = (tx: boolean, rx: boolean): string =>
    formatTunnels([{ ...TUNNELS[7], udp6_csum_tx: tx, udp6_csum_rx: rx }], TEXT).split('\n').at(-2) ?? '';
  assert.equal(state(true, true), '  UDP checksum: enabled');
  assert.equal(state(true, false), '  UDP checksum: tx');
  assert.equal(state(false, true), '  UDP checksum: rx');
  assert.equal(state(false, false), '  UDP checksum: disabled');
  // IPv6 checksum flags never show up for IPv4 tunnels and vice versa.
  assert.doesNotMatch(formatTunnels([TUNNELS[5]], JSON_COMPACT), /checksum_/);
  assert.doesNotMatch(formatTunnels([TUNNELS[7]], JSON_COMPACT), /"checksum":/);
  // An encap the printer does not know is "??" without the UDP lines.
  const odd = { ...TUNNELS[5], encap: 'l2tpv2' as unknown as 'udp' };
  assert.equal(formatTunnels([odd], TEXT), 'Tunnel 3000, encap ??\n  From 1.2.3.4 to 5.6.7.8\n  Peer tunnel 4000\n');
});

test('show tunnel: golden text, JSON and pretty JSON (test/fixtures/cli/tunnels.*)', () => {
  assert.equal(formatTunnels(TUNNELS, TEXT), golden('tunnels.txt'));
  assert.equal(formatTunnels(TUNNELS, JSON_COMPACT), golden('tunnels.json'));
  assert.equal(formatTunnels(TUNNELS, JSON_PRETTY), golden('tunnels.pretty.json'));
  assert.deepEqual(JSON.parse(golden('tunnels.json')), JSON.parse(golden('tunnels.pretty.json')));
});

test('show session: protocol.md §4.8 examples, literally', () => {
  const base = { tunnel_id: 3000, session_id: 1000, peer_session_id: 2000, peer_tunnel_id: 4000, ifname: 'l2tpeth0' };
  assert.equal(
    formatSessions([session(base)], TEXT),
    'Session 1000 in tunnel 3000\n  Peer session 2000, tunnel 4000\n  interface name: l2tpeth0\n  offset 0, peer offset 0\n\n',
  );
  assert.equal(
    formatSessions([session({ ...base, cookie: '01020304', peer_cookie: '0a0b0c0d', send_seq: true, recv_seq: true })], TEXT),
    'Session 1000 in tunnel 3000\n  Peer session 2000, tunnel 4000\n  interface name: l2tpeth0\n  offset 0, peer offset 0\n' +
      '  cookie 01020304  peer cookie 0a0b0c0d\n  sequence numbering: send recv\n',
  );
  assert.equal(
    formatSessions([session({ tunnel_id: 1, session_id: 1, peer_session_id: 1, peer_tunnel_id: 1, ifname: 'l2tpeth0', send_seq: true })], TEXT),
    'Session 1 in tunnel 1\n  Peer session 1, tunnel 1\n  interface name: l2tpeth0\n  offset 0, peer offset 0\n\n  sequence numbering: send\n',
  );
  assert.equal(
    formatSessions([session({ ...base, peer_cookie: '0102030405060708' })], TEXT).split('\n').slice(4).join('\n'),
    '  peer cookie 0102030405060708\n',
  );
  assert.equal(
    formatSessions([session({ ...base, cookie: '01020304', peer_cookie: '0a0b0c0d', send_seq: true, recv_seq: true })], JSON_COMPACT),
    '[{"session_id":1000,"tunnel_id":3000,"peer_session_id":2000,"peer_tunnel_id":4000,"interface":"l2tpeth0","cookie":"01020304","peer_cookie":"0a0b0c0d","send_seq":null,"recv_seq":null}]\n',
  );
});

test('show session: sequencing and cookie combinations', () => {
  const base = { tunnel_id: 5, session_id: 6, peer_session_id: 7, peer_tunnel_id: 8, ifname: 'x' };
  const tail = (s: Partial<SessionInfo>): string =>
    formatSessions([session({ ...base, ...s })], TEXT).split('  offset 0, peer offset 0\n')[1];
  assert.equal(tail({}), '\n');
  assert.equal(tail({ recv_seq: true }), '\n  sequence numbering: recv\n');
  assert.equal(tail({ send_seq: true, recv_seq: true }), '\n  sequence numbering: send recv\n');
  assert.equal(tail({ cookie: 'deadbeef' }), '  cookie deadbeef\n');
  assert.equal(tail({ cookie: '0102030405060708', peer_cookie: '1112131415161718' }), '  cookie 0102030405060708  peer cookie 1112131415161718\n');
  assert.equal(tail({ peer_cookie: 'a0a1a2a3', send_seq: true }), '  peer cookie a0a1a2a3\n  sequence numbering: send\n');
  assert.equal(tail({ reorder_timeout: 250 }), '  reorder timeout: 250\n');
  // No interface name reported: the line is left out.
  assert.equal(formatSessions([session({ ...base, ifname: '' })], TEXT), 'Session 6 in tunnel 5\n  Peer session 7, tunnel 8\n  offset 0, peer offset 0\n\n');
  assert.equal(formatSessions([session({ ...base, ifname: '' })], JSON_COMPACT), '[{"session_id":6,"tunnel_id":5,"peer_session_id":7,"peer_tunnel_id":8}]\n');
  // l2spec_type and statistics are never printed.
  assert.equal(
    formatSessions([session({ ...base, l2spec_type: 'none', stats: { rx_packets: 5 } })], TEXT),
    formatSessions([session(base)], TEXT),
  );
});

test('show session: golden text, JSON and pretty JSON, each session with its own cookies', () => {
  assert.equal(formatSessions(SESSIONS, TEXT), golden('sessions.txt'));
  assert.equal(formatSessions(SESSIONS, JSON_COMPACT), golden('sessions.json'));
  assert.equal(formatSessions(SESSIONS, JSON_PRETTY), golden('sessions.pretty.json'));
  assert.deepEqual(JSON.parse(golden('sessions.json')), JSON.parse(golden('sessions.pretty.json')));
  // Session 1001 follows one with cookies and shows none (no iproute2 stale-field leak).
  assert.match(golden('sessions.txt'), /interface name: l2tpeth1\n {2}offset 0, peer offset 0\n\nSession 1 /);
});

test('empty lists: nothing, [] and [ ]', () => {
  assert.equal(formatTunnels([], TEXT), '');
  assert.equal(formatSessions([], TEXT), '');
  assert.equal(formatTunnels([], JSON_COMPACT), '[]\n');
  assert.equal(formatSessions([], JSON_COMPACT), '[]\n');
  assert.equal(formatTunnels([], JSON_PRETTY), '[ ]\n');
  assert.equal(formatSessions([], JSON_PRETTY), '[ ]\n');
  // -p without -j changes nothing in text mode.
  assert.equal(formatTunnels(TUNNELS, { json: false, pretty: true }), golden('tunnels.txt'));
});

test('-o (oneline): print_nl breaks become backslashes, literal newlines stay', () => {
  assert.equal(
    formatTunnels([TUNNELS[5]], { json: false, pretty: false, oneline: true }),
    'Tunnel 3000, encap UDP\\  From 1.2.3.4 to 5.6.7.8\\  Peer tunnel 4000\\  UDP source / dest ports: 5000/6000\\  UDP checksum: disabled\n',
  );
  assert.equal(
    formatSessions([SESSIONS[2]], { json: false, pretty: false, oneline: true }),
    'Session 1 in tunnel 3001\\  Peer session 1, tunnel 4001\\  interface name: site-a\\  offset 0, peer offset 0\n\\  sequence numbering: send\n',
  );
});

test('JSON strings are escaped like iproute2 json_writer', () => {
  assert.equal(jsonString('plain'), '"plain"');
  assert.equal(jsonString('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(jsonString('\t\n\r\f\b'), '"\\t\\n\\r\\f\\b"');
  assert.equal(jsonString('\u0001\u001b\u007f'), '"\\u0001\\u001b\\u007f"');
  assert.equal(jsonString('/\u00e9\u20ac'), '"/\u00e9\u20ac"', 'non-ASCII passes through, / is not escaped');
  assert.equal(jsonArray([[['k"', 'v\n']]], false), '[{"k\\"":"v\\n"}]\n');
  assert.equal(
    formatSessions([session({ tunnel_id: 1, session_id: 2, peer_session_id: 3, peer_tunnel_id: 4, ifname: 'a"\u0007' })], JSON_COMPACT),
    '[{"session_id":2,"tunnel_id":1,"peer_session_id":3,"peer_tunnel_id":4,"interface":"a\\"\\u0007"}]\n',
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressFamily, ntopIPv6, ptonIPv6 } from '../../../src/wire/address.js';
import { LineFramer, MAX_LINE } from '../../../src/control/framing.js';
import { checkSessionList, checkTunnelList, parseReply, validIfname, validateRequest } from '../../../src/control/validate.js';
import { L2tpError } from '../../../src/errors.js';
import { PROTOCOL_VERSION } from '../../../src/control/protocol.js';
import { tunnelConfigFrom } from '../../../src/control/handlers.js';
import { addressBytes, formatAddress, getAddr, parseAddress } from '../../../src/wire/address.js';

const tunnel = {
  tunnel_id: 3000,
  peer_tunnel_id: 4000,
  encap: 'udp',
  local: '1.2.3.4',
  remote: '5.6.7.8',
  udp_sport: 5000,
  udp_dport: 6000,
  udp_csum: false,
  udp6_csum_tx: true,
  udp6_csum_rx: true,
};

function rejects(obj: unknown, pattern: RegExp): void {
  assert.throws(
    () => validateRequest(obj),
    (e: unknown) => e instanceof L2tpError && e.code === 'PROTOCOL' && pattern.test(e.message),
    JSON.stringify(obj),
  );
}

test('validateRequest accepts what the CLI sends and fills defaults', () => {
  assert.deepEqual(validateRequest({ id: 1, op: 'tunnel_create', attrs: tunnel }), { id: 1, version: 1, op: 'tunnel_create', attrs: tunnel });
  assert.deepEqual(
    validateRequest({ id: 2, op: 'tunnel_create', attrs: { tunnel_id: 1, peer_tunnel_id: 2, local: '::1', remote: '2001:db8::2' } }),
    {
      id: 2,
      version: 1,
      op: 'tunnel_create',
      attrs: {
        tunnel_id: 1,
        peer_tunnel_id: 2,
        encap: 'udp',
        local: '::1',
        remote: '2001:db8::2',
        udp_sport: 0,
        udp_dport: 0,
        udp6_csum_tx: true,
        udp6_csum_rx: true,
      },
    },
  );
  assert.deepEqual(
    validateRequest({ id: 3, op: 'session_create', attrs: { tunnel_id: 1, session_id: 2, peer_session_id: 3, cookie: 'DEADBEEF', name: 'l2tp-x' } }),
    {
      id: 3,
      version: 1,
      op: 'session_create',
      attrs: { tunnel_id: 1, session_id: 2, peer_session_id: 3, name: 'l2tp-x', cookie: 'deadbeef', l2spec_type: 'default', send_seq: false, recv_seq: false },
    },
  );
  assert.deepEqual(validateRequest({ id: 4, op: 'session_delete', attrs: { tunnel_id: 0, session_id: 5 } }).attrs, { tunnel_id: 0, session_id: 5 });
  assert.deepEqual(validateRequest({ id: 5, op: 'tunnel_get', attrs: {} }), { id: 5, version: 1, op: 'tunnel_get', attrs: {} });
  assert.deepEqual(validateRequest({ id: 6, op: 'status' }), { id: 6, version: 1, op: 'status', attrs: {} });
});

test('validateRequest rejects every malformed request with PROTOCOL', () => {
  rejects(null, /object/);
  rejects([1], /object/);
  rejects('x', /object/);
  rejects({ op: 'status', attrs: {} }, /id/);
  rejects({ id: -1, op: 'status', attrs: {} }, /id/);
  rejects({ id: 1.5, op: 'status', attrs: {} }, /id/);
  rejects({ id: '1', op: 'status', attrs: {} }, /id/);
  rejects({ id: 1, op: 'reboot', attrs: {} }, /unknown op/);
  rejects({ id: 1, op: 'toString', attrs: {} }, /unknown op/);
  rejects({ id: 1, op: 'status', attrs: {}, extra: 1 }, /unknown request field/);
  rejects({ id: 1, op: 'status', attrs: [] }, /attrs/);
  rejects({ id: 1, op: 'tunnel_get', attrs: { tunnel_id: 1 } }, /unknown attribute/);
  rejects({ id: 1, op: 'tunnel_create', attrs: { ...tunnel, mtu: 1400 } }, /unknown attribute "mtu"/);
  const bad: Array<[string, unknown]> = [
    ['tunnel_id', 0],
    ['tunnel_id', 4294967296],
    ['tunnel_id', '5'],
    ['tunnel_id', 1.5],
    ['peer_tunnel_id', -1],
    ['encap', 'UDP'],
    ['local', '10.1'],
    ['local', '1.2.3.4.5'],
    ['remote', 'fe80::1%eth0'],
    ['remote', 5],
    ['udp_sport', 65536],
    ['udp_csum', 1],
    ['udp6_csum_rx', 'on'],
  ];
  for (const [k, v] of bad) rejects({ id: 1, op: 'tunnel_create', attrs: { ...tunnel, [k]: v } }, new RegExp(`"${k}"`));
  const { local: _l, ...noLocal } = tunnel;
  rejects({ id: 1, op: 'tunnel_create', attrs: noLocal }, /"local" is required/);
  const session = { tunnel_id: 1, session_id: 2, peer_session_id: 3 };
  const badS: Array<[string, unknown]> = [
    ['session_id', 0],
    ['name', ''],
    ['name', 'a/b'],
    ['name', 'a b'],
    ['name', '0123456789abcdef'],
    ['name', '..'],
    ['cookie', '0102'],
    ['cookie', 'zz020304'],
    ['peer_cookie', 12345678],
    ['l2spec_type', 'NONE'],
    ['send_seq', 'yes'],
    ['reorder_timeout', -1],
  ];
  for (const [k, v] of badS) rejects({ id: 1, op: 'session_create', attrs: { ...session, [k]: v } }, new RegExp(`"${k}"`));
});

test('LineFramer: lines across chunks, several per chunk, UTF-8 split, size limit', () => {
  const lines: string[] = [];
  let oversize = 0;
  const f = new LineFramer((l) => lines.push(l), () => oversize++, 10);
  f.push(Buffer.from('ab'));
  f.push(Buffer.from('c\nde\n\nf'));
  assert.deepEqual(lines, ['abc', 'de', '']);
  assert.equal(f.pending, 1);
  const e = Buffer.from('\u00e9\n');
  f.push(e.subarray(0, 1));
  f.push(e.subarray(1));
  assert.deepEqual(lines, ['abc', 'de', '', 'f\u00e9']);
  f.push('0123456789\n'); // exactly the limit
  assert.equal(lines.at(-1), '0123456789');
  assert.equal(oversize, 0);
  f.push('0123456789A'); // one byte over, no newline yet: reported at once
  assert.equal(oversize, 1);
  assert.equal(f.pending, 0);
  f.push('more junk without end');
  f.push('still\nok\n');
  assert.equal(oversize, 1, 'reported once per line');
  assert.deepEqual(lines.slice(-1), ['ok']);
  f.push('0123456789AB\nx\n'); // oversize line complete in one chunk
  assert.equal(oversize, 2);
  assert.equal(lines.at(-1), 'x');
  assert.equal(MAX_LINE, 65536);
});

test('parseReply and result checks', () => {
  assert.deepEqual(parseReply({ id: 1, ok: true, result: { ifname: 'l2tpeth0' } }), { id: 1, ok: true, result: { ifname: 'l2tpeth0' } });
  assert.deepEqual(parseReply({ id: null, ok: false, error: { code: 'PROTOCOL', message: 'bad' } }), {
    id: null,
    ok: false,
    error: { code: 'PROTOCOL', message: 'bad' },
  });
  assert.deepEqual(parseReply({ id: 2, ok: false, error: { code: 'KERNEL', errno: 'EEXIST', message: 'File exists' } }).ok, false);
  assert.deepEqual(parseReply({ id: 2, ok: false, error: { code: 'WHATEVER', message: 'm' } }), {
    id: 2,
    ok: false,
    error: { code: 'DAEMON', message: 'm' },
  });
  assert.throws(() => parseReply({ id: 1, ok: 'yes' }), L2tpError);
  assert.throws(() => parseReply({ id: 1, ok: false }), L2tpError);
  assert.throws(() => parseReply({ ok: true, result: 1 }), L2tpError);
  assert.throws(() => checkTunnelList({ tunnels: [{ tunnel_id: 1 }] }), /field/);
  assert.throws(() => checkSessionList({}), /sessions/);
  assert.deepEqual(checkTunnelList({ tunnels: [] }), []);
});

test('inet_pton / inet_ntop for IPv6 follow glibc', () => {
  const round: Array<[string, string]> = [
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['0:0:1:0:0:0:0:0', '0:0:1::'],
    ['1:0:2:0:3:0:4:0', '1:0:2:0:3:0:4:0'],
    ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ['::10.0.0.1', '::10.0.0.1'],
    ['::1:10.0.0.1', '::1:a00:1'],
    ['ABCD:EF01:2345:6789:ABCD:EF01:2345:6789', 'abcd:ef01:2345:6789:abcd:ef01:2345:6789'],
  ];
  for (const [a, b] of round) {
    const bytes = ptonIPv6(a);
    assert.ok(bytes, a);
    assert.equal(ntopIPv6(bytes), b, a);
  }
  for (const s of ['', ':', ':::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '::ffff:1.2.3.4.5', 'g::1', '1::2%3'])
    assert.equal(ptonIPv6(s), null, s);
  assert.equal(addressFamily('1.2.3.4'), 4);
  assert.equal(addressFamily('01.2.3.4'), 0);
  assert.equal(addressFamily('::'), 6);
});

test('interface names: iproute2 check_ifname', () => {
  for (const n of ['l2tpeth0', 'a', '012345678901234', 'a.b', 'x:y', '\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9a']) assert.equal(validIfname(n), true, n);
  for (const n of ['', '.', '..', 'a/b', 'a b', 'a\tb', 'a\nb', '0123456789abcdef', '\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9'])
    assert.equal(validIfname(n), false, JSON.stringify(n));
});

test('version: absent means 1; a version the daemon does not speak is refused with EPROTONOSUPPORT', () => {
  assert.equal(validateRequest({ id: 1, op: 'hello' }).version, 1);
  assert.equal(validateRequest({ id: 1, version: PROTOCOL_VERSION, op: 'status', attrs: {} }).version, PROTOCOL_VERSION);
  for (const v of [0, -1, 1.5, '1', null]) rejects({ id: 1, version: v, op: 'status' }, /"version" must be a positive integer/);
  assert.throws(
    () => validateRequest({ id: 1, version: PROTOCOL_VERSION + 1, op: 'status' }),
    (e: unknown) => e instanceof L2tpError && e.code === 'PROTOCOL' && e.errno === 'EPROTONOSUPPORT' && /not supported/.test(e.message),
  );
});

test('one address module: inet_pton for the protocol, get_addr for the CLI, no zone ids, glibc output', () => {
  // The protocol (and the daemon) take inet_pton text only.
  for (const s of ['10.1', '0x0a.1.2.3', '167772161', '010.1.2.3', 'fe80::1%eth0', '[::1]', ' 1.2.3.4']) {
    assert.equal(parseAddress(s), null, s);
    rejects({ id: 1, op: 'tunnel_create', attrs: { ...tunnel, local: s } }, /"local"/);
  }
  // The CLI reads what iproute2 reads: `10.1` is 10.1.0.0 (ipaddr.js said 10.0.0.1).
  assert.deepEqual(getAddr('10.1'), { family: 4, text: '10.1.0.0' });
  assert.deepEqual(getAddr('010.1.2.3'), { family: 4, text: '8.1.2.3' });
  assert.equal(getAddr('fe80::1%eth0'), null);
  // The daemon folds IPv4-mapped addresses; inet_ntop prints IPv4-compatible ones dotted (ipaddr.js: ::ffff:102:304).
  assert.deepEqual(parseAddress('::ffff:1.2.3.4'), { family: 4, text: '1.2.3.4', bytes: Uint8Array.from([1, 2, 3, 4]) });
  assert.equal(parseAddress('::1.2.3.4')?.text, '::1.2.3.4');
  assert.equal(parseAddress('2001:DB8:0:0:0:0:0:1')?.text, '2001:db8::1');
  assert.equal(formatAddress(addressBytes('::1.2.3.4')), '::1.2.3.4');
  assert.deepEqual([...addressBytes('192.0.2.1')], [192, 0, 2, 1]);
  assert.throws(() => addressBytes('10.1'), TypeError);
  assert.throws(() => formatAddress(new Uint8Array(5)), TypeError);
});

test("the daemon keeps IPv4-compatible IPv6 addresses as IPv6 and folds only IPv4-mapped ones (ipaddr.js folded both)", () => {
  const attrs = { tunnel_id: 1, peer_tunnel_id: 2, encap: 'udp', udp_sport: 1, udp_dport: 2 };
  const compat = tunnelConfigFrom({ ...attrs, local: '::1.2.3.4', remote: '::5.6.7.8' });
  assert.deepEqual([compat.family, compat.local, compat.remote], [6, '::1.2.3.4', '::5.6.7.8']);
  const mapped = tunnelConfigFrom({ ...attrs, local: '::ffff:1.2.3.4', remote: '::FFFF:5.6.7.8' });
  assert.deepEqual([mapped.family, mapped.local, mapped.remote], [4, '1.2.3.4', '5.6.7.8']);
  const v6 = tunnelConfigFrom({ ...attrs, local: '2001:DB8:0:0:0:0:0:1', remote: '2001:db8::2' });
  assert.deepEqual([v6.family, v6.local], [6, '2001:db8::1']);
  assert.throws(() => tunnelConfigFrom({ ...attrs, local: '10.1', remote: '10.2' }), (e: unknown) => e instanceof L2tpError && e.errno === 'EINVAL');
});

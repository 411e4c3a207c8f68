import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runL2tp } from '../../../src/cli/run.js';
import { USAGE } from '../../../src/api/usage.js';
import type { SessionInfo, TunnelInfo } from '../../../src/control/protocol.js';
import { L2tpError, kernelError } from '../../../src/errors.js';
import { fakeCliIo, sessionInfo, tunnelInfo, type FakeCliIo } from '../../../support/fake-daemon.js';

/** A CliIo whose daemon is `handler`; thrown L2tpErrors come back as error replies. */
function fake(handler: (op: string, attrs: unknown) => unknown, connectError?: Error): FakeCliIo {
  return fakeCliIo(handler, () => {
    if (connectError) throw connectError;
  });
}

const TEXT = { json: false, pretty: false };
const argv = (s: string): string[] => s.split(' ');
const ADD_BOTH = 'add tunnel session tunnel_id 3000 peer_tunnel_id 4000 local 1.2.3.4 remote 5.6.7.8 udp_sport 5000 udp_dport 6000 session_id 1000 peer_session_id 2000';

const t = (id: number): TunnelInfo => tunnelInfo({ tunnel_id: id, encap: 'ip', udp_sport: 0, udp_dport: 0 });
const s = (tid: number, sid: number): SessionInfo => sessionInfo({ tunnel_id: tid, session_id: sid, peer_session_id: sid, peer_tunnel_id: tid });

test('parse errors never contact the daemon', async () => {
  const f = fake(() => assert.fail('no request expected'));
  assert.equal(await runL2tp(argv('add tunnel tunnel_id 1'), TEXT, f.io), 255);
  assert.equal(f.err(), 'Error: argument "peer_tunnel_id" is required\n');
  assert.equal(await runL2tp(['help'], TEXT, f.io), 255);
  assert.equal(f.connects(), 0);
});

test('add: silent success; both flags send tunnel then session', async () => {
  const f = fake((op) => (op === 'session_create' ? { ifname: 'l2tpeth0' } : {}));
  assert.equal(await runL2tp(argv(ADD_BOTH), TEXT, f.io), 0);
  assert.deepEqual(
    f.calls.map((c) => c[0]),
    ['tunnel_create', 'session_create'],
  );
  assert.equal(f.out(), '');
  assert.equal(f.err(), '');
  assert.equal(f.connects(), 1);
  assert.equal(f.closes(), 1);
});

test('add with both flags: the session request decides the exit status', async () => {
  const a = fake((op) => {
    if (op === 'tunnel_create') throw kernelError('EEXIST');
    return { ifname: 'l2tpeth0' };
  });
  assert.equal(await runL2tp(argv(ADD_BOTH), TEXT, a.io), 0, 'tunnel fails, session succeeds: 0');
  assert.equal(a.err(), 'RTNETLINK answers: File exists\n');
  assert.equal(a.calls.length, 2);

  const b = fake((op) => {
    if (op === 'session_create') throw kernelError('ENODEV');
    return {};
  });
  assert.equal(await runL2tp(argv(ADD_BOTH), TEXT, b.io), 2);
  assert.equal(b.err(), 'RTNETLINK answers: No such device\n');

  const c = fake(() => {
    throw kernelError('EEXIST');
  });
  assert.equal(await runL2tp(argv(ADD_BOTH), TEXT, c.io), 2);
  assert.equal(c.err(), 'RTNETLINK answers: File exists\nRTNETLINK answers: File exists\n');
});

test('add/del: daemon errors print strerror and exit 2', async () => {
  const cases: Array<[string, string, string]> = [
    ['add tunnel tunnel_id 1 peer_tunnel_id 2 local 1.2.3.4 remote ::1 encap ip', 'EINVAL', 'Invalid argument'],
    ['add tunnel tunnel_id 1 peer_tunnel_id 2 local 1.2.3.4 remote 1.2.3.5 udp_sport 1 udp_dport 2', 'EADDRINUSE', 'Address already in use'],
    ['add tunnel tunnel_id 1 peer_tunnel_id 2 local 9.9.9.9 remote 1.2.3.5 udp_sport 1 udp_dport 2', 'EADDRNOTAVAIL', 'Cannot assign requested address'],
    ['del tunnel tunnel_id 9', 'ENODEV', 'No such device'],
    ['del session session_id 5', 'ENODEV', 'No such device'],
  ];
  for (const [line, errno, text] of cases) {
    const f = fake(() => {
      throw kernelError(errno, 'details stay in the daemon');
    });
    assert.equal(await runL2tp(argv(line), TEXT, f.io), 2, line);
    assert.equal(f.err(), `RTNETLINK answers: ${text}\n`, line);
  }
  // A failure without errno is printed as is, still exit 2.
  const g = fake(() => {
    throw new L2tpError('DAEMON', 'cannot create the TAP device');
  });
  assert.equal(await runL2tp(argv('del tunnel tunnel_id 1'), TEXT, g.io), 2);
  assert.equal(g.err(), 'Error: cannot create the TAP device\n');
});

test('del: session_id decides the request', async () => {
  const f = fake(() => ({}));
  assert.equal(await runL2tp(argv('del session session_id 5'), TEXT, f.io), 0);
  assert.equal(await runL2tp(argv('del tunnel tunnel_id 3 session_id 4'), TEXT, f.io), 0);
  assert.equal(await runL2tp(argv('del tunnel tunnel_id 3'), TEXT, f.io), 0);
  assert.deepEqual(f.calls, [
    ['session_delete', { tunnel_id: 0, session_id: 5 }],
    ['session_delete', { tunnel_id: 3, session_id: 4 }],
    ['tunnel_delete', { tunnel_id: 3 }],
  ]);
});

test('show: filters by the ids given (deliberate difference from iproute2)', async () => {
  const tunnels = [t(1), t(2), t(3)];
  const sessions = [s(1, 1), s(1, 2), s(2, 1), s(3, 7)];
  const f = fake((op) => (op === 'tunnel_get' ? { tunnels } : { sessions }));
  const ids = async (line: string): Promise<string> => {
    const before = f.out().length;
    assert.equal(await runL2tp(argv(line), { json: true, pretty: false }, f.io), 0, line);
    const list = JSON.parse(f.out().slice(before)) as Array<{ tunnel_id: number; session_id?: number }>;
    return list.map((x) => (x.session_id === undefined ? `${x.tunnel_id}` : `${x.tunnel_id}/${x.session_id}`)).join(' ');
  };
  assert.equal(await ids('show tunnel'), '1 2 3');
  assert.equal(await ids('show tunnel tunnel_id 2'), '2');
  assert.equal(await ids('show tunnel tunnel_id 9'), '');
  assert.equal(await ids('show tunnel tunnel_id 0'), '1 2 3');
  assert.equal(await ids('show session'), '1/1 1/2 2/1 3/7');
  assert.equal(await ids('show session tunnel_id 1'), '1/1 1/2');
  assert.equal(await ids('show session session_id 1'), '1/1 2/1');
  assert.equal(await ids('show session tunnel_id 2 session_id 1'), '2/1');
  assert.equal(await ids('show session tunnel tunnel_id 3'), '3/7');
  assert.deepEqual([...new Set(f.calls.map((c) => JSON.stringify(c)))], ['["tunnel_get",{}]', '["session_get",{}]']);
});

test('show: text output goes to stdout in one piece', async () => {
  const f = fake(() => ({ tunnels: [t(5)] }));
  assert.equal(await runL2tp(argv('ls tunnel'), TEXT, f.io), 0);
  assert.equal(f.out(), 'Tunnel 5, encap IP\n  From 192.0.2.1 to 192.0.2.2\n  Peer tunnel 6\n');
  assert.equal(f.err(), '');
});

test('show: a failed dump prints "Dump terminated" and exits 1', async () => {
  const f = fake(() => {
    throw kernelError('ENOMEM');
  });
  assert.equal(await runL2tp(argv('show session'), TEXT, f.io), 1);
  assert.equal(f.err(), 'RTNETLINK answers: Cannot allocate memory\nDump terminated\n');
  assert.equal(f.out(), '');
  const g = fake(() => ({ tunnels: 'nope' }));
  assert.equal(await runL2tp(argv('show tunnel'), TEXT, g.io), 1);
  assert.equal(g.err(), 'Error: tunnel_get reply without a "tunnels" array\nDump terminated\n');
});

test('no daemon: one line, exit 1', async () => {
  const f = fake(() => ({}), new L2tpError('DAEMON', 'cannot start ul2tp daemon: permission denied'));
  assert.equal(await runL2tp(argv('show tunnel'), TEXT, f.io), 1);
  assert.equal(f.err(), 'Error: cannot start ul2tp daemon: permission denied\n');
  assert.equal(await runL2tp(argv(ADD_BOTH), TEXT, f.io), 1);
  assert.equal(f.err(), 'Error: cannot start ul2tp daemon: permission denied\n'.repeat(2));
});

test('usage text is what help prints', async () => {
  const f = fake(() => ({}));
  assert.equal(await runL2tp(['he'], TEXT, f.io), 255);
  assert.equal(f.err(), USAGE);
});

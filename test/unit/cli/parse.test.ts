import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cliErrorOutput, parseCommand, type Command } from '../../../src/api/parse.js';
import { USAGE } from '../../../src/api/usage.js';
import { L2tpError } from '../../../src/errors.js';

interface Outcome {
  cmd: Command | null;
  stderr: string;
  status: number;
}

/** What `ip l2tp <argv>` does before talking to the kernel: a command, or stderr + exit status. */
function run(line: string | string[]): Outcome {
  const argv = typeof line === 'string' ? line.split(' ').filter((w) => w !== '') : line;
  let stderr = '';
  try {
    const cmd = parseCommand(argv, (w) => (stderr += w + '\n'));
    return { cmd, stderr, status: 0 };
  } catch (e) {
    if (!(e instanceof L2tpError)) throw e;
    const o = cliErrorOutput(e);
    return { cmd: null, stderr: stderr + o.stderr, status: o.status };
  }
}

function fails(line: string | string[], stderr: string, status = 255): void {
  const o = run(line);
  assert.equal(o.cmd, null, `${JSON.stringify(line)} parsed`);
  assert.equal(o.stderr, stderr, JSON.stringify(line));
  assert.equal(o.status, status, JSON.stringify(line));
}

const required = (key: string): string => `Error: argument "${key}" is required\n`;
const wrong = (arg: string, msg: string): string => `Error: argument "${arg}" is wrong: ${msg}\n`;

const TUNNEL = 'tunnel_id 3000 peer_tunnel_id 4000 encap udp local 1.2.3.4 remote 5.6.7.8 udp_sport 5000 udp_dport 6000';

test('usage: no argument, help prefixes, empty verb arguments', () => {
  for (const l of [[], ['h'], ['he'], ['hel'], ['help'], ['add'], ['del'], ['show'], ['ls'], ['help', 'me']]) fails(l, USAGE);
  fails('add tunnel h', USAGE);
  fails('add tunnel he', USAGE);
  fails('show tunnel help', USAGE);
  fails('add tunnel helpme', `Unknown command: helpme\n${USAGE}`);
  fails([''], 'Command "" is unknown, try "ip l2tp help".\n');
});

test('command words by prefix; object words never abbreviated', () => {
  for (const v of ['a', 'ad', 'add']) assert.equal(run(`${v} ${TUNNEL} tunnel`).cmd?.verb, 'add', v);
  for (const v of ['d', 'de', 'del', 'dele', 'delet', 'delete']) assert.equal(run(`${v} tunnel tunnel_id 1`).cmd?.verb, 'del', v);
  for (const v of ['s', 'sh', 'sho', 'show', 'l', 'ls', 'lst', 'li', 'lis', 'list']) assert.equal(run(`${v} tunnel`).cmd?.verb, 'show', v);
  fails('adds tunnel', 'Command "adds" is unknown, try "ip l2tp help".\n');
  fails('deletex tunnel', 'Command "deletex" is unknown, try "ip l2tp help".\n');
  fails('helpx', 'Command "helpx" is unknown, try "ip l2tp help".\n');
  fails('ADD tunnel', 'Command "ADD" is unknown, try "ip l2tp help".\n');
  fails('sh t', `Unknown command: t\n${USAGE}`);
  fails('show tun', `Unknown command: tun\n${USAGE}`);
  fails('show sess', `Unknown command: sess\n${USAGE}`);
  fails('show Tunnel', `Unknown command: Tunnel\n${USAGE}`);
});

test('add tunnel: full attributes, defaults, aliases, later values win', () => {
  assert.deepEqual(run(`add tunnel ${TUNNEL}`).cmd, {
    verb: 'add',
    tunnel: {
      tunnel_id: 3000,
      peer_tunnel_id: 4000,
      encap: 'udp',
      local: '1.2.3.4',
      remote: '5.6.7.8',
      udp_sport: 5000,
      udp_dport: 6000,
      udp6_csum_tx: true,
      udp6_csum_rx: true,
    },
    session: null,
  });
  // Not given and `off` differ (off: zero checksums, not given: checksums sent; both print as off)
  const tunnelOf = (line: string) => {
    const c = run(line).cmd;
    assert.ok(c !== null && c.verb === 'add' && c.tunnel !== null);
    return c.tunnel;
  };
  assert.equal(tunnelOf(`add tunnel ${TUNNEL} udp_csum off`).udp_csum, false);
  assert.equal('udp_csum' in tunnelOf(`add tunnel ${TUNNEL}`), false);
  assert.deepEqual(
    run('add tid 010 ptid 0x10 tunnel local 2001:DB8::1 remote 2001:db8:0::2 encap ip udp_sport 1 udp6_csum_tx off udp6_csum_rx off udp_csum on').cmd,
    {
      verb: 'add',
      tunnel: {
        tunnel_id: 8,
        peer_tunnel_id: 16,
        encap: 'ip',
        local: '2001:db8::1',
        remote: '2001:db8::2',
        udp_sport: 0,
        udp_dport: 0,
        udp_csum: true,
        udp6_csum_tx: false,
        udp6_csum_rx: false,
      },
      session: null,
    },
  );
  const c = run(`add tunnel ${TUNNEL} tunnel_id 7 local 9.9.9.9 encap ip encap udp tunnel tunnel`).cmd;
  assert.ok(c && c.verb === 'add' && c.tunnel);
  assert.equal(c.tunnel.tunnel_id, 7);
  assert.equal(c.tunnel.local, '9.9.9.9');
  assert.equal(c.tunnel.encap, 'udp');
  assert.equal(c.tunnel.udp_sport, 5000);
});

test('add session: attributes sent only when given, seq accumulates, case rules', () => {
  assert.deepEqual(run('add session tunnel_id 3000 session_id 1000 peer_session_id 2000').cmd, {
    verb: 'add',
    tunnel: null,
    session: { tunnel_id: 3000, session_id: 1000, peer_session_id: 2000, l2spec_type: 'default', send_seq: false, recv_seq: false },
  });
  assert.deepEqual(
    run('add session name l2tp-a tid 1 sid 2 psid 3 cookie 0A0B0C0D peer_cookie 0102030405060708 l2spec_type NONE seq BOTH').cmd,
    {
      verb: 'add',
      tunnel: null,
      session: {
        tunnel_id: 1,
        session_id: 2,
        peer_session_id: 3,
        name: 'l2tp-a',
        cookie: '0a0b0c0d',
        peer_cookie: '0102030405060708',
        l2spec_type: 'none',
        send_seq: true,
        recv_seq: true,
      },
    },
  );
  const seq = (words: string): [boolean, boolean] => {
    const c = run(`add session tid 1 sid 2 psid 3 ${words}`).cmd;
    assert.ok(c && c.verb === 'add' && c.session);
    return [c.session.send_seq, c.session.recv_seq];
  };
  assert.deepEqual(seq('seq send'), [true, false]);
  assert.deepEqual(seq('seq Recv'), [false, true]);
  assert.deepEqual(seq('seq send seq recv'), [true, true]);
  assert.deepEqual(seq('seq both seq send'), [true, true]);
  assert.deepEqual(seq('seq both seq none'), [false, false]);
  assert.deepEqual(seq('seq none seq recv'), [false, true]);
  assert.deepEqual(seq('l2spec_type none l2spec_type Default'), [false, false]);
});

test('add with both flags carries both requests', () => {
  const c = run(`add tunnel session ${TUNNEL} session_id 1 peer_session_id 2`).cmd;
  assert.ok(c && c.verb === 'add');
  assert.equal(c.tunnel?.tunnel_id, 3000);
  assert.equal(c.session?.tunnel_id, 3000);
  assert.equal(c.session?.session_id, 1);
});

test('add: required arguments in iproute2 order (protocol.md §4.3)', () => {
  fails(`add ${TUNNEL}`, required('tunnel or session'));
  fails('add tunnel', required('tunnel_id'));
  fails('add session session_id 1 peer_session_id 2', required('tunnel_id'));
  fails('add tunnel tunnel_id 0 peer_tunnel_id 1', required('tunnel_id'));
  fails('add session tunnel_id 1', required('peer_session_id'));
  fails('add session tunnel_id 1 session_id 5', required('peer_session_id'));
  fails('add session tunnel_id 1 peer_session_id 2', required('session_id'));
  fails('add tunnel tunnel_id 1 session', required('peer_session_id'), 255);
  fails('add tunnel session tunnel_id 1 session_id 1 peer_session_id 2', required('peer_tunnel_id'));
  fails('add tunnel tunnel_id 1', required('peer_tunnel_id'));
  fails('add tunnel tunnel_id 1 peer_tunnel_id 2', required('local'));
  fails('add tunnel tunnel_id 1 peer_tunnel_id 2 remote 1.2.3.4', required('local'));
  fails('add tunnel tunnel_id 1 peer_tunnel_id 2 local 1.2.3.4', required('remote'));
  fails('add tunnel tunnel_id 1 peer_tunnel_id 2 local any remote 1.2.3.4', required('local'));
  fails('add tunnel tunnel_id 1 peer_tunnel_id 2 local 1.2.3.4 remote all', required('remote'));
  fails('add tunnel tunnel_id 1 peer_tunnel_id 2 local 1.2.3.4 local default remote 1.2.3.5', required('local'));
  fails('add tunnel tunnel_id 1 peer_tunnel_id 2 local 1.2.3.4 remote 1.2.3.5', required('udp_sport'));
  fails('add tunnel tunnel_id 1 peer_tunnel_id 2 local 1.2.3.4 remote 1.2.3.5 udp_dport 5', required('udp_sport'));
  fails('add tunnel tunnel_id 1 peer_tunnel_id 2 local 1.2.3.4 remote 1.2.3.5 udp_sport 5', required('udp_dport'));
  fails('add tunnel tunnel_id 1 peer_tunnel_id 2 local 1.2.3.4 remote 1.2.3.5 udp_sport 5 udp_dport 0', required('udp_dport'));
  assert.equal(run('add tunnel tunnel_id 1 peer_tunnel_id 2 local 1.2.3.4 remote 1.2.3.5 encap ip').status, 0);
  // A session alone needs no addresses or ports.
  assert.equal(run('add session tunnel_id 1 session_id 1 peer_session_id 1').status, 0);
});

test('del: checks and the session_id rule', () => {
  fails('del tunnel_id 1', required('tunnel or session'));
  fails('del tunnel', required('tunnel_id'));
  fails('del tunnel tunnel_id 0 session_id 4', required('tunnel_id'));
  fails('del session tunnel_id 1', required('session_id'));
  fails('del session tunnel session_id 1', required('tunnel_id'));
  assert.deepEqual(run('del tunnel tunnel_id 3000').cmd, { verb: 'del', request: { op: 'tunnel_delete', attrs: { tunnel_id: 3000 } } });
  assert.deepEqual(run('del session tunnel_id 3000 session_id 1000').cmd, {
    verb: 'del',
    request: { op: 'session_delete', attrs: { tunnel_id: 3000, session_id: 1000 } },
  });
  // No tunnel_id: the kernel gets tunnel 0 and answers ENODEV.
  assert.deepEqual(run('del session session_id 5').cmd, { verb: 'del', request: { op: 'session_delete', attrs: { tunnel_id: 0, session_id: 5 } } });
  // A session id turns even `del tunnel` into a session delete.
  assert.deepEqual(run('del tunnel tunnel_id 3 session_id 4').cmd, { verb: 'del', request: { op: 'session_delete', attrs: { tunnel_id: 3, session_id: 4 } } });
  // Options that do not apply are parsed (and validated) anyway.
  fails('del tunnel tunnel_id 3 cookie 12', wrong('12', 'cookie must be either 8 or 16 hex digits\n'));
  assert.equal(run('del tunnel tunnel_id 3 local 1.2.3.4 seq both').status, 0);
});

test('show: flags, filters, session wins', () => {
  assert.deepEqual(run('show tunnel').cmd, { verb: 'show', what: 'tunnel', tunnelId: 0, sessionId: 0 });
  assert.deepEqual(run('show tunnel tunnel_id 5').cmd, { verb: 'show', what: 'tunnel', tunnelId: 5, sessionId: 0 });
  assert.deepEqual(run('show session tid 5 sid 6').cmd, { verb: 'show', what: 'session', tunnelId: 5, sessionId: 6 });
  assert.deepEqual(run('show tunnel session').cmd, { verb: 'show', what: 'session', tunnelId: 0, sessionId: 0 });
  fails('show tunnel_id 1', required('tunnel or session'));
  fails('show tunnel tunnel_id x', wrong('x', 'invalid ID\n'));
});

test('value errors: exact texts and exit codes (protocol.md §4.4)', () => {
  fails('add tunnel tunnel_id abc', wrong('abc', 'invalid ID\n'));
  for (const k of ['tunnel_id', 'tid', 'peer_tunnel_id', 'ptid', 'session_id', 'sid', 'peer_session_id', 'psid']) {
    fails(`add session ${k} 08`, wrong('08', 'invalid ID\n'));
    fails(`add session ${k} 4294967296`, wrong('4294967296', 'invalid ID\n'));
    fails(`add session ${k} -1`, wrong('-1', 'invalid ID\n'));
  }
  fails(['add', 'tunnel', 'tunnel_id', '5 '], wrong('5 ', 'invalid ID\n'));
  fails(['add', 'tunnel', 'tunnel_id', ''], wrong('', 'invalid ID\n'));
  fails('add tunnel udp_sport 70000', wrong('70000', 'invalid port\n'));
  fails('add tunnel udp_dport x', wrong('x', 'invalid port\n'));
  fails('add tunnel udp_csum yes', wrong('yes', 'invalid option for udp_csum\n'));
  fails('add tunnel udp_csum ON', wrong('ON', 'invalid option for udp_csum\n'));
  fails('add tunnel udp6_csum_rx 1', wrong('1', 'invalid option for udp6_csum_rx\n'));
  fails('add tunnel udp6_csum_tx 0', wrong('0', 'invalid option for udp6_csum_tx\n'));
  fails('add session cookie 0102', wrong('0102', 'cookie must be either 8 or 16 hex digits\n'));
  fails('add session peer_cookie zz020304', wrong('zz020304', 'cookie must be a hex string\n'));
  fails('add session name a/b', 'Error: argument "a/b" is wrong: "name" not a valid ifname\n');
  fails('add session name 0123456789abcdef', 'Error: argument "0123456789abcdef" is wrong: "name" not a valid ifname\n');
  fails(['add', 'session', 'name', 'a b'], 'Error: argument "a b" is wrong: "name" not a valid ifname\n');
  fails('add session name ..', 'Error: argument ".." is wrong: "name" not a valid ifname\n');
  fails('add tunnel encap UDP', 'Unknown tunnel encapsulation "UDP"\n');
  fails('add tunnel encap l2tp', 'Unknown tunnel encapsulation "l2tp"\n');
  fails('add session l2spec_type cisco', 'Unknown layer2specific header type "cisco"\n');
  fails('add session seq yes', 'Unknown seq value "yes"\n');
  fails('add tunnel local 1.2.3.4.5', 'Error: any valid address is expected rather than "1.2.3.4.5".\n', 1);
  fails('add tunnel remote fe80::1%eth0', 'Error: any valid address is expected rather than "fe80::1%eth0".\n', 1);
  fails('add tunnel remote 1.2.3.256', 'Error: any valid address is expected rather than "1.2.3.256".\n', 1);
  fails('add tunnel frob', `Unknown command: frob\n${USAGE}`);
  fails('add tunnel mtu 1400', `Unknown command: mtu\n${USAGE}`);
  fails('add session reorder_timeout 10', `Unknown command: reorder_timeout\n${USAGE}`);
  fails('add tunnel TUNNEL_ID 1', `Unknown command: TUNNEL_ID\n${USAGE}`);
});

test('incomplete command line, after every value keyword', () => {
  const inc = 'Command line is not complete. Try option "help"\n';
  for (const k of ['encap', 'name', 'remote', 'local', 'tunnel_id', 'tid', 'peer_tunnel_id', 'ptid', 'session_id', 'sid',
    'peer_session_id', 'psid', 'udp_sport', 'udp_dport', 'udp_csum', 'udp6_csum_rx', 'udp6_csum_tx', 'cookie',
    'peer_cookie', 'l2spec_type', 'seq'])
    fails(`add tunnel ${k}`, inc);
  fails('add session offset', `Ignoring option "offset"\n${inc}`);
  fails('add session peer_offset', `Ignoring option "peer_offset"\n${inc}`);
});

test('offset and peer_offset: warning, value skipped whatever it is', () => {
  const o = run('add session offset 8 tunnel_id 1 peer_offset bogus session_id 2 peer_session_id 3');
  assert.equal(o.status, 0);
  assert.equal(o.stderr, 'Ignoring option "offset"\nIgnoring option "peer_offset"\n');
  // The value is skipped even when it looks like a keyword.
  fails('add session offset tunnel tunnel_id 1', `Ignoring option "offset"\n${required('peer_session_id')}`);
  fails('add offset tunnel tunnel_id 1', `Ignoring option "offset"\n${required('tunnel or session')}`);
  // Warnings printed before a later error stay on stderr.
  fails('add offset 1 tunnel tunnel_id x', `Ignoring option "offset"\n${wrong('x', 'invalid ID\n')}`);
});

test('the first error in argument order wins; address errors stop parsing at once', () => {
  fails('add tunnel tunnel_id abc local 1.2.3.4.5', wrong('abc', 'invalid ID\n'));
  fails('add tunnel local 1.2.3.4.5 tunnel_id abc', 'Error: any valid address is expected rather than "1.2.3.4.5".\n', 1);
  fails('add tunnel cookie 12 frob', wrong('12', 'cookie must be either 8 or 16 hex digits\n'));
  fails('add frob cookie 12', `Unknown command: frob\n${USAGE}`);
  // Semantic checks only run after the whole line parsed.
  fails('add tunnel_id 0 frob', `Unknown command: frob\n${USAGE}`);
});

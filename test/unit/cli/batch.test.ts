/**
 * Batch mode without a daemon: iproute2's batch-file reader (comments,
 * continuation lines, quotes, limits, line numbers), the batch runner against
 * a small in-process daemon (one connection, add/del lines grouped into
 * `batch` requests, stop or -force, ip's reporting), the configuration file
 * loader and the convergence step (config.ts), and `save`'s lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeArgs, readBatch, MAX_ARGS } from '../../../src/cli/batch-file.js';
import { classifyLine, readBatchInput, runBatch } from '../../../src/cli/batch.js';
import { loadConfigFile } from '../../../src/cli/config-file.js';
import { linkLines, sessionLine, tunnelLine } from '../../../src/cli/save.js';
import type { CliIo, Transport } from '../../../src/cli/run.js';
import { applyConfig, idempotentIpLine, type ConfigTarget, type DesiredConfig } from '../../../src/control/config.js';
import type { BatchAttrs, BatchOutcome } from '../../../src/control/protocol.js';
import { errorBody } from '../../../src/control/validate.js';
import { tunnelConfigFrom, sessionConfigFrom } from '../../../src/control/handlers.js';
import type { SessionConfig, TunnelConfig } from '../../../src/engine/config.js';
import { kernelError } from '../../../src/errors.js';

test('readBatch: comments, blank lines, continuation, quotes and line numbers as ip -batch', () => {
  const text = [
    '# comment',
    '',
    '   ',
    'add tunnel a b # trailing comment',
    'add \\',
    '  session x\\',
    ' y # joined, and the next line is the 7th',
    'show "a b" \'c # d\' "e"f g"h',
    'last line without newline',
  ].join('\n');
  const items = [...readBatch(text)];
  assert.deepEqual(items, [
    { kind: 'cmd', lineno: 4, args: ['add', 'tunnel', 'a', 'b'] },
    { kind: 'cmd', lineno: 7, args: ['add', 'session', 'x', 'y'] },
    // '#' cuts the line even inside quotes (the reader strips comments first), so the quote is unterminated.
    { kind: 'fatal', lineno: 8, message: 'Unterminated quoted string', status: 1 },
  ]);
  assert.deepEqual([...readBatch('show "a b" \'c d\' "e"f g"h\n')], [{ kind: 'cmd', lineno: 1, args: ['show', 'a b', 'c d', 'e', 'f', 'g"h'] }]);
  assert.deepEqual([...readBatch('a\nb \\\n')], [{ kind: 'cmd', lineno: 1, args: ['a'] }, { kind: 'end', lineno: 2, message: 'Missing continuation line' }]);
  // A comment before the backslash removes the continuation.
  assert.deepEqual([...readBatch('a # x \\\nb\n')], [{ kind: 'cmd', lineno: 1, args: ['a'] }, { kind: 'cmd', lineno: 2, args: ['b'] }]);
  assert.deepEqual([...readBatch('a\r\nb\tc\r\n')], [{ kind: 'cmd', lineno: 1, args: ['a'] }, { kind: 'cmd', lineno: 2, args: ['b', 'c'] }]);
  assert.equal((makeArgs(Array(MAX_ARGS - 1).fill('w').join(' ')) as string[]).length, MAX_ARGS - 1);
  assert.deepEqual(makeArgs(Array(MAX_ARGS).fill('w').join(' ')), { error: 'Too many arguments to command' });
  assert.deepEqual(makeArgs('""'), ['']);
});

test('readBatch never throws on arbitrary text', () => {
  let seed = 7;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  const alphabet = ['a', ' ', '\t', '\n', '\\', '#', '"', "'", '\r', 'x', '\u00e9', '\0'];
  for (let i = 0; i < 2000; i++) {
    let s = '';
    const n = rnd(80);
    for (let k = 0; k < n; k++) s += alphabet[rnd(alphabet.length)];
    for (const it of readBatch(s)) assert.ok(it.lineno >= 1 && it.lineno <= s.split('\n').length);
  }
});

test('classifyLine: l2tp object words are stripped; ul2tp verbs stay ours; other ip objects go to ip', () => {
  assert.deepEqual(classifyLine(['l2tp', 'add', 'tunnel'], false, true), { to: 'l2tp', args: ['add', 'tunnel'] });
  assert.deepEqual(classifyLine(['l2', 'show'], true, true), { to: 'l2tp', args: ['show'] });
  assert.deepEqual(classifyLine(['add', 'session'], false, true), { to: 'l2tp', args: ['add', 'session'] });
  assert.deepEqual(classifyLine(['link', 'set', 'x', 'up'], false, true), { to: 'ip', args: ['link', 'set', 'x', 'up'] });
  assert.deepEqual(classifyLine(['address', 'add', '10.0.0.1/24', 'dev', 'x'], false, true).to, 'ip');
  assert.deepEqual(classifyLine(['addr', 'add'], false, true).to, 'ip');
  assert.deepEqual(classifyLine(['link', 'set'], false, false).to, 'l2tp', 'no ip runner: a ul2tp error');
  assert.deepEqual(classifyLine(['add', 'tunnel'], true, true).to, 'ip', 'the shim: only the l2tp object is ours');
});

/** A daemon in miniature that answers `batch` like the real one (ids only). */
function miniDaemon(): { io: CliIo; out: () => string; err: () => string; requests: BatchAttrs[]; connects: () => number } {
  const tunnels = new Set<number>();
  const sessions = new Set<string>();
  const requests: BatchAttrs[] = [];
  let out = '';
  let err = '';
  let connects = 0;
  const one = (op: string, a: Record<string, number>): BatchOutcome => {
    const k = `${a.tunnel_id}/${a.session_id}`;
    const fail = (errno: string): BatchOutcome => ({ ok: false, error: errorBody(kernelError(errno)) });
    switch (op) {
      case 'tunnel_create':
        if (tunnels.has(a.tunnel_id)) return fail('EEXIST');
        tunnels.add(a.tunnel_id);
        break;
      case 'tunnel_delete':
        if (!tunnels.delete(a.tunnel_id)) return fail('ENODEV');
        break;
      case 'session_create':
        if (!tunnels.has(a.tunnel_id)) return fail('ENODEV');
        if (sessions.has(k)) return fail('EEXIST');
        sessions.add(k);
        break;
      case 'session_delete':
        if (!sessions.delete(k)) return fail('ENODEV');
        break;
    }
    return { ok: true, result: {} };
  };
  const t: Transport = {
    async request(op, attrs) {
      if (op === 'batch') {
        const b = attrs as BatchAttrs;
        requests.push(b);
        const lines: BatchOutcome[][] = [];
        for (const l of b.lines) {
          const r = l.map((x) => one(x.op, x.attrs as unknown as Record<string, number>));
          lines.push(r);
          if (b.stop_on_error && !r[r.length - 1].ok) break;
        }
        return { lines } as never;
      }
      if (op === 'session_get') return { sessions: [] } as never;
      if (op === 'tunnel_get') return { tunnels: [] } as never;
      throw new Error(`unexpected ${op}`);
    },
    close() {},
  };
  return {
    io: {
      stdout: (s) => void (out += s),
      stderr: (s) => void (err += s),
      async connect() {
        connects++;
        return t;
      },
      isReply: () => true,
    },
    out: () => out,
    err: () => err,
    requests,
    connects: () => connects,
  };
}

const TUN = (id: number): string => `add tunnel tunnel_id ${id} peer_tunnel_id ${id} local 192.0.2.1 remote 192.0.2.2 udp_sport ${id} udp_dport ${id}`;
const SES = (t: number, s: number): string => `add session tunnel_id ${t} session_id ${s} peer_session_id ${s}`;
const OPTS = { json: false, pretty: false };

test('runBatch: one connection, add/del lines grouped; a failed line stops the batch with ip\'s report', async () => {
  const d = miniDaemon();
  const text = [TUN(1), SES(1, 1), SES(1, 1), SES(1, 2)].join('\n') + '\n';
  const status = await runBatch(text, { name: 'f.batch', force: false, ip: null, ipStyle: false }, OPTS, d.io);
  assert.equal(status, 1);
  assert.equal(d.err(), 'RTNETLINK answers: File exists\nCommand failed f.batch:3\n');
  assert.equal(d.connects(), 1);
  assert.equal(d.requests.length, 1, 'the four lines travelled in one request');
  assert.equal(d.requests[0].stop_on_error, true);

  // -force: the rest runs; later failures reported too; status stays 1.
  const f = miniDaemon();
  const st = await runBatch([TUN(1), TUN(1), SES(1, 1), 'del session tunnel_id 1 session_id 9', SES(1, 2)].join('\n'), { name: '-', force: true, ip: null, ipStyle: false }, OPTS, f.io);
  assert.equal(st, 1);
  assert.equal(f.err(), 'RTNETLINK answers: File exists\nCommand failed -:2\nRTNETLINK answers: No such device\nCommand failed -:4\n');
  assert.equal(f.requests[0].stop_on_error, false);
});

test('runBatch: a tunnel+session line keeps the session\'s status, as ip l2tp add does', async () => {
  const d = miniDaemon();
  const both = `add tunnel session tunnel_id 1 peer_tunnel_id 1 local 192.0.2.1 remote 192.0.2.2 udp_sport 1 udp_dport 1 session_id 1 peer_session_id 1`;
  const status = await runBatch([TUN(1), both, SES(1, 2)].join('\n'), { name: 'x', force: false, ip: null, ipStyle: false }, OPTS, d.io);
  assert.equal(status, 0, 'the tunnel exists (error printed) but the session was created');
  assert.equal(d.err(), 'RTNETLINK answers: File exists\n');
});

test('runBatch: parse errors end the batch with iproute2\'s status (after the lines before them ran)', async () => {
  const d = miniDaemon();
  const status = await runBatch([TUN(1), 'add session tunnel_id zz', TUN(2)].join('\n'), { name: 'x', force: true, ip: null, ipStyle: false }, OPTS, d.io);
  assert.equal(status, 255);
  assert.equal(d.err(), 'Error: argument "zz" is wrong: invalid ID\n\n');
  assert.equal(d.requests.length, 1);
  assert.equal(d.requests[0].lines.length, 1, 'only the line before ran');
  const u = miniDaemon();
  assert.equal(await runBatch('bogus words\n', { name: 'x', force: false, ip: null, ipStyle: false }, OPTS, u.io), 255);
  assert.equal(u.err(), 'Command "bogus" is unknown, try "ip l2tp help".\n');
  const q = miniDaemon();
  assert.equal(await runBatch(`${TUN(1)}\nshow "tunnel\n`, { name: 'x', force: false, ip: null, ipStyle: false }, OPTS, q.io), 1);
  assert.equal(q.err(), 'Unterminated quoted string\n');
  assert.equal(q.requests.length, 1, 'the line before the bad quote ran');
});

test('runBatch: ip lines run in order between l2tp lines; their failures are reported like ip\'s', async () => {
  const d = miniDaemon();
  const ran: string[] = [];
  const ip = (args: readonly string[]): number => {
    ran.push(`${d.requests.length}:${args.join(' ')}`);
    return args[2] === 'bad' ? 1 : 0;
  };
  const text = [`l2tp ${TUN(1)}`, `l2tp ${SES(1, 1)}`, 'link set l2tpeth0 up', `l2tp ${SES(1, 2)}`, 'link set bad up', `l2tp ${SES(1, 3)}`].join('\n');
  const status = await runBatch(text, { name: 'm', force: false, ip, ipStyle: true }, OPTS, d.io);
  assert.equal(status, 1);
  assert.deepEqual(ran, ['1:link set l2tpeth0 up', '2:link set bad up'], 'each ip line ran after the l2tp lines before it');
  assert.equal(d.err(), 'Command failed m:5\n');
  assert.equal(d.requests.length, 2, 'the line after the failure never ran');
});

test('runBatch: big files are split into requests under the daemon\'s line limit', async () => {
  const d = miniDaemon();
  const lines = [TUN(1)];
  for (let s = 1; s <= 3000; s++) lines.push(SES(1, s));
  for (let s = 1; s <= 3000; s++) lines.push(`del session tunnel_id 1 session_id ${s}`);
  assert.equal(await runBatch(lines.join('\n'), { name: 'big', force: false, ip: null, ipStyle: false }, OPTS, d.io), 0, d.err());
  assert.ok(d.requests.length > 1);
  for (const r of d.requests) assert.ok(JSON.stringify({ id: 1, op: 'batch', attrs: r }).length < 65536);
  assert.equal(d.requests.reduce((n, r) => n + r.lines.length, 0), 6001);
});

test('loadConfigFile: l2tp add lines and ip lines; other l2tp commands and duplicates are refused with file:line', () => {
  const dir = mkdtempSync(join(tmpdir(), `ul2tp-conf-${process.pid}-`));
  try {
    const f = join(dir, 'c.conf');
    writeFileSync(f, `# site\nl2tp ${TUN(1)}\n${SES(1, 1)} name s%d\nlink set dev s0 up\naddress add 10.0.0.1/24 dev s0\n`);
    const c = loadConfigFile(f);
    assert.equal(c.tunnels.length, 1);
    assert.equal(c.sessions[0].name, 's%d');
    assert.deepEqual(c.ipLines, [
      { lineno: 4, args: ['link', 'set', 'dev', 's0', 'up'] },
      { lineno: 5, args: ['address', 'add', '10.0.0.1/24', 'dev', 's0'] },
    ]);
    writeFileSync(f, `${TUN(1)}\n${TUN(1)}\n`);
    assert.throws(() => loadConfigFile(f), { message: `${f}:2: tunnel 1 is configured twice` });
    writeFileSync(f, `${TUN(1)}\n${SES(1, 1)}\n${SES(1, 1)}\n`);
    assert.throws(() => loadConfigFile(f), { message: `${f}:3: session 1 in tunnel 1 is configured twice` });
    writeFileSync(f, 'l2tp show tunnel\n');
    assert.throws(() => loadConfigFile(f), /c\.conf:1: only "l2tp add" lines/);
    writeFileSync(f, '\n\nadd session tunnel_id 1 cookie 12\n');
    assert.throws(() => loadConfigFile(f), /c\.conf:3: Error: argument "12" is wrong: cookie must be either 8 or 16 hex digits$/);
    assert.throws(() => loadConfigFile(join(dir, 'absent')), /cannot read/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('idempotentIpLine: address add becomes replace; everything else unchanged', () => {
  assert.deepEqual(idempotentIpLine(['address', 'add', '1.2.3.4/24', 'dev', 'x']), ['address', 'replace', '1.2.3.4/24', 'dev', 'x']);
  assert.deepEqual(idempotentIpLine(['a', 'a', '1.2.3.4/24', 'dev', 'x'])[1], 'replace');
  assert.deepEqual(idempotentIpLine(['link', 'add', 'x']), ['link', 'add', 'x']);
  assert.deepEqual(idempotentIpLine(['addr', 'del', 'x']), ['addr', 'del', 'x']);
});

/** A controller in miniature: configs in maps, calls recorded. */
function fakeTarget(): ConfigTarget & { calls: string[]; t: Map<number, TunnelConfig>; s: Map<string, SessionConfig> } {
  const t = new Map<number, TunnelConfig>();
  const s = new Map<string, SessionConfig>();
  const calls: string[] = [];
  let n = 0;
  return {
    calls,
    t,
    s,
    tunnelConfigs: () => new Map(t),
    sessionConfigs: () => new Map(s),
    tunnelConfigOf: (a) => tunnelConfigFrom(a as Record<string, unknown>),
    async tunnelCreate(a) {
      const c = tunnelConfigFrom(a);
      calls.push(`+t${c.tunnelId}`);
      t.set(c.tunnelId, c);
    },
    async tunnelDelete(a) {
      const id = a.tunnel_id as number;
      calls.push(`-t${id}`);
      t.delete(id);
      for (const [k, v] of s) if (v.tunnelId === id) s.delete(k);
    },
    async sessionCreate(a) {
      const name = typeof a.name === 'string' && !a.name.includes('%d') ? a.name : `l2tpeth${n++}`;
      const c = sessionConfigFrom(a, name);
      calls.push(`+s${c.tunnelId}/${c.sessionId}`);
      s.set(`${c.tunnelId}/${c.sessionId}`, c);
    },
    async removeSessions(keys) {
      calls.push(`-s${keys.map(([a, b]) => `${a}/${b}`).join(',')}`);
      for (const [a, b] of keys) s.delete(`${a}/${b}`);
    },
  };
}

test('applyConfig: adds what is missing, removes what is gone or changed (sessions in one call), keeps the rest', async () => {
  const tun = (id: number, port = 5000) => ({ tunnel_id: id, peer_tunnel_id: id, encap: 'udp' as const, local: '192.0.2.1', remote: '192.0.2.2', udp_sport: port, udp_dport: port, udp_csum: false, udp6_csum_tx: true, udp6_csum_rx: true });
  const ses = (t: number, id: number, extra: object = {}) => ({ tunnel_id: t, session_id: id, peer_session_id: id, l2spec_type: 'default' as const, send_seq: false, recv_seq: false, ...extra });
  const src = { path: 'x', load: () => want, ran: [] as string[], runIp(args: readonly string[]) { this.ran.push(args.join(' ')); return { status: args[2] === 'nope' ? 1 : 0, stderr: 'Cannot find device "nope"\n' }; } };
  let want: DesiredConfig = { tunnels: [tun(1), tun(2, 6000)], sessions: [ses(1, 1), ses(1, 2), ses(2, 1, { name: 'fixed' })], ipLines: [{ lineno: 9, args: ['address', 'add', '10.0.0.1/24', 'dev', 'fixed'] }] };
  const t = fakeTarget();
  let r = await applyConfig(t, want, src);
  assert.deepEqual(r, { added: 5, removed: 0, kept: 0, problems: [] });
  assert.deepEqual(src.ran, ['address replace 10.0.0.1/24 dev fixed']);

  // Same file again: nothing changes.
  t.calls.length = 0;
  r = await applyConfig(t, want, src);
  assert.deepEqual(r, { added: 0, removed: 0, kept: 5, problems: [] });
  assert.deepEqual(t.calls, []);

  // Session 1/2 gone, 1/1 changed (cookie), tunnel 2 changed (port): deletions first, sessions together.
  want = { tunnels: [tun(1), tun(2, 6001)], sessions: [ses(1, 1, { cookie: '01020304' }), ses(2, 1, { name: 'fixed' })], ipLines: [{ lineno: 3, args: ['link', 'set', 'nope', 'up'] }] };
  t.calls.length = 0;
  r = await applyConfig(t, want, src);
  assert.deepEqual(t.calls, ['-s1/1,1/2,2/1', '-t2', '+t2', '+s1/1', '+s2/1']);
  assert.equal(r.kept, 1);
  assert.deepEqual(r.problems, ['x:3: ip link set nope up: Cannot find device "nope"']);
  assert.equal(t.s.get('1/1')?.cookie, '01020304');

  // Empty file: everything goes.
  t.calls.length = 0;
  await applyConfig(t, { tunnels: [], sessions: [], ipLines: [] }, src);
  assert.deepEqual(t.calls, ['-s1/1,2/1', '-t1', '-t2']);
  assert.equal(t.t.size + t.s.size, 0);
});

test('save: lines that parse back to the same configuration', () => {
  const t = { tunnel_id: 3, peer_tunnel_id: 4, encap: 'udp' as const, family: 6 as const, local: '2001:db8::1', remote: '2001:db8::2', udp_sport: 5, udp_dport: 6, udp_csum: true, udp6_csum_tx: false, udp6_csum_rx: true, stats: {} };
  assert.equal(tunnelLine(t), 'l2tp add tunnel tunnel_id 3 peer_tunnel_id 4 encap udp local 2001:db8::1 remote 2001:db8::2 udp_sport 5 udp_dport 6 udp_csum on udp6_csum_tx off');
  assert.equal(tunnelLine({ ...t, encap: 'ip', family: 4, local: '10.0.0.1', remote: '10.0.0.2', udp_csum: false }), 'l2tp add tunnel tunnel_id 3 peer_tunnel_id 4 encap ip local 10.0.0.1 remote 10.0.0.2');
  // IPv4 UDP: an explicit off is kept (zero checksums); not given stays not given (checksums, shown as off)
  const v4 = { ...t, family: 4 as const, local: '10.0.0.1', remote: '10.0.0.2', udp6_csum_tx: true };
  assert.equal(tunnelLine({ ...v4, udp_csum: false, udp_csum_tx: false }), 'l2tp add tunnel tunnel_id 3 peer_tunnel_id 4 encap udp local 10.0.0.1 remote 10.0.0.2 udp_sport 5 udp_dport 6 udp_csum off');
  assert.equal(tunnelLine({ ...v4, udp_csum: false, udp_csum_tx: true }), 'l2tp add tunnel tunnel_id 3 peer_tunnel_id 4 encap udp local 10.0.0.1 remote 10.0.0.2 udp_sport 5 udp_dport 6');
  assert.equal(tunnelLine({ ...v4, udp_csum: false }), 'l2tp add tunnel tunnel_id 3 peer_tunnel_id 4 encap udp local 10.0.0.1 remote 10.0.0.2 udp_sport 5 udp_dport 6', 'an older daemon: as before');
  const s = { tunnel_id: 3, session_id: 7, peer_session_id: 8, peer_tunnel_id: 4, ifname: 'eth%x', cookie: '0a0b0c0d', peer_cookie: '', l2spec_type: 'none' as const, send_seq: true, recv_seq: false, reorder_timeout: 0, stats: {} };
  assert.equal(sessionLine(s), 'l2tp add session name eth%x tunnel_id 3 session_id 7 peer_session_id 8 cookie 0a0b0c0d seq send l2spec_type none');
  assert.deepEqual(
    linkLines({
      ifname: 'l2tpeth0',
      mtu: 1446,
      flags: ['BROADCAST', 'UP'],
      addr_info: [
        { family: 'inet', local: '10.0.0.1', prefixlen: 24, scope: 'global' },
        { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
        { family: 'inet6', local: '2001:db8::5', prefixlen: 64, scope: 'global' },
        { family: 'inet', local: '10.9.9.9', prefixlen: 24, scope: 'global', dynamic: true },
      ],
    }),
    ['link set dev l2tpeth0 mtu 1446 up', 'address add 10.0.0.1/24 dev l2tpeth0', 'address add 2001:db8::5/64 dev l2tpeth0'],
  );
  assert.deepEqual(linkLines({ ifname: 'x', mtu: 1500, flags: [] }), ['link set dev x mtu 1500']);
});

test('readBatchInput: a file that cannot be opened is reported as ip -batch reports it', () => {
  const d = miniDaemon();
  assert.equal(readBatchInput('/nonexistent/x.batch', d.io), null);
  assert.equal(d.err(), 'Cannot open file "/nonexistent/x.batch" for reading: No such file or directory\n');
});

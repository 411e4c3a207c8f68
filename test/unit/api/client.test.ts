/**
 * The library client (src/api/client.ts) against a fake daemon on a Unix
 * socket: what it sends (valid requests, with the protocol version), its
 * errors (the CLI's grammar and wording), filters, the counters stream and the
 * capture iterator.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, L2tpError, PROTOCOL_VERSION, type SessionInfo, type TunnelInfo, type Ul2tpClient } from '../../../src/index.js';
import { parseCommand } from '../../../src/api/parse.js';
import { validateRequest } from '../../../src/control/validate.js';
import { rejection, serveLines, sessionInfo, tunnelInfo, type LineServer } from '../../../support/fake-daemon.js';

let tmp = '';
before(() => {
  tmp = mkdtempSync(join(tmpdir(), `ul2tp-api-${process.pid}-`));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const TUNNEL: TunnelInfo = tunnelInfo({ tunnel_id: 3000, peer_tunnel_id: 4000 });
const session = (tid: number, sid: number, rx: number): SessionInfo =>
  sessionInfo({ tunnel_id: tid, session_id: sid, peer_tunnel_id: 1, stats: { rx_packets: rx }, drops: { rx_dev_drops: 0 } });

interface Fake extends LineServer {
  requests: Array<Record<string, unknown>>;
}

/** A daemon that validates every request as the real one does and answers from a script. */
async function fakeDaemon(name: string, answer: (req: ReturnType<typeof validateRequest>, sock: Socket) => unknown): Promise<Fake> {
  const requests: Array<Record<string, unknown>> = [];
  const server = await serveLines(join(tmp, name), (sock, line) => {
    const raw = JSON.parse(line) as Record<string, unknown>;
    requests.push(raw);
    let req;
    try {
      req = validateRequest(raw);
    } catch (e) {
      sock.write(JSON.stringify({ id: raw.id ?? null, ok: false, error: { code: 'PROTOCOL', message: (e as Error).message } }) + '\n');
      return;
    }
    const r = answer(req, sock);
    if (r === undefined) return; // answered (or not) by the script itself
    if (r instanceof L2tpError) sock.write(JSON.stringify({ id: req.id, ok: false, error: { code: r.code, errno: r.errno, message: r.message } }) + '\n');
    else sock.write(JSON.stringify({ id: req.id, ok: true, result: r }) + '\n');
  });
  return { ...server, requests };
}

/** What the CLI's grammar throws for `argv`. */
function cliError(argv: string): L2tpError {
  try {
    parseCommand(argv.split(' '), () => {});
  } catch (e) {
    return e as L2tpError;
  }
  assert.fail(`${argv} parsed`);
}

test('tunnels and sessions: the CLI grammar builds the requests; ids filter; every request carries the version', async () => {
  const fake = await fakeDaemon('ok.sock', (req) => {
    switch (req.op) {
      case 'tunnel_get':
        return { tunnels: [TUNNEL, { ...TUNNEL, tunnel_id: 3001 }] };
      case 'session_get':
        return { sessions: [session(3000, 1, 5), session(3000, 2, 6), session(3001, 1, 7)] };
      case 'session_create':
        return { ifname: req.attrs.name ?? 'l2tpeth0' };
      default:
        return {};
    }
  });
  let c: Ul2tpClient | undefined;
  try {
    c = await connect({ socketPath: fake.path, autostart: false });
    await c.addTunnel({ tunnel_id: '0x10', peer_tunnel_id: 4000, encap: 'ip', local: '10.1', remote: '10.2', udp_csum: true });
    assert.equal(await c.addSession({ tunnel_id: 16, session_id: 1, peer_session_id: 2, name: 'x0', cookie: 'DEADBEEF', seq: 'both' }), 'x0');
    await c.deleteSession(16, 1);
    await c.deleteTunnel(16);
    assert.deepEqual(
      (await c.tunnels({ tunnel_id: 3001 })).map((t) => t.tunnel_id),
      [3001],
    );
    assert.deepEqual(
      (await c.sessions({ tunnel_id: 3000 })).map((s) => s.session_id),
      [1, 2],
    );
    const counters = await c.counters({ tunnel_id: 3000, session_id: 2 });
    assert.deepEqual(counters.sessions, [{ tunnel_id: 3000, session_id: 2, ifname: 'l2tpeth2', stats: { rx_packets: 6 }, drops: { rx_dev_drops: 0 } }]);
    const sent = fake.requests.slice(0, 4);
    assert.deepEqual(sent, [
      {
        id: 1,
        version: PROTOCOL_VERSION,
        op: 'tunnel_create',
        // As `ip l2tp` reads them: 0x10 is 16, `10.1` is 10.1.0.0, ports zero for encap ip.
        attrs: { tunnel_id: 16, peer_tunnel_id: 4000, encap: 'ip', local: '10.1.0.0', remote: '10.2.0.0', udp_sport: 0, udp_dport: 0, udp_csum: true, udp6_csum_tx: true, udp6_csum_rx: true },
      },
      {
        id: 2,
        version: PROTOCOL_VERSION,
        op: 'session_create',
        attrs: { tunnel_id: 16, session_id: 1, peer_session_id: 2, l2spec_type: 'default', send_seq: true, recv_seq: true, name: 'x0', cookie: 'deadbeef' },
      },
      { id: 3, version: PROTOCOL_VERSION, op: 'session_delete', attrs: { tunnel_id: 16, session_id: 1 } },
      { id: 4, version: PROTOCOL_VERSION, op: 'tunnel_delete', attrs: { tunnel_id: 16 } },
    ]);
    assert.ok(fake.requests.every((r) => r.version === PROTOCOL_VERSION));
  } finally {
    c?.close();
    fake.close();
  }
});

test("bad arguments fail before the daemon, with the CLI's code and text; daemon errors keep their errno", async () => {
  const fake = await fakeDaemon('err.sock', (req) => (req.op === 'tunnel_create' ? new L2tpError('KERNEL', 'File exists', 'EEXIST') : {}));
  const c = await connect({ socketPath: fake.path, autostart: false });
  try {
    const base = { tunnel_id: 1, peer_tunnel_id: 2, local: '192.0.2.1', remote: '192.0.2.2', udp_sport: 1, udp_dport: 2 };
    const cases: Array<[Promise<unknown>, string]> = [
      [c.addTunnel({ ...base, tunnel_id: 'x' }), 'add tunnel tunnel_id x'],
      [c.addTunnel({ ...base, local: '1.2.3.4.5' }), 'add tunnel local 1.2.3.4.5'],
      [c.addTunnel({ ...base, udp_dport: 70000 }), 'add tunnel udp_dport 70000'],
      [c.addTunnel({ ...base, encap: 'gre' as 'ip' }), 'add tunnel encap gre'],
      [c.addTunnel({ ...base, udp_sport: undefined }), 'add tunnel tunnel_id 1 peer_tunnel_id 2 local 1.2.3.4 remote 1.2.3.5 udp_dport 2'],
      [c.addSession({ tunnel_id: 1, session_id: 2 } as never), 'add session tunnel_id 1 session_id 2'],
      [c.addSession({ tunnel_id: 1, session_id: 2, peer_session_id: 3, cookie: '123' }), 'add session cookie 123'],
      [c.addSession({ tunnel_id: 1, session_id: 2, peer_session_id: 3, name: 'a/b' }), 'add session name a/b'],
      [c.deleteSession(1, 'zz'), 'del session session_id zz'],
      [c.addTunnel({ ...base, mtu: 1400 } as never), 'add tunnel mtu 1400'],
    ];
    for (const [p, argv] of cases) {
      const got = await rejection(p);
      const want = cliError(argv);
      assert.equal(got.code, want.code, argv);
      assert.equal(got.message, want.message, argv);
    }
    assert.equal(fake.requests.length, 0, 'nothing reached the daemon');
    const dup = await rejection(c.addTunnel(base));
    assert.deepEqual([dup.code, dup.errno, dup.message], ['KERNEL', 'EEXIST', 'File exists']);
    const imp = await rejection(c.impair(1, 2, { loss: 101 }));
    assert.equal(imp.code, 'PROTOCOL');
    assert.match(imp.message, /"loss"/);
  } finally {
    c.close();
    fake.close();
  }
});

test('watchCounters: a sample at once, then one per interval; count and abort stop it', async () => {
  let n = 0;
  const fake = await fakeDaemon('watch.sock', (req) => (req.op === 'session_get' ? { sessions: [session(1, 1, ++n)] } : {}));
  const c = await connect({ socketPath: fake.path, autostart: false });
  try {
    const seen: number[] = [];
    for await (const s of c.watchCounters({ intervalMs: 20, count: 3 })) seen.push(s.sessions[0].stats.rx_packets);
    assert.deepEqual(seen, [1, 2, 3]);
    const ac = new AbortController();
    const got: number[] = [];
    for await (const s of c.watchCounters({ intervalMs: 20, signal: ac.signal })) {
      got.push(s.sessions[0].stats.rx_packets);
      if (got.length === 2) ac.abort();
    }
    assert.deepEqual(got, [4, 5]);
    await assert.rejects(async () => {
      for await (const _ of c.watchCounters({ intervalMs: 0 })) void _;
    }, L2tpError);
  } finally {
    c.close();
    fake.close();
  }
});

test('capture: resolves once the daemon captures, yields packets, stops on break; refusals are errors', async () => {
  const fake = await fakeDaemon('cap.sock', (req, sock) => {
    if (req.op !== 'capture') return {};
    if (req.attrs.tunnel_id === 9) return new L2tpError('DAEMON', 'capture is not supported by the native-free backend (use the koffi backend)');
    sock.write(JSON.stringify({ id: req.id, ok: true, result: { started: true } }) + '\n');
    for (let i = 0; i < 5; i++) {
      const packet = { t: 1000 + i, dir: i % 2 ? 'rx' : 'tx', encap: 'udp', tunnel_id: req.attrs.tunnel_id, session_id: 7, data: Buffer.from([i, 1, 2]).toString('base64') };
      sock.write(JSON.stringify({ id: req.id, packet }) + '\n');
    }
    return undefined;
  });
  const c = await connect({ socketPath: fake.path, autostart: false });
  try {
    const packets = [];
    for await (const p of await c.capture({ tunnel_id: 3000 })) {
      packets.push(p);
      if (packets.length === 3) break;
    }
    assert.deepEqual(
      packets.map((p) => [p.t, p.dir, p.tunnel_id, p.session_id, [...p.data]]),
      [
        [1000, 'tx', 3000, 7, [0, 1, 2]],
        [1001, 'rx', 3000, 7, [1, 1, 2]],
        [1002, 'tx', 3000, 7, [2, 1, 2]],
      ],
    );
    const capReq = fake.requests.find((r) => r.op === 'capture');
    assert.deepEqual(capReq, { id: 1, version: PROTOCOL_VERSION, op: 'capture', attrs: { tunnel_id: 3000, session_id: 0 } });
    assert.match((await rejection(c.request('capture', {}))).message, /use capture\(\)/);
    const refused = await rejection(c.capture({ tunnel_id: 9 }));
    assert.equal(refused.code, 'DAEMON');
    assert.match(refused.message, /native-free/);
    // A capture whose daemon goes away ends with an error, not silently.
    const it = await c.capture({ tunnel_id: 1 });
    for (let i = 0; i < 5; i++) await it.next();
    for (const s of fake.sockets) s.destroy();
    await assert.rejects(it.next(), /closed the connection/);
  } finally {
    c.close();
    fake.close();
  }
});

test('no daemon and no autostart: a DAEMON error naming the socket', async () => {
  const e = await rejection(connect({ socketPath: join(tmp, 'nobody', 'ctl.sock'), autostart: false }));
  assert.equal(e.code, 'DAEMON');
  assert.match(e.message, /nobody\/ctl\.sock/);
});

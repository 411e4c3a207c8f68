/**
 * Control-socket fuzz (issue 9): a real daemon in a dedicated namespace (own
 * UL2TP_RUNDIR) with one tunnel and one session, then at least 10,000
 * malformed, oversized, truncated and out-of-order requests:
 *   - pipelined on one connection, split into random-sized writes (random
 *     JSON, request-shaped objects with wrong types / huge ids / unknown ops
 *     and keys, binary garbage, empty lines, deep nesting, prototype keys);
 *   - spread over many concurrent connections;
 *   - well-formed but refused (objects that do not exist, duplicates,
 *     addresses that are not local): out of order for the daemon's state;
 *   - lines over 64 KiB, with and without a newline;
 *   - partial lines followed by close or reset, connect-and-close.
 * Every newline-terminated line must get exactly one reply with ok:false (or
 * the connection is closed, for oversize lines). Afterwards the same daemon
 * answers a valid request, its configuration (`show` text and JSON) and state
 * file are unchanged, and its log did not grow per request.
 * Seeded (FUZZ_SEED), so failures reproduce.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateRequest } from '../../src/control/validate.js';
import { Rng } from '../../src/io/mem/fault-injector.js';
import { Netns, netnsUnavailable, uniq } from '../../support/netns.js';
import { control } from '../../support/ul2tp.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping control fuzz: ${skip}`);
const SEED = Number(process.env.FUZZ_SEED ?? 0xc0de);
const MAX_LINE = 65536;
const NL = Buffer.from('\n');

const OPS = ['hello', 'tunnel_create', 'tunnel_delete', 'tunnel_get', 'session_create', 'session_delete', 'session_get', 'status'];
const KEYS = [
  'tunnel_id',
  'peer_tunnel_id',
  'encap',
  'local',
  'remote',
  'udp_sport',
  'udp_dport',
  'udp_csum',
  'udp6_csum_tx',
  'udp6_csum_rx',
  'session_id',
  'peer_session_id',
  'name',
  'cookie',
  'peer_cookie',
  'l2spec_type',
  'send_seq',
  'recv_seq',
  'reorder_timeout',
];

class Gen {
  constructor(readonly r: Rng) {}
  int(n: number): number {
    return this.r.int(n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.r.int(a.length)];
  }
  str(): string {
    const pool = [
      '',
      'udp',
      'ip',
      'none',
      'default',
      '192.0.2.1',
      '::1',
      '1.2.3',
      '999.1.1.1',
      'deadbeef',
      'DEADBEEF00',
      'l2tpeth%d',
      'x'.repeat(20),
      '\u0000',
      '\ud800',
      'ü€😀',
      '%d%d%d',
      '../../etc/passwd',
      'eth0 ',
      '__proto__',
    ];
    if (this.int(3) === 0) {
      let s = '';
      const n = this.int(40);
      for (let i = 0; i < n; i++) s += String.fromCharCode(this.int(0x3000));
      return s;
    }
    return this.pick(pool);
  }
  num(): number {
    return this.pick([
      0,
      -1,
      1,
      1.5,
      65535,
      65536,
      0xffffffff,
      0x100000000,
      2 ** 53,
      2 ** 53 + 2,
      1e300,
      -1e300,
      Number.MAX_SAFE_INTEGER,
      -0,
      this.int(0x7fffffff),
    ]);
  }
  value(depth: number): unknown {
    switch (this.int(depth > 3 ? 5 : 7)) {
      case 0:
        return null;
      case 1:
        return this.int(2) === 0;
      case 2:
        return this.num();
      case 3:
      case 4:
        return this.str();
      case 5: {
        const a: unknown[] = [];
        const n = this.int(4);
        for (let i = 0; i < n; i++) a.push(this.value(depth + 1));
        return a;
      }
      default: {
        const o: Record<string, unknown> = {};
        const n = this.int(4);
        for (let i = 0; i < n; i++) o[this.int(2) ? this.pick(KEYS) : this.str()] = this.value(depth + 1);
        return o;
      }
    }
  }
  /** Something shaped like a request, with random damage. */
  requestish(): unknown {
    const o: Record<string, unknown> = {};
    if (this.int(8)) o.id = this.int(4) ? this.int(1e6) : this.value(3);
    if (this.int(8)) o.op = this.int(5) ? this.pick(OPS) : this.str();
    if (this.int(6)) {
      const a: Record<string, unknown> = {};
      const n = this.int(8);
      for (let i = 0; i < n; i++) {
        const k = this.int(10) ? this.pick(KEYS) : this.str();
        a[k] = this.int(3) === 0 ? this.num() : this.value(2);
      }
      o.attrs = this.int(10) ? a : this.value(2);
    }
    // The protocol version: the one spoken, one from the future, or junk.
    if (this.int(4) === 0) o.version = this.pick<unknown>([1, 2, 0, -1, 1.5, 2 ** 53, '1', null, this.num()]);
    if (this.int(10) === 0) o[this.str()] = this.value(2);
    return o;
  }
  /** One malformed line (no newline inside, UTF-8 or raw bytes): never a valid request. */
  line(): Buffer {
    for (;;) {
      let text: string;
      let raw: Buffer | null = null;
      switch (this.int(10)) {
        case 0:
          text = JSON.stringify(this.value(0)) ?? 'undefined';
          break;
        case 1: {
          // binary garbage without newlines
          const n = this.int(200);
          const b = Buffer.alloc(n);
          for (let i = 0; i < n; i++) b[i] = this.int(256);
          for (let i = 0; i < n; i++) if (b[i] === 10) b[i] = 11;
          raw = b;
          text = b.toString('utf8');
          break;
        }
        case 2:
          text = this.pick(['', ' ', '{', '}', '[]', '{}', 'null', '"status"', '{"id":1', '{"id":1,"op":"status"', '\r', '\t{}']);
          break;
        case 3: {
          const d = 1 + this.int(5000);
          text = this.int(2) ? '['.repeat(d) + ']'.repeat(d) : '{"a":'.repeat(d) + '1' + '}'.repeat(d);
          break;
        }
        case 4:
          text = `{"id":${this.pick(['1e999', '-1', '1.5', '"1"', 'null', '99999999999999999999', 'true'])},"op":"status","attrs":{}}`;
          break;
        case 5:
          text = `{"id":1,"op":"status","attrs":{},"__proto__":{"x":1}}`;
          break;
        default: {
          text = JSON.stringify(this.requestish());
          // A truncated copy now and then.
          if (this.int(6) === 0) text = text.slice(0, this.int(text.length));
        }
      }
      if (text.includes('\n')) continue;
      let valid = true;
      try {
        validateRequest(JSON.parse(text));
      } catch {
        valid = false;
      }
      if (!valid) return raw ?? Buffer.from(text, 'utf8');
    }
  }
}

interface Conn {
  sock: Socket;
  replies: Array<{ id: unknown; ok: unknown; error?: { code?: string; message?: string } }>;
  closed: boolean;
  badJson: number;
}

function open(path: string): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    const c: Conn = { sock, replies: [], closed: false, badJson: 0 };
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          c.replies.push(JSON.parse(l) as Conn['replies'][number]);
        } catch {
          c.badJson++;
        }
      }
    });
    sock.on('close', () => (c.closed = true));
    sock.once('error', (e) => {
      if (!c.closed && c.replies.length === 0) reject(e);
    });
    sock.on('error', () => {});
    sock.once('connect', () => resolve(c));
  });
}

async function until(fn: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

/** Write `text` in random-sized pieces (lines end up split across reads). */
async function writeSplit(g: Gen, sock: Socket, data: Buffer | string): Promise<void> {
  const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let pos = 0;
  while (pos < b.length) {
    const n = 1 + g.int(g.int(4) === 0 ? 16 : 8192);
    const ok = sock.write(b.subarray(pos, pos + n));
    pos += n;
    if (!ok) {
      await new Promise<void>((r) => {
        const done = () => {
          sock.off('drain', done);
          sock.off('close', done);
          r();
        };
        sock.on('drain', done);
        sock.on('close', done);
      });
      if (sock.destroyed) throw new Error(`the daemon closed the connection after ${pos} of ${b.length} bytes`);
    }
  }
}

describe('control socket fuzz', { skip: skip || undefined }, () => {
  let ns: Netns;
  let path = '';
  let dir = '';
  const ifname = uniq('fz');
  before(() => {
    ns = new Netns('ul2f');
    const dummy = uniq('dm');
    ns.ip('link', 'add', dummy, 'type', 'veth', 'peer', 'name', uniq('dp'));
    ns.ip('addr', 'add', '192.0.2.1/24', 'dev', dummy);
    ns.ip('link', 'set', dummy, 'up');
    ns.ok('add', 'tunnel', 'tunnel_id', '10', 'peer_tunnel_id', '20', 'encap', 'udp', 'local', '192.0.2.1', 'remote', '192.0.2.2', 'udp_sport', '5000', 'udp_dport', '6000');
    ns.ok('add', 'session', 'name', ifname, 'tunnel_id', '10', 'session_id', '1', 'peer_session_id', '2', 'cookie', '0102030405060708');
    dir = join(ns.runDir, readdirSync(ns.runDir)[0]);
    path = join(dir, 'ctl.sock');
  });
  after(() => ns?.destroy());

  it('answers >= 10,000 malformed requests with errors and keeps serving', async () => {
    const g = new Gen(new Rng(SEED));
    const pid = control<{ pid: number }>(ns).pid;
    const show = () => [ns.ok('show', 'tunnel'), ns.ok('show', 'session'), ns.ok('-j', 'show', 'session').replace(/"stats":\{[^}]*\}/g, '')].join('\n');
    const before0 = show();
    const state0 = readFileSync(join(dir, 'state.json'), 'utf8');
    const log0 = readFileSync(join(dir, 'daemon.log'), 'utf8').split('\n').length;
    let cases = 0;
    const notError: string[] = [];
    const join1 = (lines: Buffer[]) => Buffer.concat(lines.flatMap((l) => [l, NL]));
  const check = (c: Conn, sent: unknown[]) => {
      for (let i = 0; i < c.replies.length; i++) {
        const r = c.replies[i];
        if (r.ok !== false || typeof r.error?.message !== 'string') notError.push(JSON.stringify(r).slice(0, 200));
      }
      assert.equal(c.badJson, 0, 'every reply line is JSON');
      assert.equal(c.replies.length, sent.length, 'one reply per request line');
    };

    // 1. One connection, 6000 pipelined malformed lines in random-sized writes.
    {
      const c = await open(path);
      const lines: Buffer[] = [];
      for (let i = 0; i < 6000; i++) lines.push(g.line());
      await writeSplit(g, c.sock, join1(lines));
      assert.ok(await until(() => c.replies.length >= lines.length || c.closed, 60_000), `pipelined: ${c.replies.length}/${lines.length} replies`);
      check(c, lines);
      c.sock.destroy();
      cases += lines.length;
    }

    // 2. 200 concurrent connections, 20 lines each.
    {
      const conns = await Promise.all(Array.from({ length: 200 }, () => open(path)));
      const sent = conns.map(() => Array.from({ length: 20 }, () => g.line()));
      await Promise.all(conns.map((c, i) => writeSplit(g, c.sock, join1(sent[i]))));
      assert.ok(await until(() => conns.every((c, i) => c.replies.length >= sent[i].length), 60_000), 'many connections: all replied');
      conns.forEach((c, i) => check(c, sent[i]));
      for (const c of conns) c.sock.destroy();
      cases += 200 * 20;
    }

    // 3. Well-formed, refused by the daemon's state (out of order / duplicates / not local).
    {
      const c = await open(path);
      const reqs: unknown[] = [];
      for (let i = 0; i < 500; i++) {
        const id = 1000 + i;
        reqs.push(
          g.pick([
            { id, op: 'session_create', attrs: { tunnel_id: 999 + g.int(1000), session_id: 1 + g.int(100), peer_session_id: 1 } },
            { id, op: 'session_delete', attrs: { tunnel_id: 10, session_id: 2 + g.int(1000) } },
            { id, op: 'session_delete', attrs: { tunnel_id: 999, session_id: 1 } },
            { id, op: 'tunnel_delete', attrs: { tunnel_id: 11 + g.int(10000) } },
            { id, op: 'tunnel_create', attrs: { tunnel_id: 10, peer_tunnel_id: 20, local: '192.0.2.1', remote: '192.0.2.2', udp_sport: 5000, udp_dport: 6000 } },
            { id, op: 'session_create', attrs: { tunnel_id: 10, session_id: 1, peer_session_id: 2 } },
            { id, op: 'tunnel_create', attrs: { tunnel_id: 50, peer_tunnel_id: 50, local: '192.0.2.1', remote: '::1' } },
            { id, op: 'tunnel_create', attrs: { tunnel_id: 51, peer_tunnel_id: 51, local: '203.0.113.9', remote: '192.0.2.2', udp_sport: 7000 } },
            { id, op: 'tunnel_create', attrs: { tunnel_id: 52, peer_tunnel_id: 52, encap: 'ip', local: '203.0.113.9', remote: '192.0.2.2' } },
          ]),
        );
      }
      const text = reqs.map((r) => JSON.stringify(r)).join('\n') + '\n';
      await writeSplit(g, c.sock, text);
      assert.ok(await until(() => c.replies.length >= reqs.length, 60_000), `refused: ${c.replies.length}/${reqs.length}`);
      check(c, reqs.map(String));
      const ids = new Set(c.replies.map((r) => r.id));
      assert.equal(ids.size, reqs.length, 'every refused request is answered under its own id');
      c.sock.destroy();
      cases += reqs.length;
    }

    // 4. Lines over 64 KiB (with or without a newline): an error reply or a closed connection.
    for (let i = 0; i < 20; i++) {
      const c = await open(path);
      const big = '{"id":1,"op":"status","attrs":{"x":"' + 'A'.repeat(MAX_LINE + g.int(200_000)) + '"}}';
      await writeSplit(g, c.sock, i % 2 ? big + '\n' : big).catch(() => {}); // closing on us is allowed
      assert.ok(await until(() => c.closed || c.replies.length > 0, 10_000), 'oversize line: reply or close');
      for (const r of c.replies) assert.equal(r.ok, false);
      c.sock.destroy();
      cases++;
    }

    // 5. Partial lines then close (FIN) or reset; connect and close at once.
    for (let i = 0; i < 300; i++) {
      const c = await open(path);
      const l = g.line();
      c.sock.write(l.subarray(0, Math.max(1, g.int(l.length + 1))));
      if (i % 2) c.sock.end();
      else c.sock.destroy();
      cases++;
    }
    for (let i = 0; i < 100; i++) {
      const c = await open(path);
      c.sock.destroy();
      cases++;
    }
    // A request sent, then the connection dropped before the reply is read.
    for (let i = 0; i < 50; i++) {
      const c = await open(path);
      c.sock.write(JSON.stringify({ id: i, op: 'session_get', attrs: {} }) + '\n');
      c.sock.destroy();
    }

    console.log(`control fuzz: ${cases} malformed/refused cases (seed ${SEED})`);
    assert.ok(cases >= 10_000);
    assert.deepEqual(notError.slice(0, 5), [], `${notError.length} replies were not errors`);

    // The same daemon still serves, with the same configuration.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(control<{ pid: number }>(ns).pid, pid, 'same daemon');
    assert.equal(show(), before0, 'configuration unchanged');
    assert.equal(readFileSync(join(dir, 'state.json'), 'utf8'), state0, 'state file unchanged');
    const log1 = readFileSync(join(dir, 'daemon.log'), 'utf8').split('\n');
    const added = log1.slice(log0 - 1).filter(Boolean);
    assert.ok(added.length < 5, `daemon log grew by ${added.length} lines:\n${added.slice(-5).join('\n')}`);
    assert.ok(!added.some((l) => /request failed|internal error/.test(l)), `internal errors logged:\n${added.join('\n')}`);
  });

  it('a client that pipelines without reading cannot make the daemon buffer without bound', async () => {
    const pid = control<{ pid: number }>(ns).pid;
    const rss = () => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    const rss0 = rss();
    const N = 200_000;
    const c = await open(path);
    c.sock.pause(); // read nothing for now
    const line = (i: number) => `{"id":${i},"op":"session_get","attrs":{}}\n`;
    let i = 0;
    // Write as fast as the socket takes it for 4 s (our side buffers the rest).
    const chunk: string[] = [];
    for (; i < N; i++) chunk.push(line(i));
    c.sock.write(chunk.join(''));
    await new Promise((r) => setTimeout(r, 4000));
    const grown = rss() - rss0;
    console.log(`non-reading client: daemon RSS grew by ${grown} KiB while ${N} requests were pending`);
    assert.ok(grown < 48 * 1024, `daemon RSS grew by ${grown} KiB`);
    c.sock.resume();
    assert.ok(await until(() => c.replies.length >= N, 120_000), `replies ${c.replies.length}/${N}`);
    assert.ok(c.replies.every((r) => r.ok === true));
    c.sock.destroy();
    assert.equal(control<{ pid: number }>(ns).pid, pid);
  });
});

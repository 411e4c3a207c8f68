/**
 * CLI grammar fuzz (issue 9): random argument vectors built from the real
 * keywords and values, garbage, unicode, empty strings and huge numbers.
 *
 * - In process (fast, >= 10,000 vectors; CLI_FUZZ_CASES to change): through
 *   `runL2tp` with a fake daemon that answers like the real one (sometimes
 *   with an errno error). Each run must resolve (never throw, never hang),
 *   exit 0, or exit non-zero with an iproute2-style first stderr line; nothing
 *   may look like a stack trace.
 * - As real processes (a few hundred; CLI_FUZZ_PROCS): `node bin/ul2tp.js
 *   ...` with global options in front, in a dedicated namespace and
 *   UL2TP_RUNDIR with a real daemon. Same checks plus a timeout (no hang).
 *   The namespace is deleted afterwards, so nothing created survives.
 * Seeded (FUZZ_SEED).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { runL2tp } from '../../src/cli/run.js';
import type { SessionInfo, TunnelInfo } from '../../src/control/protocol.js';
import { L2tpError, kernelError } from '../../src/errors.js';
import { Rng } from '../../src/io/mem/fault-injector.js';
import { fakeCliIo, sessionInfo, tunnelInfo, type FakeCliIo } from '../../support/fake-daemon.js';
import { IP } from '../../support/ip.js';
import { Netns, netnsUnavailable } from '../../support/netns.js';
import { CLI } from '../../support/proc.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0xc11);
const CASES = Number(process.env.CLI_FUZZ_CASES ?? 12_000);
const PROCS = Number(process.env.CLI_FUZZ_PROCS ?? 300);

const VERBS = ['add', 'a', 'ad', 'del', 'd', 'delete', 'show', 's', 'sh', 'ls', 'lst', 'list', 'l', 'li', 'help', 'h', 'he', 'xyz', ''];
const KEYWORDS = [
  'tunnel',
  'session',
  'encap',
  'name',
  'remote',
  'local',
  'tunnel_id',
  'tid',
  'peer_tunnel_id',
  'ptid',
  'session_id',
  'sid',
  'peer_session_id',
  'psid',
  'udp_sport',
  'udp_dport',
  'udp_csum',
  'udp6_csum_tx',
  'udp6_csum_rx',
  'offset',
  'peer_offset',
  'cookie',
  'peer_cookie',
  'l2spec_type',
  'seq',
  'help',
  'hel',
];
const VALUES = [
  'ip',
  'udp',
  'UDP',
  'on',
  'off',
  'ON',
  'none',
  'default',
  'DEFAULT',
  'send',
  'recv',
  'both',
  'BoTh',
  '1',
  '0',
  '010',
  '08',
  '0x10',
  '0X',
  ' +5',
  '-1',
  '+',
  '4294967295',
  '4294967296',
  '99999999999999999999999999',
  '1e9',
  '65535',
  '65536',
  '1.5',
  '192.0.2.1',
  '192.0.2.2',
  '10.1',
  '0x0a.1.2.3',
  '1.2.3.4.5',
  '256.0.0.1',
  '::1',
  '2001:db8::1',
  '::ffff:1.2.3.4',
  ':::',
  'fe80::1%eth0',
  'any',
  'all',
  'deadbeef',
  'DEADBEEF01020304',
  '0102',
  'zz020304',
  'deadbeef0',
  'l2tpeth%d',
  'x%dy%d',
  '.',
  '..',
  'a/b',
  'a b',
  'abcdefghijklmnop',
  'ünïcødé',
  '😀',
  '\u0000',
  '\t',
  '\n',
  '',
  '-j',
  '--',
  'tunnel',
  'session',
];

function word(r: Rng): string {
  switch (r.int(10)) {
    case 0: {
      let s = '';
      const n = r.int(12);
      for (let i = 0; i < n; i++) s += String.fromCodePoint(r.int(3) === 0 ? r.int(0x11000) : 32 + r.int(95));
      return s.replace(/[\ud800-\udfff]/g, '?');
    }
    case 1:
      return String(r.int(2) ? r.u32() : r.u32() * 2 ** 21 + r.u32());
    case 2:
    case 3:
    case 4:
      return KEYWORDS[r.int(KEYWORDS.length)];
    default:
      return VALUES[r.int(VALUES.length)];
  }
}

/** A random argv after `ip l2tp`: a verb, then a mix, sometimes a nearly valid command. */
function argv(r: Rng): string[] {
  const a: string[] = [];
  if (r.int(20) !== 0) a.push(VERBS[r.int(VERBS.length)]);
  const nearly = r.int(2) === 0;
  if (nearly) {
    // nearly valid: the required keys with (mostly) good values
    a.push(...['tunnel', 'session'].slice(r.int(2), 1 + r.int(2)));
    const kv = ['tunnel_id', '7', 'peer_tunnel_id', '8', 'session_id', '9', 'peer_session_id', '10', 'local', '192.0.2.1', 'remote', '192.0.2.2', 'udp_sport', '7000', 'udp_dport', '7001'];
    for (let i = 0; i < kv.length; i += 2) if (r.int(8)) a.push(kv[i], r.int(8) ? kv[i + 1] : word(r));
  }
  const n = r.int(nearly ? 3 : 12);
  for (let i = 0; i < n; i++) a.push(word(r));
  return a;
}

/** First line of an error output, in iproute2's wording (docs/protocol.md §4.4) or ours prefixed `Error: `. */
const ERROR_LINE =
  /^(Error: |Usage: ip l2tp|Unknown command: |Command ".*" is unknown, try "ip l2tp help"\.|Command line is not complete\. Try option "help"|RTNETLINK answers: |Unknown (tunnel encapsulation|layer2specific header type|seq value) "|Ignoring option "|Dump terminated)/s;
const WARNING = /^Ignoring option "(offset|peer_offset)"$/;

function checkOutput(args: string[], status: number, stdout: string, stderr: string): void {
  const ctx = `argv ${JSON.stringify(args)} → ${status}\nstderr: ${stderr.slice(0, 400)}`;
  assert.ok(Number.isInteger(status) && status >= 0 && status <= 255, ctx);
  for (const text of [stdout, stderr]) {
    assert.ok(!/\n\s+at [^\n]*[:(]/.test(text), `stack trace: ${ctx}`);
    assert.ok(!/\b(TypeError|RangeError|ReferenceError|SyntaxError|AssertionError|ERR_[A-Z_]+)\b/.test(text), `JS error: ${ctx}`);
  }
  if (status === 0) {
    for (const l of stderr.split('\n').filter(Boolean)) assert.ok(WARNING.test(l) || l.startsWith('RTNETLINK answers: '), `status 0 with stderr: ${ctx}`);
  } else {
    // Skip the warnings; the message may itself contain newlines (it quotes the user's word).
    const msg = stderr.replace(/^(Ignoring option "[a-z_]+"\n)+/, '');
    assert.ok(msg.trim() !== '', `non-zero exit without a message: ${ctx}`);
    assert.match(msg, ERROR_LINE, ctx);
  }
}

const tunnel = (id: number): TunnelInfo => tunnelInfo({ tunnel_id: id });
const session = (tid: number, sid: number): SessionInfo => sessionInfo({ tunnel_id: tid, session_id: sid, cookie: 'deadbeef', recv_seq: true });

/** A fake daemon: answers like the real one, with an errno error now and then. */
function fakeIo(r: Rng): FakeCliIo {
  return fakeCliIo(
    (op) => {
      const roll = r.int(6);
      if (roll === 0) throw kernelError(['EEXIST', 'ENODEV', 'EINVAL', 'EADDRINUSE', 'EADDRNOTAVAIL'][r.int(5)]);
      if (roll === 1 && r.int(4) === 0) throw new L2tpError('PROTOCOL', 'tunnel_create: attribute "x" must be weird');
      switch (op) {
        case 'tunnel_get':
          return { tunnels: [tunnel(1), tunnel(7)] };
        case 'session_get':
          return { sessions: [session(1, 1), session(7, 9)] };
        case 'session_create':
          return { ifname: 'l2tpeth0' };
        default:
          return {};
      }
    },
    () => {
      if (r.int(50) === 0) throw new L2tpError('DAEMON', 'cannot start ul2tp daemon: test');
    },
  );
}

describe('CLI grammar fuzz', () => {
  it(`${CASES} random argument vectors in process`, async () => {
    const r = new Rng(SEED);
    const statuses = new Map<number, number>();
    for (let i = 0; i < CASES; i++) {
      const args = argv(r);
      const f = fakeIo(r);
      const opts = { json: r.int(3) === 0, pretty: r.int(4) === 0, oneline: r.int(8) === 0 };
      let status: number;
      try {
        status = await Promise.race([
          runL2tp(args, opts, f.io),
          new Promise<number>((_, rej) => setTimeout(() => rej(new Error('hang')), 2000).unref()),
        ]);
      } catch (e) {
        assert.fail(`argv ${JSON.stringify(args)} threw ${e instanceof Error ? e.stack : String(e)}`);
      }
      checkOutput(args, status, f.out(), f.err());
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    console.log(`cli fuzz in process: ${CASES} vectors, exit statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.ok((statuses.get(0) ?? 0) > 0 && (statuses.get(255) ?? 0) > 0, 'the mix reaches both success and errors');
  });

  const skip = netnsUnavailable();
  describe('as processes', { skip: skip || undefined }, () => {
    let ns: Netns;
    before(() => {
      ns = new Netns('ul2c');
      ns.ip('link', 'add', `cz${process.pid % 100000}`, 'type', 'veth', 'peer', 'name', `cy${process.pid % 100000}`);
      ns.ip('addr', 'add', '192.0.2.1/24', 'dev', `cz${process.pid % 100000}`);
      ns.ip('link', 'set', `cz${process.pid % 100000}`, 'up');
      ns.ok('show', 'tunnel'); // start the daemon
    });
    after(() => ns?.destroy());

    it(`${PROCS} random command lines as real ul2tp processes`, async () => {
      const r = new Rng(SEED + 1);
      const GLOBAL = ['-j', '-json', '-p', '-pretty', '-s', '-stats', '-o', '-oneline', '--', '-jp', '-x', '--bogus', '-V', '-h'];
      const cases: string[][] = [];
      for (let i = 0; i < PROCS; i++) {
        const g: string[] = [];
        const n = r.int(3);
        for (let k = 0; k < n; k++) g.push(GLOBAL[r.int(GLOBAL.length)]);
        // `daemon` would start a foreground daemon: not a grammar case.
        cases.push([...g, ...argv(r).map((w) => (w === 'daemon' ? 'daemo' : w)).filter((w) => !w.includes('\u0000'))]);
      }
      const statuses = new Map<number, number>();
      let next = 0;
      const worker = async () => {
        while (next < cases.length) {
          const args = cases[next++];
          const res = await new Promise<{ status: number; out: string; err: string; hung: boolean }>((resolve) => {
            const c = spawn(IP, ['netns', 'exec', ns.name, process.execPath, CLI, ...args], { env: ns.env(), stdio: ['ignore', 'pipe', 'pipe'] });
            let out = '';
            let err = '';
            let hung = false;
            c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
            c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
            const t = setTimeout(() => {
              hung = true;
              if (c.pid) process.kill(c.pid, 'SIGKILL');
            }, 20_000);
            c.on('close', (code) => {
              clearTimeout(t);
              resolve({ status: code ?? -1, out, err, hung });
            });
          });
          assert.ok(!res.hung, `hang: ${JSON.stringify(args)}`);
          // Options that are not ip's (-V, -h, unknown ones) go to commander: its own wording.
          let commander = false;
          for (const a of args) {
            if (a === '--' || a.length < 2 || a[0] !== '-') break;
            if (!/^--?(j|js|jso|json|p|pr|pre|pret|prett|pretty|s|st|sta|stat|stats|o|on|one|onel|oneli|onelin|oneline)$/.test(a)) {
              commander = true;
              break;
            }
          }
          if (commander && res.status !== 0) {
            assert.match(res.err, /^(error: |Error: )/m, JSON.stringify(args));
            assert.ok(!/\n\s+at /.test(res.err), `stack trace: ${JSON.stringify(args)}`);
          } else if (!commander) {
            checkOutput(args, res.status, res.out, res.err);
          }
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      console.log(`cli fuzz as processes: ${PROCS} command lines, exit statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
      assert.ok(ns.daemonPid() !== undefined, 'the daemon is still up');
    });
  });
});

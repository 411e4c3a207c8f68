/**
 * End-to-end traffic beyond pings: a bulk TCP transfer checked byte for byte,
 * the man page's MTU examples, a session bridged to a third namespace, and
 * deleting sessions and tunnels while traffic flows.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Netns, netnsUnavailable, ping, underlay, uniq, type Underlay } from '../../../support/netns.js';
import { ROOT, waitFor } from '../../../support/proc.js';
import { control, makeLink, sessionCounters } from '../../../support/ul2tp.js';
import { IP } from '../../../support/ip.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping e2e traffic: ${skip}`);
const XFER = join(ROOT, 'dist', 'test', 'integration', 'lib', 'tcp-xfer.js');
const backends = (process.env.UL2TP_E2E_BACKENDS ?? 'koffi,native-free').split(',').filter(Boolean);

/** IPv4 fragments created by the stack in a namespace (outer fragmentation check). */
function fragCreates(ns: Netns): number {
  const snmp = ns.exec('cat', ['/proc/net/snmp']).stdout.split('\n').filter((l) => l.startsWith('Ip:'));
  const keys = snmp[0].split(/\s+/);
  const vals = snmp[1].split(/\s+/);
  return Number(vals[keys.indexOf('FragCreates')]);
}

/** Transfer `bytes` from A to B over TCP; returns [sent line, received line]. */
async function transfer(u: Underlay, to: string, port: number, bytes: number): Promise<[string, string]> {
  const server = u.b.spawn(process.execPath, [XFER, 'serve', String(port)]);
  let out = '';
  server.stdout!.on('data', (d: string) => (out += d));
  assert.ok(await waitFor(() => out.includes('READY'), 10_000), 'receiver did not start');
  const sent = u.a.exec(process.execPath, [XFER, 'send', to, String(port), String(bytes)], 180_000);
  assert.equal(sent.status, 0, sent.stderr);
  assert.ok(await waitFor(() => out.split('\n').length >= 3, 30_000), 'receiver did not finish');
  if (server.exitCode === null && server.signalCode === null) await once(server, 'exit');
  return [sent.stdout.trim(), out.split('\n')[1].trim()];
}

for (const backend of backends) {
  describe(`e2e traffic on the ${backend} backend`, { skip: skip || undefined }, () => {
    let u: Underlay;
    before(() => {
      u = underlay();
      process.env.UL2TP_BACKEND = backend;
    });
    after(() => {
      delete process.env.UL2TP_BACKEND;
      u?.destroy();
    });

    it('carries a 50 MB TCP transfer intact (seq both, 8-byte cookies)', async () => {
      const l = makeLink(u, { n: 1, cookies: ['0102030405060708', '1112131415161718'], seq: 'both' });
      try {
        const [sent, got] = await transfer(u, l.b4, 7001, 50 * 1024 * 1024);
        assert.equal(got, sent, 'received bytes and sha256 match what was sent');
        assert.match(sent, /^52428800 [0-9a-f]{64}$/);
        const cb = sessionCounters(u.b, l.tidB, l.sidB);
        assert.equal(cb.rx_cookie_discards, 0);
      } finally {
        l.remove();
      }
    });

    it('bridged MTU 1446 (man page) passes full-size frames without outer fragmentation', () => {
      const l = makeLink(u, { n: 2, mtu: 1446 });
      try {
        const before = fragCreates(u.a);
        // 1446-byte IP packets with DF: the largest the overlay takes.
        assert.equal(ping(u.a, l.b4, 3, 1446 - 28, ['-M', 'do']), 3);
        assert.equal(fragCreates(u.a), before, 'no outer IPv4 fragments were created');
      } finally {
        l.remove();
      }
    });

    it('routed MTU 1488 (man page) works; oversize outer packets are fragmented like the kernel (DF=0)', () => {
      const l = makeLink(u, { n: 3, mtu: 1488 });
      try {
        assert.equal(ping(u.a, l.b4, 3, 1488 - 28, ['-M', 'do']), 3);
        // Frames that fit a 1446 overlay never fragment on the outside.
        const before = fragCreates(u.a);
        assert.equal(ping(u.a, l.b4, 3, 1400, ['-M', 'do']), 3);
        assert.equal(fragCreates(u.a), before);
      } finally {
        l.remove();
      }
    });

    it('bridges a session interface with a veth carrying a third namespace', () => {
      const c = new Netns('ul2c');
      const l = makeLink(u, { n: 4, up: false });
      const br = uniq('br');
      const va = uniq('vc');
      const vc = uniq('vd');
      try {
        u.a.ip('link', 'add', br, 'type', 'bridge');
        u.a.ip('link', 'add', va, 'type', 'veth', 'peer', 'name', vc);
        u.a.ip('link', 'set', vc, 'netns', c.name);
        u.a.ip('link', 'set', l.ifA, 'mtu', '1446', 'master', br, 'up');
        u.a.ip('link', 'set', va, 'mtu', '1446', 'master', br, 'up');
        u.a.ip('link', 'set', br, 'up');
        c.ip('link', 'set', vc, 'mtu', '1446', 'up');
        c.ip('addr', 'add', '10.77.0.3/24', 'dev', vc);
        u.b.ip('link', 'set', l.ifB, 'mtu', '1446', 'up');
        u.b.ip('addr', 'add', '10.77.0.2/24', 'dev', l.ifB);
        assert.equal(ping(c, '10.77.0.2', 3), 3, 'third namespace reaches site B through the bridged session');
        assert.equal(ping(u.b, '10.77.0.3', 3), 3, 'and back');
      } finally {
        l.remove();
        u.a.exec(IP, ['link', 'del', br]);
        u.a.exec(IP, ['link', 'del', va]);
        c.destroy();
      }
    });

    it('deleting a session, then a tunnel, while traffic flows stops it cleanly', async () => {
      const l1 = makeLink(u, { n: 5 });
      const l2 = makeLink(u, { n: 6 });
      try {
        const flood1 = u.a.spawn('ping', ['-f', '-w', '8', l1.b4]);
        const flood2 = u.a.spawn('ping', ['-f', '-w', '8', l2.b4]);
        await new Promise((r) => setTimeout(r, 1000));
        assert.equal(u.a.ul2tp('del', 'session', 'tunnel_id', String(l1.tidA), 'session_id', String(l1.sidA)).status, 0);
        assert.notEqual(u.a.exec(IP, ['link', 'show', l1.ifA]).status, 0, 'session interface removed');
        // The other link is unaffected.
        assert.equal(ping(u.a, l2.b4, 3), 3);
        assert.equal(u.b.ul2tp('del', 'tunnel', 'tunnel_id', String(l2.tidB)).status, 0);
        assert.notEqual(u.b.exec(IP, ['link', 'show', l2.ifB]).status, 0);
        for (const f of [flood1, flood2]) if (f.exitCode === null && f.signalCode === null) await once(f, 'exit');
        // Both daemons are alive and answer.
        assert.ok(control<{ pid: number }>(u.a).pid > 0);
        assert.ok(control<{ pid: number }>(u.b).pid > 0);
        const show = u.a.ok('show', 'session');
        assert.ok(!show.includes(`Session ${l1.sidA} `), 'deleted session is not shown');
      } finally {
        l1.remove();
        l2.remove();
      }
    });
  });
}

/**
 * Proves the QEMU harness independently of ul2tp: QEMU ↔ QEMU over l2tpv3,
 * one configured with `qemuAsL2tpOptions(p)` (standing where ul2tp will be),
 * the other with `qemuL2tpv3Options(p)` (what the interop tests use). A
 * capture decoded by tshark shows that the QEMU facing the ul2tp config `p`
 * writes exactly what `p` accepts: session id = p.sessionId, cookie =
 * p.peerCookie, and the counter word with S=0. Also gives the QEMU ↔ QEMU
 * throughput that the interop test's figure can be compared with.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { captureUnavailable, L2TP_NOT_ICMP_ERROR, startCapture, tsharkFields, vethOf } from '../lib/capture.js';
import { netnsUnavailable, underlay, type Underlay } from '../../../support/netns.js';
import { qemuAsL2tpOptions, qemuUnavailable, startQemu, type L2tpPeer, type QemuPeer } from '../lib/qemu.js';
import { pings, underlayReady } from '../lib/ready.js';
import { bulkTransfer } from '../lib/xfer.js';

const skip = netnsUnavailable() || qemuUnavailable() || captureUnavailable();
if (skip) console.log(`# skipping QEMU harness: ${skip}`);

describe('QEMU ↔ QEMU harness self-check', { skip: skip || undefined }, () => {
  let u: Underlay;
  before(async () => {
    u = underlay();
    await underlayReady(u);
  });
  after(() => u?.destroy());

  const cases: Array<{ title: string; p: (u: Underlay) => L2tpPeer; prefs: string[]; bulk?: boolean }> = [
    {
      title: 'UDP IPv4, 4-byte cookies, counter (l2spec default)',
      p: (u) => ({ encap: 'udp', local: u.a4, remote: u.b4, udpSport: 5101, udpDport: 6101, sessionId: 1101, peerSessionId: 2101, cookie: 'a1b2c3d4', peerCookie: '0badf00d', l2specType: 'default' }),
      prefs: ['l2tp.cookie_size:4 Byte Cookie', 'l2tp.l2_specific:Default L2-Specific'],
      bulk: true,
    },
    {
      title: 'IP IPv6, 8-byte cookies, no counter (l2spec none)',
      p: (u) => ({ encap: 'ip', local: u.a6, remote: u.b6, sessionId: 1102, peerSessionId: 2102, cookie: '0102030405060708', peerCookie: 'f0e0d0c0b0a09080', l2specType: 'none' }),
      prefs: ['l2tp.cookie_size:8 Byte Cookie', 'l2tp.l2_specific:None'],
    },
  ];

  for (const c of cases) {
    it(c.title, async (t) => {
      const p = c.p(u);
      const qs: QemuPeer[] = [];
      const cap = await startCapture(u.a, vethOf(u.a));
      try {
        qs.push(await startQemu(u.a, qemuAsL2tpOptions(p), { addrs: ['10.200.0.1/24'] }));
        qs.push(await startQemu(u.b, p, { addrs: ['10.200.0.2/24'] }));
        const why = () => qs.map((q) => `${q.options}: ${q.stderr()}`).join('\n');
        assert.equal(pings(u.a, '10.200.0.2', 3), '3/3', why());
        assert.equal(pings(u.b, '10.200.0.1', 3), '3/3', why());
        if (c.bulk) {
          const r = await bulkTransfer(u.a, u.b, '10.200.0.2', 7101, 20 * 1024 * 1024);
          assert.equal(r.got, r.sent);
          t.diagnostic(`QEMU → QEMU 20 MB: ${r.mbps.toFixed(0)} Mbit/s`);
        }
        await cap.stop();
        const rows = tsharkFields(cap.file, ['ip.src', 'ipv6.src', 'l2tp.sid', 'l2tp.cookie', 'l2tp.l2_spec_s', 'eth.type', 'icmp.type'], {
          decodeAs: ['l2tp.pw_type==0,eth', ...(p.encap === 'udp' ? [`udp.port==${p.udpSport},l2tp`, `udp.port==${p.udpDport},l2tp`] : [])],
          prefs: c.prefs,
          filter: `${L2TP_NOT_ICMP_ERROR} && icmp`,
        });
        // Outer source: the IPv6 header's, else the first IPv4 header's (the inner packet is IPv4 too).
        const outerSrc = (r: Record<string, string>) => r['ipv6.src'] || r['ip.src'].split(',')[0];
        const fromPeer = rows.filter((r) => outerSrc(r) === p.remote);
        const fromSelf = rows.filter((r) => outerSrc(r) === p.local);
        assert.ok(fromPeer.length >= 6 && fromSelf.length >= 6, `ICMP over L2TP both ways: ${JSON.stringify(rows.slice(0, 3))}`);
        const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
        for (const r of fromPeer) {
          assert.equal(r['l2tp.sid'], hex(p.sessionId), 'QEMU facing ul2tp writes ul2tp session_id');
          assert.equal(r['l2tp.cookie'], p.peerCookie, 'and ul2tp peer_cookie');
          if (p.l2specType !== 'none') assert.equal(r['l2tp.l2_spec_s'], '0', "QEMU's counter never sets S");
          assert.equal(r['eth.type'].split(',').pop(), '0x0800', 'inner Ethernet carries IPv4');
        }
        for (const r of fromSelf) {
          assert.equal(r['l2tp.sid'], hex(p.peerSessionId));
          assert.equal(r['l2tp.cookie'], p.cookie);
        }
      } finally {
        await cap.stop();
        cap.remove();
        for (const q of qs) await q.stop();
      }
    });
  }
});

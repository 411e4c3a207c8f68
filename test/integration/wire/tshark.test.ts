/**
 * On-the-wire check: the outer packets between two ul2tp namespaces are
 * captured with tcpdump on the underlay veth and decoded by tshark's L2TP
 * dissector (an independent implementation of RFC 3931). Asserted per
 * direction: the session id on the wire is the sender's peer_session_id, the
 * cookie is the sender's `cookie` byte for byte, the default L2-specific
 * sublayer carries S=1 and a sequence number that starts at 0 and grows by 1
 * per frame with `seq both` (S=0 and 0 without), the inner frame decodes as
 * Ethernet carrying the pings, the IPv4 UDP checksum is 0 with `udp_csum off`,
 * and the outer IPv4 DF bit is 0 (docs/protocol.md §1, §3.2, §3.3, §7).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { captureUnavailable, L2TP_NOT_ICMP_ERROR, startCapture, tsharkFields, vethOf } from '../lib/capture.js';
import { netnsUnavailable, underlay, type Underlay } from '../../../support/netns.js';
import { pings, underlayReady } from '../lib/ready.js';
import { makeLink, type Link, type LinkOptions } from '../../../support/ul2tp.js';

const skip = netnsUnavailable() || captureUnavailable();
if (skip) console.log(`# skipping wire check: ${skip}`);

const FIELDS = [
  'ip.src',
  'ipv6.src',
  'ip.flags.df',
  'udp.checksum',
  'l2tp.sid',
  'l2tp.cookie',
  'l2tp.l2_spec_s',
  'l2tp.l2_spec_sequence',
  'eth.type',
  'icmp.type',
  'icmpv6.type',
];

type Row = Record<string, string>;
const first = (v: string) => v.split(',')[0];
const last = (v: string) => v.split(',').pop() ?? '';
const hex32 = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

interface WireCase {
  title: string;
  link: Omit<LinkOptions, 'n' | 'up'>;
}

const CASES: WireCase[] = [
  {
    title: 'UDP over IPv4, 4-byte cookies, l2spec default, seq both, udp_csum off',
    link: { encap: 'udp', family: 4, cookies: ['a1b2c3d4', '0badf00d'], l2spec: 'default', seq: 'both' },
  },
  {
    title: 'IP (proto 115) over IPv4, 8-byte cookies, l2spec default, seq none',
    link: { encap: 'ip', family: 4, cookies: ['0102030405060708', 'f0e0d0c0b0a09080'], l2spec: 'default', seq: 'none' },
  },
  {
    title: 'IP (proto 115) over IPv6, 4-byte cookies, l2spec default, seq both',
    link: { encap: 'ip', family: 6, cookies: ['deadbeef', 'cafef00d'], l2spec: 'default', seq: 'both' },
  },
  {
    title: 'UDP over IPv6, no cookie, l2spec none',
    link: { encap: 'udp', family: 6, l2spec: 'none', seq: 'none' },
  },
];

/**
 * Backends: koffi is checked in full. native-free has no raw IP sockets and
 * cannot set IP_MTU_DISCOVER or UDP_NO_CHECK (docs/protocol.md §6.4): it runs the UDP
 * cases with everything checked except the IPv4 DF bit and the zero UDP checksum.
 */
const backends = (process.env.UL2TP_WIRE_BACKENDS ?? process.env.UL2TP_E2E_BACKENDS ?? 'koffi,native-free').split(',').filter(Boolean);

for (const backend of backends) {
  describe(`wire format seen by tshark (${backend} backend)`, { skip: skip || undefined }, () => suite(backend));
}

function suite(backend: string): void {
  const full = backend !== 'native-free';
  let u: Underlay;
  let n = 40;
  before(async () => {
    u = underlay();
    process.env.UL2TP_BACKEND = backend; // inherited by the daemons the first CLI calls start
    await underlayReady(u);
  });
  after(() => {
    delete process.env.UL2TP_BACKEND;
    u?.destroy();
  });

  for (const c of CASES.filter((x) => full || x.link.encap === 'udp')) {
    it(c.title, async () => {
      const o = c.link;
      const fam = o.family ?? 4;
      const cookieLen = (o.cookies?.[0].length ?? 0) / 2;
      const l2spec = o.l2spec ?? 'default';
      const seq = o.seq === 'both' || o.seq === 'send';
      // B's packets are seen arriving at A's veth: B's veth must cut up UDP GSO sends too (see startCapture).
      const bUso = u.b.exec('ethtool', ['-K', vethOf(u.b), 'tx-udp-segmentation', 'off']);
      assert.equal(bUso.status, 0, bUso.stderr);
      const cap = await startCapture(u.a, vethOf(u.a));
      let l: Link | undefined;
      try {
        // Interfaces come up only once tcpdump runs, so the very first frame
        // of each session (sequence 0) is in the capture.
        l = makeLink(u, { ...o, n: ++n, up: false });
        for (const [ns, ifn, a4, a6] of [
          [u.a, l.ifA, l.a4, l.a6],
          [u.b, l.ifB, l.b4, l.b6],
        ] as const) {
          ns.ip('addr', 'add', `${a4}/24`, 'dev', ifn);
          ns.ip('-6', 'addr', 'add', `${a6}/64`, 'dev', ifn, 'nodad');
          ns.ip('link', 'set', ifn, 'up');
        }
        assert.equal(pings(u.a, l.b4, 4), '4/4', 'IPv4 pings A → B');
        assert.equal(pings(u.b, l.a6, 2), '2/2', 'IPv6 pings B → A');
        await new Promise((r) => setTimeout(r, 200));
        await cap.stop();

        const port = 5000 + n; // makeLink: A's udp_sport
        const rows = tsharkFields(cap.file, FIELDS, {
          decodeAs: ['l2tp.pw_type==0,eth', ...(o.encap === 'udp' ? [`udp.port==${port},l2tp`] : [])],
          prefs: [
            `l2tp.cookie_size:${cookieLen === 0 ? 'None' : `${cookieLen} Byte Cookie`}`,
            `l2tp.l2_specific:${l2spec === 'default' ? 'Default L2-Specific' : 'None'}`,
          ],
          filter: L2TP_NOT_ICMP_ERROR,
        });
        const [srcA, srcB] = fam === 4 ? [u.a4, u.b4] : [u.a6, u.b6];
        const outerSrc = (r: Row) => first(fam === 6 ? r['ipv6.src'] : r['ip.src']);
        const fromA = rows.filter((r) => outerSrc(r) === srcA);
        const fromB = rows.filter((r) => outerSrc(r) === srcB);
        const dump = () => JSON.stringify(rows.slice(0, 4));
        assert.ok(fromA.length >= 6 && fromB.length >= 6, `L2TP packets both ways (${fromA.length}/${fromB.length}): ${dump()}`);

        for (const [pkts, peerSid, cookie] of [
          [fromA, l.sidB, o.cookies?.[0] ?? ''],
          [fromB, l.sidA, o.cookies?.[1] ?? ''],
        ] as const) {
          pkts.forEach((r, i) => {
            const at = `packet ${i}: ${JSON.stringify(r)}`;
            assert.equal(r['l2tp.sid'], hex32(peerSid), `session id is the peer_session_id (${at})`);
            assert.equal(r['l2tp.cookie'], cookie, `cookie bytes as configured (${at})`);
            if (l2spec === 'default') {
              assert.equal(r['l2tp.l2_spec_s'], seq ? '1' : '0', `S bit (${at})`);
              assert.equal(Number(r['l2tp.l2_spec_sequence']), seq ? i : 0, `sequence number ${seq ? 'starts at 0, +1 per frame' : 'is 0'} (${at})`);
            } else {
              assert.equal(r['l2tp.l2_spec_s'], '', `no sublayer (${at})`);
            }
            if (fam === 4 && full) assert.equal(first(r['ip.flags.df']), '0', `outer IPv4 DF is 0 (${at})`);
            if (o.encap === 'udp') {
              const ck = first(r['udp.checksum']);
              // IPv6 by default, as the kernel; IPv4 when udp_csum is not given (unlike the kernel: UDP GSO needs them)
              assert.notEqual(ck, '0x0000', `UDP is checksummed by default (${at})`);
            }
          });
        }
        // The inner frames are Ethernet carrying the pings: echo requests one way, replies the other.
        const icmp = (pkts: Row[], field: string) => pkts.filter((r) => r[field] !== '').map((r) => `${last(r['eth.type'])}/${last(r[field])}`);
        // (pings() may send a probe or two more than asked while it waits, so: at least.)
        const all = (xs: string[], want: string, min: number, what: string) => {
          assert.ok(xs.length >= min && xs.every((x) => x === want), `${what}: ${JSON.stringify(xs)} ${dump()}`);
        };
        all(icmp(fromA, 'icmp.type'), '0x0800/8', 4, 'A → B echo requests');
        all(icmp(fromB, 'icmp.type'), '0x0800/0', 4, 'B → A echo replies');
        all(icmp(fromB, 'icmpv6.type').filter((x) => x.endsWith('/128')), '0x86dd/128', 2, 'IPv6 echo requests B → A');
        all(icmp(fromA, 'icmpv6.type').filter((x) => x.endsWith('/129')), '0x86dd/129', 2, 'IPv6 echo replies A → B');
      } finally {
        await cap.stop();
        cap.remove();
        l?.remove();
      }
    });
  }

  // native-free cannot set UDP_NO_CHECK (native-free/README.md): both sides send valid checksums there.
  const otherSide = full ? '0 from the other (udp_csum off)' : 'valid ones from the udp_csum off side too (native-free always checksums)';
  it(`UDP over IPv4 with udp_csum on one side: valid checksums from it, ${otherSide}`, async () => {
    const k = ++n;
    const [tidA, tidB, sidA, sidB, ifA, ifB] = [100 + k, 200 + k, 1000 + k, 2000 + k, `l2a${k}`, `l2b${k}`];
    const [sport, dport] = [5000 + k, 6000 + k];
    // With tx checksum offload the capture would show the sender's partial
    // checksum (what the NIC would finish), not the one on the wire.
    // (on both ends: B's packets are captured arriving at A, as B's veth left them)
    for (const ns of [u.a, u.b]) {
      const off = ns.exec('ethtool', ['-K', vethOf(ns), 'tx', 'off']);
      assert.equal(off.status, 0, `ethtool: ${off.stderr}`);
    }
    const cap = await startCapture(u.a, vethOf(u.a));
    try {
      u.a.ok('add', 'tunnel', 'tunnel_id', String(tidA), 'peer_tunnel_id', String(tidB), 'encap', 'udp', 'local', u.a4, 'remote', u.b4,
        'udp_sport', String(sport), 'udp_dport', String(dport), 'udp_csum', 'on');
      u.b.ok('add', 'tunnel', 'tunnel_id', String(tidB), 'peer_tunnel_id', String(tidA), 'encap', 'udp', 'local', u.b4, 'remote', u.a4,
        'udp_sport', String(dport), 'udp_dport', String(sport), 'udp_csum', 'off');
      u.a.ok('add', 'session', 'name', ifA, 'tunnel_id', String(tidA), 'session_id', String(sidA), 'peer_session_id', String(sidB));
      u.b.ok('add', 'session', 'name', ifB, 'tunnel_id', String(tidB), 'session_id', String(sidB), 'peer_session_id', String(sidA));
      u.a.ip('addr', 'add', `10.${k}.0.1/24`, 'dev', ifA);
      u.b.ip('addr', 'add', `10.${k}.0.2/24`, 'dev', ifB);
      u.a.ip('link', 'set', ifA, 'up');
      u.b.ip('link', 'set', ifB, 'up');
      assert.equal(pings(u.a, `10.${k}.0.2`, 3), '3/3');
      await new Promise((r) => setTimeout(r, 200));
      await cap.stop();
      const rows = tsharkFields(cap.file, ['ip.src', 'udp.checksum', 'udp.checksum.status', 'l2tp.sid', 'icmp.type'], {
        decodeAs: ['l2tp.pw_type==0,eth', `udp.port==${sport},l2tp`],
        prefs: ['l2tp.cookie_size:None', 'l2tp.l2_specific:Default L2-Specific', 'udp.check_checksum:TRUE'],
        filter: L2TP_NOT_ICMP_ERROR,
      });
      const fromA = rows.filter((r) => first(r['ip.src']) === u.a4);
      const fromB = rows.filter((r) => first(r['ip.src']) === u.b4);
      assert.ok(fromA.length >= 3 && fromB.length >= 3, JSON.stringify(rows.slice(0, 4)));
      for (const r of fromA) {
        assert.notEqual(first(r['udp.checksum']), '0x0000', `udp_csum on → a checksum (${JSON.stringify(r)})`);
        assert.equal(first(r['udp.checksum.status']), '1', `tshark verifies it as good (${JSON.stringify(r)})`);
        assert.equal(r['l2tp.sid'], hex32(sidB));
      }
      for (const r of fromB) {
        if (full) assert.equal(first(r['udp.checksum']), '0x0000', `udp_csum off → 0 (${JSON.stringify(r)})`);
        else assert.equal(first(r['udp.checksum.status']), '1', `native-free: udp_csum off still sends a good checksum (${JSON.stringify(r)})`);
      }
    } finally {
      await cap.stop();
      cap.remove();
      u.a.ul2tp('del', 'tunnel', 'tunnel_id', String(tidA));
      u.b.ul2tp('del', 'tunnel', 'tunnel_id', String(tidB));
    }
  });
}

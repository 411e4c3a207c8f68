/**
 * Interop with QEMU's userspace L2TPv3 (`-netdev l2tpv3`): ul2tp in namespace
 * A (tunnel + session through the CLI, interface up with an address), a
 * guest-less QEMU in namespace B whose TAP interface carries the other end's
 * address. Pings both ways (IPv4 and IPv6 over the overlay) for
 * encap udp/ip × underlay IPv4/IPv6 × cookies 0/4/8 × l2spec none/default
 * (QEMU counter off/on), bulk TCP transfers both ways for a subset, and the
 * sequencing rules that apply towards QEMU (docs/protocol.md §6.1, §2.5):
 * `seq send` is turned off by QEMU's unsequenced packets, `seq both` drops
 * them all. A wrong cookie is also shown to be refused, so the cookie mapping
 * is really exercised.
 *
 * The ip-l2tp → QEMU option mapping is in test/integration/lib/qemu.ts and
 * docs/qemu-interop.md.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { captureUnavailable, L2TP_NOT_ICMP_ERROR, startCapture, tsharkFields, vethOf } from '../lib/capture.js';
import { netnsUnavailable, ping, underlay, type Netns, type Underlay } from '../../../support/netns.js';
import { qemuUnavailable, startQemu, type L2tpPeer, type QemuPeer } from '../lib/qemu.js';
import { control, sessionCounters } from '../../../support/ul2tp.js';
import { pings, underlayReady } from '../lib/ready.js';
import { bulkTransfer } from '../lib/xfer.js';

const skip = netnsUnavailable() || qemuUnavailable();
if (skip) console.log(`# skipping QEMU interop: ${skip}`);

const MB = 1024 * 1024;
const BULK = Number(process.env.UL2TP_QEMU_BULK_MB ?? 20) * MB;
const COOKIES: Record<number, [string, string]> = {
  0: ['', ''],
  4: ['a1b2c3d4', '0badf00d'],
  8: ['0102030405060708', 'f0e0d0c0b0a09080'],
};

interface Case {
  encap: 'udp' | 'ip';
  fam: 4 | 6;
  cookieLen: 0 | 4 | 8;
  l2spec: 'none' | 'default';
  bulk?: boolean;
}

/** Pings for every combination; bulk both ways for one UDP and one IP case per family. */
const CASES: Case[] = [];
for (const encap of ['udp', 'ip'] as const) {
  for (const fam of [4, 6] as const) {
    for (const cookieLen of [0, 4, 8] as const) {
      for (const l2spec of ['default', 'none'] as const) {
        const bulk =
          (encap === 'udp' && fam === 4 && cookieLen === 4 && l2spec === 'default') ||
          (encap === 'ip' && fam === 4 && cookieLen === 8 && l2spec === 'none') ||
          (encap === 'udp' && fam === 6 && cookieLen === 8 && l2spec === 'default') ||
          (encap === 'ip' && fam === 6 && cookieLen === 0 && l2spec === 'default');
        CASES.push({ encap, fam, cookieLen, l2spec, bulk });
      }
    }
  }
}

interface SessionRow {
  tunnel_id: number;
  session_id: number;
  send_seq: boolean;
}

function sendSeq(ns: Netns, tid: number, sid: number): boolean {
  const { sessions } = control<{ sessions: SessionRow[] }>(ns, 'session_get');
  const s = sessions.find((x) => x.tunnel_id === tid && x.session_id === sid);
  if (!s) throw new Error(`no session ${sid} in tunnel ${tid}`);
  return s.send_seq;
}

function mtuOf(ns: Netns, ifname: string): number {
  const m = /\bmtu (\d+)/.exec(ns.ip('link', 'show', ifname));
  if (!m) throw new Error(`no mtu for ${ifname}`);
  return Number(m[1]);
}

interface PwExtra {
  seq?: L2tpPeer['seq'];
  sessionId?: number;
  peerSessionId?: number;
  /** Overrides what QEMU is told (deliberate mismatches). */
  qemuSees?: Partial<L2tpPeer>;
  /** MTU of both ends' interfaces (default: ul2tp's default MTU). */
  mtu?: number;
  /** Runs once the ul2tp end exists, before QEMU starts. */
  beforeQemu?: (tid: number, sid: number) => void;
}

/**
 * Backends under test (like the e2e matrix): the koffi backend runs every
 * case; native-free has no raw IP sockets, so it runs the UDP cases.
 */
const backends = (process.env.UL2TP_QEMU_BACKENDS ?? process.env.UL2TP_E2E_BACKENDS ?? 'koffi,native-free').split(',').filter(Boolean);

/** Every test of one backend, in a fresh pair of namespaces (one daemon). */
function suite(backend: string): void {
  let u: Underlay;
  let n = 0;
  const udpOnly = backend === 'native-free';
  before(async () => {
    u = underlay();
    process.env.UL2TP_BACKEND = backend; // inherited by the daemon the first CLI call starts
    // Make sure the underlay (including IPv6 neighbours) works before blaming either end.
    await underlayReady(u);
  });
  after(() => {
    delete process.env.UL2TP_BACKEND;
    u?.destroy();
  });

  interface Pw {
    p: L2tpPeer;
    tid: number;
    ifname: string;
    ul4: string;
    ul6: string;
    q4: string;
    q6: string;
    q: QemuPeer;
    why(): string;
    close(): Promise<void>;
  }

  /**
   * ul2tp end in A (through the CLI) and a QEMU end in B. `qemuSees`
   * overrides what QEMU is told (to build deliberate mismatches).
   */
  async function pseudowire(c: Case, extra: PwExtra = {}): Promise<Pw> {
    const k = ++n;
    const [cookie, peerCookie] = COOKIES[c.cookieLen];
    const p: L2tpPeer = {
      encap: c.encap,
      local: c.fam === 4 ? u.a4 : u.a6,
      remote: c.fam === 4 ? u.b4 : u.b6,
      udpSport: 5200 + k,
      udpDport: 6200 + k,
      sessionId: extra.sessionId ?? 3000 + k,
      peerSessionId: extra.peerSessionId ?? 4000 + k,
      cookie,
      peerCookie,
      l2specType: c.l2spec,
      seq: extra.seq ?? 'none',
    };
    const tid = 300 + k;
    const ifname = `uq${k}`;
    u.a.ok(
      'add', 'tunnel', 'tunnel_id', String(tid), 'peer_tunnel_id', String(tid + 1000), 'encap', p.encap, 'local', p.local, 'remote', p.remote,
      ...(p.encap === 'udp' ? ['udp_sport', String(p.udpSport), 'udp_dport', String(p.udpDport)] : []),
    );
    const del = () => u.a.ul2tp('del', 'tunnel', 'tunnel_id', String(tid));
    let q: QemuPeer | undefined;
    try {
      u.a.ok(
        'add', 'session', 'name', ifname, 'tunnel_id', String(tid), 'session_id', String(p.sessionId), 'peer_session_id', String(p.peerSessionId),
        ...(cookie ? ['cookie', cookie, 'peer_cookie', peerCookie] : []),
        'l2spec_type', p.l2specType!, 'seq', p.seq!,
      );
      const o = k % 250;
      const pw = { ul4: `10.${o}.1.1`, q4: `10.${o}.1.2`, ul6: `fd00:${k}::1`, q6: `fd00:${k}::2` };
      u.a.ip('link', 'set', ifname, 'up', ...(extra.mtu ? ['mtu', String(extra.mtu)] : []));
      u.a.ip('addr', 'add', `${pw.ul4}/24`, 'dev', ifname);
      u.a.ip('-6', 'addr', 'add', `${pw.ul6}/64`, 'dev', ifname, 'nodad');
      extra.beforeQemu?.(tid, p.sessionId);
      // QEMU's TAP gets the same MTU as ul2tp's interface, like two ends of one link.
      // The seq check in qemuL2tpv3Options is about the ul2tp end; QEMU never sees it.
      q = await startQemu(u.b, { ...p, seq: 'none', ...extra.qemuSees }, { addrs: [`${pw.q4}/24`, `${pw.q6}/64`], mtu: mtuOf(u.a, ifname) });
      const qq = q;
      return {
        p,
        tid,
        ifname,
        ...pw,
        q: qq,
        why: () => {
          let cnt: string;
          try {
            cnt = JSON.stringify(sessionCounters(u.a, tid, p.sessionId));
          } catch (e) {
            cnt = String(e);
          }
          return `QEMU ${qq.options} (alive ${qq.alive()}): ${qq.stderr().trim()}\nul2tp session counters: ${cnt}\n${u.b.ip('-s', 'link', 'show', qq.tap)}`;
        },
        async close() {
          await qq.stop();
          del();
        },
      };
    } catch (e) {
      await q?.stop();
      del();
      throw e;
    }
  }

  for (const c of CASES.filter((x) => !udpOnly || x.encap === 'udp')) {
    const title =
      `encap ${c.encap}, IPv${c.fam} underlay, cookie ${c.cookieLen || 'none'}, ` +
      `l2spec ${c.l2spec} (QEMU counter ${c.l2spec === 'default' ? 'on' : 'off'})${c.bulk ? ', bulk both ways' : ''}`;
    it(title, async (t) => {
      const pw = await pseudowire(c);
      try {
        assert.equal(pings(u.a, pw.q4, 3), '3/3', `ul2tp → QEMU IPv4\n${pw.why()}`);
        assert.equal(pings(u.b, pw.ul4, 3), '3/3', `QEMU → ul2tp IPv4\n${pw.why()}`);
        assert.equal(pings(u.a, pw.q6, 3), '3/3', `ul2tp → QEMU IPv6\n${pw.why()}`);
        assert.equal(pings(u.b, pw.ul6, 3), '3/3', `QEMU → ul2tp IPv6\n${pw.why()}`);
        const cnt = sessionCounters(u.a, pw.tid, pw.p.sessionId);
        assert.ok(cnt.rx_packets >= 12 && cnt.tx_packets >= 12, JSON.stringify(cnt));
        assert.equal(cnt.rx_errors, 0, JSON.stringify(cnt));
        assert.equal(cnt.rx_cookie_discards, 0);
        assert.equal(cnt.rx_seq_discards, 0);
        assert.equal(sendSeq(u.a, pw.tid, pw.p.sessionId), false, "QEMU's counter (S=0) never turns sequencing on");
        if (c.bulk) {
          const port = 7200 + n;
          const up = await bulkTransfer(u.a, u.b, pw.q4, port, BULK, 120_000).catch((e: Error) => assert.fail(`${e.message}\n${pw.why()}`));
          assert.equal(up.got, up.sent, 'ul2tp → QEMU bytes and sha256');
          assert.match(up.sent, new RegExp(`^${BULK} [0-9a-f]{64}$`));
          const down = await bulkTransfer(u.b, u.a, pw.ul4, port + 1, BULK, 120_000).catch((e: Error) => assert.fail(`${e.message}\n${pw.why()}`));
          assert.equal(down.got, down.sent, 'QEMU → ul2tp bytes and sha256');
          t.diagnostic(`${BULK / MB} MB ul2tp → QEMU ${up.mbps.toFixed(0)} Mbit/s, QEMU → ul2tp ${down.mbps.toFixed(0)} Mbit/s`);
          const after = sessionCounters(u.a, pw.tid, pw.p.sessionId);
          assert.equal(after.rx_errors, 0, JSON.stringify(after));
          assert.ok(after.rx_bytes > BULK && after.tx_bytes > BULK, JSON.stringify(after));
        }
      } finally {
        await pw.close();
      }
    });
  }

  it('the daemon runs the requested backend', () => {
    u.a.ok('show', 'tunnel'); // starts the daemon
    assert.equal(control<{ backend: string }>(u.a).backend, backend);
  });

  it('session ids up to 0xFFFFFFFF (the QEMU documentation pairing)', async () => {
    const pw = await pseudowire({ encap: 'udp', fam: 4, cookieLen: 0, l2spec: 'default' }, { sessionId: 0xffffffff, peerSessionId: 0xfffffffe });
    try {
      assert.equal(pings(u.a, pw.q4, 3), '3/3', pw.why());
      assert.equal(pings(u.b, pw.ul4, 3), '3/3', pw.why());
    } finally {
      await pw.close();
    }
  });

  for (const [encap, fam] of [
    ['udp', 4],
    ['udp', 6],
    ['ip', 4],
    ['ip', 6],
  ] as const) {
    if (udpOnly && encap === 'ip') continue;
    it(`1500-byte overlay over a 1500-byte underlay (${encap}, IPv${fam}): full-size frames cross as outer fragments both ways`, async () => {
      const pw = await pseudowire({ encap, fam, cookieLen: 4, l2spec: 'default' }, { mtu: 1500 });
      try {
        // 1472 + 28 = a 1500-byte IPv4 packet with DF set inside: only the outer packet may fragment.
        assert.equal(pings(u.a, pw.q4, 3, 1472, ['-M', 'do']), '3/3', `ul2tp → QEMU\n${pw.why()}`);
        assert.equal(pings(u.b, pw.ul4, 3, 1472, ['-M', 'do']), '3/3', `QEMU → ul2tp\n${pw.why()}`);
        assert.equal(pings(u.b, pw.ul6, 3, 1452, ['-M', 'do']), '3/3', `QEMU → ul2tp IPv6\n${pw.why()}`);
      } finally {
        await pw.close();
      }
    });
  }

  it('seq send towards QEMU: S=1 from 0 until QEMU speaks, then send_seq turns off and S=0 on the wire (LAC rule, docs/protocol.md §2.5)', async (t) => {
    const capSkip = captureUnavailable();
    const cap = capSkip ? undefined : await startCapture(u.a, vethOf(u.a));
    let before: boolean | undefined;
    let txErrors: number;
    try {
      const pw = await pseudowire(
        { encap: 'udp', fam: 4, cookieLen: 4, l2spec: 'default' },
        {
          seq: 'send',
          beforeQemu: (tid, sid) => {
            before = sendSeq(u.a, tid, sid);
            // ARP requests from ul2tp while nobody answers: sequenced frames on the wire.
            u.a.exec('ping', ['-c', '1', '-W', '1', `10.${(n % 250)}.1.2`]);
          },
        },
      );
      try {
        assert.equal(before, true, 'configured seq send (before any packet from QEMU)');
        // The unanswered ping left a FAILED neighbour entry; start afresh.
        u.a.ip('neigh', 'flush', 'dev', pw.ifname);
        assert.equal(pings(u.a, pw.q4, 3), '3/3', pw.why());
        assert.equal(pings(u.b, pw.ul4, 3), '3/3', pw.why());
        assert.equal(sendSeq(u.a, pw.tid, pw.p.sessionId), false, 'unsequenced packets from QEMU turned send_seq off');
        txErrors = sessionCounters(u.a, pw.tid, pw.p.sessionId).tx_errors;
      } finally {
        await pw.close();
      }
      if (!cap) {
        t.diagnostic(`wire part skipped: ${capSkip}`);
        return;
      }
      await cap.stop();
      const rows = tsharkFields(cap.file, ['ip.src', 'l2tp.l2_spec_s', 'l2tp.l2_spec_sequence'], {
        decodeAs: ['l2tp.pw_type==0,eth', `udp.port==${pw.p.udpSport},l2tp`],
        prefs: ['l2tp.cookie_size:4 Byte Cookie', 'l2tp.l2_specific:Default L2-Specific'],
        filter: L2TP_NOT_ICMP_ERROR,
      });
      const firstFromQemu = rows.findIndex((r) => r['ip.src'].split(',')[0] === pw.p.remote);
      assert.ok(firstFromQemu > 0, `ul2tp sent before QEMU started: ${JSON.stringify(rows.slice(0, 3))}`);
      const mine = (from: number, to: number) => rows.slice(from, to).filter((r) => r['ip.src'].split(',')[0] === pw.p.local);
      const early = mine(0, firstFromQemu);
      // Sequence numbers from 0, +1 per frame built. A frame whose send failed
      // (QEMU's port closed until it starts: ECONNREFUSED on the connected
      // socket) used its number too, like the kernel (docs/protocol.md §3.1): gaps are
      // allowed only up to the session's tx_errors.
      let gaps = 0;
      early.forEach((r, i) => {
        assert.equal(r['l2tp.l2_spec_s'], '1', `S=1 before QEMU spoke (${JSON.stringify(r)})`);
        const ns = Number(r['l2tp.l2_spec_sequence']);
        const prev = i === 0 ? -1 : Number(early[i - 1]['l2tp.l2_spec_sequence']);
        assert.ok(ns > prev, `sequence increases (${prev} then ${ns})`);
        gaps += ns - prev - 1;
      });
      const seen = early.map((r) => r['l2tp.l2_spec_sequence']).join(' ');
      assert.ok(gaps <= txErrors, `sequence gaps ${gaps} only from failed sends (tx_errors ${txErrors}); sequence numbers seen: ${seen}; tcpdump: ${cap.stderr()}`);
      if (process.env.UL2TP_DEBUG_ROWS) console.log(rows.map((r) => `${r['ip.src']} S=${r['l2tp.l2_spec_s']} ${r['l2tp.l2_spec_sequence']}`).join('\n'));
      const late = mine(firstFromQemu, rows.length).slice(2); // allow frames already in flight
      assert.ok(late.length >= 4, `ul2tp frames after QEMU spoke: ${late.length}`); // 6 echo frames at least, less the 2 allowed in flight
      for (const r of late) assert.deepEqual([r['l2tp.l2_spec_s'], r['l2tp.l2_spec_sequence']], ['0', '0'], 'S=0 and 0 once send_seq is off');
    } finally {
      await cap?.stop();
      cap?.remove();
    }
  });

  it('seq both towards QEMU drops every frame (QEMU never sets S)', async () => {
    const pw = await pseudowire({ encap: udpOnly ? 'udp' : 'ip', fam: 4, cookieLen: 4, l2spec: 'default' }, { seq: 'both' });
    try {
      assert.equal(ping(u.b, pw.ul4, 2), 0, 'nothing from QEMU is accepted');
      const cnt = sessionCounters(u.a, pw.tid, pw.p.sessionId);
      assert.equal(cnt.rx_packets, 0, JSON.stringify(cnt));
      assert.ok(cnt.rx_seq_discards > 0 && cnt.rx_seq_discards === cnt.rx_errors, JSON.stringify(cnt));
    } finally {
      await pw.close();
    }
  });

  it('a cookie QEMU sends that ul2tp does not expect is refused (rx_cookie_discards)', async () => {
    // QEMU is told ul2tp expects 0badf00e, so it sends that; ul2tp expects 0badf00d.
    const pw = await pseudowire({ encap: 'udp', fam: 6, cookieLen: 4, l2spec: 'default' }, { qemuSees: { peerCookie: '0badf00e' } });
    try {
      assert.equal(ping(u.b, pw.ul4, 2), 0, 'no reply through a wrong cookie');
      const cnt = sessionCounters(u.a, pw.tid, pw.p.sessionId);
      assert.equal(cnt.rx_packets, 0, JSON.stringify(cnt));
      assert.ok(cnt.rx_cookie_discards > 0 && cnt.rx_cookie_discards === cnt.rx_errors, JSON.stringify(cnt));
    } finally {
      await pw.close();
    }
  });
}

for (const backend of backends) {
  describe(`interop with QEMU -netdev l2tpv3 (${backend} backend)`, { skip: skip || undefined }, () => suite(backend));
}

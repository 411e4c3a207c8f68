/**
 * native-free backend end to end: two namespaces joined by a veth underlay,
 * one peer.js (NativeFreeDataplane) per namespace, real traffic through the
 * macvtap-backed session interfaces. Needs root + netns (skips otherwise).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Peer, Underlay, XFER_JS, links, ping, runIn, sessionCfg, sh, skipReason, trySh, tunnelCfg } from './rig.js';
import { IP } from '../../../support/ip.js';
import { assertNoSequenceErrors } from '../lib/xfer.js';

const reason = skipReason();
if (reason) process.stdout.write(`# native-free integration tests skipped: ${reason}\n`);

interface Case {
  name: string;
  v6: boolean;
  /** per side: cookie we send, l2spec, seq */
  a: { cookie?: string; peerCookie?: string; l2spec?: 'none' | 'default'; sendSeq?: boolean; recvSeq?: boolean };
  b: { cookie?: string; peerCookie?: string; l2spec?: 'none' | 'default'; sendSeq?: boolean; recvSeq?: boolean };
}

describe('native-free dataplane over a veth underlay', { skip: reason ?? false }, () => {
  const u = new Underlay('');
  const peers: Peer[] = [];
  let caseNo = 0;

  before(() => u.create());
  after(async () => {
    for (const p of peers) await p.stop('SIGKILL');
    u.destroy();
  });

  /** Start both ends of a tunnel+session; interfaces up with overlay addresses. */
  async function pair(c: Case, mtu?: number, env?: NodeJS.ProcessEnv): Promise<{ pa: Peer; pb: Peer; ifa: string; ifb: string; k: number }> {
    const k = ++caseNo;
    const la = c.v6 ? u.v6a : u.v4a;
    const lb = c.v6 ? u.v6b : u.v4b;
    const ifa = `nfl2tp${k}a`;
    const ifb = `nfl2tp${k}b`;
    const m = mtu ?? (c.v6 ? 1400 : 1420);
    const pa = new Peer(u.a, {
      tunnel: tunnelCfg({ tunnelId: 100 + k, peerTunnelId: 200 + k, local: la, remote: lb, udpSport: 10000 + k, udpDport: 20000 + k }),
      session: sessionCfg({
        tunnelId: 100 + k, sessionId: 1000 + k, peerSessionId: 2000 + k, ifname: ifa,
        cookie: c.a.cookie ?? '', peerCookie: c.a.peerCookie ?? '', l2specType: c.a.l2spec ?? 'default',
        sendSeq: c.a.sendSeq ?? false, recvSeq: c.a.recvSeq ?? false,
      }),
      mtu: m,
    }, env);
    peers.push(pa);
    const pb = new Peer(u.b, {
      tunnel: tunnelCfg({ tunnelId: 200 + k, peerTunnelId: 100 + k, local: lb, remote: la, udpSport: 20000 + k, udpDport: 10000 + k }),
      session: sessionCfg({
        tunnelId: 200 + k, sessionId: 2000 + k, peerSessionId: 1000 + k, ifname: ifb,
        cookie: c.b.cookie ?? '', peerCookie: c.b.peerCookie ?? '', l2specType: c.b.l2spec ?? 'default',
        sendSeq: c.b.sendSeq ?? false, recvSeq: c.b.recvSeq ?? false,
      }),
      mtu: m,
    }, env);
    peers.push(pb);
    assert.equal(await pa.line(), `READY ${ifa}`);
    assert.equal(await pb.line(), `READY ${ifb}`);
    // created DOWN with the requested MTU, like the kernel's l2tpeth
    const info = (JSON.parse(sh(IP, ['-n', u.a, '-j', 'link', 'show', 'dev', ifa])) as Array<{ mtu: number; flags: string[]; address: string }>)[0];
    assert.equal(info.mtu, m);
    assert.ok(!info.flags.includes('UP'), `${ifa} must be created down`);
    assert.match(info.address, /^[0-9a-f][26ae]:/, 'locally administered unicast MAC');
    for (const [ns, dev, host] of [
      [u.a, ifa, 1],
      [u.b, ifb, 2],
    ] as const) {
      sh(IP, ['-n', ns, 'addr', 'add', `192.168.${k}.${host}/24`, 'dev', dev]);
      sh(IP, ['-n', ns, 'addr', 'add', `fd01:${k}::${host}/64`, 'dev', dev, 'nodad']);
      sh(IP, ['-n', ns, 'link', 'set', dev, 'up']);
    }
    return { pa, pb, ifa, ifb, k };
  }

  /** remove-tunnel on both ends (their interfaces must disappear), then end the processes. */
  async function unpair(pa: Peer, pb: Peer, names: string[] = []): Promise<void> {
    for (const p of [pa, pb]) {
      p.send('remove-tunnel');
      assert.equal(await p.line(), 'REMOVED');
      await p.stop();
    }
    for (const n of names) {
      assert.ok(!links(u.a).includes(n) && !links(u.b).includes(n), `${n} left after remove-tunnel`);
    }
  }

  const cases: Case[] = [
    { name: 'IPv4 underlay, default l2spec, no cookie, no seq', v6: false, a: {}, b: {} },
    {
      name: 'IPv6 underlay, 4- and 8-byte cookies, seq both',
      v6: true,
      a: { cookie: 'a1b2c3d4', peerCookie: '0102030405060708', sendSeq: true, recvSeq: true },
      b: { cookie: '0102030405060708', peerCookie: 'a1b2c3d4', sendSeq: true, recvSeq: true },
    },
    {
      name: 'IPv4 underlay, l2spec none, 8-byte cookies',
      v6: false,
      a: { cookie: '1122334455667788', peerCookie: '8877665544332211', l2spec: 'none' },
      b: { cookie: '8877665544332211', peerCookie: '1122334455667788', l2spec: 'none' },
    },
    {
      name: 'IPv6 underlay, seq send on one side, seq recv on the other',
      v6: true,
      a: { sendSeq: true },
      b: { recvSeq: true },
    },
  ];

  for (const c of cases) {
    test(`ping IPv4 and IPv6 overlay: ${c.name}`, async () => {
      const { pa, pb, k, ifa, ifb } = await pair(c);
      let ok = false;
      try {
        // The overlay carries traffic within a few seconds of the interfaces coming up (one
        // CI run in eight lost a reply in the first ~2 s, IPv6 underlay with one-sided seq);
        // after that, every ping must come back.
        let up = false;
        for (let i = 0; i < 10 && !up; i++) up = ping(u.a, `192.168.${k}.2`, 1, 1, [], 1);
        assert.ok(up, 'IPv4 overlay reachable within 10 s');
        assert.ok(ping(u.a, `192.168.${k}.2`), 'IPv4 overlay ping');
        assert.ok(ping(u.a, `fd01:${k}::2`), 'IPv6 overlay ping');
        // a full-size frame (MTU) passes: 1420/1400 MTU minus IPv4 20 + ICMP 8
        assert.ok(ping(u.a, `192.168.${k}.2`, 2, 2, ['-s', String((c.v6 ? 1400 : 1420) - 28), '-M', 'do']), 'MTU-sized ping');
        const sa = await pa.stats();
        const sb = await pb.stats();
        for (const s of [sa, sb]) {
          assert.equal(s.reader, process.env.UL2TP_NF_READER ?? 'event', 'reader in use');
          assert.ok(s.session.tx_packets >= 7, `tx_packets ${s.session.tx_packets}`);
          assert.ok(s.session.rx_packets >= 7, `rx_packets ${s.session.rx_packets}`);
          assert.equal(s.session.rx_cookie_discards, 0);
          assert.equal(s.session.rx_errors, 0);
          assert.equal(s.tunnel.tx_packets, s.session.tx_packets);
        }
        ok = true;
      } finally {
        await unpair(pa, pb, ok ? [ifa, ifb] : []);
      }
    });
  }

  for (const v6 of [false, true]) {
    test(`1500-byte overlay over a 1500-byte ${v6 ? 'IPv6' : 'IPv4'} underlay: outer packets are fragmented, frames arrive`, async () => {
      const { pa, pb, k } = await pair({ name: 'mtu1500', v6, a: {}, b: {} }, 1500);
      try {
        assert.ok(ping(u.a, `192.168.${k}.2`, 3, 3, ['-s', '1472', '-M', 'do']), '1500-byte IPv4 packets');
        assert.ok(ping(u.a, `fd01:${k}::2`, 3, 3, ['-s', '1452', '-M', 'do']), '1500-byte IPv6 packets');
      } finally {
        await unpair(pa, pb);
      }
    });
  }

  test('two sessions in one tunnel each get their own interface and traffic', async () => {
    const k = ++caseNo;
    const mk = (side: 'a' | 'b', i: number) =>
      sessionCfg({
        tunnelId: side === 'a' ? 100 + k : 200 + k,
        sessionId: (side === 'a' ? 1000 : 2000) + i,
        peerSessionId: (side === 'a' ? 2000 : 1000) + i,
        ifname: `nfm${k}${side}${i}`,
      });
    const pa = new Peer(u.a, {
      tunnel: tunnelCfg({ tunnelId: 100 + k, peerTunnelId: 200 + k, local: u.v4a, remote: u.v4b, udpSport: 10000 + k, udpDport: 20000 + k }),
      sessions: [mk('a', 1), mk('a', 2)],
      mtu: 1420,
    });
    const pb = new Peer(u.b, {
      tunnel: tunnelCfg({ tunnelId: 200 + k, peerTunnelId: 100 + k, local: u.v4b, remote: u.v4a, udpSport: 20000 + k, udpDport: 10000 + k }),
      sessions: [mk('b', 1), mk('b', 2)],
      mtu: 1420,
    });
    peers.push(pa, pb);
    try {
      assert.equal(await pa.line(), `READY nfm${k}a1 nfm${k}a2`);
      assert.equal(await pb.line(), `READY nfm${k}b1 nfm${k}b2`);
      for (const i of [1, 2]) {
        sh(IP, ['-n', u.a, 'addr', 'add', `172.${16 + i}.${k}.1/24`, 'dev', `nfm${k}a${i}`]);
        sh(IP, ['-n', u.b, 'addr', 'add', `172.${16 + i}.${k}.2/24`, 'dev', `nfm${k}b${i}`]);
        sh(IP, ['-n', u.a, 'link', 'set', `nfm${k}a${i}`, 'up']);
        sh(IP, ['-n', u.b, 'link', 'set', `nfm${k}b${i}`, 'up']);
      }
      assert.ok(ping(u.a, `172.17.${k}.2`), 'session 1');
      assert.ok(ping(u.a, `172.18.${k}.2`), 'session 2');
      const st = await pa.stats();
      // tunnel counts both sessions, the first session only its own
      assert.ok(st.tunnel.rx_packets >= st.session.rx_packets + 3, JSON.stringify(st));
    } finally {
      await unpair(pa, pb, [`nfm${k}a1`, `nfm${k}a2`, `nfm${k}b1`, `nfm${k}b2`]);
    }
  });

  test('a wrong cookie is discarded and counted', async () => {
    const { pa, pb, k } = await pair({ name: 'bad cookie', v6: false, a: { cookie: 'deadbeef' }, b: { peerCookie: 'deadbeee' } });
    try {
      assert.equal(ping(u.a, `192.168.${k}.2`, 2, 1, [], 2), false, 'no reply expected');
      const sb = await pb.stats();
      assert.ok(sb.session.rx_cookie_discards >= 1, `rx_cookie_discards ${sb.session.rx_cookie_discards}`);
      assert.equal(sb.session.rx_packets, 0);
    } finally {
      await unpair(pa, pb);
    }
  });

  for (const reader of ['event', 'worker', 'poll']) {
    test(`20 MB TCP transfer arrives intact (sha256), ${reader} reader`, async () => {
      const env = { ...process.env, UL2TP_NF_READER: reader };
      const { pa, pb, k } = await pair({ name: 'bulk', v6: false, a: { sendSeq: true, recvSeq: true }, b: { sendSeq: true, recvSeq: true } }, undefined, env);
      try {
        const drops0 = u.nsB.udpRcvbufErrors();
        const srv = runIn(u.b, [process.execPath, XFER_JS, 'server', `192.168.${k}.2`, '5201']);
        await new Promise((r) => setTimeout(r, 400));
        const cli = runIn(u.a, [process.execPath, XFER_JS, 'client', `192.168.${k}.2`, '5201', String(20 * 1024 * 1024)]);
        const timer = setTimeout(() => {
          for (const p of [srv.proc, cli.proc]) if (p.pid) trySh('kill', ['-9', String(p.pid)]);
        }, 60000);
        const [so, co] = await Promise.all([srv.done, cli.done]);
        clearTimeout(timer);
        const sent = /SENT (\d+) ([0-9a-f]{64})/.exec(co);
        const got = /DONE (\d+) ([0-9a-f]{64})/.exec(so);
        assert.ok(sent, `client output: ${co}`);
        assert.ok(got, `server output: ${so}`);
        assert.equal(got[1], String(20 * 1024 * 1024));
        assert.equal(got[2], sent[2]);
        const sb = await pb.stats();
        assertNoSequenceErrors(sb.session, u.nsB.udpRcvbufErrors() - drops0, `B, ${reader} reader`);
        assert.equal(sb.reader, reader, 'the requested reader ran');
        assert.equal((await pa.stats()).reader, reader);
      } finally {
        await unpair(pa, pb);
      }
    });
  }

  test('removeSession deletes the interface and its hidden veth/macvtap', async () => {
    const before = links(u.a).filter((n) => n.startsWith('ul2t')).length;
    const { pa, pb, ifa } = await pair({ name: 'remove', v6: false, a: {}, b: {} });
    try {
      assert.ok(links(u.a).includes(ifa));
      assert.equal(links(u.a).filter((n) => n.startsWith('ul2t')).length, before + 2);
      // the hidden veth end and macvtap stay silent: no IPv6 (no link-local, so no DAD/RS/MLD out of the interface)
      await new Promise((r) => setTimeout(r, 300));
      const addrs = JSON.parse(sh(IP, ['-n', u.a, '-j', 'addr', 'show'])) as Array<{ ifname: string; addr_info: Array<{ family: string }> }>;
      for (const l of addrs.filter((x) => x.ifname.startsWith('ul2t'))) {
        assert.deepEqual(l.addr_info, [], `${l.ifname} has addresses`);
      }
      pa.send('remove-session');
      assert.equal(await pa.line(), 'REMOVED');
      assert.ok(!links(u.a).includes(ifa), `${ifa} still present`);
      assert.equal(links(u.a).filter((n) => n.startsWith('ul2t')).length, before);
    } finally {
      await unpair(pa, pb);
    }
  });

  test('an interface left by a killed process is adopted by the next one', async () => {
    const c: Case = { name: 'adopt', v6: false, a: {}, b: {} };
    const { pa, pb, ifa, k } = await pair(c);
    let pa2: Peer | undefined;
    try {
      await pa.stop('SIGKILL');
      assert.ok(links(u.a).includes(ifa), 'interface survives its process');
      const hidden = links(u.a).filter((n) => n.startsWith('ul2t')).length;
      pa2 = new Peer(u.a, {
        tunnel: tunnelCfg({ tunnelId: 100 + k, peerTunnelId: 200 + k, local: u.v4a, remote: u.v4b, udpSport: 10000 + k, udpDport: 20000 + k }),
        session: sessionCfg({ tunnelId: 100 + k, sessionId: 1000 + k, peerSessionId: 2000 + k, ifname: ifa }),
        mtu: 1420,
      });
      peers.push(pa2);
      assert.equal(await pa2.line(), `READY ${ifa}`);
      assert.equal(links(u.a).filter((n) => n.startsWith('ul2t')).length, hidden, 'no second veth/macvtap');
      // addresses and UP state set by the user are kept
      assert.ok(ping(u.a, `192.168.${k}.2`), 'ping after adoption');
    } finally {
      if (pa2) {
        pa2.send('remove-tunnel');
        assert.equal(await pa2.line(), 'REMOVED');
        await pa2.stop();
      }
      pb.send('remove-tunnel');
      await pb.line();
      await pb.stop();
    }
  });

  test('a name taken by a foreign interface gives EEXIST and leaves nothing behind', async () => {
    const name = `nfx${process.pid % 100000}`;
    sh(IP, ['-n', u.a, 'link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]);
    const hidden = links(u.a).filter((n) => n.startsWith('ul2t')).length;
    const p = new Peer(u.a, {
      tunnel: tunnelCfg({ tunnelId: 7, peerTunnelId: 8, local: u.v4a, remote: u.v4b, udpSport: 17001, udpDport: 17002 }),
      session: sessionCfg({ tunnelId: 7, sessionId: 1, peerSessionId: 1, ifname: name }),
    });
    peers.push(p);
    try {
      assert.match(await p.line(), /^ERROR KERNEL EEXIST File exists/);
      assert.equal(links(u.a).filter((n) => n.startsWith('ul2t')).length, hidden);
    } finally {
      await p.stop();
      trySh(IP, ['-n', u.a, 'link', 'del', name]);
    }
  });
});

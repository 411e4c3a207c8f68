/**
 * Several workers (koffi backend, `ul2tp daemon --workers N` / UL2TP_WORKERS): both
 * daemons with 4 worker pairs, and again with 2 one-thread workers (`--worker-threads 1`),
 * 3 UDP tunnels with 2 sessions each plus one IP-encap tunnel. Every session pings, bulk
 * TCP arrives intact over every tunnel, each tunnel's counters are the sum of its sessions'
 * (one writer per counter), the daemons really run 4 tx + 4 rx threads (or 2 io threads)
 * and the tunnels' traffic is spread over several of them, capture and impairment work on
 * one session, and sessions and tunnels are deleted while traffic flows.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { netnsUnavailable, ping, underlay, type Netns, type Underlay } from '../../../support/netns.js';
import { CLI, waitFor } from '../../../support/proc.js';
import { control, sessionCounters, type Link } from '../../../support/ul2tp.js';
import { bulkTransfer } from '../lib/xfer.js';

const skip = netnsUnavailable();
if (skip) console.log(`# skipping workers e2e: ${skip}`);

/** Every ul2tp command in `ns` (and so the daemon it starts) runs on koffi with `n` workers of `threads` threads. */
function useWorkers(ns: Netns, n: number, threads: 1 | 2 = 2): void {
  const base = ns.env.bind(ns);
  (ns as unknown as { env: () => NodeJS.ProcessEnv }).env = () => ({
    ...base(),
    UL2TP_WORKERS: String(n),
    UL2TP_WORKER_THREADS: String(threads),
    UL2TP_BACKEND: 'koffi',
  });
}

/** Session k of tunnel t, with Link's ids, names and IPv4 overlay addresses. */
interface Sess extends Pick<Link, 'tidA' | 'tidB' | 'sidA' | 'sidB' | 'ifA' | 'ifB' | 'a4' | 'b4'> {
  t: number;
  k: number;
}

/** Tunnel t (1..3 UDP, 4 IP) on both sides, with `sessions` sessions, interfaces up with overlay addresses. */
function addTunnel(u: Underlay, t: number, encap: 'udp' | 'ip', sessions: number): Sess[] {
  const tidA = 100 + t;
  const tidB = 200 + t;
  const udp = (s: number, d: number) => (encap === 'udp' ? ['udp_sport', String(s), 'udp_dport', String(d)] : []);
  u.a.ok('add', 'tunnel', 'tunnel_id', String(tidA), 'peer_tunnel_id', String(tidB), 'encap', encap, 'local', u.a4, 'remote', u.b4, ...udp(5000 + t, 6000 + t));
  u.b.ok('add', 'tunnel', 'tunnel_id', String(tidB), 'peer_tunnel_id', String(tidA), 'encap', encap, 'local', u.b4, 'remote', u.a4, ...udp(6000 + t, 5000 + t));
  const out: Sess[] = [];
  for (let k = 0; k < sessions; k++) {
    const s: Sess = {
      t,
      k,
      tidA,
      tidB,
      sidA: 1000 + 10 * t + k,
      sidB: 2000 + 10 * t + k,
      ifA: `wka${t}${k}`,
      ifB: `wkb${t}${k}`,
      a4: `10.${60 + 2 * t + k}.0.1`,
      b4: `10.${60 + 2 * t + k}.0.2`,
    };
    u.a.ok('add', 'session', 'name', s.ifA, 'tunnel_id', String(tidA), 'session_id', String(s.sidA), 'peer_session_id', String(s.sidB));
    u.b.ok('add', 'session', 'name', s.ifB, 'tunnel_id', String(tidB), 'session_id', String(s.sidB), 'peer_session_id', String(s.sidA));
    for (const [ns, ifn, a4] of [
      [u.a, s.ifA, s.a4],
      [u.b, s.ifB, s.b4],
    ] as const) {
      ns.ip('link', 'set', ifn, 'up');
      ns.ip('addr', 'add', `${a4}/24`, 'dev', ifn);
    }
    out.push(s);
  }
  return out;
}

/** The daemon's worker threads (named ul2tp-tx<i> / ul2tp-rx<i>, or ul2tp-io<i>): name → CPU ticks used (utime + stime). */
function workerThreads(ns: Netns): Map<string, number> {
  const pid = ns.daemonPid();
  assert.ok(pid, `no daemon in ${ns.name}`);
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let comm: string;
    let stat: string;
    try {
      comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // a thread that just ended
    }
    if (!/^ul2tp-(tx|rx|io)\d+$/.test(comm)) continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    out.set(comm, Number(f[11]) + Number(f[12])); // utime (14), stime (15)
  }
  return out;
}


interface Row {
  tunnel_id: number;
  session_id: number;
  stats: Record<string, number>;
  drops: Record<string, number>;
}

/** Each tunnel's tx/rx packet and byte counters equal the sums over its sessions (read until two reads agree). */
async function tunnelsAreSums(ns: Netns): Promise<void> {
  let last = '';
  const ok = await waitFor(
    () => {
      const { sessions } = control<{ sessions: Row[] }>(ns, 'session_get');
      const { tunnels } = control<{ tunnels: Row[] }>(ns, 'tunnel_get');
      const bad: string[] = [];
      for (const t of tunnels) {
        for (const c of ['tx_packets', 'tx_bytes', 'rx_packets', 'rx_bytes']) {
          const sum = sessions.filter((s) => s.tunnel_id === t.tunnel_id).reduce((a, s) => a + s.stats[c], 0);
          if (sum !== t.stats[c]) bad.push(`tunnel ${t.tunnel_id} ${c} ${t.stats[c]} != sessions' ${sum}`);
        }
      }
      last = bad.join('; ');
      return bad.length === 0;
    },
    10_000,
    200,
  );
  assert.ok(ok, last);
}

for (const [PAIRS, THREADS] of [
  [4, 2],
  [2, 1],
] as const) describe(`${PAIRS} workers of ${THREADS} thread(s) on both sides`, { skip: skip || undefined }, () => {
  let u: Underlay;
  let all: Sess[] = [];
  const threadNames = (THREADS === 2 ? ['rx', 'tx'] : ['io']).flatMap((r) => Array.from({ length: PAIRS }, (_, i) => `ul2tp-${r}${i}`));
  before(() => {
    u = underlay();
    useWorkers(u.a, PAIRS, THREADS);
    useWorkers(u.b, PAIRS, THREADS);
    for (let t = 1; t <= 3; t++) all.push(...addTunnel(u, t, 'udp', 2));
    all.push(...addTunnel(u, 4, 'ip', 1));
  });
  after(() => u?.destroy());

  it(`daemon status says ${PAIRS} workers of ${THREADS} thread(s), and each daemon runs exactly those threads`, () => {
    for (const ns of [u.a, u.b]) {
      const st = JSON.parse(ns.ok('-j', 'daemon', 'status')) as { backend: string; workers: number; worker_threads: number };
      assert.equal(st.backend, 'koffi');
      assert.equal(st.workers, PAIRS);
      assert.equal(st.worker_threads, THREADS);
      assert.match(ns.ok('daemon', 'status'), THREADS === 2 ? /backend koffi \(4 worker pairs\)/ : /backend koffi \(2 workers, one thread each\)/);
      assert.deepEqual([...workerThreads(ns).keys()].sort(), threadNames);
    }
  });

  it('every session pings both ways (3 UDP tunnels x 2 sessions, 1 IP tunnel)', () => {
    for (const s of all) {
      assert.ok(ping(u.a, s.b4, 3) >= 2, `ping A→B over tunnel ${s.tidA} session ${s.sidA}`);
      assert.ok(ping(u.b, s.a4, 3) >= 2, `ping B→A over tunnel ${s.tidB} session ${s.sidB}`);
    }
  });

  it('bulk TCP arrives intact over every tunnel, on several worker threads; tunnel counters are their sessions’ sums', async () => {
    const before = new Map([...workerThreads(u.b)]);
    const bytes = 24 * 1024 * 1024;
    let port = 7300;
    for (const s of all.filter((x) => x.k === 0 || x.t === 2)) {
      const { sent: sent, got: got } = await bulkTransfer(u.a, u.b, s.b4, port++, bytes, 120_000);
      assert.equal(got, sent, `transfer over tunnel ${s.tidA} session ${s.sidA}`);
      assert.match(sent, new RegExp(`^${bytes} [0-9a-f]{64}$`));
      assert.ok(sessionCounters(u.b, s.tidB, s.sidB).rx_bytes > bytes, `session ${s.sidB} counted the transfer`);
    }
    // Three UDP tunnels spread over the workers: a receiving thread of each of min(3, PAIRS) workers at B did work.
    const busy = [...workerThreads(u.b)].filter(([name, ticks]) => /^ul2tp-(rx|io)/.test(name) && ticks > (before.get(name) ?? 0));
    assert.ok(busy.length >= Math.min(3, PAIRS), `receive threads that worked: ${busy.map(([n]) => n).join(', ')}`);
    await tunnelsAreSums(u.a);
    await tunnelsAreSums(u.b);
  });

  it('capture of one session sees only that session, both directions', async () => {
    const s = all.find((x) => x.t === 3 && x.k === 1)!;
    const cap = u.a.spawn(process.execPath, [CLI, '-j', 'capture', 'tunnel_id', String(s.tidA), 'session_id', String(s.sidA), '-c', '6']);
    let out = '';
    let err = '';
    cap.stdout!.on('data', (d: string) => (out += d));
    cap.stderr!.on('data', (d: string) => (err += d));
    assert.ok(await waitFor(() => /^listening on /m.test(err), 20_000), `capture started: ${err}`);
    // Traffic on other sessions (other pairs) at the same time must not show up.
    const other = all.find((x) => x.t === 1 && x.k === 0)!;
    ping(u.a, other.b4, 2);
    assert.ok(ping(u.a, s.b4, 3) >= 2);
    assert.ok(await waitFor(() => cap.exitCode !== null, 15_000), `capture ended: ${out}`);
    const pkts = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { dir: string; tunnel_id: number; session_id: number });
    assert.equal(pkts.length, 6);
    for (const p of pkts) assert.deepEqual([p.tunnel_id, p.session_id], [s.tidA, s.sidA]);
    assert.ok(pkts.some((p) => p.dir === 'tx') && pkts.some((p) => p.dir === 'rx'), out);
  });

  it('impairment (loss 100) on one session stops only that session, and counts; off restores it', () => {
    const s = all.find((x) => x.t === 2 && x.k === 1)!;
    const neighbour = all.find((x) => x.t === 2 && x.k === 0)!;
    u.a.ok('impair', 'tunnel_id', String(s.tidA), 'session_id', String(s.sidA), 'loss', '100');
    try {
      const lost0 = control<{ sessions: Row[] }>(u.a, 'session_get').sessions.find((x) => x.session_id === s.sidA)!.drops.tx_impair_lost;
      assert.equal(ping(u.a, s.b4, 3, 56, [], 3), 0, 'impaired session still answers');
      const lost = control<{ sessions: Row[] }>(u.a, 'session_get').sessions.find((x) => x.session_id === s.sidA)!.drops.tx_impair_lost;
      assert.ok(lost >= lost0 + 3, `tx_impair_lost ${lost0} → ${lost}`);
      assert.ok(ping(u.a, neighbour.b4, 3) >= 2, 'the same tunnel’s other session is not impaired');
    } finally {
      u.a.ok('impair', 'tunnel_id', String(s.tidA), 'session_id', String(s.sidA), 'off');
    }
    assert.ok(ping(u.a, s.b4, 3) >= 2, 'after impair off');
  });

  it('sessions and tunnels deleted while traffic flows over them; the rest keeps working', async () => {
    // Floods on every session A→B while we delete.
    const floods = all.map((s) => u.a.spawn('ping', ['-q', '-i', '0.002', '-s', '1000', s.b4]));
    await new Promise((r) => setTimeout(r, 500));
    const gone1 = all.find((x) => x.t === 1 && x.k === 1)!;
    const goneIp = all.find((x) => x.t === 4)!;
    u.a.ok('del', 'session', 'tunnel_id', String(gone1.tidA), 'session_id', String(gone1.sidA));
    u.b.ok('del', 'session', 'tunnel_id', String(gone1.tidB), 'session_id', String(gone1.sidB));
    u.b.ok('del', 'tunnel', 'tunnel_id', '203'); // B first: A keeps sending into it
    u.a.ok('del', 'tunnel', 'tunnel_id', '103');
    u.a.ok('del', 'tunnel', 'tunnel_id', String(goneIp.tidA));
    u.b.ok('del', 'tunnel', 'tunnel_id', String(goneIp.tidB));
    await new Promise((r) => setTimeout(r, 300));
    for (const f of floods) f.kill('SIGINT');
    all = all.filter((s) => s !== gone1 && s !== goneIp && s.t !== 3);
    for (const ns of [u.a, u.b]) {
      const st = JSON.parse(ns.ok('-j', 'daemon', 'status')) as { tunnels: number; sessions: number; workers: number };
      assert.deepEqual([st.tunnels, st.sessions, st.workers], [2, 3, PAIRS]);
      assert.equal(workerThreads(ns).size, THREADS * PAIRS, 'every worker thread still runs');
    }
    for (const ifn of ['wka11', 'wka30', 'wka31', 'wka40']) assert.equal(u.a.exec('ip', ['link', 'show', ifn]).status, 1, `${ifn} is gone`);
    for (const s of all) assert.ok(ping(u.a, s.b4, 3) >= 2, `ping over tunnel ${s.tidA} session ${s.sidA} after the deletions`);
    // A new tunnel goes to a pair again (the least loaded) and works.
    const [fresh] = addTunnel(u, 5, 'udp', 1);
    assert.ok(ping(u.a, fresh.b4, 3) >= 2, 'a tunnel added after the deletions');
  });
});

/**
 * A UDP packet whose session id belongs to another tunnel (unique in the namespace) is
 * delivered to that session, as the kernel does, when both tunnels are read by the same
 * receive thread; across worker pairs it counts as rx_no_session on the receiving tunnel
 * (a session's receive state and counters have one writing thread).
 */
for (const pairs of [1, 2]) {
  describe(`UDP fallback to another tunnel's session, ${pairs} worker pair(s)`, { skip: skip || undefined }, () => {
    let u: Underlay;
    before(() => {
      u = underlay();
      useWorkers(u.a, 1);
      useWorkers(u.b, pairs);
    });
    after(() => u?.destroy());

    it(pairs === 1 ? 'is delivered (same receive thread)' : 'is counted as rx_no_session (tunnels on two pairs)', async () => {
      // A sends on tunnel 101 (port 5001 → 6001) with peer session 2022, which B has only in tunnel 202.
      u.a.ok('add', 'tunnel', 'tunnel_id', '101', 'peer_tunnel_id', '201', 'encap', 'udp', 'local', u.a4, 'remote', u.b4, 'udp_sport', '5001', 'udp_dport', '6001');
      u.a.ok('add', 'session', 'name', 'wfa', 'tunnel_id', '101', 'session_id', '1011', 'peer_session_id', '2022');
      u.b.ok('add', 'tunnel', 'tunnel_id', '201', 'peer_tunnel_id', '101', 'encap', 'udp', 'local', u.b4, 'remote', u.a4, 'udp_sport', '6001', 'udp_dport', '5001');
      u.b.ok('add', 'tunnel', 'tunnel_id', '202', 'peer_tunnel_id', '102', 'encap', 'udp', 'local', u.b4, 'remote', u.a4, 'udp_sport', '6002', 'udp_dport', '5002');
      u.b.ok('add', 'session', 'name', 'wfb', 'tunnel_id', '202', 'session_id', '2022', 'peer_session_id', '1011');
      u.a.must('sysctl', ['-qw', 'net.ipv6.conf.wfa.disable_ipv6=1']); // only the ARP requests below
      u.a.ip('link', 'set', 'wfa', 'up');
      u.a.ip('addr', 'add', '10.77.0.1/24', 'dev', 'wfa');
      ping(u.a, '10.77.0.2', 3, 56, [], 2); // ARP requests: no answer needed
      const sent = sessionCounters(u.a, 101, 1011).tx_packets;
      assert.ok(sent >= 3, `A sent ${sent}`);
      let delivered = 0;
      let noSession = 0;
      await waitFor(() => {
        noSession = control<{ tunnels: Row[] }>(u.b, 'tunnel_get').tunnels.find((t) => t.tunnel_id === 201)!.drops.rx_no_session;
        delivered = sessionCounters(u.b, 202, 2022).rx_packets;
        return delivered + noSession >= sent;
      }, 5000);
      if (pairs === 1) assert.deepEqual([delivered, noSession], [sent, 0]);
      else assert.deepEqual([delivered, noSession], [0, sent]);
    });
  });
}

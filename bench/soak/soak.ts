/**
 * Churn soak (issue 9): two namespaces with a daemon each; long-lived tunnels
 * (one UDP with sequencing and cookies, one IP encap) carry a ping each for the
 * whole run, while a loop adds and deletes tunnels and sessions on both sides
 * (same ids, ports and interface names every cycle, UDP and IP encap in turn,
 * interfaces brought up with addresses, one ping through each churned link).
 *
 * Checks: the daemon's open fds, threads and RSS at start (after one warm-up
 * cycle) and at the end are flat (small tolerance); no interface is left over
 * (`ip -o link` before/after); the daemons are back to the long-lived objects
 * only; the long-lived sessions' counters never go backwards; no ping is lost
 * on them.
 *
 *   node dist/bench/soak/soak.js [--minutes N | --seconds N]   (default 60 s)
 *
 * Needs root (namespaces, TAP). Exit status 0 when every check passes.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Ul2tpClient } from '../../src/api/client.js';
import { netnsUnavailable, underlay, type Netns, type Underlay } from '../../support/netns.js';
import { makeLink } from '../../support/ul2tp.js';
import { sleep } from '../../support/proc.js';

export interface ProcFigures {
  fds: number;
  threads: number;
  rssKiB: number;
}

export interface SoakResult {
  seconds: number;
  cycles: number;
  /** Tunnels and sessions created (and deleted) by the churn loop, per side. */
  tunnelsChurned: number;
  sessionsChurned: number;
  churnPings: { sent: number; ok: number };
  start: ProcFigures;
  end: ProcFigures;
  leftoverInterfaces: string[];
  counterRegressions: string[];
  longLivedPings: LongPing[];
  daemonRestarted: boolean;
  objectsAtEnd: { tunnels: number; sessions: number };
  problems: string[];
}

/** A long-lived ping: probes transmitted and answered, the lost ones (not the one in flight at the end), the slowest reply. */
export interface LongPing {
  tx: number;
  rx: number;
  lost: number[];
  inFlight: number;
  maxRttMs: number;
}

function proc(pid: number): ProcFigures {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { fds: readdirSync(`/proc/${pid}/fd`).length, threads: field('Threads'), rssKiB: field('VmRSS') };
}

function links(ns: Netns): string[] {
  return ns
    .ip('-o', 'link', 'show')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(':')[1].trim().replace(/@.*$/, ''))
    .sort();
}

function ctlPath(ns: Netns): string {
  const d = readdirSync(ns.runDir).find((x) => /^\d+$/.test(x));
  if (!d) throw new Error(`no daemon directory in ${ns.runDir}`);
  return join(ns.runDir, d, 'ctl.sock');
}


interface Row {
  tunnel_id: number;
  session_id: number;
  stats: Record<string, number>;
}

export async function runSoak(seconds: number, log: (s: string) => void = (s) => console.log(s)): Promise<SoakResult> {
  const u: Underlay = underlay();
  const problems: string[] = [];
  try {
    const l1 = makeLink(u, { n: 1, cookies: ['0102030405060708', '1112131415161718'], seq: 'both' });
    const l2 = makeLink(u, { n: 2, encap: 'ip' });
    const ca = await connect({ socketPath: ctlPath(u.a), autostart: false });
    const cb = await connect({ socketPath: ctlPath(u.b), autostart: false });
    const statusA = await ca.request('status', {});
    const pid = statusA.pid;
    const baseA = links(u.a);
    const baseB = links(u.b);

    const pingSecs = Math.ceil(seconds) + 5;
    const longPings = [l1, l2].map((l) => {
      const c = u.a.spawn('ping', ['-n', '-i', '0.2', '-W', '2', '-w', String(pingSecs), l.b4]);
      let out = '';
      c.stdout!.on('data', (d: string) => (out += d));
      const done = new Promise<LongPing>((resolve) =>
        c.on('exit', () => {
          const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(out);
          if (!m) return resolve({ tx: -1, rx: -1, lost: [], inFlight: 0, maxRttMs: 0 });
          const tx = Number(m[1]);
          const seen = new Map<number, number>();
          for (const r of out.matchAll(/icmp_seq=(\d+) .*time=([\d.]+) ms/g)) seen.set(Number(r[1]), Number(r[2]));
          // The probe sent last before SIGINT may still have been on its way back:
          // it is in flight, not lost (ping counts it as transmitted).
          const missing = [...Array(tx).keys()].map((i) => i + 1).filter((q) => !seen.has(q));
          const inFlight = missing.includes(tx) ? 1 : 0;
          resolve({ tx, rx: Number(m[2]), lost: missing.filter((q) => q !== tx), inFlight, maxRttMs: Math.max(0, ...seen.values()) });
        }),
      );
      return { c, done };
    });

    // Counter monotonicity of the long-lived sessions, sampled every 500 ms.
    const regressions: string[] = [];
    const last = new Map<string, number>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { sessions } = (await ca.request('session_get', {})) as unknown as { sessions: Row[] };
        for (const s of sessions) {
          if (!((s.tunnel_id === l1.tidA && s.session_id === l1.sidA) || (s.tunnel_id === l2.tidA && s.session_id === l2.sidA))) continue;
          for (const [k, v] of Object.entries(s.stats)) {
            const key = `${s.tunnel_id}/${s.session_id}.${k}`;
            const prev = last.get(key);
            if (prev !== undefined && v < prev) regressions.push(`${key}: ${prev} → ${v}`);
            last.set(key, v);
          }
        }
        await sleep(500);
      }
    })();

    let cycles = 0;
    let tunnels = 0;
    let sessions = 0;
    const churnPings = { sent: 0, ok: 0 };
    const cycle = async () => {
      const encap = cycles % 2 === 0 ? 'udp' : 'ip';
      const sides: Array<[Ul2tpClient, Netns, string, string, number, number, string]> = [
        [ca, u.a, u.a4, u.b4, 3000, 4000, 'soa'],
        [cb, u.b, u.b4, u.a4, 4000, 3000, 'sob'],
      ];
      for (const [c, , local, remote, tid, ptid] of sides) {
        await c.request('tunnel_create', {
          tunnel_id: tid,
          peer_tunnel_id: ptid,
          encap,
          local,
          remote,
          ...(encap === 'udp' ? { udp_sport: tid + 20000, udp_dport: ptid + 20000 } : {}),
        } as never);
        tunnels++;
      }
      for (let k = 1; k <= 3; k++) {
        for (const [c, , , , tid, ptid, pre] of sides) {
          await c.request('session_create', {
            tunnel_id: tid,
            session_id: tid * 10 + k,
            peer_session_id: ptid * 10 + k,
            name: `${pre}${k}`,
            ...(k === 2 ? { cookie: 'aabbccdd', peer_cookie: 'aabbccdd' } : {}),
            ...(k === 3 ? { send_seq: true, recv_seq: true } : {}),
          } as never);
          sessions++;
        }
      }
      // One churned link carries a ping.
      u.a.ip('link', 'set', 'soa1', 'up');
      u.a.ip('addr', 'add', '10.99.0.1/24', 'dev', 'soa1');
      u.b.ip('link', 'set', 'sob1', 'up');
      u.b.ip('addr', 'add', '10.99.0.2/24', 'dev', 'sob1');
      churnPings.sent++;
      if (/1 received/.test(u.a.exec('ping', ['-c', '1', '-W', '2', '10.99.0.2']).stdout)) churnPings.ok++;
      // Delete one session by hand, the rest with their tunnel.
      for (const [c, , , , tid] of sides) await c.request('session_delete', { tunnel_id: tid, session_id: tid * 10 + 2 });
      for (const [c, , , , tid] of sides) await c.request('tunnel_delete', { tunnel_id: tid });
      cycles++;
    };

    await cycle(); // warm-up: lazily created threads and buffers
    await sleep(300);
    const start = proc(pid);
    log(`soak: daemon ${pid} at start: ${start.fds} fds, ${start.threads} threads, RSS ${start.rssKiB} KiB`);
    const t0 = Date.now();
    while (Date.now() - t0 < seconds * 1000) {
      try {
        await cycle();
      } catch (e) {
        problems.push(`cycle ${cycles}: ${(e as Error).message}`);
        // Clean up whatever this cycle left, then go on.
        for (const [c, tid] of [
          [ca, 3000],
          [cb, 4000],
        ] as const)
          await c.request('tunnel_delete', { tunnel_id: tid }).catch(() => {});
        if (problems.length > 5) break;
      }
    }
    const elapsed = (Date.now() - t0) / 1000;
    await sleep(500);
    const end = proc(pid);
    log(`soak: daemon ${pid} at end:   ${end.fds} fds, ${end.threads} threads, RSS ${end.rssKiB} KiB (${cycles} cycles in ${elapsed.toFixed(1)} s)`);

    sampling = false;
    await sampler;
    await sleep(2500); // every probe sent during the churn has had its -W 2 to be answered
    for (const p of longPings) if (p.c.exitCode === null) p.c.kill('SIGINT');
    const longLivedPings = await Promise.all(longPings.map((p) => p.done));
    const st = await ca.request('status', {});
    const stB = await cb.request('status', {});
    const leftover = [...links(u.a).filter((x) => !baseA.includes(x)), ...links(u.b).filter((x) => !baseB.includes(x))];
    ca.close();
    cb.close();
    const s = st as unknown as { pid: number; tunnels: number; sessions: number };
    const sB = stB as unknown as { tunnels: number; sessions: number };
    return {
      seconds: elapsed,
      cycles,
      tunnelsChurned: tunnels / 2,
      sessionsChurned: sessions / 2,
      churnPings,
      start,
      end,
      leftoverInterfaces: leftover,
      counterRegressions: regressions,
      longLivedPings,
      daemonRestarted: s.pid !== pid,
      objectsAtEnd: { tunnels: s.tunnels + sB.tunnels, sessions: s.sessions + sB.sessions },
      problems,
    };
  } finally {
    u.destroy();
  }
}

/** Flatness and leak checks; returns the failures (empty = pass). */
export function judge(r: SoakResult): string[] {
  const f: string[] = [...r.problems];
  if (r.end.fds - r.start.fds > 2) f.push(`fds grew ${r.start.fds} → ${r.end.fds}`);
  if (r.end.threads - r.start.threads > 1) f.push(`threads grew ${r.start.threads} → ${r.end.threads}`);
  const rssLimit = Math.max(24 * 1024, r.start.rssKiB * 0.25);
  if (r.end.rssKiB - r.start.rssKiB > rssLimit) f.push(`RSS grew ${r.start.rssKiB} → ${r.end.rssKiB} KiB`);
  if (r.leftoverInterfaces.length) f.push(`leftover interfaces: ${r.leftoverInterfaces.join(' ')}`);
  if (r.counterRegressions.length) f.push(`counters went backwards: ${r.counterRegressions.slice(0, 5).join('; ')}`);
  if (r.daemonRestarted) f.push('the daemon was restarted');
  if (r.objectsAtEnd.tunnels !== 4 || r.objectsAtEnd.sessions !== 4) f.push(`objects left: ${JSON.stringify(r.objectsAtEnd)} (expected 4 tunnels, 4 sessions)`);
  r.longLivedPings.forEach((p, i) => {
    if (p.tx <= 0 || p.lost.length > 0) f.push(`long-lived ping ${i}: ${p.rx}/${p.tx}, lost icmp_seq ${p.lost.join(',')}`);
  });
  if (r.churnPings.ok !== r.churnPings.sent) f.push(`churned-link pings: ${r.churnPings.ok}/${r.churnPings.sent}`);
  if (r.cycles < 3) f.push(`only ${r.cycles} cycles`);
  return f;
}

function parseSeconds(argv: string[]): number {
  let s = 60;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--minutes') s = Number(argv[++i]) * 60;
    else if (argv[i] === '--seconds') s = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]} (use --minutes N or --seconds N)`);
  }
  if (!(s > 0)) throw new Error('duration must be positive');
  return s;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const why = netnsUnavailable();
  if (why) {
    console.error(`soak: cannot run: ${why}`);
    process.exit(2);
  }
  let secs: number;
  try {
    secs = parseSeconds(process.argv.slice(2));
  } catch (e) {
    console.error(`soak: ${(e as Error).message}`);
    process.exit(2);
  }
  runSoak(secs).then(
    (r) => {
      console.log(JSON.stringify(r, null, 2));
      const f = judge(r);
      for (const x of f) console.error(`soak: FAIL: ${x}`);
      if (f.length === 0) console.log('soak: PASS');
      process.exit(f.length === 0 ? 0 : 1);
    },
    (e) => {
      console.error(`soak: ${(e as Error).message}`);
      process.exit(1);
    },
  );
}

/**
 * Where the time goes: per-thread CPU (user/system, from /proc) of both ul2tp daemons and
 * context switches during one iperf3 TCP stream, offload on or off. Not part of `npm test`:
 *   node dist/test/integration/offload/profile.bench.js [on|off] [seconds=4] [underlay family 4|6=4]
 */
import { readFileSync, readdirSync } from 'node:fs';
import { netnsUnavailable, underlay, type Netns } from '../../../support/netns.js';
import { contextSwitches, waitFor } from '../../../support/proc.js';
import { makeLink } from '../../../support/ul2tp.js';

const on = process.argv[2] !== 'off';
const secs = Number(process.argv[3] ?? 4);
const family = process.argv[4] === '6' ? 6 : 4;
const HZ = 100;

interface T {
  tid: string;
  name: string;
  user: number;
  sys: number;
  ctx: number;
}

function threads(pid: number): T[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return { tid, name: st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')), user: Number(f[11]), sys: Number(f[12]), ctx: contextSwitches(pid, tid) };
  });
}

function withEnv(ns: Netns): void {
  const base = ns.env.bind(ns);
  (ns as unknown as { env: () => NodeJS.ProcessEnv }).env = () => ({ ...base(), UL2TP_OFFLOAD: on ? '1' : '0', UL2TP_BACKEND: 'koffi' });
}

async function main(): Promise<void> {
  const skip = netnsUnavailable();
  if (skip) {
    console.log(`skipping: ${skip}`);
    return;
  }
  const u = underlay();
  try {
    withEnv(u.a);
    withEnv(u.b);
    const l = makeLink(u, { n: 1, family });
    const pids = [u.a.daemonPid()!, u.b.daemonPid()!];
    const srv = u.b.spawn('iperf3', ['-s', '-1', '-B', l.b4]);
    let so = '';
    srv.stdout!.on('data', (d: string) => (so += d));
    await waitFor(() => so.includes('listening'), 5000);
    const cl = u.a.spawn('iperf3', ['-c', l.b4, '-t', String(secs + 2)]);
    let out = '';
    cl.stdout!.on('data', (d: string) => (out += d));
    await new Promise((r) => setTimeout(r, 1500));
    const t0 = pids.map(threads);
    const w0 = Date.now();
    await new Promise((r) => setTimeout(r, secs * 1000));
    const t1 = pids.map(threads);
    const wall = (Date.now() - w0) / 1000;
    const pk = [0, 1].map((d) => Number(u[d ? 'b' : 'a'].exec('cat', [`/sys/class/net/${d ? l.ifB : l.ifA}/statistics/${d ? 'rx_packets' : 'tx_packets'}`]).stdout));
    for (let d = 0; d < 2; d++) {
      for (const t of t1[d]) {
        const o = t0[d].find((x) => x.tid === t.tid);
        if (!o) continue;
        const us = ((t.user - o.user) / HZ / wall) * 100;
        const sy = ((t.sys - o.sys) / HZ / wall) * 100;
        if (us + sy < 3) continue;
        console.log(`${d ? 'B (receiver)' : 'A (sender)  '} thread ${t.tid}: user ${us.toFixed(0)}%  sys ${sy.toFixed(0)}%  ctx switches/s ${((t.ctx - o.ctx) / wall).toFixed(0)}`);
      }
    }
    await new Promise((r) => cl.on('exit', r));
    console.log(out.split('\n').filter((x) => /receiver/.test(x)).join('\n'));
    console.log(`TAP frames so far: A read ${pk[0]}, B written ${pk[1]}`);
  } finally {
    u.destroy();
  }
}
await main();

/**
 * iperf3 TCP through ul2tp (koffi backend, encap udp) with offloads off vs on, in
 * interleaved rounds (order alternating), 1 and 4 streams; prints medians with min–max and
 * the on/off ratio. Not part of `npm test`:
 *   node dist/test/integration/offload/iperf.bench.js [rounds=3] [seconds=5] [underlay family 4|6=4]
 * (an IPv6 underlay sends UDP checksums by default, so offload-on also uses UDP GSO there)
 */
import { netnsUnavailable, underlay, type Netns, type Underlay } from '../../../support/netns.js';
import { waitFor } from '../../../support/proc.js';
import { makeLink } from '../../../support/ul2tp.js';

const rounds = Number(process.argv[2] ?? 3);
const secs = Number(process.argv[3] ?? 5);
const family = process.argv[4] === '6' ? 6 : 4;

function withEnv(ns: Netns, on: boolean): void {
  const base = ns.env.bind(ns);
  (ns as unknown as { env: () => NodeJS.ProcessEnv }).env = () => ({ ...base(), UL2TP_OFFLOAD: on ? '1' : '0', UL2TP_BACKEND: 'koffi' });
}

async function iperf(u: Underlay, addr: string, streams: number): Promise<number> {
  const srv = u.b.spawn('iperf3', ['-s', '-1', '-B', addr]);
  let err = '';
  srv.stdout!.on('data', (d: string) => (err += d));
  await waitFor(() => err.includes('listening'), 5000);
  const r = u.a.exec('iperf3', ['-c', addr, '-t', String(secs), '-P', String(streams), '-J'], (secs + 30) * 1000);
  const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 1e9;
}

/** UDP 64-byte datagrams at full rate: received packets per second. */
async function udp64(u: Underlay, addr: string): Promise<number> {
  const srv = u.b.spawn('iperf3', ['-s', '-1', '-B', addr]);
  let err = '';
  srv.stdout!.on('data', (d: string) => (err += d));
  await waitFor(() => err.includes('listening'), 5000);
  const r = u.a.exec('iperf3', ['-c', addr, '-u', '-b', '0', '-l', '64', '-t', String(secs), '-J'], (secs + 30) * 1000);
  const j = JSON.parse(r.stdout) as { end: { sum: { packets: number; lost_packets: number; seconds: number } } };
  return (j.end.sum.packets - j.end.sum.lost_packets) / j.end.sum.seconds;
}

const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

async function main(): Promise<void> {
  const skip = netnsUnavailable();
  if (skip) {
    console.log(`skipping: ${skip}`);
    return;
  }
  const res: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? [false, true] : [true, false];
    for (const on of order) {
      const u = underlay();
      try {
        withEnv(u.a, on);
        withEnv(u.b, on);
        const l = makeLink(u, { n: 1, family });
        for (const p of [1, 4]) {
          const k = `${on ? 'on ' : 'off'} P${p}`;
          const g = await iperf(u, l.b4, p);
          (res[k] ??= []).push(g);
          console.log(`round ${r + 1} offload ${k}: ${g.toFixed(2)} Gbit/s`);
        }
        const k = `${on ? 'on ' : 'off'} udp64`;
        const pps = await udp64(u, l.b4);
        (res[k] ??= []).push(pps / 1000);
        console.log(`round ${r + 1} offload ${k}: ${(pps / 1000).toFixed(0)} kpps received`);
      } finally {
        u.destroy();
      }
    }
  }
  for (const p of [1, 4]) {
    const off = res[`off P${p}`];
    const on = res[`on  P${p}`];
    const f = (a: number[]) => `${med(a).toFixed(2)} (${Math.min(...a).toFixed(2)}–${Math.max(...a).toFixed(2)})`;
    console.log(`TCP ${p} stream${p > 1 ? 's' : ''} (Gbit/s): off ${f(off)}  on ${f(on)}  ratio ${(med(on) / med(off)).toFixed(2)}×`);
  }
  const uo = res['off udp64'];
  const un = res['on  udp64'];
  const g = (a: number[]) => `${med(a).toFixed(0)} (${Math.min(...a).toFixed(0)}–${Math.max(...a).toFixed(0)})`;
  console.log(`UDP 64-byte (kpps received): off ${g(uo)}  on ${g(un)}  ratio ${(med(un) / med(uo)).toFixed(2)}×`);
}
await main();

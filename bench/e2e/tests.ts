/**
 * The measurements run over each path: iperf3 TCP (1 and 4 streams), iperf3
 * UDP at full rate (64- and 1400-byte payloads, packets/s counted by the
 * receiver), and ping RTT with no load and under a TCP load. Around each test
 * the harness reads CPU time of the tunnel processes, samples daemon RSS and
 * reads the IP fragmentation counters of both namespaces.
 */
import { BenchError, sleep, type RunResult } from '../lib/sys.js';
import type { PathRun, Rig } from './paths.js';

export interface MetricDef {
  key: string;
  label: string;
  unit: string;
  higherBetter: boolean;
}

export interface TestCtx {
  rig: Rig;
  path: PathRun;
  duration: number;
}

export interface TestDef {
  id: string;
  label: string;
  needsIperf: boolean;
  /** Part of the "full rate" set whose daemon RSS is checked against the load target. */
  fullRate: boolean;
  metrics: MetricDef[];
  run(ctx: TestCtx): Promise<{ values: Record<string, number>; extra?: Record<string, number> }>;
}

let port = 5600;
function nextPort(): number {
  port = port >= 5699 ? 5600 : port + 1;
  return port;
}

interface IperfSum {
  bits_per_second: number;
  bytes: number;
  seconds: number;
  packets?: number;
  lost_packets?: number;
}
interface IperfJson {
  error?: string;
  end?: { sum_received?: IperfSum; sum_sent?: IperfSum; sum?: IperfSum };
}

function listening(ctx: TestCtx, p: number): boolean {
  const r = ctx.rig.b.exec('ss', ['-Hltn', `sport = :${p}`], { timeoutMs: 5000 });
  return r.status === 0 && r.stdout.trim().length > 0;
}

/** One iperf3 run from A to the path's B address; returns the client's JSON. */
export async function iperf(ctx: TestCtx, args: string[], duration = ctx.duration): Promise<IperfJson> {
  const p = nextPort();
  const server = ctx.rig.b.start('iperf3', ['-s', '-1', '-p', String(p)], { timeoutMs: (duration + 60) * 1000 });
  const end = Date.now() + 5000;
  while (!listening(ctx, p)) {
    if (Date.now() > end || server.child.exitCode !== null) {
      server.child.kill('SIGKILL');
      const r = await server.done;
      throw new BenchError(`iperf3 server did not start on port ${p}: ${r.stderr.trim()}`);
    }
    await sleep(30);
  }
  const client = ctx.rig.a.start('iperf3', ['-c', ctx.path.dst, '-p', String(p), '-t', String(duration), '-J', ...args], {
    timeoutMs: (duration + 30) * 1000,
  });
  const r: RunResult = await client.done;
  // The one-off server exits by itself after the test; give it a moment, then end it by PID.
  const late = setTimeout(() => server.child.kill('SIGKILL'), 5000);
  await server.done;
  clearTimeout(late);
  let j: IperfJson;
  try {
    j = JSON.parse(r.stdout) as IperfJson;
  } catch {
    throw new BenchError(`iperf3 ${args.join(' ')}: ${r.timedOut ? 'timed out' : `exit ${r.status}`}: ${(r.stderr || r.stdout).trim().slice(0, 400)}`);
  }
  if (j.error) throw new BenchError(`iperf3 ${args.join(' ')}: ${j.error}`);
  return j;
}

function tcpTest(id: string, label: string, streams: number): TestDef {
  return {
    id,
    label,
    needsIperf: true,
    fullRate: true,
    metrics: [{ key: id, label, unit: 'Gbit/s', higherBetter: true }],
    async run(ctx) {
      const j = await iperf(ctx, streams > 1 ? ['-P', String(streams)] : []);
      const rx = j.end?.sum_received;
      if (!rx) throw new BenchError(`iperf3 TCP: no receiver summary`);
      return { values: { [id]: rx.bits_per_second / 1e9 } };
    },
  };
}

function udpTest(id: string, label: string, len: number): TestDef {
  return {
    id,
    label,
    needsIperf: true,
    fullRate: true,
    metrics: [{ key: id, label, unit: 'kpps', higherBetter: true }],
    async run(ctx) {
      const j = await iperf(ctx, ['-u', '-b', '0', '-l', String(len)]);
      const rx = j.end?.sum_received ?? j.end?.sum;
      const tx = j.end?.sum_sent ?? j.end?.sum;
      if (!rx || rx.packets === undefined || rx.lost_packets === undefined) throw new BenchError('iperf3 UDP: no packet counts');
      const received = rx.packets - rx.lost_packets;
      const secs = rx.seconds || ctx.duration;
      return {
        values: { [id]: received / secs / 1000 },
        extra: { sentKpps: (tx?.packets ?? NaN) / secs / 1000, lossPct: (rx.lost_packets / Math.max(1, rx.packets)) * 100 },
      };
    },
  };
}

/** Ping RTTs (ms) of `count` pings at 10 ms intervals; lost ones are not in the list. */
export async function pingRtts(ctx: TestCtx, count: number): Promise<{ rtts: number[]; sent: number }> {
  const { done } = ctx.rig.a.start('ping', ['-c', String(count), '-i', '0.01', '-W', '1', '-n', ctx.path.dst], {
    timeoutMs: (count * 0.01 + 15) * 1000,
  });
  const r = await done;
  const rtts: number[] = [];
  for (const m of r.stdout.matchAll(/time=([\d.]+) ms/g)) rtts.push(Number(m[1]));
  if (rtts.length === 0) throw new BenchError(`ping ${ctx.path.dst}: no replies (${r.stderr.trim() || `exit ${r.status}`})`);
  return { rtts, sent: count };
}

export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i];
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const PING_COUNT = 200;

const pingIdle: TestDef = {
  id: 'ping-idle',
  label: 'ping, no load',
  needsIperf: false,
  fullRate: false,
  metrics: [
    { key: 'ping-idle-med', label: 'RTT no load, median', unit: 'ms', higherBetter: false },
    { key: 'ping-idle-p99', label: 'RTT no load, p99', unit: 'ms', higherBetter: false },
  ],
  async run(ctx) {
    const { rtts, sent } = await pingRtts(ctx, PING_COUNT);
    return {
      values: { 'ping-idle-med': median(rtts), 'ping-idle-p99': quantile(rtts, 0.99) },
      extra: { lostPct: ((sent - rtts.length) / sent) * 100 },
    };
  },
};

const pingLoad: TestDef = {
  id: 'ping-load',
  label: 'ping under TCP load',
  needsIperf: true,
  fullRate: true,
  metrics: [
    { key: 'ping-load-med', label: 'RTT under load, median', unit: 'ms', higherBetter: false },
    { key: 'ping-load-p99', label: 'RTT under load, p99', unit: 'ms', higherBetter: false },
  ],
  async run(ctx) {
    // One TCP stream for the whole window; the pings start after 1 s (slow start over) and end before it.
    const count = Math.max(20, Math.min(PING_COUNT, Math.floor((ctx.duration - 1.5) * 100)));
    const load = iperf(ctx, [], Math.max(ctx.duration, 3));
    await sleep(1000);
    const pinged = await pingRtts(ctx, count).catch((e: unknown) => e as Error);
    const j = await load;
    if (pinged instanceof Error) throw pinged;
    const { rtts, sent } = pinged;
    return {
      values: { 'ping-load-med': median(rtts), 'ping-load-p99': quantile(rtts, 0.99) },
      extra: { lostPct: ((sent - rtts.length) / sent) * 100, loadGbps: (j.end?.sum_received?.bits_per_second ?? NaN) / 1e9 },
    };
  },
};

export const TESTS: TestDef[] = [
  tcpTest('tcp1', 'TCP 1 stream', 1),
  tcpTest('tcp4', 'TCP 4 streams', 4),
  udpTest('udp64', 'UDP 64 B', 64),
  udpTest('udp1400', 'UDP 1400 B', 1400),
  pingIdle,
  pingLoad,
];

/** All metrics, in table order. */
export const METRICS: MetricDef[] = TESTS.flatMap((t) => t.metrics);


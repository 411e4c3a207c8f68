/**
 * The measurements run over each path: iperf3 TCP (1 and 4 streams), iperf3
 * UDP at full rate (64- and 1400-byte payloads, packets/s counted by the
 * receiver), ping RTT with no load and under a TCP load, the cost tests at a
 * fixed offered rate (64-byte UDP packets, paced TCP) that divide the tunnel
 * processes' CPU time by the packets or bits forwarded, and (ul2tp paths) two
 * tunnels carrying one TCP stream each at once. Around each test the harness
 * reads CPU time of the tunnel processes, samples daemon RSS and reads the IP
 * fragmentation counters of both namespaces.
 */
import { BenchError, CpuSeconds } from '../lib/sys.js';
import { sleep, type RunResult } from '../../support/proc.js';
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
  /** Offered rates of the fixed-rate tests. */
  rates: Rates;
}

export interface Rates {
  /** 64-byte UDP packets per second, in thousands (default 30). */
  udpKpps: number;
  /** Paced TCP, Gbit/s (default 0.5). */
  tcpGbps: number;
}

export const DEFAULT_RATES: Rates = { udpKpps: 30, tcpGbps: 0.5 };

export interface TestDef {
  id: string;
  label: string;
  needsIperf: boolean;
  /** Part of the "full rate" set whose daemon RSS is checked against the load target. */
  fullRate: boolean;
  /** Whether the test can run on this path (default: every path). */
  applies?(path: PathRun): boolean;
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

export interface IperfOpts {
  /** Target address (default: the path's side-B address). */
  dst?: string;
  /** Called just before the client starts and just after it ends (CPU windows of the fixed-rate tests). */
  onClientStart?: () => void;
  onClientEnd?: () => void;
}

/** One iperf3 run from A to the path's B address; returns the client's JSON. */
export async function iperf(ctx: TestCtx, args: string[], duration = ctx.duration, o: IperfOpts = {}): Promise<IperfJson> {
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
  o.onClientStart?.();
  const client = ctx.rig.a.start('iperf3', ['-c', o.dst ?? ctx.path.dst, '-p', String(p), '-t', String(duration), '-J', ...args], {
    timeoutMs: (duration + 30) * 1000,
  });
  const r: RunResult = await client.done;
  o.onClientEnd?.();
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

// ---------------------------------------------------------------------------
// Fixed-rate cost tests

/** iperf3 arguments offering `pps` UDP packets/s of `len` payload bytes (iperf3's -b counts payload bits). */
export function udpRateArgs(pps: number, len: number): string[] {
  if (!(pps > 0) || !(len > 0)) throw new BenchError(`UDP rate: need packets/s > 0 and a length > 0 (got ${pps}, ${len})`);
  return ['-u', '-l', String(len), '-b', String(Math.round(pps * len * 8))];
}

/** iperf3 arguments pacing one TCP stream at `gbps` Gbit/s. */
export function tcpRateArgs(gbps: number): string[] {
  if (!(gbps > 0)) throw new BenchError(`TCP rate: need Gbit/s > 0 (got ${gbps})`);
  return ['-b', String(Math.round(gbps * 1e9))];
}

/** Tunnel CPU time per forwarded packet, µs. */
export function cpuPerPacketUs(cpuSec: number, packets: number): number {
  return packets > 0 ? (cpuSec * 1e6) / packets : NaN;
}

/**
 * Tunnel CPU in % of one core per Gbit/s: (cpuSec / T × 100) / (bits / T / 1e9)
 * = cpuSec × 100 / (bits / 1e9); the window length T cancels out.
 */
export function cpuPctPerGbps(cpuSec: number, bytes: number): number {
  return bytes > 0 ? (cpuSec * 100) / ((bytes * 8) / 1e9) : NaN;
}

/** CPU seconds of the path's tunnel processes over the iperf3 client's run (NaN on kernel paths: nothing to count). */
function clientCpu(ctx: TestCtx): { opts: IperfOpts; seconds(): number } {
  const pids = ctx.path.procs.map((p) => p.pid);
  let w: CpuSeconds | undefined;
  let sec = NaN;
  return {
    opts: { onClientStart: () => (w = new CpuSeconds(pids)), onClientEnd: () => (sec = w ? w.stop() : NaN) },
    seconds: () => (pids.length ? sec : NaN),
  };
}

const udpFixed: TestDef = {
  id: 'udp64-rate',
  label: 'UDP 64 B at a fixed rate',
  needsIperf: true,
  fullRate: false,
  metrics: [{ key: 'udp64-rate-cpu', label: 'CPU per packet, 64 B UDP at fixed rate', unit: 'µs', higherBetter: false }],
  async run(ctx) {
    const cpu = clientCpu(ctx);
    const pps = ctx.rates.udpKpps * 1000;
    const j = await iperf(ctx, udpRateArgs(pps, 64), ctx.duration, cpu.opts);
    const rx = j.end?.sum_received ?? j.end?.sum;
    if (!rx || rx.packets === undefined || rx.lost_packets === undefined) throw new BenchError('iperf3 UDP: no packet counts');
    const received = rx.packets - rx.lost_packets;
    const secs = rx.seconds || ctx.duration;
    const cpuSec = cpu.seconds();
    return {
      values: { 'udp64-rate-cpu': cpuPerPacketUs(cpuSec, received) },
      extra: {
        offeredKpps: ctx.rates.udpKpps,
        rxKpps: received / secs / 1000,
        lossPct: (rx.lost_packets / Math.max(1, rx.packets)) * 100,
        cpuSec,
        packets: received,
      },
    };
  },
};

const tcpFixed: TestDef = {
  id: 'tcp-rate',
  label: 'TCP at a fixed rate',
  needsIperf: true,
  fullRate: false,
  metrics: [{ key: 'tcp-rate-cpu', label: 'CPU per Gbit/s, TCP at fixed rate', unit: '%/Gbit/s', higherBetter: false }],
  async run(ctx) {
    const cpu = clientCpu(ctx);
    const j = await iperf(ctx, tcpRateArgs(ctx.rates.tcpGbps), ctx.duration, cpu.opts);
    const rx = j.end?.sum_received;
    if (!rx) throw new BenchError('iperf3 TCP: no receiver summary');
    const cpuSec = cpu.seconds();
    return {
      values: { 'tcp-rate-cpu': cpuPctPerGbps(cpuSec, rx.bytes) },
      extra: { offeredGbps: ctx.rates.tcpGbps, rxGbps: rx.bits_per_second / 1e9, cpuSec, bytes: rx.bytes },
    };
  },
};

/** Two tunnels (one session each) between the same daemons, one TCP stream through each at once: the aggregate. */
const tcpTwoTunnels: TestDef = {
  id: 'tcp-2tun',
  label: 'TCP, 2 tunnels × 1 stream',
  needsIperf: true,
  fullRate: true,
  applies: (p) => p.addTunnel !== undefined,
  metrics: [{ key: 'tcp-2tun', label: 'TCP 2 tunnels × 1 stream', unit: 'Gbit/s', higherBetter: true }],
  async run(ctx) {
    const dst2 = await ctx.path.addTunnel!(1);
    const js = await Promise.all([iperf(ctx, []), iperf(ctx, [], ctx.duration, { dst: dst2 })]);
    const gbps = js.map((j) => {
      const rx = j.end?.sum_received;
      if (!rx) throw new BenchError('iperf3 TCP: no receiver summary');
      return rx.bits_per_second / 1e9;
    });
    return { values: { 'tcp-2tun': gbps[0] + gbps[1] }, extra: { tunnel1Gbps: gbps[0], tunnel2Gbps: gbps[1] } };
  },
};

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
  udpFixed,
  tcpFixed,
  tcpTwoTunnels,
];

/** All metrics, in table order. */
export const METRICS: MetricDef[] = TESTS.flatMap((t) => t.metrics);


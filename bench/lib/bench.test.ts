/**
 * Unit tests of the benchmark harness's pure parts: overlay MTU arithmetic
 * (must match docs/protocol.md §3.4's table), statistics, CPU accounting from /proc
 * stat samples, fixed rates → iperf3 arguments, the --workers sweep's option
 * and path list, the Markdown report and the SVG chart.
 * Run: node --test dist/bench/lib/
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { l2tpOverhead, PATHS, UNDERLAY_MTU } from '../e2e/paths.js';
import { cpuPctPerGbps, cpuPerPacketUs, median, quantile, tcpRateArgs, udpRateArgs, METRICS } from '../e2e/tests.js';
import { markdown, stat, svg, type PathInfo, type Sample } from '../e2e/report.js';
import { expandPaths, parseWorkers } from '../e2e/sweep.js';
import { CLK_TCK, CpuSeconds, cpuSecondsBetween, statTicks } from './sys.js';

const REFS = { qemu: 'qemu-udp', ceiling: 'veth', vxlan: 'vxlan' };

test('overlay MTU per encapsulation matches docs/protocol.md §3.4 (1500-byte IPv4 underlay)', () => {
  const mtu = (e: 'udp' | 'ip', c: number, l: 'default' | 'none') => UNDERLAY_MTU - l2tpOverhead(e, c, l);
  assert.equal(mtu('udp', 0, 'default'), 1446);
  assert.equal(mtu('udp', 0, 'none'), 1450);
  assert.equal(mtu('udp', 8, 'default'), 1438);
  assert.equal(mtu('ip', 0, 'default'), 1458);
  assert.equal(mtu('ip', 0, 'none'), 1462);
  assert.equal(mtu('ip', 8, 'none'), 1454);
  const byId = Object.fromEntries(PATHS.map((p) => [p.id, UNDERLAY_MTU - p.overhead]));
  assert.deepEqual(
    [byId['ul2tp-udp'], byId['ul2tp-ip'], byId['ul2tp-seq-cookie'], byId['qemu-udp'], byId['qemu-ip'], byId.vxlan, byId.veth],
    [1446, 1458, 1438, 1446, 1458, 1450, 1500],
  );
});

test('median, quantile and stat', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  const xs = Array.from({ length: 200 }, (_, i) => i + 1);
  assert.equal(quantile(xs, 0.99), 198);
  assert.equal(quantile(xs, 0.5), 100);
  assert.deepEqual(stat([5, NaN, 1, 3]), { median: 3, min: 1, max: 5, n: 3 });
  assert.equal(stat([]).n, 0);
});

function sample(path: string, round: number, tcp1: number, cpu: Record<string, number> = {}): Sample {
  return {
    round,
    path,
    test: 'tcp1',
    values: { tcp1 },
    cpu,
    rssKb: {},
    frag: { FragCreates: 0, FragOKs: 0, FragFails: 0, ReasmReqds: 0 },
    startedAt: '',
  };
}

test('markdown: medians with min–max, ratios to QEMU udp and veth, skipped paths named', () => {
  const paths: PathInfo[] = [
    { id: 'ul2tp-udp', label: 'ul2tp encap udp', overhead: 54, mtu: 1446 },
    { id: 'qemu-udp', label: 'QEMU l2tpv3 udp', overhead: 54, mtu: 1446 },
    { id: 'veth', label: 'bare veth', overhead: 0, mtu: 1500 },
    { id: 'openvpn', label: 'OpenVPN', overhead: 58, mtu: 1442, skipped: 'not installed' },
  ];
  const s = [
    sample('ul2tp-udp', 0, 1.0, { a: 50 }), sample('ul2tp-udp', 1, 1.2, { a: 60 }), sample('ul2tp-udp', 2, 0.8, { a: 40 }),
    sample('qemu-udp', 0, 0.5), sample('qemu-udp', 1, 0.4), sample('qemu-udp', 2, 0.6),
    sample('veth', 0, 10), sample('veth', 1, 10), sample('veth', 2, 10),
  ];
  const tcp1 = METRICS.filter((m) => m.key === 'tcp1');
  const md = markdown(s, paths, tcp1, REFS, ['tcp1']);
  assert.match(md, /\| ul2tp encap udp \| 1446 \| 1\.00 \(0\.80–1\.20\) \|/);
  assert.match(md, /\| ul2tp encap udp \| 2\.00× \| 0\.10× \|/);
  assert.match(md, /\| bare veth \| kernel \|/);
  assert.match(md, /Skipped: OpenVPN: not installed\./);
  assert.doesNotMatch(md, /\| OpenVPN \|/);
  const chart = svg(s, paths, tcp1, 'test');
  assert.match(chart, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(chart, /<\/svg>\n$/);
  assert.equal((chart.match(/<rect x=/g) ?? []).length, 3, 'one bar per path that ran');
  assert.match(chart, /axis cut/, 'the veth bar (10× the rest) is clipped');
});


test('quantile is the nearest rank: p99 of 100 samples is the 99th smallest, of 1 sample that sample', () => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // unsorted input
  assert.equal(quantile(xs, 0.99), 99);
  assert.equal(quantile(xs, 1), 100);
  assert.equal(quantile(xs, 0), 1);
  assert.equal(quantile([7.5], 0.99), 7.5);
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 1000], 0.99), 1000, 'one outlier in ten is the p99');
  assert.ok(Number.isNaN(quantile([], 0.99)));
});

test('statTicks: utime+stime from /proc stat text, command names with spaces and parentheses', () => {
  // Fields after the command: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime …
  const line = '4242 (ul2tp (tx) 1) S 1 4242 4242 0 -1 4194560 1234 0 0 0 311 89 0 0 20 0 5 0 100 1000000 2000 18446744073709551615';
  assert.equal(statTicks(line), 400);
  assert.equal(statTicks('17 (node) R 1 17 17 0 -1 0 0 0 0 0 5 7 0 0'), 12);
  assert.ok(Number.isNaN(statTicks('')), 'a process that is gone gives NaN, not 0');
});

test('cpuSecondsBetween: ticks of both ends summed, ÷ CLK_TCK; a vanished process poisons the sum', () => {
  assert.equal(cpuSecondsBetween([100, 2000], [350, 2150], 100), 4);
  assert.equal(cpuSecondsBetween([], [], 100), 0);
  assert.ok(Number.isNaN(cpuSecondsBetween([100, 200], [150, NaN], 100)));
  assert.throws(() => cpuSecondsBetween([1], [1, 2], 100), /different process sets/);
});

test('CpuSeconds counts the CPU this process burns (all threads, from /proc/self/stat), as getrusage does', () => {
  const w = new CpuSeconds([process.pid]);
  const u0 = process.cpuUsage();
  const used = () => {
    const u = process.cpuUsage(u0);
    return (u.user + u.system) / 1e6;
  };
  let x = 0;
  while (used() < 0.3) x += Math.sqrt(x + 1); // 300 ms of CPU, however busy the machine is
  const sec = w.stop();
  const ru = used();
  assert.ok(x > 0);
  assert.ok(Math.abs(sec - ru) <= 0.05, `/proc says ${sec} s, getrusage ${ru} s (CLK_TCK ${CLK_TCK})`);
});

test('fixed rates → iperf3 arguments: 30 kpps of 64 B = -b 15360000 (payload bits), 0.5 Gbit/s TCP = -b 500000000', () => {
  assert.deepEqual(udpRateArgs(30_000, 64), ['-u', '-l', '64', '-b', '15360000']);
  assert.deepEqual(udpRateArgs(1000, 1400), ['-u', '-l', '1400', '-b', '11200000']);
  assert.deepEqual(tcpRateArgs(0.5), ['-b', '500000000']);
  assert.throws(() => udpRateArgs(0, 64), /packets\/s > 0/);
  assert.throws(() => tcpRateArgs(-1), /Gbit\/s > 0/);
});

test('cost per packet (µs) and per Gbit/s (% of one core)', () => {
  // 90,000 packets (30 kpps × 3 s) for 1.08 CPU-seconds = 12 µs each.
  assert.ok(Math.abs(cpuPerPacketUs(1.08, 90_000) - 12) < 1e-9);
  assert.ok(Number.isNaN(cpuPerPacketUs(1, 0)), 'nothing forwarded: no figure');
  // 0.5 Gbit/s for 10 s = 6.25e8 bytes; 90.5 % of a core for 10 s = 9.05 s → 181 % per Gbit/s.
  assert.ok(Math.abs(cpuPctPerGbps(9.05, 6.25e8) - 181) < 1e-9);
  assert.ok(Number.isNaN(cpuPctPerGbps(1, 0)));
});

test('--workers: parsed, deduplicated, bad counts refused; the sweep multiplies only ul2tp koffi paths', () => {
  assert.deepEqual(parseWorkers('1,2,2, 4'), [1, 2, 4]);
  assert.throws(() => parseWorkers('0'), /integers 1–64/);
  assert.throws(() => parseWorkers('2,x'), /integers 1–64/);
  assert.throws(() => parseWorkers(','), /N\[,M…\]/);
  const sel = PATHS.filter((p) => ['ul2tp-udp', 'ul2tp-nf', 'qemu-udp'].includes(p.id));
  const ex = expandPaths(sel, [1, 2]);
  assert.deepEqual(ex.map((p) => p.id), ['ul2tp-udp-w1', 'ul2tp-udp-w2', 'ul2tp-nf', 'qemu-udp']);
  assert.deepEqual(ex.map((p) => p.workers), [1, 2, undefined, undefined]);
  assert.equal(ex[1].base.id, 'ul2tp-udp');
  assert.equal(typeof ex[1].setup, 'function', 'a variant sets up like its base path');
  assert.deepEqual(expandPaths(sel, []).map((p) => p.id), ['ul2tp-udp', 'ul2tp-nf', 'qemu-udp']);
});

function fixed(path: string, round: number, cpuUs: number, cpuPerGbit: number, extra: Record<string, number>, cpu: Record<string, number>): Sample[] {
  const base = { round, path, rssKb: {}, frag: { FragCreates: 0, FragOKs: 0, FragFails: 0, ReasmReqds: 0 }, startedAt: '', cpu };
  return [
    { ...base, test: 'udp64-rate', values: cpuUs >= 0 ? { 'udp64-rate-cpu': cpuUs } : {}, extra: { offeredKpps: 30, rxKpps: extra.rxKpps, lossPct: extra.lossPct } },
    { ...base, test: 'tcp-rate', values: cpuPerGbit >= 0 ? { 'tcp-rate-cpu': cpuPerGbit } : {}, extra: { offeredGbps: 0.5, rxGbps: extra.rxGbps } },
    { ...base, test: 'ping-idle', values: { 'ping-idle-med': extra.idle, 'ping-idle-p99': extra.idle * 3 } },
    { ...base, test: 'ping-load', values: { 'ping-load-med': extra.p99 / 3, 'ping-load-p99': extra.p99 } },
    { ...base, test: 'tcp1', values: { tcp1: extra.tcp1 } },
  ];
}

test('markdown: cost and latency ratios to QEMU, TCP ÷ VXLAN, fixed-rate details, "kernel" for CPU figures of kernel paths', () => {
  const paths: PathInfo[] = [
    { id: 'ul2tp-udp', label: 'ul2tp encap udp', overhead: 54, mtu: 1446 },
    { id: 'qemu-udp', label: 'QEMU l2tpv3 udp', overhead: 54, mtu: 1446 },
    { id: 'vxlan', label: 'kernel VXLAN', overhead: 50, mtu: 1450 },
  ];
  const s = [0, 1, 2].flatMap((r) => [
    ...fixed('ul2tp-udp', r, [6, 5, 7][r], [50, 40, 60][r], { rxKpps: 29.9, lossPct: 0.1, rxGbps: 0.5, idle: 0.35, p99: 5, tcp1: 3 }, { 'ul2tp A': 50 }),
    ...fixed('qemu-udp', r, 12, 200, { rxKpps: 29.5, lossPct: 1, rxGbps: 0.49, idle: 0.25, p99: 10, tcp1: 0.75 }, { 'qemu A': 50 }),
    ...fixed('vxlan', r, -1, -1, { rxKpps: 30, lossPct: 0, rxGbps: 0.5, idle: 0.05, p99: 0.1, tcp1: 15 }, {}),
  ]);
  const ms = METRICS.filter((m) => ['tcp1', 'ping-idle-med', 'ping-load-p99', 'udp64-rate-cpu', 'tcp-rate-cpu'].includes(m.key));
  const md = markdown(s, paths, ms, REFS, []);
  // Value table: µs per packet and % per Gbit/s with min–max; kernel paths have no tunnel CPU.
  assert.match(md, /\| ul2tp encap udp \| 1446 \| 3\.00 \(3\.00–3\.00\) \| 0\.350 \(0\.350–0\.350\) \| 5\.00 \(5\.00–5\.00\) \| 6\.00 \(5\.00–7\.00\) \| 50\.0 \(40\.0–60\.0\) \|/);
  assert.match(md, /\| kernel VXLAN \| 1450 \| 15\.0 \(15\.0–15\.0\) \| 0\.050 \(0\.050–0\.050\) \| 0\.100 \(0\.100–0\.100\) \| kernel \| kernel \|/);
  // Goal ratios: TCP ÷ VXLAN 0.20, CPU/packet 6/12, CPU per Gbit/s 50/200, p99 5/10, idle median 0.35 − 0.25.
  assert.match(md, /\| path \| TCP 1 stream ÷ VXLAN \| CPU\/packet ÷ QEMU \| CPU per Gbit\/s ÷ QEMU \| ping p99 under load ÷ QEMU \| idle ping median − QEMU \(ms\) \|/);
  assert.match(md, /\| ul2tp encap udp \| 0\.20× \| 0\.50× \| 0\.25× \| 0\.50× \| \+0\.100 \|/);
  assert.match(md, /\| QEMU l2tpv3 udp \| 0\.05× \| 1\.00× \| 1\.00× \| 1\.00× \| \+0\.000 \|/);
  assert.match(md, /\| kernel VXLAN \| 1\.00× \| – \| – \| 0\.01× \| −0\.200 \|/);
  // Fixed-rate details: offered and received.
  const noVxlan = markdown(s.filter((x) => x.path !== 'vxlan'), paths.slice(0, 2), ms, REFS, []);
  assert.match(noVxlan, /\| path \| CPU\/packet ÷ QEMU \|/, 'no ÷ VXLAN column when VXLAN did not run');
  assert.doesNotMatch(noVxlan, /\| TCP 1 stream ÷ VXLAN/);
  assert.match(md, /\| ul2tp encap udp \| 30\.0 \(30\.0–30\.0\) \| 29\.9 \(29\.9–29\.9\) \| 0\.10 \(0\.10–0\.10\) \| 0\.50 \(0\.50–0\.50\) \| 0\.50 \(0\.50–0\.50\) \|/);
  assert.doesNotMatch(md, /udp64-rate sent/, 'the full-rate UDP table is only for the full-rate tests');
});

test('markdown: --workers sweep table compares two tunnels with one, and with the fewest workers', () => {
  const paths: PathInfo[] = [
    { id: 'ul2tp-udp-w1', label: 'ul2tp encap udp, --workers 1', overhead: 54, mtu: 1446, base: 'ul2tp-udp', workers: 1 },
    { id: 'ul2tp-udp-w2', label: 'ul2tp encap udp, --workers 2', overhead: 54, mtu: 1446, base: 'ul2tp-udp', workers: 2 },
  ];
  const mk = (path: string, test: string, values: Record<string, number>): Sample => ({
    round: 0, path, test, values, cpu: { a: 1 }, rssKb: {}, frag: { FragCreates: 0, FragOKs: 0, FragFails: 0, ReasmReqds: 0 }, startedAt: '',
  });
  const s = [
    mk('ul2tp-udp-w1', 'tcp1', { tcp1: 3 }), mk('ul2tp-udp-w1', 'tcp-2tun', { 'tcp-2tun': 3 }),
    mk('ul2tp-udp-w2', 'tcp1', { tcp1: 3 }), mk('ul2tp-udp-w2', 'tcp-2tun', { 'tcp-2tun': 4.5 }),
  ];
  const ms = METRICS.filter((m) => ['tcp1', 'tcp-2tun'].includes(m.key));
  const md = markdown(s, paths, ms, REFS, []);
  assert.match(md, /\| ul2tp encap udp, --workers 1 \| 1 \| 3\.00 \| 3\.00 \| 1\.00× \| 1\.00× \|/);
  assert.match(md, /\| ul2tp encap udp, --workers 2 \| 2 \| 3\.00 \| 4\.50 \| 1\.50× \| 1\.50× \|/);
});

/**
 * Results of the end-to-end benchmark: per (path, metric) medians with
 * min–max, Markdown tables (values, ratios to QEMU l2tpv3 udp and to the veth
 * ceiling, cost and latency ratios to QEMU and kernel VXLAN, fixed-rate
 * details, the --workers sweep, CPU/RSS/fragmentation), and a hand-written SVG
 * chart. Every ratio is a ratio of medians over the same interleaved rounds.
 */
import type { MetricDef } from './tests.js';

export interface Sample {
  round: number;
  path: string;
  test: string;
  /** Metric key → value (see METRICS). */
  values: Record<string, number>;
  extra?: Record<string, number>;
  /** CPU % per tunnel process over the test window (100 = one core), by label. */
  cpu: Record<string, number>;
  /** Max RSS (KiB) per ul2tp daemon during the test, by label. */
  rssKb: Record<string, number>;
  /** Deltas of /proc/net/snmp Ip: fragmentation counters, both namespaces summed. */
  frag: { FragCreates: number; FragOKs: number; FragFails: number; ReasmReqds: number };
  startedAt: string;
}

export interface PathInfo {
  id: string;
  label: string;
  overhead: number;
  mtu: number;
  skipped?: string;
  /** --workers sweep: the path this one is a variant of, and its worker count. */
  base?: string;
  workers?: number;
}

/** Reference paths of the ratio columns (ids; all measured in the same run). */
export interface Refs {
  qemu: string;
  ceiling: string;
  vxlan: string;
}

export const REF_VXLAN = 'vxlan';

/** Metrics computed from the tunnel processes' CPU time: none on kernel paths. */
const TUNNEL_CPU = new Set(['udp64-rate-cpu', 'tcp-rate-cpu']);

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function stat(xs: number[]): Stat {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const m = v.length >> 1;
  return { median: v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2, min: v[0], max: v[v.length - 1], n: v.length };
}

export function summarize(samples: Sample[], paths: PathInfo[], metrics: MetricDef[]): Record<string, Record<string, Stat>> {
  const out: Record<string, Record<string, Stat>> = {};
  for (const p of paths) {
    out[p.id] = {};
    for (const m of metrics) {
      out[p.id][m.key] = stat(samples.filter((s) => s.path === p.id && m.key in s.values).map((s) => s.values[m.key]));
    }
  }
  return out;
}

function fmt(x: number, unit: string): string {
  if (!Number.isFinite(x)) return '–';
  if (unit === 'ms') return x < 1 ? x.toFixed(3) : x.toFixed(2);
  if (unit === 'kpps') return x >= 100 ? x.toFixed(0) : x.toFixed(1);
  if (unit === '%/Gbit/s' || unit === '%') return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
  return x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function cell(s: Stat, unit: string): string {
  if (s.n === 0) return '–';
  if (s.n === 1) return fmt(s.median, unit);
  return `${fmt(s.median, unit)} (${fmt(s.min, unit)}–${fmt(s.max, unit)})`;
}

function ratio(a: Stat | undefined, ref: Stat | undefined): string {
  return fmtRatio(ratioOf(a, ref), 'ratio');
}

/** Median ÷ reference median (NaN when either is missing or the reference is 0). */
function ratioOf(a: Stat | undefined, ref: Stat | undefined): number {
  if (!a || !ref || !(ref.median > 0) || !Number.isFinite(a.median)) return NaN;
  return a.median / ref.median;
}

/** Median − reference median (NaN when either is missing). */
function diffOf(a: Stat | undefined, ref: Stat | undefined): number {
  if (!a || !ref || !Number.isFinite(a.median) || !Number.isFinite(ref.median)) return NaN;
  return a.median - ref.median;
}

function fmtRatio(x: number, kind: 'ratio' | 'diff'): string {
  if (!Number.isFinite(x)) return '–';
  if (kind === 'ratio') return `${x.toFixed(2)}×`;
  return `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;
}

interface GoalRatio {
  /** Key in the JSON's ratios. */
  key: string;
  head: string;
  metric: string;
  ref: keyof Refs;
  kind: 'ratio' | 'diff';
}

/** The cost, throughput and latency comparisons with the references (Markdown column + JSON key each). */
export const GOAL_RATIOS: GoalRatio[] = [
  { key: 'tcp1VsVxlan', head: 'TCP 1 stream ÷ VXLAN', metric: 'tcp1', ref: 'vxlan', kind: 'ratio' },
  { key: 'tcp4VsVxlan', head: 'TCP 4 streams ÷ VXLAN', metric: 'tcp4', ref: 'vxlan', kind: 'ratio' },
  { key: 'udp64VsQemu', head: 'UDP 64 B max rate ÷ QEMU', metric: 'udp64', ref: 'qemu', kind: 'ratio' },
  { key: 'cpuPerPacketVsQemu', head: 'CPU/packet ÷ QEMU', metric: 'udp64-rate-cpu', ref: 'qemu', kind: 'ratio' },
  { key: 'cpuPerGbpsVsQemu', head: 'CPU per Gbit/s ÷ QEMU', metric: 'tcp-rate-cpu', ref: 'qemu', kind: 'ratio' },
  { key: 'pingLoadP99VsQemu', head: 'ping p99 under load ÷ QEMU', metric: 'ping-load-p99', ref: 'qemu', kind: 'ratio' },
  { key: 'pingIdleMedianMinusQemuMs', head: 'idle ping median − QEMU (ms)', metric: 'ping-idle-med', ref: 'qemu', kind: 'diff' },
];

/**
 * Per path: every GOAL_RATIOS entry, plus for --workers variants the
 * two-tunnel aggregate ÷ the same variant's one stream (twoTunnelsVsOne) and
 * ÷ the variant with the fewest workers of the same base path
 * (twoTunnelsVsFewestWorkers). NaN where a figure is missing (null in JSON).
 */
export function ratios(samples: Sample[], paths: PathInfo[], metrics: MetricDef[], refs: Refs): Record<string, Record<string, number>> {
  const st = summarize(samples, paths, metrics);
  const out: Record<string, Record<string, number>> = {};
  for (const p of paths) {
    const r: Record<string, number> = {};
    for (const g of GOAL_RATIOS) {
      const ref = st[refs[g.ref]]?.[g.metric];
      r[g.key] = g.kind === 'ratio' ? ratioOf(st[p.id][g.metric], ref) : diffOf(st[p.id][g.metric], ref);
    }
    if (p.workers !== undefined) {
      const first = paths.filter((v) => v.base === p.base && v.workers !== undefined).reduce((a, b) => (b.workers! < a.workers! ? b : a));
      r.twoTunnelsVsOne = ratioOf(st[p.id]['tcp-2tun'], st[p.id].tcp1);
      r.twoTunnelsVsFewestWorkers = ratioOf(st[p.id]['tcp-2tun'], st[first.id]['tcp-2tun']);
    }
    out[p.id] = r;
  }
  return out;
}

/** Median (min–max) of one extra field over a path's samples of one test. */
function extraCell(samples: Sample[], path: string, test: string, key: string, unit: string): string {
  return cell(stat(samples.filter((s) => s.path === path && s.test === test).map((s) => s.extra?.[key] ?? NaN)), unit);
}

export function markdown(
  samples: Sample[],
  paths: PathInfo[],
  metrics: MetricDef[],
  refs: Refs,
  fullRateTests: string[],
): string {
  const st = summarize(samples, paths, metrics);
  const run = paths.filter((p) => !p.skipped);
  const refQemu = refs.qemu;
  const refCeil = refs.ceiling;
  // A path with samples but no tunnel process (kernel VXLAN, veth): its CPU-based cells say so.
  const kernel = (id: string) => samples.some((s) => s.path === id) && samples.every((s) => s.path !== id || Object.keys(s.cpu).length === 0);
  const valueCell = (p: PathInfo, m: MetricDef) =>
    TUNNEL_CPU.has(m.key) && st[p.id][m.key].n === 0 && kernel(p.id) ? 'kernel' : cell(st[p.id][m.key], m.unit);
  const lines: string[] = [];
  lines.push(`| path | MTU | ${metrics.map((m) => `${m.label} (${m.unit})`).join(' | ')} |`);
  lines.push(`|---|---:|${metrics.map(() => '---:').join('|')}|`);
  for (const p of run) lines.push(`| ${p.label} | ${p.mtu} | ${metrics.map((m) => valueCell(p, m)).join(' | ')} |`);
  lines.push('');
  lines.push('Cells: median (min–max) over rounds.');
  lines.push('');

  // Cost and latency against the references of the same run.
  const rs = ratios(samples, paths, metrics, refs);
  // Only the comparisons whose reference ran (no "÷ VXLAN" column of dashes when VXLAN was not selected).
  const goalCols = GOAL_RATIOS.filter((g) => metrics.some((m) => m.key === g.metric) && (st[refs[g.ref]]?.[g.metric]?.n ?? 0) > 0);
  if (goalCols.length) {
    lines.push(`| path | ${goalCols.map((c) => c.head).join(' | ')} |`);
    lines.push(`|---|${goalCols.map(() => '---:').join('|')}|`);
    for (const p of run) lines.push(`| ${p.label} | ${goalCols.map((c) => fmtRatio(rs[p.id][c.key], c.kind)).join(' | ')} |`);
    lines.push('');
    lines.push('Ratios of medians over the same interleaved rounds: ÷ VXLAN higher is better, ÷ QEMU of a cost or a p99 lower is better.');
    lines.push('');
  }

  const ran = (t: string) => samples.some((s) => s.test === t);
  if (ran('udp64-rate') || ran('tcp-rate')) {
    const cols = [
      ...(ran('udp64-rate') ? ['64 B UDP offered (kpps)', 'received (kpps)', 'loss %'] : []),
      ...(ran('tcp-rate') ? ['TCP paced at (Gbit/s)', 'received (Gbit/s)'] : []),
    ];
    lines.push(`| path | ${cols.join(' | ')} |`);
    lines.push(`|---|${cols.map(() => '---:').join('|')}|`);
    for (const p of run) {
      const c = [
        ...(ran('udp64-rate')
          ? [extraCell(samples, p.id, 'udp64-rate', 'offeredKpps', 'kpps'), extraCell(samples, p.id, 'udp64-rate', 'rxKpps', 'kpps'), extraCell(samples, p.id, 'udp64-rate', 'lossPct', '%')]
          : []),
        ...(ran('tcp-rate') ? [extraCell(samples, p.id, 'tcp-rate', 'offeredGbps', 'Gbit/s'), extraCell(samples, p.id, 'tcp-rate', 'rxGbps', 'Gbit/s')] : []),
      ];
      lines.push(`| ${p.label} | ${c.join(' | ')} |`);
    }
    lines.push('');
    lines.push(
      'Fixed-rate tests: CPU per packet = tunnel CPU seconds (utime+stime of both ends\' tunnel processes, all threads, over the iperf3 client\'s run) ÷ packets received; ' +
        'CPU per Gbit/s = the same CPU time × 100 ÷ gigabits received (% of one core per Gbit/s). A path that receives much less than it is offered is overloaded at that rate: its figure is the cost at saturation.',
    );
    lines.push('');
  }

  // --workers sweep: every variant against the smallest worker count of its base path.
  const variants = run.filter((p) => p.workers !== undefined);
  const has = (k: string) => metrics.some((m) => m.key === k);
  if (variants.length) {
    const keys = ['tcp1', 'tcp4', 'tcp-2tun', 'udp64', 'udp64-rate-cpu', 'tcp-rate-cpu'].filter(has);
    const ms = keys.map((k) => metrics.find((m) => m.key === k)!);
    lines.push(`| path | workers | ${ms.map((m) => `${m.label} (${m.unit})`).join(' | ')} | 2 tunnels ÷ 1 tunnel | 2 tunnels ÷ fewest workers' |`);
    lines.push(`|---|---:|${ms.map(() => '---:').join('|')}|---:|---:|`);
    for (const p of variants) {
      lines.push(
        `| ${p.label} | ${p.workers} | ${ms.map((m) => cell(st[p.id][m.key], m.unit)).join(' | ')} | ` +
          `${fmtRatio(rs[p.id].twoTunnelsVsOne, 'ratio')} | ${fmtRatio(rs[p.id].twoTunnelsVsFewestWorkers, 'ratio')} |`,
      );
    }
    lines.push('');
  }

  const thr = metrics.filter((m) => m.higherBetter);
  lines.push(`| path | ${thr.map((m) => `${m.label} ÷ QEMU udp | ÷ veth`).join(' | ')} |`);
  lines.push(`|---|${thr.map(() => '---:|---:').join('|')}|`);
  for (const p of run) {
    lines.push(`| ${p.label} | ${thr.map((m) => `${ratio(st[p.id][m.key], st[refQemu]?.[m.key])} | ${ratio(st[p.id][m.key], st[refCeil]?.[m.key])}`).join(' | ')} |`);
  }
  lines.push('');

  const tests = [...new Set(samples.map((s) => s.test))];
  lines.push(`| path | ${tests.map((t) => `CPU % ${t}`).join(' | ')} | max daemon RSS under load (MB) | FragCreates | ReasmReqds |`);
  lines.push(`|---|${tests.map(() => '---:').join('|')}|---:|---:|---:|`);
  for (const p of run) {
    const ps = samples.filter((s) => s.path === p.id);
    const cpu = tests.map((t) => {
      const xs = ps.filter((s) => s.test === t).map((s) => Object.values(s.cpu).reduce((a, b) => a + b, 0));
      const hasProcs = ps.some((s) => Object.keys(s.cpu).length > 0);
      if (ps.length === 0) return '–';
      return hasProcs ? cell(stat(xs), '%') : 'kernel';
    });
    const rss = ps.filter((s) => fullRateTests.includes(s.test)).flatMap((s) => Object.values(s.rssKb));
    const rssCell = rss.length ? (Math.max(...rss) / 1024).toFixed(1) : '–';
    const fc = ps.reduce((a, s) => a + s.frag.FragCreates, 0);
    const rr = ps.reduce((a, s) => a + s.frag.ReasmReqds, 0);
    lines.push(`| ${p.label} | ${cpu.join(' | ')} | ${rssCell} | ${fc} | ${rr} |`);
  }
  lines.push('');
  const udp = tests.filter((t) => samples.some((s) => s.test === t && s.extra?.sentKpps !== undefined));
  if (udp.length) {
    lines.push(`| path | ${udp.map((t) => `${t} sent (kpps) | ${t} loss %`).join(' | ')} |`);
    lines.push(`|---|${udp.map(() => '---:|---:').join('|')}|`);
    for (const p of run) {
      const ps = samples.filter((s) => s.path === p.id);
      const cols = udp.map((t) => {
        const xs = ps.filter((s) => s.test === t);
        return `${cell(stat(xs.map((s) => s.extra?.sentKpps ?? NaN)), 'kpps')} | ${cell(stat(xs.map((s) => s.extra?.lossPct ?? NaN)), '%')}`;
      });
      lines.push(`| ${p.label} | ${cols.join(' | ')} |`);
    }
    lines.push('');
  }
  lines.push('CPU %: utime+stime of the tunnel processes of both sides (all threads) over the test window, 100 = one core; "kernel" = no process (softirq time is not attributed).');
  lines.push('FragCreates/ReasmReqds: deltas of /proc/net/snmp over all tests of the path, both namespaces (0 = no outer packet was fragmented).');
  const skipped = paths.filter((p) => p.skipped);
  if (skipped.length) {
    lines.push('');
    for (const p of skipped) lines.push(`Skipped: ${p.label}: ${p.skipped}.`);
  }
  return lines.join('\n') + '\n';
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Paths with no userspace process (the axis is not scaled to them when they dwarf the rest). */
const KERNEL_PATHS = new Set(['vxlan', 'veth']);

const COLORS: Record<string, string> = {
  'ul2tp-udp': '#1f77b4',
  'ul2tp-udp-nocsum': '#0b4f8a',
  'ul2tp-udp-nooff': '#9ec9ef',
  'ul2tp-ip': '#2b8fd6',
  'ul2tp-seq-cookie': '#5aa9e6',
  'ul2tp-nf': '#7fb8e8',
  'qemu-udp': '#d62728',
  'qemu-ip': '#ee6a6b',
  'floor-c': '#ff7f0e',
  vxlan: '#2ca02c',
  veth: '#7f7f7f',
  openvpn: '#9467bd',
};

/** Hand-written SVG: one panel per metric, a bar per path (median) with a min–max whisker. */
export function svg(samples: Sample[], paths: PathInfo[], metrics: MetricDef[], title: string): string {
  const st = summarize(samples, paths, metrics);
  const run = paths.filter((p) => !p.skipped);
  const labelW = 230;
  const plotW = 300;
  const panelW = labelW + plotW + 170;
  const barH = 16;
  const gap = 6;
  const panelH = 36 + run.length * (barH + gap) + 10;
  const cols = 2;
  const rows = Math.ceil(metrics.length / cols);
  const W = cols * panelW + 20;
  const H = 50 + rows * panelH;
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  o.push(`<text x="10" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`);
  metrics.forEach((m, i) => {
    const x0 = 10 + (i % cols) * panelW;
    const y0 = 40 + Math.floor(i / cols) * panelH;
    // Kernel paths can be 10-30x the userspace ones: scale the axis to the
    // userspace paths and draw the bars beyond it clipped, with a break mark.
    const maxOf = (ps: PathInfo[]) => Math.max(...ps.map((p) => st[p.id][m.key].max).filter(Number.isFinite), 0);
    const user = maxOf(run.filter((p) => !KERNEL_PATHS.has(p.id)));
    const all = maxOf(run) || 1;
    const maxV = user > 0 && all > 2.5 * user ? user * 1.15 : all;
    const scale = plotW / maxV;
    o.push(`<g transform="translate(${x0},${y0})">`);
    o.push(`<text x="0" y="14" font-weight="bold">${esc(`${m.label} (${m.unit}) — ${m.higherBetter ? 'higher' : 'lower'} is better`)}</text>`);
    o.push(`<line x1="${labelW}" y1="24" x2="${labelW}" y2="${panelH - 8}" stroke="#999"/>`);
    run.forEach((p, j) => {
      const s = st[p.id][m.key];
      const y = 28 + j * (barH + gap);
      o.push(`<text x="${labelW - 6}" y="${y + barH - 4}" text-anchor="end">${esc(p.label)}</text>`);
      if (s.n === 0) {
        o.push(`<text x="${labelW + 4}" y="${y + barH - 4}" fill="#999">no data</text>`);
        return;
      }
      const clipped = s.median > maxV;
      const w = Math.max(1, Math.min(s.median, maxV) * scale);
      o.push(`<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[p.id] ?? '#555'}"><title>${esc(`${p.label}: median ${fmt(s.median, m.unit)}, min ${fmt(s.min, m.unit)}, max ${fmt(s.max, m.unit)} ${m.unit} (n=${s.n})`)}</title></rect>`);
      if (clipped) {
        const xb = labelW + w - 14;
        o.push(`<path d="M${xb} ${y + barH + 1} l5 ${-barH - 2} m3 0 l-5 ${barH + 2}" stroke="#fff" stroke-width="2" fill="none"/>`);
        o.push(`<text x="${labelW + w + 4}" y="${y + barH - 4}">${fmt(s.median, m.unit)} (${fmt(s.min, m.unit)}–${fmt(s.max, m.unit)}), axis cut</text>`);
        return;
      }
      const x1 = labelW + s.min * scale;
      const x2 = labelW + Math.min(s.max, maxV) * scale;
      const yc = y + barH / 2;
      o.push(`<line x1="${x1.toFixed(1)}" y1="${yc}" x2="${x2.toFixed(1)}" y2="${yc}" stroke="#000"/>`);
      o.push(`<line x1="${x1.toFixed(1)}" y1="${yc - 4}" x2="${x1.toFixed(1)}" y2="${yc + 4}" stroke="#000"/>`);
      o.push(`<line x1="${x2.toFixed(1)}" y1="${yc - 4}" x2="${x2.toFixed(1)}" y2="${yc + 4}" stroke="#000"/>`);
      o.push(`<text x="${(Math.max(x2, labelW + w) + 4).toFixed(1)}" y="${y + barH - 4}">${fmt(s.median, m.unit)}</text>`);
    });
    o.push(`</g>`);
  });
  o.push(`</svg>`);
  return o.join('\n') + '\n';
}

/**
 * Re-render results.md and chart.svg from a results.json written by bench.ts
 * (to compare runs, or after changing the report format).
 * Usage: node dist/bench/e2e/rerender.js DIR
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REF_CEILING, REF_QEMU } from './paths.js';
import { TESTS, type MetricDef } from './tests.js';
import { REF_VXLAN, markdown, svg, type PathInfo, type Sample } from './report.js';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node dist/bench/e2e/rerender.js DIR (containing results.json)\n');
  process.exit(2);
}
const j = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as {
  meta: { date: string; machine: { cpu: string; cores: number }; kernel: string; node: string; qemu: string; iperf3: string; git: { commit: string }; options: { rounds: number; duration: number; rates?: { udpKpps: number; tcpGbps: number } }; underlayMtu: number };
  paths: PathInfo[];
  metrics: MetricDef[];
  samples: Sample[];
  errors: Array<{ round: number; path: string; test?: string; error: string }>;
};
const m = j.meta;
const full = TESTS.filter((t) => t.fullRate).map((t) => t.id);
const header =
  `ul2tp e2e benchmark, ${m.date}: ${m.machine.cpu} × ${m.machine.cores} cores, Linux ${m.kernel}, node ${m.node}, ` +
  `QEMU ${m.qemu}, iperf3 ${m.iperf3}, commit ${m.git.commit.slice(0, 12)}; ` +
  `${m.options.rounds} rounds × ${m.options.duration} s per test, underlay veth MTU ${m.underlayMtu}` +
  `${m.options.rates ? `; fixed rates: UDP ${m.options.rates.udpKpps} kpps × 64 B, TCP ${m.options.rates.tcpGbps} Gbit/s` : ''}.\n\n`;
const md = markdown(j.samples, j.paths, j.metrics, { qemu: REF_QEMU, ceiling: REF_CEILING, vxlan: REF_VXLAN }, full);
const errs = j.errors.length ? `\nErrors:\n${j.errors.map((e) => `- round ${e.round + 1} ${e.path}${e.test ? ' / ' + e.test : ''}: ${e.error}`).join('\n')}\n` : '';
writeFileSync(join(dir, 'results.md'), header + md + errs);
writeFileSync(join(dir, 'chart.svg'), svg(j.samples, j.paths, j.metrics, `ul2tp e2e — medians with min–max over ${m.options.rounds} rounds (${m.date.slice(0, 10)}, ${m.machine.cores} cores)`));
process.stdout.write(header + md + errs);

/**
 * End-to-end throughput/latency benchmark: ul2tp against QEMU -netdev l2tpv3,
 * kernel VXLAN and the bare veth, between two network namespaces joined by a
 * 1500-byte veth underlay. Paths are measured in interleaved rounds (order
 * rotated each round); every figure is a median with min–max over rounds.
 *
 * Run (root): npm run bench -- [--rounds N] [--duration S] [--paths a,b] [--tests x,y] [--udp-rate KPPS]
 *   [--tcp-rate GBITS] [--workers N[,M…]] [--out DIR] [--install]
 * Writes DIR/results.json (every sample + machine/versions), DIR/results.md, DIR/chart.svg.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { BenchError, CTL, CpuWindow, RssSampler } from '../lib/sys.js';
import { IP } from '../../support/ip.js';
import { Netns, listNamespaces, uniq } from '../../support/netns.js';
import { ROOT, cleanupAll, installCleanupHandlers, must, run, tempDir, which } from '../../support/proc.js';
import { PATHS, REF_CEILING, REF_QEMU, UNDERLAY_MTU, type PathRun, type Rig } from './paths.js';
import { daemonHasWorkers, expandPaths, parseWorkers, workersEntry, type BenchPath } from './sweep.js';
import { DEFAULT_RATES, METRICS, TESTS, type Rates, type TestDef } from './tests.js';
import { REF_VXLAN, markdown, ratios, summarize, svg, type PathInfo, type Sample } from './report.js';

interface Options {
  rounds: number;
  duration: number;
  paths: string[];
  tests: string[];
  out: string;
  install: boolean;
  rates: Rates;
  /** --workers sweep: worker counts for the ul2tp (koffi) paths; empty = the daemon's default only. */
  workers: number[];
}

const USAGE = `usage: npm run bench -- [options]   (root; needs iperf3, ping, ss; qemu-system-x86_64 for the QEMU paths, gcc for floor-c)
  --rounds N        interleaved rounds (default 3; at least 3 for min–max to mean much)
  --duration S      seconds per iperf3 test (default 10)
  --paths a,b,c     paths to run (default all): ${PATHS.map((p) => p.id).join(', ')}
  --tests x,y       tests to run (default all): ${TESTS.map((t) => t.id).join(', ')}
  --udp-rate KPPS   offered rate of udp64-rate, thousands of 64-byte packets/s (default ${DEFAULT_RATES.udpKpps})
  --tcp-rate GBITS  paced rate of tcp-rate, Gbit/s (default ${DEFAULT_RATES.tcpGbps})
  --workers N[,M]   run each ul2tp koffi path once per worker count (ul2tp daemon --workers N);
                    skipped with a note when the daemon has no --workers option
  --out DIR         output directory (default bench/results/<date>)
  --install         install missing iperf3 / qemu-system-x86 with apt-get first`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rounds: 3,
    duration: 10,
    paths: PATHS.map((p) => p.id),
    tests: TESTS.map((t) => t.id),
    out: join(ROOT, 'bench', 'results', new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)),
    install: false,
    rates: { ...DEFAULT_RATES },
    workers: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = (): string => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new BenchError(`${a} needs a value\n${USAGE}`);
      return v;
    };
    const name = a.split('=')[0];
    const list = (v: string, known: string[], what: string) => {
      const xs = v.split(',').map((s) => s.trim()).filter(Boolean);
      for (const x of xs) if (!known.includes(x)) throw new BenchError(`unknown ${what} "${x}"; known: ${known.join(', ')}`);
      return xs;
    };
    const num = (v: string, min: number) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < min) throw new BenchError(`${name}: expected a number ≥ ${min}, got "${v}"`);
      return n;
    };
    switch (name) {
      case '--rounds': o.rounds = Math.floor(num(val(), 1)); break;
      case '--duration': o.duration = num(val(), 2); break;
      case '--paths': o.paths = list(val(), PATHS.map((p) => p.id), 'path'); break;
      case '--tests': o.tests = list(val(), TESTS.map((t) => t.id), 'test'); break;
      case '--udp-rate': o.rates.udpKpps = num(val(), 0.001); break;
      case '--tcp-rate': o.rates.tcpGbps = num(val(), 0.001); break;
      case '--workers': o.workers = parseWorkers(val()); break;
      case '--out': o.out = val(); break;
      case '--install': o.install = true; break;
      case '-h': case '--help': process.stdout.write(USAGE + '\n'); process.exit(0); break;
      default: throw new BenchError(`unknown option ${a}\n${USAGE}`);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------
// Progress: one updating line on a TTY, plain lines otherwise.

class Progress {
  private readonly tty = Boolean(process.stderr.isTTY);
  private last = '';
  line(s: string): void {
    if (this.tty) {
      const cols = process.stderr.columns || 120;
      process.stderr.write(`\r\x1b[K${s.slice(0, cols - 1)}`);
      this.last = s;
    } else {
      process.stderr.write(s + '\n');
    }
  }
  /** A message that stays (errors, notes). */
  note(s: string): void {
    if (this.tty && this.last) process.stderr.write('\r\x1b[K');
    process.stderr.write(s + '\n');
    if (this.tty && this.last) this.line(this.last);
  }
  end(): void {
    if (this.tty && this.last) process.stderr.write('\r\x1b[K');
    this.last = '';
  }
}

// ---------------------------------------------------------------------------
// Preflight: root, namespaces, tools (installed or clearly asked for).

interface Tools {
  iperf3: boolean;
  qemu: boolean;
}

function preflight(o: Options, progress: Progress): Tools {
  if (process.getuid?.() !== 0) throw new BenchError('the benchmark needs root (network namespaces, TAP devices)');
  if (!existsSync('/dev/net/tun')) throw new BenchError('/dev/net/tun is missing (TUN/TAP support needed)');
  if (run(IP, ['netns', 'list'], { timeoutMs: 5000 }).status !== 0) throw new BenchError('`ip netns` does not work here');
  if (!existsSync(CTL)) throw new BenchError(`${CTL} is missing: build first (npm run build)`);
  for (const t of ['ping', 'ss']) if (!which(t)) throw new BenchError(`${t} is missing (apt-get install iputils-ping iproute2)`);
  const missing = (): string[] => [...(which('iperf3') ? [] : ['iperf3']), ...(which('qemu-system-x86_64') ? [] : ['qemu-system-x86'])];
  let miss = missing();
  if (miss.length && o.install) {
    if (!which('apt-get')) throw new BenchError(`--install needs apt-get; install ${miss.join(' ')} by hand`);
    progress.note(`installing ${miss.join(' ')} with apt-get…`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    run('apt-get', ['update'], { timeoutMs: 300_000, env });
    const r = run('apt-get', ['install', '-y', '--no-install-recommends', ...miss], { timeoutMs: 900_000, env });
    if (r.status !== 0) throw new BenchError(`apt-get install ${miss.join(' ')} failed: ${r.stderr.trim().slice(-600)}`);
    miss = missing();
  }
  if (miss.length) {
    progress.note(
      `missing: ${miss.join(', ')}. Install with:\n    apt-get install -y ${miss.join(' ')}\n` +
        `  (or rerun with --install). Continuing without them: ` +
        `${miss.includes('iperf3') ? 'iperf3 tests skipped' : ''}${miss.length === 2 ? '; ' : ''}${miss.includes('qemu-system-x86') ? 'QEMU paths skipped' : ''}.`,
    );
  }
  return { iperf3: !miss.includes('iperf3'), qemu: !miss.includes('qemu-system-x86') };
}

function version(cmd: string, args: string[], re: RegExp): string {
  const r = run(cmd, args, { timeoutMs: 10_000 });
  const m = re.exec(r.stdout + r.stderr);
  return m ? m[1] : 'absent';
}

function meta(o: Options): Record<string, unknown> {
  const git = (args: string[]) => run('git', ['-C', ROOT, ...args], { timeoutMs: 10_000 }).stdout.trim();
  return {
    date: new Date().toISOString(),
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      loadavg: readFileSync('/proc/loadavg', 'utf8').trim(),
    },
    kernel: run('uname', ['-r'], { timeoutMs: 5000 }).stdout.trim(),
    node: process.version,
    qemu: version('qemu-system-x86_64', ['--version'], /version (\S+)/),
    iperf3: version('iperf3', ['--version'], /iperf (\S+)/),
    git: { commit: git(['rev-parse', 'HEAD']), dirty: git(['status', '--porcelain', '--', 'src', 'native-free']) !== '' },
    options: o,
    underlayMtu: UNDERLAY_MTU,
  };
}

// ---------------------------------------------------------------------------

function makeRig(): Rig {
  const a = new Netns('bna');
  const b = new Netns('bnb');
  const vethA = uniq('bva');
  const vethB = uniq('bvb');
  const m = String(UNDERLAY_MTU);
  must(IP, ['link', 'add', vethA, 'netns', a.name, 'mtu', m, 'type', 'veth', 'peer', 'name', vethB, 'netns', b.name, 'mtu', m]);
  a.ip('addr', 'add', '192.0.2.1/24', 'dev', vethA);
  b.ip('addr', 'add', '192.0.2.2/24', 'dev', vethB);
  a.ip('link', 'set', vethA, 'up');
  b.ip('link', 'set', vethB, 'up');
  return { a, b, a4: '192.0.2.1', b4: '192.0.2.2', vethA, vethB };
}

function fragDelta(before: Record<string, number>[], after: Record<string, number>[]): Sample['frag'] {
  const d = (k: string) => after.reduce((s, x, i) => s + ((x[k] ?? 0) - (before[i][k] ?? 0)), 0);
  return { FragCreates: d('FragCreates'), FragOKs: d('FragOKs'), FragFails: d('FragFails'), ReasmReqds: d('ReasmReqds') };
}

async function measure(rig: Rig, pr: PathRun, t: TestDef, o: Options, round: number, pathId: string): Promise<Sample> {
  const snmp0 = [rig.a.snmp(), rig.b.snmp()];
  const daemons = pr.procs.filter((p) => p.daemon);
  const rss = new RssSampler(daemons.map((p) => p.pid));
  const cpu = new CpuWindow(pr.procs.map((p) => p.pid));
  const startedAt = new Date().toISOString();
  let cpuPct: number[] = [];
  let rssMax: number[] = [];
  let res: Awaited<ReturnType<TestDef['run']>>;
  try {
    res = await t.run({ rig, path: pr, duration: o.duration, rates: o.rates });
  } finally {
    cpuPct = cpu.stop();
    rssMax = rss.stop();
  }
  const snmp1 = [rig.a.snmp(), rig.b.snmp()];
  return {
    round,
    path: pathId,
    test: t.id,
    values: res.values,
    extra: res.extra,
    cpu: Object.fromEntries(pr.procs.map((p, i) => [p.label, Math.round(cpuPct[i] * 10) / 10])),
    rssKb: Object.fromEntries(daemons.map((p, i) => [p.label, rssMax[i]])),
    frag: fragDelta(snmp0, snmp1),
    startedAt,
  };
}

async function main(): Promise<void> {
  const progress = new Progress();
  installCleanupHandlers(() => progress.end());
  const o = parseArgs(process.argv.slice(2));
  const tools = preflight(o, progress);
  const info = meta(o);

  let workers = o.workers;
  if (workers.length && !daemonHasWorkers()) {
    progress.note(`--workers ${workers.join(',')}: sweep skipped: \`ul2tp daemon --help\` lists no --workers option in this build; each ul2tp path runs once with the daemon's default`);
    workers = [];
  }
  info.workersSweep = o.workers.length ? (workers.length ? workers : 'skipped: ul2tp daemon has no --workers option') : 'not requested';
  const entryDir = workers.length ? tempDir('ul2tp-bench-entry-') : '';
  const paths: BenchPath[] = expandPaths(PATHS.filter((p) => o.paths.includes(p.id)), workers).map((p) => {
    let skip = p.unavailable();
    if (!skip && p.id.startsWith('qemu') && !tools.qemu) skip = 'qemu-system-x86_64 not installed';
    return Object.assign(p, { skip });
  });
  for (const p of paths) if (p.skip) progress.note(`skipping ${p.label}: ${p.skip}`);
  const tests = TESTS.filter((t) => o.tests.includes(t.id) && (tools.iperf3 || !t.needsIperf));
  const active = paths.filter((p) => !p.skip);
  if (active.length === 0 || tests.length === 0) throw new BenchError('nothing to run (no usable path or test)');

  const pathInfo: PathInfo[] = paths.map((p) => ({
    id: p.id,
    label: p.label,
    overhead: p.overhead,
    mtu: UNDERLAY_MTU - p.overhead,
    skipped: p.skip || undefined,
    ...(p.workers ? { base: p.base.id, workers: p.workers } : {}),
  }));
  const samples: Sample[] = [];
  const errors: Array<{ round: number; path: string; test?: string; error: string }> = [];
  const before = new Set(listNamespaces());

  const rig = makeRig();
  const total = o.rounds * active.length * tests.length;
  let done = 0;
  const t0 = Date.now();
  const eta = () => {
    if (done === 0) return '';
    const left = ((Date.now() - t0) / done) * (total - done);
    return `, ETA ${Math.floor(left / 60000)}m${String(Math.round((left % 60000) / 1000)).padStart(2, '0')}s`;
  };
  try {
    for (let r = 0; r < o.rounds; r++) {
      const order = active.map((_, i) => active[(i + r) % active.length]);
      for (const p of order) {
        progress.line(`[round ${r + 1}/${o.rounds}] ${p.label}: setting up (${done}/${total}${eta()})`);
        let pr: PathRun;
        try {
          rig.daemonEnv = p.workers ? { UL2TP_DAEMON_ENTRY: workersEntry(entryDir, p.workers) } : undefined;
          pr = await p.setup(rig, PATHS.findIndex((x) => x.id === p.base.id));
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          errors.push({ round: r, path: p.id, error: `setup: ${msg}` });
          progress.note(`${p.label}: setup failed: ${msg}`);
          done += tests.length;
          continue;
        } finally {
          rig.daemonEnv = undefined;
        }
        try {
          for (const t of tests) {
            if (t.applies && !t.applies(pr)) {
              done++;
              continue;
            }
            progress.line(`[round ${r + 1}/${o.rounds}] ${p.label}: ${t.label} (${done}/${total}${eta()})`);
            try {
              const s = await measure(rig, pr, t, o, r, p.id);
              samples.push(s);
              const v = Object.entries(s.values).map(([k, x]) => `${k}=${x.toFixed(3)}`).join(' ');
              if (!process.stderr.isTTY) progress.note(`  ${v} cpu=${JSON.stringify(s.cpu)} frag=${s.frag.FragCreates}`);
            } catch (e) {
              const msg = e instanceof Error ? e.message : String(e);
              errors.push({ round: r, path: p.id, test: t.id, error: msg });
              progress.note(`${p.label} / ${t.label}: ${msg}`);
            }
            done++;
          }
        } finally {
          await pr.teardown();
        }
      }
    }
  } finally {
    progress.end();
    rig.a.destroy();
    rig.b.destroy();
  }

  const left = listNamespaces().filter((n) => !before.has(n) && (n === rig.a.name || n === rig.b.name));
  if (left.length) errors.push({ round: -1, path: '-', error: `namespaces left behind: ${left.join(', ')}` });

  const metrics = METRICS.filter((m) => tests.some((t) => t.metrics.includes(m)));
  const full = tests.filter((t) => t.fullRate).map((t) => t.id);
  const md = markdown(samples, pathInfo, metrics, { qemu: REF_QEMU, ceiling: REF_CEILING, vxlan: REF_VXLAN }, full);
  const m = info.machine as { cpu: string; cores: number };
  const header =
    `ul2tp e2e benchmark, ${String(info.date)}: ${m.cpu} × ${m.cores} cores, Linux ${String(info.kernel)}, node ${String(info.node)}, ` +
    `QEMU ${String(info.qemu)}, iperf3 ${String(info.iperf3)}, commit ${(info.git as { commit: string }).commit.slice(0, 12)}; ` +
    `${o.rounds} rounds × ${o.duration} s per test, underlay veth MTU ${UNDERLAY_MTU}; ` +
    `fixed rates: UDP ${o.rates.udpKpps} kpps × 64 B, TCP ${o.rates.tcpGbps} Gbit/s` +
    `${o.workers.length ? `; --workers ${o.workers.join(',')}${workers.length ? '' : ' (skipped: no --workers option)'}` : ''}.\n\n`;
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'results.md'), header + md + (errors.length ? `\nErrors:\n${errors.map((e) => `- round ${e.round + 1} ${e.path}${e.test ? ' / ' + e.test : ''}: ${e.error}`).join('\n')}\n` : ''));
  const refs = { qemu: REF_QEMU, ceiling: REF_CEILING, vxlan: REF_VXLAN };
  const summary = { medians: summarize(samples, pathInfo, metrics), ratios: ratios(samples, pathInfo, metrics, refs) };
  writeFileSync(join(o.out, 'results.json'), JSON.stringify({ meta: info, paths: pathInfo, metrics, summary, samples, errors }, null, 1) + '\n');
  writeFileSync(join(o.out, 'chart.svg'), svg(samples, pathInfo, metrics, `ul2tp e2e — medians with min–max over ${o.rounds} rounds (${String(info.date).slice(0, 10)}, ${m.cores} cores)`));
  process.stdout.write(header + md);
  if (errors.length) process.stdout.write(`\n${errors.length} error(s), see ${join(o.out, 'results.md')}\n`);
  process.stdout.write(`\nwritten: ${join(o.out, 'results.md')}, results.json, chart.svg\n`);
}

main().then(
  () => {
    cleanupAll();
    process.exit(0);
  },
  (e: unknown) => {
    process.stderr.write(`\nbench: ${e instanceof BenchError ? e.message : e instanceof Error ? e.message : String(e)}\n`);
    cleanupAll();
    process.exit(1);
  },
);

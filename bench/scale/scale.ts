/**
 * Scale benchmark: 10,000 sessions in 1,000 tunnels through one daemon.
 *
 * Phases (wall time each): a small CLI-per-command sample; tunnel creation and
 * session creation over one pipelined control connection (bench/scale/driver.ts
 * run inside the namespace); show (socket and CLI); session and tunnel
 * deletion. Daemon RSS with 0 / 1,000 / 10,000 sessions, idle CPU with 10,000
 * sessions over --idle seconds, and ping (+ a short iperf3 TCP run) across one
 * session with no idle sessions vs with 9,999 idle ones.
 *
 * Run (root): npm run bench:scale -- [--tunnels 1000] [--per 10] [--idle 10] [--cli-sample 20]
 *             [--backend koffi|native-free] [--profile] [--out DIR]
 * --profile runs the daemon under `node --cpu-prof` and prints its top self-time functions.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { BenchError, CTL, CpuWindow, rssKb, threads, threadTicks, CLK_TCK } from '../lib/sys.js';
import { IP } from '../../support/ip.js';
import { Netns, uniq } from '../../support/netns.js';
import { CLI, ROOT, cleanupAll, installCleanupHandlers, killPid, must, stopPid, tempDir, which } from '../../support/proc.js';

interface Options {
  tunnels: number;
  per: number;
  idle: number;
  cliSample: number;
  backend: string;
  profile: boolean;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    tunnels: 1000,
    per: 10,
    idle: 10,
    cliSample: 20,
    backend: 'koffi',
    profile: false,
    out: join(ROOT, 'bench', 'results', 'scale-' + new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new BenchError(`${a} needs a value`);
      return x;
    };
    const n = () => {
      const x = Number(v());
      if (!Number.isInteger(x) || x < 1) throw new BenchError(`${a}: expected a positive integer`);
      return x;
    };
    switch (a) {
      case '--tunnels': o.tunnels = n(); break;
      case '--per': o.per = n(); break;
      case '--idle': o.idle = n(); break;
      case '--cli-sample': o.cliSample = n(); break;
      case '--backend': o.backend = v(); break;
      case '--profile': o.profile = true; break;
      case '--out': o.out = v(); break;
      case '-h': case '--help':
        process.stdout.write('usage: npm run bench:scale -- [--tunnels N] [--per N] [--idle S] [--cli-sample N] [--backend B] [--profile] [--out DIR]\n');
        process.exit(0);
        break;
      default: throw new BenchError(`unknown option ${a}`);
    }
  }
  return o;
}

const log = (s: string) => process.stderr.write(s + '\n');
const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10;

/** Pipelined control driver inside a namespace. */
class Driver {
  private readonly lines: AsyncIterator<string>;
  private readonly child: ReturnType<typeof spawn>;
  constructor(ns: Netns, env: NodeJS.ProcessEnv) {
    this.child = spawn(IP, ['netns', 'exec', ns.name, process.execPath, join(ROOT, 'dist', 'bench', 'scale', 'driver.js')], {
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.lines = createInterface({ input: this.child.stdout! })[Symbol.asyncIterator]();
  }
  async do(cmd: Record<string, unknown>, timeoutMs = 600_000): Promise<Record<string, number | string | boolean>> {
    this.child.stdin!.write(JSON.stringify(cmd) + '\n');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new BenchError(`driver ${String(cmd.do)}: no answer after ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      const r = await Promise.race([this.lines.next(), timeout]);
      if (r.done) throw new BenchError(`driver ${String(cmd.do)}: driver exited`);
      const j = JSON.parse(r.value) as Record<string, number | string | boolean>;
      if (!j.ok) throw new BenchError(`driver ${String(cmd.do)}: ${String(j.error)}`);
      return j;
    } finally {
      clearTimeout(timer);
    }
  }
  close(): void {
    this.child.stdin!.end(JSON.stringify({ do: 'quit' }) + '\n');
    setTimeout(() => killPid(this.child.pid), 2000).unref();
  }
}

function pingStats(ns: Netns, dst: string, count = 200): { med: number; p99: number; lostPct: number } {
  const r = ns.exec('ping', ['-c', String(count), '-i', '0.01', '-W', '1', '-n', dst], { timeoutMs: count * 10 + 15_000 });
  const rtts = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  if (rtts.length === 0) return { med: NaN, p99: NaN, lostPct: 100 };
  return {
    med: rtts[rtts.length >> 1],
    p99: rtts[Math.min(rtts.length - 1, Math.ceil(0.99 * rtts.length) - 1)],
    lostPct: ((count - rtts.length) / count) * 100,
  };
}

function tcpGbps(a: Netns, b: Netns, dst: string, secs = 5): number {
  if (!which('iperf3')) return NaN;
  const port = '5799';
  const srv = spawn(IP, ['netns', 'exec', b.name, 'iperf3', '-s', '-1', '-p', port], { stdio: 'ignore' });
  must('sleep', ['0.5']);
  const r = a.exec('iperf3', ['-c', dst, '-p', port, '-t', String(secs), '-J'], { timeoutMs: (secs + 30) * 1000 });
  killPid(srv.pid);
  try {
    const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second: number } } };
    return (j.end?.sum_received?.bits_per_second ?? NaN) / 1e9;
  } catch {
    return NaN;
  }
}

/** Top self-time functions of a .cpuprofile. */
function profileTop(file: string, top = 15): string[] {
  interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }
  const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const n = byId.get(id);
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    if (!n) return;
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((us / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
}

async function main(): Promise<void> {
  installCleanupHandlers();
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new BenchError('the scale benchmark needs root');
  const total = o.tunnels * o.per;
  const results: Record<string, unknown> = { date: new Date().toISOString(), options: o, node: process.version };
  const phases: Record<string, number> = {};
  const rss: Record<string, number> = {};

  const a = new Netns('bsa');
  const b = new Netns('bsb');
  const va = uniq('bsv');
  const vb = uniq('bsw');
  must(IP, ['link', 'add', va, 'netns', a.name, 'mtu', '1500', 'type', 'veth', 'peer', 'name', vb, 'netns', b.name, 'mtu', '1500']);
  a.ip('addr', 'add', '192.0.2.1/24', 'dev', va);
  b.ip('addr', 'add', '192.0.2.2/24', 'dev', vb);
  a.ip('link', 'set', va, 'up');
  b.ip('link', 'set', vb, 'up');
  const profDir = tempDir('ul2tp-prof-');
  const envA = {
    ...process.env,
    UL2TP_RUNDIR: tempDir('ul2tp-scale-'),
    UL2TP_BACKEND: o.backend,
  };
  const envB = { ...process.env, UL2TP_RUNDIR: tempDir('ul2tp-scale-'), UL2TP_BACKEND: o.backend };
  const cliA = (...args: string[]) => a.must(process.execPath, [CLI, ...args], { env: envA, timeoutMs: 60_000 });
  const cliB = (...args: string[]) => b.must(process.execPath, [CLI, ...args], { env: envB, timeoutMs: 60_000 });
  const time = (f: () => void) => {
    const t0 = performance.now();
    f();
    return performance.now() - t0;
  };

  // 1. CLI per command (the first command also starts the daemon).
  log(`CLI sample: ${o.cliSample} tunnels + sessions, one process per command…`);
  const base = 900000;
  if (o.profile) {
    // NODE_OPTIONS cannot carry --cpu-prof, so start the daemon ourselves (foreground) under the profiler.
    a.start(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, CLI, 'daemon'], { env: envA, timeoutMs: 3 * 3600_000 });
    const end = Date.now() + 15_000;
    while (a.exec(process.execPath, [CTL, 'status'], { env: envA, timeoutMs: 10_000 }).status !== 0) {
      if (Date.now() > end) throw new BenchError('the profiled daemon did not start within 15 s');
      must('sleep', ['0.1']);
    }
  }
  const udp = (t: number) => ['udp_sport', String(30000 + t), 'udp_dport', String(40000 + t)];
  phases.daemonStartFirstCommandMs = time(() => cliA('add', 'tunnel', 'tunnel_id', String(base), 'peer_tunnel_id', String(base), 'encap', 'udp', 'local', '192.0.2.1', 'remote', '192.0.2.2', ...udp(0)));
  const pid = (JSON.parse(a.must(process.execPath, [CTL, 'status'], { env: envA, timeoutMs: 10_000 })) as { pid: number; backend: string }).pid;
  rss.fresh = rssKb(pid);
  let cliCreate = 0;
  for (let i = 1; i <= o.cliSample; i++) {
    cliCreate += time(() => cliA('add', 'tunnel', 'tunnel_id', String(base + i), 'peer_tunnel_id', String(base + i), 'encap', 'udp', 'local', '192.0.2.1', 'remote', '192.0.2.2', ...udp(i)));
    cliCreate += time(() => cliA('add', 'session', 'tunnel_id', String(base + i), 'session_id', String(base + i), 'peer_session_id', String(base + i)));
  }
  let cliDel = 0;
  for (let i = 0; i <= o.cliSample; i++) cliDel += time(() => cliA('del', 'tunnel', 'tunnel_id', String(base + i)));
  phases.cliCreateMsPerCommand = cliCreate / (2 * o.cliSample);
  phases.cliDeleteMsPerCommand = cliDel / (o.cliSample + 1);
  log(`  ${phases.cliCreateMsPerCommand.toFixed(0)} ms per create command, ${phases.cliDeleteMsPerCommand.toFixed(0)} ms per delete`);

  // 2. The traffic link: tunnel 1 / session 1, named sc0 on both sides.
  cliA('add', 'tunnel', 'tunnel_id', '1', 'peer_tunnel_id', '1', 'encap', 'udp', 'local', '192.0.2.1', 'remote', '192.0.2.2', 'udp_sport', '10001', 'udp_dport', '20001');
  cliA('add', 'session', 'name', 'sc0', 'tunnel_id', '1', 'session_id', '1', 'peer_session_id', '1');
  cliB('add', 'tunnel', 'tunnel_id', '1', 'peer_tunnel_id', '1', 'encap', 'udp', 'local', '192.0.2.2', 'remote', '192.0.2.1', 'udp_sport', '20001', 'udp_dport', '10001');
  cliB('add', 'session', 'name', 'sc0', 'tunnel_id', '1', 'session_id', '1', 'peer_session_id', '1');
  for (const [ns, addr] of [[a, '10.99.0.1/24'], [b, '10.99.0.2/24']] as const) {
    ns.ip('addr', 'add', addr, 'dev', 'sc0');
    ns.ip('link', 'set', 'sc0', 'up');
  }
  must('sleep', ['1']);
  rss.zeroIdle = rssKb(pid);
  const pingAlone = pingStats(a, '10.99.0.2');
  const tcpAlone = tcpGbps(a, b, '10.99.0.2');
  log(`  one session alone: ping median ${pingAlone.med} ms p99 ${pingAlone.p99} ms, TCP ${tcpAlone.toFixed(2)} Gbit/s; daemon RSS ${mb(rss.zeroIdle)} MB`);

  // 3. Bulk creation over one pipelined connection.
  const drv = new Driver(a, envA);
  const failures: string[] = [];
  const check = (what: string, r: Record<string, unknown>) => {
    if (Number(r.failed) > 0) failures.push(`${what}: ${String(r.failed)} failed, first: ${String(r.firstError)}`);
  };
  log(`creating ${o.tunnels - 1} more tunnels…`);
  let r = await drv.do({ do: 'tunnels', from: 2, to: o.tunnels, local: '192.0.2.1', remote: '192.0.2.2' });
  check('tunnel_create', r);
  phases.createTunnelsMs = Number(r.ms);
  const pairs = (k0: number, k1: number) => {
    const out: Array<[number, number]> = [];
    for (let t = 1; t <= o.tunnels; t++) for (let k = k0; k <= k1; k++) if (!(t === 1 && k === 0)) out.push([t, (t - 1) * o.per + k + 1]);
    return out;
  };
  log(`creating the first session of each tunnel…`);
  r = await drv.do({ do: 'sessions', pairs: pairs(0, 0) });
  check('session_create (1 per tunnel)', r);
  phases.createSessionsFirstMs = Number(r.ms);
  must('sleep', ['1']);
  rss.sessions1k = rssKb(pid);
  log(`  RSS with ${o.tunnels} sessions: ${mb(rss.sessions1k)} MB; creating the other ${total - o.tunnels}…`);
  r = await drv.do({ do: 'sessions', pairs: pairs(1, o.per - 1) });
  check('session_create (rest)', r);
  phases.createSessionsRestMs = Number(r.ms);
  phases.createAllMs = phases.createTunnelsMs + phases.createSessionsFirstMs + phases.createSessionsRestMs;
  must('sleep', ['2']);
  rss.sessions10k = rssKb(pid);
  results.daemonThreads = threads(pid);
  const ifCount = a.exec(IP, ['-o', 'link', 'show'], { timeoutMs: 60_000 }).stdout.split('\n').filter((l) => l.includes('l2tpeth') || l.includes('sc0')).length;
  log(`  created in ${(phases.createAllMs / 1000).toFixed(1)} s; ${ifCount} interfaces; RSS ${mb(rss.sessions10k)} MB`);

  // 4. Idle CPU with all sessions.
  log(`idle CPU over ${o.idle} s…`);
  const w = new CpuWindow([pid]);
  const th0 = threadTicks(pid);
  await new Promise((res) => setTimeout(res, o.idle * 1000));
  const idleCpuPct = w.stop()[0];
  const th1 = threadTicks(pid);
  const idleThreads = [...th1.entries()]
    .map(([tid, t]) => ({ tid, comm: t.comm + (tid === pid ? ' (main)' : ''), pct: ((t.ticks - (th0.get(tid)?.ticks ?? t.ticks)) / CLK_TCK / o.idle) * 100 }))
    .filter((t) => t.pct > 0)
    .sort((x, y) => y.pct - x.pct);

  // 5. Traffic on one session while the others are idle.
  const pingBusy = pingStats(a, '10.99.0.2');
  const tcpBusy = tcpGbps(a, b, '10.99.0.2');
  log(`  idle CPU ${idleCpuPct.toFixed(2)} %; with ${total - 1} idle: ping median ${pingBusy.med} ms p99 ${pingBusy.p99} ms, TCP ${tcpBusy.toFixed(2)} Gbit/s`);

  // 6. Show.
  r = await drv.do({ do: 'get' });
  phases.showSocketTunnelsMs = Number(r.tunnelMs);
  phases.showSocketSessionsMs = Number(r.sessionMs);
  results.shown = { tunnels: r.tunnels, sessions: r.sessions };
  let showLines = 0;
  phases.showCliSessionsMs = time(() => (showLines = cliA('show', 'session').split('\n').length));
  phases.showCliTunnelsMs = time(() => cliA('show', 'tunnel'));
  results.showCliSessionLines = showLines;

  // 7. Delete: every session one by one, then the tunnels.
  log('deleting…');
  const all = pairs(0, o.per - 1).concat([[1, 1]]);
  r = await drv.do({ do: 'delsessions', pairs: all });
  check('session_delete', r);
  phases.deleteSessionsMs = Number(r.ms);
  r = await drv.do({ do: 'deltunnels', from: 1, to: o.tunnels });
  check('tunnel_delete', r);
  phases.deleteTunnelsMs = Number(r.ms);
  drv.close();
  must('sleep', ['2']);
  rss.afterDelete = rssKb(pid);
  const leftIfs = a.exec(IP, ['-o', 'link', 'show'], { timeoutMs: 60_000 }).stdout.split('\n').filter((l) => l.includes('l2tpeth')).length;

  // 8. Stop the daemon (writes its CPU profile when --profile).
  await stopPid(pid, 10_000);
  let profile: string[] = [];
  if (o.profile) {
    const f = readdirSync(profDir).filter((x) => x.includes(`.${pid}.0.`) || x.includes(`.${pid}.`));
    const main = f.sort().find((x) => x.includes(`.${pid}.0.`)) ?? f[0];
    if (main) profile = profileTop(join(profDir, main));
    else failures.push(`no CPU profile of the daemon (pid ${pid}) in ${profDir}`);
  }
  b.destroy();
  a.destroy();

  Object.assign(results, {
    sessions: total,
    tunnels: o.tunnels,
    phasesMs: phases,
    rssKb: rss,
    idleCpuPct,
    idleThreads,
    interfacesWithAllSessions: ifCount,
    interfacesLeftAfterDelete: leftIfs,
    pingAlone,
    pingWithIdle: pingBusy,
    tcpAloneGbps: tcpAlone,
    tcpWithIdleGbps: tcpBusy,
    failures,
    profileTop: profile,
  });
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const ok = (b: boolean) => (b ? 'met' : '**not met**');
  const md = [
    `ul2tp scale benchmark, ${String(results.date)}: ${o.tunnels} tunnels × ${o.per} sessions = ${total} sessions, backend ${o.backend}, node ${process.version}.`,
    '',
    '| phase | wall time |',
    '|---|---:|',
    `| daemon start + first CLI command | ${phases.daemonStartFirstCommandMs.toFixed(0)} ms |`,
    `| CLI, one process per command (create, mean of ${2 * o.cliSample}) | ${phases.cliCreateMsPerCommand.toFixed(0)} ms/command |`,
    `| CLI, one process per command (delete, mean of ${o.cliSample + 1}) | ${phases.cliDeleteMsPerCommand.toFixed(0)} ms/command |`,
    `| create ${o.tunnels - 1} tunnels (socket, pipelined) | ${s(phases.createTunnelsMs)} |`,
    `| create ${o.tunnels - 1} sessions (1st per tunnel) | ${s(phases.createSessionsFirstMs)} |`,
    `| create ${total - o.tunnels} sessions (the rest) | ${s(phases.createSessionsRestMs)} |`,
    `| **create all** (target < 30 s: ${ok(phases.createAllMs < 30_000)}) | **${s(phases.createAllMs)}** (${((total + o.tunnels) / (phases.createAllMs / 1000)).toFixed(0)} objects/s) |`,
    `| show: tunnel_get / session_get over the socket | ${phases.showSocketTunnelsMs.toFixed(0)} ms / ${phases.showSocketSessionsMs.toFixed(0)} ms |`,
    `| show: \`ul2tp show session\` / \`show tunnel\` (CLI, ${showLines} lines) | ${phases.showCliSessionsMs.toFixed(0)} ms / ${phases.showCliTunnelsMs.toFixed(0)} ms |`,
    `| delete ${total} sessions one by one | ${s(phases.deleteSessionsMs)} |`,
    `| delete ${o.tunnels} tunnels | ${s(phases.deleteTunnelsMs)} |`,
    '',
    '| daemon | value |',
    '|---|---:|',
    `| RSS fresh / 0 sessions (after the CLI sample) | ${mb(rss.fresh)} / ${mb(rss.zeroIdle)} MB |`,
    `| RSS with ${o.tunnels} sessions | ${mb(rss.sessions1k)} MB |`,
    `| RSS with ${total} sessions (target < 300 MB: ${ok(rss.sessions10k < 300 * 1024)}) | ${mb(rss.sessions10k)} MB |`,
    `| RSS after deleting everything | ${mb(rss.afterDelete)} MB |`,
    `| threads | ${String(results.daemonThreads)} |`,
    `| idle CPU with ${total} sessions over ${o.idle} s (target ~0 %) | ${idleCpuPct.toFixed(2)} % |`,
    `| idle CPU by thread (tid comm: %) | ${idleThreads.map((t) => `${t.tid} ${t.comm}: ${t.pct.toFixed(1)}`).join(', ') || 'none'} |`,
    `| TAP interfaces with all sessions / left after delete | ${ifCount} / ${leftIfs} |`,
    '',
    '| one session | ping median | ping p99 | ping loss | TCP 1 stream |',
    '|---|---:|---:|---:|---:|',
    `| alone | ${pingAlone.med} ms | ${pingAlone.p99} ms | ${pingAlone.lostPct.toFixed(1)} % | ${tcpAlone.toFixed(2)} Gbit/s |`,
    `| with ${total - 1} idle sessions | ${pingBusy.med} ms | ${pingBusy.p99} ms | ${pingBusy.lostPct.toFixed(1)} % | ${tcpBusy.toFixed(2)} Gbit/s |`,
    '',
    ...(failures.length ? ['Failures:', ...failures.map((f) => `- ${f}`), ''] : []),
    ...(profile.length ? ['Daemon CPU profile, top self time (node --cpu-prof, main thread):', '```', ...profile, '```', ''] : []),
  ].join('\n');
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'scale.json'), JSON.stringify(results, null, 1) + '\n');
  writeFileSync(join(o.out, 'scale.md'), md);
  process.stdout.write(md + `\nwritten: ${join(o.out, 'scale.md')}, scale.json\n`);
}

main().then(
  () => {
    cleanupAll();
    process.exit(0);
  },
  (e: unknown) => {
    process.stderr.write(`\nbench:scale: ${e instanceof Error ? e.message : String(e)}\n`);
    cleanupAll();
    process.exit(1);
  },
);

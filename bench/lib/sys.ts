/**
 * Bench-only system helpers: commands with timeouts, network namespaces,
 * processes tracked by PID, /proc readings (CPU ticks, RSS, IP fragmentation
 * counters) and one cleanup registry that runs on normal exit, on failure and
 * on SIGINT/SIGTERM. Everything the benchmarks create is registered here, so
 * nothing is left behind (namespaces deleted, processes ended by PID only).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file is dist/bench/lib/sys.js once built). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = join(ROOT, 'bin', 'ul2tp.js');
export const CTL = join(ROOT, 'dist', 'bench', 'lib', 'ctl.js');
export const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';

/** An error meant for the user: message only, no stack. */
export class BenchError extends Error {}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  input?: string;
}

/** Run a command synchronously with a timeout (default 30 s); never throws. */
export function run(cmd: string, args: string[], o: RunOptions = {}): RunResult {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: o.timeoutMs ?? 30_000,
    killSignal: 'SIGKILL',
    env: o.env ?? process.env,
    input: o.input,
    maxBuffer: 64 * 1024 * 1024,
  });
  const timedOut = r.error !== undefined && 'code' in r.error && r.error.code === 'ETIMEDOUT';
  const stderr = (r.stderr ?? '') + (r.error && !timedOut ? String(r.error.message) : '');
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr, timedOut };
}

/** Like run() but throws a BenchError naming the command when it fails. */
export function must(cmd: string, args: string[], o: RunOptions = {}): string {
  const r = run(cmd, args, o);
  if (r.status !== 0) {
    const why = r.timedOut ? `timed out after ${(o.timeoutMs ?? 30_000) / 1000} s` : `exit ${r.status}`;
    throw new BenchError(`${cmd} ${args.join(' ')}: ${why}: ${(r.stderr || r.stdout).trim().slice(0, 800)}`);
  }
  return r.stdout;
}

/** Run a command asynchronously; killed (SIGKILL, by PID) after timeoutMs. Never rejects. */
export function runAsync(cmd: string, args: string[], o: RunOptions = {}): { child: ChildProcess; done: Promise<RunResult> } {
  const child = spawn(cmd, args, { env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => {
    timedOut = true;
    killPid(child.pid, 'SIGKILL');
  }, o.timeoutMs ?? 30_000);
  const done = new Promise<RunResult>((resolve) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ status: -1, stdout, stderr: stderr + e.message, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      untrack(child);
      resolve({ status: code ?? -1, stdout, stderr, timedOut });
    });
  });
  return { child, done };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function killPid(pid: number | undefined, sig: NodeJS.Signals = 'SIGKILL'): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

export function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readSafe(`/proc/${pid}/status`));
}

/** SIGTERM, wait up to graceMs, then SIGKILL. */
export async function stopPid(pid: number, graceMs = 3000): Promise<void> {
  if (!alive(pid)) return;
  killPid(pid, 'SIGTERM');
  const end = Date.now() + graceMs;
  while (alive(pid) && Date.now() < end) await sleep(50);
  if (alive(pid)) killPid(pid, 'SIGKILL');
  const end2 = Date.now() + 2000;
  while (alive(pid) && Date.now() < end2) await sleep(20);
}

function readSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------
// Cleanup registry

const children = new Set<ChildProcess>();
const namespaces = new Set<string>();
const dirs = new Set<string>();
const hooks: Array<() => void> = [];

function track(c: ChildProcess): void {
  children.add(c);
}
function untrack(c: ChildProcess): void {
  children.delete(c);
}

/** Register a synchronous cleanup step (runs before namespaces are deleted). */
export function onCleanup(fn: () => void): void {
  hooks.push(fn);
}

let cleaned = false;
/** Kill every tracked process and namespace member by PID, delete namespaces and temp dirs. Idempotent. */
export function cleanupAll(): void {
  if (cleaned) return;
  cleaned = true;
  for (const h of hooks.splice(0).reverse()) {
    try {
      h();
    } catch {
      /* keep going */
    }
  }
  for (const c of children) if (c.exitCode === null) killPid(c.pid);
  for (const ns of namespaces) destroyNamespace(ns);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

let handlersInstalled = false;
/** Cleanup on exit, failure and SIGINT/SIGTERM/SIGHUP. `onSignal` runs first (e.g. to end a progress line). */
export function installCleanupHandlers(onSignal?: () => void): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      onSignal?.();
      process.stderr.write(`\n${sig}: cleaning up…\n`);
      cleanupAll();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

// ---------------------------------------------------------------------------
// Network namespaces

let counter = 0;
/** Short unique name (interface names stay under 16 bytes). */
export function uniq(prefix: string): string {
  return `${prefix}${process.pid % 100000}${(counter++).toString(36)}`;
}

function destroyNamespace(name: string): void {
  for (let i = 0; i < 3; i++) {
    const pids = run(IP, ['netns', 'pids', name], { timeoutMs: 5000 }).stdout.split(/\s+/).filter(Boolean).map(Number);
    if (pids.length === 0) break;
    for (const p of pids) killPid(p, 'SIGKILL');
    spawnSync('sleep', ['0.1']);
  }
  run(IP, ['netns', 'del', name], { timeoutMs: 10_000 });
  namespaces.delete(name);
}

export class Netns {
  readonly name: string;

  constructor(prefix: string) {
    this.name = uniq(prefix);
    must(IP, ['netns', 'add', this.name]);
    namespaces.add(this.name);
    this.ip('link', 'set', 'lo', 'up');
  }

  ip(...args: string[]): string {
    return must(IP, ['-n', this.name, ...args], { timeoutMs: 15_000 });
  }

  /** Run a command inside the namespace (synchronously, with a timeout). */
  exec(cmd: string, args: string[], o: RunOptions = {}): RunResult {
    return run(IP, ['netns', 'exec', this.name, cmd, ...args], o);
  }

  /** Like exec() but throws a BenchError on failure. */
  must(cmd: string, args: string[], o: RunOptions = {}): string {
    return must(IP, ['netns', 'exec', this.name, cmd, ...args], o);
  }

  /** Start a command in the namespace asynchronously (`ip netns exec` execs, so the child PID is the command's). */
  start(cmd: string, args: string[], o: RunOptions = {}): { child: ChildProcess; done: Promise<RunResult> } {
    return runAsync(IP, ['netns', 'exec', this.name, cmd, ...args], o);
  }

  /** IP-layer fragmentation counters of this namespace (/proc/net/snmp, "Ip:" lines). */
  snmp(): Record<string, number> {
    const text = this.exec('cat', ['/proc/net/snmp'], { timeoutMs: 5000 }).stdout;
    const lines = text.split('\n').filter((l) => l.startsWith('Ip:'));
    const out: Record<string, number> = {};
    if (lines.length < 2) return out;
    const keys = lines[0].split(/\s+/).slice(1);
    const vals = lines[1].split(/\s+/).slice(1);
    keys.forEach((k, i) => (out[k] = Number(vals[i])));
    return out;
  }

  destroy(): void {
    destroyNamespace(this.name);
  }
}

/** Names of all network namespaces (for leftover checks). */
export function listNamespaces(): string[] {
  return run(IP, ['netns', 'list'], { timeoutMs: 5000 })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean);
}

// ---------------------------------------------------------------------------
// /proc readings

/**
 * utime + stime (clock ticks) from the text of a /proc/PID/stat or
 * /proc/PID/task/TID/stat file: fields 14 and 15, counted after the last ')'
 * (the command name in parentheses may itself hold spaces and parentheses).
 * NaN for an empty or malformed text (process gone).
 */
export function statTicks(text: string): number {
  const rp = text.lastIndexOf(')');
  if (rp < 0) return NaN;
  const f = text.slice(rp + 2).split(' ');
  // after ')': field 3 is state (index 0); utime = field 14 (index 11), stime = 15 (index 12)
  return Number(f[11]) + Number(f[12]);
}

/**
 * utime + stime of a process in clock ticks. /proc/PID/stat is the thread
 * group's total: every live thread (the ul2tp workers included) plus the
 * threads that already exited, so no per-task sum is needed (a sum over
 * /proc/PID/task/* would miss threads that ended inside the window).
 */
export function cpuTicks(pid: number): number {
  return statTicks(readSafe(`/proc/${pid}/stat`));
}

/** utime+stime per thread of a process: tid → { comm, ticks }. */
export function threadTicks(pid: number): Map<number, { comm: string; ticks: number }> {
  const out = new Map<number, { comm: string; ticks: number }>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    const s = readSafe(`/proc/${pid}/task/${t}/stat`);
    const ticks = statTicks(s);
    if (Number.isNaN(ticks)) continue;
    out.set(Number(t), { comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')), ticks });
  }
  return out;
}

/**
 * CPU seconds spent by a set of processes between two samples of their
 * ticks (same order), summed. A process whose sample is NaN (gone) makes the
 * whole sum NaN: a cost figure with a process missing would look too cheap.
 */
export function cpuSecondsBetween(before: number[], after: number[], clkTck: number): number {
  if (before.length !== after.length) throw new Error('cpuSecondsBetween: samples of different process sets');
  let ticks = 0;
  for (let i = 0; i < before.length; i++) ticks += after[i] - before[i];
  return ticks / clkTck;
}

export const CLK_TCK = Number(run('getconf', ['CLK_TCK'], { timeoutMs: 5000 }).stdout.trim()) || 100;

/** Resident set size in KiB (VmRSS), NaN when the process is gone. */
export function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readSafe(`/proc/${pid}/status`));
  return m ? Number(m[1]) : NaN;
}

/** Number of threads of a process. */
export function threads(pid: number): number {
  const m = /^Threads:\s+(\d+)/m.exec(readSafe(`/proc/${pid}/status`));
  return m ? Number(m[1]) : NaN;
}

/** CPU seconds of a set of processes (all threads) over a window: new, then stop() → seconds summed over the set. */
export class CpuSeconds {
  private readonly ticks0: number[];
  constructor(private readonly pids: number[]) {
    this.ticks0 = pids.map(cpuTicks);
  }
  stop(): number {
    return cpuSecondsBetween(this.ticks0, this.pids.map(cpuTicks), CLK_TCK);
  }
}

/** CPU % of a set of processes over a window: start() then stop() → per-pid percent (100 = one core). */
export class CpuWindow {
  private readonly t0 = process.hrtime.bigint();
  private readonly ticks0: number[];
  constructor(private readonly pids: number[]) {
    this.ticks0 = pids.map(cpuTicks);
  }
  stop(): number[] {
    const secs = Number(process.hrtime.bigint() - this.t0) / 1e9;
    return this.pids.map((p, i) => ((cpuTicks(p) - this.ticks0[i]) / CLK_TCK / secs) * 100);
  }
}

/** Samples RSS of some processes every periodMs; stop() → max KiB per pid. */
export class RssSampler {
  private readonly max: number[];
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pids: number[], periodMs = 200) {
    this.max = pids.map(rssKb);
    this.timer = setInterval(() => this.sample(), periodMs);
  }
  private sample(): void {
    this.pids.forEach((p, i) => {
      const r = rssKb(p);
      if (r > this.max[i] || Number.isNaN(this.max[i])) this.max[i] = r;
    });
  }
  stop(): number[] {
    clearInterval(this.timer);
    this.sample();
    return this.max;
  }
}

export function which(cmd: string): string {
  const r = run('sh', ['-c', `command -v ${cmd}`], { timeoutMs: 5000 });
  return r.status === 0 ? r.stdout.trim() : '';
}

/**
 * Process helpers shared by the tests and the benchmarks: commands with
 * timeouts, processes ended by PID only (never by name), waiting, temporary
 * directories, and one cleanup registry that runs on normal exit, on failure
 * and on SIGINT/SIGTERM/SIGHUP once installCleanupHandlers() was called.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file is dist/support/proc.js once built). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'bin', 'ul2tp.js');

/** A command that failed: the message names it and holds its stderr (no stack needed). */
export class CommandError extends Error {}

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

/** Options as an object, or (the tests' short form) a timeout in ms plus an environment. */
export function runOptions(o: RunOptions | number = {}, env?: NodeJS.ProcessEnv): RunOptions {
  return typeof o === 'number' ? { timeoutMs: o, env } : { ...o, env: o.env ?? env };
}

/** Run a command synchronously with a timeout (default 30 s, then SIGKILL); never throws. */
export function run(cmd: string, args: string[], opts: RunOptions | number = {}, env?: NodeJS.ProcessEnv): RunResult {
  const o = runOptions(opts, env);
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

/** Like run() but throws a CommandError naming the command (and its stderr) when it fails. */
export function must(cmd: string, args: string[], o: RunOptions = {}): string {
  const r = run(cmd, args, o);
  if (r.status !== 0) {
    const why = r.timedOut ? `timed out after ${(o.timeoutMs ?? 30_000) / 1000} s` : `exit ${r.status}`;
    throw new CommandError(`${cmd} ${args.join(' ')}: ${why}: ${(r.stderr || r.stdout).trim().slice(0, 800)}`);
  }
  return r.stdout;
}

/** execFileSync with a timeout (default 30 s): stdout, or throws (the error carries stderr). */
export function sh(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeoutMs ?? 30_000,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Run a command asynchronously; killed (SIGKILL, by PID) after timeoutMs. Never rejects. */
export function runAsync(cmd: string, args: string[], o: RunOptions = {}): { child: ChildProcess; done: Promise<RunResult> } {
  const child = spawn(cmd, args, { env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
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
      children.delete(child);
      resolve({ status: code ?? -1, stdout, stderr, timedOut });
    });
  });
  return { child, done };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Blocks this thread for `ms` milliseconds (for synchronous helpers; callers otherwise await). */
export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Wait until `fn` returns true, polling every `stepMs`; false on timeout. */
export async function waitFor(fn: () => boolean, timeoutMs = 5000, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (fn()) return true;
    if (Date.now() > end) return false;
    await sleep(stepMs);
  }
}

/** Signal one process by PID; a process already gone is no error. */
export function killPid(pid: number | undefined, sig: NodeJS.Signals = 'SIGKILL'): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** True while process `pid` exists (signal 0; a zombie still counts). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True while process `pid` exists and is not a zombie. */
export function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readSafe(`/proc/${pid}/status`));
}

/** Stop one process (a daemon) by PID: SIGTERM, wait up to graceMs, then SIGKILL. */
export async function stopPid(pid: number, graceMs = 3000): Promise<void> {
  if (!alive(pid)) return;
  killPid(pid, 'SIGTERM');
  const end = Date.now() + graceMs;
  while (alive(pid) && Date.now() < end) await sleep(50);
  if (alive(pid)) killPid(pid, 'SIGKILL');
  const end2 = Date.now() + 2000;
  while (alive(pid) && Date.now() < end2) await sleep(20);
}

export function readSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Context switches (voluntary + involuntary) of thread `tid` of process `pid` so far; NaN when /proc does not say. */
export function contextSwitches(pid: number, tid: number | string = pid): number {
  const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
  const v = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(status);
  const nv = /^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status);
  return v && nv ? Number(v[1]) + Number(nv[1]) : NaN;
}

/** Path of `cmd` in PATH, or '' when it is not installed. */
export function which(cmd: string): string {
  const r = run('sh', ['-c', `command -v ${cmd}`], { timeoutMs: 5000 });
  return r.status === 0 ? r.stdout.trim() : '';
}

// ---------------------------------------------------------------------------
// Cleanup registry

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const hooks: Array<() => void> = [];

/** Register a synchronous cleanup step (they run newest first, before namespaces are deleted). */
export function onCleanup(fn: () => void): () => void {
  hooks.push(fn);
  return () => {
    const i = hooks.indexOf(fn);
    if (i >= 0) hooks.splice(i, 1);
  };
}

/** A temporary directory, removed by cleanupAll(). */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

let cleaned = false;
/** Run the cleanup steps, kill every tracked process by PID, remove temp dirs. Idempotent. */
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

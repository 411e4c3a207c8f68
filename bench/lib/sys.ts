/**
 * Bench-only system helpers: /proc readings (CPU ticks, RSS, threads) and the
 * bench's user-facing error. Commands, processes, the cleanup registry and
 * network namespaces are shared with the tests in support/ (proc.ts, netns.ts).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, readSafe, run } from '../../support/proc.js';

export const CTL = join(ROOT, 'dist', 'bench', 'lib', 'ctl.js');

/** An error meant for the user: message only, no stack. */
export class BenchError extends Error {}

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

/**
 * Test rig helpers: network namespaces joined by a veth underlay, the ul2tp
 * CLI and daemon run inside them, cleanup that runs even on failure.
 * Everything created carries a unique name (prefix + pid + counter), and
 * processes are ended by PID only.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file is dist/test/integration/lib/netns.js once built). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
export const CLI = join(ROOT, 'bin', 'ul2tp.js');
export const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';

let counter = 0;
/** Short unique name (interface names must stay under 16 bytes). */
export function uniq(prefix: string): string {
  return `${prefix}${process.pid % 100000}${(counter++).toString(36)}`;
}

/** Why root/netns tests cannot run here, or '' when they can. */
export function netnsUnavailable(): string {
  if (process.getuid?.() !== 0) return 'needs root';
  const r = spawnSync(IP, ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return `ip netns unusable: ${r.stderr.trim()}`;
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  return '';
}

export function sh(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeoutMs ?? 30_000,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], timeoutMs = 30_000, env?: NodeJS.ProcessEnv): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, env: env ?? process.env });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export class Netns {
  readonly name: string;
  /** Per-namespace run directory for the ul2tp daemon (socket, state file, log). */
  readonly runDir: string;
  private readonly children: ChildProcess[] = [];

  constructor(prefix = 'ul2t') {
    this.name = uniq(prefix);
    sh(IP, ['netns', 'add', this.name]);
    this.runDir = mkdtempSync(join(tmpdir(), `ul2tp-${this.name}-`));
    this.ip('link', 'set', 'lo', 'up');
  }

  ip(...args: string[]): string {
    return sh(IP, ['-n', this.name, ...args]);
  }

  exec(cmd: string, args: string[], timeoutMs = 30_000): RunResult {
    return run(IP, ['netns', 'exec', this.name, cmd, ...args], timeoutMs, this.env());
  }

  env(): NodeJS.ProcessEnv {
    return { ...process.env, UL2TP_RUNDIR: this.runDir };
  }

  /** Run the ul2tp CLI in this namespace (auto-starts the daemon). */
  ul2tp(...args: string[]): RunResult {
    return this.exec(process.execPath, [CLI, ...args], 60_000);
  }

  /** Like ul2tp() but throws with the CLI's stderr when it fails. */
  ok(...args: string[]): string {
    const r = this.ul2tp(...args);
    if (r.status !== 0) throw new Error(`ul2tp ${args.join(' ')} → ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  /** Start a long-running process in the namespace; it is killed by PID in destroy(). */
  spawn(cmd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): ChildProcess {
    const c = spawn(IP, ['netns', 'exec', this.name, cmd, ...args], {
      env: { ...this.env(), ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    c.stdout?.setEncoding('utf8');
    c.stderr?.setEncoding('utf8');
    // Keep the pipes drained even when the test reads nothing (ping -f would
    // block on a full pipe); callers may still add their own 'data' listeners.
    c.stdout?.resume();
    c.stderr?.resume();
    this.children.push(c);
    return c;
  }

  /** PID of the ul2tp daemon serving this namespace, if any. */
  daemonPid(): number | undefined {
    const r = this.ul2tpStatus();
    return r?.pid;
  }

  ul2tpStatus(): { pid: number; backend: string } | undefined {
    const r = this.exec(process.execPath, [join(ROOT, 'dist', 'test', 'integration', 'lib', 'status.js')], 10_000);
    if (r.status !== 0) return undefined;
    try {
      return JSON.parse(r.stdout) as { pid: number; backend: string };
    } catch {
      return undefined;
    }
  }

  /** Kill everything we started (by PID), stop the daemon, delete the namespace. */
  destroy(): void {
    for (const c of this.children) {
      if (c.exitCode === null && c.pid) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    // `ip netns exec` children: kill every process still inside the namespace, by PID.
    const pids = run(IP, ['netns', 'pids', this.name]).stdout.split(/\s+/).filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    run(IP, ['netns', 'del', this.name]);
    rmSync(this.runDir, { recursive: true, force: true });
  }
}

export interface Underlay {
  a: Netns;
  b: Netns;
  a4: string;
  b4: string;
  a6: string;
  b6: string;
  destroy(): void;
}

/**
 * Two namespaces joined by a veth pair with MTU `mtu`, IPv4 192.0.2.1/.2 and
 * IPv6 2001:db8::1/::2 (documentation ranges, only ever inside these namespaces).
 */
export function underlay(mtu = 1500): Underlay {
  const a = new Netns('ul2a');
  const b = new Netns('ul2b');
  const va = uniq('va');
  const vb = uniq('vb');
  try {
    sh(IP, ['link', 'add', va, 'netns', a.name, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', vb, 'netns', b.name, 'mtu', String(mtu)]);
    a.ip('addr', 'add', '192.0.2.1/24', 'dev', va);
    b.ip('addr', 'add', '192.0.2.2/24', 'dev', vb);
    a.ip('-6', 'addr', 'add', '2001:db8::1/64', 'dev', va, 'nodad');
    b.ip('-6', 'addr', 'add', '2001:db8::2/64', 'dev', vb, 'nodad');
    a.ip('link', 'set', va, 'up');
    b.ip('link', 'set', vb, 'up');
  } catch (e) {
    a.destroy();
    b.destroy();
    throw e;
  }
  return {
    a,
    b,
    a4: '192.0.2.1',
    b4: '192.0.2.2',
    a6: '2001:db8::1',
    b6: '2001:db8::2',
    destroy() {
      a.destroy();
      b.destroy();
    },
  };
}

/**
 * ping from a namespace; returns how many of the probes icmp_seq 1..count got
 * a reply. A deadline (-w) rather than a per-reply wait: with -W alone, iputils
 * gives up on replies still due after the last probe after about two RTTs, so
 * a reply that is late on a loaded machine would look lost.
 */
export function ping(ns: Netns, addr: string, count = 3, size = 56, extra: string[] = [], deadlineS = Math.ceil(count * 0.2) + 5): number {
  const r = ns.exec('ping', ['-c', String(count), '-i', '0.2', '-w', String(deadlineS), '-s', String(size), ...extra, addr], 30_000);
  const seen = new Set<number>();
  for (const m of r.stdout.matchAll(/bytes from .*icmp_seq=(\d+)/g)) if (Number(m[1]) <= count) seen.add(Number(m[1]));
  return seen.size;
}

/** Wait until `fn` returns true, polling every `stepMs`; false on timeout. */
export async function waitFor(fn: () => boolean, timeoutMs = 5000, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (fn()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Blocks this thread for `ms` milliseconds (for synchronous test helpers; tests otherwise await). */
export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** True while process `pid` exists (signal 0). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Network namespaces for the tests and the benchmarks: a namespace with
 * loopback up and its own ul2tp run directory, commands and processes run
 * inside it, veth links between namespaces, and deletion that ends every
 * process inside by PID first (a daemon would keep a deleted namespace
 * alive). Every name is unique (prefix + pid + counter). Each namespace is
 * also registered with the cleanup registry (support/proc.ts), so a program
 * that installed its handlers leaves none behind on failure or a signal.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IP } from './ip.js';
import { STATUS } from './ul2tp.js';
import { CLI, killPid, must, onCleanup, run, runAsync, runOptions, sleepMs, type RunOptions, type RunResult } from './proc.js';

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

/** Names of all network namespaces (for leftover checks). */
export function listNamespaces(): string[] {
  return run(IP, ['netns', 'list'], { timeoutMs: 5000 })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean);
}

const live = new Set<Netns>();
onCleanup(() => {
  for (const ns of [...live]) ns.destroy();
});

export class Netns {
  readonly name: string;
  /** Per-namespace run directory for the ul2tp daemon (socket, state file, log). */
  readonly runDir: string;
  private readonly children: ChildProcess[] = [];

  constructor(prefix = 'ul2t') {
    this.name = uniq(prefix);
    must(IP, ['netns', 'add', this.name]);
    live.add(this);
    this.runDir = mkdtempSync(join(tmpdir(), `ul2tp-${this.name}-`));
    this.ip('link', 'set', 'lo', 'up');
  }

  /** `ip -n NAME ...`; throws a CommandError (with ip's stderr) on failure. */
  ip(...args: string[]): string {
    return must(IP, ['-n', this.name, ...args]);
  }

  /** Environment for commands in this namespace: UL2TP_RUNDIR is its run directory. */
  env(): NodeJS.ProcessEnv {
    return { ...process.env, UL2TP_RUNDIR: this.runDir };
  }

  /** Run a command inside the namespace (synchronously, with a timeout, default 30 s); never throws. */
  exec(cmd: string, args: string[], o: RunOptions | number = {}): RunResult {
    return run(IP, ['netns', 'exec', this.name, cmd, ...args], runOptions(o, this.env()));
  }

  /** Like exec() but throws a CommandError on failure. */
  must(cmd: string, args: string[], o: RunOptions = {}): string {
    return must(IP, ['netns', 'exec', this.name, cmd, ...args], runOptions(o, this.env()));
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

  /** Start a long-running process in the namespace, pipes drained; it is killed by PID in destroy(). */
  spawn(cmd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): ChildProcess {
    const c = spawn(IP, ['netns', 'exec', this.name, cmd, ...args], {
      env: { ...this.env(), ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    c.stdout?.setEncoding('utf8');
    c.stderr?.setEncoding('utf8');
    // Keep the pipes drained even when the caller reads nothing (ping -f would
    // block on a full pipe); callers may still add their own 'data' listeners.
    c.stdout?.resume();
    c.stderr?.resume();
    this.children.push(c);
    return c;
  }

  /**
   * Start a command in the namespace with its output collected and a timeout
   * (`ip netns exec` execs, so the child PID is the command's).
   */
  start(cmd: string, args: string[], o: RunOptions = {}): { child: ChildProcess; done: Promise<RunResult> } {
    const r = runAsync(IP, ['netns', 'exec', this.name, cmd, ...args], runOptions(o, this.env()));
    this.children.push(r.child);
    return r;
  }

  /** PID of the ul2tp daemon serving this namespace, if any. */
  daemonPid(): number | undefined {
    return this.ul2tpStatus()?.pid;
  }

  ul2tpStatus(): { pid: number; backend: string } | undefined {
    const r = this.exec(process.execPath, [STATUS], 10_000);
    if (r.status !== 0) return undefined;
    try {
      return JSON.parse(r.stdout) as { pid: number; backend: string };
    } catch {
      return undefined;
    }
  }

  /** One protocol's counters of this namespace (/proc/net/snmp, e.g. the "Ip:" or "Tcp:" lines). */
  snmp(proto = 'Ip'): Record<string, number> {
    const text = this.exec('cat', ['/proc/net/snmp'], { timeoutMs: 5000 }).stdout;
    const lines = text.split('\n').filter((l) => l.startsWith(`${proto}:`));
    const out: Record<string, number> = {};
    if (lines.length < 2) return out;
    const keys = lines[0].split(/\s+/).slice(1);
    const vals = lines[1].split(/\s+/).slice(1);
    keys.forEach((k, i) => (out[k] = Number(vals[i])));
    return out;
  }

  /**
   * Datagrams the kernel dropped in this namespace because a UDP socket's receive buffer
   * was full (IPv4 and IPv6): packets a daemon never saw, e.g. while it was descheduled.
   */
  udpRcvbufErrors(): number {
    const v6 = /^Udp6RcvbufErrors\s+(\d+)$/m.exec(this.exec('cat', ['/proc/net/snmp6'], { timeoutMs: 5000 }).stdout);
    return (this.snmp('Udp').RcvbufErrors ?? 0) + (v6 ? Number(v6[1]) : 0);
  }

  /** Kill everything we started and every process still inside (by PID), delete the namespace. Idempotent. */
  destroy(): void {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) killPid(c.pid);
    // `ip netns exec` children and daemons: kill every process still inside the namespace, by PID.
    for (let i = 0; i < 3; i++) {
      const pids = run(IP, ['netns', 'pids', this.name], { timeoutMs: 5000 }).stdout.split(/\s+/).filter(Boolean).map(Number);
      if (pids.length === 0) break;
      for (const pid of pids) killPid(pid);
      sleepMs(100);
    }
    run(IP, ['netns', 'del', this.name], { timeoutMs: 10_000 });
    rmSync(this.runDir, { recursive: true, force: true });
    live.delete(this);
  }
}

/** A veth pair from `a` (end `va`) to `b` (end `vb`), both with MTU `mtu`. */
export function veth(a: Netns, va: string, b: Netns, vb: string, mtu = 1500): void {
  must(IP, ['link', 'add', va, 'netns', a.name, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', vb, 'netns', b.name, 'mtu', String(mtu)]);
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
    veth(a, va, b, vb, mtu);
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
export function ping(ns: Netns, addr: string, count = 3, size = 56, extra: string[] = [], deadlineS = pingDeadline(count)): number {
  return pingIn(ns.name, count, ['-s', String(size), ...extra, addr], deadlineS).replies;
}

/**
 * ping in the namespace named `name` with pingArgs (`count` probes, a deadline) and
 * `args` (more options, the address last): the replies to probes 1..count, and ping's output.
 */
export function pingIn(name: string, count: number, args: string[], deadlineS = pingDeadline(count)): { replies: number; out: string } {
  const r = run(IP, ['netns', 'exec', name, 'ping', ...pingArgs(count, deadlineS), ...args], 30_000);
  return { replies: pingReplies(r.stdout, count), out: r.stdout };
}

/** The deadline ping() gives `count` probes at 0.2 s: their time plus 5 s. */
export const pingDeadline = (count: number): number => Math.ceil(count * 0.2) + 5;

/** ping's options for ping(): `count` probes 0.2 s apart, and a deadline (-w) rather than a per-reply wait. */
export const pingArgs = (count: number, deadlineS = pingDeadline(count)): string[] => ['-c', String(count), '-i', '0.2', '-w', String(deadlineS)];

/**
 * How many of the probes icmp_seq 1..count got a reply, from ping's output. With a
 * deadline ping goes on sending a probe every interval until `count` replies (to any
 * probes) came, so a late reply is still waited for; replies to the probes after
 * `count` are not counted. (On a first-in-first-out path a later probe's reply cannot
 * overtake an earlier one and end ping before it.)
 */
export function pingReplies(stdout: string, count: number): number {
  const seen = new Set<number>();
  for (const m of stdout.matchAll(/bytes from .*icmp_seq=(\d+)/g)) if (Number(m[1]) <= count) seen.add(Number(m[1]));
  return seen.size;
}

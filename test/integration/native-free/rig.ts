/**
 * Test rig for the native-free backend: two namespaces joined by a veth
 * underlay (IPv4 10.<x>.1.1-2/24 and IPv6 fd<x>::1-2/64), and helpers that
 * run peer.js / xfer.js inside them. Only namespaces created here are
 * touched; processes are ended by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { SessionConfig, TunnelConfig } from '../../../src/engine/config.js';
import { IP } from '../../../support/ip.js';
import { Netns, pingIn, uniq, veth } from '../../../support/netns.js';
import { sh } from '../../../support/proc.js';

export { sh };

const here = path.dirname(fileURLToPath(import.meta.url));
export const PEER_JS = path.join(here, 'peer.js');
export const XFER_JS = path.join(here, 'xfer.js');

export function trySh(cmd: string, args: string[]): { ok: boolean; out: string } {
  try {
    return { ok: true, out: sh(cmd, args) };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    return { ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` || err.message };
  }
}

/** Why root/netns tests cannot run here, or null when they can. */
export function skipReason(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root (network namespaces, veth, macvtap)';
  const probe = `nfprobe${process.pid}`;
  const r = trySh(IP, ['netns', 'add', probe]);
  if (!r.ok) return `network namespaces unavailable: ${r.out.trim()}`;
  const m = trySh(IP, ['-n', probe, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1']);
  const t = m.ok ? trySh(IP, ['-n', probe, 'link', 'add', 'link', 'p1', 'name', 'mv0', 'type', 'macvtap', 'mode', 'passthru']) : m;
  trySh(IP, ['netns', 'del', probe]);
  if (!t.ok) return `veth/macvtap unavailable: ${t.out.trim()}`;
  return null;
}

/** Two namespaces (support/netns.ts) joined by a veth; `a`/`b` are their names once create() ran. */
export class Underlay {
  a = '';
  b = '';
  readonly v4a: string;
  readonly v4b: string;
  readonly v6a = 'fd77:1::1';
  readonly v6b = 'fd77:1::2';
  private readonly made: Netns[] = [];

  constructor(private readonly tag: string) {
    const x = (process.pid % 200) + 20;
    this.v4a = `10.${x}.1.1`;
    this.v4b = `10.${x}.1.2`;
  }

  create(): void {
    const a = new Netns(`nfa${this.tag}`);
    this.made.push(a);
    const b = new Netns(`nfb${this.tag}`);
    this.made.push(b);
    [this.a, this.b] = [a.name, b.name];
    const ua = uniq('nfu');
    const ub = uniq('nfu');
    veth(a, ua, b, ub);
    a.ip('addr', 'add', `${this.v4a}/24`, 'dev', ua);
    b.ip('addr', 'add', `${this.v4b}/24`, 'dev', ub);
    a.ip('addr', 'add', `${this.v6a}/64`, 'dev', ua, 'nodad');
    b.ip('addr', 'add', `${this.v6b}/64`, 'dev', ub, 'nodad');
    a.ip('link', 'set', ua, 'up');
    b.ip('link', 'set', ub, 'up');
  }

  /** Side B's namespace (after create()). */
  get nsB(): Netns {
    return this.made[1];
  }

  /** Ends every process inside by PID and deletes both namespaces. */
  destroy(): void {
    for (const n of this.made.splice(0)) n.destroy();
  }
}

export interface PeerArgs {
  tunnel: TunnelConfig;
  session?: SessionConfig;
  sessions?: SessionConfig[];
  mtu?: number;
}

/** One peer.js process inside a namespace. */
export class Peer {
  readonly proc: ChildProcess;
  private buf = '';
  private readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  /** The last few KiB of the process's stderr (shown when it dies). */
  private stderr = '';
  exited = false;

  constructor(readonly ns: string, args: PeerArgs, env: NodeJS.ProcessEnv = process.env) {
    this.proc = spawn(IP, ['netns', 'exec', ns, process.execPath, PEER_JS, JSON.stringify(args)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env,
    });
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stderr!.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-4096);
    });
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 1);
      }
      this.wake();
    });
    this.proc.on('exit', () => {
      this.exited = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Next stdout line (rejects after `ms` or when the process exits first). */
  async line(ms = 10000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const l = this.lines.shift();
      if (l !== undefined) return l;
      if (this.exited) throw new Error(`peer in ${this.ns} exited (code ${this.proc.exitCode}, signal ${this.proc.signalCode}): ${this.stderr.trim()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`peer in ${this.ns}: no output within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  send(cmd: string): void {
    this.proc.stdin!.write(`${cmd}\n`);
  }

  async stats(): Promise<{ tunnel: Record<string, number>; session: Record<string, number>; reader: string | null }> {
    this.send('stats');
    for (;;) {
      const l = await this.line();
      if (l.startsWith('STATS ')) return JSON.parse(l.slice(6)) as Awaited<ReturnType<Peer['stats']>>;
    }
  }

  /** End the process by PID (SIGTERM, then SIGKILL) and wait for it. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.exited || this.proc.pid === undefined) return;
    const pid = this.proc.pid;
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 3000);
    while (!this.exited) await new Promise((r) => setTimeout(r, 20));
    clearTimeout(t);
  }
}

export function tunnelCfg(over: Partial<TunnelConfig> & Pick<TunnelConfig, 'tunnelId' | 'peerTunnelId' | 'local' | 'remote' | 'udpSport' | 'udpDport'>): TunnelConfig {
  return {
    encap: 'udp',
    family: over.local.includes(':') ? 6 : 4,
    udpCsum: false,
    udp6CsumTx: true,
    udp6CsumRx: true,
    ...over,
  };
}

export function sessionCfg(over: Partial<SessionConfig> & Pick<SessionConfig, 'tunnelId' | 'sessionId' | 'peerSessionId' | 'ifname'>): SessionConfig {
  return {
    cookie: '',
    peerCookie: '',
    l2specType: 'default',
    sendSeq: false,
    recvSeq: false,
    reorderTimeoutMs: 0,
    ...over,
  };
}

/** ping from `ns`; true when at least `need` of the probes 1..`count` got a reply within the deadline (support's pingIn). */
export function ping(ns: string, addr: string, count = 3, need = count, extra: string[] = [], deadlineS?: number): boolean {
  return pingIn(ns, count, [...extra, addr], deadlineS).replies >= need;
}

/** Names of links in `ns`. */
export function links(ns: string): string[] {
  const out = JSON.parse(sh(IP, ['-n', ns, '-j', 'link', 'show'])) as Array<{ ifname: string }>;
  return out.map((l) => l.ifname);
}

/** Run a process inside `ns` and collect its stdout lines. */
export function runIn(ns: string, args: string[]): { proc: ChildProcess; done: Promise<string> } {
  const proc = spawn(IP, ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d: string) => (out += d));
  const done = new Promise<string>((resolve) => proc.on('exit', () => resolve(out)));
  return { proc, done };
}

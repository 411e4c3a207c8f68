/**
 * Helpers for the koffi I/O integration tests: namespace pairs joined by a veth
 * (support/netns.ts), running synchronous code *inside* a namespace by switching
 * the calling thread with setns(2) (sockets and TAPs keep the namespace they were
 * created in), and tcpdump captures read back as frames.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { koffiAvailable, libc, O_RDONLY, O_CLOEXEC, CLONE_NEWNET } from '../../../src/io/koffi/libc.js';
import { IP } from '../../../support/ip.js';
import { Netns, uniq, veth } from '../../../support/netns.js';
import { sh, sleep } from '../../../support/proc.js';

/** Reason to skip, or '' when the tests can run. */
export function skipReason(): string {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, TAP, raw sockets)';
  if (!koffiAvailable()) return 'koffi not available';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun missing';
  try {
    sh(IP, ['netns', 'list']);
  } catch {
    return 'ip netns not available';
  }
  return '';
}

/** `ip ...` (the real iproute2 binary); throws with its stderr on failure. */
export function ip(...args: string[]): string {
  return sh(IP, args);
}

/** Run `fn` with the calling thread in network namespace `ns`, then switch back. */
export function inNetns<T>(ns: string, fn: () => T): T {
  const c = libc();
  const self = c.open('/proc/thread-self/ns/net', O_RDONLY | O_CLOEXEC, 0);
  if (self < 0) throw new Error(`open own netns: errno ${c.errno()}`);
  const target = c.open(`/run/netns/${ns}`, O_RDONLY | O_CLOEXEC, 0);
  if (target < 0) {
    c.close(self);
    throw new Error(`open netns ${ns}: errno ${c.errno()}`);
  }
  try {
    if (c.setns(target, CLONE_NEWNET) < 0) throw new Error(`setns ${ns}: errno ${c.errno()}`);
    const back = (): void => {
      if (c.setns(self, CLONE_NEWNET) < 0) throw new Error(`setns back: errno ${c.errno()}`);
    };
    let out: T;
    try {
      out = fn();
    } catch (e) {
      back();
      throw e;
    }
    back();
    return out;
  } finally {
    c.close(target);
    c.close(self);
  }
}

export interface Pair {
  a: string; // namespace names
  b: string;
  va: string; // veth names (va in a, vb in b)
  vb: string;
  a4: string;
  b4: string;
  a6: string;
  b6: string;
  cleanup(): void;
}

/**
 * Two fresh namespaces (loopback up) joined by a veth pair (MTU 1500) with IPv4
 * 10.<x>.<y>.1/2 and IPv6 fd00:<pid>:<y>::1/2 (nodad); `tag` varies the addresses per test file.
 */
export function makePair(tag: string): Pair {
  const pid = process.pid;
  const x = (pid % 200) + 20;
  const y = (tag.charCodeAt(0) % 250) + 1;
  const h = (pid % 0xffff).toString(16);
  const a4 = `10.${x}.${y}.1`;
  const b4 = `10.${x}.${y}.2`;
  const a6 = `fd00:${h}:${y.toString(16)}::1`;
  const b6 = `fd00:${h}:${y.toString(16)}::2`;
  const made: Netns[] = [];
  const cleanup = () => {
    for (const n of made) n.destroy();
  };
  try {
    const a = new Netns('ul2io');
    made.push(a);
    const b = new Netns('ul2io');
    made.push(b);
    const va = uniq('u');
    const vb = uniq('u');
    veth(a, va, b, vb);
    for (const [ns, dev, v4, v6] of [
      [a, va, a4, a6],
      [b, vb, b4, b6],
    ] as const) {
      ns.ip('link', 'set', dev, 'up');
      ns.ip('addr', 'add', `${v4}/24`, 'dev', dev);
      ns.ip('addr', 'add', `${v6}/64`, 'dev', dev, 'nodad');
    }
    return { a: a.name, b: b.name, va, vb, a4, b4, a6, b6, cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}

export { sleep };

/** Start tcpdump in `ns` on `dev` writing `file`; resolves once it is listening. */
export async function startCapture(ns: string, dev: string, file: string, filter: string[]): Promise<ChildProcess> {
  const p = spawn(IP, ['netns', 'exec', ns, 'tcpdump', '-Z', 'root', '--immediate-mode', '-i', dev, '-n', '-U', '-w', file, ...filter], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const t = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10000);
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) {
        clearTimeout(t);
        resolve();
      }
    });
    p.on('exit', () => {
      clearTimeout(t);
      reject(new Error(`tcpdump exited: ${err}`));
    });
  });
  return p;
}

/** Stop a capture started by startCapture (SIGINT by PID) and wait for it to flush and exit. */
export async function stopCapture(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise<void>((r) => p.once('exit', () => r()));
  if (p.pid !== undefined) process.kill(p.pid, 'SIGINT');
  await Promise.race([done, sleep(5000)]);
}

/** Packets of a classic pcap file (Ethernet link type): each packet's bytes. */
export function readPcap(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  if (buf.length < 24) return out;
  const le = buf.readUInt32LE(0) === 0xa1b2c3d4 || buf.readUInt32LE(0) === 0xa1b23c4d;
  let off = 24;
  while (off + 16 <= buf.length) {
    const incl = le ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8);
    off += 16;
    out.push(buf.subarray(off, off + incl));
    off += incl;
  }
  return out;
}

/** Parsed outer IP/UDP of an Ethernet frame, or null when not IPv4/IPv6 UDP. */
export function parseUdp(frame: Buffer): { v: 4 | 6; df: boolean; sport: number; dport: number; csum: number; payload: Buffer } | null {
  const et = frame.readUInt16BE(12);
  let o = 14;
  if (et === 0x0800) {
    const ihl = (frame[o] & 0xf) * 4;
    if (frame[o + 9] !== 17) return null;
    const df = (frame.readUInt16BE(o + 6) & 0x4000) !== 0;
    o += ihl;
    return { v: 4, df, sport: frame.readUInt16BE(o), dport: frame.readUInt16BE(o + 2), csum: frame.readUInt16BE(o + 6), payload: frame.subarray(o + 8) };
  }
  if (et === 0x86dd) {
    if (frame[o + 6] !== 17) return null;
    o += 40;
    return { v: 6, df: false, sport: frame.readUInt16BE(o), dport: frame.readUInt16BE(o + 2), csum: frame.readUInt16BE(o + 6), payload: frame.subarray(o + 8) };
  }
  return null;
}

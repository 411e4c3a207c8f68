/**
 * Packet capture in a test namespace (tcpdump -w) and decoding with tshark.
 * tcpdump is started and stopped by PID; tshark reads the file afterwards.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Netns } from '../../../support/netns.js';
import { run, waitFor } from '../../../support/proc.js';

/** Why capture tests cannot run here, or '' when they can. */
export function captureUnavailable(): string {
  for (const tool of ['tcpdump', 'tshark']) {
    const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
    if (r.error) return `${tool} not found`;
  }
  return '';
}

/** Name of the (first) veth interface in `ns` (the underlay made by `underlay()`). */
export function vethOf(ns: Netns): string {
  const out = ns.ip('-o', 'link', 'show', 'type', 'veth');
  const m = /^\d+:\s+([^@:\s]+)/m.exec(out);
  if (!m) throw new Error(`no veth in ${ns.name}`);
  return m[1];
}

export interface Capture {
  file: string;
  /** Stop tcpdump (SIGINT so it flushes) and wait for it; safe to call twice. */
  stop(): Promise<void>;
  /** Remove the capture directory. */
  remove(): void;
  stderr(): string;
}

/**
 * Start `tcpdump -i ifname -w file [filter]` in `ns`; resolves when it is listening.
 * UDP segmentation offload is turned off on the interface first: a veth passes a UDP
 * GSO send (ul2tp's default on IPv4 since it sends checksums) as one super-packet, which
 * tcpdump would record as one datagram holding several L2TP packets; without the
 * offload the kernel cuts it up before the interface, so every packet is seen as sent.
 */
export async function startCapture(ns: Netns, ifname: string, filter: string[] = []): Promise<Capture> {
  const uso = ns.exec('ethtool', ['-K', ifname, 'tx-udp-segmentation', 'off']);
  if (uso.status !== 0) throw new Error(`ethtool -K ${ifname} tx-udp-segmentation off: ${uso.stderr}`);
  const dir = mkdtempSync(join(tmpdir(), `ul2tp-cap-${ns.name}-`));
  const file = join(dir, 'cap.pcap');
  const child: ChildProcess = ns.spawn('tcpdump', ['-i', ifname, '-n', '-U', '--immediate-mode', '-s', '0', '-w', file, ...filter]);
  let err = '';
  child.stderr?.on('data', (d: string) => (err += d));
  child.stdout?.on('data', () => {});
  const ok = await waitFor(() => err.includes('listening on') || child.exitCode !== null, 10_000);
  if (!ok || child.exitCode !== null) {
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`tcpdump did not start: ${err}`);
  }
  return {
    file,
    stderr: () => err,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = once(child, 'exit');
      process.kill(child.pid!, 'SIGINT');
      const t = setTimeout(() => {
        try {
          process.kill(child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 5000);
      await gone;
      clearTimeout(t);
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * tshark display filter for L2TP packets, leaving out ICMP errors that quote
 * one (e.g. port unreachable while the peer is not listening yet): tshark
 * decodes the quoted packet as L2TP too, with the quoting host's address first.
 */
export const L2TP_NOT_ICMP_ERROR = 'l2tp && !(icmp.type == 3 || icmp.type == 11 || icmpv6.type == 1 || icmpv6.type == 2 || icmpv6.type == 3)';

/**
 * Decode `file` with tshark and return one object per packet with the
 * requested fields (tshark's own values, multiple occurrences joined by ',').
 * `decodeAs` e.g. ['udp.port==5001,l2tp']; `prefs` e.g. ['l2tp.cookie_size:4 Byte Cookie'].
 */
export function tsharkFields(
  file: string,
  fields: string[],
  o: { decodeAs?: string[]; prefs?: string[]; filter?: string } = {},
): Array<Record<string, string>> {
  const args = ['-r', file, '-n'];
  for (const d of o.decodeAs ?? []) args.push('-d', d);
  for (const p of o.prefs ?? []) args.push('-o', p);
  if (o.filter) args.push('-Y', o.filter);
  args.push('-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=,');
  for (const f of fields) args.push('-e', f);
  const r = run('tshark', args, 60_000);
  if (r.status !== 0) throw new Error(`tshark ${args.join(' ')} → ${r.status}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const v = l.split('\t');
      const row: Record<string, string> = {};
      fields.forEach((f, i) => (row[f] = v[i] ?? ''));
      return row;
    });
}

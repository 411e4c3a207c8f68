/**
 * Bulk TCP transfer between two namespaces with tcp-xfer.js, checked by
 * byte count and sha256 on both ends.
 */
import { once } from 'node:events';
import { join } from 'node:path';
import { type Netns } from '../../../support/netns.js';
import { ROOT, waitFor } from '../../../support/proc.js';

export const XFER = join(ROOT, 'dist', 'test', 'integration', 'lib', 'tcp-xfer.js');

export interface XferResult {
  /** "<bytes> <sha256>" printed by the sender and by the receiver. */
  sent: string;
  got: string;
  seconds: number;
  /** Payload throughput in Mbit/s (rough: includes connection set-up). */
  mbps: number;
}

/** Send `bytes` from `from` to `addr`:`port` served in `to`. Throws on failure. */
export async function bulkTransfer(from: Netns, to: Netns, addr: string, port: number, bytes: number, timeoutMs = 180_000): Promise<XferResult> {
  const server = to.spawn(process.execPath, [XFER, 'serve', String(port)]);
  let out = '';
  let err = '';
  server.stdout!.on('data', (d: string) => (out += d));
  server.stderr!.on('data', (d: string) => (err += d));
  try {
    if (!(await waitFor(() => out.includes('READY') || server.exitCode !== null, 10_000))) throw new Error('receiver did not start');
    if (server.exitCode !== null) throw new Error(`receiver exited: ${err}`);
    const t0 = process.hrtime.bigint();
    const s = from.exec(process.execPath, [XFER, 'send', addr, String(port), String(bytes)], timeoutMs);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (s.status !== 0) throw new Error(`sender failed (${s.status}): ${s.stderr}`);
    if (!(await waitFor(() => out.split('\n').length >= 3, 30_000))) throw new Error(`receiver did not finish: ${out} ${err}`);
    return { sent: s.stdout.trim(), got: out.split('\n')[1].trim(), seconds, mbps: (bytes * 8) / seconds / 1e6 };
  } finally {
    if (server.exitCode === null && server.pid) {
      const gone = once(server, 'exit');
      try {
        process.kill(server.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await gone;
    }
  }
}

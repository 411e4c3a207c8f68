/**
 * Bulk TCP transfer between two namespaces with tcp-xfer.js, checked by
 * byte count and sha256 on both ends.
 */
import assert from 'node:assert/strict';
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

/**
 * After a bulk transfer over a sequenced session: nothing arrived out of sequence.
 * A datagram the kernel dropped before the receiver read it (its socket buffer was
 * full while it was descheduled; `kernelDrops`, from Netns.udpRcvbufErrors) is a
 * gap, and a gap costs the next 5 packets (the receiver resyncs on the 6th); any
 * other sequence error is ul2tp's.
 */
export function assertNoSequenceErrors(c: SequenceCounters, kernelDrops: number, what: string): void {
  const errors = c.rx_errors ?? NaN;
  const discards = c.rx_seq_discards ?? NaN;
  const why = `${what}: rx_errors ${errors}, rx_seq_discards ${discards}, kernel socket drops ${kernelDrops}`;
  assert.ok(discards <= 5 * kernelDrops && errors === discards, `sequence errors: ${why}`);
  if (kernelDrops > 0) console.log(`# ${why}`);
}

/** A receiver's counters (a session's, from `show -s` or a native-free peer's stats). */
export type SequenceCounters = Partial<Record<'rx_errors' | 'rx_seq_discards', number>>;

/** Readiness checks for test rigs (not the behaviour under test: these may retry). */
import { ping, type Netns, type Underlay } from '../../../support/netns.js';
import { waitFor } from '../../../support/proc.js';

/**
 * Wait until the underlay answers IPv4 and IPv6 pings both ways (veth carrier
 * and neighbours can take a moment on a loaded machine). Throws after `timeoutMs`.
 */
export async function underlayReady(u: Underlay, timeoutMs = 15_000): Promise<void> {
  for (const [ns, addr] of [
    [u.a, u.b4],
    [u.a, u.b6],
    [u.b, u.a4],
    [u.b, u.a6],
  ] as const) {
    if (!(await waitFor(() => ping(ns, addr, 1) === 1, timeoutMs, 200))) throw new Error(`underlay: ${ns.name} cannot reach ${addr}`);
  }
}

/**
 * Ping that tells loss from latency. The result is `answered/count`, e.g. '3/3'
 * when the probes icmp_seq 1..count were all answered.
 *
 * iputils ping with `-c N -W T` waits only about two RTTs for the replies still
 * due after the last probe when some replies already came back. With RTTs
 * well under a millisecond, a scheduling hiccup on a loaded machine makes it
 * report a reply as lost that was only late. With a deadline (`-w`), ping waits
 * until N replies have arrived, sending further probes meanwhile. So the
 * summary counts are not used: each of the first N probes must have its own
 * reply line, and a lost probe or reply shows up as a missing icmp_seq.
 */
export function pings(ns: Netns, addr: string, count = 3, size = 56, extra: string[] = []): string {
  const deadline = String(Math.ceil(count * 0.2) + 8);
  const r = ns.exec('ping', ['-c', String(count), '-i', '0.2', '-W', '2', '-w', deadline, '-s', String(size), ...extra, addr], 30_000);
  const seen = new Set<number>();
  for (const m of r.stdout.matchAll(/bytes from .*icmp_seq=(\d+)/g)) seen.add(Number(m[1]));
  const missing: number[] = [];
  for (let k = 1; k <= count; k++) if (!seen.has(k)) missing.push(k);
  return missing.length === 0 ? `${count}/${count}` : `${count - missing.length}/${count} (no reply to icmp_seq ${missing.join(',')}): ${r.stdout.trim().split('\n').pop()}`;
}

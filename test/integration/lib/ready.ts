/** Readiness checks for test rigs (not the behaviour under test: these may retry). */
import { ping, waitFor, type Netns, type Underlay } from './netns.js';

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
 * Ping that tells loss from latency: `received/transmitted`, e.g. '3/3'.
 *
 * iputils ping with `-c N -W T` waits only about two RTTs for the replies still
 * due after the last probe when some replies already came back. With RTTs
 * well under a millisecond, a scheduling hiccup on a loaded machine makes it
 * report a reply as lost that was only late. With a deadline (`-w`), ping instead waits
 * until N replies have arrived. It sends a further probe each interval while
 * replies are missing, so a lost packet shows as more probes than replies
 * ('3/4'), and a reply that is late by less than the interval still gives '3/3'.
 */
export function pings(ns: Netns, addr: string, count = 3, size = 56, extra: string[] = []): string {
  const deadline = String(Math.ceil(count * 0.2) + 5);
  const r = ns.exec('ping', ['-c', String(count), '-i', '0.2', '-W', '2', '-w', deadline, '-s', String(size), ...extra, addr], 30_000);
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(r.stdout);
  return m ? `${m[2]}/${m[1]}` : `no ping output: ${r.stdout}${r.stderr}`;
}

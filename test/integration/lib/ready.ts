/** Readiness checks for test rigs (not the behaviour under test: these may retry). */
import { ping, waitFor, type Underlay } from './netns.js';

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

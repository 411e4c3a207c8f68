/**
 * Bench access to the daemon's control socket through the library client
 * (src/api/client.ts; no JSON-lines code of its own): plain requests plus a
 * windowed pipeline for bulk creation/deletion. Must run inside the daemon's
 * network namespace (the socket path is keyed by the namespace inode).
 */
import { connect, type Ul2tpClient } from '../../src/api/client.js';
import type { Op } from '../../src/control/protocol.js';

export class CtlClient {
  private constructor(readonly client: Ul2tpClient) {}

  /** Connects to a running daemon (never starts one); bulk requests may wait long for their turn. */
  static async open(path?: string, timeoutMs = 10_000): Promise<CtlClient> {
    const client = await connect({ socketPath: path, autostart: false, startTimeoutMs: timeoutMs, requestTimeoutMs: 600_000 });
    return new CtlClient(client);
  }

  request<T = unknown>(op: string, attrs: Record<string, unknown> = {}): Promise<T> {
    return this.client.request(op as Op, attrs) as Promise<T>;
  }

  /**
   * Issue many requests keeping at most `window` in flight. Failures do not
   * stop the batch: they are counted, and the first message is kept.
   */
  async pipeline(reqs: Iterable<[string, Record<string, unknown>]>, window = 64): Promise<{ failed: number; firstError: string }> {
    const inflight = new Set<Promise<void>>();
    let failed = 0;
    let firstError = '';
    for (const [op, attrs] of reqs) {
      const p: Promise<void> = this.request(op, attrs).then(
        () => void inflight.delete(p),
        (e: Error) => {
          inflight.delete(p);
          if (failed++ === 0) firstError = `${op} ${JSON.stringify(attrs)}: ${e.message}`;
        },
      );
      inflight.add(p);
      if (inflight.size >= window) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    return { failed, firstError };
  }

  close(): void {
    this.client.close();
  }
}

/**
 * A pipelining client for the daemon's control socket (JSON lines, see
 * docs/ARCHITECTURE.md "control/"). Many requests can be in flight on one
 * connection; replies are matched by id. Must run inside the daemon's
 * network namespace (the socket path is keyed by the namespace inode).
 */
import { connect, type Socket } from 'node:net';
import { socketPath } from '../../src/control/paths.js';

export interface CtlError {
  code: string;
  errno?: string;
  message: string;
}

export class CtlClient {
  private sock!: Socket;
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  static async open(path = socketPath(), timeoutMs = 10_000): Promise<CtlClient> {
    const c = new CtlClient();
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`connect ${path}: timed out`)), timeoutMs);
      c.sock = connect(path, () => {
        clearTimeout(t);
        resolve();
      });
      c.sock.once('error', (e) => {
        clearTimeout(t);
        reject(new Error(`connect ${path}: ${e.message}`));
      });
    });
    c.sock.setEncoding('utf8');
    c.sock.on('data', (d: string) => c.onData(d));
    c.sock.on('error', (e) => c.failAll(e));
    c.sock.on('close', () => c.failAll(new Error('control socket closed')));
    return c;
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const msg = JSON.parse(line) as { id: number; ok: boolean; result?: unknown; error?: CtlError };
      const p = this.pending.get(msg.id);
      if (!p) continue;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`${msg.error?.code}${msg.error?.errno ? ' ' + msg.error.errno : ''}: ${msg.error?.message}`));
    }
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  request<T = unknown>(op: string, attrs: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.sock.write(JSON.stringify({ id, op, attrs }) + '\n');
    });
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
    this.sock.end();
    this.sock.destroy();
  }
}

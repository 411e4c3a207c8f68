/**
 * The control-socket connection (the one JSON-lines client; the typed API on
 * top is src/api/client.ts, used by the CLI, the library and bench): connects to this network
 * namespace's daemon (paths.ts), starting it in the background when nobody
 * listens, and exchanges JSON-line requests and replies (protocol.ts).
 *
 * Error replies are rebuilt as L2tpError {code, errno, message};
 * `isDaemonReply(e)` tells them apart from failures to reach the daemon
 * (L2tpError 'DAEMON' raised here).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { L2tpError } from '../errors.js';
import { dirname } from 'node:path';
import { lockName, socketPath } from './paths.js';
import { LineFramer, MAX_REPLY_LINE, encodeLine } from './framing.js';
import { PROTOCOL_VERSION, type Op, type OpAttrs, type OpResult, type Reply } from './protocol.js';
import { errorFromBody, parseReply } from './validate.js';

/** How long a CLI waits for a freshly started daemon to listen. */
export const START_TIMEOUT_MS = 10_000;
/** How long a request may take (a session create waits for its interface). */
export const REQUEST_TIMEOUT_MS = 120_000;
/**
 * A request unanswered for this long makes the client check that the daemon
 * still runs its event loop: it connects to the daemon's abstract lock, which
 * the daemon closes at once. No close within LIVENESS_MS: the daemon is
 * stopped or hung, and the request fails (a busy daemon keeps answering the
 * probe, so long queues still wait up to REQUEST_TIMEOUT_MS).
 */
export const PROBE_AFTER_MS = 2000;
export const LIVENESS_MS = 3000;
/** Connecting to the control socket. */
export const CONNECT_TIMEOUT_MS = 5000;

/** Resolves true when the daemon closed our connection to its lock, false when it did not within `ms`, null when nobody holds the lock. */
export function probeDaemon(lock: string, ms = LIVENESS_MS): Promise<boolean | null> {
  return new Promise((resolve) => {
    const s = createConnection(lock);
    const done = (v: boolean | null): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), ms);
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? null : true));
    s.on('close', () => done(true));
    s.on('data', () => {});
  });
}

const fromDaemon = new WeakSet<Error>();

/** True when `e` is an error reply of the daemon (the request reached it and failed). */
export function isDaemonReply(e: unknown): boolean {
  return e instanceof Error && fromDaemon.has(e);
}

interface Pending {
  resolve(result: unknown): void;
  reject(e: Error): void;
}

/** One connection to the daemon; requests may be pipelined. */
export class ControlClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: L2tpError | null = null;

  /** How long each request waits for its reply (ConnectOptions.requestTimeoutMs). */
  requestTimeoutMs = REQUEST_TIMEOUT_MS;

  private probing: NodeJS.Timeout | null = null;
  private lastData = Date.now();

  private constructor(
    private readonly sock: Socket,
    private readonly path: string,
  ) {
    const framer = new LineFramer(
      (line) => this.onLine(line),
      () => this.fail(new L2tpError('PROTOCOL', 'reply line from the daemon is too long')),
      MAX_REPLY_LINE,
    );
    sock.on('data', (chunk: Buffer) => {
      this.lastData = Date.now();
      framer.push(chunk);
    });
    sock.on('error', (e) => this.fail(new L2tpError('DAEMON', `control socket: ${e.message}`)));
    sock.on('close', () => this.fail(new L2tpError('DAEMON', 'the ul2tp daemon closed the connection')));
  }

  /** Connects to `path`; rejects with the socket error (its `code` is ENOENT, ECONNREFUSED, ...). */
  static connect(path: string = socketPath()): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(path);
      const timer = setTimeout(() => onError(Object.assign(new Error(`no connection within ${CONNECT_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT_MS);
      const onError = (e: Error): void => {
        clearTimeout(timer);
        sock.destroy();
        reject(e);
      };
      sock.once('error', onError);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.off('error', onError);
        resolve(new ControlClient(sock, path));
      });
    });
  }

  request<O extends Op>(op: O, attrs: OpAttrs[O]): Promise<OpResult[O]> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<OpResult[O]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new L2tpError('DAEMON', `no reply from the ul2tp daemon to ${op} within ${this.requestTimeoutMs / 1000} s`));
      }, this.requestTimeoutMs);
      this.pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r as OpResult[O]);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.sock.write(encodeLine({ id, version: PROTOCOL_VERSION, op, attrs }));
      this.watch();
    });
  }

  /** While requests wait, check every PROBE_AFTER_MS without a reply that the daemon is alive. */
  private watch(): void {
    if (this.probing !== null) return;
    this.lastData = Date.now();
    const tick = async (): Promise<void> => {
      this.probing = null;
      if (this.pending.size === 0 || this.failure !== null) return;
      if (Date.now() - this.lastData >= PROBE_AFTER_MS) {
        const alive = await probeDaemon(lockName(dirname(this.path)));
        if (alive === false && this.pending.size > 0 && Date.now() - this.lastData >= PROBE_AFTER_MS) {
          this.fail(
            new L2tpError(
              'DAEMON',
              `the ul2tp daemon at ${this.path} does not respond (stopped or hung): no reply within ${(PROBE_AFTER_MS + LIVENESS_MS) / 1000} s`,
            ),
          );
          return;
        }
      }
      this.probing = setTimeout(() => void tick(), PROBE_AFTER_MS);
      this.probing.unref();
    };
    this.probing = setTimeout(() => void tick(), PROBE_AFTER_MS);
    this.probing.unref();
  }

  close(): void {
    if (this.probing !== null) clearTimeout(this.probing);
    this.probing = null;
    this.sock.end();
    this.sock.destroy();
  }

  private onLine(line: string): void {
    let reply: Reply;
    try {
      reply = parseReply(JSON.parse(line));
    } catch (e) {
      this.fail(e instanceof L2tpError ? e : new L2tpError('PROTOCOL', 'reply from the daemon is not JSON'));
      return;
    }
    // An error reply without an id (the daemon could not read the request) goes to the oldest request.
    const id = reply.id ?? this.pending.keys().next().value;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (p === undefined || id === undefined) return;
    this.pending.delete(id);
    if (reply.ok) {
      p.resolve(reply.result);
    } else {
      const err = errorFromBody(reply.error);
      fromDaemon.add(err);
      p.reject(err);
    }
  }

  private fail(e: L2tpError): void {
    if (this.failure === null) this.failure = e;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    this.sock.destroy();
  }
}

export interface ConnectOptions {
  /** Socket to use (default: this namespace's, from UL2TP_RUNDIR or /run/ul2tp). */
  path?: string;
  /** Start the daemon when nobody listens (default true). */
  autostart?: boolean;
  /** Give up waiting for a started daemon after this long (default START_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Give up waiting for a reply after this long (default REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  /** Start the daemon inside this named network namespace (`ip netns exec NAME ...`). */
  netns?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function isAbsent(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ECONNREFUSED';
}

/**
 * The program the daemon is started with: `node <this CLI's main.js> daemon
 * --background`. UL2TP_DAEMON_ENTRY replaces the script (tests).
 */
function daemonEntry(): string {
  return process.env.UL2TP_DAEMON_ENTRY || fileURLToPath(new URL('../cli/main.js', import.meta.url));
}

interface Started {
  startedAt: number;
  exitCode: number | null;
  exitedAt: number;
  spawnError: Error | null;
}

function startDaemon(netns: string | undefined): Started {
  const st: Started = { startedAt: Date.now(), exitCode: null, exitedAt: 0, spawnError: null };
  const argv = [process.execPath, daemonEntry(), 'daemon', '--background'];
  if (netns !== undefined) argv.unshift('ip', 'netns', 'exec', netns);
  const child = spawn(argv[0], argv.slice(1), {
    detached: true,
    stdio: 'ignore',
  });
  child.on('error', (e) => {
    st.spawnError = e;
  });
  child.on('exit', (code, signal) => {
    st.exitCode = code ?? 128;
    st.exitedAt = Date.now();
    if (signal) st.spawnError = new Error(`daemon killed by ${signal}`);
  });
  child.unref();
  return st;
}

/**
 * Connects to the namespace's daemon. When the socket is missing or refuses
 * (no daemon, or a dead one's stale socket), starts `ul2tp daemon
 * --background` detached and retries for up to ~10 s, silently. If several
 * CLIs race, the daemon's abstract-socket lock lets only one run and every
 * CLI connects to it. Fails with L2tpError('DAEMON', 'cannot start ul2tp
 * daemon: <reason>').
 */
export async function connectDaemon(opts: ConnectOptions = {}): Promise<ControlClient> {
  const c = await connectOrStart(opts);
  if (opts.requestTimeoutMs !== undefined) c.requestTimeoutMs = opts.requestTimeoutMs;
  return c;
}

async function connectOrStart(opts: ConnectOptions): Promise<ControlClient> {
  const path = opts.path ?? socketPath();
  try {
    return await ControlClient.connect(path);
  } catch (e) {
    if (!isAbsent(e) || opts.autostart === false) throw unreachable(path, e);
  }
  const st = startDaemon(opts.netns);
  const timeoutMs = opts.timeoutMs ?? START_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  let last: unknown;
  for (;;) {
    await sleep(delay);
    delay = Math.min(delay * 2, 200);
    try {
      return await ControlClient.connect(path);
    } catch (e) {
      last = e;
      if (!isAbsent(e)) throw unreachable(path, e);
    }
    const reason = giveUpReason(st, deadline, timeoutMs, path, last);
    if (reason !== null) throw new L2tpError('DAEMON', `cannot start ul2tp daemon: ${reason}`);
  }
}

function giveUpReason(st: Started, deadline: number, timeoutMs: number, path: string, last: unknown): string | null {
  const now = Date.now();
  if (st.spawnError !== null) return st.spawnError.message;
  // A daemon that exits non-zero may have lost the start race to another one: allow it a moment.
  if (st.exitCode !== null && st.exitCode !== 0 && now - st.exitedAt > 1000) {
    const logPath = path.replace(/ctl\.sock$/, 'daemon.log');
    const why = lastLogLine(logPath, st.startedAt);
    return why !== '' ? `${why} (daemon exited with status ${st.exitCode}; see ${logPath})` : `the daemon exited with status ${st.exitCode} (see ${logPath})`;
  }
  if (now >= deadline) {
    const why = last instanceof Error ? `: ${last.message}` : '';
    return `no daemon listening on ${path} after ${timeoutMs / 1000} s${why}`;
  }
  return null;
}

/**
 * The last line the daemon we started wrote to its log, without the
 * `ul2tp[pid]: ` prefix ('' if none, or if the log was not written since `since`).
 */
function lastLogLine(logPath: string, since: number): string {
  try {
    const st = statSync(logPath);
    if (st.mtimeMs < since - 1000) return '';
    const len = Math.min(st.size, 4096);
    const fd = openSync(logPath, 'r');
    try {
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, st.size - len);
      const lines = buf.toString('utf8').split('\n').filter((l) => l.trim() !== '');
      return (lines[lines.length - 1] ?? '').replace(/^(?:\S+ )?ul2tp\[\d+\]: /, '');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

function unreachable(path: string, e: unknown): L2tpError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EACCES' || code === 'EPERM')
    return new L2tpError('DAEMON', `permission denied on the ul2tp daemon's socket ${path}: ul2tp must run as root (like ip l2tp)`);
  const msg = e instanceof Error ? e.message : String(e);
  return new L2tpError('DAEMON', `cannot reach the ul2tp daemon at ${path}: ${msg}`);
}

/** One request on a fresh connection (started daemon if needed), then close. */
export async function request<O extends Op>(op: O, attrs: OpAttrs[O], opts: ConnectOptions = {}): Promise<OpResult[O]> {
  const c = await connectDaemon(opts);
  try {
    return await c.request(op, attrs);
  } finally {
    c.close();
  }
}

/**
 * The typed client of a network namespace's ul2tp daemon: what
 * `import { connect } from 'ul2tp'` gives, and what the `ul2tp` CLI itself
 * talks through (src/cli/process-io.ts, src/cli/everyday.ts).
 *
 * Tunnels and sessions are described with iproute2's keywords
 * (`tunnel_id`, `peer_tunnel_id`, `udp_sport`, `seq`, ...) and go through the
 * CLI's own grammar (src/cli/parse.ts), so a library call accepts, refuses
 * and words its errors exactly as `ip l2tp` does: an L2tpError whose `code`
 * says what failed, whose `message` is iproute2's text and, for the daemon's
 * refusals, whose `errno` is the errno name (`EEXIST`, `ENODEV`, ...; the CLI
 * prints `RTNETLINK answers: <message>`).
 *
 * One client is one connection; requests may overlap (they are pipelined and
 * matched by id). Each waits at most `requestTimeoutMs` (default 120 s: a
 * session create waits for its interface, deleting a tunnel with thousands
 * of sessions takes seconds) for its reply, then fails with
 * L2tpError('DAEMON'). Streams (counters, capture) are async iterators;
 * leaving the loop (`break`) stops them.
 */
import { createConnection } from 'node:net';
import { L2tpError } from '../errors.js';
import { parseCommand, type Command } from './parse.js';
import { ControlClient, connectDaemon, isDaemonReply, START_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from '../control/client.js';
import { LineFramer, MAX_REPLY_LINE, encodeLine } from '../control/framing.js';
import { namedNetnsInode, socketPath as defaultSocketPath } from '../control/paths.js';
import {
  PROTOCOL_VERSION,
  type CapturePacketLine,
  type Counters,
  type Encap,
  type HelloResult,
  type ImpairAttrs,
  type Op,
  type OpAttrs,
  type OpResult,
  type SessionInfo,
  type StatusResult,
  type TunnelInfo,
} from '../control/protocol.js';
import { checkSessionList, checkTunnelList, parseReply, validateRequest, errorFromBody } from '../control/validate.js';

export interface ConnectOptions {
  /**
   * The daemon of this named network namespace (`ip netns add NAME`) instead
   * of the caller's; started there (`ip netns exec NAME`) when needed.
   */
  netns?: string;
  /** The daemon's control socket (default: the namespace's, under UL2TP_RUNDIR or /run/ul2tp). */
  socketPath?: string;
  /** Start the namespace's daemon when none runs, as the CLI does (default true). */
  autostart?: boolean;
  /** How long to wait for a daemon this call started (default 10 s). */
  startTimeoutMs?: number;
  /** How long each request waits for its reply before failing with L2tpError('DAEMON') (default 120 s). */
  requestTimeoutMs?: number;
}

/** `ip l2tp add tunnel` keywords. Numbers may also be given as text (`"0x10"`), as on the command line. */
export interface TunnelSpec {
  tunnel_id: number | string;
  peer_tunnel_id: number | string;
  encap?: Encap;
  local: string;
  remote: string;
  udp_sport?: number | string;
  udp_dport?: number | string;
  udp_csum?: boolean;
  udp6_csum_tx?: boolean;
  udp6_csum_rx?: boolean;
}

/** `ip l2tp add session` keywords. */
export interface SessionSpec {
  tunnel_id: number | string;
  session_id: number | string;
  peer_session_id: number | string;
  /** Interface name (default l2tpethN). */
  name?: string;
  cookie?: string;
  peer_cookie?: string;
  l2spec_type?: 'none' | 'default';
  seq?: 'none' | 'send' | 'recv' | 'both';
}

/** Filters of `show`: 0 or absent = any. */
export interface Filter {
  tunnel_id?: number;
  session_id?: number;
}

/** A session's counters at one moment. */
export interface SessionCounters {
  tunnel_id: number;
  session_id: number;
  ifname: string;
  /** The kernel's counter names (rx_packets, tx_bytes, rx_seq_discards, ...). */
  stats: Counters;
  /** Drops the kernel does not count (rx_no_session, rx_control, rx_short, rx_dev_drops). */
  drops: Counters;
}

export interface CounterSample {
  /** When the daemon was asked (ms since the epoch). */
  at: number;
  sessions: SessionCounters[];
}

export interface WatchOptions extends Filter {
  /** Time between samples (default 1000 ms). The first sample comes at once. */
  intervalMs?: number;
  /** Stop after this many samples (default: until the loop is left or `signal` aborts). */
  count?: number;
  signal?: AbortSignal;
}

/** One captured L2TP packet (from the session header on; the outer IP/UDP headers are not included). */
export interface CapturedPacket {
  /** ms since the epoch. */
  t: number;
  dir: 'tx' | 'rx';
  encap: Encap;
  tunnel_id: number;
  /** Our local session id, in both directions. */
  session_id: number;
  data: Buffer;
}

export interface CaptureOptions extends Filter {
  signal?: AbortSignal;
}

/** Transmit impairment of a session (`ul2tp impair`): percentages 0..100, times in ms, rate in bit/s. */
export interface ImpairSettings {
  loss?: number;
  duplicate?: number;
  reorder?: number;
  distance?: number;
  delay?: number;
  jitter?: number;
  rate?: number;
  seed?: number;
}

const TUNNEL_KEYS = ['tunnel_id', 'peer_tunnel_id', 'encap', 'local', 'remote', 'udp_sport', 'udp_dport', 'udp_csum', 'udp6_csum_tx', 'udp6_csum_rx'];
const SESSION_KEYS = ['tunnel_id', 'session_id', 'peer_session_id', 'name', 'cookie', 'peer_cookie', 'l2spec_type', 'seq'];

/** A spec object as the argv the CLI would get: `{udp_csum: true}` → `udp_csum on`. */
function specArgv(spec: object, allowed: readonly string[]): string[] {
  if (typeof spec !== 'object' || spec === null) throw new L2tpError('BAD_ARG', 'Error: expected an object of ip l2tp keywords');
  const out: string[] = [];
  for (const [k, v] of Object.entries(spec)) {
    if (v === undefined) continue;
    if (!allowed.includes(k)) throw new L2tpError('UNKNOWN_KEYWORD', `Unknown command: ${k}`);
    if (typeof v === 'boolean') out.push(k, v ? 'on' : 'off');
    else if (typeof v === 'number' || typeof v === 'string') out.push(k, String(v));
    else throw new L2tpError('BAD_ARG', `Error: argument "${String(v)}" is wrong: "${k}" must be a number or a string`);
  }
  return out;
}

const ignoreWarning = (): void => {};

/** Parses argv with the CLI's grammar; returns the command it stands for. */
function command(argv: string[]): Command {
  return parseCommand(argv, ignoreWarning);
}

/** A client of one daemon. Get one with `connect()`; `close()` it when done. */
export class Ul2tpClient {
  private closed = false;

  /** @internal Use `connect()`. */
  constructor(
    private readonly conn: ControlClient,
    /** The socket this client talks to (capture streams open their own connection to it). */
    readonly socketPath: string,
    private readonly requestTimeoutMs: number,
  ) {}

  /** One request of the control protocol (docs/control-protocol.md), typed. (`capture` streams: use capture().) */
  request<O extends Op>(op: O, attrs: OpAttrs[O]): Promise<OpResult[O]> {
    if (op === 'capture') return Promise.reject(new L2tpError('PROTOCOL', 'capture turns its connection into a packet stream: use capture()'));
    return this.conn.request(op, attrs);
  }

  /** The protocol versions, ops and package version of the daemon. */
  hello(): Promise<HelloResult> {
    return this.request('hello', {});
  }

  /** pid, package version, backend, protocol version and tunnel/session counts of the daemon. */
  status(): Promise<StatusResult> {
    return this.request('status', {});
  }

  /** `ip l2tp add tunnel ...`. */
  async addTunnel(spec: TunnelSpec): Promise<void> {
    const c = command(['add', 'tunnel', ...specArgv(spec, TUNNEL_KEYS)]);
    if (c.verb !== 'add' || c.tunnel === null) throw new Error('unreachable');
    await this.request('tunnel_create', c.tunnel);
  }

  /** `ip l2tp add session ...`; resolves to the session's interface name. */
  async addSession(spec: SessionSpec): Promise<string> {
    const c = command(['add', 'session', ...specArgv(spec, SESSION_KEYS)]);
    if (c.verb !== 'add' || c.session === null) throw new Error('unreachable');
    const r = await this.request('session_create', c.session);
    return r.ifname;
  }

  /** `ip l2tp del tunnel tunnel_id ID` (its sessions go with it). */
  async deleteTunnel(tunnelId: number | string): Promise<void> {
    const c = command(['del', 'tunnel', 'tunnel_id', String(tunnelId)]);
    if (c.verb !== 'del') throw new Error('unreachable');
    await this.send(c.request);
  }

  /** `ip l2tp del session tunnel_id T session_id S`. */
  async deleteSession(tunnelId: number | string, sessionId: number | string): Promise<void> {
    const c = command(['del', 'session', 'tunnel_id', String(tunnelId), 'session_id', String(sessionId)]);
    if (c.verb !== 'del') throw new Error('unreachable');
    await this.send(c.request);
  }

  /** `ip l2tp show tunnel [tunnel_id ID]`, with counters (`stats`, `drops`). */
  async tunnels(filter: Filter = {}): Promise<TunnelInfo[]> {
    const list = checkTunnelList(await this.request('tunnel_get', {}));
    const tid = filter.tunnel_id ?? 0;
    return list.filter((t) => tid === 0 || t.tunnel_id === tid);
  }

  /** `ip l2tp show session [tunnel_id T] [session_id S]`, with counters and impairment. */
  async sessions(filter: Filter = {}): Promise<SessionInfo[]> {
    const list = checkSessionList(await this.request('session_get', {}));
    const tid = filter.tunnel_id ?? 0;
    const sid = filter.session_id ?? 0;
    return list.filter((s) => (tid === 0 || s.tunnel_id === tid) && (sid === 0 || s.session_id === sid));
  }

  /** The sessions' counters now. */
  async counters(filter: Filter = {}): Promise<CounterSample> {
    const at = Date.now();
    const sessions = (await this.sessions(filter)).map((s) => ({
      tunnel_id: s.tunnel_id,
      session_id: s.session_id,
      ifname: s.ifname,
      stats: s.stats ?? {},
      drops: s.drops ?? {},
    }));
    return { at, sessions };
  }

  /** Counter samples every `intervalMs`, the first at once (what `ul2tp stats` prints rates from). */
  async *watchCounters(opts: WatchOptions = {}): AsyncGenerator<CounterSample, void, undefined> {
    const interval = opts.intervalMs ?? 1000;
    if (!(interval > 0)) throw new L2tpError('BAD_ARG', `Error: argument "${interval}" is wrong: "intervalMs" must be positive`);
    const signal = opts.signal;
    for (let n = 0; opts.count === undefined || n < opts.count; n++) {
      if (n > 0 && !(await sleepUnlessAborted(interval, signal))) return;
      if (signal?.aborted) return;
      yield await this.counters(opts);
    }
  }

  /**
   * Sets a session's transmit impairment (`ul2tp impair`), or removes it
   * with 'off'. Checked like the daemon checks it (PROTOCOL errors).
   */
  async impair(tunnelId: number, sessionId: number, settings: ImpairSettings | 'off'): Promise<void> {
    const attrs: Record<string, unknown> = { tunnel_id: tunnelId, session_id: sessionId };
    if (settings === 'off') attrs.off = true;
    else Object.assign(attrs, settings);
    const req = validateRequest({ id: 0, op: 'impair', attrs });
    await this.request('impair', req.attrs as ImpairAttrs);
  }

  /**
   * Captures the L2TP packets the daemon sends and receives (`ul2tp
   * capture`) on a connection of its own. Resolves once the daemon captures;
   * iterate to get the packets; leaving the loop (or `signal`) stops it.
   */
  async capture(opts: CaptureOptions = {}): Promise<AsyncIterableIterator<CapturedPacket>> {
    return openCapture(this.socketPath, opts, this.requestTimeoutMs);
  }

  /** Closes the connection; pending requests fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.conn.close();
  }

  private send(r: { op: 'tunnel_delete'; attrs: OpAttrs['tunnel_delete'] } | { op: 'session_delete'; attrs: OpAttrs['session_delete'] }): Promise<unknown> {
    return r.op === 'tunnel_delete' ? this.request('tunnel_delete', r.attrs) : this.request('session_delete', r.attrs);
  }
}

function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Connects to the namespace's daemon (starting it, unless `autostart` is
 * false, as the CLI does). Fails with L2tpError('DAEMON') when it cannot.
 */
export async function connect(opts: ConnectOptions = {}): Promise<Ul2tpClient> {
  const path = opts.socketPath ?? defaultSocketPath(opts.netns === undefined ? undefined : namedNetnsInode(opts.netns));
  const rto = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const conn = await connectDaemon({
    path,
    netns: opts.netns,
    autostart: opts.autostart ?? true,
    timeoutMs: opts.startTimeoutMs ?? START_TIMEOUT_MS,
    requestTimeoutMs: rto,
  });
  return new Ul2tpClient(conn, path, rto);
}

/** True when `e` is an error reply of the daemon (the request reached it and failed), not a failure to reach it. */
export { isDaemonReply };

/** The capture stream: a connection that sends `capture` and then reads packet lines. */
async function openCapture(path: string, opts: CaptureOptions, startTimeoutMs: number): Promise<AsyncIterableIterator<CapturedPacket>> {
  const sock = createConnection(path);
  const queue: CapturedPacket[] = [];
  let failure: L2tpError | null = null;
  let ended = false;
  let wake: (() => void) | null = null;
  let started: ((e: L2tpError | null) => void) | null = null;
  const startedP = new Promise<L2tpError | null>((r) => (started = r));
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const finish = (e: L2tpError | null): void => {
    if (ended) return;
    ended = true;
    if (e !== null && failure === null) failure = e;
    sock.destroy();
    opts.signal?.removeEventListener('abort', onAbort);
    started?.(failure ?? new L2tpError('DAEMON', 'the ul2tp daemon closed the connection'));
    notify();
  };
  const onAbort = (): void => finish(null);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const framer = new LineFramer(
    (line) => {
      if (ended) return;
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch {
        finish(new L2tpError('PROTOCOL', 'reply from the daemon is not JSON'));
        return;
      }
      const pkt = (obj as Partial<CapturePacketLine> | null)?.packet;
      if (pkt !== undefined && typeof pkt === 'object' && pkt !== null && typeof pkt.data === 'string') {
        queue.push({ ...pkt, data: Buffer.from(pkt.data, 'base64') });
        notify();
        return;
      }
      let reply;
      try {
        reply = parseReply(obj);
      } catch (e) {
        finish(e as L2tpError);
        return;
      }
      if (!reply.ok) {
        finish(errorFromBody(reply.error));
        return;
      }
      const s = started;
      started = null;
      s?.(null);
    },
    () => finish(new L2tpError('PROTOCOL', 'reply line from the daemon is too long')),
    MAX_REPLY_LINE,
  );
  sock.on('data', (c: Buffer) => framer.push(c));
  sock.on('error', (e) => finish(new L2tpError('DAEMON', `control socket: ${e.message}`)));
  sock.on('close', () => finish(new L2tpError('DAEMON', 'the ul2tp daemon closed the connection')));
  sock.on('connect', () => {
    sock.write(encodeLine({ id: 1, version: PROTOCOL_VERSION, op: 'capture', attrs: { tunnel_id: opts.tunnel_id ?? 0, session_id: opts.session_id ?? 0 } }));
  });
  const timer = setTimeout(() => finish(new L2tpError('DAEMON', `no reply from the ul2tp daemon to capture within ${startTimeoutMs / 1000} s`)), startTimeoutMs);
  const err = await startedP;
  clearTimeout(timer);
  if (err !== null) {
    finish(err);
    throw err;
  }

  const it: AsyncIterableIterator<CapturedPacket> = {
    [Symbol.asyncIterator]() {
      return it;
    },
    async next(): Promise<IteratorResult<CapturedPacket>> {
      for (;;) {
        const p = queue.shift();
        if (p !== undefined) return { value: p, done: false };
        if (ended) {
          if (failure !== null) {
            const f = failure;
            failure = null;
            throw f;
          }
          return { value: undefined, done: true };
        }
        await new Promise<void>((r) => (wake = r));
      }
    },
    return(): Promise<IteratorResult<CapturedPacket>> {
      finish(null);
      queue.length = 0;
      return Promise.resolve({ value: undefined, done: true });
    },
  };
  return it;
}

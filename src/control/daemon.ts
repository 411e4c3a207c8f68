/**
 * `ul2tp daemon`: one per network namespace. Holds the engine table, the
 * dataplane backend and the state file; serves the CLI over a Unix socket
 * (one JSON object per line, see docs/ARCHITECTURE.md).
 *
 * Single instance: the daemon first binds an abstract Unix socket. Abstract
 * sockets belong to the network namespace and vanish with their process, so
 * a second daemon in the same namespace fails to bind (and exits), and a
 * crashed one never leaves a stale lock behind.
 */
import { dataplaneOptionsFrom, workersText } from './options.js';
import { chmodSync, closeSync, fstatSync, lutimesSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { L2tpError } from '../errors.js';
import { selectBackend, type BackendChoice } from '../io/select.js';
import { Controller, type SavedState } from './handlers.js';
import type { ApplyResult, ConfigSource } from './config.js';
import { captureHubOf, impairOp, startCapture } from './capture.js';
import { parseListen, startMetrics } from './metrics.js';
import { lockName, runDir, socketPath } from './paths.js';
import { checkIdentity, sweepStale, watchNetns } from './lifecycle.js';
import { processWithOpen } from './netns-id.js';
import { RunDirError, openLog, prepareRunDir } from './rundir.js';
import { MAX_LINE } from './framing.js';
import { validateRequest } from './validate.js';
import { MIN_PROTOCOL_VERSION, OPS, PROTOCOL_VERSION } from './protocol.js';
import { loadStateFile, writeStateFile } from './state-file.js';
import { GUARD_MS, HEARTBEAT_MS, IDLE_REWRITE_MS, resumeSessions } from './seq-restart.js';
import { removeOrphans } from './reconcile.js';

export interface DaemonOptions {
  background?: boolean;
  foreground?: boolean;
  backend?: string;
  /** false for `--no-offload`. */
  offload?: boolean;
  /** `--workers N` (koffi worker pairs), already checked. */
  workers?: number;
  /** `--worker-threads 1|2` (koffi threads per worker), already checked. */
  workerThreads?: 1 | 2;
  /** `--metrics ADDR:PORT` (src/control/metrics.ts); checked before anything starts. */
  metrics?: string;
  metricsAnyAddress?: boolean;
  /** `--config FILE`: applied at start, re-applied on SIGHUP and `ul2tp daemon reload` (config.ts). */
  config?: ConfigSource;
}

export const VERSION = '0.1.0';

let logFd = 2;
/** The background log file (daemon.log): lines carry a timestamp, and it is rotated at LOG_MAX_BYTES. */
let logPath = '';
let logBytes = 0;
/** daemon.log is renamed to daemon.log.1 (replacing the previous one) when it grows past this. */
export const LOG_MAX_BYTES = Number(process.env.UL2TP_LOG_MAX_BYTES) > 0 ? Number(process.env.UL2TP_LOG_MAX_BYTES) : 1 << 20;
export function log(msg: string): void {
  try {
    if (logPath === '') {
      writeSync(logFd, `ul2tp[${process.pid}]: ${msg}\n`);
      return;
    }
    logBytes += writeSync(logFd, `${new Date().toISOString()} ul2tp[${process.pid}]: ${msg}\n`);
    if (logBytes >= LOG_MAX_BYTES) {
      renameSync(logPath, `${logPath}.1`);
      const fd = openLog(logPath);
      closeSync(logFd);
      logFd = fd;
      logBytes = 0;
    }
  } catch {
    /* logging must never take the daemon down */
  }
}

/**
 * Logging for conditions a client or the network can trigger repeatedly: at
 * most LIMITED_PER_MINUTE lines a minute, then one line saying how many were
 * suppressed (QEMU's "log once, then count").
 */
const LIMITED_PER_MINUTE = 20;
let limitedWindow = 0;
let limitedCount = 0;
let limitedSuppressed = 0;
export function logLimited(msg: string, now = Date.now()): void {
  if (now - limitedWindow >= 60_000) {
    if (limitedSuppressed > 0) log(`${limitedSuppressed} similar message(s) suppressed in the last minute`);
    limitedWindow = now;
    limitedCount = 0;
    limitedSuppressed = 0;
  }
  if (limitedCount++ < LIMITED_PER_MINUTE) log(msg);
  else limitedSuppressed++;
}

/**
 * Who holds the abstract socket `name` (cold path, only when binding failed):
 * its inode from /proc/net/unix, then the process with that socket open.
 */
function lockHolder(name: string): { pid: number; uid: number } | null {
  try {
    const shown = '@' + name.slice(1).replace(/\0/g, '@');
    let inode = '';
    for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      // libuv binds abstract names with the whole sun_path: NUL padding shows as '@'.
      if (f.length >= 8 && f.slice(7).join(' ').replace(/@+$/, '') === shown) inode = f[6];
    }
    if (inode === '') return null;
    const pid = processWithOpen(`socket:[${inode}]`);
    if (pid === null) return null;
    const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
    return { pid, uid };
  } catch {
    /* no /proc: unknown */
  }
  return null;
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (e: Error) => reject(e);
    server.once('error', onErr);
    server.listen(path, () => {
      server.off('error', onErr);
      resolve();
    });
  });
}

/** Run the daemon until SIGTERM/SIGINT. Resolves never; exits the process. */
export async function runDaemon(opts: DaemonOptions = {}): Promise<void> {
  const dir = runDir();
  try {
    prepareRunDir(dir);
    if (opts.background) {
      logPath = `${dir}/daemon.log`;
      logFd = openLog(logPath);
      logBytes = fstatSync(logFd).size;
    }
  } catch (e) {
    // Fatal before anything started: the CLI prints "Error: <message>" and exits 1.
    throw new Error(e instanceof RunDirError ? e.message : `run directory ${dir}: ${(e as Error).message}`, { cause: e });
  }

  // Nobody has any business connecting to the lock: close whatever does at once
  // (abstract sockets have no permissions, so any local user could otherwise
  // pile up connections, i.e. file descriptors, in the daemon).
  const lock = createServer((s) => s.destroy());
  lock.on('error', () => {});
  try {
    await listen(lock, lockName(dir));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      const holder = lockHolder(lockName(dir));
      if (holder !== null && holder.uid !== process.getuid?.()) {
        // Not a daemon of ours: someone squats the name to keep ul2tp from starting.
        log(`the daemon lock "@${lockName(dir).slice(1)}" is held by pid ${holder.pid} (uid ${holder.uid}), which is not a ul2tp daemon; not starting`);
        process.exit(1);
      }
      const who = holder !== null ? ` (pid ${holder.pid})` : '';
      log(`another ul2tp daemon is already running in this network namespace${who}`);
      process.exit(opts.background ? 0 : 1);
    }
    throw e;
  }

  const statePath = `${dir}/state.json`;
  try {
    await checkIdentity(dir, logFd, log);
    sweepStale(dirname(dir), basename(dir), log);
  } catch (e) {
    log(`run directory ${dir}: ${(e as Error).message}; not starting`);
    process.exit(1);
  }
  let loaded: ReturnType<typeof loadStateFile>;
  try {
    loaded = loadStateFile(statePath);
  } catch (e) {
    log(`state file ${statePath} cannot be read (${(e as Error).message}); not starting: fix or remove it`);
    process.exit(1);
  }
  if (loaded.kind === 'corrupt') {
    log(`state file ${statePath} is unusable (${loaded.reason}); not starting: fix or remove it (a copy is kept as ${loaded.backup})`);
    process.exit(1);
  }

  let choice: BackendChoice;
  try {
    choice = await selectBackend(dataplaneOptionsFrom(opts, process.env));
  } catch (e) {
    log(`cannot start a dataplane: ${(e as Error).message}`);
    process.exit(1);
  }
  log(`dataplane backend: ${choice.dp.name} (${choice.why})${choice.dp.workers !== undefined ? `, ${workersText(choice.dp.workers, choice.dp.workerThreads)}` : ''}`);

  // Crash consistency: ul2tp's own interfaces that the configuration does not name go first.
  await removeOrphans(new Set(loaded.kind === 'ok' ? loaded.state.sessions.map((x) => x.ifname) : []), log);

  const ctl = new Controller(choice.dp);
  if (loaded.kind === 'ok') {
    // How long the crashed daemon can have sent since its last write (seq-restart.ts).
    const runMs = loaded.state.saved_at !== undefined ? Math.max(0, loaded.mtimeMs - loaded.state.saved_at) : 1000;
    // Sequence numbers move past anything it can have sent, and that is on disk
    // before the dataplane gets a session: a crash during the restore restarts from there.
    const resumed: SavedState = { ...loaded.state, sessions: resumeSessions(loaded.state.sessions, runMs), saved_at: Date.now() };
    try {
      writeStateFile(statePath, resumed);
    } catch (e) {
      log(`cannot write state file: ${(e as Error).message}`);
    }
    // Restored sessions send at once: the mtime says for how long, should we crash
    // before the heartbeat below starts (a large restore takes seconds).
    const touch = setInterval(() => touchStateFile(statePath), HEARTBEAT_MS);
    const problems = await ctl.restore(resumed).finally(() => clearInterval(touch));
    for (const p of problems) log(`restore: ${p}`);
    const c = ctl.counts();
    log(`restored ${c.tunnels} tunnel(s) and ${c.sessions} session(s) from ${statePath}`);
  }
  if (opts.config !== undefined) {
    // Declarative configuration: a file that does not parse stops the start (systemd shows why).
    ctl.configSource = opts.config;
    try {
      logApply('config', await ctl.reloadConfig());
    } catch (e) {
      log(`config ${opts.config.path}: ${(e as Error).message}; not starting`);
      process.exit(1);
    }
  }
  let savedFingerprint = ctl.seqFingerprint();
  let dirty = loaded.kind === 'ok';
  // Group commit: a change marks the configuration dirty; it is written once the
  // request queue drains, before the replies of the requests it covers are sent
  // (see handleLine), so an acknowledged change is always on disk, and a burst
  // of N pipelined requests costs one write instead of N (which made creating
  // 10,000 sessions quadratic).
  ctl.onChange = () => {
    dirty = true;
  };
  let writtenAt = 0;
  let stopping = false;
  // A burst since the last write (more than half of what a restart would jump):
  // written at once, with the rate that burst makes. The check runs only while some
  // session is sequenced (as of the last write): an idle daemon should not wake
  // 40 times a second for nothing.
  let seqGuard: NodeJS.Timeout | undefined;
  const armSeqGuard = (): void => {
    if (ctl.hasSequenced() === (seqGuard !== undefined) || stopping) return;
    if (seqGuard !== undefined) {
      clearInterval(seqGuard);
      seqGuard = undefined;
      return;
    }
    seqGuard = setInterval(() => {
      if (!ctl.seqBurst()) return;
      ctl.sampleRates(Date.now());
      dirty = true;
      flushState();
    }, GUARD_MS);
    seqGuard.unref();
  };
  flushState = () => {
    if (!dirty) return;
    dirty = false;
    try {
      savedFingerprint = ctl.seqFingerprint();
      writtenAt = Date.now();
      writeStateFile(statePath, ctl.saved());
    } catch (e) {
      log(`cannot write state file: ${(e as Error).message}`);
    }
    armSeqGuard();
  };
  // Sequenced sessions (seq-restart.ts). Heartbeat: the sessions' send rates are
  // sampled, then the saved ns/nr are rewritten when they moved (so that a daemon
  // restarted after a crash continues close to where the peer is), else the state
  // file's mtime is touched: it says until when the daemon ran, and so could send.
  // An idle sequenced session is rewritten every IDLE_REWRITE_MS all the same: the
  // jump grows with the time since the last write, and must not reach the window.
  const heartbeat = setInterval(() => {
    const now = Date.now();
    ctl.sampleRates(now);
    const moved = ctl.seqFingerprint() !== savedFingerprint;
    if (queued === 0 && (moved || (ctl.hasSequenced() && now - writtenAt >= IDLE_REWRITE_MS))) {
      dirty = true;
      flushState();
      return;
    }
    touchStateFile(statePath);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  flushState();

  const path = socketPath();
  try {
    unlinkSync(path); // stale: we hold the namespace lock, so nobody else serves it
  } catch {
    /* absent */
  }
  const server = createServer({ allowHalfOpen: false }, (sock) => serve(sock, ctl, choice));
  server.maxConnections = MAX_CONNECTIONS; // further connections are closed at once
  const oldMask = process.umask(0o177);
  try {
    await listen(server, path);
  } finally {
    process.umask(oldMask);
  }
  chmodSync(path, 0o600);
  log(`listening on ${path}`);
  if (opts.metrics !== undefined) {
    // Everyday hook: the opt-in Prometheus endpoint (src/control/metrics.ts).
    try {
      const addr = parseListen(opts.metrics, opts.metricsAnyAddress === true);
      await startMetrics(addr, ctl, {
        version: VERSION,
        backend: choice.dp.name,
        captureDrops: () => captureHubOf(choice.dp)?.ringDrops ?? 0,
      });
      log(`metrics on http://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}/metrics`);
    } catch (e) {
      log(`cannot serve metrics on ${opts.metrics}: ${(e as Error).message}`);
      process.exit(1);
    }
  }

  /** Stop; `gone`: the namespace is gone for everybody, so its state goes too. */
  const stop = async (sig: string, gone = false) => {
    if (stopping) return;
    stopping = true;
    log(gone ? `${sig}: removing ${dir} and exiting` : `${sig}: stopping (configuration kept in ${statePath})`);
    clearInterval(seqGuard);
    clearInterval(heartbeat);
    server.close();
    try {
      await choice.dp.close();
    } catch (e) {
      log(`dataplane close: ${(e as Error).message}`);
    }
    if (gone) {
      rmSync(dir, { recursive: true, force: true });
    } else {
      dirty = true; // the final sequence state, read after the workers stopped
      flushState();
      try {
        unlinkSync(path);
      } catch {
        /* already gone */
      }
    }
    lock.close();
    if (logFd !== 2) closeSync(logFd);
    process.exit(0);
  };
  process.on('SIGHUP', () => {
    // Re-applied in the request queue, between requests, like `ul2tp daemon reload`.
    if (ctl.configSource === null) return log('SIGHUP: no --config, nothing to reload');
    queued++;
    queue = queue.then(async () => {
      try {
        logApply('SIGHUP: config', await ctl.reloadConfig());
      } catch (e) {
        log(`SIGHUP: config not applied: ${(e as Error).message}`);
      }
      settle();
    });
  });
  watchNetns((why) => void stop(why, true));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('uncaughtException', (e) => {
    logLimited(`internal error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  });
}

/** Requests are executed strictly one after another, whatever connection they come from. */
let queue: Promise<unknown> = Promise.resolve();
/** Requests waiting in or running from `queue`. */
let queued = 0;
/** Replies held until the state covering their changes is written (group commit). */
let held: Array<[Socket, unknown]> = [];
/** Writes the state file if the configuration changed (set by runDaemon). */
let flushState: () => void = () => {};

/**
 * Bounded connections: at most MAX_CONNECTIONS at a time; a request line
 * left unfinished for PARTIAL_LINE_MS, or a connection silent for IDLE_MS
 * with nothing in progress, is closed (a stalled or malicious client cannot
 * pile up file descriptors). Capture streams are exempt from IDLE_MS.
 */
export const MAX_CONNECTIONS = 256;
export const PARTIAL_LINE_MS = 10_000;
export const IDLE_MS = 600_000;
const streaming = new WeakSet<Socket>();

function serve(sock: Socket, ctl: Controller, choice: BackendChoice): void {
  let buf = '';
  let idleFor = 0;
  sock.setEncoding('utf8');
  sock.setTimeout(PARTIAL_LINE_MS);
  sock.on('timeout', () => {
    if ((pendingOf.get(sock) ?? 0) > 0 || streaming.has(sock)) return;
    idleFor += PARTIAL_LINE_MS;
    if (buf.length > 0 || idleFor >= IDLE_MS) sock.destroy();
  });
  sock.on('error', () => sock.destroy());
  sock.on('drain', () => throttle(sock));
  sock.on('data', (chunk: string) => {
    idleFor = 0;
    buf += chunk;
    if (buf.length > MAX_LINE && buf.indexOf('\n') < 0) {
      reply(sock, { id: null, ok: false, error: { code: 'PROTOCOL', message: `request longer than ${MAX_LINE} bytes` } });
      sock.end();
      sock.destroy();
      return;
    }
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.length > MAX_LINE) {
        reply(sock, { id: null, ok: false, error: { code: 'PROTOCOL', message: `request longer than ${MAX_LINE} bytes` } });
        continue;
      }
      handleLine(sock, line, ctl, choice);
    }
  });
}

/**
 * Flow control per connection: a client that sends requests faster than it
 * reads the replies must not make the daemon buffer without bound. We stop
 * reading its requests while MAX_PENDING of them wait for their turn, or while
 * more than REPLY_HIGH_WATER bytes of replies wait to be sent, and read again
 * once both are below. (At most one chunk of requests is parsed past the limit.)
 */
const MAX_PENDING = 64;
const REPLY_HIGH_WATER = 1 << 20;
const pendingOf = new WeakMap<Socket, number>();

function throttle(sock: Socket): void {
  if (sock.destroyed) return;
  const busy = (pendingOf.get(sock) ?? 0) >= MAX_PENDING || sock.writableLength > REPLY_HIGH_WATER;
  if (busy && !sock.isPaused()) sock.pause();
  else if (!busy && sock.isPaused()) sock.resume();
}

function reply(sock: Socket, msg: unknown): void {
  if (!sock.destroyed && sock.writable) sock.write(JSON.stringify(msg) + '\n');
  throttle(sock);
}

function handleLine(sock: Socket, line: string, ctl: Controller, choice: BackendChoice): void {
  let id: unknown = null;
  let req: ReturnType<typeof validateRequest>;
  try {
    const obj = JSON.parse(line) as { id?: unknown };
    id = obj && typeof obj === 'object' && typeof obj.id === 'number' ? obj.id : null;
    req = validateRequest(obj);
  } catch (e) {
    reply(sock, { id, ok: false, error: errorBody(e instanceof SyntaxError ? new L2tpError('PROTOCOL', 'request is not JSON') : e) });
    return;
  }
  if (req.op === 'capture') {
    // Everyday hook: the connection becomes a packet stream (src/control/capture.ts).
    streaming.add(sock);
    startCapture(sock, req.id, req.attrs as Record<string, unknown>, choice.dp, ctl);
    return;
  }
  pendingOf.set(sock, (pendingOf.get(sock) ?? 0) + 1);
  throttle(sock);
  queued++;
  queue = queue.then(async () => {
    let msg: unknown;
    try {
      const result = await execute(req.op, req.attrs as Record<string, unknown>, ctl, choice);
      msg = { id: req.id, ok: true, result };
    } catch (e) {
      msg = { id: req.id, ok: false, error: errorBody(e) };
    }
    held.push([sock, msg]);
    settle();
  });
}

/** One queued task is done: once the queue drains, write the state and send the held replies. */
function settle(): void {
  if (--queued > 0) return;
  flushState();
  const out = held;
  held = [];
  for (const [s, m] of out) {
    pendingOf.set(s, (pendingOf.get(s) ?? 1) - 1);
    reply(s, m);
  }
}

function logApply(what: string, r: ApplyResult): void {
  log(`${what}: ${r.added} added, ${r.removed} removed, ${r.kept} unchanged`);
  for (const p of r.problems) log(`${what}: ${p}`);
}

function errorBody(e: unknown): { code: string; errno?: string; message: string } {
  if (e instanceof L2tpError) return { code: e.code, errno: e.errno, message: e.message };
  logLimited(`request failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  return { code: 'DAEMON', message: e instanceof Error ? e.message : String(e) };
}

async function execute(op: string, attrs: Record<string, unknown>, ctl: Controller, choice: BackendChoice): Promise<unknown> {
  switch (op) {
    case 'tunnel_create':
      return ctl.tunnelCreate(attrs);
    case 'tunnel_delete':
      return ctl.tunnelDelete(attrs);
    case 'tunnel_get':
      return ctl.tunnelGet();
    case 'session_create':
      return ctl.sessionCreate(attrs);
    case 'session_delete':
      return ctl.sessionDelete(attrs);
    case 'session_get':
      return ctl.sessionGet();
    case 'impair':
      return impairOp(attrs, choice.dp); // everyday hook (src/control/capture.ts)
    case 'hello':
      return { protocol: PROTOCOL_VERSION, min_protocol: MIN_PROTOCOL_VERSION, version: VERSION, backend: choice.dp.name, ops: OPS };
    case 'batch':
      return ctl.batch(attrs as never);
    case 'config_reload': {
      const r = await ctl.reloadConfig();
      logApply('reload: config', r);
      return r;
    }
    case 'status':
      return {
        pid: process.pid,
        version: VERSION,
        protocol: PROTOCOL_VERSION,
        backend: choice.dp.name,
        ...(choice.dp.workers !== undefined ? { workers: choice.dp.workers, worker_threads: choice.dp.workerThreads ?? 2 } : {}),
        ...ctl.counts(),
        drops: ctl.orphanDrops(),
        uptime_s: Math.round(process.uptime()),
        run_dir: runDir(),
      };
    default:
      throw new L2tpError('PROTOCOL', `unknown op ${JSON.stringify(op)}`);
  }
}

/** Sets the state file's mtime to now: the daemon ran until then (seq-restart.ts). */
function touchStateFile(path: string): void {
  const now = Date.now() / 1000;
  try {
    lutimesSync(path, now, now);
  } catch {
    /* no state file yet */
  }
}

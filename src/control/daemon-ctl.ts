/**
 * `ul2tp daemon status` and `ul2tp daemon stop` (the CLI calls daemonCommand):
 * the namespace's daemon, seen from a client. Neither starts a daemon.
 *
 * status: exit 0 and one line (pid, backend and its worker pairs, uptime, counts, run directory)
 * when it runs, exit 3 ("not running", as LSB init scripts) when it does not.
 * stop: SIGTERM to the daemon, then wait until it has exited (it writes the
 * configuration, which the next command in the namespace restores); exit 0,
 * also when no daemon was running.
 */
import { dirname } from 'node:path';
import { connectDaemon } from './client.js';
import { workersText } from './options.js';
import { socketPath } from './paths.js';

export interface DaemonCtlIo {
  stdout(s: string): void;
  stderr(s: string): void;
}

interface Status {
  pid: number;
  backend: string;
  /** koffi worker pairs (absent with native-free, or from an older daemon). */
  workers?: number;
  /** Threads per worker (absent from an older daemon: 2). */
  worker_threads?: number;
  tunnels: number;
  sessions: number;
  uptime_s?: number;
}

const STOP_WAIT_MS = 15_000;

function isAbsent(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : '';
  return /ENOENT|ECONNREFUSED/.test(msg);
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function status(): Promise<Status | null> {
  let c;
  try {
    c = await connectDaemon({ autostart: false });
  } catch (e) {
    if (isAbsent(e)) return null;
    throw e;
  }
  try {
    return (await c.request('status', {})) as unknown as Status;
  } finally {
    c.close();
  }
}

/** Runs `ul2tp daemon <verb>`; resolves to the exit status. */
export async function daemonCommand(verb: 'status' | 'stop', io: DaemonCtlIo, json = false): Promise<number> {
  const dir = dirname(socketPath());
  let st: Status | null;
  try {
    st = await status();
  } catch (e) {
    io.stderr(`Error: ${(e as Error).message}\n`);
    return 1;
  }
  if (st === null) {
    if (json) io.stdout(JSON.stringify({ running: false, run_dir: dir }) + '\n');
    else io.stdout(`ul2tp daemon: not running (run directory ${dir})\n`);
    return verb === 'status' ? 3 : 0;
  }
  if (verb === 'status' && json) {
    io.stdout(
      JSON.stringify({ running: true, pid: st.pid, backend: st.backend, workers: st.workers ?? null, worker_threads: st.workers !== undefined ? (st.worker_threads ?? 2) : null, uptime_s: st.uptime_s ?? null, tunnels: st.tunnels, sessions: st.sessions, run_dir: dir }) + '\n',
    );
    return 0;
  }
  if (verb === 'status') {
    io.stdout(
      `ul2tp daemon: running, pid ${st.pid}, backend ${st.backend}${st.workers !== undefined ? ` (${workersText(st.workers, st.worker_threads)})` : ''}, uptime ${st.uptime_s ?? '?'} s, ` +
        `${st.tunnels} tunnel(s), ${st.sessions} session(s), run directory ${dir}\n`,
    );
    return 0;
  }
  try {
    process.kill(st.pid, 'SIGTERM');
  } catch (e) {
    io.stderr(`Error: cannot stop the ul2tp daemon (pid ${st.pid}): ${(e as Error).message}\n`);
    return 1;
  }
  const deadline = Date.now() + STOP_WAIT_MS;
  while (running(st.pid)) {
    if (Date.now() > deadline) {
      io.stderr(`Error: the ul2tp daemon (pid ${st.pid}) did not exit within ${STOP_WAIT_MS / 1000} s of SIGTERM\n`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (json) io.stdout(JSON.stringify({ stopped: true, pid: st.pid, run_dir: dir }) + '\n');
  else io.stdout(`ul2tp daemon: stopped (pid ${st.pid}); configuration kept in ${dir}/state.json\n`);
  return 0;
}

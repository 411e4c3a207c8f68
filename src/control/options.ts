/**
 * The daemon's dataplane options: built once, here, from the daemon's flags and
 * the environment, then handed down (io/select.ts → backend → workers). The only
 * place below the CLI that reads these environment variables:
 *   UL2TP_BACKEND=koffi|native-free   force a backend (flag: --backend)
 *   UL2TP_OFFLOAD=0|off|no|false      plain TAPs, no TSO/coalescing (flag: --no-offload)
 *   UL2TP_UDP_GSO=0                   no UDP GSO on send (koffi, offload on)
 *   UL2TP_UDP_GRO=0                   no UDP GRO on receive (koffi, offload on)
 *   UL2TP_NF_READER=event|worker|poll native-free session reader
 *   UL2TP_WORKERS=N                   koffi workers, 1..64 (flag: --workers; default from the core count)
 *   UL2TP_WORKER_THREADS=1|2          koffi threads per worker (flag: --worker-threads; default 1 up to 2 cores, else 2)
 */
import { availableParallelism } from 'node:os';
import { DEFAULT_DATAPLANE_OPTIONS, defaultWorkers, defaultWorkerThreads, MAX_WORKERS, MIN_WORKERS, type DataplaneOptions, type ReaderKind } from '../io/options.js';

/** The daemon flags that shape the dataplane. */
export interface DataplaneFlags {
  backend?: string;
  /** false for --no-offload. */
  offload?: boolean;
  /** --workers N (text as given; checked by parseWorkers). */
  workers?: string | number;
  /** --worker-threads 1|2 (text as given; checked by parseWorkerThreads). */
  workerThreads?: string | number;
}

/**
 * A worker-pair count from the flag or the environment: a decimal integer in
 * MIN_WORKERS..MAX_WORKERS. Throws an Error naming `what` otherwise.
 */
export function parseWorkers(v: string | number, what: string): number {
  const t = String(v).trim();
  const n = /^[0-9]+$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(n) || n < MIN_WORKERS || n > MAX_WORKERS) {
    throw new Error(`${what} must be an integer from ${MIN_WORKERS} to ${MAX_WORKERS}, not ${JSON.stringify(String(v))}`);
  }
  return n;
}

/** Threads per worker from the flag or the environment: 1 or 2. Throws an Error naming `what` otherwise. */
export function parseWorkerThreads(v: string | number, what: string): 1 | 2 {
  const t = String(v).trim();
  if (t === '1' || t === '2') return t === '1' ? 1 : 2;
  throw new Error(`${what} must be 1 or 2, not ${JSON.stringify(String(v))}`);
}

/** The flag's value if given, else the environment's if not blank, else the default; `parse` names the source it rejects. */
function flagEnvDefault<T>(
  flag: string | number | undefined,
  flagName: string,
  envValue: string | undefined,
  envName: string,
  parse: (v: string | number, what: string) => T,
  dflt: () => T,
): T {
  if (flag !== undefined) return parse(flag, flagName);
  if (envValue !== undefined && envValue.trim() !== '') return parse(envValue, envName);
  return dflt();
}

function isOff(v: string | undefined): boolean {
  const t = (v ?? '').trim().toLowerCase();
  return t === '0' || t === 'off' || t === 'no' || t === 'false';
}

function readerFrom(v: string | undefined): ReaderKind {
  return v === 'worker' || v === 'poll' ? v : DEFAULT_DATAPLANE_OPTIONS.nfReader;
}

/**
 * Flags win over the environment; the environment over the defaults. `cores` is the
 * CPU count the default worker count comes from. Throws on a bad worker count.
 */
export function dataplaneOptionsFrom(flags: DataplaneFlags, env: NodeJS.ProcessEnv, cores = availableParallelism()): DataplaneOptions {
  const backend = flags.backend ?? (env.UL2TP_BACKEND || undefined);
  const workers = flagEnvDefault(flags.workers, '--workers', env.UL2TP_WORKERS, 'UL2TP_WORKERS', parseWorkers, () => defaultWorkers(cores));
  const workerThreads = flagEnvDefault(flags.workerThreads, '--worker-threads', env.UL2TP_WORKER_THREADS, 'UL2TP_WORKER_THREADS', parseWorkerThreads, () => defaultWorkerThreads(cores));
  return {
    backend,
    offload: flags.offload === false ? false : !isOff(env.UL2TP_OFFLOAD),
    udpGso: env.UL2TP_UDP_GSO !== '0',
    udpGro: env.UL2TP_UDP_GRO !== '0',
    nfReader: readerFrom(env.UL2TP_NF_READER),
    workers,
    workerThreads,
  };
}

/** "1 worker pair", "4 worker pairs", "2 workers, one thread each": for the daemon's log and status. */
export function workersText(workers: number, threads: number | undefined): string {
  return threads === 1 ? `${workers} worker${workers === 1 ? '' : 's'}, one thread each` : `${workers} worker pair${workers === 1 ? '' : 's'}`;
}

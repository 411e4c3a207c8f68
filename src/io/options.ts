/**
 * Dataplane settings, built once by the daemon (control/options.ts, from its flags and
 * the environment) and handed down to the backend and its workers. Nothing below the
 * control layer reads process.env.
 */

/** How the native-free backend reads a session's device: main-thread events, a worker thread, or a polling worker. */
export type ReaderKind = 'event' | 'worker' | 'poll';

export interface DataplaneOptions {
  /** Force a backend ('koffi' or 'native-free'); undefined = koffi when it loads, else native-free. */
  readonly backend: string | undefined;
  /** koffi: session TAPs with IFF_VNET_HDR and TSO/checksum offloads (segmented on send, coalesced on receive). */
  readonly offload: boolean;
  /** koffi, with offload: UDP GSO on tunnels that send UDP checksums. */
  readonly udpGso: boolean;
  /** koffi, with offload: UDP GRO on tunnel sockets. */
  readonly udpGro: boolean;
  /** native-free: session reader kind. */
  readonly nfReader: ReaderKind;
  /** koffi: workers (a tx and an rx thread each, or one thread: see workerThreads); tunnels are spread over them. */
  readonly workers: number;
  /**
   * koffi: threads per worker. 2: a tx thread (TAP reads, sends) and an rx thread (socket
   * reads, TAP writes), so both directions of a tunnel can use a core each. 1: one thread
   * does both, so that a reply or TCP ACK the receive path provokes is sent in the same
   * wake-up instead of waking a second thread. Default: defaultWorkerThreads.
   */
  readonly workerThreads: 1 | 2;
}

/** Bounds of DataplaneOptions.workers. */
export const MIN_WORKERS = 1;
export const MAX_WORKERS = 64;
/** The default never starts more pairs than this, however many cores there are. */
export const DEFAULT_WORKERS_CAP = 8;

/**
 * The default number of worker pairs for `cores` CPUs: one pair (already two threads) up
 * to 2 cores, else one pair per two cores, at most DEFAULT_WORKERS_CAP.
 */
export function defaultWorkers(cores: number): number {
  if (!(cores > 2)) return 1;
  return Math.min(DEFAULT_WORKERS_CAP, Math.floor(cores / 2));
}

/**
 * The default threads per worker for `cores` CPUs: 1 up to 2 cores, where a second thread
 * per tunnel only competes with the applications and the other direction's kernel work for
 * the same cores (measured: less CPU per byte, more throughput, shorter round trips, and
 * two-way bulk traffic no slower), else 2.
 */
export function defaultWorkerThreads(cores: number): 1 | 2 {
  return cores > 2 ? 2 : 1;
}

/** The defaults of a machine with up to 2 cores (the daemon takes its worker counts from the cores it has). */
export const DEFAULT_DATAPLANE_OPTIONS: DataplaneOptions = Object.freeze({
  backend: undefined,
  offload: true,
  udpGso: true,
  udpGro: true,
  nfReader: 'event',
  workers: 1,
  workerThreads: 1,
});

/** Defaults with some fields replaced (tests, benches). */
export function dataplaneOptions(over: Partial<DataplaneOptions> = {}): DataplaneOptions {
  return { ...DEFAULT_DATAPLANE_OPTIONS, ...over };
}

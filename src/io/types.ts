import type { SessionConfig, TunnelConfig } from '../engine/config.js';
import type { CaptureRing } from './capture-ring.js';
import type { ImpairConfig } from '../engine/impair.js';

/**
 * A dataplane backend: owns the packet I/O for every tunnel and session of
 * one daemon. The daemon validates ids (engine/table.ts) before calling it.
 * Methods throw L2tpError (KERNEL with an errno) when the OS refuses
 * (EADDRINUSE, EADDRNOTAVAIL, ...); on a throw nothing is left behind.
 */
export interface Dataplane {
  /** Backend name shown in status lines: 'koffi' or 'native-free'. */
  readonly name: string;
  /** Counter slots; see engine/stats.ts. Tunnel and session slots are assigned by the backend. */
  readonly stats: Float64Array;
  /** Worker pairs moving packets (koffi); absent where the backend has none. */
  readonly workers?: number;
  /** Threads per worker (koffi): 2 (a tx and an rx thread) or 1 (one thread, both directions). */
  readonly workerThreads?: 1 | 2;
  /** Slot for drops that belong to no tunnel (IP encap); absent = slot 0. */
  readonly orphanBase?: number;
  addTunnel(cfg: TunnelConfig): Promise<TunnelHandle>;
  /** Creates (or adopts, when persistent and present) the session interface `cfg.ifname`, DOWN. */
  addSession(cfg: SessionConfig, mtu: number): Promise<SessionHandle>;
  removeSession(tunnelId: number, sessionId: number): Promise<void>;
  removeTunnel(tunnelId: number): Promise<void>;
  /** Removes several sessions at once (koffi: their interfaces in one rtnetlink batch, one RCU wait). */
  removeSessions(keys: ReadonlyArray<readonly [number, number]>): Promise<void>;
  close(): Promise<void>;
  /** What this backend can do beyond moving packets; the daemon refuses the rest with a clear error. */
  readonly features: DataplaneFeatures;
  /** Capture rings the workers fill while `ctl[0]` is non-zero (empty without `features.capture`). */
  readonly captureRings: readonly CaptureRing[];
  /** Sets or clears (null) a session's transmit impairment (only with `features.impair`). */
  setImpairment(tunnelId: number, sessionId: number, cfg: ImpairConfig | null): Promise<void>;
  /** The session's active impairment (null = none). */
  impairment(tunnelId: number, sessionId: number): ImpairConfig | null;
}

export interface DataplaneFeatures {
  readonly capture: boolean;
  readonly impair: boolean;
}

export interface TunnelHandle {
  /** Base index of the tunnel's slot in `stats`. */
  readonly statsBase: number;
}

export interface SessionHandle {
  readonly statsBase: number;
  readonly ifname: string;
}

/** Messages between the koffi dataplane (main thread) and its workers. */
import type { SessionConfig, TunnelConfig } from '../../engine/config.js';
import type { ImpairConfig } from '../../engine/impair.js';
import type { DataplaneOptions } from '../options.js';

export interface WorkerInit {
  /** 'tx' and 'rx': the two threads of a worker pair; 'io': one thread that does both. */
  role: 'tx' | 'rx' | 'io';
  /** Worker number (0-based); the thread is named ul2tp-<role><index>. */
  index: number;
  /** engine/stats.ts slots, shared with the main thread. */
  stats: SharedArrayBuffer;
  /** Slot for drops that belong to no tunnel (IP encap: unknown session, control). */
  orphanBase: number;
  /** eventfd the main thread signals after posting a command. */
  evfd: number;
  /** Capture ring (src/io/capture-ring.ts) this worker writes to while a capture runs. */
  capture?: SharedArrayBuffer;
  /** The daemon's dataplane options. */
  options: DataplaneOptions;
}

export type WorkerCommand =
  /** own: this worker reads the tunnel's socket (rx and io roles; tx ignores it). */
  | { seq: number; op: 'addTunnel'; cfg: TunnelConfig; base: number; fd: number; own: boolean }
  | { seq: number; op: 'delTunnel'; tunnelId: number }
  /** vnet: TAP opened with IFF_VNET_HDR; own: this worker reads the TAP (tx and io roles; rx ignores it). */
  | { seq: number; op: 'addSession'; cfg: SessionConfig; base: number; fd: number; vnet: boolean; own: boolean }
  | { seq: number; op: 'delSession'; tunnelId: number; sessionId: number }
  | { seq: number; op: 'impair'; tunnelId: number; sessionId: number; cfg: ImpairConfig | null }
  | { seq: number; op: 'stop' };

export interface WorkerReply {
  seq: number;
  error?: string;
}

/**
 * A tunnel's run-time state (the kernel's struct l2tp_tunnel). The config is
 * immutable; counters live in `stats[base .. base + SLOT_SIZE)`.
 */
import type { TunnelConfig } from './config.js';
import type { Session } from './session.js';

export class Tunnel {
  readonly cfg: TunnelConfig;
  readonly tunnelId: number;
  /** encap udp (true) or ip (false), cached for the hot path. */
  readonly isUdp: boolean;
  readonly stats: Float64Array;
  readonly base: number;
  /** This tunnel's sessions by session id. Changed by the control plane only (Table). */
  readonly sessions: Map<number, Session> = new Map();
  /** One-entry lookup cache of this tunnel's own sessions (Table keeps it valid). -1 = empty. */
  cacheSid = -1;
  cacheSession: Session | null = null;
  /** The I/O layer's handle (e.g. socket fd); -1 when none. */
  dev = -1;
  /** Free for the backend. */
  ctx: unknown = null;

  constructor(cfg: TunnelConfig, stats: Float64Array, base: number) {
    this.cfg = cfg;
    this.tunnelId = cfg.tunnelId >>> 0;
    this.isUdp = cfg.encap === 'udp';
    this.stats = stats;
    this.base = base;
  }
}

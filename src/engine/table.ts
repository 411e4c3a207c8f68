/**
 * Tunnel and session tables with the kernel's id rules (docs/protocol.md §5):
 * - tunnel ids are unique per namespace;
 * - session ids are unique within a tunnel; the same id may be used in
 *   different UDP tunnels;
 * - an IP-encap session id is unique across all sessions of the namespace:
 *   a new IP-encap session collides with any session with that id, and a new
 *   UDP session collides with an existing IP-encap one.
 * Errors are kernelError('EEXIST' | 'ENODEV'); a failed call changes nothing.
 *
 * Control-plane methods (add/remove) may allocate; lookups (lookupUdp,
 * lookupIp) are allocation-free and used per packet.
 */
import type { SessionConfig, TunnelConfig } from './config.js';
import { kernelError } from '../errors.js';
import { newSlot } from './stats.js';
import { purge, Session } from './session.js';
import { Tunnel } from './tunnel.js';

export class Table {
  private readonly byTunnelId = new Map<number, Tunnel>();
  /** Every session by session id (several UDP tunnels may share one). */
  private readonly byId = new Map<number, Session[]>();
  /** IP-encap sessions by session id (unique). */
  private readonly ipById = new Map<number, Session>();
  /** Namespace-level drops with no tunnel (IP encap: short, control, unknown session). */
  readonly orphan: Float64Array;

  constructor(orphan: Float64Array = newSlot()) {
    this.orphan = orphan;
  }

  /** Throws EEXIST when the tunnel id is taken. */
  checkTunnel(cfg: TunnelConfig): void {
    if (this.byTunnelId.has(cfg.tunnelId >>> 0)) throw kernelError('EEXIST');
  }

  /** Throws ENODEV (no such tunnel) or EEXIST (session id rules). */
  checkSession(cfg: SessionConfig): void {
    const t = this.byTunnelId.get(cfg.tunnelId >>> 0);
    if (!t) throw kernelError('ENODEV');
    const sid = cfg.sessionId >>> 0;
    if (t.sessions.has(sid)) throw kernelError('EEXIST');
    if (t.isUdp) {
      if (this.ipById.has(sid)) throw kernelError('EEXIST');
    } else if (this.byId.has(sid)) {
      throw kernelError('EEXIST');
    }
  }

  /**
   * Add a tunnel: either a prebuilt Tunnel, or a config plus its counter
   * slot (a fresh standalone slot when omitted). Throws like checkTunnel.
   */
  addTunnel(cfgOrTunnel: TunnelConfig | Tunnel, stats?: Float64Array, base = 0): Tunnel {
    const t = cfgOrTunnel instanceof Tunnel ? cfgOrTunnel : new Tunnel(cfgOrTunnel, stats ?? newSlot(), base);
    this.checkTunnel(t.cfg);
    this.byTunnelId.set(t.tunnelId, t);
    return t;
  }

  /**
   * Add a session: either a prebuilt Session (its tunnel must be the one in
   * this table), or a config plus its counter slot. Throws like checkSession.
   */
  addSession(cfgOrSession: SessionConfig | Session, stats?: Float64Array, base = 0): Session {
    const cfg = cfgOrSession instanceof Session ? cfgOrSession.cfg : cfgOrSession;
    this.checkSession(cfg);
    const t = this.byTunnelId.get(cfg.tunnelId >>> 0)!;
    let s: Session;
    if (cfgOrSession instanceof Session) {
      if (cfgOrSession.tunnel !== t) throw kernelError('ENODEV', 'session built for another tunnel object');
      s = cfgOrSession;
    } else {
      s = new Session(cfg, t, stats ?? newSlot(), base);
    }
    t.sessions.set(s.sessionId, s);
    const list = this.byId.get(s.sessionId);
    if (list) list.push(s);
    else this.byId.set(s.sessionId, [s]);
    if (!t.isUdp) this.ipById.set(s.sessionId, s);
    return s;
  }

  /** Remove a session; its queued packets are purged (counted in rx_errors). Throws ENODEV. */
  removeSession(tunnelId: number, sessionId: number): Session {
    const t = this.byTunnelId.get(tunnelId >>> 0);
    const s = t?.sessions.get(sessionId >>> 0);
    if (!t || !s) throw kernelError('ENODEV');
    this.unlink(s);
    return s;
  }

  /** Remove a tunnel and all its sessions (purged); returns the removed sessions. Throws ENODEV. */
  removeTunnel(tunnelId: number): Session[] {
    const t = this.byTunnelId.get(tunnelId >>> 0);
    if (!t) throw kernelError('ENODEV');
    const removed = [...t.sessions.values()].sort((a, b) => a.sessionId - b.sessionId);
    for (const s of removed) this.unlink(s);
    this.byTunnelId.delete(t.tunnelId);
    return removed;
  }

  private unlink(s: Session): void {
    const t = s.tunnel;
    purge(s);
    t.sessions.delete(s.sessionId);
    if (t.cacheSession === s) {
      t.cacheSid = -1;
      t.cacheSession = null;
    }
    const list = this.byId.get(s.sessionId);
    if (list) {
      const i = list.indexOf(s);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byId.delete(s.sessionId);
    }
    if (this.ipById.get(s.sessionId) === s) this.ipById.delete(s.sessionId);
  }

  getTunnel(tunnelId: number): Tunnel | undefined {
    return this.byTunnelId.get(tunnelId >>> 0);
  }

  getSession(tunnelId: number, sessionId: number): Session | undefined {
    return this.byTunnelId.get(tunnelId >>> 0)?.sessions.get(sessionId >>> 0);
  }

  /**
   * UDP receive lookup, as current kernels do (l2tp_v3_session_get): the
   * receiving tunnel's own session first; otherwise the session with that id
   * if it is the only one in the namespace (when several tunnels share the
   * id, only the receiving tunnel's counts). Allocation-free.
   */
  lookupUdp(tunnel: Tunnel, sessionId: number): Session | undefined {
    if (sessionId === tunnel.cacheSid) return tunnel.cacheSession!;
    const own = tunnel.sessions.get(sessionId);
    if (own !== undefined) {
      tunnel.cacheSid = sessionId;
      tunnel.cacheSession = own;
      return own;
    }
    const list = this.byId.get(sessionId);
    if (list !== undefined && list.length === 1) return list[0];
    return undefined;
  }

  /** IP receive lookup: global, IP-encap sessions only. Allocation-free. */
  lookupIp(sessionId: number): Session | undefined {
    return this.ipById.get(sessionId);
  }

  /** Tunnels ascending by id. */
  tunnels(): Tunnel[] {
    return [...this.byTunnelId.values()].sort((a, b) => a.tunnelId - b.tunnelId);
  }

  /** Sessions grouped by tunnel (ascending), then by session id ascending. */
  sessions(): Session[] {
    const out: Session[] = [];
    for (const t of this.tunnels()) {
      const ss = [...t.sessions.values()].sort((a, b) => a.sessionId - b.sessionId);
      for (const s of ss) out.push(s);
    }
    return out;
  }

  get tunnelCount(): number {
    return this.byTunnelId.size;
  }
}

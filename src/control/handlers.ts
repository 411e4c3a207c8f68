/**
 * The daemon's control operations: validate once, build a *Config, check the
 * kernel's id rules in the engine table, then ask the dataplane backend for
 * the sockets and interfaces. Mirrors the kernel's genetlink commands
 * (tunnel_create, session_get, ...); attribute names are iproute2's keys.
 *
 * Requests are handled one at a time (the daemon serialises them), so the
 * check-then-create sequences below cannot race with each other.
 */
import { L2tpError, kernelError } from '../errors.js';
import {
  SESSION_DEFAULTS,
  TUNNEL_DEFAULTS,
  type Encap,
  type L2specType,
  type SessionConfig,
  type TunnelConfig,
} from '../engine/config.js';
import { Session } from '../engine/session.js';
import { Table } from '../engine/table.js';
import { Tunnel } from '../engine/tunnel.js';
import { NR_SHADOW, NS_SHADOW, RECV_SEQ, SEND_SEQ, readCounters, readExtraCounters, type Counters, type ExtraCounters } from '../engine/stats.js';
import type { Dataplane } from '../io/types.js';
import type { SessionInfo, TunnelInfo } from './protocol.js';
import { parseAddress } from './address.js';
import { impairToJson, type ImpairJson } from '../io/impair.js';
import { allocIfname, defaultSessionMtu, interfaceExists, pathMtu, releaseIfname } from './netinfo.js';

/** What the state file holds: enough to rebuild every tunnel and session. */
export interface SavedState {
  version: 1;
  tunnels: TunnelConfig[];
  sessions: SessionConfig[];
}

type Attrs = Record<string, unknown>;

const num = (a: Attrs, k: string, dflt = 0): number => (typeof a[k] === 'number' ? (a[k] as number) : dflt);
const bool = (a: Attrs, k: string, dflt: boolean): boolean => (typeof a[k] === 'boolean' ? (a[k] as boolean) : dflt);
const str = (a: Attrs, k: string, dflt = ''): string => (typeof a[k] === 'string' ? (a[k] as string) : dflt);

/** Parse an address (inet_pton); IPv4-mapped IPv6 counts as IPv4. */
function parseAddr(text: string): { family: 4 | 6; text: string } {
  const a = parseAddress(text);
  if (a === null) throw kernelError('EINVAL', `bad address ${JSON.stringify(text)}`);
  return { family: a.family, text: a.text };
}

export function tunnelConfigFrom(a: Attrs): TunnelConfig {
  const local = parseAddr(str(a, 'local'));
  const remote = parseAddr(str(a, 'remote'));
  if (local.family !== remote.family) throw kernelError('EINVAL');
  const encap = (str(a, 'encap', TUNNEL_DEFAULTS.encap) === 'ip' ? 'ip' : 'udp') as Encap;
  return {
    tunnelId: num(a, 'tunnel_id'),
    peerTunnelId: num(a, 'peer_tunnel_id'),
    encap,
    family: local.family,
    local: local.text,
    remote: remote.text,
    udpSport: encap === 'udp' ? num(a, 'udp_sport') : 0,
    udpDport: encap === 'udp' ? num(a, 'udp_dport') : 0,
    udpCsum: bool(a, 'udp_csum', TUNNEL_DEFAULTS.udpCsum),
    udp6CsumTx: bool(a, 'udp6_csum_tx', TUNNEL_DEFAULTS.udp6CsumTx),
    udp6CsumRx: bool(a, 'udp6_csum_rx', TUNNEL_DEFAULTS.udp6CsumRx),
  };
}

export function sessionConfigFrom(a: Attrs, ifname: string): SessionConfig {
  return {
    tunnelId: num(a, 'tunnel_id'),
    sessionId: num(a, 'session_id'),
    peerSessionId: num(a, 'peer_session_id'),
    ifname,
    cookie: str(a, 'cookie').toLowerCase(),
    peerCookie: str(a, 'peer_cookie').toLowerCase(),
    l2specType: str(a, 'l2spec_type', SESSION_DEFAULTS.l2specType) === 'none' ? 'none' : 'default',
    sendSeq: bool(a, 'send_seq', false),
    recvSeq: bool(a, 'recv_seq', false),
    reorderTimeoutMs: num(a, 'reorder_timeout', 0),
  };
}

interface TunnelRecord {
  cfg: TunnelConfig;
  tunnel: Tunnel;
  pathMtu: number;
}

export class Controller {
  private readonly table = new Table();
  private readonly tunnelRecs = new Map<number, TunnelRecord>();
  private readonly sessionCfgs = new Map<string, SessionConfig>();
  /** Called after every successful change (the daemon writes the state file). */
  onChange: () => void = () => {};

  constructor(readonly dp: Dataplane) {}

  private static key(tid: number, sid: number): string {
    return `${tid}/${sid}`;
  }

  async tunnelCreate(a: Attrs): Promise<Record<string, never>> {
    await this.createTunnel(tunnelConfigFrom(a));
    this.onChange();
    return {};
  }

  private async createTunnel(cfg: TunnelConfig): Promise<void> {
    this.table.checkTunnel(cfg);
    const h = await this.dp.addTunnel(cfg);
    const tunnel = new Tunnel(cfg, this.dp.stats, h.statsBase);
    this.table.addTunnel(tunnel);
    this.tunnelRecs.set(cfg.tunnelId, { cfg, tunnel, pathMtu: pathMtu(cfg.remote, cfg.local) });
  }

  async tunnelDelete(a: Attrs): Promise<Record<string, never>> {
    const tid = num(a, 'tunnel_id');
    if (!this.tunnelRecs.has(tid)) throw kernelError('ENODEV');
    // Deletion is synchronous (SPEC.md §5 recommends it): sessions and their
    // interfaces are gone when the reply is sent, so the id can be reused at once.
    await this.dp.removeTunnel(tid);
    for (const s of this.table.removeTunnel(tid)) {
      this.sessionCfgs.delete(Controller.key(tid, s.cfg.sessionId));
      releaseIfname(s.cfg.ifname);
    }
    this.tunnelRecs.delete(tid);
    this.onChange();
    return {};
  }

  async sessionCreate(a: Attrs): Promise<{ ifname: string }> {
    const tid = num(a, 'tunnel_id');
    const rec = this.tunnelRecs.get(tid);
    if (!rec) throw kernelError('ENODEV');
    const probe = sessionConfigFrom(a, '');
    this.table.checkSession(probe);
    const requested = str(a, 'name');
    // The kernel's dev_valid_name also refuses ':' (iproute2's check lets it through).
    if (requested.includes(':')) throw kernelError('EINVAL');
    let ifname: string;
    if (requested && !requested.includes('%d')) {
      if (interfaceExists(requested)) throw kernelError('EEXIST');
      ifname = requested;
    } else {
      ifname = allocIfname(requested || 'l2tpeth%d');
    }
    const cfg: SessionConfig = { ...probe, ifname };
    await this.createSession(cfg, rec);
    this.onChange();
    return { ifname };
  }

  private async createSession(cfg: SessionConfig, rec: TunnelRecord): Promise<void> {
    const mtu = defaultSessionMtu(rec.cfg.encap, rec.cfg.family, cfg.cookie.length / 2, cfg.l2specType, rec.pathMtu);
    const h = await this.dp.addSession(cfg, mtu);
    const stored: SessionConfig = h.ifname === cfg.ifname ? cfg : { ...cfg, ifname: h.ifname };
    const s = new Session(stored, rec.tunnel, this.dp.stats, h.statsBase);
    this.table.addSession(s);
    this.sessionCfgs.set(Controller.key(cfg.tunnelId, cfg.sessionId), stored);
  }

  async sessionDelete(a: Attrs): Promise<Record<string, never>> {
    const tid = num(a, 'tunnel_id');
    const sid = num(a, 'session_id');
    if (!this.table.getSession(tid, sid)) throw kernelError('ENODEV');
    await this.dp.removeSession(tid, sid);
    const s = this.table.removeSession(tid, sid);
    this.sessionCfgs.delete(Controller.key(tid, sid));
    if (s) releaseIfname(s.cfg.ifname);
    this.onChange();
    return {};
  }

  tunnelGet(): { tunnels: TunnelInfo[] } {
    const tunnels: TunnelInfo[] = [];
    for (const t of this.table.tunnels()) {
      const c = t.cfg;
      tunnels.push({
        tunnel_id: c.tunnelId,
        peer_tunnel_id: c.peerTunnelId,
        encap: c.encap,
        family: c.family,
        local: c.local,
        remote: c.remote,
        udp_sport: c.udpSport,
        udp_dport: c.udpDport,
        udp_csum: c.udpCsum,
        udp6_csum_tx: c.udp6CsumTx,
        udp6_csum_rx: c.udp6CsumRx,
        stats: readCounters(this.dp.stats, t.base),
        drops: readExtraCounters(this.dp.stats, t.base),
      });
    }
    return { tunnels };
  }

  sessionGet(): { sessions: SessionInfo[] } {
    const sessions: SessionInfo[] = [];
    const st = this.dp.stats;
    for (const s of this.table.sessions()) {
      const c = s.cfg;
      sessions.push({
        tunnel_id: c.tunnelId,
        session_id: c.sessionId,
        peer_session_id: c.peerSessionId,
        peer_tunnel_id: s.tunnel.cfg.peerTunnelId,
        ifname: c.ifname,
        cookie: c.cookie,
        peer_cookie: c.peerCookie,
        l2spec_type: c.l2specType,
        send_seq: st[s.base + SEND_SEQ] !== 0,
        recv_seq: st[s.base + RECV_SEQ] !== 0,
        reorder_timeout: c.reorderTimeoutMs,
        stats: readCounters(st, s.base),
        drops: readExtraCounters(st, s.base),
      });
      const imp = this.dp.impairment?.(c.tunnelId, c.sessionId); // everyday hook (src/io/impair.ts)
      if (imp) sessions[sessions.length - 1].impairment = impairToJson(imp);
    }
    return { sessions };
  }

  /** The configuration to persist (tunnels ascending, then their sessions). */
  saved(): SavedState {
    const tunnels: TunnelConfig[] = [];
    const sessions: SessionConfig[] = [];
    const st = this.dp.stats;
    for (const t of this.table.tunnels()) tunnels.push(t.cfg);
    for (const s of this.table.sessions()) {
      const c = this.sessionCfgs.get(Controller.key(s.cfg.tunnelId, s.cfg.sessionId));
      if (!c) continue;
      const ns = st[s.base + NS_SHADOW];
      const nr = st[s.base + NR_SHADOW];
      if (ns === 0 && nr === 0 && c.initialNs === undefined) {
        sessions.push(c);
        continue;
      }
      // Unchanged since the restore that set it: already advanced past anything sent.
      const nsAhead = c.initialNs !== undefined && c.nsAhead === true && ns === c.initialNs;
      sessions.push({ ...c, initialNs: ns, initialNr: nr, nsAhead: nsAhead || undefined });
    }
    return { version: 1, tunnels, sessions };
  }

  /** A number that changes whenever a session's sequence state does (cheap; for periodic saves). */
  seqFingerprint(): number {
    const st = this.dp.stats;
    let f = 0;
    for (const s of this.table.sessions()) f = (f * 31 + st[s.base + NS_SHADOW] * 7 + st[s.base + NR_SHADOW]) % 2147483647;
    return f;
  }

  /**
   * Rebuild from a state file. Persistent session interfaces are adopted by the
   * backend, so addresses, MTU, up state and bridge membership survive. Returns
   * one line per object that could not be restored (the rest still comes back).
   */
  async restore(state: SavedState): Promise<string[]> {
    const problems: string[] = [];
    for (const cfg of state.tunnels) {
      try {
        await this.createTunnel(cfg);
      } catch (e) {
        problems.push(`tunnel ${cfg.tunnelId}: ${(e as Error).message}`);
      }
    }
    for (const cfg of state.sessions) {
      const rec = this.tunnelRecs.get(cfg.tunnelId);
      if (!rec) {
        problems.push(`session ${cfg.sessionId} in tunnel ${cfg.tunnelId}: its tunnel was not restored`);
        continue;
      }
      try {
        this.table.checkSession(cfg);
        await this.createSession(resumeSequence(cfg), rec);
      } catch (e) {
        problems.push(`session ${cfg.sessionId} in tunnel ${cfg.tunnelId}: ${(e as Error).message}`);
      }
    }
    return problems;
  }

  /** Namespace-level drops that belong to no tunnel (IP encap: unknown session, control). */
  orphanDrops(): ExtraCounters {
    return readExtraCounters(this.dp.stats, this.dp.orphanBase ?? 0);
  }

  counts(): { tunnels: number; sessions: number } {
    return { tunnels: this.tunnelRecs.size, sessions: this.sessionCfgs.size };
  }
}

/**
 * Sequence numbers after a restart (the kernel never restarts, so it has no
 * rule for this). The peer's nr has moved past the ns we saved (up to a save
 * interval of traffic), so restarting from the saved ns would put every
 * packet behind its window until the numbers caught up. Jumping 2^22 ahead
 * lands inside its forward window (0x7FFFFF): the peer drops ~5 packets as
 * out of sequence, then resyncs (SPEC.md §2.6). nr restarts at the saved
 * value with reorder_skip set, so the peer's next packet in the window resyncs it.
 */
const NS_RESTART_JUMP = 1 << 22;

function resumeSequence(cfg: SessionConfig): SessionConfig {
  if (cfg.nsAhead === true) return cfg;
  // No saved ns means none was sent before the last save, not that none was sent
  // before the crash (a session killed within a second of its first packets):
  // jump from 0 as well, or every packet would land behind the peer's window.
  // A session that never sends sequence numbers is not affected by its ns.
  return { ...cfg, initialNs: ((cfg.initialNs ?? 0) + NS_RESTART_JUMP) & 0xffffff, nsAhead: true };
}

/** Validate the shape of a state file; throws a plain Error saying what is wrong. */
export function checkSavedState(x: unknown): SavedState {
  const o = x as SavedState;
  if (!o || typeof o !== 'object' || o.version !== 1 || !Array.isArray(o.tunnels) || !Array.isArray(o.sessions)) {
    throw new Error('not a ul2tp state file (version 1 with tunnels and sessions)');
  }
  for (const t of o.tunnels) {
    if (!t || typeof t.tunnelId !== 'number' || typeof t.local !== 'string' || typeof t.remote !== 'string') {
      throw new Error('a tunnel entry is malformed');
    }
  }
  for (const s of o.sessions) {
    if (!s || typeof s.tunnelId !== 'number' || typeof s.sessionId !== 'number' || typeof s.ifname !== 'string') {
      throw new Error('a session entry is malformed');
    }
  }
  return o;
}

export { L2tpError };

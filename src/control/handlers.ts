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
  sendsUdpChecksums,
  type SessionConfig,
  type TunnelConfig,
} from '../engine/config.js';
import { Session } from '../engine/session.js';
import { Table } from '../engine/table.js';
import { Tunnel } from '../engine/tunnel.js';
import { NR_SHADOW, NS_SHADOW, RECV_SEQ, SEND_SEQ, readCounters, readExtraCounters, type ExtraCounters } from '../engine/stats.js';
import { seqDelta } from '../engine/seq.js';
import type { Dataplane } from '../io/types.js';
import type { BatchAttrs, BatchOutcome, BatchRequest, SessionInfo, TunnelInfo } from './protocol.js';
import { errorBody } from './validate.js';
import { parseAddress } from '../wire/address.js';
import { applyConfig, type ApplyResult, type ConfigSource, type ConfigTarget } from './config.js';
import { impairToJson } from '../engine/impair.js';
import { allocIfname, defaultSessionMtu, interfaceExists, pathMtu, releaseIfname } from './netinfo.js';
import { RateTracker, burstHalf, type SavedSession } from './seq-restart.js';

/**
 * What the state file holds: enough to rebuild every tunnel and session.
 * Version 2: a tunnel's `udpCsum` is absent unless `udp_csum` was given (version 1
 * wrote false for "not given"; read as absent, see checkSavedState).
 */
export interface SavedState {
  version: 2;
  tunnels: TunnelConfig[];
  sessions: SavedSession[];
  /** When it was written (ms since the epoch): how long a crashed daemon can have run since (seq-restart.ts). */
  saved_at?: number;
}

type Attrs = Record<string, unknown>;

const num = (a: Attrs, k: string, dflt = 0): number => (typeof a[k] === 'number' ? (a[k]) : dflt);
const bool = (a: Attrs, k: string, dflt: boolean): boolean => (typeof a[k] === 'boolean' ? (a[k]) : dflt);
const str = (a: Attrs, k: string, dflt = ''): string => (typeof a[k] === 'string' ? (a[k]) : dflt);

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
  const encap = (str(a, 'encap', TUNNEL_DEFAULTS.encap) === 'ip' ? 'ip' : 'udp');
  return {
    tunnelId: num(a, 'tunnel_id'),
    peerTunnelId: num(a, 'peer_tunnel_id'),
    encap,
    family: local.family,
    local: local.text,
    remote: remote.text,
    udpSport: encap === 'udp' ? num(a, 'udp_sport') : 0,
    udpDport: encap === 'udp' ? num(a, 'udp_dport') : 0,
    udpCsum: typeof a.udp_csum === 'boolean' ? a.udp_csum : undefined,
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

/** A failure as the reply's error body (anything that is not an L2tpError is a daemon error). */
function outcomeOf(e: unknown): BatchOutcome {
  const err = e instanceof L2tpError ? e : new L2tpError('DAEMON', e instanceof Error ? e.message : String(e));
  return { ok: false, error: errorBody(err) };
}

const isSingleDelete = (line: readonly BatchRequest[]): boolean => line.length === 1 && line[0].op === 'session_delete';

export class Controller implements ConfigTarget {
  private readonly table = new Table();
  /** Set by `ul2tp daemon --config FILE`: what `config_reload` (and SIGHUP) re-applies. */
  configSource: ConfigSource | null = null;
  private readonly tunnelRecs = new Map<number, TunnelRecord>();
  private readonly sessionCfgs = new Map<string, SessionConfig>();
  /** Called after every successful change (the daemon writes the state file). */
  onChange: () => void = () => {};
  /** Peak send rate per session, for the sequence jump after a crash (seq-restart.ts). */
  private readonly rates = new RateTracker();

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
    // Deletion is synchronous (docs/protocol.md §5 recommends it): sessions and their
    // interfaces are gone when the reply is sent, so the id can be reused at once.
    await this.dp.removeTunnel(tid);
    for (const s of this.table.removeTunnel(tid)) {
      this.sessionCfgs.delete(Controller.key(tid, s.cfg.sessionId));
      this.rates.forget(Controller.key(tid, s.cfg.sessionId));
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
    this.rates.forget(Controller.key(tid, sid));
    if (s) releaseIfname(s.cfg.ifname);
    this.onChange();
    return {};
  }

  /**
   * Deletes sessions together: the dataplane removes their interfaces in one
   * rtnetlink batch when it can (one RCU wait instead of one per interface).
   * Unknown keys are skipped.
   */
  async removeSessions(keys: ReadonlyArray<readonly [number, number]>): Promise<void> {
    const known = keys.filter(([t, s]) => this.table.getSession(t, s) !== undefined);
    if (known.length === 0) return;
    try {
      await this.dp.removeSessions(known);
    } finally {
      // Whatever the dataplane dropped is gone from the table too; the rest stays.
      for (const [t, s] of known) {
        const gone = this.table.removeSession(t, s);
        if (!gone) continue;
        this.sessionCfgs.delete(Controller.key(t, s));
        this.rates.forget(Controller.key(t, s));
        releaseIfname(gone.cfg.ifname);
      }
      this.onChange();
    }
  }

  /**
   * `batch`: each line's requests in order; consecutive single
   * `session_delete` lines are checked one by one and then removed together.
   */
  async batch(a: BatchAttrs): Promise<{ lines: BatchOutcome[][] }> {
    const out: BatchOutcome[][] = [];
    const lines = a.lines;
    let i = 0;
    while (i < lines.length) {
      if (isSingleDelete(lines[i])) {
        const accepted: Array<[number, number]> = [];
        const seen = new Set<string>();
        let stop = false;
        for (; i < lines.length && isSingleDelete(lines[i]); i++) {
          const { tunnel_id: t, session_id: s } = lines[i][0].attrs as { tunnel_id: number; session_id: number };
          const k = Controller.key(t, s);
          if (this.table.getSession(t, s) === undefined || seen.has(k)) {
            out.push([outcomeOf(kernelError('ENODEV'))]);
            if (a.stop_on_error) {
              stop = true;
              i++;
              break;
            }
            continue;
          }
          seen.add(k);
          accepted.push([t, s]);
          out.push([{ ok: true, result: {} }]);
        }
        if (accepted.length > 0) await this.removeSessions(accepted);
        if (stop) break;
        continue;
      }
      const res: BatchOutcome[] = [];
      for (const r of lines[i++]) {
        try {
          res.push({ ok: true, result: await this.executeOne(r) });
        } catch (e) {
          res.push(outcomeOf(e));
        }
      }
      out.push(res);
      if (a.stop_on_error && !res[res.length - 1].ok) break;
    }
    return { lines: out };
  }

  private executeOne(r: BatchRequest): Promise<unknown> {
    switch (r.op) {
      case 'tunnel_create':
        return this.tunnelCreate(r.attrs as unknown as Attrs);
      case 'tunnel_delete':
        return this.tunnelDelete(r.attrs as unknown as Attrs);
      case 'session_create':
        return this.sessionCreate(r.attrs as unknown as Attrs);
      case 'session_delete':
        return this.sessionDelete(r.attrs as unknown as Attrs);
    }
  }

  /** Re-reads the configuration file and converges on it (`config_reload`, SIGHUP). */
  async reloadConfig(): Promise<ApplyResult> {
    const src = this.configSource;
    if (src === null) throw new L2tpError('DAEMON', 'this daemon runs without --config: nothing to reload');
    let want;
    try {
      want = src.load(); // a file that does not parse changes nothing
    } catch (e) {
      throw new L2tpError('DAEMON', (e as Error).message);
    }
    return applyConfig(this, want, src);
  }

  tunnelConfigs(): ReadonlyMap<number, TunnelConfig> {
    return new Map([...this.tunnelRecs].map(([k, r]) => [k, r.cfg]));
  }

  sessionConfigs(): ReadonlyMap<string, SessionConfig> {
    return new Map(this.sessionCfgs);
  }

  tunnelConfigOf(a: object): TunnelConfig {
    return tunnelConfigFrom(a as Attrs);
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
        udp_csum: c.udpCsum === true,
        udp_csum_tx: c.encap === 'udp' && sendsUdpChecksums(c),
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
      const imp = this.dp.impairment(c.tunnelId, c.sessionId);
      if (imp) sessions[sessions.length - 1].impairment = impairToJson(imp);
    }
    return { sessions };
  }

  /** Sequenced sessions at the last saved(): stats base, ns written, and how far ns may move before seqBurst(). */
  private guard: Array<[base: number, ns: number, half: number]> = [];

  /** The configuration to persist (tunnels ascending, then their sessions); remembered for seqBurst(). */
  saved(): SavedState {
    const tunnels: TunnelConfig[] = [];
    const sessions: SavedSession[] = [];
    const st = this.dp.stats;
    const guard: Array<[number, number, number]> = [];
    this.guard = guard;
    for (const t of this.table.tunnels()) tunnels.push(t.cfg);
    for (const s of this.table.sessions()) {
      const key = Controller.key(s.cfg.tunnelId, s.cfg.sessionId);
      const c = this.sessionCfgs.get(key);
      if (!c) continue;
      const ns = st[s.base + NS_SHADOW];
      const nr = st[s.base + NR_SHADOW];
      const nsRate = this.rates.peak.get(key);
      if (ns === 0 && nr === 0 && c.initialNs === undefined && nsRate === undefined) {
        sessions.push(c);
        continue;
      }
      sessions.push({ ...c, initialNs: ns, initialNr: nr, nsAhead: undefined, nsRate });
      if (st[s.base + SEND_SEQ] !== 0) guard.push([s.base, ns, burstHalf(nsRate)]);
    }
    return { version: 2, tunnels, sessions, saved_at: Date.now() };
  }

  /** Sample every session's send rate (the daemon calls this every HEARTBEAT_MS). */
  sampleRates(now: number): void {
    const st = this.dp.stats;
    for (const s of this.table.sessions()) this.rates.sample(Controller.key(s.cfg.tunnelId, s.cfg.sessionId), st[s.base + NS_SHADOW], now);
  }

  /**
   * True when a sequenced session has sent half of the jump its last write allows
   * (seq-restart.ts burstHalf): the daemon then writes at once, so that a crash right
   * after a burst still restarts ahead of everything sent.
   */
  seqBurst(): boolean {
    const st = this.dp.stats;
    const g = this.guard;
    for (let i = 0; i < g.length; i++) {
      const [base, ns, half] = g[i];
      if (seqDelta(st[base + NS_SHADOW], ns) >= half) return true;
    }
    return false;
  }

  /** Some session sent sequence numbers at the last saved(). */
  hasSequenced(): boolean {
    return this.guard.length > 0;
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
   * Sequence numbers are used as they are: the daemon has already moved them past
   * what the crashed daemon can have sent, and written them (seq-restart.ts).
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
        const { nsRate, ...resumed } = cfg;
        this.rates.seed(Controller.key(cfg.tunnelId, cfg.sessionId), nsRate);
        await this.createSession(resumed, rec);
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

/** Validate the shape of a state file; throws a plain Error saying what is wrong. */
export function checkSavedState(x: unknown): SavedState {
  const o = x as Omit<SavedState, 'version'> & { version: number };
  if (!o || typeof o !== 'object' || (o.version !== 1 && o.version !== 2) || !Array.isArray(o.tunnels) || !Array.isArray(o.sessions)) {
    throw new Error('not a ul2tp state file (version 1 or 2 with tunnels and sessions)');
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
  if (o.version === 1) {
    // ul2tp before version 2 wrote udpCsum false when udp_csum was not given (the only
    // way it could be off): read as not given, so an upgrade keeps the tunnel as the user
    // made it (now sending checksums, docs/cli-differences.md item 10).
    const tunnels = o.tunnels.map((t) => {
      if (t.udpCsum !== false) return t;
      const { udpCsum: _off, ...rest } = t;
      return rest;
    });
    return { ...o, version: 2, tunnels };
  }
  return o as SavedState;
}

export { L2tpError };

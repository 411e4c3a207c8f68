/**
 * Declarative configuration (`ul2tp daemon --config FILE`): the file is an
 * `ip -batch` file of `l2tp add ...` lines plus `ip` lines for the session
 * interfaces (`link set ...`, `address add ...`). The CLI parses it (it owns
 * the grammar) and hands the daemon a ConfigSource; this module compares
 * what the file asks for with what runs and converges:
 *   - tunnels and sessions the file no longer names are deleted (sessions in
 *     one batch, their interfaces in one rtnetlink request);
 *   - the ones whose settings changed are deleted and created again;
 *   - unchanged ones are left alone (their interfaces and traffic untouched);
 *   - missing ones are created, then the `ip` lines run again (`address add`
 *     runs as `address replace`, so a re-run is a no-op).
 */
import type { SessionConfig, TunnelConfig } from '../engine/config.js';
import type { SessionCreateAttrs, TunnelCreateAttrs } from './protocol.js';

/** What a configuration file asks for. */
export interface DesiredConfig {
  tunnels: TunnelCreateAttrs[];
  sessions: SessionCreateAttrs[];
  /** The other lines, for the real `ip`, in file order. */
  ipLines: Array<{ lineno: number; args: string[] }>;
}

/** Where the daemon's configuration comes from (built by the CLI). */
export interface ConfigSource {
  readonly path: string;
  /** Reads and parses the file now; throws an Error naming the file and line. */
  load(): DesiredConfig;
  /** Runs one `ip` line; returns its exit status and stderr. */
  runIp(args: readonly string[]): { status: number; stderr: string };
}

export interface ApplyResult {
  added: number;
  removed: number;
  kept: number;
  /** One line per thing that could not be done (the rest still was). */
  problems: string[];
}

/** What the controller offers the apply step (handlers.ts implements it). */
export interface ConfigTarget {
  tunnelConfigs(): ReadonlyMap<number, TunnelConfig>;
  sessionConfigs(): ReadonlyMap<string, SessionConfig>;
  /** The normalised config a tunnel_create with these attributes would store (throws for bad ones). */
  tunnelConfigOf(a: object): TunnelConfig;
  tunnelCreate(a: Attrs): Promise<unknown>;
  tunnelDelete(a: Attrs): Promise<unknown>;
  sessionCreate(a: Attrs): Promise<unknown>;
  removeSessions(keys: ReadonlyArray<readonly [number, number]>): Promise<void>;
}

type Attrs = Record<string, unknown>;
const attrs = (x: object): Attrs => x as Attrs;

const sameTunnel = (a: TunnelConfig, b: TunnelConfig): boolean =>
  a.peerTunnelId === b.peerTunnelId &&
  a.encap === b.encap &&
  a.local === b.local &&
  a.remote === b.remote &&
  a.udpSport === b.udpSport &&
  a.udpDport === b.udpDport &&
  a.udpCsum === b.udpCsum &&
  a.udp6CsumTx === b.udp6CsumTx &&
  a.udp6CsumRx === b.udp6CsumRx;

function sameSession(want: SessionCreateAttrs, have: SessionConfig): boolean {
  const named = want.name !== undefined && !want.name.includes('%d');
  return (
    want.peer_session_id === have.peerSessionId &&
    (want.cookie ?? '').toLowerCase() === have.cookie &&
    (want.peer_cookie ?? '').toLowerCase() === have.peerCookie &&
    (want.l2spec_type ?? 'default') === have.l2specType &&
    (want.send_seq ?? false) === have.sendSeq &&
    (want.recv_seq ?? false) === have.recvSeq &&
    (!named || want.name === have.ifname)
  );
}

const skey = (tid: number, sid: number): string => `${tid}/${sid}`;
const why = (e: unknown): string => (e instanceof Error ? e.message.split('\n')[0] : String(e));

/** `address add` → `address replace` (ip's object and command words, by prefix). */
export function idempotentIpLine(args: readonly string[]): string[] {
  const out = [...args];
  const obj = out[0] ?? '';
  if (obj.length > 0 && 'address'.startsWith(obj) && out[1] !== undefined && out[1].length > 0 && 'add'.startsWith(out[1])) out[1] = 'replace';
  return out;
}

/** Converges `target` on `want`; see the module comment. */
export async function applyConfig(target: ConfigTarget, want: DesiredConfig, source: ConfigSource): Promise<ApplyResult> {
  const res: ApplyResult = { added: 0, removed: 0, kept: 0, problems: [] };
  const tunnels = target.tunnelConfigs();
  const sessions = target.sessionConfigs();

  const wantTunnels = new Map<number, TunnelCreateAttrs>();
  for (const t of want.tunnels) wantTunnels.set(t.tunnel_id, t);
  const wantSessions = new Map<string, SessionCreateAttrs>();
  for (const s of want.sessions) wantSessions.set(skey(s.tunnel_id, s.session_id), s);

  // Tunnels to delete (with all their sessions): gone from the file, or changed.
  const dropTunnels: number[] = [];
  for (const [tid, have] of tunnels) {
    const w = wantTunnels.get(tid);
    let keep = false;
    if (w !== undefined) {
      try {
        keep = sameTunnel(target.tunnelConfigOf(w), have);
      } catch {
        keep = false;
      }
    }
    if (!keep) dropTunnels.push(tid);
  }
  const dropped = new Set(dropTunnels);
  // Sessions to delete, those of dropped tunnels included: all their interfaces
  // then go in one rtnetlink request instead of one per tunnel.
  const dropSessions: Array<[number, number]> = [];
  for (const [k, have] of sessions) {
    const w = dropped.has(have.tunnelId) ? undefined : wantSessions.get(k);
    if (w === undefined || !sameSession(w, have)) dropSessions.push([have.tunnelId, have.sessionId]);
  }
  if (dropSessions.length > 0) {
    try {
      await target.removeSessions(dropSessions);
      res.removed += dropSessions.length;
    } catch (e) {
      res.problems.push(`removing ${dropSessions.length} session(s): ${why(e)}`);
    }
  }
  for (const tid of dropTunnels) {
    try {
      await target.tunnelDelete({ tunnel_id: tid });
      res.removed++;
    } catch (e) {
      res.problems.push(`tunnel ${tid}: delete: ${why(e)}`);
    }
  }

  const nowTunnels = target.tunnelConfigs();
  const nowSessions = target.sessionConfigs();
  for (const t of want.tunnels) {
    if (nowTunnels.has(t.tunnel_id)) {
      res.kept++;
      continue;
    }
    try {
      await target.tunnelCreate(attrs(t));
      res.added++;
    } catch (e) {
      res.problems.push(`tunnel ${t.tunnel_id}: ${why(e)}`);
    }
  }
  for (const s of want.sessions) {
    if (nowSessions.has(skey(s.tunnel_id, s.session_id))) {
      res.kept++;
      continue;
    }
    try {
      await target.sessionCreate(attrs(s));
      res.added++;
    } catch (e) {
      res.problems.push(`session ${s.session_id} in tunnel ${s.tunnel_id}: ${why(e)}`);
    }
  }
  for (const l of want.ipLines) {
    const r = source.runIp(idempotentIpLine(l.args));
    if (r.status !== 0) res.problems.push(`${source.path}:${l.lineno}: ip ${l.args.join(' ')}: ${r.stderr.trim().split('\n')[0] ?? `exit ${r.status}`}`);
  }
  return res;
}

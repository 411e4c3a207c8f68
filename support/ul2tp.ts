/**
 * ul2tp in test and benchmark namespaces: reading a daemon's state (raw
 * control replies through support/status.ts, run inside the namespace) and
 * building mirrored tunnel + session pairs across an underlay.
 */
import { join } from 'node:path';
import type { Counters } from '../src/engine/stats.js';
import type { Netns } from './netns.js';
import { ROOT } from './proc.js';

/** Script printing one control reply of the namespace's daemon (never starts one). */
export const STATUS = join(ROOT, 'dist', 'support', 'status.js');

/** MAC address of `ifname` in `ns`. */
export function macOf(ns: Netns, ifname: string): string {
  return (JSON.parse(ns.ip('-j', 'link', 'show', ifname)) as Array<{ address: string }>)[0].address;
}

/** Result of one control op (default `status`) from the daemon in `ns`. */
export function control<T = unknown>(ns: Netns, op = 'status'): T {
  const r = ns.exec(process.execPath, [STATUS, op], 15_000);
  if (r.status !== 0) throw new Error(`control ${op} in ${ns.name} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

interface SessionRow {
  tunnel_id: number;
  session_id: number;
  send_seq: boolean;
  stats: Counters;
}

export function sessionCounters(ns: Netns, tunnelId: number, sessionId: number): Counters {
  const { sessions } = control<{ sessions: SessionRow[] }>(ns, 'session_get');
  const s = sessions.find((x) => x.tunnel_id === tunnelId && x.session_id === sessionId);
  if (!s) throw new Error(`no session ${sessionId} in tunnel ${tunnelId} in ${ns.name}`);
  return s.stats;
}

export function tunnelCounters(ns: Netns, tunnelId: number): Counters {
  const { tunnels } = control<{ tunnels: Array<{ tunnel_id: number; stats: Counters }> }>(ns, 'tunnel_get');
  const t = tunnels.find((x) => x.tunnel_id === tunnelId);
  if (!t) throw new Error(`no tunnel ${tunnelId} in ${ns.name}`);
  return t.stats;
}

export interface LinkOptions {
  /** Distinguishes links in one rig: ids, ports, interface names and overlay addresses derive from it. */
  n: number;
  encap?: 'udp' | 'ip';
  family?: 4 | 6;
  /** [cookie of side A, cookie of side B] (each side's peer_cookie is the other's cookie). */
  cookies?: [string, string];
  l2spec?: 'none' | 'default';
  seq?: 'none' | 'send' | 'recv' | 'both';
  /** Bring the interfaces up with overlay addresses (default true). */
  up?: boolean;
  mtu?: number;
}

export interface Link {
  tidA: number;
  tidB: number;
  sidA: number;
  sidB: number;
  ifA: string;
  ifB: string;
  /** Overlay addresses: IPv4 and IPv6 of each side. */
  a4: string;
  b4: string;
  a6: string;
  b6: string;
  /** Delete both tunnels (ignores failures). */
  remove(): void;
}

/**
 * One tunnel + session on each side of `u`, mirrored like the man page's
 * site A / site B. Overlay: 10.<n>.0.1-2/24 and fd00:<n>::1-2/64.
 */
export function makeLink(
  u: { a: Netns; b: Netns; a4: string; b4: string; a6: string; b6: string },
  o: LinkOptions,
): Link {
  const { n } = o;
  const encap = o.encap ?? 'udp';
  const [la, lb] = (o.family ?? 4) === 4 ? [u.a4, u.b4] : [u.a6, u.b6];
  const [ca, cb] = o.cookies ?? ['', ''];
  const l: Link = {
    tidA: 100 + n,
    tidB: 200 + n,
    sidA: 1000 + n,
    sidB: 2000 + n,
    ifA: `l2a${n}`,
    ifB: `l2b${n}`,
    a4: `10.${n % 250}.0.1`,
    b4: `10.${n % 250}.0.2`,
    a6: `fd00:${n}::1`,
    b6: `fd00:${n}::2`,
    remove() {
      u.a.ul2tp('del', 'tunnel', 'tunnel_id', String(l.tidA));
      u.b.ul2tp('del', 'tunnel', 'tunnel_id', String(l.tidB));
    },
  };
  const udp = (s: number, d: number) => (encap === 'udp' ? ['udp_sport', String(s), 'udp_dport', String(d)] : []);
  const ck = (mine: string, theirs: string) => [...(mine ? ['cookie', mine] : []), ...(theirs ? ['peer_cookie', theirs] : [])];
  const extra = [...(o.l2spec ? ['l2spec_type', o.l2spec] : []), ...(o.seq ? ['seq', o.seq] : [])];
  try {
    u.a.ok('add', 'tunnel', 'tunnel_id', String(l.tidA), 'peer_tunnel_id', String(l.tidB), 'encap', encap, 'local', la, 'remote', lb, ...udp(5000 + n, 6000 + n));
    u.b.ok('add', 'tunnel', 'tunnel_id', String(l.tidB), 'peer_tunnel_id', String(l.tidA), 'encap', encap, 'local', lb, 'remote', la, ...udp(6000 + n, 5000 + n));
    u.a.ok('add', 'session', 'name', l.ifA, 'tunnel_id', String(l.tidA), 'session_id', String(l.sidA), 'peer_session_id', String(l.sidB), ...ck(ca, cb), ...extra);
    u.b.ok('add', 'session', 'name', l.ifB, 'tunnel_id', String(l.tidB), 'session_id', String(l.sidB), 'peer_session_id', String(l.sidA), ...ck(cb, ca), ...extra);
    if (o.up !== false) {
      for (const [ns, ifn, a4, a6] of [
        [u.a, l.ifA, l.a4, l.a6],
        [u.b, l.ifB, l.b4, l.b6],
      ] as const) {
        ns.ip('link', 'set', ifn, 'up', ...(o.mtu ? ['mtu', String(o.mtu)] : []));
        ns.ip('addr', 'add', `${a4}/24`, 'dev', ifn);
        ns.ip('-6', 'addr', 'add', `${a6}/64`, 'dev', ifn, 'nodad');
      }
    }
  } catch (e) {
    l.remove();
    throw e;
  }
  return l;
}

/**
 * Makes A's side of link `k` send nothing but what a test sends: no IPv6 of its own
 * (ND/MLD), and permanent neighbour entries on both sides (no ARP request from A, no ARP
 * reply to B). Permanent entries also survive the neighbour flush the kernel does when a
 * TAP loses its carrier (its daemon died), so no ARP is needed after a restart either.
 */
export function quietLink(u: { a: Netns; b: Netns }, k: Link): void {
  const r = u.a.exec('sysctl', ['-qw', `net.ipv6.conf.${k.ifA}.disable_ipv6=1`]);
  if (r.status !== 0) throw new Error(`sysctl disable_ipv6 on ${k.ifA} in ${u.a.name}: ${r.stderr}`);
  u.a.ip('neigh', 'replace', k.b4, 'lladdr', macOf(u.b, k.ifB), 'dev', k.ifA, 'nud', 'permanent');
  u.b.ip('neigh', 'replace', k.a4, 'lladdr', macOf(u.a, k.ifA), 'dev', k.ifB, 'nud', 'permanent');
}

/**
 * `ul2tp save`: the running configuration as a configuration file (like
 * iptables-save): one `l2tp add tunnel` line per tunnel, one `l2tp add
 * session` line (with its interface name) per session, then `link set` (MTU,
 * up) and `address add` lines for each session interface, read from the
 * system with the real `ip`. `ul2tp save > /etc/ul2tp/ul2tp.conf` and
 * `ul2tp daemon --config /etc/ul2tp/ul2tp.conf` bring the same setup back.
 */
import { spawnSync } from 'node:child_process';
import { type SessionInfo, type TunnelInfo } from '../control/protocol.js';
import { checkSessionList, checkTunnelList } from '../control/validate.js';
import { findRealIp } from '../control/netinfo.js';
import type { CliIo } from './run.js';
import { withDaemon } from './own-command.js';

export const SAVE_HELP = `Usage: ul2tp save

Prints the running configuration as a file for "ul2tp daemon --config FILE"
(or "ul2tp -batch FILE"): the tunnels and sessions as "l2tp add" lines, and
each session interface's MTU, up state and addresses as ip lines. IPv6
link-local and dynamic addresses are left out.
  ul2tp save > /etc/ul2tp/ul2tp.conf
`;

export function tunnelLine(t: TunnelInfo): string {
  const w = ['l2tp', 'add', 'tunnel', 'tunnel_id', t.tunnel_id, 'peer_tunnel_id', t.peer_tunnel_id, 'encap', t.encap, 'local', t.local, 'remote', t.remote];
  if (t.encap === 'udp') w.push('udp_sport', t.udp_sport, 'udp_dport', t.udp_dport);
  // What was given: not given sends checksums but shows as off (docs/cli-differences.md, item 10)
  if (t.udp_csum) w.push('udp_csum', 'on');
  else if (t.encap === 'udp' && t.family === 4 && t.udp_csum_tx === false) w.push('udp_csum', 'off');
  if (t.family === 6 && !t.udp6_csum_tx) w.push('udp6_csum_tx', 'off');
  if (t.family === 6 && !t.udp6_csum_rx) w.push('udp6_csum_rx', 'off');
  return w.join(' ');
}

export function sessionLine(s: SessionInfo): string {
  const w = ['l2tp', 'add', 'session', 'name', s.ifname, 'tunnel_id', s.tunnel_id, 'session_id', s.session_id, 'peer_session_id', s.peer_session_id];
  if (s.cookie) w.push('cookie', s.cookie);
  if (s.peer_cookie) w.push('peer_cookie', s.peer_cookie);
  const seq = s.send_seq && s.recv_seq ? 'both' : s.send_seq ? 'send' : s.recv_seq ? 'recv' : '';
  if (seq) w.push('seq', seq);
  if (s.l2spec_type === 'none') w.push('l2spec_type', 'none');
  return w.join(' ');
}

interface IpLink {
  ifname: string;
  mtu?: number;
  flags?: string[];
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number; scope?: string; dynamic?: boolean }>;
}

/** The ip lines that restore an interface: MTU and up state, then its static addresses. */
export function linkLines(l: IpLink): string[] {
  const out = [`link set dev ${l.ifname}${l.mtu !== undefined ? ` mtu ${l.mtu}` : ''}${l.flags?.includes('UP') ? ' up' : ''}`];
  for (const a of l.addr_info ?? []) {
    if (a.local === undefined || a.prefixlen === undefined || a.dynamic === true) continue;
    if (a.family === 'inet6' && a.scope === 'link') continue;
    out.push(`address add ${a.local}/${a.prefixlen} dev ${l.ifname}`);
  }
  return out;
}

export async function runSave(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv.length > 0) {
    io.stderr(`Unknown option: ${argv[0]}\n${SAVE_HELP}`);
    return 255;
  }
  let tunnels: TunnelInfo[] = [];
  let sessions: SessionInfo[] = [];
  const status = await withDaemon(io, async (t) => {
    tunnels = checkTunnelList(await t.request('tunnel_get', {}));
    sessions = checkSessionList(await t.request('session_get', {}));
    return 0;
  });
  if (status !== 0) return status;
  const links = new Map<string, IpLink>();
  if (sessions.length > 0) {
    const ip = findRealIp();
    const r = ip === null ? null : spawnSync(ip, ['-j', 'address', 'show'], { encoding: 'utf8', maxBuffer: 1 << 30 });
    if (r === null || r.status !== 0) {
      io.stderr(`Error: cannot read the interfaces with ip: ${r?.stderr?.trim() || 'no iproute2 "ip" found'}\n`);
      return 1;
    }
    for (const l of JSON.parse(r.stdout) as IpLink[]) links.set(l.ifname, l);
  }
  const out: string[] = [`# ul2tp save, ${new Date().toISOString()}`, '# Apply with: ul2tp daemon --config FILE (or ul2tp -batch FILE)'];
  for (const t of [...tunnels].sort((a, b) => a.tunnel_id - b.tunnel_id)) out.push(tunnelLine(t));
  const ordered = [...sessions].sort((a, b) => a.tunnel_id - b.tunnel_id || a.session_id - b.session_id);
  for (const s of ordered) out.push(sessionLine(s));
  for (const s of ordered) {
    const l = links.get(s.ifname);
    if (l !== undefined) out.push(...linkLines(l));
  }
  io.stdout(out.join('\n') + '\n');
  return 0;
}

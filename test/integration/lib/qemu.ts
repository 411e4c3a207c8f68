/**
 * QEMU's userspace L2TPv3 (`-netdev l2tpv3`, net/l2tpv3.c) as a test peer.
 *
 * QEMU runs with no guest at all (`-M none`, no CPU, no devices): a `tap`
 * netdev and an `l2tpv3` netdev are each joined to the same hub by a
 * `hubport` netdev, so every frame written to the TAP interface leaves as an
 * L2TPv3 packet and every accepted L2TPv3 packet comes out of the TAP
 * interface. The process is started in a namespace by PID, killed by PID, and
 * its stderr is kept for failure messages.
 *
 * The peer is described the way the ul2tp (or Linux `ip l2tp`) side is
 * configured, and `qemuL2tpv3Options` translates it. The mapping (also in
 * docs/qemu-interop.md, from docs/protocol.md §6.1):
 *
 * | ul2tp / ip l2tp (the other end)  | QEMU -netdev l2tpv3                         |
 * |----------------------------------|---------------------------------------------|
 * | `encap udp`                      | `udp=on`                                    |
 * | `encap ip`                       | no `udp` (raw socket, protocol 115)         |
 * | `local A` / `remote B`           | `dst=A` / `src=B` (swapped)                 |
 * | IPv6 `local`/`remote`            | `ipv6=on`                                   |
 * | `udp_sport P`                    | `dstport=P` (swapped)                       |
 * | `udp_dport Q`                    | `srcport=Q` (swapped)                       |
 * | `session_id S`                   | `txsession=S` (id QEMU writes = id ul2tp accepts) |
 * | `peer_session_id R`              | `rxsession=R` (id ul2tp writes = id QEMU accepts) |
 * | `cookie C` (ul2tp sends C)       | `rxcookie=0xC` (QEMU expects C)             |
 * | `peer_cookie D` (ul2tp expects D)| `txcookie=0xD` (QEMU sends D)               |
 * | cookies of 16 hex digits         | `cookie64=on` (never write `cookie64=off`: the key's presence alone enables it) |
 * | cookies of 8 hex digits          | no `cookie64`                               |
 * | no cookies                       | neither txcookie nor rxcookie               |
 * | `l2spec_type default`            | `counter=on` (4-byte word; QEMU's S bit is 0) |
 * | `l2spec_type none`               | no `counter`                                |
 * | `seq none` (or `send`)           | nothing: QEMU's counter is not a sequence number; `seq recv`/`both` are refused |
 * | `tunnel_id`, `peer_tunnel_id`    | nothing (QEMU has no tunnel ids)            |
 * | `udp_csum`, `udp6_csum_*`        | nothing (QEMU always checksums, drops zero-checksum IPv6 UDP) |
 * | (no equivalent)                  | `offset` is never given (must be 0)         |
 *
 * QEMU cannot express one-sided cookies (txcookie and rxcookie are both or
 * neither) nor cookies of different lengths: those descriptions throw.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { IP } from '../../../support/ip.js';
import { type Netns, uniq } from '../../../support/netns.js';
import { waitFor } from '../../../support/proc.js';

export const QEMU = 'qemu-system-x86_64';

/** Why QEMU interop tests cannot run here, or '' when they can. */
export function qemuUnavailable(): string {
  if (process.getuid?.() !== 0) return 'needs root';
  const r = spawnSync(QEMU, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `${QEMU} not found (apt package qemu-system-x86)`;
  return '';
}

/** The ul2tp side of the pseudowire, in `ip l2tp` vocabulary (what ul2tp is configured with). */
export interface L2tpPeer {
  encap: 'udp' | 'ip';
  /** ul2tp's `local` and `remote` (IPv4 or IPv6, both the same family). */
  local: string;
  remote: string;
  /** ul2tp's `udp_sport` / `udp_dport` (encap udp only). */
  udpSport?: number;
  udpDport?: number;
  sessionId: number;
  peerSessionId: number;
  /** ul2tp's `cookie` (sent by ul2tp) and `peer_cookie` (expected by ul2tp), HEXSTR or ''. */
  cookie?: string;
  peerCookie?: string;
  /** ul2tp's `l2spec_type` (the ip l2tp default is 'default'). */
  l2specType?: 'none' | 'default';
  /** ul2tp's `seq`; only 'none' and 'send' can work towards QEMU (docs/protocol.md §6.1). */
  seq?: 'none' | 'send' | 'recv' | 'both';
}

/** `-netdev l2tpv3` options (without `id=`) for the QEMU end facing `p`. */
export function qemuL2tpv3Options(p: L2tpPeer): string {
  const v6 = p.local.includes(':');
  if (v6 !== p.remote.includes(':')) throw new Error('local and remote must be the same address family');
  const o: string[] = [];
  o.push(`src=${p.remote}`, `dst=${p.local}`); // swapped: QEMU's own address is ul2tp's remote
  if (p.encap === 'udp') {
    if (p.udpSport === undefined || p.udpDport === undefined) throw new Error('encap udp needs both ports (QEMU requires srcport and dstport)');
    o.push('udp=on', `srcport=${p.udpDport}`, `dstport=${p.udpSport}`); // swapped
  }
  if (v6) o.push('ipv6=on');
  o.push(`txsession=${p.sessionId}`, `rxsession=${p.peerSessionId}`);
  const cookie = p.cookie ?? '';
  const peerCookie = p.peerCookie ?? '';
  if (cookie || peerCookie) {
    if (!cookie || !peerCookie) throw new Error('QEMU needs both txcookie and rxcookie: give ul2tp both cookie and peer_cookie');
    if (cookie.length !== peerCookie.length) throw new Error('QEMU uses one cookie length for both directions');
    for (const c of [cookie, peerCookie]) {
      if (!/^[0-9a-fA-F]{8}$|^[0-9a-fA-F]{16}$/.test(c)) throw new Error(`cookie ${c}: QEMU takes 4 or 8 bytes`);
    }
    // QEMU parses the value as an integer and writes it big-endian: the hex
    // digits appear on the wire in the order written, like ip l2tp's HEXSTR.
    o.push(`txcookie=0x${peerCookie}`, `rxcookie=0x${cookie}`);
    if (cookie.length === 16) o.push('cookie64=on');
  }
  if ((p.l2specType ?? 'default') === 'default') o.push('counter=on');
  if (p.seq === 'recv' || p.seq === 'both') {
    throw new Error(`seq ${p.seq} towards QEMU drops every frame: QEMU's counter never sets the S bit (docs/protocol.md §6.1)`);
  }
  return o.join(',');
}

/**
 * `-netdev l2tpv3` options for a QEMU that behaves like the ul2tp end `p`
 * itself (not its peer). Used to prove the harness QEMU ↔ QEMU before, or
 * besides, ul2tp: `qemuAsL2tpOptions(p)` on one side and `qemuL2tpv3Options(p)`
 * on the other must talk to each other.
 */
export function qemuAsL2tpOptions(p: L2tpPeer): string {
  const o: string[] = [`src=${p.local}`, `dst=${p.remote}`];
  if (p.encap === 'udp') o.push('udp=on', `srcport=${p.udpSport}`, `dstport=${p.udpDport}`);
  if (p.local.includes(':')) o.push('ipv6=on');
  o.push(`txsession=${p.peerSessionId}`, `rxsession=${p.sessionId}`);
  if (p.cookie && p.peerCookie) {
    o.push(`txcookie=0x${p.cookie}`, `rxcookie=0x${p.peerCookie}`);
    if (p.cookie.length === 16) o.push('cookie64=on');
  }
  if ((p.l2specType ?? 'default') === 'default') o.push('counter=on');
  return o.join(',');
}

/** Full QEMU command line (arguments after the binary) bridging TAP `tap` to the l2tpv3 netdev. */
export function qemuArgs(tap: string, l2tpv3: string): string[] {
  return [
    '-M', 'none',
    '-nodefaults',
    '-nographic',
    '-display', 'none',
    '-netdev', `tap,id=t0,ifname=${tap},script=no,downscript=no`,
    '-netdev', `l2tpv3,id=l0,${l2tpv3}`,
    '-netdev', 'hubport,id=h0,hubid=0,netdev=t0',
    '-netdev', 'hubport,id=h1,hubid=0,netdev=l0',
  ];
}

export interface QemuPeer {
  /** PID of the QEMU process. */
  pid: number;
  /** Name of QEMU's TAP interface in the namespace. */
  tap: string;
  /** The `-netdev l2tpv3` options used. */
  options: string;
  /** Everything QEMU wrote to stderr so far (for failure messages; the 'hub with no nics' warning is normal). */
  stderr(): string;
  alive(): boolean;
  /** Stop QEMU (SIGTERM, then SIGKILL) by PID and wait for it. */
  stop(): Promise<void>;
}

export interface QemuStartOptions {
  /** TAP interface name (default: unique). */
  tap?: string;
  /** Bring the TAP interface up with these addresses (CIDR), e.g. ['10.9.0.2/24', 'fd00:9::2/64']. */
  addrs?: string[];
  mtu?: number;
}

/**
 * Start QEMU in `ns` facing the ul2tp end `peer`. Resolves once QEMU's TAP
 * interface exists (and is configured); rejects with QEMU's stderr if QEMU exits first.
 */
export async function startQemu(ns: Netns, peer: L2tpPeer | string, o: QemuStartOptions = {}): Promise<QemuPeer> {
  const options = typeof peer === 'string' ? peer : qemuL2tpv3Options(peer);
  const tap = o.tap ?? uniq('qt');
  // `ip netns exec` switches namespace then execs: the child PID is QEMU's own.
  const child: ChildProcess = ns.spawn(QEMU, qemuArgs(tap, options));
  let err = '';
  child.stderr?.on('data', (d: string) => (err += d));
  child.stdout?.on('data', () => {});
  const exists = () => spawnSync(IP, ['-n', ns.name, 'link', 'show', tap], { stdio: 'ignore' }).status === 0;
  const started = await waitFor(() => child.exitCode !== null || child.signalCode !== null || exists(), 15_000);
  if (!started || child.exitCode !== null || child.signalCode !== null) {
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    throw new Error(`QEMU did not start (exit ${child.exitCode}, options ${options}): ${err.trim()}`);
  }
  const q: QemuPeer = {
    pid: child.pid!,
    tap,
    options,
    stderr: () => err,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (!q.alive()) return;
      const gone = once(child, 'exit');
      try {
        process.kill(q.pid, 'SIGTERM');
      } catch {
        return;
      }
      const t = setTimeout(() => {
        try {
          process.kill(q.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 3000);
      await gone;
      clearTimeout(t);
    },
  };
  try {
    if (o.mtu) ns.ip('link', 'set', tap, 'mtu', String(o.mtu));
    if (o.addrs) {
      for (const a of o.addrs) ns.ip(...(a.includes(':') ? ['-6', 'addr', 'add', a, 'dev', tap, 'nodad'] : ['addr', 'add', a, 'dev', tap]));
      ns.ip('link', 'set', tap, 'up');
    }
  } catch (e) {
    await q.stop();
    throw e;
  }
  return q;
}

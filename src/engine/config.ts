/**
 * Immutable tunnel and session configuration (the kernel's l2tp_tunnel_cfg /
 * l2tp_session_cfg). Plain JSON-able objects: they cross the control socket,
 * worker_threads messages and the state file unchanged.
 *
 * Vocabulary follows iproute2/kernel (docs/ARCHITECTURE.md, Vocabulary): `cookie` is what we SEND,
 * `peerCookie` what we EXPECT; the outgoing header carries `peerSessionId`.
 */
export type Encap = 'udp' | 'ip';
export type L2specType = 'none' | 'default';

export interface TunnelConfig {
  readonly tunnelId: number; // 1..2^32-1, unique per namespace
  readonly peerTunnelId: number; // stored and reported, never on the wire
  readonly encap: Encap;
  readonly family: 4 | 6;
  readonly local: string; // canonical text form (inet_ntop)
  readonly remote: string;
  readonly udpSport: number; // 0 for encap ip
  readonly udpDport: number;
  /**
   * IPv4 UDP checksums as the user asked: true (`udp_csum on`), false (`udp_csum off`:
   * zero checksums, as the kernel sends by default) or undefined (not given). `show`
   * reports undefined as off, like ip l2tp; on the wire see sendsUdpChecksums.
   */
  readonly udpCsum?: boolean;
  readonly udp6CsumTx: boolean; // IPv6 UDP: send checksums (default on)
  readonly udp6CsumRx: boolean; // IPv6 UDP: require checksums on receive (default on)
}

export interface SessionConfig {
  readonly tunnelId: number;
  readonly sessionId: number; // 1..2^32-1
  readonly peerSessionId: number;
  readonly ifname: string; // resolved interface name ('' in engine-only use)
  readonly cookie: string; // lowercase hex of the bytes we send, '' = none (0, 8 or 16 digits)
  readonly peerCookie: string; // lowercase hex we expect, '' = none
  readonly l2specType: L2specType;
  readonly sendSeq: boolean; // initial value; the LAC rule may flip it at run time
  readonly recvSeq: boolean;
  readonly reorderTimeoutMs: number; // 0 = no reordering (the only value ip l2tp can set)
  /** Sequence state to start from (restore after a restart); 0 when absent, like the kernel. */
  readonly initialNs?: number;
  readonly initialNr?: number;
  /** initialNs is already ahead of anything sent before (set by the daemon's restore). */
  readonly nsAhead?: boolean;
}

export const TUNNEL_DEFAULTS = {
  encap: 'udp' as Encap,
  udpSport: 0,
  udpDport: 0,
  udp6CsumTx: true,
  udp6CsumRx: true,
} as const;

export const SESSION_DEFAULTS = {
  ifname: '',
  cookie: '',
  peerCookie: '',
  l2specType: 'default' as L2specType,
  sendSeq: false,
  recvSeq: false,
  reorderTimeoutMs: 0,
} as const;

/**
 * Whether the tunnel's UDP datagrams carry checksums. IPv6 follows udp6_csum_tx.
 * IPv4 sends them unless the user said `udp_csum off`: the kernel refuses UDP
 * segmentation offload (GSO) on a socket that sends zero checksums, and with
 * checksum offload they cost nothing, while every receiver accepts them
 * (docs/protocol.md §3.2, docs/cli-differences.md).
 */
export function sendsUdpChecksums(c: Pick<TunnelConfig, 'family' | 'udpCsum' | 'udp6CsumTx'>): boolean {
  return c.family === 4 ? c.udpCsum !== false : c.udp6CsumTx;
}

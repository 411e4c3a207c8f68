/**
 * The control protocol's messages: what `ul2tp` (and the library,
 * src/index.ts) sends to the daemon and what comes back. The full
 * description for implementers in other languages is docs/control-protocol.md;
 * the pieces of the protocol live in one file each:
 *
 *   protocol.ts   message types and the protocol version (this file)
 *   validate.ts   the daemon's request validator, the client's reply checks
 *   framing.ts    JSON lines: encoding, splitting, size limits
 *   address.ts    IP address text (inet_pton/ntop, iproute2's get_addr)
 *
 *   request  {"id":N,"version":1,"op":OP,"attrs":{...}}
 *   reply    {"id":N,"ok":true,"result":...}
 *            {"id":N|null,"ok":false,"error":{"code":...,"errno":"EEXIST"?,"message":"..."}}
 *
 * Operations mirror the kernel's genetlink commands and attribute names are
 * iproute2's keys.
 *
 * Evolution: adding an op, an optional attribute or a result field keeps
 * PROTOCOL_VERSION; changing or removing any of them raises it. A daemon
 * accepts requests of versions MIN_PROTOCOL_VERSION..PROTOCOL_VERSION and
 * refuses others with a PROTOCOL error (errno EPROTONOSUPPORT).
 */
import type { L2tpErrorCode } from '../errors.js';

/** The protocol version this code speaks. */
export const PROTOCOL_VERSION = 1;
/** The oldest request version the daemon still accepts. */
export const MIN_PROTOCOL_VERSION = 1;

export const U32_MAX = 0xffffffff;

export type Encap = 'udp' | 'ip';
export type L2specType = 'none' | 'default';

export interface TunnelCreateAttrs {
  tunnel_id: number; // 1..2^32-1
  peer_tunnel_id: number; // 0..2^32-1
  encap: Encap; // default 'udp'
  local: string; // IPv4 or IPv6 text
  remote: string;
  udp_sport: number; // 0..65535, default 0
  udp_dport: number;
  udp_csum?: boolean; // absent: not given (shown as off; checksums sent, engine/config.ts sendsUdpChecksums)
  udp6_csum_tx: boolean; // default true
  udp6_csum_rx: boolean; // default true
}

export interface TunnelDeleteAttrs {
  tunnel_id: number; // 0..2^32-1 (0 never exists: ENODEV)
}

export interface SessionCreateAttrs {
  tunnel_id: number; // 1..2^32-1
  session_id: number; // 1..2^32-1
  peer_session_id: number; // 0..2^32-1
  name?: string; // interface name (iproute2's check_ifname rules)
  cookie?: string; // '' or 8 / 16 hex digits, lowercased by the validator
  peer_cookie?: string;
  l2spec_type: L2specType; // default 'default'
  send_seq: boolean; // default false
  recv_seq: boolean; // default false
  reorder_timeout?: number; // ms, not settable from ip l2tp
}

export interface SessionDeleteAttrs {
  tunnel_id: number; // 0..2^32-1
  session_id: number; // 0..2^32-1
}

export type EmptyAttrs = Record<string, never>;

/** A session's transmit impairment as `session_get` reports it (percent, ms, bit/s; seed null = random). */
import type { ImpairJson } from '../engine/impair.js';
export type { ImpairJson };

/** `impair`: set (or with `off`, clear) a session's transmit impairment (src/io/impair.ts). */
export interface ImpairAttrs {
  tunnel_id: number;
  session_id: number;
  off?: boolean;
  loss?: number; // percent 0..100
  duplicate?: number;
  reorder?: number;
  distance?: number; // 1..1000 packets
  delay?: number; // ms 0..60000
  jitter?: number;
  rate?: number; // bits/s
  seed?: number; // u32
}

/** `capture`: stream packets on this connection (0 = any tunnel / session). */
export interface CaptureAttrs {
  tunnel_id?: number;
  session_id?: number;
}

/** One request inside a `batch` (only the four create/delete ops). */
export type BatchRequest =
  | { op: 'tunnel_create'; attrs: TunnelCreateAttrs }
  | { op: 'tunnel_delete'; attrs: TunnelDeleteAttrs }
  | { op: 'session_create'; attrs: SessionCreateAttrs }
  | { op: 'session_delete'; attrs: SessionDeleteAttrs };

/**
 * `batch`: the requests of several command lines in one round trip (ul2tp
 * -batch). Each line's requests all run; a line failed when its last request
 * did; with `stop_on_error` nothing after a failed line runs.
 */
export interface BatchAttrs {
  lines: BatchRequest[][];
  stop_on_error: boolean;
}

/** One request's outcome in a batch reply. */
export type BatchOutcome = { ok: true; result: unknown } | { ok: false; error: ErrorBody };

export interface OpAttrs {
  hello: EmptyAttrs;
  tunnel_create: TunnelCreateAttrs;
  tunnel_delete: TunnelDeleteAttrs;
  tunnel_get: EmptyAttrs;
  session_create: SessionCreateAttrs;
  session_delete: SessionDeleteAttrs;
  session_get: EmptyAttrs;
  status: EmptyAttrs;
  impair: ImpairAttrs;
  capture: CaptureAttrs;
  batch: BatchAttrs;
  config_reload: EmptyAttrs;
}

export type Op = keyof OpAttrs;
export const OPS: readonly Op[] = [
  'hello',
  'tunnel_create',
  'tunnel_delete',
  'tunnel_get',
  'session_create',
  'session_delete',
  'session_get',
  'status',
  'impair',
  'capture',
  'batch',
  'config_reload',
];

/**
 * Discriminated by `op`, so `switch (req.op)` narrows `req.attrs`. `version`
 * is the protocol version the client speaks (absent on the wire = 1; the
 * validator fills it in).
 */
export type Request = { [O in Op]: { id: number; version: number; op: O; attrs: OpAttrs[O] } }[Op];

export type Counters = Readonly<Record<string, number>>;

/**
 * The counter names a `stats` object carries (the kernel's l2tp_stats, in the
 * order iproute2 would print them) and the `drops` names with their help text:
 * the engine's counters are the protocol's vocabulary.
 */
export { COUNTER_NAMES, EXTRA_COUNTERS, EXTRA_COUNTER_HELP } from '../engine/stats.js';

export interface TunnelInfo {
  tunnel_id: number;
  peer_tunnel_id: number;
  encap: Encap;
  family: 4 | 6;
  local: string;
  remote: string;
  udp_sport: number;
  udp_dport: number;
  /** `udp_csum on` was given (what `show` prints). */
  udp_csum: boolean;
  /** The datagrams carry UDP checksums (IPv4: unless `udp_csum off` was given; IPv6: udp6_csum_tx). Added in 0.2; absent from older daemons. */
  udp_csum_tx?: boolean;
  udp6_csum_tx: boolean;
  udp6_csum_rx: boolean;
  stats: Counters;
  /** Drops the kernel does not count (rx_no_session, rx_control, rx_short, rx_dev_drops). */
  drops?: Counters;
}

export interface SessionInfo {
  tunnel_id: number;
  session_id: number;
  peer_session_id: number;
  peer_tunnel_id: number; // the tunnel's peer id
  ifname: string;
  cookie: string; // lowercase hex, '' when unset
  peer_cookie: string;
  l2spec_type: L2specType;
  send_seq: boolean; // current value (the LAC rule may have flipped it)
  recv_seq: boolean;
  reorder_timeout: number;
  stats: Counters;
  /** Drops the kernel does not count (rx_no_session, rx_control, rx_short, rx_dev_drops). */
  drops?: Counters;
  /** Active transmit impairment (absent when none). */
  impairment?: ImpairJson;
}

export interface StatusResult {
  pid: number;
  /** The daemon's package version. */
  version: string;
  backend: string;
  /** The protocol version the daemon speaks (PROTOCOL_VERSION). */
  protocol?: number;
  tunnels?: number;
  sessions?: number;
}

/** `hello`: what the daemon speaks; a client sends it first to learn the daemon's protocol versions and ops. */
export interface HelloResult {
  /** Newest protocol version the daemon speaks. */
  protocol: number;
  /** Oldest protocol version it still accepts. */
  min_protocol: number;
  /** The daemon's package version. */
  version: string;
  backend: string;
  ops: Op[];
}

export interface OpResult {
  hello: HelloResult;
  tunnel_create: unknown;
  tunnel_delete: unknown;
  tunnel_get: { tunnels: TunnelInfo[] };
  session_create: { ifname: string };
  session_delete: unknown;
  session_get: { sessions: SessionInfo[] };
  status: StatusResult;
  impair: unknown;
  /** The first reply; packet lines follow on the same connection (src/control/capture.ts). */
  capture: { started: true };
  /** One entry per line that ran (fewer than sent when a line failed and stop_on_error). */
  batch: { lines: BatchOutcome[][] };
  /** What the reload changed. */
  config_reload: { added: number; removed: number; kept: number; problems: string[] };
}

/**
 * A line of a capture stream after the `capture` reply (src/control/capture.ts):
 * `data` is the L2TP packet from the session header on, base64.
 */
export interface CapturePacketLine {
  id: number;
  packet: {
    t: number; // ms since the epoch
    dir: 'tx' | 'rx';
    encap: Encap;
    tunnel_id: number;
    session_id: number;
    data: string;
  };
}

/** Every error code a reply may carry; anything else is read as 'DAEMON'. */
export const ERROR_CODES: ReadonlySet<string> = new Set<L2tpErrorCode>([
  'MISSING_ARG',
  'BAD_ARG',
  'BAD_ADDR',
  'INCOMPLETE',
  'UNKNOWN_KEYWORD',
  'UNKNOWN_VERB',
  'UNKNOWN_VALUE',
  'USAGE',
  'KERNEL',
  'DAEMON',
  'PROTOCOL',
]);

export interface ErrorBody {
  code: L2tpErrorCode;
  errno?: string;
  message: string;
}

export interface ReplyOk {
  id: number;
  ok: true;
  result: unknown;
}

export interface ReplyError {
  id: number | null;
  ok: false;
  error: ErrorBody;
}

export type Reply = ReplyOk | ReplyError;

/**
 * The control socket protocol between `ul2tp` (client) and the daemon
 * (docs/ARCHITECTURE.md, "control/"). One JSON object per line, at most
 * MAX_LINE bytes per request line:
 *
 *   request  {"id":N,"op":OP,"attrs":{...}}
 *   reply    {"id":N,"ok":true,"result":...}
 *            {"id":N|null,"ok":false,"error":{"code":...,"errno":"EEXIST"?,"message":"..."}}
 *
 * Operations mirror the kernel's genetlink commands and attribute names are
 * iproute2's keys. `validateRequest` is the daemon's single gate: everything
 * past it has the types and ranges listed here, with defaults filled in.
 *
 * The address and interface-name helpers at the bottom are shared by the CLI
 * grammar (user input) and the validator (socket input), so both accept the
 * same things.
 */
import type { ImpairJson } from '../io/impair.js';
import { L2tpError, type L2tpErrorCode } from '../errors.js';

/** Longest request line in bytes, newline excluded. */
export const MAX_LINE = 65536;
/** Longest reply line the client accepts (a dump of many sessions is long). */
export const MAX_REPLY_LINE = 64 * 1024 * 1024;

export const U32_MAX = 0xffffffff;

// ---------------------------------------------------------------------------
// Message types

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
  udp_csum: boolean; // default false
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

/** Discriminated by `op`, so `switch (req.op)` narrows `req.attrs`. */
export type Request = { [O in Op]: { id: number; op: O; attrs: OpAttrs[O] } }[Op];

export type Counters = Readonly<Record<string, number>>;

export interface TunnelInfo {
  tunnel_id: number;
  peer_tunnel_id: number;
  encap: Encap;
  family: 4 | 6;
  local: string;
  remote: string;
  udp_sport: number;
  udp_dport: number;
  udp_csum: boolean;
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
  /** Active transmit impairment (absent when none; src/io/impair.ts ImpairJson). */
  impairment?: ImpairJson;
}

export interface StatusResult {
  pid: number;
  version: string;
  backend: string;
}

export interface OpResult {
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

// ---------------------------------------------------------------------------
// Request validation (daemon side)

const protocolError = (msg: string): L2tpError => new L2tpError('PROTOCOL', msg);

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX;
}

type AttrKind = 'u32' | 'id' | 'u16' | 'bool' | 'encap' | 'addr' | 'name' | 'cookie' | 'l2spec' | 'ms' | 'pct' | 'count' | 'msf' | 'rate' | 'lines';

/** Ops allowed inside a batch, and the most requests one batch may carry. */
const BATCH_OPS: ReadonlySet<string> = new Set(['tunnel_create', 'tunnel_delete', 'session_create', 'session_delete']);
export const MAX_BATCH_REQUESTS = 4096;

interface AttrRule {
  kind: AttrKind;
  /** Used when the attribute is absent; `undefined` = required, `null` = optional without default. */
  dflt: unknown;
}

const req = (kind: AttrKind): AttrRule => ({ kind, dflt: undefined });
const opt = (kind: AttrKind, dflt: unknown = null): AttrRule => ({ kind, dflt });

const SCHEMA: Readonly<Record<Op, Readonly<Record<string, AttrRule>>>> = {
  tunnel_create: {
    tunnel_id: req('id'),
    peer_tunnel_id: req('u32'),
    encap: opt('encap', 'udp'),
    local: req('addr'),
    remote: req('addr'),
    udp_sport: opt('u16', 0),
    udp_dport: opt('u16', 0),
    udp_csum: opt('bool', false),
    udp6_csum_tx: opt('bool', true),
    udp6_csum_rx: opt('bool', true),
  },
  tunnel_delete: { tunnel_id: req('u32') },
  tunnel_get: {},
  session_create: {
    tunnel_id: req('id'),
    session_id: req('id'),
    peer_session_id: req('u32'),
    name: opt('name'),
    cookie: opt('cookie'),
    peer_cookie: opt('cookie'),
    l2spec_type: opt('l2spec', 'default'),
    send_seq: opt('bool', false),
    recv_seq: opt('bool', false),
    reorder_timeout: opt('ms'),
  },
  session_delete: { tunnel_id: req('u32'), session_id: req('u32') },
  session_get: {},
  status: {},
  impair: {
    tunnel_id: req('id'),
    session_id: req('id'),
    off: opt('bool'),
    loss: opt('pct'),
    duplicate: opt('pct'),
    reorder: opt('pct'),
    distance: opt('count'),
    delay: opt('msf'),
    jitter: opt('msf'),
    rate: opt('rate'),
    seed: opt('u32'),
  },
  capture: { tunnel_id: opt('u32', 0), session_id: opt('u32', 0) },
  batch: { lines: req('lines'), stop_on_error: opt('bool', true) },
  config_reload: {},
};

/** Checks one attribute value; returns the value to store (cookies are lowercased). */
function checkAttr(op: Op, key: string, kind: AttrKind, v: unknown): unknown {
  const bad = (what: string): L2tpError => protocolError(`${op}: attribute "${key}" must be ${what}`);
  switch (kind) {
    case 'u32':
      if (!isU32(v)) throw bad('an integer in 0..4294967295');
      return v;
    case 'id':
      if (!isU32(v) || v === 0) throw bad('an integer in 1..4294967295');
      return v;
    case 'u16':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) throw bad('an integer in 0..65535');
      return v;
    case 'ms':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad('a non-negative integer');
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw bad('true or false');
      return v;
    case 'pct':
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 100) throw bad('a number in 0..100');
      return v;
    case 'count':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1000) throw bad('an integer in 1..1000');
      return v;
    case 'msf':
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 60000) throw bad('a number in 0..60000');
      return v;
    case 'rate':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad('a non-negative integer');
      return v;
    case 'encap':
      if (v !== 'udp' && v !== 'ip') throw bad('"udp" or "ip"');
      return v;
    case 'l2spec':
      if (v !== 'none' && v !== 'default') throw bad('"none" or "default"');
      return v;
    case 'addr':
      if (typeof v !== 'string' || addressFamily(v) === 0) throw bad('an IPv4 or IPv6 address');
      return v;
    case 'name':
      if (typeof v !== 'string' || !validIfname(v)) throw bad('a valid interface name');
      return v;
    case 'cookie':
      if (typeof v !== 'string' || !(v === '' || /^(?:[0-9a-fA-F]{8}|[0-9a-fA-F]{16})$/.test(v)))
        throw bad('"" or 8 or 16 hex digits');
      return v.toLowerCase();
    case 'lines': {
      if (!Array.isArray(v) || !v.every((l) => Array.isArray(l) && l.length > 0)) throw bad('an array of non-empty arrays of requests');
      const lines = v as unknown[][];
      if (lines.reduce((n, l) => n + l.length, 0) > MAX_BATCH_REQUESTS) throw bad(`at most ${MAX_BATCH_REQUESTS} requests`);
      return lines.map((l) =>
        l.map((r) => {
          if (!isPlainObject(r) || typeof r.op !== 'string' || !BATCH_OPS.has(r.op)) throw bad('requests of tunnel_create, tunnel_delete, session_create or session_delete');
          const { op: o, attrs } = validateRequest({ id: 0, op: r.op, attrs: r.attrs });
          return { op: o, attrs };
        }),
      );
    }
  }
}

/**
 * Strict check of a decoded request line. Returns a new object with only the
 * known attributes, defaults filled in. Throws L2tpError('PROTOCOL') for any
 * unknown op or key, wrong type or out-of-range value. Never trusts `obj`.
 */
export function validateRequest(obj: unknown): Request {
  if (!isPlainObject(obj)) throw protocolError('request must be a JSON object');
  for (const k of Object.keys(obj)) {
    if (k !== 'id' && k !== 'op' && k !== 'attrs') throw protocolError(`unknown request field "${k}"`);
  }
  const { id, op } = obj;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw protocolError('"id" must be a non-negative integer');
  if (typeof op !== 'string' || !Object.prototype.hasOwnProperty.call(SCHEMA, op))
    throw protocolError(`unknown op ${JSON.stringify(op)}`);
  const schema = SCHEMA[op as Op];
  const attrsIn = obj.attrs === undefined ? {} : obj.attrs;
  if (!isPlainObject(attrsIn)) throw protocolError('"attrs" must be a JSON object');
  for (const k of Object.keys(attrsIn)) {
    if (!Object.prototype.hasOwnProperty.call(schema, k)) throw protocolError(`${op}: unknown attribute "${k}"`);
  }
  const attrs: Record<string, unknown> = {};
  for (const [key, rule] of Object.entries(schema)) {
    const v = attrsIn[key];
    if (v === undefined) {
      if (rule.dflt === undefined) throw protocolError(`${op}: attribute "${key}" is required`);
      if (rule.dflt !== null) attrs[key] = rule.dflt;
      continue;
    }
    attrs[key] = checkAttr(op as Op, key, rule.kind, v);
  }
  return { id, op, attrs } as Request;
}

// ---------------------------------------------------------------------------
// Replies (client side)

const ERROR_CODES: ReadonlySet<string> = new Set<L2tpErrorCode>([
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

/** The wire form of an error (daemon side). */
export function errorBody(e: L2tpError): ErrorBody {
  return e.errno === undefined ? { code: e.code, message: e.message } : { code: e.code, errno: e.errno, message: e.message };
}

/** Rebuilds the daemon's error as an L2tpError (client side). */
export function errorFromBody(b: ErrorBody): L2tpError {
  return new L2tpError(b.code, b.message, b.errno);
}

/** Checks the shape of a decoded reply line; throws L2tpError('PROTOCOL'). */
export function parseReply(obj: unknown): Reply {
  if (!isPlainObject(obj)) throw protocolError('reply must be a JSON object');
  const { id, ok } = obj;
  if (!(id === null || (typeof id === 'number' && Number.isSafeInteger(id)))) throw protocolError('reply has no valid "id"');
  if (ok === true) {
    if (id === null) throw protocolError('reply has no valid "id"');
    return { id, ok: true, result: obj.result };
  }
  if (ok !== false) throw protocolError('reply has no valid "ok"');
  const err = obj.error;
  if (!isPlainObject(err) || typeof err.message !== 'string') throw protocolError('error reply without a message');
  const code = typeof err.code === 'string' && ERROR_CODES.has(err.code) ? (err.code as L2tpErrorCode) : 'DAEMON';
  const errno = typeof err.errno === 'string' ? err.errno : undefined;
  return { id, ok: false, error: errno === undefined ? { code, message: err.message } : { code, errno, message: err.message } };
}

function field(o: Record<string, unknown>, key: string, type: 'number' | 'string' | 'boolean', what: string): void {
  if (typeof o[key] !== type) throw protocolError(`${what}: field "${key}" missing or not a ${type}`);
}

/** Checks a `tunnel_get` result before it is printed. */
export function checkTunnelList(result: unknown): TunnelInfo[] {
  const list = isPlainObject(result) ? result.tunnels : undefined;
  if (!Array.isArray(list)) throw protocolError('tunnel_get reply without a "tunnels" array');
  for (const t of list) {
    if (!isPlainObject(t)) throw protocolError('tunnel_get: entry is not an object');
    for (const k of ['tunnel_id', 'peer_tunnel_id', 'udp_sport', 'udp_dport', 'family']) field(t, k, 'number', 'tunnel_get');
    for (const k of ['encap', 'local', 'remote']) field(t, k, 'string', 'tunnel_get');
    for (const k of ['udp_csum', 'udp6_csum_tx', 'udp6_csum_rx']) field(t, k, 'boolean', 'tunnel_get');
  }
  return list as TunnelInfo[];
}

/** Checks a `session_get` result before it is printed. */
export function checkSessionList(result: unknown): SessionInfo[] {
  const list = isPlainObject(result) ? result.sessions : undefined;
  if (!Array.isArray(list)) throw protocolError('session_get reply without a "sessions" array');
  for (const s of list) {
    if (!isPlainObject(s)) throw protocolError('session_get: entry is not an object');
    for (const k of ['tunnel_id', 'session_id', 'peer_session_id', 'peer_tunnel_id']) field(s, k, 'number', 'session_get');
    for (const k of ['ifname', 'cookie', 'peer_cookie']) field(s, k, 'string', 'session_get');
    for (const k of ['send_seq', 'recv_seq']) field(s, k, 'boolean', 'session_get');
    if (s.reorder_timeout !== undefined) field(s, 'reorder_timeout', 'number', 'session_get');
  }
  return list as SessionInfo[];
}

// ---------------------------------------------------------------------------
// Framing

/** One message per line. JSON.stringify escapes newlines inside strings. */
export function encodeLine(msg: unknown): string {
  return JSON.stringify(msg) + '\n';
}

/**
 * Splits a byte stream into '\n'-terminated lines of at most `maxLine` bytes
 * (newline excluded) and decodes each as UTF-8. A line that grows past the
 * limit is reported once through `onOversize` as soon as the limit is crossed
 * (so a peer cannot make us buffer without bound); its remaining bytes are
 * dropped up to and including the next newline, then framing resumes.
 */
export class LineFramer {
  private parts: Buffer[] = [];
  private size = 0;
  private discarding = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onOversize: () => void,
    private readonly maxLine: number = MAX_LINE,
  ) {}

  /** Bytes of the current incomplete line held in memory. */
  get pending(): number {
    return this.size;
  }

  push(chunk: Buffer | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let pos = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(0x0a, pos);
      const end = nl < 0 ? buf.length : nl;
      const seg = buf.subarray(pos, end);
      if (this.discarding) {
        if (nl >= 0) this.discarding = false;
      } else if (this.size + seg.length > this.maxLine) {
        this.parts = [];
        this.size = 0;
        this.discarding = nl < 0;
        this.onOversize();
      } else if (nl >= 0) {
        const line = this.parts.length === 0 ? seg.toString('utf8') : Buffer.concat([...this.parts, seg]).toString('utf8');
        this.parts = [];
        this.size = 0;
        this.onLine(line);
      } else {
        // The chunk may be reused by the caller: keep a copy.
        this.parts.push(Buffer.from(seg));
        this.size += seg.length;
      }
      if (nl < 0) break;
      pos = nl + 1;
    }
  }
}

// ---------------------------------------------------------------------------
// Addresses and names (shared with the CLI grammar)

/**
 * glibc `inet_pton(AF_INET, ...)`: exactly four dotted decimal parts 0..255,
 * no leading zeros, nothing else. Returns the 4 bytes or null.
 */
export function ptonIPv4(s: string, start = 0, end = s.length): number[] | null {
  const out = [0];
  let sawDigit = false;
  let octets = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      const cur = out[out.length - 1];
      if (sawDigit && cur === 0) return null; // leading zero
      const next = cur * 10 + (c - 0x30);
      if (next > 255) return null;
      out[out.length - 1] = next;
      if (!sawDigit) {
        if (++octets > 4) return null;
        sawDigit = true;
      }
    } else if (c === 0x2e && sawDigit) {
      if (octets === 4) return null;
      out.push(0);
      sawDigit = false;
    } else {
      return null;
    }
  }
  return octets < 4 ? null : out;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * glibc `inet_pton(AF_INET6, ...)`: up to eight groups of 1-4 hex digits, one
 * `::`, an optional dotted IPv4 tail. No zone ids, no brackets. Returns the 16
 * bytes or null.
 */
export function ptonIPv6(s: string): Uint8Array | null {
  const out = new Uint8Array(16);
  let tp = 0;
  let colonp = -1;
  let i = 0;
  const n = s.length;
  if (n === 0) return null;
  if (s.charCodeAt(0) === 0x3a) {
    if (n < 2 || s.charCodeAt(1) !== 0x3a) return null;
    i = 1;
  }
  let curtok = i;
  let digits = 0;
  let val = 0;
  let sawV4 = false;
  while (i < n) {
    const c = s.charCodeAt(i++);
    const d = hexValue(c);
    if (d >= 0) {
      if (digits === 4) return null;
      val = (val << 4) | d;
      digits++;
      continue;
    }
    if (c === 0x3a) {
      curtok = i;
      if (digits === 0) {
        if (colonp >= 0) return null;
        colonp = tp;
        continue;
      }
      if (i === n) return null; // trailing single ':'
      if (tp + 2 > 16) return null;
      out[tp++] = val >> 8;
      out[tp++] = val & 0xff;
      digits = 0;
      val = 0;
      continue;
    }
    if (c === 0x2e && tp + 4 <= 16) {
      const v4 = ptonIPv4(s, curtok, n);
      if (v4 === null) return null;
      for (const b of v4) out[tp++] = b;
      digits = 0;
      sawV4 = true;
      break;
    }
    return null;
  }
  if (!sawV4 && digits > 0) {
    if (tp + 2 > 16) return null;
    out[tp++] = val >> 8;
    out[tp++] = val & 0xff;
  }
  if (colonp >= 0) {
    if (tp === 16) return null; // '::' would stand for nothing
    const moved = tp - colonp;
    out.copyWithin(16 - moved, colonp, tp);
    out.fill(0, colonp, 16 - moved);
    tp = 16;
  }
  return tp === 16 ? out : null;
}

/** glibc `inet_ntop(AF_INET, ...)`. */
export function ntopIPv4(b: ArrayLike<number>, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/**
 * glibc `inet_ntop(AF_INET6, ...)`: lowercase, no leading zeros, the first
 * longest run of two or more zero groups as `::`, and `::a.b.c.d` /
 * `::ffff:a.b.c.d` for IPv4-compatible and IPv4-mapped addresses.
 */
export function ntopIPv6(b: ArrayLike<number>): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[2 * i] << 8) | b[2 * i + 1]);
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let i = 0; i <= 8; i++) {
    if (i < 8 && w[i] === 0) {
      if (curBase < 0) {
        curBase = i;
        curLen = 1;
      } else curLen++;
    } else if (curBase >= 0) {
      if (bestBase < 0 || curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (bestBase >= 0 && bestLen < 2) bestBase = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
      out += ntopIPv4(b, 12);
      break;
    }
    out += w[i].toString(16);
  }
  if (bestBase >= 0 && bestBase + bestLen === 8) out += ':';
  return out;
}

/** 4 or 6 when `s` is an address in inet_pton's text form, else 0. */
export function addressFamily(s: string): 0 | 4 | 6 {
  if (s.includes(':')) return ptonIPv6(s) === null ? 0 : 6;
  return ptonIPv4(s) === null ? 0 : 4;
}

const IFNAMSIZ = 16;

/**
 * iproute2's `check_ifname` (which mirrors the kernel's dev_valid_name):
 * non-empty, shorter than IFNAMSIZ bytes, not "." or "..", no '/' and no C
 * `isspace` character. (The kernel additionally refuses ':' when it creates
 * the device; that is the daemon's EINVAL, not a CLI error.)
 */
export function validIfname(name: string): boolean {
  if (name === '' || Buffer.byteLength(name, 'utf8') >= IFNAMSIZ) return false;
  if (name === '.' || name === '..') return false;
  return !/[/ \t\n\v\f\r]/.test(name);
}

/**
 * Checks of what crosses the control socket (docs/control-protocol.md).
 *
 * `validateRequest` is the daemon's single gate: everything past it has the
 * types and ranges of protocol.ts, with defaults filled in. `parseReply` and
 * the result checks are the client's. `validIfname` is shared with the CLI
 * grammar, so the CLI (user input) and the daemon (socket input) accept the
 * same names; addresses are address.ts's inet_pton.
 */
import { L2tpError, type L2tpErrorCode } from '../errors.js';
import { addressFamily } from '../wire/address.js';
import {
  ERROR_CODES,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  U32_MAX,
  type ErrorBody,
  type Op,
  type Reply,
  type Request,
  type SessionInfo,
  type TunnelInfo,
} from './protocol.js';

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
  hello: {},
  tunnel_create: {
    tunnel_id: req('id'),
    peer_tunnel_id: req('u32'),
    encap: opt('encap', 'udp'),
    local: req('addr'),
    remote: req('addr'),
    udp_sport: opt('u16', 0),
    udp_dport: opt('u16', 0),
    udp_csum: opt('bool'),
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

/** 'version 1', or 'versions 1..2' once there are several. */
function supportedVersions(): string {
  const lo: number = MIN_PROTOCOL_VERSION;
  const hi: number = PROTOCOL_VERSION;
  return lo === hi ? `version ${hi}` : `versions ${lo}..${hi}`;
}

/**
 * Strict check of a decoded request line. Returns a new object with only the
 * known attributes, defaults filled in. Throws L2tpError('PROTOCOL') for any
 * unknown op or key, wrong type or out-of-range value. Never trusts `obj`.
 */
export function validateRequest(obj: unknown): Request {
  if (!isPlainObject(obj)) throw protocolError('request must be a JSON object');
  for (const k of Object.keys(obj)) {
    if (k !== 'id' && k !== 'op' && k !== 'attrs' && k !== 'version') throw protocolError(`unknown request field "${k}"`);
  }
  const { id, op } = obj;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw protocolError('"id" must be a non-negative integer');
  const version = obj.version === undefined ? 1 : obj.version;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1)
    throw protocolError('"version" must be a positive integer');
  if (version < MIN_PROTOCOL_VERSION || version > PROTOCOL_VERSION)
    throw new L2tpError(
      'PROTOCOL',
      `protocol version ${version} is not supported: this daemon speaks ${supportedVersions()}`,
      'EPROTONOSUPPORT',
    );
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
  return { id, version, op, attrs } as Request;
}

// ---------------------------------------------------------------------------
// Replies (client side)

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
    if (t.udp_csum_tx !== undefined) field(t, 'udp_csum_tx', 'boolean', 'tunnel_get');
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
// Interface names

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

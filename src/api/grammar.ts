/**
 * The `ip l2tp` grammar as data: every keyword of iproute2's `parse_args`
 * (ip/ipl2tp.c), its aliases and its value parser, plus the C library
 * behaviour those parsers rely on (strtoul base 0, inet_aton-style IPv4 parts,
 * inet_pton for IPv6, hex2mem). docs/protocol.md §4.2 is the authority.
 *
 * Each value parser either stores into `Params` or throws the L2tpError whose
 * message is the exact text iproute2 prints (see errors below).
 */
import { L2tpError } from '../errors.js';
import type { Encap, L2specType } from '../control/protocol.js';
import { getAddr, type Addr } from '../wire/address.js';
import { strtoul } from '../wire/strtoul.js';
import { validIfname } from '../control/validate.js';

export { getAddr, strtoul, type Addr };

// ---------------------------------------------------------------------------
// Errors with iproute2's wording. The message is the text printed on stderr
// without its final newline (reasons of `invarg` carry their own '\n').

/** `invarg(msg, arg)`: exit 255. */
export const invarg = (msg: string, arg: string): L2tpError =>
  new L2tpError('BAD_ARG', `Error: argument "${arg}" is wrong: ${msg}`);
/** `missarg(key)`: exit 255. */
export const missarg = (key: string): L2tpError => new L2tpError('MISSING_ARG', `Error: argument "${key}" is required`);
/** `NEXT_ARG()` past the end: exit 255. */
export const incomplete = (): L2tpError =>
  new L2tpError('INCOMPLETE', 'Command line is not complete. Try option "help"');
/** Printed with the usage text after it: exit 255. */
export const unknownKeyword = (tok: string): L2tpError => new L2tpError('UNKNOWN_KEYWORD', `Unknown command: ${tok}`);
/** Unknown command word: exit 255. */
export const unknownVerb = (w: string): L2tpError =>
  new L2tpError('UNKNOWN_VERB', `Command "${w}" is unknown, try "ip l2tp help".`);
/** `Unknown seq value "x"` and friends: exit 255. */
export const unknownValue = (text: string): L2tpError => new L2tpError('UNKNOWN_VALUE', text);
/** The usage text alone: exit 255. */
export const usageError = (): L2tpError => new L2tpError('USAGE', 'usage');
/** `get_addr` failure: exit 1 (iproute2 exits right there). */
export const badAddress = (arg: string): L2tpError =>
  new L2tpError('BAD_ADDR', `Error: any valid address is expected rather than "${arg}".`);

// ---------------------------------------------------------------------------
// C library behaviour

/** iproute2's `matches(prefix, word)`: a non-empty prefix of `word`. */
export function matches(prefix: string, word: string): boolean {
  return prefix.length > 0 && word.startsWith(prefix);
}

function getUnsigned(arg: string, max: number): number | null {
  if (arg === '') return null;
  const r = strtoul(arg);
  if (r.end === 0 || r.end !== arg.length || r.overflow) return null;
  if (r.value > BigInt(max)) return null;
  return Number(r.value);
}

/** iproute2's `get_u32(&v, arg, 0)`; null when it would fail. */
export const getU32 = (arg: string): number | null => getUnsigned(arg, 0xffffffff);
/** iproute2's `get_u16(&v, arg, 0)`; null when it would fail. */
export const getU16 = (arg: string): number | null => getUnsigned(arg, 0xffff);

/**
 * `cookie`/`peer_cookie`: the length (in bytes, like strlen) must be 8 or 16,
 * then every character a hex digit (hex2mem). Returns lowercase hex.
 */
export function parseCookie(arg: string): string {
  const len = Buffer.byteLength(arg, 'utf8');
  if (len !== 8 && len !== 16) throw invarg('cookie must be either 8 or 16 hex digits\n', arg);
  if (!/^[0-9a-fA-F]+$/.test(arg)) throw invarg('cookie must be a hex string\n', arg);
  return arg.toLowerCase();
}

// ---------------------------------------------------------------------------
// Parameters (iproute2's struct l2tp_parm) and the keyword table

export interface Params {
  tunnel: boolean;
  session: boolean;
  encap: Encap;
  name: string | null;
  local: Addr;
  remote: Addr;
  tunnelId: number;
  peerTunnelId: number;
  sessionId: number;
  peerSessionId: number;
  udpSport: number;
  udpDport: number;
  udpCsum: boolean | undefined; // undefined: not given (see engine/config.ts)
  udp6CsumTx: boolean;
  udp6CsumRx: boolean;
  cookie: string; // '' = none
  peerCookie: string;
  l2specType: L2specType;
  sendSeq: boolean;
  recvSeq: boolean;
}

/** Defaults applied before parsing (parse_args' memset + explicit defaults). */
export function defaultParams(): Params {
  return {
    tunnel: false,
    session: false,
    encap: 'udp',
    name: null,
    local: { family: 0, text: '' },
    remote: { family: 0, text: '' },
    tunnelId: 0,
    peerTunnelId: 0,
    sessionId: 0,
    peerSessionId: 0,
    udpSport: 0,
    udpDport: 0,
    udpCsum: undefined,
    udp6CsumTx: true,
    udp6CsumRx: true,
    cookie: '',
    peerCookie: '',
    l2specType: 'default',
    sendSeq: false,
    recvSeq: false,
  };
}

export interface Keyword {
  /** The keyword and its aliases, matched exactly (strcmp). */
  names: readonly string[];
  /** Whether the keyword consumes the next argument. */
  takesValue: boolean;
  /** A stderr line printed as soon as the keyword is seen (before its value is read). */
  announce?: string;
  /** Stores the value; throws the iproute2 error for a bad one. */
  apply(p: Params, value: string): void;
}

function id(key: 'tunnelId' | 'peerTunnelId' | 'sessionId' | 'peerSessionId') {
  return (p: Params, v: string): void => {
    const n = getU32(v);
    if (n === null) throw invarg('invalid ID\n', v);
    p[key] = n;
  };
}

function port(key: 'udpSport' | 'udpDport') {
  return (p: Params, v: string): void => {
    const n = getU16(v);
    if (n === null) throw invarg('invalid port\n', v);
    p[key] = n;
  };
}

function onOff(key: 'udpCsum' | 'udp6CsumTx' | 'udp6CsumRx', word: string) {
  return (p: Params, v: string): void => {
    if (v === 'on') p[key] = true;
    else if (v === 'off') p[key] = false;
    else throw invarg(`invalid option for ${word}\n`, v);
  };
}

function address(key: 'local' | 'remote') {
  return (p: Params, v: string): void => {
    const a = getAddr(v);
    if (a === null) throw badAddress(v);
    p[key] = a;
  };
}

/** Every keyword of `parse_args`, in iproute2's order. */
export const KEYWORDS: readonly Keyword[] = [
  {
    names: ['encap'],
    takesValue: true,
    apply(p, v) {
      if (v === 'ip') p.encap = 'ip';
      else if (v === 'udp') p.encap = 'udp';
      else throw unknownValue(`Unknown tunnel encapsulation "${v}"`);
    },
  },
  {
    names: ['name'],
    takesValue: true,
    apply(p, v) {
      if (!validIfname(v)) throw invarg('"name" not a valid ifname', v);
      p.name = v;
    },
  },
  { names: ['remote'], takesValue: true, apply: address('remote') },
  { names: ['local'], takesValue: true, apply: address('local') },
  { names: ['tunnel_id', 'tid'], takesValue: true, apply: id('tunnelId') },
  { names: ['peer_tunnel_id', 'ptid'], takesValue: true, apply: id('peerTunnelId') },
  { names: ['session_id', 'sid'], takesValue: true, apply: id('sessionId') },
  { names: ['peer_session_id', 'psid'], takesValue: true, apply: id('peerSessionId') },
  { names: ['udp_sport'], takesValue: true, apply: port('udpSport') },
  { names: ['udp_dport'], takesValue: true, apply: port('udpDport') },
  { names: ['udp_csum'], takesValue: true, apply: onOff('udpCsum', 'udp_csum') },
  { names: ['udp6_csum_rx'], takesValue: true, apply: onOff('udp6CsumRx', 'udp6_csum_rx') },
  { names: ['udp6_csum_tx'], takesValue: true, apply: onOff('udp6CsumTx', 'udp6_csum_tx') },
  // iproute2 warns before NEXT_ARG, so the warning appears even when the value is missing.
  { names: ['offset'], takesValue: true, announce: 'Ignoring option "offset"', apply() {} },
  { names: ['peer_offset'], takesValue: true, announce: 'Ignoring option "peer_offset"', apply() {} },
  {
    names: ['cookie'],
    takesValue: true,
    apply(p, v) {
      p.cookie = parseCookie(v);
    },
  },
  {
    names: ['peer_cookie'],
    takesValue: true,
    apply(p, v) {
      p.peerCookie = parseCookie(v);
    },
  },
  {
    names: ['l2spec_type'],
    takesValue: true,
    apply(p, v) {
      const w = v.toLowerCase();
      if (w === 'default') p.l2specType = 'default';
      else if (w === 'none') p.l2specType = 'none';
      else throw unknownValue(`Unknown layer2specific header type "${v}"`);
    },
  },
  {
    names: ['seq'],
    takesValue: true,
    apply(p, v) {
      // The flags only accumulate: `seq send seq recv` is both; only `none` clears.
      switch (v.toLowerCase()) {
        case 'both':
          p.sendSeq = true;
          p.recvSeq = true;
          break;
        case 'recv':
          p.recvSeq = true;
          break;
        case 'send':
          p.sendSeq = true;
          break;
        case 'none':
          p.sendSeq = false;
          p.recvSeq = false;
          break;
        default:
          throw unknownValue(`Unknown seq value "${v}"`);
      }
    },
  },
  {
    names: ['tunnel'],
    takesValue: false,
    apply(p) {
      p.tunnel = true;
    },
  },
  {
    names: ['session'],
    takesValue: false,
    apply(p) {
      p.session = true;
    },
  },
];

/** Keyword lookup by exact name (aliases included). */
export const KEYWORD_BY_NAME: ReadonlyMap<string, Keyword> = new Map(
  KEYWORDS.flatMap((k) => k.names.map((n) => [n, k] as [string, Keyword])),
);


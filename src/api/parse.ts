/**
 * argv after `ip l2tp` → a command for the daemon, with iproute2's exact
 * behaviour (docs/protocol.md §4.1-4.4): the command word by prefix, then one flat
 * option loop shared by add, del and show (`parse_args`), then the required
 * argument checks in iproute2's order. Errors are thrown as L2tpError whose
 * message is iproute2's text; `cliErrorOutput` turns one into stderr + status.
 */
import { ERRNO_TEXT, L2tpError } from '../errors.js';
import type {
  SessionCreateAttrs,
  SessionDeleteAttrs,
  TunnelCreateAttrs,
  TunnelDeleteAttrs,
} from '../control/protocol.js';
import {
  KEYWORD_BY_NAME,
  defaultParams,
  incomplete,
  matches,
  missarg,
  unknownKeyword,
  unknownVerb,
  usageError,
  type Params,
} from './grammar.js';
import { USAGE } from './usage.js';

export type Verb = 'add' | 'del' | 'show';

export type DeleteRequest =
  | { op: 'tunnel_delete'; attrs: TunnelDeleteAttrs }
  | { op: 'session_delete'; attrs: SessionDeleteAttrs };

export type Command =
  /** Tunnel first, then session; either may be null but not both. */
  | { verb: 'add'; tunnel: TunnelCreateAttrs | null; session: SessionCreateAttrs | null }
  | { verb: 'del'; request: DeleteRequest }
  /** `tunnelId`/`sessionId` 0 = no filter. */
  | { verb: 'show'; what: 'tunnel' | 'session'; tunnelId: number; sessionId: number };

/** Writes one stderr line (without its newline) while parsing goes on. */
export type Warn = (line: string) => void;

/**
 * iproute2's `parse_args`: every keyword is accepted by every command, later
 * values overwrite earlier ones, `tunnel`/`session` are flags anywhere. An
 * empty list is a usage error.
 */
export function parseArgs(args: readonly string[], warn: Warn): Params {
  if (args.length === 0) throw usageError();
  const p = defaultParams();
  for (let i = 0; i < args.length; i++) {
    const tok = args[i];
    const kw = KEYWORD_BY_NAME.get(tok);
    if (kw !== undefined) {
      if (kw.announce !== undefined) warn(kw.announce);
      if (kw.takesValue) {
        if (++i >= args.length) throw incomplete();
        kw.apply(p, args[i]);
      } else {
        kw.apply(p, '');
      }
    } else if (matches(tok, 'help')) {
      throw usageError();
    } else {
      throw unknownKeyword(tok);
    }
  }
  return p;
}

/** The command word: `add`, `delete`, `show`/`lst`/`list`, each by prefix. */
export function parseVerb(word: string): Verb {
  if (matches(word, 'add')) return 'add';
  if (matches(word, 'delete')) return 'del';
  if (matches(word, 'show') || matches(word, 'lst') || matches(word, 'list')) return 'show';
  throw unknownVerb(word);
}

function tunnelAttrs(p: Params): TunnelCreateAttrs {
  const udp = p.encap === 'udp';
  return {
    tunnel_id: p.tunnelId,
    peer_tunnel_id: p.peerTunnelId,
    encap: p.encap,
    local: p.local.text,
    remote: p.remote.text,
    udp_sport: udp ? p.udpSport : 0,
    udp_dport: udp ? p.udpDport : 0,
    ...(p.udpCsum !== undefined ? { udp_csum: p.udpCsum } : {}), // absent: not given
    udp6_csum_tx: p.udp6CsumTx,
    udp6_csum_rx: p.udp6CsumRx,
  };
}

function sessionAttrs(p: Params): SessionCreateAttrs {
  const a: SessionCreateAttrs = {
    tunnel_id: p.tunnelId,
    session_id: p.sessionId,
    peer_session_id: p.peerSessionId,
    l2spec_type: p.l2specType,
    send_seq: p.sendSeq,
    recv_seq: p.recvSeq,
  };
  // Like iproute2, send the name and cookies only when given.
  if (p.name !== null) a.name = p.name;
  if (p.cookie !== '') a.cookie = p.cookie;
  if (p.peerCookie !== '') a.peer_cookie = p.peerCookie;
  return a;
}

/** `do_add`'s checks, in order (docs/protocol.md §4.3). */
export function checkAdd(p: Params): Command {
  if (!p.tunnel && !p.session) throw missarg('tunnel or session');
  if (p.tunnelId === 0) throw missarg('tunnel_id');
  if (p.session && p.peerSessionId === 0) throw missarg('peer_session_id');
  if (p.session && p.sessionId === 0) throw missarg('session_id');
  if (p.tunnel && p.peerTunnelId === 0) throw missarg('peer_tunnel_id');
  if (p.tunnel) {
    if (p.local.family === 0) throw missarg('local');
    if (p.remote.family === 0) throw missarg('remote');
    if (p.encap === 'udp') {
      if (p.udpSport === 0) throw missarg('udp_sport');
      if (p.udpDport === 0) throw missarg('udp_dport');
    }
  }
  return {
    verb: 'add',
    tunnel: p.tunnel ? tunnelAttrs(p) : null,
    session: p.session ? sessionAttrs(p) : null,
  };
}

/** `do_del`'s checks; a non-zero session_id makes it a session delete, whatever the flags. */
export function checkDel(p: Params): Command {
  if (!p.tunnel && !p.session) throw missarg('tunnel or session');
  if (p.tunnel && p.tunnelId === 0) throw missarg('tunnel_id');
  if (p.session && p.sessionId === 0) throw missarg('session_id');
  const request: DeleteRequest =
    p.sessionId !== 0
      ? { op: 'session_delete', attrs: { tunnel_id: p.tunnelId, session_id: p.sessionId } }
      : { op: 'tunnel_delete', attrs: { tunnel_id: p.tunnelId } };
  return { verb: 'del', request };
}

/** `do_show`: the session flag wins. */
export function checkShow(p: Params): Command {
  if (!p.tunnel && !p.session) throw missarg('tunnel or session');
  return { verb: 'show', what: p.session ? 'session' : 'tunnel', tunnelId: p.tunnelId, sessionId: p.sessionId };
}

/**
 * `ip l2tp <argv>`: no argument or a prefix of `help` is the usage; then the
 * command word; then its arguments.
 */
export function parseCommand(argv: readonly string[], warn: Warn): Command {
  if (argv.length === 0 || matches(argv[0], 'help')) throw usageError();
  const verb = parseVerb(argv[0]);
  const p = parseArgs(argv.slice(1), warn);
  if (verb === 'add') return checkAdd(p);
  if (verb === 'del') return checkDel(p);
  return checkShow(p);
}

/** What the user sees for an error: stderr text (with its final newline) and exit status. */
export interface CliOutput {
  stderr: string;
  status: number;
}

/**
 * iproute2's wording and exit status for an error (docs/protocol.md §4.4). Daemon
 * errors carrying an errno read `RTNETLINK answers: <strerror>` (exit 2, the
 * status of a failed add/del); anything else unexpected is `Error: <message>`.
 */
export function cliErrorOutput(e: L2tpError): CliOutput {
  switch (e.code) {
    case 'USAGE':
      return { stderr: USAGE, status: 255 };
    case 'UNKNOWN_KEYWORD':
      return { stderr: `${e.message}\n${USAGE}`, status: 255 };
    case 'BAD_ADDR':
      return { stderr: `${e.message}\n`, status: 1 };
    case 'MISSING_ARG':
    case 'BAD_ARG':
    case 'INCOMPLETE':
    case 'UNKNOWN_VERB':
    case 'UNKNOWN_VALUE':
      return { stderr: `${e.message}\n`, status: 255 };
    case 'KERNEL': {
      const text = (e.errno !== undefined ? ERRNO_TEXT[e.errno] : undefined) ?? e.message.split('\n')[0];
      // iproute2 prints the errno text alone; a message with a second line carries a
      // hint for the user (e.g. what to install), printed after it.
      const nl = e.message.indexOf('\n');
      const hint = nl >= 0 ? `${e.message.slice(nl + 1).trimEnd()}\n` : '';
      return { stderr: `RTNETLINK answers: ${text}\n${hint}`, status: 2 };
    }
    default:
      return { stderr: `Error: ${e.message}\n`, status: 1 };
  }
}

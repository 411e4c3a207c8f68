/**
 * `show tunnel` / `show session` output, byte for byte as iproute2 prints it
 * (docs/protocol.md §4.7-4.9, ip/ipl2tp.c print_tunnel/print_session). Every field goes
 * through one `Printer` call that carries both its text format and its JSON
 * key, like iproute2's `print_uint(PRINT_ANY, key, fmt, v)`, so the text and
 * `-j` outputs cannot drift apart. The JSON writer reproduces iproute2's
 * json_writer (separators, pretty indentation, string escaping).
 *
 * Deliberate difference: every session is printed with its own fields (no
 * stale cookie from the previous session of the dump, see
 * docs/cli-differences.md).
 */
import type { SessionInfo, TunnelInfo } from '../control/protocol.js';
import { COUNTER_NAMES, EXTRA_COUNTERS } from '../control/protocol.js';
import { formatImpair } from './impair-text.js';
import type { ImpairJson } from '../control/protocol.js';

export interface PrintOptions {
  json: boolean;
  pretty: boolean;
  /** `-o`: the line breaks made by print_nl become '\'. */
  oneline?: boolean;
  /** `-s`: counters after each object (ul2tp addition; iproute2 prints none). */
  stats?: boolean;
}

/** A nested JSON object (only `stats`, `drops` and `impairment` use one). */
export interface JsonObject {
  readonly members: ReadonlyArray<readonly [string, JsonValue]>;
}
type JsonValue = number | string | boolean | null | JsonObject;

/** What to print, like iproute2's enum output_type. */
const enum Kind {
  Text = 1, // PRINT_FP
  Json = 2, // PRINT_JSON
  Any = 3, // PRINT_ANY
}

/**
 * iproute2's `json_print` in miniature: in text mode the format is printed
 * with the value substituted for its one conversion (%u, %hu, %s); in JSON
 * mode the value is recorded under its key in the current object.
 */
class Printer {
  private text = '';
  private readonly objects: Array<Array<[string, JsonValue]>> = [];
  private current: Array<[string, JsonValue]> = [];

  constructor(private readonly opts: PrintOptions) {}

  get json(): boolean {
    return this.opts.json;
  }

  get stats(): boolean {
    return this.opts.stats === true;
  }

  open(): void {
    this.current = [];
  }

  close(): void {
    if (this.opts.json) this.objects.push(this.current);
  }

  /** `print_*(kind, key, fmt, value)`. A `null` fmt prints nothing in text mode. */
  field(kind: Kind, key: string | null, fmt: string | null, value: JsonValue): void {
    if (this.opts.json) {
      if (kind & Kind.Json && key !== null) this.current.push([key, value]);
    } else if (kind & Kind.Text && fmt !== null) {
      this.text += fmt.replace(/%(?:h?u|s)/, () => (typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)));
    }
  }

  /** `print_nl()`: a newline (or '\' with -o) in text mode, nothing in JSON. */
  nl(): void {
    if (!this.opts.json) this.text += this.sl;
  }

  /** iproute2's `_SL_`. */
  get sl(): string {
    return this.opts.oneline ? '\\' : '\n';
  }

  finish(): string {
    return this.opts.json ? jsonArray(this.objects, this.opts.pretty) : this.text;
  }
}

/** json_writer's `jsonw_puts`: C escapes, other control bytes as \u00xx, the rest as is. */
export function jsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    switch (c) {
      case 0x09:
        out += '\\t';
        break;
      case 0x0a:
        out += '\\n';
        break;
      case 0x0d:
        out += '\\r';
        break;
      case 0x0c:
        out += '\\f';
        break;
      case 0x08:
        out += '\\b';
        break;
      case 0x5c:
        out += '\\\\';
        break;
      case 0x22:
        out += '\\"';
        break;
      default:
        out += c < 0x20 || c === 0x7f ? `\\u${c.toString(16).padStart(4, '0')}` : s[i];
    }
  }
  return out + '"';
}

function jsonValue(v: JsonValue, pretty = false, depth = 2): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return jsonString(v);
  if (typeof v === 'object') {
    // json_writer's nested object: members one indent level deeper, '}' at the parent's level.
    if (!pretty) return '{' + v.members.map(([k, x]) => `${jsonString(k)}:${jsonValue(x)}`).join(',') + '}';
    if (v.members.length === 0) return '{}';
    const ind = ' '.repeat(4 * (depth + 1));
    return '{' + v.members.map(([k, x]) => `\n${ind}${jsonString(k)}: ${jsonValue(x, true, depth + 1)}`).join(',') + `\n${' '.repeat(4 * depth)}}`;
  }
  return String(v);
}

/**
 * The top-level array iproute2 prints for a dump, with its trailing newline.
 * Compact: `[{"k":v,...},{...}]`. Pretty: `[ {` then one member per line
 * indented 8 spaces, `    },{` between objects, `    } ]` at the end, and
 * `[ ]` when empty.
 */
export function jsonArray(objects: ReadonlyArray<ReadonlyArray<readonly [string, JsonValue]>>, pretty: boolean): string {
  if (!pretty) {
    const body = objects.map((o) => '{' + o.map(([k, v]) => `${jsonString(k)}:${jsonValue(v)}`).join(',') + '}');
    return `[${body.join(',')}]\n`;
  }
  const body = objects.map((o) => {
    if (o.length === 0) return '{}';
    return '{' + o.map(([k, v]) => `\n        ${jsonString(k)}: ${jsonValue(v, true)}`).join(',') + '\n    }';
  });
  return objects.length === 0 ? '[ ]\n' : `[ ${body.join(',')} ]\n`;
}

function encapName(encap: string): string {
  return encap === 'udp' ? 'UDP' : encap === 'ip' ? 'IP' : '??';
}

function printTunnel(pr: Printer, t: TunnelInfo): void {
  pr.open();
  pr.field(Kind.Any, 'tunnel_id', 'Tunnel %u,', t.tunnel_id);
  pr.field(Kind.Any, 'encap', ' encap %s', encapName(t.encap));
  pr.nl();
  pr.field(Kind.Any, 'local', '  From %s ', t.local);
  pr.field(Kind.Any, 'peer', 'to %s', t.remote);
  pr.nl();
  pr.field(Kind.Any, 'peer_tunnel', '  Peer tunnel %u', t.peer_tunnel_id);
  pr.nl();
  if (t.encap === 'udp') {
    pr.field(Kind.Text, null, '  UDP source / dest ports:', null);
    pr.field(Kind.Any, 'local_port', ' %hu', t.udp_sport);
    pr.field(Kind.Any, 'peer_port', '/%hu', t.udp_dport);
    pr.nl();
    if (t.family === 4) {
      pr.field(Kind.Json, 'checksum', null, t.udp_csum);
      pr.field(Kind.Text, null, '  UDP checksum: %s\n', t.udp_csum ? 'enabled' : 'disabled');
    } else if (t.family === 6) {
      pr.field(Kind.Json, 'checksum_tx', null, t.udp6_csum_tx);
      pr.field(Kind.Json, 'checksum_rx', null, t.udp6_csum_rx);
      const state =
        t.udp6_csum_tx && t.udp6_csum_rx ? 'enabled' : t.udp6_csum_tx ? 'tx' : t.udp6_csum_rx ? 'rx' : 'disabled';
      pr.field(Kind.Text, null, '  UDP checksum: %s\n', state);
    }
  }
  if (pr.stats) printStats(pr, t.stats, (t as { drops?: Record<string, number> }).drops);
  pr.close();
}

/** Counter value as printed (missing = 0). */
function cnt(c: Readonly<Record<string, number>> | undefined, k: string): number {
  const v = c?.[k];
  return typeof v === 'number' ? v : 0;
}

/** The kernel's counter names (netlink order) and ours for silent drops: engine/stats.ts. */
const KERNEL_COUNTERS = COUNTER_NAMES;
const DROP_COUNTERS = EXTRA_COUNTERS.map(([name]) => name);

/**
 * `-s`: three lines after the object, indented 4 (ul2tp's own format; the
 * names are the kernel's without the rx_/tx_ prefix):
 *     RX: packets 12 bytes 3456 errors 0 seq_discards 0 oos_packets 0 cookie_discards 0 invalid 0
 *     TX: packets 12 bytes 3456 errors 0
 *     drops: no_session 0 control 0 short 0 dev_drops 0
 * With -j: a "stats" object (kernel names) and a "drops" object (ours).
 */
function printStats(
  pr: Printer,
  stats: Readonly<Record<string, number>> | undefined,
  drops: Readonly<Record<string, number>> | undefined,
): void {
  if (pr.json) {
    pr.field(Kind.Json, 'stats', null, { members: KERNEL_COUNTERS.map((k) => [k, cnt(stats, k)] as const) });
    pr.field(Kind.Json, 'drops', null, { members: DROP_COUNTERS.map((k) => [k, cnt(drops, k)] as const) });
    return;
  }
  const rx = ['packets', 'bytes', 'errors', 'seq_discards', 'oos_packets', 'cookie_discards', 'invalid']
    .map((k) => `${k} ${cnt(stats, 'rx_' + k)}`)
    .join(' ');
  const tx = ['packets', 'bytes', 'errors'].map((k) => `${k} ${cnt(stats, 'tx_' + k)}`).join(' ');
  const dr = DROP_COUNTERS.map((k) => `${k.slice(3)} ${cnt(drops, k)}`).join(' ');
  // With -o the block's inner line breaks become '\\' like print_nl's.
  pr.field(Kind.Text, null, `    RX: ${rx}${pr.sl}    TX: ${tx}${pr.sl}    drops: ${dr}\n`, null);
}

/** print_cookie: 8 hex digits, or 16 when the cookie is 8 bytes long. */
function cookieText(hex: string): string {
  return hex.length === 16 ? hex.toLowerCase() : hex.slice(0, 8).toLowerCase();
}

function printSession(pr: Printer, s: SessionInfo): void {
  pr.open();
  pr.field(Kind.Any, 'session_id', 'Session %u', s.session_id);
  pr.field(Kind.Any, 'tunnel_id', ' in tunnel %u', s.tunnel_id);
  pr.nl();
  pr.field(Kind.Any, 'peer_session_id', '  Peer session %u,', s.peer_session_id);
  pr.field(Kind.Any, 'peer_tunnel_id', ' tunnel %u', s.peer_tunnel_id);
  pr.nl();
  if (s.ifname !== '') {
    pr.field(Kind.Any, 'interface', '  interface name: %s', s.ifname);
    pr.nl();
  }
  // Offsets are always 0 and only in the text form (kept for legacy scripts).
  pr.field(Kind.Text, 'offset', '  offset %u,', 0);
  pr.field(Kind.Text, 'peer_offset', ' peer offset %u\n', 0);
  if (s.cookie !== '') pr.field(Kind.Any, 'cookie', '  cookie %s', cookieText(s.cookie));
  if (s.peer_cookie !== '') pr.field(Kind.Any, 'peer_cookie', '  peer cookie %s', cookieText(s.peer_cookie));
  if (s.reorder_timeout) pr.field(Kind.Any, 'reorder_timeout', '  reorder timeout: %u', s.reorder_timeout);
  if (s.send_seq || s.recv_seq) {
    pr.field(Kind.Text, null, '%s  sequence numbering:', pr.sl);
    if (s.send_seq) pr.field(Kind.Any, 'send_seq', ' send', null);
    if (s.recv_seq) pr.field(Kind.Any, 'recv_seq', ' recv', null);
  }
  pr.field(Kind.Text, null, '\n', null);
  // ul2tp additions, printed only when set / asked for (iproute2's output is unchanged otherwise).
  const imp = (s as { impairment?: ImpairJson }).impairment;
  if (imp !== undefined && imp !== null) {
    if (pr.json) {
      const members = Object.entries(imp).filter(([, v]) => typeof v === 'number') as Array<[string, number]>;
      pr.field(Kind.Json, 'impairment', null, { members });
    } else {
      pr.field(Kind.Text, null, '  impairment: %s\n', formatImpair(imp));
    }
  }
  if (pr.stats) printStats(pr, s.stats, (s as { drops?: Record<string, number> }).drops);
  pr.close();
}

/** The whole output of `show tunnel` for these tunnels (in the order given). */
export function formatTunnels(tunnels: readonly TunnelInfo[], opts: PrintOptions): string {
  const pr = new Printer(opts);
  for (const t of tunnels) printTunnel(pr, t);
  return pr.finish();
}

/** The whole output of `show session` for these sessions (in the order given). */
export function formatSessions(sessions: readonly SessionInfo[], opts: PrintOptions): string {
  const pr = new Printer(opts);
  for (const s of sessions) printSession(pr, s);
  return pr.finish();
}

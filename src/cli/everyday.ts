/**
 * ul2tp's own commands (not in `ip l2tp`): `stats`, `capture`, `impair`.
 * Same style as the ip grammar: keywords with values, `-x` options, errors
 * on stderr with exit 255 for usage problems; `--help` prints the command's
 * help on stdout (exit 0).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { L2tpError } from '../errors.js';
import { checkSessionList, checkTunnelList, LineFramer, MAX_REPLY_LINE, type SessionInfo } from '../control/protocol.js';
import { parseRate } from '../io/impair.js';
import { getU32 } from './grammar.js';
import {
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  innerFrame,
  outerPacket,
  pcapHeader,
  pcapRecord,
  summaryLine,
  type SessionView,
  type TunnelView,
  type WirePacket,
} from './pcap.js';
import type { CliIo, Transport } from './run.js';

export const STATS_HELP = `Usage: ul2tp stats [ tunnel_id ID ] [ session_id ID ] [ -i SECONDS ] [ -c COUNT ]

Watch mode: every SECONDS (default 1) prints one line per session with the
rates since the previous line: packets/s and bits/s received and sent, and
the drops of that interval by reason (kernel counter names: rx_errors,
rx_seq_discards, rx_cookie_discards, tx_errors, plus ul2tp's rx_dev_drops).
Stops after COUNT reports (default: until interrupted). For the absolute
counters use "ul2tp -s show session" or "ul2tp -j -s show session".
`;

export const CAPTURE_HELP = `Usage: ul2tp capture [ tunnel_id ID ] [ session_id ID ] [ -w FILE ] [ --inner ] [ -c COUNT ]

Captures the L2TP packets the daemon sends and receives (every tunnel and
session unless filtered; session_id is the local session id).
  -w FILE   write a pcap file ("-" = stdout) instead of one line per packet.
            Outer packets (default): IPv4/IPv6 + UDP headers are rebuilt from
            the tunnel's addresses and ports, link type RAW (101); decode with
            e.g. tshark -r FILE -d udp.port==PORT,l2tp -o l2tp.cookie_size:...
  --inner   the Ethernet frames carried by the sessions (link type 1).
  -c COUNT  stop after COUNT packets (default: until interrupted).
Transmitted packets are captured as encapsulated, before any impairment.
Once the daemon captures, a "listening on ..." line goes to stderr.
Not available with the native-free backend.
`;

export const IMPAIR_HELP = `Usage: ul2tp impair tunnel_id ID session_id ID [ loss PCT ] [ duplicate PCT ]
                    [ reorder PCT [ distance N ] ] [ delay MS [ jitter MS ] ]
                    [ rate RATE ] [ seed N ]
       ul2tp impair tunnel_id ID session_id ID off

Impairs what the session transmits, after encapsulation (sequence numbers are
assigned first, as on a real network). Each command replaces the session's
previous settings; "off" (or no setting) removes them. Not persisted.
  loss PCT        drop each packet with probability PCT (e.g. 5 or 5%)
  duplicate PCT   send a packet twice
  reorder PCT     hold a packet back behind the next N packets (distance, default 1)
  delay MS        delay every packet (e.g. 10 or 10ms); jitter MS: uniform +-MS
  rate RATE       limit to RATE bit/s: e.g. 800kbit, 10mbit, 1gbit
  seed N          seed of the random generator (reproducible runs)
"ul2tp show session" prints an "impairment:" line while one is set.
Not available with the native-free backend.
`;

const usage = (msg: string): L2tpError => new L2tpError('USAGE', msg);

function needValue(args: readonly string[], i: number, key: string): string {
  if (i + 1 >= args.length) throw usage(`Error: "${key}" needs a value`);
  return args[i + 1];
}

function idValue(text: string, key: string): number {
  const v = getU32(text);
  if (v === null || v === 0) throw usage(`Error: argument "${text}" is wrong: "${key}" is invalid`);
  return v;
}

function positive(text: string, key: string, integer: boolean): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v)))
    throw usage(`Error: argument "${text}" is wrong: "${key}" must be a positive ${integer ? 'integer' : 'number'}`);
  return v;
}

/** Prints a command's usage problem (or help); returns the exit status. */
function usageExit(io: CliIo, e: unknown, help: string): number {
  if (e instanceof L2tpError && e.code === 'USAGE') {
    io.stderr(`${e.message}\n${help}`);
    return 255;
  }
  throw e;
}

async function withDaemon(io: CliIo, fn: (t: Transport) => Promise<number>): Promise<number> {
  let t: Transport;
  try {
    t = await io.connect();
  } catch (e) {
    io.stderr(`Error: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    return await fn(t);
  } catch (e) {
    io.stderr(`Error: ${(e as Error).message}\n`);
    return 1;
  } finally {
    t.close();
  }
}

// ---------------------------------------------------------------------------
// stats

export interface StatsArgs {
  tunnelId: number;
  sessionId: number;
  intervalS: number;
  count: number; // 0 = forever
}

export function parseStatsArgs(args: readonly string[]): StatsArgs {
  const a: StatsArgs = { tunnelId: 0, sessionId: 0, intervalS: 1, count: 0 };
  for (let i = 0; i < args.length; i++) {
    const k = args[i];
    if (k === 'tunnel_id' || k === 'tid') a.tunnelId = idValue(needValue(args, i++, k), k);
    else if (k === 'session_id' || k === 'sid') a.sessionId = idValue(needValue(args, i++, k), k);
    else if (k === '-i' || k === 'interval') a.intervalS = positive(needValue(args, i++, k), k, false);
    else if (k === '-c' || k === 'count') a.count = positive(needValue(args, i++, k), k, true);
    else throw usage(`Unknown option: ${k}`);
  }
  return a;
}

/** `1.23 Mbit/s` style. */
export function formatBits(bps: number): string {
  const units: Array<[number, string]> = [
    [1e9, 'Gbit/s'],
    [1e6, 'Mbit/s'],
    [1e3, 'kbit/s'],
  ];
  for (const [m, u] of units) if (bps >= m) return `${(bps / m).toFixed(2)} ${u}`;
  return `${Math.round(bps)} bit/s`;
}

/** Drop counters reported by watch mode, in this order. */
export const WATCH_DROPS = ['rx_errors', 'rx_seq_discards', 'rx_cookie_discards', 'tx_errors', 'rx_dev_drops', 'tx_impair_lost', 'tx_impair_drops'] as const;

type Sample = Map<string, { s: SessionInfo; at: number }>;

const key = (s: SessionInfo): string => `${s.tunnel_id}/${s.session_id}`;
const val = (s: SessionInfo, k: string): number => {
  const v = s.stats?.[k] ?? s.drops?.[k];
  return typeof v === 'number' ? v : 0;
};

/** One watch-mode line for a session between two samples `dtS` seconds apart. */
export function rateLine(prev: SessionInfo, cur: SessionInfo, dtS: number, when: Date): string {
  const d = (k: string): number => Math.max(0, val(cur, k) - val(prev, k));
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const time = `${p2(when.getHours())}:${p2(when.getMinutes())}:${p2(when.getSeconds())}`;
  const rxp = d('rx_packets') / dtS;
  const txp = d('tx_packets') / dtS;
  const drops = WATCH_DROPS.filter((k) => d(k) > 0).map((k) => `${k} ${d(k)}`);
  return (
    `${time} tunnel ${cur.tunnel_id} session ${cur.session_id} ${cur.ifname || '-'}: ` +
    `rx ${Math.round(rxp)} pkt/s ${formatBits((d('rx_bytes') * 8) / dtS)}, ` +
    `tx ${Math.round(txp)} pkt/s ${formatBits((d('tx_bytes') * 8) / dtS)}, ` +
    `drops ${drops.length ? drops.join(' ') : '0'}`
  );
}

export async function runStats(argv: readonly string[], io: CliIo, sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))): Promise<number> {
  let a: StatsArgs;
  try {
    a = parseStatsArgs(argv);
  } catch (e) {
    return usageExit(io, e, STATS_HELP);
  }
  return withDaemon(io, async (t) => {
    const sample = async (): Promise<Sample> => {
      const list = checkSessionList(await t.request('session_get', {}));
      const at = Date.now();
      const m: Sample = new Map();
      for (const s of list) {
        if ((a.tunnelId === 0 || s.tunnel_id === a.tunnelId) && (a.sessionId === 0 || s.session_id === a.sessionId)) m.set(key(s), { s, at });
      }
      return m;
    };
    let prev = await sample();
    if (prev.size === 0) io.stderr('No sessions (yet); waiting.\n');
    for (let n = 0; a.count === 0 || n < a.count; n++) {
      await sleep(a.intervalS * 1000);
      const cur = await sample();
      let out = '';
      for (const [k, c] of cur) {
        const p = prev.get(k);
        if (p === undefined) continue; // new session: rates from the next report on
        // The measured interval (the daemon's replies take time too); never below half the nominal one.
        const dt = Math.max((c.at - p.at) / 1000, a.intervalS / 2);
        out += rateLine(p.s, c.s, dt, new Date(c.at)) + '\n';
      }
      io.stdout(out);
      prev = cur;
    }
    return 0;
  });
}

// ---------------------------------------------------------------------------
// impair

export function parseImpairArgs(args: readonly string[]): Record<string, number | boolean> {
  const a: Record<string, number | boolean> = {};
  const pctValue = (text: string, k: string): number => {
    const m = /^(\d+(?:\.\d+)?)%?$/.exec(text);
    const v = m ? Number(m[1]) : NaN;
    if (!(v >= 0 && v <= 100)) throw usage(`Error: argument "${text}" is wrong: "${k}" must be a percentage 0..100`);
    return v;
  };
  const msValue = (text: string, k: string): number => {
    const m = /^(\d+(?:\.\d+)?)(ms)?$/.exec(text);
    const v = m ? Number(m[1]) : NaN;
    if (!(v >= 0 && v <= 60000)) throw usage(`Error: argument "${text}" is wrong: "${k}" must be 0..60000 ms`);
    return v;
  };
  for (let i = 0; i < args.length; i++) {
    const k = args[i];
    switch (k) {
      case 'tunnel_id':
      case 'tid':
        a.tunnel_id = idValue(needValue(args, i++, k), k);
        break;
      case 'session_id':
      case 'sid':
        a.session_id = idValue(needValue(args, i++, k), k);
        break;
      case 'off':
        a.off = true;
        break;
      case 'loss':
      case 'duplicate':
      case 'reorder':
        a[k] = pctValue(needValue(args, i++, k), k);
        break;
      case 'distance': {
        const v = positive(needValue(args, i++, k), k, true);
        if (v > 1000) throw usage(`Error: argument "${v}" is wrong: "distance" must be 1..1000`);
        a.distance = v;
        break;
      }
      case 'delay':
      case 'jitter':
        a[k] = msValue(needValue(args, i++, k), k);
        break;
      case 'rate': {
        const text = needValue(args, i++, k);
        const v = parseRate(text);
        if (v === null) throw usage(`Error: argument "${text}" is wrong: "rate" must be like 800kbit, 10mbit, 1gbit`);
        a.rate = v;
        break;
      }
      case 'seed': {
        const text = needValue(args, i++, k);
        const v = Number(text);
        if (!/^\d+$/.test(text) || v > 0xffffffff) throw usage(`Error: argument "${text}" is wrong: "seed" must be 0..4294967295`);
        a.seed = v;
        break;
      }
      default:
        throw usage(`Unknown option: ${k}`);
    }
  }
  if (a.tunnel_id === undefined) throw usage('Error: argument "tunnel_id" is required');
  if (a.session_id === undefined) throw usage('Error: argument "session_id" is required');
  if (a.off === true && Object.keys(a).length > 3) throw usage('Error: "off" cannot be combined with settings');
  if (a.distance !== undefined && a.reorder === undefined) throw usage('Error: "distance" needs "reorder"');
  if (a.jitter !== undefined && a.delay === undefined) throw usage('Error: "jitter" needs "delay"');
  return a;
}

export async function runImpair(argv: readonly string[], io: CliIo): Promise<number> {
  let attrs: Record<string, number | boolean>;
  try {
    attrs = parseImpairArgs(argv);
  } catch (e) {
    return usageExit(io, e, IMPAIR_HELP);
  }
  return withDaemon(io, async (t) => {
    try {
      await t.request('impair', attrs as never);
      return 0;
    } catch (e) {
      if (e instanceof L2tpError && e.code === 'KERNEL') {
        io.stderr(`RTNETLINK answers: ${e.errno === 'ENODEV' ? 'No such device' : e.message}\n`);
      } else {
        io.stderr(`Error: ${(e as Error).message}\n`);
      }
      return 2;
    }
  });
}

// ---------------------------------------------------------------------------
// capture

export interface CaptureArgs {
  tunnelId: number;
  sessionId: number;
  file: string | null;
  inner: boolean;
  count: number;
}

export function parseCaptureArgs(args: readonly string[]): CaptureArgs {
  const a: CaptureArgs = { tunnelId: 0, sessionId: 0, file: null, inner: false, count: 0 };
  for (let i = 0; i < args.length; i++) {
    const k = args[i];
    if (k === 'tunnel_id' || k === 'tid') a.tunnelId = idValue(needValue(args, i++, k), k);
    else if (k === 'session_id' || k === 'sid') a.sessionId = idValue(needValue(args, i++, k), k);
    else if (k === '-w') a.file = needValue(args, i++, k);
    else if (k === '--inner' || k === 'inner') a.inner = true;
    else if (k === '-c' || k === 'count') a.count = positive(needValue(args, i++, k), k, true);
    else throw usage(`Unknown option: ${k}`);
  }
  return a;
}

/** Where packets go: a pcap stream or summary lines. */
interface Sink {
  packet(p: WirePacket): boolean; // false = not written (unknown session for --inner)
  close(): Promise<void>;
}

function pcapSink(out: WriteStream | NodeJS.WriteStream, inner: boolean, tunnels: Map<number, TunnelView>, sessions: Map<string, SessionView>): Sink {
  out.write(pcapHeader(inner ? LINKTYPE_ETHERNET : LINKTYPE_RAW));
  return {
    packet(p) {
      let data: Buffer | null;
      if (inner) {
        const s = sessions.get(`${p.tunnel_id}/${p.session_id}`);
        data = s ? innerFrame(p, s) : null;
      } else {
        const t = tunnels.get(p.tunnel_id);
        data = t ? outerPacket(p, t) : null;
      }
      if (data === null) return false;
      out.write(pcapRecord(p.t, data));
      return true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (out === process.stdout) resolve();
        else (out as WriteStream).end(() => resolve());
      }),
  };
}

/** What a capture listens on, for its start line: "tunnel 3000 session 1000", "every tunnel and session". */
function captureScope(a: CaptureArgs): string {
  const parts: string[] = [];
  if (a.tunnelId !== 0) parts.push(`tunnel ${a.tunnelId}`);
  if (a.sessionId !== 0) parts.push(`session ${a.sessionId}`);
  return parts.length === 0 ? 'every tunnel and session' : parts.join(' ');
}

export async function runCapture(argv: readonly string[], io: CliIo): Promise<number> {
  let a: CaptureArgs;
  try {
    a = parseCaptureArgs(argv);
  } catch (e) {
    return usageExit(io, e, CAPTURE_HELP);
  }
  // The tunnels' addresses and the sessions' layouts (for headers and summaries).
  let tunnelList: TunnelView[] = [];
  let sessionList: SessionView[] = [];
  const status = await withDaemon(io, async (t) => {
    tunnelList = checkTunnelList(await t.request('tunnel_get', {}));
    sessionList = checkSessionList(await t.request('session_get', {}));
    return 0;
  });
  if (status !== 0) return status;
  const tunnels = new Map(tunnelList.map((t) => [t.tunnel_id, t]));
  const sessions = new Map(sessionList.map((s) => [`${s.tunnel_id}/${s.session_id}`, s]));

  let sink: Sink;
  if (a.file !== null) {
    const out = a.file === '-' ? process.stdout : createWriteStream(a.file, { mode: 0o644 });
    sink = pcapSink(out, a.inner, tunnels, sessions);
  } else {
    sink = {
      packet(p) {
        io.stdout(summaryLine(p, sessions.get(`${p.tunnel_id}/${p.session_id}`)) + '\n');
        return true;
      },
      close: async () => {},
    };
  }

  const { createConnection } = await import('node:net');
  const { socketPath } = await import('../control/paths.js');
  return new Promise<number>((resolve) => {
    let got = 0;
    let finished = false;
    const sock = createConnection(socketPath());
    const finish = (code: number, msg?: string): void => {
      if (finished) return;
      finished = true;
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
      sock.destroy();
      if (msg) io.stderr(msg);
      void sink.close().then(() => {
        if (code === 0 && a.file !== null) io.stderr(`${got} packet${got === 1 ? '' : 's'} captured\n`);
        resolve(code);
      });
    };
    const onSig = (): void => finish(0);
    process.on('SIGINT', onSig);
    process.on('SIGTERM', onSig);
    const framer = new LineFramer(
      (line) => {
        if (finished) return;
        let m: { ok?: boolean; error?: { message?: string }; packet?: Omit<WirePacket, 'data'> & { data: string } };
        try {
          m = JSON.parse(line);
        } catch {
          finish(1, 'Error: reply from the daemon is not JSON\n');
          return;
        }
        if (m.ok === false) {
          finish(1, `Error: ${m.error?.message ?? 'capture refused'}\n`);
          return;
        }
        if (!m.packet) {
          // The start reply: the daemon's workers capture from now on (tcpdump says the same).
          io.stderr(`listening on ${captureScope(a)}${a.file === null ? '' : a.inner ? ', link-type EN10MB (Ethernet)' : ', link-type RAW (Raw IPv4/IPv6)'}\n`);
          return;
        }
        const p: WirePacket = { ...m.packet, data: Buffer.from(m.packet.data, 'base64') };
        if (sink.packet(p)) got++;
        if (a.count > 0 && got >= a.count) finish(0);
      },
      () => finish(1, 'Error: reply line from the daemon is too long\n'),
      MAX_REPLY_LINE,
    );
    sock.on('data', (c: Buffer) => framer.push(c));
    sock.on('error', (e) => finish(1, `Error: control socket: ${e.message}\n`));
    sock.on('close', () => finish(finished ? 0 : 1, finished ? undefined : 'Error: the ul2tp daemon closed the connection\n'));
    sock.on('connect', () => {
      sock.write(JSON.stringify({ id: 1, op: 'capture', attrs: { tunnel_id: a.tunnelId, session_id: a.sessionId } }) + '\n');
    });
  });
}

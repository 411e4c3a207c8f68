/**
 * `ul2tp stats`: watch mode, the rates of every session (or the filtered
 * ones) every interval; with `-j`, one JSON object per interval (NDJSON).
 */
import { type SessionInfo } from '../control/protocol.js';
import { checkSessionList } from '../control/validate.js';
import { idValue, parseKeywords, positiveInteger, positiveNumber, usageExit, withDaemon, type OwnKeyword } from './own-command.js';
import type { CliIo } from './run.js';

export const STATS_HELP = `Usage: ul2tp stats [ tunnel_id ID ] [ session_id ID ] [ -i SECONDS ] [ -c COUNT ]

Watch mode: every SECONDS (default 1) prints one line per session with the
rates since the previous line: packets/s and bits/s received and sent, and
the drops of that interval by reason (kernel counter names: rx_errors,
rx_seq_discards, rx_cookie_discards, tx_errors, plus ul2tp's rx_dev_drops).
Stops after COUNT reports (default: until interrupted). For the absolute
counters use "ul2tp -s show session" or "ul2tp -j -s show session".
With "ul2tp -j stats": one JSON object per interval and line (NDJSON): {"time", "interval",
"sessions": [{"tunnel_id", "session_id", "ifname", "rx_pps", "rx_bps",
"tx_pps", "tx_bps", "drops": {NAME: COUNT}}]}.
`;

export interface StatsArgs {
  tunnelId: number;
  sessionId: number;
  intervalS: number;
  count: number; // 0 = forever
}

const STATS_KEYWORDS: ReadonlyArray<OwnKeyword<StatsArgs>> = [
  { names: ['tunnel_id', 'tid'], value: idValue, apply: (a, v) => void (a.tunnelId = v as number) },
  { names: ['session_id', 'sid'], value: idValue, apply: (a, v) => void (a.sessionId = v as number) },
  { names: ['-i', 'interval'], value: positiveNumber, apply: (a, v) => void (a.intervalS = v as number) },
  { names: ['-c', 'count'], value: positiveInteger, apply: (a, v) => void (a.count = v as number) },
];

export function parseStatsArgs(args: readonly string[]): StatsArgs {
  return parseKeywords(args, STATS_KEYWORDS, { tunnelId: 0, sessionId: 0, intervalS: 1, count: 0 });
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

export interface SessionRates {
  tunnel_id: number;
  session_id: number;
  ifname: string;
  rx_pps: number;
  rx_bps: number;
  tx_pps: number;
  tx_bps: number;
  /** Drops of the interval by counter name (all WATCH_DROPS, zero included). */
  drops: Record<string, number>;
}

/** A session's rates between two samples `dtS` seconds apart. */
export function rates(prev: SessionInfo, cur: SessionInfo, dtS: number): SessionRates {
  const d = (k: string): number => Math.max(0, val(cur, k) - val(prev, k));
  const drops: Record<string, number> = {};
  for (const k of WATCH_DROPS) drops[k] = d(k);
  return {
    tunnel_id: cur.tunnel_id,
    session_id: cur.session_id,
    ifname: cur.ifname,
    rx_pps: d('rx_packets') / dtS,
    rx_bps: (d('rx_bytes') * 8) / dtS,
    tx_pps: d('tx_packets') / dtS,
    tx_bps: (d('tx_bytes') * 8) / dtS,
    drops,
  };
}

/** One watch-mode line for a session between two samples `dtS` seconds apart. */
export function rateLine(prev: SessionInfo, cur: SessionInfo, dtS: number, when: Date): string {
  const r = rates(prev, cur, dtS);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const time = `${p2(when.getHours())}:${p2(when.getMinutes())}:${p2(when.getSeconds())}`;
  const drops = WATCH_DROPS.filter((k) => r.drops[k] > 0).map((k) => `${k} ${r.drops[k]}`);
  return (
    `${time} tunnel ${cur.tunnel_id} session ${cur.session_id} ${cur.ifname || '-'}: ` +
    `rx ${Math.round(r.rx_pps)} pkt/s ${formatBits(r.rx_bps)}, ` +
    `tx ${Math.round(r.tx_pps)} pkt/s ${formatBits(r.tx_bps)}, ` +
    `drops ${drops.length ? drops.join(' ') : '0'}`
  );
}

export async function runStats(
  argv: readonly string[],
  io: CliIo,
  sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
  json = false,
): Promise<number> {
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
      const list: SessionRates[] = [];
      let at = Date.now();
      for (const [k, c] of cur) {
        const p = prev.get(k);
        at = c.at;
        if (p === undefined) continue; // new session: rates from the next report on
        // The measured interval (the daemon's replies take time too); never below half the nominal one.
        const dt = Math.max((c.at - p.at) / 1000, a.intervalS / 2);
        if (json) list.push(rates(p.s, c.s, dt));
        else out += rateLine(p.s, c.s, dt, new Date(c.at)) + '\n';
      }
      if (json) out = JSON.stringify({ time: new Date(at).toISOString(), interval: a.intervalS, sessions: list }) + '\n';
      io.stdout(out);
      prev = cur;
    }
    return 0;
  });
}

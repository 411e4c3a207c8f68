/**
 * `ul2tp daemon --metrics ADDR:PORT`: an opt-in Prometheus endpoint
 * (text exposition format 0.0.4) on GET /metrics, with node:http only.
 *
 * Every counter of every tunnel and session (the kernel's names, docs/protocol.md
 * §2.9, plus ul2tp's drops the kernel does not count), labelled by
 * tunnel_id, session_id and ifname, plus process information. Values are
 * read from the shared counter slots at scrape time; nothing is kept here.
 *
 * The address must be a loopback address (127.0.0.0/8, ::1, localhost)
 * unless the daemon is started with --metrics-any-address: the counters
 * reveal the tunnels of the namespace and the endpoint has no
 * authentication.
 */
import { EXTRA_COUNTER_HELP } from '../engine/stats.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { L2tpError } from '../errors.js';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Num = Readonly<Record<string, number>>;

/** What a scrape reads (the daemon's Controller fits it). */
export interface MetricsSource {
  tunnelGet(): { tunnels: Array<{ tunnel_id: number; encap: string; stats: Num; drops?: Num }> };
  sessionGet(): { sessions: Array<{ tunnel_id: number; session_id: number; ifname: string; stats: Num; drops?: Num }> };
  orphanDrops?(): Num;
}

export interface MetricsInfo {
  version: string;
  backend: string;
  /** Packets lost by captures (ring full), if a capture ran. */
  captureDrops?: () => number;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `HOST:PORT` / `[V6]:PORT` / `PORT` (host 127.0.0.1); throws L2tpError('BAD_ARG'). */
export function parseListen(text: string, anyAddress = false): ListenAddress {
  let host = '127.0.0.1';
  let portText = text;
  const m6 = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (m6) {
    host = m6[1];
    portText = m6[2];
  } else if (text.includes(':')) {
    const i = text.lastIndexOf(':');
    host = text.slice(0, i);
    portText = text.slice(i + 1);
  }
  if (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535)
    throw new L2tpError('BAD_ARG', `--metrics: "${text}" is not ADDRESS:PORT (port 1..65535)`);
  if (!anyAddress && !isLoopback(host))
    throw new L2tpError(
      'BAD_ARG',
      `--metrics: ${host} is not a loopback address; the endpoint has no authentication (add --metrics-any-address to allow it)`,
    );
  return { host, port: Number(portText) };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Prometheus label value escaping: backslash, double quote and newline. */
function esc(v: string | number): string {
  return String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

const HELP: Readonly<Record<string, string>> = {
  tx_packets: 'Packets sent (L2TP data packets).',
  tx_bytes: 'Bytes sent: L2TP header + frame.',
  tx_errors: 'Transmit failures.',
  rx_packets: 'Packets delivered to the session interface.',
  rx_bytes: 'Bytes delivered: L2TP-level length.',
  rx_errors: 'Every receive discard (kernel rx_errors).',
  rx_seq_discards: 'Packets dropped by the sequence number rules.',
  rx_oos_packets: 'Packets queued out of sequence (reorder mode).',
  rx_cookie_discards: 'Packets with a wrong cookie.',
  rx_invalid: 'Packets with a bad version or too short (tunnel only).',
  ...EXTRA_COUNTER_HELP,
};

/** Counter metrics are `ul2tp_<scope>_<name>_total`. */
function family(out: string[], name: string, help: string, rows: Array<[string, number]>): void {
  if (rows.length === 0) return;
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
  for (const [labels, v] of rows) out.push(`${name}{${labels}} ${v}`);
}

/** The whole exposition text at this moment. */
export function renderMetrics(src: MetricsSource, info: MetricsInfo): string {
  const out: string[] = [];
  const tunnels = src.tunnelGet().tunnels;
  const sessions = src.sessionGet().sessions;
  const names = Object.keys(HELP);
  for (const n of names) {
    const rows: Array<[string, number]> = [];
    for (const t of tunnels) {
      const v = t.stats[n] ?? t.drops?.[n];
      if (typeof v === 'number') rows.push([`tunnel_id="${t.tunnel_id}",encap="${esc(t.encap)}"`, v]);
    }
    family(out, `ul2tp_tunnel_${n}_total`, HELP[n], rows);
  }
  for (const n of names) {
    const rows: Array<[string, number]> = [];
    for (const s of sessions) {
      const v = s.stats[n] ?? s.drops?.[n];
      if (typeof v === 'number' && !(n === 'rx_invalid' || n === 'rx_no_session' || n === 'rx_control' || n === 'rx_short'))
        rows.push([`tunnel_id="${s.tunnel_id}",session_id="${s.session_id}",ifname="${esc(s.ifname)}"`, v]);
    }
    family(out, `ul2tp_session_${n}_total`, HELP[n], rows);
  }
  const orphan = src.orphanDrops?.();
  if (orphan) {
    for (const [k, v] of Object.entries(orphan)) {
      family(out, `ul2tp_namespace_${k}_total`, `${HELP[k] ?? k} (IP encap, no tunnel)`, [['', v]]);
    }
  }
  out.push('# HELP ul2tp_tunnels Tunnels configured.', '# TYPE ul2tp_tunnels gauge', `ul2tp_tunnels ${tunnels.length}`);
  out.push('# HELP ul2tp_sessions Sessions configured.', '# TYPE ul2tp_sessions gauge', `ul2tp_sessions ${sessions.length}`);
  if (info.captureDrops) {
    out.push('# HELP ul2tp_capture_drops_total Packets not captured because a capture ring was full.');
    out.push('# TYPE ul2tp_capture_drops_total counter', `ul2tp_capture_drops_total ${info.captureDrops()}`);
  }
  out.push(
    '# HELP ul2tp_info Build and runtime information.',
    '# TYPE ul2tp_info gauge',
    `ul2tp_info{version="${esc(info.version)}",backend="${esc(info.backend)}",node="${esc(process.version)}"} 1`,
  );
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  out.push(
    '# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.',
    '# TYPE process_cpu_seconds_total counter',
    `process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`,
    '# HELP process_resident_memory_bytes Resident memory size in bytes.',
    '# TYPE process_resident_memory_bytes gauge',
    `process_resident_memory_bytes ${mem.rss}`,
    '# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.',
    '# TYPE process_start_time_seconds gauge',
    `process_start_time_seconds ${Math.round((Date.now() - process.uptime() * 1000) / 1000)}`,
    '# HELP process_pid Process id of the daemon.',
    '# TYPE process_pid gauge',
    `process_pid ${process.pid}`,
  );
  return out.join('\n') + '\n';
}

/** Starts the endpoint; resolves once listening (rejects with the listen error, e.g. EADDRINUSE). */
export function startMetrics(addr: ListenAddress, src: MetricsSource, info: MetricsInfo): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><body><a href="/metrics">/metrics</a></body></html>\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    let body: string;
    try {
      body = renderMetrics(src, info);
    } catch (e) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`error: ${(e as Error).message}\n`);
      return;
    }
    res.writeHead(200, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/**
 * Runs inside the namespace of the daemon under test (started by scale.ts
 * with `ip netns exec`) and issues bulk control requests over one pipelined
 * socket connection. Commands arrive as JSON lines on stdin; each gets one
 * JSON line on stdout: {"ok":true,"ms":…,"n":…} or {"ok":false,"error":…}.
 *
 *   {"do":"tunnels","from":A,"to":B,"local":…,"remote":…}   tunnel_create A..B (udp, ports 10000+t / 20000+t)
 *   {"do":"sessions","pairs":[[tid,sid],…]}                 session_create (peer_session_id = sid)
 *   {"do":"get"}                                            tunnel_get + session_get
 *   {"do":"delsessions","pairs":[[tid,sid],…]}  {"do":"deltunnels","from":A,"to":B}
 */
import { createInterface } from 'node:readline';
import { CtlClient } from '../lib/ctl-client.js';

interface Cmd {
  do: 'tunnels' | 'sessions' | 'get' | 'delsessions' | 'deltunnels' | 'quit';
  from?: number;
  to?: number;
  local?: string;
  remote?: string;
  pairs?: Array<[number, number]>;
}

const WINDOW = 64;

function* range(a: number, b: number): Generator<number> {
  for (let i = a; i <= b; i++) yield i;
}

async function exec(c: CtlClient, cmd: Cmd): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  switch (cmd.do) {
    case 'tunnels': {
      const reqs = [...range(cmd.from!, cmd.to!)].map(
        (t): [string, Record<string, unknown>] => [
          'tunnel_create',
          { tunnel_id: t, peer_tunnel_id: t, encap: 'udp', local: cmd.local, remote: cmd.remote, udp_sport: 10000 + t, udp_dport: 20000 + t },
        ],
      );
      const r = await c.pipeline(reqs, WINDOW);
      return { n: reqs.length, ms: performance.now() - t0, ...r };
    }
    case 'sessions': {
      const reqs = cmd.pairs!.map((p): [string, Record<string, unknown>] => ['session_create', { tunnel_id: p[0], session_id: p[1], peer_session_id: p[1] }]);
      const r = await c.pipeline(reqs, WINDOW);
      return { n: reqs.length, ms: performance.now() - t0, ...r };
    }
    case 'get': {
      const t = await c.request<{ tunnels: unknown[] }>('tunnel_get');
      const t1 = performance.now();
      const s = await c.request<{ sessions: unknown[] }>('session_get');
      return { tunnels: t.tunnels.length, sessions: s.sessions.length, tunnelMs: t1 - t0, sessionMs: performance.now() - t1, ms: performance.now() - t0 };
    }
    case 'delsessions': {
      const reqs = cmd.pairs!.map((p): [string, Record<string, unknown>] => ['session_delete', { tunnel_id: p[0], session_id: p[1] }]);
      const r = await c.pipeline(reqs, WINDOW);
      return { n: reqs.length, ms: performance.now() - t0, ...r };
    }
    case 'deltunnels': {
      const reqs = [...range(cmd.from!, cmd.to!)].map((t): [string, Record<string, unknown>] => ['tunnel_delete', { tunnel_id: t }]);
      const r = await c.pipeline(reqs, WINDOW);
      return { n: reqs.length, ms: performance.now() - t0, ...r };
    }
    default:
      return {};
  }
}

const c = await CtlClient.open();
const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line) as Cmd;
  if (cmd.do === 'quit') break;
  try {
    process.stdout.write(JSON.stringify({ ok: true, ...(await exec(c, cmd)) }) + '\n');
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: (e as Error).message }) + '\n');
  }
}
c.close();
process.exit(0);

/**
 * Fake daemons for the client and CLI tests: the daemon's list replies
 * (`tunnelInfo`, `sessionInfo`), an in-process one behind the CLI's `CliIo`
 * (`fakeCliIo`), and one on a Unix socket that hands each request line to a
 * script (`serveLines`). `rejection` awaits the L2tpError a request fails with.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { CliIo, Transport } from '../src/cli/run.js';
import type { SessionInfo, TunnelInfo } from '../src/control/protocol.js';
import { LineFramer } from '../src/control/framing.js';
import { L2tpError } from '../src/errors.js';

/** A tunnel_get row: UDP over 192.0.2.1 → 192.0.2.2, ports 5000 → 6000, peer id = id + 1, no counters; `o` sets the rest. */
export function tunnelInfo(o: Partial<TunnelInfo> & Pick<TunnelInfo, 'tunnel_id'>): TunnelInfo {
  const local = o.local ?? '192.0.2.1';
  return {
    peer_tunnel_id: o.tunnel_id + 1,
    encap: 'udp',
    family: local.includes(':') ? 6 : 4,
    local,
    remote: '192.0.2.2',
    udp_sport: 5000,
    udp_dport: 6000,
    udp_csum: false,
    udp6_csum_tx: true,
    udp6_csum_rx: true,
    stats: {},
    ...o,
  };
}

/** A session_get row: peer ids = ids + 1, `l2tpeth<sid>`, no cookies, default L2-specific sublayer, no sequencing, no counters; `o` sets the rest. */
export function sessionInfo(o: Partial<SessionInfo> & Pick<SessionInfo, 'tunnel_id' | 'session_id'>): SessionInfo {
  return {
    peer_session_id: o.session_id + 1,
    peer_tunnel_id: o.tunnel_id + 1,
    ifname: `l2tpeth${o.session_id}`,
    cookie: '',
    peer_cookie: '',
    l2spec_type: 'default',
    send_seq: false,
    recv_seq: false,
    reorder_timeout: 0,
    stats: {},
    ...o,
  };
}

export interface FakeCliIo {
  io: CliIo;
  /** Everything written to stdout / stderr so far. */
  out: () => string;
  err: () => string;
  /** Every request, in order: [op, attrs]. */
  calls: Array<[string, unknown]>;
  connects: () => number;
  closes: () => number;
}

/**
 * A CliIo whose daemon is `handler`: its result is the reply, an L2tpError it
 * throws comes back as an error reply (`isReply`), anything else it throws as a
 * transport failure. `connect` (optional) runs on every connect and may throw
 * to refuse it.
 */
export function fakeCliIo(handler: (op: string, attrs: unknown) => unknown, connect?: () => void): FakeCliIo {
  let out = '';
  let err = '';
  let connects = 0;
  let closes = 0;
  const replies = new WeakSet<object>();
  const calls: Array<[string, unknown]> = [];
  const transport: Transport = {
    async request(op, attrs) {
      calls.push([op, attrs]);
      try {
        return handler(op, attrs) as never;
      } catch (e) {
        if (e instanceof L2tpError) replies.add(e);
        throw e;
      }
    },
    close() {
      closes++;
    },
  };
  return {
    io: {
      stdout: (s) => (out += s),
      stderr: (s) => (err += s),
      async connect() {
        connects++;
        connect?.();
        return transport;
      },
      isReply: (e) => typeof e === 'object' && e !== null && replies.has(e),
    },
    out: () => out,
    err: () => err,
    calls,
    connects: () => connects,
    closes: () => closes,
  };
}

export interface LineServer {
  server: Server;
  path: string;
  /** Open connections. */
  sockets: Set<Socket>;
  /** Ends every connection and stops listening. */
  close(): void;
}

/**
 * A server on the Unix socket `path` that hands every '\n'-terminated request
 * line to `onLine` (which answers on `sock`, or not); a line longer than the
 * daemon's limit closes the connection, as the daemon does.
 */
export function serveLines(path: string, onLine: (sock: Socket, line: string) => void): Promise<LineServer> {
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    const framer = new LineFramer(
      (line) => onLine(sock, line),
      () => sock.destroy(),
    );
    sock.on('data', (c: Buffer) => framer.push(c));
    sock.on('error', () => {});
  });
  return new Promise((resolve) =>
    server.listen(path, () =>
      resolve({
        server,
        path,
        sockets,
        close() {
          for (const s of sockets) s.destroy();
          server.close();
        },
      }),
    ),
  );
}

/** The L2tpError `p` rejects with (fails the test when it resolves or rejects with anything else). */
export async function rejection(p: Promise<unknown>): Promise<L2tpError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof L2tpError, String(e));
    return e;
  }
  assert.fail('resolved');
}

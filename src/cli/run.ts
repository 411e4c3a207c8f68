/**
 * `ip l2tp <argv>` end to end: parse (parse.ts), talk to the daemon through a
 * `Transport`, print (print.ts). Returns the exit status; never throws for
 * user or daemon errors. The transport is injected so tests can run every
 * path without a daemon.
 */
import { L2tpError } from '../errors.js';
import type { Op, OpAttrs, OpResult } from '../control/protocol.js';
import type { CapturedPacket } from '../api/client.js';
import { checkSessionList, checkTunnelList } from '../control/validate.js';
import { cliErrorOutput, parseCommand, type Command } from '../api/parse.js';
import { formatSessions, formatTunnels, type PrintOptions } from './print.js';

export interface Transport {
  request<O extends Op>(op: O, attrs: OpAttrs[O]): Promise<OpResult[O]>;
  close(): void;
  /** A packet stream on a connection of its own (src/api/client.ts). */
  capture?(filter: { tunnel_id: number; session_id: number }): Promise<AsyncIterableIterator<CapturedPacket>>;
}

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Opens the daemon connection; called only once a command has parsed. */
  connect(): Promise<Transport>;
  /** True when `e` came back from the daemon as an error reply. */
  isReply(e: unknown): boolean;
}

export type CliOptions = PrintOptions;

/** What a failed request's error reply prints (`RTNETLINK answers: ...` for kernel errors). */
export function replyErrorText(e: L2tpError): string {
  return e.code === 'KERNEL' ? cliErrorOutput(e).stderr : `Error: ${e.message}\n`;
}

/** Prints an error the daemon (or the way to it) raised; returns the exit status. */
function reportRequestError(e: unknown, io: CliIo, failStatus: number): number {
  if (e instanceof L2tpError) {
    if (io.isReply(e)) {
      io.stderr(replyErrorText(e));
      return failStatus;
    }
    io.stderr(`Error: ${e.message}\n`);
    return 1;
  }
  io.stderr(`Error: ${e instanceof Error ? e.message : String(e)}\n`);
  return 1;
}

async function withTransport(io: CliIo, fn: (t: Transport) => Promise<number>): Promise<number> {
  let t: Transport;
  try {
    t = await io.connect();
  } catch (e) {
    return reportRequestError(e, io, 1);
  }
  try {
    return await fn(t);
  } finally {
    t.close();
  }
}

async function runAdd(cmd: Extract<Command, { verb: 'add' }>, io: CliIo): Promise<number> {
  return withTransport(io, async (t) => {
    let status = 0;
    // iproute2 tries both and keeps the session's status (docs/protocol.md §4.3 step 8).
    if (cmd.tunnel !== null) {
      try {
        await t.request('tunnel_create', cmd.tunnel);
        status = 0;
      } catch (e) {
        status = reportRequestError(e, io, 2);
        if (!io.isReply(e)) return status;
      }
    }
    if (cmd.session !== null) {
      try {
        await t.request('session_create', cmd.session);
        status = 0;
      } catch (e) {
        status = reportRequestError(e, io, 2);
      }
    }
    return status;
  });
}

async function runDel(cmd: Extract<Command, { verb: 'del' }>, io: CliIo): Promise<number> {
  return withTransport(io, async (t) => {
    try {
      const r = cmd.request;
      if (r.op === 'session_delete') await t.request('session_delete', r.attrs);
      else await t.request('tunnel_delete', r.attrs);
      return 0;
    } catch (e) {
      return reportRequestError(e, io, 2);
    }
  });
}

/**
 * `show`: unlike iproute2, the ids given are applied as filters (each one
 * that is non-zero), see docs/cli-differences.md. A dump failure prints
 * `Dump terminated` and exits 1, as iproute2 does.
 */
async function runShow(cmd: Extract<Command, { verb: 'show' }>, opts: CliOptions, io: CliIo): Promise<number> {
  return withTransport(io, async (t) => {
    let out: string;
    try {
      if (cmd.what === 'tunnel') {
        const list = checkTunnelList(await t.request('tunnel_get', {}));
        out = formatTunnels(
          list.filter((x) => cmd.tunnelId === 0 || x.tunnel_id === cmd.tunnelId),
          opts,
        );
      } else {
        const list = checkSessionList(await t.request('session_get', {}));
        out = formatSessions(
          list.filter(
            (x) =>
              (cmd.tunnelId === 0 || x.tunnel_id === cmd.tunnelId) &&
              (cmd.sessionId === 0 || x.session_id === cmd.sessionId),
          ),
          opts,
        );
      }
    } catch (e) {
      const status = reportRequestError(e, io, 1);
      if (io.isReply(e) || (e instanceof L2tpError && e.code === 'PROTOCOL')) io.stderr('Dump terminated\n');
      return status === 2 ? 1 : status;
    }
    io.stdout(out);
    return 0;
  });
}

/** Runs `ip l2tp <argv>` with global options `opts`; resolves to the exit status. */
export async function runL2tp(argv: readonly string[], opts: CliOptions, io: CliIo): Promise<number> {
  let cmd: Command;
  try {
    cmd = parseCommand(argv, (line) => io.stderr(line + '\n'));
  } catch (e) {
    if (!(e instanceof L2tpError)) throw e;
    const o = cliErrorOutput(e);
    io.stderr(o.stderr);
    return o.status;
  }
  switch (cmd.verb) {
    case 'add':
      return runAdd(cmd, io);
    case 'del':
      return runDel(cmd, io);
    case 'show':
      return runShow(cmd, opts, io);
  }
}

/**
 * Batch mode: `ul2tp [-force] -batch FILE` and the shim's `ip -batch FILE`.
 * The file is read with iproute2's syntax (batch-file.ts); lines run in
 * order, with ip's reporting: a failed command prints its error, then
 * `Command failed FILE:LINE`, and ends the batch unless -force (exit status 1
 * if any command failed). Errors iproute2 reports by exiting (usage and
 * argument errors, a bad address, a failed dump) end the batch at once with
 * that status, as they end `ip -batch`.
 *
 * Speed: every `l2tp` line goes over one daemon connection, and consecutive
 * add/del lines travel together in `batch` requests (one round trip and one
 * state-file write for hundreds of lines; consecutive session deletions are
 * removed together). Lines for other ip objects (`link set ...`) run the real
 * `ip`, in order, one process per line.
 */
import { readFileSync } from 'node:fs';
import { L2tpError } from '../errors.js';
import type { BatchRequest } from '../control/protocol.js';
import { MAX_LINE } from '../control/framing.js';
import { errorFromBody, MAX_BATCH_REQUESTS } from '../control/validate.js';
import { readBatch } from './batch-file.js';
import { isL2tpObject } from './ip-plan.js';
import { cliErrorOutput, parseCommand, parseVerb, type Command } from '../api/parse.js';
import { matches } from '../api/grammar.js';
import { replyErrorText, runL2tp, type CliIo, type CliOptions, type Transport } from './run.js';

/** Runs one line for the real `ip`; returns its exit status (its output goes straight to ours). */
export type IpRunner = (args: readonly string[]) => number;

export interface BatchOptions {
  /** As given on the command line (`-` = stdin); used in `Command failed NAME:LINE`. */
  name: string;
  force: boolean;
  /**
   * Who runs lines that are not ul2tp's. `ul2tp -batch`: lines starting with
   * an ip object word other than l2tp (`link`, `address`, ...) go there; the
   * shim: every non-l2tp line. null: such lines are ul2tp errors.
   */
  ip: IpRunner | null;
  /** The shim: only lines whose first word selects l2tp are ul2tp's. */
  ipStyle: boolean;
}

/** The `batch` request size limit we keep under (the daemon's MAX_LINE, with room for the envelope). */
const CHUNK_BYTES = MAX_LINE - 1024;

/** Which program a line is for, and its words for it. */
export function classifyLine(args: readonly string[], ipStyle: boolean, hasIp: boolean): { to: 'l2tp' | 'ip'; args: string[] } {
  if (isL2tpObject(args[0])) return { to: 'l2tp', args: args.slice(1) };
  if (ipStyle) return { to: 'ip', args: [...args] };
  if (!hasIp || matches(args[0], 'help')) return { to: 'l2tp', args: [...args] };
  try {
    parseVerb(args[0]);
    return { to: 'l2tp', args: [...args] };
  } catch {
    return { to: 'ip', args: [...args] };
  }
}

interface Pending {
  lineno: number;
  warnings: string[];
  requests: BatchRequest[];
}

function requestsOf(cmd: Command): BatchRequest[] {
  if (cmd.verb === 'add') {
    const r: BatchRequest[] = [];
    if (cmd.tunnel !== null) r.push({ op: 'tunnel_create', attrs: cmd.tunnel });
    if (cmd.session !== null) r.push({ op: 'session_create', attrs: cmd.session });
    return r;
  }
  if (cmd.verb === 'del') return [cmd.request.op === 'session_delete' ? { op: 'session_delete', attrs: cmd.request.attrs } : { op: 'tunnel_delete', attrs: cmd.request.attrs }];
  return [];
}

/** Reads the batch input: a file, or stdin for `-`. Returns null after printing ip's error. */
export function readBatchInput(name: string, io: CliIo): string | null {
  try {
    return readFileSync(name === '-' ? 0 : name, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'No such file or directory' : err.code === 'EACCES' ? 'Permission denied' : err.message;
    io.stderr(`Cannot open file "${name}" for reading: ${why}\n`);
    return null;
  }
}

/** Runs a whole batch; resolves to the exit status. */
export async function runBatch(text: string, bo: BatchOptions, opts: CliOptions, io: CliIo): Promise<number> {
  let transport: Transport | null = null;
  let connectFailed = false;
  // One connection for the whole file; l2tp lines that run alone (show) reuse it too.
  const shared: CliIo = {
    stdout: (s) => io.stdout(s),
    stderr: (s) => io.stderr(s),
    isReply: (e) => io.isReply(e),
    async connect() {
      if (transport === null) transport = await io.connect();
      const t = transport;
      return { request: (op, attrs) => t.request(op, attrs), close() {} };
    },
  };
  let ret = 0;
  let pending: Pending[] = [];
  let pendingBytes = 0;
  let pendingCount = 0;

  const commandFailed = (lineno: number): void => {
    io.stderr(`Command failed ${bo.name}:${lineno}\n`);
    ret = 1;
  };

  /** Sends the pending lines; false when the batch must stop. */
  const flush = async (): Promise<boolean> => {
    if (pending.length === 0) return true;
    const lines = pending;
    pending = [];
    pendingBytes = 0;
    pendingCount = 0;
    let t: Transport;
    try {
      t = await shared.connect();
    } catch (e) {
      io.stderr(`Error: ${(e as Error).message}\n`);
      connectFailed = true;
      return false;
    }
    let outcomes;
    try {
      outcomes = (await t.request('batch', { lines: lines.map((l) => l.requests), stop_on_error: !bo.force })).lines;
    } catch (e) {
      io.stderr(e instanceof L2tpError && io.isReply(e) ? replyErrorText(e) : `Error: ${(e as Error).message}\n`);
      connectFailed = true;
      return false;
    }
    for (let i = 0; i < outcomes.length; i++) {
      const l = lines[i];
      for (const w of l.warnings) io.stderr(w + '\n');
      const res = outcomes[i];
      for (const r of res) if (!r.ok) io.stderr(replyErrorText(errorFromBody(r.error)));
      if (!res[res.length - 1].ok) {
        commandFailed(l.lineno);
        if (!bo.force) return false;
      }
    }
    return true;
  };

  for (const item of readBatch(text)) {
    if (item.kind !== 'cmd') {
      if (!(await flush())) return finish(connectFailed ? 1 : ret);
      io.stderr(item.message + '\n');
      if (item.kind === 'fatal') return finish(item.status);
      break;
    }
    const line = classifyLine(item.args, bo.ipStyle, bo.ip !== null);
    if (line.to === 'ip') {
      if (!(await flush())) return finish(connectFailed ? 1 : ret);
      if (bo.ip!(line.args) !== 0) {
        commandFailed(item.lineno);
        if (!bo.force) return finish(ret);
      }
      continue;
    }
    const warnings: string[] = [];
    let cmd: Command;
    try {
      cmd = parseCommand(line.args, (w) => warnings.push(w));
    } catch (e) {
      if (!(e instanceof L2tpError)) throw e;
      if (!(await flush())) return finish(connectFailed ? 1 : ret);
      for (const w of warnings) io.stderr(w + '\n');
      const o = cliErrorOutput(e);
      io.stderr(o.stderr);
      return finish(o.status); // iproute2 exits right there
    }
    if (cmd.verb === 'show') {
      if (!(await flush())) return finish(connectFailed ? 1 : ret);
      const status = await runL2tp(line.args, opts, { ...shared, stderr: (s) => io.stderr(s) });
      if (status !== 0) return finish(status); // a failed dump exits ip
      continue;
    }
    const requests = requestsOf(cmd);
    const bytes = JSON.stringify(requests).length + 8;
    if (pendingBytes + bytes > CHUNK_BYTES || pendingCount + requests.length > MAX_BATCH_REQUESTS) {
      if (!(await flush())) return finish(connectFailed ? 1 : ret);
    }
    pending.push({ lineno: item.lineno, warnings, requests });
    pendingBytes += bytes;
    pendingCount += requests.length;
  }
  if (!(await flush())) return finish(connectFailed ? 1 : ret);
  return finish(ret);

  function finish(status: number): number {
    (transport)?.close();
    return status;
  }
}

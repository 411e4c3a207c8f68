/**
 * The configuration file of `ul2tp daemon --config FILE`: an `ip -batch`
 * file (batch-file.ts syntax) of `l2tp add tunnel|session ...` lines (the
 * `l2tp` word may be left out, as in `ul2tp -batch`) and lines for the real
 * `ip` (`link set dev l2tpeth0 up`, `address add ... dev l2tpeth0`), which
 * run after the sessions exist. `ul2tp save` writes such a file.
 *
 * Parsing lives here, with the grammar; the daemon receives a ConfigSource
 * and converges on what it returns (src/control/config.ts).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { L2tpError } from '../errors.js';
import type { ConfigSource, DesiredConfig } from '../control/config.js';
import { readBatch } from './batch-file.js';
import { classifyLine } from './batch.js';
import { findRealIp } from '../control/netinfo.js';
import { cliErrorOutput, parseCommand } from '../api/parse.js';

/** Reads and checks a configuration file; throws an Error naming the file and line. */
export function loadConfigFile(path: string): DesiredConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  const want: DesiredConfig = { tunnels: [], sessions: [], ipLines: [] };
  const tunnels = new Set<number>();
  const sessions = new Set<string>();
  for (const item of readBatch(text)) {
    const at = `${path}:${item.lineno}`;
    if (item.kind !== 'cmd') throw new Error(`${at}: ${item.message}`);
    const line = classifyLine(item.args, false, true);
    if (line.to === 'ip') {
      want.ipLines.push({ lineno: item.lineno, args: line.args });
      continue;
    }
    let cmd;
    try {
      cmd = parseCommand(line.args, () => {});
    } catch (e) {
      if (!(e instanceof L2tpError)) throw e;
      const text = e.code === 'USAGE' ? 'not an "l2tp add" command' : cliErrorOutput(e).stderr.split('\n')[0];
      throw new Error(`${at}: ${text}`, { cause: e });
    }
    if (cmd.verb !== 'add') throw new Error(`${at}: only "l2tp add" lines (and ip lines) belong in a configuration file`);
    if (cmd.tunnel !== null) {
      if (tunnels.has(cmd.tunnel.tunnel_id)) throw new Error(`${at}: tunnel ${cmd.tunnel.tunnel_id} is configured twice`);
      tunnels.add(cmd.tunnel.tunnel_id);
      want.tunnels.push(cmd.tunnel);
    }
    if (cmd.session !== null) {
      const k = `${cmd.session.tunnel_id}/${cmd.session.session_id}`;
      if (sessions.has(k)) throw new Error(`${at}: session ${cmd.session.session_id} in tunnel ${cmd.session.tunnel_id} is configured twice`);
      sessions.add(k);
      want.sessions.push(cmd.session);
    }
  }
  return want;
}

/** The daemon's view of `--config FILE`: parse on demand, run ip lines with the real ip. */
export function configSource(file: string): ConfigSource {
  const path = resolve(file);
  return {
    path,
    load: () => loadConfigFile(path),
    runIp(args) {
      const ip = findRealIp();
      if (ip === null) return { status: 1, stderr: 'cannot find the iproute2 "ip" program (set UL2TP_REAL_IP)' };
      const r = spawnSync(ip, args, { encoding: 'utf8' });
      return { status: r.status ?? 1, stderr: r.stderr ?? r.error?.message ?? '' };
    },
  };
}

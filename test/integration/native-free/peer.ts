/**
 * Test-only endpoint: constructs NativeFreeDataplane directly, adds the
 * tunnel and session(s) given as JSON in argv[2] ({tunnel, session?,
 * sessions?, mtu}) and
 * stays up until killed (SIGTERM: close, interfaces kept; SIGKILL: nothing).
 *
 * stdout lines: `READY <ifname>...` or `ERROR <code> <errno> <message>`.
 * stdin commands (one per line): `remove-session`, `remove-tunnel` (each
 * answered with `REMOVED` or `ERROR ...`), `stats` (answered with
 * `STATS <json>` of the session's and tunnel's counters).
 */
import { dataplaneOptionsFrom } from '../../../src/control/options.js';
import { createInterface } from 'node:readline';
import { NativeFreeDataplane } from '../../../native-free/dataplane.js';
import { readCounters } from '../../../src/engine/stats.js';
import type { SessionConfig, TunnelConfig } from '../../../src/engine/config.js';
import { L2tpError } from '../../../src/errors.js';

interface Args {
  tunnel: TunnelConfig;
  session?: SessionConfig;
  sessions?: SessionConfig[];
  mtu?: number;
}

function fail(e: unknown): string {
  if (e instanceof L2tpError) return `ERROR ${e.code} ${e.errno ?? '-'} ${e.message}`;
  return `ERROR INTERNAL - ${(e as Error).message}`;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]) as Args;
  // the reader kind comes from UL2TP_NF_READER, read where the daemon reads it
  const dp = new NativeFreeDataplane(dataplaneOptionsFrom({}, process.env));
  let tBase = -1;
  let sBase = -1;
  try {
    tBase = (await dp.addTunnel(args.tunnel)).statsBase;
    const names: string[] = [];
    for (const cfg of args.sessions ?? (args.session ? [args.session] : [])) {
      const h = await dp.addSession(cfg, args.mtu ?? 1446);
      if (sBase < 0) sBase = h.statsBase;
      names.push(h.ifname);
    }
    process.stdout.write(`READY ${names.join(' ') || '-'}\n`);
  } catch (e) {
    process.stdout.write(`${fail(e)}\n`);
    await dp.close();
    process.exit(1);
  }
  process.on('SIGTERM', () => {
    void dp.close().then(() => process.exit(0));
  });
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const cmd = line.trim();
    const t = args.tunnel.tunnelId;
    if (cmd === 'stats') {
      const first = args.sessions?.[0] ?? args.session;
      const out = {
        tunnel: readCounters(dp.stats, tBase),
        session: sBase >= 0 ? readCounters(dp.stats, sBase) : null,
        reader: first ? dp.readerOf(t, first.sessionId) : null,
      };
      process.stdout.write(`STATS ${JSON.stringify(out)}\n`);
    } else if (cmd === 'remove-session' && args.session) {
      dp.removeSession(t, args.session.sessionId).then(
        () => process.stdout.write('REMOVED\n'),
        (e) => process.stdout.write(`${fail(e)}\n`),
      );
    } else if (cmd === 'remove-tunnel') {
      dp.removeTunnel(t).then(
        () => process.stdout.write('REMOVED\n'),
        (e) => process.stdout.write(`${fail(e)}\n`),
      );
    }
  });
  // stdin closing (parent gone) does not stop us: the test kills us by PID.
}

void main();

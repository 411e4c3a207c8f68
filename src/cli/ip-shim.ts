/**
 * `ul2tp-ip`: a drop-in `ip`. It reads iproute2's global options the way
 * ip/ip.c does, then:
 *   - `ip [OPTIONS] l2tp ...` (object word `l2`, `l2t` or `l2tp`, matched by
 *     prefix like ip does; `l` alone is `link`) runs ul2tp's `ip l2tp` here,
 *     honouring -j/-json, -p/-pretty, -o/-oneline, -s/-stats (ul2tp's counters); other display options are
 *     accepted and have no effect, as in iproute2's l2tp code;
 *   - `ip [OPTIONS] [-force] -batch FILE` runs the file here (batch.ts): its
 *     `l2tp` lines go to ul2tp over one daemon connection, every other line
 *     to the real ip (with the same OPTIONS), in file order;
 *   - with `-n NETNS`/`-netns NETNS` it first re-executes itself through
 *     `ip netns exec NETNS`, so the l2tp commands reach that namespace's daemon;
 *   - every other invocation is handed unchanged to the real iproute2 `ip`
 *     (UL2TP_REAL_IP, else /usr/sbin/ip, /sbin/ip, else the first `ip` in PATH
 *     that is not this shim), and its exit status is passed through.
 *
 * Importing this module runs the shim (bin/ul2tp-ip.js does that).
 */
import { spawnSync } from 'node:child_process';
import { planShim } from './ip-plan.js';
import { findRealIp } from '../control/netinfo.js';
import { constants as osConstants } from 'node:os';

/** Runs a program with our stdio and returns the exit status the shell would see. */
function execStatus(file: string, args: readonly string[]): number {
  const r = spawnSync(file, args, { stdio: 'inherit' });
  if (r.error) {
    process.stderr.write(`Error: cannot run ${file}: ${r.error.message}\n`);
    return 1;
  }
  if (r.signal) return 128 + (osConstants.signals[r.signal] ?? 0);
  return r.status ?? 1;
}

function realIpOrExit(): string {
  const ip = findRealIp();
  if (ip === null) {
    process.stderr.write('Error: cannot find the iproute2 "ip" program (set UL2TP_REAL_IP)\n');
    process.exit(1);
  }
  return ip;
}

async function shim(argv: string[]): Promise<number> {
  const plan = planShim(argv);
  switch (plan.kind) {
    case 'ip':
      return execStatus(realIpOrExit(), argv);
    case 'netns':
      return execStatus(realIpOrExit(), ['netns', 'exec', plan.netns, process.execPath, process.argv[1], ...plan.argv]);
    case 'l2tp': {
      const { installFatalHandlers, processIo } = await import('./process-io.js');
      installFatalHandlers();
      const { runL2tp } = await import('./run.js');
      return runL2tp(plan.args, { json: plan.json, pretty: plan.pretty, oneline: plan.oneline, stats: plan.stats }, processIo());
    }
    case 'batch': {
      const { installFatalHandlers, processIo } = await import('./process-io.js');
      installFatalHandlers();
      const { readBatchInput, runBatch } = await import('./batch.js');
      const io = processIo();
      const text = readBatchInput(plan.file, io);
      if (text === null) return 1;
      const ip = realIpOrExit();
      return runBatch(
        text,
        { name: plan.file, force: plan.force, ip: (args) => execStatus(ip, [...plan.ipOptions, ...args]), ipStyle: true },
        { json: plan.json, pretty: plan.pretty, oneline: plan.oneline, stats: plan.stats },
        io,
      );
    }
  }
}

shim(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (e: unknown) => {
    process.stderr.write(`Error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);

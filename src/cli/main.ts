/**
 * The `ul2tp` program. Its arguments are exactly those after `ip l2tp`
 * (`ul2tp add tunnel ...`, `ul2tp show session`, `ul2tp help`), preceded by
 * iproute2's global options that matter here (`-j[son]`, `-p[retty]`,
 * `-o[neline]`, `-b[atch] FILE`, `-fo[rce]`; `-s[tats]` prints counters).
 * Three grammars, one per kind of word:
 *   - the ip l2tp words: iproute2's keyword loop (parse.ts, grammar.ts);
 *   - ul2tp's own commands (`stats`, `capture`, `impair`, `save`, `daemon
 *     WORD`): the OWN_COMMANDS table, each a keyword loop (own-command.ts),
 *     loaded only when used;
 *   - `ul2tp daemon [OPTIONS]` (daemon-cmd.ts): the same keyword loop, with
 *     GNU-style `--option` words;
 *   - `--help`, `--version` and unknown global options: commander, loaded
 *     just for them.
 *
 * Importing this module runs the program (bin/ul2tp.js does that).
 */
import { matches } from '../api/grammar.js';
import { scanOptions } from './option-scan.js';
import type { OwnCommand } from './daemon-cmd.js';
import { fatal, installFatalHandlers, processIo } from './process-io.js';
import { runL2tp, type CliOptions } from './run.js';


/** ul2tp's own commands: word → loader of its help and runner. */
const OWN_COMMANDS: Readonly<Record<string, () => Promise<OwnCommand>>> = {
  stats: async () => {
    const m = await import('./stats.js');
    return { help: m.STATS_HELP, run: (a, io, json) => m.runStats(a, io, undefined, json) };
  },
  capture: async () => {
    const m = await import('./capture.js');
    return { help: m.CAPTURE_HELP, run: (a, io, json) => m.runCapture(a, io, json) };
  },
  impair: async () => {
    const m = await import('./impair.js');
    return { help: m.IMPAIR_HELP, run: (a, io) => m.runImpair(a, io) };
  },
  save: async () => {
    const m = await import('./save.js');
    return { help: m.SAVE_HELP, run: (a, io) => m.runSave(a, io) };
  },
};

const wantsHelp = (args: readonly string[]): boolean => args.includes('--help') || args.includes('-h') || args[0] === 'help';

async function runOwn(cmd: OwnCommand, args: readonly string[], opts: CliOptions): Promise<number> {
  if (wantsHelp(args)) {
    process.stdout.write(cmd.help);
    return 0;
  }
  return cmd.run(args, processIo(), opts.json);
}

/** Runs the program on `argv` (without node and script); resolves to the exit status. */
export async function main(argv: string[], uninstall: () => void = () => {}): Promise<number> {
  const opts: CliOptions = { json: false, pretty: false, oneline: false, stats: false };
  let batch: string | null = null;
  let force = false;
  let stop: 'incomplete' | 'other' | null = null;
  const i = scanOptions(argv, (opt, at) => {
    if (matches(opt, '-json')) opts.json = true;
    else if (matches(opt, '-pretty')) opts.pretty = true;
    else if (matches(opt, '-stats') || matches(opt, '-statistics')) opts.stats = true;
    else if (matches(opt, '-oneline')) opts.oneline = true;
    else if (opt.length >= 3 && matches(opt, '-force')) force = true;
    else if (matches(opt, '-batch') && at + 1 < argv.length) {
      batch = argv[at + 1];
      return 2;
    } else {
      stop = matches(opt, '-batch') ? 'incomplete' : 'other';
      return 0;
    }
    return 1;
  });
  if (stop === 'incomplete') {
    process.stderr.write('Command line is not complete. Try option "help"\n');
    return 255;
  }
  if (stop === 'other') return (await import('./daemon-cmd.js')).runCommander(argv.slice(i));
  if (batch !== null) {
    // As ip: the rest of the command line is ignored.
    const { readBatchInput, runBatch } = await import('./batch.js');
    const { findRealIp } = await import('../control/netinfo.js');
    const { spawnSync } = await import('node:child_process');
    const io = processIo();
    const text = readBatchInput(batch, io);
    if (text === null) return 1;
    const ip = (args: readonly string[]): number => {
      const real = findRealIp();
      if (real === null) {
        process.stderr.write('Error: cannot find the iproute2 "ip" program (set UL2TP_REAL_IP)\n');
        return 1;
      }
      return spawnSync(real, args, { stdio: 'inherit' }).status ?? 1;
    };
    return runBatch(text, { name: batch, force, ip, ipStyle: false }, opts, io);
  }
  const rest = argv.slice(i);
  if (rest[0] === 'daemon') {
    const d = await import('./daemon-cmd.js');
    const sub = rest.length > 1 && Object.prototype.hasOwnProperty.call(d.DAEMON_SUBCOMMANDS, rest[1]) ? d.DAEMON_SUBCOMMANDS[rest[1]] : undefined;
    if (sub !== undefined) return runOwn(sub, rest.slice(2), opts);
    if (wantsHelp(rest.slice(1))) {
      process.stdout.write(d.DAEMON_HELP);
      return 0;
    }
    return d.runDaemonCommand(rest.slice(1), processIo(), uninstall);
  }
  const own = rest.length > 0 && Object.prototype.hasOwnProperty.call(OWN_COMMANDS, rest[0]) ? OWN_COMMANDS[rest[0]] : undefined;
  if (own !== undefined) {
    return runOwn(await own(), rest.slice(1), opts);
  }
  return runL2tp(rest, opts, processIo());
}

const uninstall = installFatalHandlers();
main(process.argv.slice(2), uninstall).then((status) => {
  process.exitCode = status;
}, fatal);

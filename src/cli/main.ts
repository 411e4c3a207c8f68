/**
 * The `ul2tp` program. Its arguments are exactly those after `ip l2tp`
 * (`ul2tp add tunnel ...`, `ul2tp show session`, `ul2tp help`), preceded by
 * iproute2's global options that matter here (`-j[son]`, `-p[retty]`,
 * `-o[neline]`; `-s[tats]` is accepted and ignored). Those go to the
 * hand-written ip grammar (run.ts). Only `ul2tp daemon`, `--version`/`-V` and
 * `--help`/`-h` go to commander, which is loaded just for them.
 *
 * Importing this module runs the program (bin/ul2tp.js does that).
 */
import { readFileSync } from 'node:fs';
import { matches } from './grammar.js';
import { fatal, installFatalHandlers, processIo } from './process-io.js';
import { runL2tp, type CliOptions } from './run.js';

export interface DaemonCliOptions {
  foreground: boolean;
  background: boolean;
  backend?: string;
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

const HELP_AFTER = `
ip l2tp commands (same grammar, output and exit status as iproute2's "ip l2tp"):
  ul2tp [ -j[son] ] [ -p[retty] ] { add | del | show } { tunnel | session } ...
  ul2tp help            print the ip l2tp usage

The first command in a network namespace starts its daemon in the background.`;

async function runCommander(args: string[], uninstall: () => void): Promise<number> {
  const { Command, Option } = await import('commander');
  const program = new Command('ul2tp')
    .description('Userspace L2TPv3 Ethernet pseudowires with the ip l2tp command line')
    .version(version(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .addHelpText('after', HELP_AFTER)
    .showHelpAfterError();
  program
    .command('daemon')
    .description("run this network namespace's daemon (in the foreground unless --background)")
    .option('--foreground', 'stay attached and log to stderr (default)')
    .option('--background', 'log to the run directory instead of stderr (used for the automatic start)')
    .addOption(new Option('--backend <name>', 'dataplane backend').choices(['koffi', 'native-free']))
    .action(async (o: { foreground?: boolean; background?: boolean; backend?: string }) => {
      // Resolved at run time so that the CLI never loads the daemon for other commands.
      const spec = '../control/daemon.js';
      const mod = (await import(spec)) as { runDaemon(opts: DaemonCliOptions): Promise<void> };
      const opts: DaemonCliOptions = { foreground: !o.background, background: o.background === true };
      if (o.backend !== undefined) opts.backend = o.backend;
      uninstall(); // the daemon handles its own failures
      await mod.runDaemon(opts);
    });
  await program.parseAsync(args, { from: 'user' });
  return 0;
}

/** Runs the program on `argv` (without node and script); resolves to the exit status. */
export async function main(argv: string[], uninstall: () => void = () => {}): Promise<number> {
  const opts: CliOptions = { json: false, pretty: false, oneline: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (a.length < 2 || a[0] !== '-') break;
    const opt = a.startsWith('--') ? a.slice(1) : a;
    if (matches(opt, '-json')) opts.json = true;
    else if (matches(opt, '-pretty')) opts.pretty = true;
    else if (matches(opt, '-stats') || matches(opt, '-statistics')) continue;
    else if (matches(opt, '-oneline')) opts.oneline = true;
    else return runCommander(argv.slice(i), uninstall);
  }
  const rest = argv.slice(i);
  if (rest[0] === 'daemon') return runCommander(rest, uninstall);
  return runL2tp(rest, opts, processIo());
}

const uninstall = installFatalHandlers();
main(process.argv.slice(2), uninstall).then((status) => {
  process.exitCode = status;
}, fatal);

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
  /** false for --no-offload */
  offload?: boolean;
  metrics?: string;
  metricsAnyAddress?: boolean;
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
  ul2tp [ -j[son] ] [ -p[retty] ] [ -s[tats] ] { add | del | show } { tunnel | session } ...
  ul2tp help            print the ip l2tp usage (exit 255, as "ip l2tp help")
  -s                    show: counters after each tunnel/session ("stats"/"drops" with -j)

ul2tp's own commands (each has --help):
  ul2tp stats [ tunnel_id ID ] [ session_id ID ] [ -i SECONDS ] [ -c COUNT ]
  ul2tp capture [ tunnel_id ID ] [ session_id ID ] [ -w FILE ] [ --inner ] [ -c COUNT ]
  ul2tp impair tunnel_id ID session_id ID { SETTINGS | off }
  ul2tp daemon [ --foreground | --background ] [ --backend NAME ] [ --metrics ADDR:PORT ] [ --no-offload ]

The first command in a network namespace starts its daemon in the background.
Environment: UL2TP_RUNDIR (run directory, default /run/ul2tp), UL2TP_BACKEND
(koffi | native-free), UL2TP_OFFLOAD=0 (no TSO/coalescing on session TAPs). Manual: man ul2tp (docs/ul2tp.8).`;

async function runCommander(args: string[], uninstall: () => void): Promise<number> {
  const { Command, Option } = await import('commander');
  const program = new Command('ul2tp')
    .description('Userspace L2TPv3 Ethernet pseudowires with the ip l2tp command line')
    .version(version(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .addHelpText('after', HELP_AFTER)
    .helpCommand(false)
    .showHelpAfterError();
  program
    .command('daemon')
    .description("run this network namespace's daemon (in the foreground unless --background)")
    .option('--foreground', 'stay attached and log to stderr (default)')
    .option('--background', 'log to the run directory instead of stderr (used for the automatic start)')
    .addOption(new Option('--backend <name>', 'dataplane backend (default: koffi, else native-free; env UL2TP_BACKEND)').choices(['koffi', 'native-free']))
    .option('--metrics <addr:port>', 'serve Prometheus metrics on http://ADDR:PORT/metrics (loopback only)')
    .option('--metrics-any-address', 'allow --metrics on a non-loopback address (no authentication!)')
    .option('--no-offload', 'koffi backend: plain TAPs, one frame per read/write (env UL2TP_OFFLOAD=0)')
    .addHelpText(
      'after',
      `
Runs in the foreground by default: logs on stderr, stops on SIGTERM/SIGINT
(configuration kept in the run directory's state.json and restored at the next
start), exits non-zero on a fatal error. Suitable as a systemd service
(packaging/ul2tp.service) or a container's main process (packaging/Dockerfile).`,
    )
    .action(async (o: { foreground?: boolean; background?: boolean; backend?: string; metrics?: string; metricsAnyAddress?: boolean; offload?: boolean }) => {
      // Resolved at run time so that the CLI never loads the daemon for other commands.
      const spec = '../control/daemon.js';
      const mod = (await import(spec)) as { runDaemon(opts: DaemonCliOptions): Promise<void> };
      const opts: DaemonCliOptions = { foreground: !o.background, background: o.background === true };
      if (o.backend !== undefined) opts.backend = o.backend;
      if (o.offload === false) opts.offload = false;
      if (o.metrics !== undefined) {
        // Checked here so that a bad address fails before the daemon starts anything.
        const { parseListen } = await import('../control/metrics.js');
        try {
          parseListen(o.metrics, o.metricsAnyAddress === true);
        } catch (e) {
          program.error(`error: ${(e as Error).message}`, { exitCode: 1 });
        }
        opts.metrics = o.metrics;
        opts.metricsAnyAddress = o.metricsAnyAddress === true;
      }
      uninstall(); // the daemon handles its own failures
      await mod.runDaemon(opts);
    });
  await program.parseAsync(args, { from: 'user' });
  return 0;
}

type Everyday = typeof import('./everyday.js');
type Runner = (argv: readonly string[], io: ReturnType<typeof processIo>) => Promise<number>;
const OWN_COMMANDS: Readonly<Record<string, (ev: Everyday) => [string, Runner]>> = {
  stats: (ev) => [ev.STATS_HELP, (a, io) => ev.runStats(a, io)],
  capture: (ev) => [ev.CAPTURE_HELP, (a, io) => ev.runCapture(a, io)],
  impair: (ev) => [ev.IMPAIR_HELP, (a, io) => ev.runImpair(a, io)],
};

/** Runs the program on `argv` (without node and script); resolves to the exit status. */
export async function main(argv: string[], uninstall: () => void = () => {}): Promise<number> {
  const opts: CliOptions = { json: false, pretty: false, oneline: false, stats: false };
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
    else if (matches(opt, '-stats') || matches(opt, '-statistics')) opts.stats = true;
    else if (matches(opt, '-oneline')) opts.oneline = true;
    else return runCommander(argv.slice(i), uninstall);
  }
  const rest = argv.slice(i);
  if (rest[0] === 'daemon') return runCommander(rest, uninstall);
  const own = rest.length > 0 && Object.prototype.hasOwnProperty.call(OWN_COMMANDS, rest[0]) ? OWN_COMMANDS[rest[0]] : undefined;
  if (own !== undefined) {
    // ul2tp's own commands (src/cli/everyday.ts), loaded only when used.
    const ev = await import('./everyday.js');
    const [help, run] = own(ev);
    if (rest.includes('--help') || rest.includes('-h') || rest[1] === 'help') {
      process.stdout.write(help);
      return 0;
    }
    return run(rest.slice(1), processIo());
  }
  return runL2tp(rest, opts, processIo());
}

const uninstall = installFatalHandlers();
main(process.argv.slice(2), uninstall).then((status) => {
  process.exitCode = status;
}, fatal);

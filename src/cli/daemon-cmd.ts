/**
 * `ul2tp daemon ...`: the daemon command's dispatcher.
 *   ul2tp daemon [ OPTIONS ]   run this namespace's daemon (options below)
 *   ul2tp daemon reload        re-apply the daemon's --config file (like SIGHUP)
 * Subcommands are the DAEMON_SUBCOMMANDS table (word → help and runner);
 * anything else is the run command. All of them use the own-command grammar
 * (own-command.ts), the run command with GNU-style `--option` keywords.
 */
import { readFileSync } from 'node:fs';
import { dataplaneOptionsFrom, parseWorkers, parseWorkerThreads } from '../control/options.js';
import { parseKeywords, usage, usageExit, withDaemon, type OwnKeyword } from './own-command.js';
import type { CliIo } from './run.js';

export interface OwnCommand {
  help: string;
  run(argv: readonly string[], io: CliIo, json: boolean): Promise<number>;
}

export const RELOAD_HELP = `Usage: ul2tp daemon reload

Makes this namespace's daemon read its --config file again and converge on it
(the same as sending it SIGHUP): adds what is missing, removes what the file
no longer names, re-creates what changed, and leaves unchanged tunnels and
sessions (and their traffic) alone. Prints what changed; a file that does not
parse changes nothing (exit 1).
`;

async function runReload(argv: readonly string[], io: CliIo, json: boolean): Promise<number> {
  try {
    parseKeywords(argv, [], {});
  } catch (e) {
    return usageExit(io, e, RELOAD_HELP);
  }
  return withDaemon(io, async (t) => {
    const r = await t.request('config_reload', {});
    if (json) io.stdout(JSON.stringify(r) + '\n');
    else {
      io.stdout(`${r.added} added, ${r.removed} removed, ${r.kept} unchanged\n`);
      for (const p of r.problems ?? []) io.stderr(`${p}\n`);
    }
    return 0;
  });
}

export const STATUS_HELP = `Usage: ul2tp [ -j ] daemon status

Says whether this namespace's daemon runs: pid, backend (and its workers),
uptime, numbers of tunnels and sessions and the run directory (exit 0), or "not running" (exit 3).
Never starts a daemon. -j: one JSON object.
`;

export const STOP_HELP = `Usage: ul2tp [ -j ] daemon stop

Stops this namespace's daemon (SIGTERM) and waits until it has exited. The
configuration is kept in the run directory and the next ul2tp command
restores it. Stopping a daemon that does not run is not an error.
`;

/** `ul2tp daemon status|stop`, which take no arguments. */
function ctlCommand(verb: 'status' | 'stop', help: string): OwnCommand {
  return {
    help,
    async run(argv, io, json) {
      try {
        parseKeywords(argv, [], {});
      } catch (e) {
        return usageExit(io, e, help);
      }
      return (await import('../control/daemon-ctl.js')).daemonCommand(verb, io, json);
    },
  };
}

/** `ul2tp daemon WORD ...` subcommands; `-j` reaches them as `json`. */
export const DAEMON_SUBCOMMANDS: Record<string, OwnCommand> = {
  reload: { help: RELOAD_HELP, run: runReload },
  status: ctlCommand('status', STATUS_HELP),
  stop: ctlCommand('stop', STOP_HELP),
};

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export const HELP_AFTER = `
ip l2tp commands (same grammar, output and exit status as iproute2's "ip l2tp"):
  ul2tp [ -j[son] ] [ -p[retty] ] [ -s[tats] ] { add | del | show } { tunnel | session } ...
  ul2tp [ -force ] -batch FILE   run the commands of FILE ("-" = stdin), as "ip -batch"
  ul2tp help            print the ip l2tp usage (exit 255, as "ip l2tp help")
  -s                    show: counters after each tunnel/session ("stats"/"drops" with -j)

ul2tp's own commands (each has --help):
  ul2tp stats [ tunnel_id ID ] [ session_id ID ] [ -i SECONDS ] [ -c COUNT ]
  ul2tp capture [ tunnel_id ID ] [ session_id ID ] [ -w FILE ] [ --inner ] [ -c COUNT ]
  ul2tp impair tunnel_id ID session_id ID { SETTINGS | off }
  ul2tp save            print the running configuration (a file for --config)
  ul2tp daemon [ --foreground | --background ] [ --config FILE ] [ --backend NAME ] [ --metrics ADDR:PORT ] [ --no-offload ]
                        [ --workers N ] [ --worker-threads { 1 | 2 } ]
  ul2tp daemon reload   re-apply the daemon's --config file (as SIGHUP)
  ul2tp daemon status   is this namespace's daemon running (pid, backend, uptime, counts); exit 3 if not
  ul2tp daemon stop     stop it (SIGTERM, waits); the configuration is kept for the next start
  -j                    stats, capture, daemon reload/status/stop: one JSON object per line

The first command in a network namespace starts its daemon in the background.
Its state lives in /run/ul2tp/<namespace inode>/, checked against the namespace's
never-reused identity before anything is restored; when the namespace is deleted
(no ip netns name, no process left in it) the daemon removes that state and exits.
Environment: UL2TP_RUNDIR (run directory, default /run/ul2tp), UL2TP_BACKEND
(koffi | native-free), UL2TP_OFFLOAD=0 (no TSO/coalescing on session TAPs),
UL2TP_WORKERS (koffi workers, as --workers), UL2TP_WORKER_THREADS (as
--worker-threads), UL2TP_LOG_MAX_BYTES (daemon.log
rotation size, default 1 MiB). Manual: man ul2tp (docs/ul2tp.8).`;

export const DAEMON_HELP = `Usage: ul2tp daemon [ --foreground | --background ] [ --config FILE ]
                    [ --backend { koffi | native-free } ] [ --metrics ADDR:PORT [ --metrics-any-address ] ]
                    [ --no-offload ] [ --workers N ] [ --worker-threads { 1 | 2 } ]
       ul2tp daemon { reload | status | stop }

Runs this network namespace's daemon, in the foreground unless --background:
logs on stderr, stops on SIGTERM/SIGINT (configuration kept in the run
directory's state.json and restored at the next start), exits non-zero on a
fatal error. Exits by itself, removing its state, when its network namespace
is deleted. "ul2tp daemon status" and "ul2tp daemon stop" query and stop the
running one. Suitable as a systemd service (packaging/ul2tp.service) or a
container's main process (packaging/Dockerfile).
  --foreground            stay attached and log to stderr (default)
  --background            log to the run directory's daemon.log instead of stderr
                          (used for the automatic start)
  --config <file>         the configuration (an ip -batch style file, as written by
                          "ul2tp save"): applied at start (a file that does not
                          parse stops the start), re-applied on SIGHUP and
                          "ul2tp daemon reload"
  --backend <name>        dataplane backend: koffi (default when it loads) or
                          native-free (env UL2TP_BACKEND)
  --metrics <addr:port>   serve Prometheus metrics on http://ADDR:PORT/metrics
                          (loopback only)
  --metrics-any-address   allow --metrics on a non-loopback address (no authentication!)
  --no-offload            koffi backend: plain TAPs, one frame per read/write
                          (env UL2TP_OFFLOAD=0)
  --workers <n>           koffi backend: workers (of --worker-threads threads
                          each), 1 to 64; tunnels are spread over them
                          (env UL2TP_WORKERS; default: 1 up to 2 cores, else
                          one per two cores, at most 8)
  --worker-threads <n>    koffi backend: threads per worker: 2 (a transmit and a
                          receive thread, so both directions of a tunnel can use
                          a core each) or 1 (one thread for both: a reply or TCP
                          ACK provoked by a received frame leaves in the same
                          wake-up, for less CPU per byte where the cores are
                          shared with the applications) (env
                          UL2TP_WORKER_THREADS; default: 1 up to 2 cores, else 2)
Options with a value may also be written with an equals sign, e.g. --config=FILE.
`;

interface DaemonArgs {
  foreground?: boolean;
  background?: boolean;
  config?: string;
  backend?: string;
  metrics?: string;
  metricsAnyAddress?: boolean;
  noOffload?: boolean;
  workers?: number;
  workerThreads?: 1 | 2;
}

function workerThreadsValue(text: string): 1 | 2 {
  try {
    return parseWorkerThreads(text, '--worker-threads');
  } catch (e) {
    throw usage(`Error: ${(e as Error).message}`);
  }
}

function workersValue(text: string): number {
  try {
    return parseWorkers(text, '--workers');
  } catch (e) {
    throw usage(`Error: ${(e as Error).message}`);
  }
}

function backendValue(text: string): string {
  if (text !== 'koffi' && text !== 'native-free') throw usage(`Error: argument "${text}" is wrong: "--backend" must be koffi or native-free`);
  return text;
}

const anyText = (t: string): string => t;
const set =
  <K extends keyof DaemonArgs>(k: K) =>
  (a: DaemonArgs, v: unknown): void =>
    void (a[k] = v as DaemonArgs[K]);

const DAEMON_KEYWORDS: ReadonlyArray<OwnKeyword<DaemonArgs>> = [
  { names: ['--foreground'], apply: set('foreground') },
  { names: ['--background'], apply: set('background') },
  { names: ['--config'], value: anyText, apply: set('config') },
  { names: ['--backend'], value: backendValue, apply: set('backend') },
  { names: ['--metrics'], value: anyText, apply: set('metrics') },
  { names: ['--metrics-any-address'], apply: set('metricsAnyAddress') },
  { names: ['--no-offload'], apply: set('noOffload') },
  { names: ['--workers'], value: workersValue, apply: set('workers') },
  { names: ['--worker-threads'], value: workerThreadsValue, apply: set('workerThreads') },
];

/** `ul2tp daemon [OPTIONS]`: checks everything that can be checked, then runs the daemon (never returns on success). */
export async function runDaemonCommand(argv: readonly string[], io: CliIo, uninstall: () => void): Promise<number> {
  let o: DaemonArgs;
  try {
    o = parseKeywords(argv, DAEMON_KEYWORDS, {});
  } catch (e) {
    return usageExit(io, e, DAEMON_HELP);
  }
  // Resolved at run time so that the CLI never loads the daemon for other commands.
  const spec = '../control/daemon.js';
  const mod = (await import(spec)) as typeof import('../control/daemon.js');
  const opts: Parameters<typeof mod.runDaemon>[0] = { foreground: o.background !== true, background: o.background === true };
  if (o.backend !== undefined) opts.backend = o.backend;
  if (o.noOffload === true) opts.offload = false;
  if (o.workers !== undefined) opts.workers = o.workers;
  if (o.workerThreads !== undefined) opts.workerThreads = o.workerThreads;
  try {
    // A bad UL2TP_WORKERS fails here, before the daemon starts anything.
    dataplaneOptionsFrom(opts, process.env);
  } catch (e) {
    io.stderr(`Error: ${(e as Error).message}\n`);
    return 1;
  }
  if (o.config !== undefined) {
    // Checked here so that a file that does not parse fails before the daemon starts anything.
    const { configSource, loadConfigFile } = await import('./config-file.js');
    try {
      loadConfigFile(o.config);
    } catch (e) {
      io.stderr(`Error: ${(e as Error).message}\n`);
      return 1;
    }
    opts.config = configSource(o.config);
  }
  if (o.metrics !== undefined) {
    // Checked here so that a bad address fails before the daemon starts anything.
    const { parseListen } = await import('../control/metrics.js');
    try {
      parseListen(o.metrics, o.metricsAnyAddress === true);
    } catch (e) {
      io.stderr(`error: ${(e as Error).message}\n`);
      return 1;
    }
    opts.metrics = o.metrics;
    opts.metricsAnyAddress = o.metricsAnyAddress === true;
  }
  uninstall(); // the daemon handles its own failures
  await mod.runDaemon(opts);
  return 0;
}

/** Top-level `--help`, `--version` and unknown global options (commander, loaded just for them). */
export async function runCommander(args: string[]): Promise<number> {
  const { Command } = await import('commander');
  const program = new Command('ul2tp')
    .description('Userspace L2TPv3 Ethernet pseudowires with the ip l2tp command line')
    .version(version(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .addHelpText('after', HELP_AFTER)
    .helpCommand(false)
    .showHelpAfterError();
  // Listed for the help; main.ts runs these words itself.
  program.command('daemon').description("run this network namespace's daemon (see ul2tp daemon --help)");
  await program.parseAsync(args, { from: 'user' });
  return 0;
}

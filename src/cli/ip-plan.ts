/**
 * The `ip` shim's decisions, without side effects (ip-shim.ts runs them):
 * iproute2's global option loop (ip/ip.c), the object word, and where the
 * real `ip` lives.
 */
import { scanOptions } from './option-scan.js';

type OptKind = 'json' | 'pretty' | 'oneline' | 'stats' | 'netns' | 'batch' | 'force' | 'ignore' | 'ip-only';

interface IpOption {
  name: string;
  /** strcmp instead of iproute2's prefix `matches`. */
  exact?: boolean;
  /** Consumes the next argument. */
  arg?: boolean;
  kind: OptKind;
}

/**
 * ip/ip.c's option loop, in its order (the first match wins, so `-h` is
 * -human and `-n` is -netns). `ip-only` options make the whole command go to
 * the real ip (version, help). `-batch FILE` is run by the shim (batch.ts):
 * l2tp lines by ul2tp, the others by the real ip.
 */
const IP_OPTIONS: readonly IpOption[] = [
  { name: '-loops', arg: true, kind: 'ignore' },
  { name: '-family', arg: true, kind: 'ignore' },
  { name: '-4', exact: true, kind: 'ignore' },
  { name: '-6', exact: true, kind: 'ignore' },
  { name: '-0', exact: true, kind: 'ignore' },
  { name: '-M', exact: true, kind: 'ignore' },
  { name: '-B', exact: true, kind: 'ignore' },
  { name: '-human', kind: 'ignore' },
  { name: '-human-readable', kind: 'ignore' },
  { name: '-iec', kind: 'ignore' },
  // ul2tp prints l2tp counters with -s (iproute2 prints none): see docs/usage.md.
  { name: '-stats', kind: 'stats' },
  { name: '-statistics', kind: 'stats' },
  { name: '-details', kind: 'ignore' },
  { name: '-resolve', kind: 'ignore' },
  { name: '-oneline', kind: 'oneline' },
  { name: '-timestamp', kind: 'ignore' },
  { name: '-tshort', kind: 'ignore' },
  { name: '-Version', kind: 'ip-only' },
  { name: '-force', kind: 'force' },
  { name: '-batch', arg: true, kind: 'batch' },
  { name: '-brief', kind: 'ignore' },
  { name: '-json', kind: 'json' },
  { name: '-pretty', kind: 'pretty' },
  { name: '-rcvbuf', arg: true, kind: 'ignore' },
  { name: '-color', kind: 'ignore' }, // also -color=WHEN, see below
  { name: '-help', kind: 'ip-only' },
  { name: '-netns', arg: true, kind: 'netns' },
  { name: '-Numeric', kind: 'ignore' },
  { name: '-all', kind: 'ignore' },
  { name: '-echo', exact: true, kind: 'ignore' },
];

/** ip's object table up to l2tp: a word selects l2tp only if no earlier entry matches it. */
const OBJECTS_BEFORE_L2TP = ['address', 'addrlabel', 'maddress', 'route', 'rule', 'neighbor', 'neighbour', 'ntable', 'ntbl', 'link'];

function matches(prefix: string, word: string): boolean {
  return prefix.length > 0 && word.startsWith(prefix);
}

export function isL2tpObject(word: string): boolean {
  return matches(word, 'l2tp') && !OBJECTS_BEFORE_L2TP.some((o) => matches(word, o));
}

export type ShimPlan =
  | { kind: 'ip' }
  | { kind: 'netns'; netns: string; argv: string[] }
  | { kind: 'l2tp'; args: string[]; json: boolean; pretty: boolean; oneline: boolean; stats: boolean }
  /** `ip [OPTIONS] -batch FILE`: `ipOptions` are the options to give the real ip for its lines. */
  | { kind: 'batch'; file: string; force: boolean; ipOptions: string[]; json: boolean; pretty: boolean; oneline: boolean; stats: boolean };

function findOption(opt: string): IpOption | undefined {
  const base = opt.split('=', 1)[0];
  for (const o of IP_OPTIONS) {
    if (o.name === '-color') {
      if (matches(base, '-color')) return o;
    } else if (o.exact ? opt === o.name : matches(opt, o.name)) {
      return o;
    }
  }
  return undefined;
}

/** Decides what to do with `ip <argv>`. */
export function planShim(argv: readonly string[]): ShimPlan {
  let json = false;
  let pretty = false;
  let oneline = false;
  let stats = false;
  let netns: string | null = null;
  let batch: string | null = null;
  let force = false;
  const netnsAt: number[] = [];
  const ipOptions: string[] = [];
  let toIp = false; // an option only ip knows, or one missing its value (ip prints its own error)
  const i = scanOptions(argv, (opt, at) => {
    const o = findOption(opt);
    if (o === undefined || o.kind === 'ip-only' || (o.arg && at + 1 >= argv.length)) {
      toIp = true;
      return 0;
    }
    if (o.arg) {
      if (o.kind === 'netns') {
        netns = argv[at + 1]; // like ip, the last one wins
        netnsAt.push(at);
      } else if (o.kind === 'batch') {
        batch = argv[at + 1];
      } else {
        ipOptions.push(argv[at], argv[at + 1]);
      }
      return 2;
    }
    if (o.kind === 'force') force = true;
    else ipOptions.push(argv[at]);
    if (o.kind === 'json') json = true;
    else if (o.kind === 'pretty') pretty = true;
    else if (o.kind === 'oneline') oneline = true;
    else if (o.kind === 'stats') stats = true;
    return 1;
  });
  if (toIp) return { kind: 'ip' };
  if (batch !== null) {
    // As ip: with -batch, the rest of the command line is ignored.
    if (netns !== null) return { kind: 'netns', netns, argv: argv.filter((_, k) => !netnsAt.some((at) => k === at || k === at + 1)) };
    return { kind: 'batch', file: batch, force, ipOptions, json, pretty, oneline, stats };
  }
  if (i >= argv.length || !isL2tpObject(argv[i])) return { kind: 'ip' };
  if (netns !== null) {
    const rest = argv.filter((_, k) => !netnsAt.some((at) => k === at || k === at + 1));
    return { kind: 'netns', netns, argv: rest };
  }
  return { kind: 'l2tp', args: argv.slice(i + 1), json, pretty, oneline, stats };
}



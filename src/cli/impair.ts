/**
 * `ul2tp impair`: set or clear a session's transmit impairment.
 */
import { L2tpError } from '../errors.js';
import { parseRate } from './impair-text.js';
import { idValue, parseKeywords, positiveInteger, usage, usageExit, withDaemon, type OwnKeyword } from './own-command.js';
import type { CliIo } from './run.js';

export const IMPAIR_HELP = `Usage: ul2tp impair tunnel_id ID session_id ID [ loss PCT ] [ duplicate PCT ]
                    [ reorder PCT [ distance N ] ] [ delay MS [ jitter MS ] ]
                    [ rate RATE ] [ seed N ]
       ul2tp impair tunnel_id ID session_id ID off

Impairs what the session transmits, after encapsulation (sequence numbers are
assigned first, as on a real network). Each command replaces the session's
previous settings; "off" (or no setting) removes them. Not persisted.
  loss PCT        drop each packet with probability PCT (e.g. 5 or 5%)
  duplicate PCT   send a packet twice
  reorder PCT     hold a packet back behind the next N packets (distance, default 1)
  delay MS        delay every packet (e.g. 10 or 10ms); jitter MS: uniform +-MS
  rate RATE       limit to RATE bit/s: e.g. 800kbit, 10mbit, 1gbit
  seed N          seed of the random generator (reproducible runs)
"ul2tp show session" prints an "impairment:" line while one is set.
Not available with the native-free backend.
`;

type ImpairArgs = Record<string, number | boolean>;

function pctValue(text: string, k: string): number {
  const m = /^(\d+(?:\.\d+)?)%?$/.exec(text);
  const v = m ? Number(m[1]) : NaN;
  if (!(v >= 0 && v <= 100)) throw usage(`Error: argument "${text}" is wrong: "${k}" must be a percentage 0..100`);
  return v;
}

function msValue(text: string, k: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms)?$/.exec(text);
  const v = m ? Number(m[1]) : NaN;
  if (!(v >= 0 && v <= 60000)) throw usage(`Error: argument "${text}" is wrong: "${k}" must be 0..60000 ms`);
  return v;
}

function distanceValue(text: string, k: string): number {
  const v = positiveInteger(text, k);
  if (v > 1000) throw usage(`Error: argument "${v}" is wrong: "distance" must be 1..1000`);
  return v;
}

function rateValue(text: string): number {
  const v = parseRate(text);
  if (v === null) throw usage(`Error: argument "${text}" is wrong: "rate" must be like 800kbit, 10mbit, 1gbit`);
  return v;
}

function seedValue(text: string): number {
  const v = Number(text);
  if (!/^\d+$/.test(text) || v > 0xffffffff) throw usage(`Error: argument "${text}" is wrong: "seed" must be 0..4294967295`);
  return v;
}

const store = (name: string) => (a: ImpairArgs, v: unknown): void => void (a[name] = v as number | boolean);

const IMPAIR_KEYWORDS: ReadonlyArray<OwnKeyword<ImpairArgs>> = [
  { names: ['tunnel_id', 'tid'], value: idValue, apply: store('tunnel_id') },
  { names: ['session_id', 'sid'], value: idValue, apply: store('session_id') },
  { names: ['off'], apply: store('off') },
  { names: ['loss'], value: pctValue, apply: store('loss') },
  { names: ['duplicate'], value: pctValue, apply: store('duplicate') },
  { names: ['reorder'], value: pctValue, apply: store('reorder') },
  { names: ['distance'], value: distanceValue, apply: store('distance') },
  { names: ['delay'], value: msValue, apply: store('delay') },
  { names: ['jitter'], value: msValue, apply: store('jitter') },
  { names: ['rate'], value: rateValue, apply: store('rate') },
  { names: ['seed'], value: seedValue, apply: store('seed') },
];

export function parseImpairArgs(args: readonly string[]): ImpairArgs {
  const a = parseKeywords(args, IMPAIR_KEYWORDS, {});
  if (a.tunnel_id === undefined) throw usage('Error: argument "tunnel_id" is required');
  if (a.session_id === undefined) throw usage('Error: argument "session_id" is required');
  if (a.off === true && Object.keys(a).length > 3) throw usage('Error: "off" cannot be combined with settings');
  if (a.distance !== undefined && a.reorder === undefined) throw usage('Error: "distance" needs "reorder"');
  if (a.jitter !== undefined && a.delay === undefined) throw usage('Error: "jitter" needs "delay"');
  return a;
}

export async function runImpair(argv: readonly string[], io: CliIo): Promise<number> {
  let attrs: ImpairArgs;
  try {
    attrs = parseImpairArgs(argv);
  } catch (e) {
    return usageExit(io, e, IMPAIR_HELP);
  }
  return withDaemon(io, async (t) => {
    try {
      await t.request('impair', attrs as never);
      return 0;
    } catch (e) {
      if (e instanceof L2tpError && e.code === 'KERNEL') {
        io.stderr(`RTNETLINK answers: ${e.errno === 'ENODEV' ? 'No such device' : e.message}\n`);
      } else {
        io.stderr(`Error: ${(e as Error).message}\n`);
      }
      return 2;
    }
  });
}

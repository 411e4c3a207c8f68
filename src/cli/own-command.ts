/**
 * The one grammar of ul2tp's own commands (`stats`, `capture`, `impair`,
 * `save`, `daemon reload`): like the ip words, a flat loop over keywords,
 * each declared once in a table with its aliases and its value parser (the
 * shape of grammar.ts's KEYWORDS). Usage problems print the error, then the
 * command's help, on stderr with exit status 255; `--help`, `-h` or `help`
 * prints the help on stdout (exit 0; main.ts). Daemon errors print
 * `Error: ...` and exit 1.
 */
import { L2tpError } from '../errors.js';
import { getU32 } from '../api/grammar.js';
import type { CliIo, Transport } from './run.js';

export const usage = (msg: string): L2tpError => new L2tpError('USAGE', msg);

/** One keyword of an own command: its names, and how it stores itself into `T`. */
export interface OwnKeyword<T> {
  names: readonly string[];
  /** Reads the next argument as the value (absent: a flag). */
  value?: (text: string, key: string) => unknown;
  apply(a: T, value: unknown, key: string): void;
}

/** The keyword loop: every argument is a keyword of `table` (then its value) or a usage error. */
export function parseKeywords<T>(args: readonly string[], table: ReadonlyArray<OwnKeyword<T>>, a: T): T {
  for (let i = 0; i < args.length; i++) {
    let k = args[i];
    // GNU style `--option=VALUE` for the `--` keywords that take a value.
    let inline: string | undefined;
    const eq = k.startsWith('--') ? k.indexOf('=') : -1;
    if (eq > 2) {
      inline = k.slice(eq + 1);
      k = k.slice(0, eq);
    }
    const kw = table.find((t) => t.names.includes(k));
    if (kw === undefined || (inline !== undefined && kw.value === undefined)) throw usage(`Unknown option: ${args[i]}`);
    if (kw.value === undefined) {
      kw.apply(a, true, k);
      continue;
    }
    if (inline === undefined && i + 1 >= args.length) throw usage(`Error: "${k}" needs a value`);
    kw.apply(a, kw.value(inline ?? args[++i], k), k);
  }
  return a;
}

/** A tunnel or session id (1..2^32-1, iproute2's number syntax). */
export function idValue(text: string, key: string): number {
  const v = getU32(text);
  if (v === null || v === 0) throw usage(`Error: argument "${text}" is wrong: "${key}" is invalid`);
  return v;
}

export function positive(text: string, key: string, integer: boolean): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v)))
    throw usage(`Error: argument "${text}" is wrong: "${key}" must be a positive ${integer ? 'integer' : 'number'}`);
  return v;
}

export const positiveNumber = (t: string, k: string): number => positive(t, k, false);
export const positiveInteger = (t: string, k: string): number => positive(t, k, true);

/** Prints a command's usage problem and its help; returns the exit status. */
export function usageExit(io: CliIo, e: unknown, help: string): number {
  if (e instanceof L2tpError && e.code === 'USAGE') {
    io.stderr(`${e.message}\n${help}`);
    return 255;
  }
  throw e;
}

/** Runs `fn` on a daemon connection; connection and unexpected errors print `Error: ...` (exit 1). */
export async function withDaemon(io: CliIo, fn: (t: Transport) => Promise<number>): Promise<number> {
  let t: Transport;
  try {
    t = await io.connect();
  } catch (e) {
    io.stderr(`Error: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    return await fn(t);
  } catch (e) {
    io.stderr(`Error: ${(e as Error).message}\n`);
    return 1;
  } finally {
    t.close();
  }
}

/**
 * ip's scan of the options before the object word (ip.c main): words that
 * start with "-" until the first one that does not, "--" ends the options and
 * is skipped, and "--x" means "-x".
 */

/**
 * Calls `take(opt, at)` for each leading option word (`opt` with one dash);
 * `take` returns how many words it used (1, or 2 with a value), or 0 to stop
 * there. Returns the index of the first word after the options.
 */
export function scanOptions(argv: readonly string[], take: (opt: string, at: number) => number): number {
  let i = 0;
  while (i < argv.length) {
    const a = argv[i];
    if (a === '--') return i + 1;
    if (a.length < 2 || a[0] !== '-') return i;
    const used = take(a.startsWith('--') ? a.slice(1) : a, i);
    if (used === 0) return i;
    i += used;
  }
  return i;
}

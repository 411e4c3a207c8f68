/**
 * The --workers sweep of the end-to-end benchmark: each ul2tp path on the
 * koffi backend runs once per worker count, its daemons started with
 * `ul2tp daemon --workers N` (when the daemon has that option).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BenchError } from '../lib/sys.js';
import { CLI, ROOT, run } from '../../support/proc.js';
import type { PathDef } from './paths.js';

/** `--workers 1,2,4` → [1, 2, 4] (distinct, in the order given). */
export function parseWorkers(v: string): number[] {
  const xs = v.split(',').map((x) => x.trim()).filter(Boolean).map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new BenchError(`--workers: expected integers 1–64, got "${x}"`);
    return n;
  });
  if (xs.length === 0) throw new BenchError('--workers: expected N[,M…]');
  return [...new Set(xs)];
}

/** Whether `ul2tp daemon --help` lists a --workers option. */
export function daemonHasWorkers(): boolean {
  const r = run(process.execPath, [CLI, 'daemon', '--help'], { timeoutMs: 15_000 });
  return /(^|\s)--workers\b/m.test(r.stdout + r.stderr);
}

/** Paths the sweep multiplies: ul2tp on the koffi backend (the worker threads are koffi's). */
export const sweepable = (p: PathDef) => p.id.startsWith('ul2tp-') && p.id !== 'ul2tp-nf';

/**
 * A daemon entry (UL2TP_DAEMON_ENTRY, the script the CLI starts as
 * `node ENTRY daemon --background`) that appends `--workers N` and runs the
 * real CLI: the automatically started daemons of a path get the option.
 */
export function workersEntry(dir: string, n: number): string {
  const f = join(dir, `daemon-workers-${n}.mjs`);
  const main = pathToFileURL(join(ROOT, 'dist', 'src', 'cli', 'main.js')).href;
  writeFileSync(f, `process.argv.push('--workers', '${n}');\nawait import(${JSON.stringify(main)});\n`);
  return f;
}

export type BenchPath = PathDef & { skip: string; workers?: number; base: PathDef };

/** The paths to run: each selected path once, or once per worker count for the sweepable ones. */
export function expandPaths(selected: PathDef[], workers: number[]): Array<PathDef & { workers?: number; base: PathDef }> {
  return selected.flatMap((p) =>
    workers.length && sweepable(p)
      ? workers.map((n) => Object.assign(Object.create(p) as PathDef, p, { id: `${p.id}-w${n}`, label: `${p.label}, --workers ${n}`, workers: n, base: p }))
      : [Object.assign(Object.create(p) as PathDef, p, { base: p })],
  );
}


/**
 * The daemon's configuration on disk, written atomically (write a temporary
 * file, fsync it, rename over the old one, fsync the directory) so that a
 * crash at any moment leaves either the old or the new file, never a mix.
 * The temporary file has a random name and is created with O_EXCL|O_NOFOLLOW,
 * and reads never follow a symlink (rundir.ts).
 */
import { lstatSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { checkSavedState, type SavedState } from './handlers.js';
import { readFileNoFollow, writeFileAtomic, writeFileExclusive } from './rundir.js';

export function writeStateFile(path: string, state: SavedState): void {
  writeFileAtomic(path, JSON.stringify(state) + '\n');
}

export type LoadResult =
  | { kind: 'none' }
  | { kind: 'ok'; state: SavedState; mtimeMs: number }
  | { kind: 'corrupt'; reason: string; backup: string };

/**
 * Read the state file. A missing file is an empty configuration. A file that
 * cannot be used is left where it is (so every later start refuses too: never
 * a silent empty configuration) and copied to `<path>.corrupt-<time>` (one
 * copy per distinct content), and reported; the user fixes or removes it.
 */
export function loadStateFile(path: string, now = new Date()): LoadResult {
  let text: string;
  try {
    text = readFileNoFollow(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    throw e;
  }
  try {
    const state = checkSavedState(JSON.parse(text));
    let mtimeMs = Date.now();
    try {
      mtimeMs = lstatSync(path).mtimeMs;
    } catch {
      /* raced away: now is an upper bound */
    }
    return { kind: 'ok', state, mtimeMs };
  } catch (e) {
    const reason = e instanceof SyntaxError ? 'truncated or not JSON' : (e as Error).message;
    return { kind: 'corrupt', reason, backup: keepBackup(path, text, now) };
  }
}

/** Copy an unusable state file aside, unless an identical copy is already there. */
function keepBackup(path: string, text: string, now: Date): string {
  const dir = dirname(path);
  const prefix = `${basename(path)}.corrupt-`;
  try {
    for (const f of readdirSync(dir)) {
      if (f.startsWith(prefix) && readFileNoFollow(join(dir, f)) === text) return join(dir, f);
    }
  } catch {
    /* fall through: write a new copy */
  }
  const backup = `${path}.corrupt-${now.toISOString().replace(/[:.]/g, '-')}`;
  writeFileExclusive(backup, text);
  return backup;
}

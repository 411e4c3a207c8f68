/**
 * The daemon's configuration on disk, written atomically (write a temporary
 * file, fsync it, rename over the old one, fsync the directory) so that a
 * crash at any moment leaves either the old or the new file, never a mix.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { checkSavedState, type SavedState } from './handlers.js';

export function writeStateFile(path: string, state: SavedState): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(state) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dfd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

export type LoadResult =
  | { kind: 'none' }
  | { kind: 'ok'; state: SavedState }
  | { kind: 'corrupt'; reason: string; backup: string };

/**
 * Read the state file. A missing file is an empty configuration; a file that
 * cannot be parsed is moved aside to `<path>.corrupt-<time>` (kept for the
 * user) and reported, never silently treated as empty.
 */
export function loadStateFile(path: string, now = new Date()): LoadResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    throw e;
  }
  try {
    return { kind: 'ok', state: checkSavedState(JSON.parse(text)) };
  } catch (e) {
    const backup = `${path}.corrupt-${now.toISOString().replace(/[:.]/g, '-')}`;
    renameSync(path, backup);
    const reason = e instanceof SyntaxError ? 'truncated or not JSON' : (e as Error).message;
    return { kind: 'corrupt', reason, backup };
  }
}

/**
 * The daemon's life against its namespace (cold path, daemon only):
 *
 * - checkIdentity: the run directory is keyed by the namespace's inode, which
 *   the kernel reuses; `netns-id` in it records the never-reused identity of
 *   the namespace that wrote it (netns-id.ts). A directory written by another
 *   namespace is emptied before anything is read from it: its state is never
 *   restored. State without a recorded identity (written by hand or by an
 *   older ul2tp) is set aside, not restored.
 * - sweepStale: run directories of namespaces nobody holds any more (their
 *   daemon was killed, then the namespace deleted) are removed.
 * - watchNetns: a namespace deleted with `ip netns del` stays alive as long as
 *   a process is in it, so a daemon would keep it (and its interfaces)
 *   forever. Every few seconds the daemon looks for anyone else holding its
 *   namespace (a bind mount, another process, an open file); when nobody
 *   does, it removes its run directory and exits, as the kernel's tunnels die
 *   with their namespace.
 */
import { ftruncateSync, readdirSync, rmSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { cannotJudgeNetns, netnsHolder, netnsIdentity, ownNetnsInode, seesAllProcesses } from './netns-id.js';
import { emptyDir, readFileNoFollow, writeFileAtomic } from './rundir.js';

export const NETNS_ID_FILE = 'netns-id';
/** How often the daemon checks that its namespace is still in use (exit within ~2 periods). */
export const NETNS_WATCH_MS = 3000;

type Log = (msg: string) => void;

/** See the module comment. `logFd` (the open log, or 2) is truncated when the directory was another namespace's. */
export async function checkIdentity(dir: string, logFd: number, log: Log): Promise<void> {
  const ident = await netnsIdentity();
  const idPath = join(dir, NETNS_ID_FILE);
  let recorded: string | null = null;
  try {
    recorded = readFileNoFollow(idPath).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') recorded = `unreadable (${(e as NodeJS.ErrnoException).code})`;
  }
  if (ident.id === '') {
    log(`namespace identity: ${ident.how}`);
    return;
  }
  if (recorded === ident.id) return;
  if (recorded !== null) {
    // Same inode, another namespace: everything here belongs to a deleted one.
    emptyDir(dir, new Set(['daemon.log']));
    if (logFd !== 2) ftruncateSync(logFd, 0);
    log(`removed the run directory's contents: they belonged to a deleted network namespace that had the same inode (this one: ${ident.how})`);
  } else {
    const names = readdirSync(dir).filter((f) => f === 'state.json' || f.startsWith('state.json.'));
    if (names.includes('state.json')) {
      const aside = join(dir, `state.json.unverified-${new Date().toISOString().replace(/[:.]/g, '-')}`);
      renameSync(join(dir, 'state.json'), aside);
      log(`state.json records no namespace identity (written by hand or by an older ul2tp): not restored, kept as ${aside}`);
    }
  }
  writeFileAtomic(idPath, ident.id + '\n');
}

/** Remove the run directories (under the same base) of namespaces nobody holds any more. */
export function sweepStale(base: string, ownIno: string, log: Log): void {
  if (!seesAllProcesses()) return; // in a container's pid namespace we cannot see who holds a namespace
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const n of names) {
    if (!/^\d+$/.test(n) || n === ownIno) continue;
    if (netnsHolder(n, process.pid, true) !== null) continue;
    try {
      rmSync(join(base, n), { recursive: true, force: true });
      log(`removed ${join(base, n)}: its network namespace no longer exists`);
    } catch (e) {
      log(`cannot remove the stale run directory ${join(base, n)}: ${(e as Error).message}`);
    }
  }
}

/**
 * Call `onGone(why)` once nobody but this process holds its network
 * namespace. Returns the timer (unref'd) so the caller can stop watching.
 */
export function watchNetns(onGone: (why: string) => void, periodMs = NETNS_WATCH_MS): NodeJS.Timeout {
  const ino = ownNetnsInode();
  const t = setInterval(() => {
    if (cannotJudgeNetns(ino)) return;
    if (netnsHolder(ino, process.pid) !== null) return;
    // Rare: confirm with the slower scan of open files (a runtime holding the namespace by fd).
    if (netnsHolder(ino, process.pid, true) !== null) return;
    clearInterval(t);
    onGone(`network namespace ${ino} is no longer used by anybody (no ip netns name, no other process)`);
  }, periodMs);
  t.unref();
  return t;
}

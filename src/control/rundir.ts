/**
 * The run directory treated as hostile ground (cold path, daemon only).
 *
 * - The base (`/run/ul2tp` or `UL2TP_RUNDIR`) and the namespace's directory
 *   must be real directories (not symlinks), owned by the daemon's uid or
 *   root, and writable by nobody else; otherwise the daemon refuses to start
 *   with a RunDirError saying what is wrong.
 * - Every file the daemon writes is created exclusively under a random name
 *   with O_NOFOLLOW (then renamed into place), and the log is opened with
 *   O_NOFOLLOW and checked to be our own regular file with one link, so that
 *   nothing planted in the directory (symlinks, hard links) redirects a write.
 * - Reads use O_NOFOLLOW as well.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_APPEND, O_DIRECTORY } = constants;
/** Linux's O_CLOEXEC (not in fs.constants): no child process inherits these fds. */
const O_CLOEXEC = 0o2000000;

export class RunDirError extends Error {}

const myUid = (): number => process.getuid?.() ?? 0;

/** Throws RunDirError unless `path` is a directory we (or root) own that nobody else can write. */
export function checkDirSafe(path: string, exactMode?: number): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    throw new RunDirError(`run directory ${path}: ${(e as Error).message}`);
  }
  if (st.isSymbolicLink()) throw new RunDirError(`run directory ${path} is a symbolic link: refusing to use it`);
  if (!st.isDirectory()) throw new RunDirError(`run directory ${path} is not a directory: refusing to use it`);
  if (st.uid !== myUid() && st.uid !== 0)
    throw new RunDirError(`run directory ${path} is owned by uid ${st.uid}, not by the daemon's uid ${myUid()} or root: refusing to use it`);
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0)
    throw new RunDirError(`run directory ${path} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)}): refusing to use it`);
  if (exactMode !== undefined && (st.mode & 0o777) !== exactMode)
    throw new RunDirError(`run directory ${path} has mode ${(st.mode & 0o777).toString(8)}, not ${exactMode.toString(8)}: refusing to use it`);
  if (exactMode !== undefined && st.uid !== myUid())
    throw new RunDirError(`run directory ${path} is owned by uid ${st.uid}, not by the daemon's uid ${myUid()}: refusing to use it`);
}

/**
 * Make sure `dir` (the namespace's directory) and its parent are safe,
 * creating them (both 0700) when absent. A sticky, world-writable
 * base such as /tmp is not accepted either: the daemon's directory must not
 * sit where others can create names.
 */
export function prepareRunDir(dir: string): void {
  const base = dirname(dir);
  try {
    mkdirSync(base, { recursive: true, mode: 0o700 });
  } catch {
    /* checked below */
  }
  checkDirSafe(base);
  const st = lstatSync(base);
  if ((st.mode & 0o022) !== 0) throw new RunDirError(`run directory ${base} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)}): refusing to use it`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new RunDirError(`run directory ${dir}: ${(e as Error).message}`);
  }
  checkDirSafe(dir, 0o700);
}

/** Create `path` with `data`: a random temporary name, O_EXCL|O_NOFOLLOW, fsync, rename, fsync of the directory. */
export function writeFileAtomic(path: string, data: string): void {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600);
  try {
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* renamed or gone */
    }
    throw e;
  }
  const dfd = openSync(dirname(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/** Create a new file exclusively (fails if anything, symlink included, has the name). */
export function writeFileExclusive(path: string, data: string): void {
  const fd = openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600);
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

/** Read a file without following a symlink at its name (ELOOP if there is one). */
export function readFileNoFollow(path: string): string {
  const fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Open the daemon's log for appending: never through a symlink, and only if
 * it is our own regular file with a single link (a planted hard link to some
 * other file is removed and a fresh log created).
 */
export function openLog(path: string): number {
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ELOOP' && attempt === 0) {
        unlinkSync(path); // a symlink: not ours to follow
        continue;
      }
      throw e;
    }
    const st = fstatSync(fd);
    if (st.isFile() && st.uid === myUid() && st.nlink === 1) return fd;
    closeSync(fd);
    if (attempt === 0) unlinkSync(path);
  }
  throw new RunDirError(`cannot open the log ${path} safely`);
}

/** Remove everything in `dir` (a dead namespace's leftovers), keeping the directory. */
export function emptyDir(dir: string, keep: ReadonlySet<string> = new Set()): void {
  for (const f of readdirSync(dir)) {
    if (!keep.has(f)) rmSync(join(dir, f), { recursive: true, force: true });
  }
}

/**
 * Which network namespace is this, in a way the kernel never reuses, and is
 * a namespace still in use by anybody but us (cold path, daemon only).
 *
 * The run directory is keyed by the inode of /proc/self/ns/net, so that the
 * CLI finds its daemon with one stat(2). But the kernel hands a deleted
 * namespace's inode number to the next namespace, so the inode alone would
 * let a fresh namespace pick up a dead one's state.json (another tenant's
 * tunnels). Before restoring anything the daemon therefore compares a
 * second, never-reused identity with the one recorded in the directory:
 *
 *  - `cookie:<u64>`: the namespace cookie (getsockopt SO_NETNS_COOKIE on any
 *    socket of the namespace; a 64-bit counter the kernel never reuses while
 *    it runs), read through koffi whenever koffi loads, whatever dataplane runs;
 *  - `alias:<random>`, without koffi (Node cannot call getsockopt): a random
 *    token kept in the loopback interface's alias (IFLA_IFALIAS, `ip link set
 *    lo alias ul2tp-netns:<token>`), set by the first daemon of the namespace.
 *    The alias lives exactly as long as the namespace (every namespace has
 *    its own `lo`), survives daemon crashes, and a new namespace starts
 *    without one. A loopback alias the user set is never changed: the
 *    daemon then falls back to the inode and says so in its log.
 *
 * Both are prefixed with the boot id, so a reboot (cookies start again) never
 * matches either (/run is a tmpfs anyway).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';

/** SO_NETNS_COOKIE (include/uapi/asm-generic/socket.h), Linux >= 5.14. */
const SO_NETNS_COOKIE = 71;
const ALIAS_PREFIX = 'ul2tp-netns:';

export interface NetnsIdentity {
  /** The identity string recorded in the run directory ('' when none could be had). */
  id: string;
  /** How it was obtained, for the log. */
  how: string;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown-boot';
  }
}

/** The namespace cookie through koffi, or null when koffi or the option is unavailable. */
async function cookieViaKoffi(): Promise<string | null> {
  if (process.env.UL2TP_NETNS_ID === 'alias') return null; // tests: the path taken without koffi
  try {
    const m = await import('../io/koffi/libc.js');
    if (!m.koffiAvailable()) return null;
    const c = m.libc();
    const fd = c.socket(m.AF_INET, m.SOCK_DGRAM | m.SOCK_CLOEXEC, 0);
    if (fd < 0) return null;
    try {
      const val = new Uint8Array(8);
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, 8, true);
      if (c.getsockopt(fd, m.SOL_SOCKET, SO_NETNS_COOKIE, val, len) !== 0) return null;
      return new DataView(val.buffer).getBigUint64(0, true).toString();
    } finally {
      c.close(fd);
    }
  } catch {
    return null;
  }
}

function loAlias(): string {
  const out = execFileSync('ip', ['-j', '-d', 'link', 'show', 'dev', 'lo'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const rows = JSON.parse(out) as Array<{ ifalias?: string }>;
  return rows[0]?.ifalias ?? '';
}

/** The random token in lo's alias, set now if lo has none. Null when lo carries the user's own alias. */
function tokenViaAlias(): string | null {
  let alias = loAlias();
  if (alias === '') {
    const token = randomBytes(16).toString('hex');
    execFileSync('ip', ['link', 'set', 'dev', 'lo', 'alias', ALIAS_PREFIX + token], { timeout: 10_000, stdio: 'ignore' });
    alias = loAlias();
  }
  return alias.startsWith(ALIAS_PREFIX) ? alias.slice(ALIAS_PREFIX.length) : null;
}

/** This namespace's identity (see the module comment). Never throws. */
export async function netnsIdentity(): Promise<NetnsIdentity> {
  const boot = bootId();
  const cookie = await cookieViaKoffi();
  if (cookie !== null) return { id: `${boot}/cookie:${cookie}`, how: `namespace cookie ${cookie}` };
  try {
    const token = tokenViaAlias();
    if (token !== null) return { id: `${boot}/alias:${token}`, how: `loopback alias ${ALIAS_PREFIX}${token}` };
    return { id: '', how: "the loopback interface carries the user's own alias and koffi is not available: namespace identity by inode only" };
  } catch (e) {
    return { id: '', how: `no namespace identity (${(e as Error).message.split('\n')[0]}): by inode only` };
  }
}

/** Inode of the network namespace `nsLink` ("net:[4026531840]") names, or null. */
function nsInodeOf(link: string): string | null {
  const m = /^net:\[(\d+)\]$/.exec(link);
  return m ? m[1] : null;
}

/**
 * Who keeps the namespace with inode `ino` alive, apart from process `self`:
 * another process in it, an nsfs bind mount (`ip netns add`) visible in our
 * mount namespace or pid 1's, or (with `withFds`, the slower confirmation) a
 * bind mount in any process's mount namespace or an open file descriptor of
 * some process. Returns a short description, or null when nobody does.
 */
export function netnsHolder(ino: string, self: number, withFds = false): string | null {
  const want = `net:[${ino}]`;
  for (const mi of ['/proc/self/mountinfo', '/proc/1/mountinfo']) {
    try {
      for (const line of readFileSync(mi, 'utf8').split('\n')) {
        // "<id> <parent> <dev> <root> <mount point> ... - nsfs nsfs rw": root is "net:[ino]"
        const f = line.split(' ');
        if (f[3] === want) return `bind mount ${f[4]}`;
      }
    } catch {
      /* not readable: skip */
    }
  }
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return 'unknown (no /proc)';
  }
  for (const p of pids) {
    if (Number(p) === self) continue;
    try {
      if (nsInodeOf(readlinkSync(`/proc/${p}/ns/net`)) === ino) return `process ${p}`;
    } catch {
      /* gone, or not ours to read */
    }
  }
  if (!withFds) return null;
  // Bind mounts made in other mount namespaces (seen through any of their processes).
  const seenMnt = new Set<string>();
  for (const p of pids) {
    try {
      const mnt = readlinkSync(`/proc/${p}/ns/mnt`);
      if (seenMnt.has(mnt)) continue;
      seenMnt.add(mnt);
      for (const line of readFileSync(`/proc/${p}/mountinfo`, 'utf8').split('\n')) {
        const f = line.split(' ');
        if (f[3] === want) return `bind mount ${f[4]} (mount namespace of process ${p})`;
      }
    } catch {
      /* gone, or not ours to read */
    }
  }
  const holder = processWithOpen(want, self);
  return holder === null ? null : `open file of process ${holder}`;
}

/** The first process (other than `self`) with an open file whose /proc link reads `target` ("socket:[123]", "net:[456]"), or null. */
export function processWithOpen(target: string, self = -1): number | null {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return null;
  }
  for (const p of pids) {
    if (Number(p) === self) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${p}/fd/${fd}`) === target) return Number(p);
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return null;
}

/** Inode of the calling process's network namespace. */
export function ownNetnsInode(): string {
  return String(statSync('/proc/self/ns/net').ino);
}

/** PROC_PID_INIT_INO: the initial pid namespace, where /proc shows every process. */
const INIT_PID_NS = 'pid:[4026531836]';

/** True when /proc shows every process of the machine (we are in the initial pid namespace). */
export function seesAllProcesses(): boolean {
  try {
    return readlinkSync('/proc/self/ns/pid') === INIT_PID_NS;
  } catch {
    return false;
  }
}

/**
 * True when nobody can tell from here whether the namespace is still used:
 * in a container's own pid namespace, the runtime holding the namespace is
 * out of sight, so a namespace shared with pid 1 (or whose pid 1 we cannot
 * read) is never declared gone.
 */
export function cannotJudgeNetns(ino: string): boolean {
  if (seesAllProcesses()) return false;
  try {
    return nsInodeOf(readlinkSync('/proc/1/ns/net')) === ino;
  } catch {
    return true;
  }
}

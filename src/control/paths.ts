/**
 * Where a network namespace's daemon listens. Everything about ul2tp is per
 * network namespace (like the kernel's l2tp objects), so the run directory is
 * keyed by the inode of /proc/self/ns/net, which identifies the namespace the
 * calling process lives in. The kernel reuses the inode numbers of deleted
 * namespaces: the daemon checks a never-reused identity recorded in the
 * directory before it restores anything (netns-id.ts, lifecycle.ts).
 *
 * `UL2TP_RUNDIR` replaces `/run/ul2tp` (tests point it at a temporary directory).
 */
import { statSync } from 'node:fs';
import { L2tpError } from '../errors.js';

export const DEFAULT_RUNDIR = '/run/ul2tp';

/**
 * Abstract unix socket name the daemon of run directory `dir` binds as its
 * single-instance lock. Abstract sockets belong to a network namespace and
 * vanish when their owner dies, so a crashed daemon never leaves a stale lock
 * behind. The daemon closes every connection to it at once, which the CLI
 * uses to tell a busy daemon from a stopped or hung one (client.ts).
 */
export function lockName(dir: string): string {
  return `\0ul2tp-daemon:${dir}`;
}

/** Inode number of the caller's network namespace (as a decimal string). */
export function netnsInode(): string {
  try {
    return String(statSync('/proc/self/ns/net').ino);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new L2tpError('DAEMON', `cannot identify the network namespace: ${why}`);
  }
}

/** Inode number of the named network namespace `/run/netns/NAME` (`ip netns add NAME`). */
export function namedNetnsInode(name: string): string {
  if (name === '' || name.includes('/') || name === '.' || name === '..') throw new L2tpError('BAD_ARG', `Error: "${name}" is not a network namespace name`);
  try {
    return String(statSync(`/run/netns/${name}`).ino);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new L2tpError('DAEMON', `cannot find network namespace "${name}": ${why}`);
  }
}

/** `<UL2TP_RUNDIR or /run/ul2tp>/<netns inode>`: the daemon's directory (mode 0700). */
export function runDir(nsInode: string = netnsInode()): string {
  const base = process.env.UL2TP_RUNDIR || DEFAULT_RUNDIR;
  return `${base.replace(/\/+$/, '')}/${nsInode}`;
}

/** The control socket of this namespace's daemon, or of the one whose inode is given (mode 0600). */
export function socketPath(nsInode?: string): string {
  return `${runDir(nsInode)}/ctl.sock`;
}

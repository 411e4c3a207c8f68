/**
 * Crash-consistent session interfaces (cold path, daemon start).
 *
 * A daemon killed between creating a session's interface and writing the
 * configuration that names it leaves a persistent interface nobody knows
 * about (and whose name is never reused). Before restoring, the daemon lists
 * the namespace's interfaces and deletes ul2tp's own that the configuration
 * does not name; the restore then adopts the named ones and recreates missing
 * ones, so a start always ends with exactly the configured interfaces.
 *
 * "Our own" is decided by a mark set atomically with the interface's
 * persistence, never by name alone, so a user's TAP is never touched:
 *  - koffi backend: a TAP with the alias `ul2tp-session` (set before
 *    TUNSETPERSIST: a crash before that leaves no device at all);
 *  - native-free backend: the hidden veth peer `ul2tp<8 hex digits>` of the
 *    session's veth pair, with the alias `ul2tp-peer:NAME` (or none yet, when
 *    the crash came between creating the pair and naming it); deleting that
 *    peer deletes the pair and its macvtap.
 */
import { execFile } from 'node:child_process';

export const SESSION_TAP_ALIAS = 'ul2tp-session';
const PEER_ALIAS_PREFIX = 'ul2tp-peer:';
const HIDDEN_PEER = /^ul2tp[0-9a-f]{8}$/;

interface LinkRow {
  ifname: string;
  ifalias?: string;
  link?: string;
  linkinfo?: { info_kind?: string };
}

function ip(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip ${args.join(' ')}: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
  });
}

/** Interfaces to delete: ul2tp's own (by mark) that `keep` (the configured names) does not name. */
export function orphansOf(links: readonly LinkRow[], keep: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const l of links) {
    const kind = l.linkinfo?.info_kind;
    if (kind === 'tun' && l.ifalias === SESSION_TAP_ALIAS && !keep.has(l.ifname)) out.push(l.ifname);
    if (kind === 'veth' && HIDDEN_PEER.test(l.ifname)) {
      const alias = l.ifalias ?? '';
      if (alias !== '' && !alias.startsWith(PEER_ALIAS_PREFIX)) continue; // not ours after all
      const user = alias !== '' ? alias.slice(PEER_ALIAS_PREFIX.length) : (l.link ?? '');
      if (user === '' || !keep.has(user)) out.push(l.ifname);
    }
  }
  return out;
}

/**
 * Delete ul2tp's orphaned session interfaces in this namespace. Returns the
 * names deleted; failures are logged, never fatal (the restore still runs).
 */
export async function removeOrphans(keep: ReadonlySet<string>, log: (msg: string) => void): Promise<string[]> {
  let links: LinkRow[];
  try {
    links = JSON.parse(await ip(['-j', '-d', 'link', 'show'])) as LinkRow[];
  } catch (e) {
    log(`cannot list interfaces to find orphaned session interfaces: ${(e as Error).message}`);
    return [];
  }
  const gone: string[] = [];
  for (const name of orphansOf(links, keep)) {
    try {
      await ip(['link', 'del', 'dev', name]);
      gone.push(name);
    } catch (e) {
      log(`cannot remove the orphaned session interface ${name}: ${(e as Error).message}`);
    }
  }
  if (gone.length > 0) log(`removed ${gone.length} orphaned session interface(s) no configuration names (left by a crash): ${gone.join(' ')}`);
  return gone;
}

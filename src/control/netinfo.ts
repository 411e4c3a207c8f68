/**
 * Facts about the host network the control plane needs: the real iproute2 `ip`
 * (the one lookup the daemon, the CLI and the shim share), the path MTU towards
 * a tunnel's peer (docs/protocol.md §3.4), free interface names (l2tpeth%d), and the
 * default MTU of a session interface. Control path only; never per packet.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync, realpathSync } from 'node:fs';
import type { Encap, L2specType } from '../engine/config.js';
import { interfaceExists } from '../io/ifexists.js';
import { tunnelOverhead } from '../wire/l2tpv3.js';

export { interfaceExists };

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** The real iproute2 `ip`, never this shim (which may be installed as `ip` in PATH). */
export function findRealIp(selfPath: string = process.argv[1] ?? ''): string | null {
  const forced = process.env.UL2TP_REAL_IP;
  if (forced) return forced;
  const self = realpathOr(selfPath);
  const dirs = ['/usr/sbin', '/sbin', ...(process.env.PATH ?? '').split(':').filter((d) => d !== '')];
  for (const d of dirs) {
    const cand = `${d}/ip`;
    if (!isExecutable(cand)) continue;
    const real = realpathOr(cand);
    if (real === self || real.endsWith('/ul2tp-ip.js') || real.endsWith('/ip-shim.js')) continue;
    return cand;
  }
  return null;
}

/** `ip` for the daemon's own queries (path MTU): the real one, as for the CLI. */
export function ipBinary(): string {
  return findRealIp() ?? 'ip';
}

interface RouteEntry {
  dev?: string;
  metrics?: Array<Record<string, number>>;
  mtu?: number;
}

/**
 * MTU of the route the kernel would use towards `remote` (from `local`), as the
 * kernel caches it when the tunnel socket connects: the route's mtu metric if
 * set, else the output device's MTU. 0 when there is no route.
 */
export function pathMtu(remote: string, local?: string): number {
  // Tunnels to one peer share the route: ask `ip` once per peer every few seconds.
  const key = `${local ?? ''}>${remote}`;
  const now = Date.now();
  const hit = mtuCache.get(key);
  if (hit && now - hit.at < MTU_CACHE_MS) return hit.mtu;
  const mtu = lookupPathMtu(remote, local);
  mtuCache.set(key, { mtu, at: now });
  return mtu;
}

const MTU_CACHE_MS = 5000;
const mtuCache = new Map<string, { mtu: number; at: number }>();

function lookupPathMtu(remote: string, local?: string): number {
  let out: string;
  try {
    const args = ['-j', 'route', 'get', remote];
    if (local) args.push('from', local);
    out = execFileSync(ipBinary(), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    if (local) return lookupPathMtu(remote); // "from" may be refused for odd sources; retry plain
    return 0;
  }
  let routes: RouteEntry[];
  try {
    routes = JSON.parse(out) as RouteEntry[];
  } catch {
    return 0;
  }
  const r = routes[0];
  if (!r) return 0;
  for (const m of r.metrics ?? []) if (typeof m.mtu === 'number') return m.mtu;
  if (typeof r.mtu === 'number') return r.mtu;
  if (!r.dev) return 0;
  return deviceMtu(r.dev);
}

export function deviceMtu(dev: string): number {
  try {
    return Number.parseInt(readFileSync(`/sys/class/net/${dev}/mtu`, 'utf8'), 10) || 0;
  } catch {
    return 0;
  }
}

/**
 * Default MTU of a session interface (docs/protocol.md §3.4, l2tp_eth):
 * overhead = (UDP ? 8 : 0) + hdr_len + 14 + l3; mtu = path_mtu - overhead,
 * or 1500 - overhead when that is out of range or no route was cached.
 */
export function defaultSessionMtu(
  encap: Encap,
  family: 4 | 6,
  cookieLen: number,
  l2spec: L2specType,
  pathMtuBytes: number,
): number {
  const overhead = tunnelOverhead(encap, family, cookieLen, l2spec === 'default');
  const mtu = pathMtuBytes - overhead;
  if (pathMtuBytes <= 0 || mtu < 0 || mtu > 65535) return 1500 - overhead;
  return mtu;
}

/**
 * Lowest N tried first per template: every name below it was taken the last
 * time we looked. Lowered when the daemon frees a name (releaseIfname), so
 * that allocation stays the kernel's "lowest free N" without listing
 * /sys/class/net for every session (which made 10,000 creations quadratic).
 */
const nextFree = new Map<string, number>();

/**
 * Expand a name template the way the kernel's dev_alloc_name does: the first
 * `%d` becomes the lowest N such that the name is free (neither an existing
 * interface nor in `reserved`). Names without `%d` are returned unchanged.
 */
export function allocIfname(template: string, reserved: ReadonlySet<string> = new Set()): string {
  const i = template.indexOf('%d');
  if (i < 0) return template;
  const pre = template.slice(0, i);
  const post = template.slice(i + 2);
  for (let n = nextFree.get(template) ?? 0; n < 1 << 20; n++) {
    const name = `${pre}${n}${post}`;
    if (reserved.has(name) || interfaceExists(name)) continue;
    nextFree.set(template, n);
    return name;
  }
  return `${pre}${post}`;
}

/** An interface name was freed: allocations from a template it fits look from there again. */
export function releaseIfname(name: string): void {
  for (const [template, next] of nextFree) {
    const i = template.indexOf('%d');
    const pre = template.slice(0, i);
    const post = template.slice(i + 2);
    if (!name.startsWith(pre) || !name.endsWith(post)) continue;
    const digits = name.slice(pre.length, name.length - post.length);
    if (!/^(0|[1-9]\d*)$/.test(digits)) continue;
    const n = Number(digits);
    if (n < next) nextFree.set(template, n);
  }
}

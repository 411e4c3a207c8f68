/**
 * Session interfaces without TUNSETIFF (docs/protocol.md §6.4, "Frames without native
 * code"): the user-visible interface NAME is one end of a veth pair; the
 * hidden other end carries a passthru macvtap whose character device
 * /dev/tapN we read and write with plain `fs`.
 *
 *   NAME (veth, user's side, DOWN at creation) <──> ul2tpXXXXXXXX (veth, up, alias "ul2tp-peer:NAME")
 *                                                      └─ ul2tvXXXXXXXX (macvtap passthru, up, allmulticast) ── /dev/tapN
 *
 * Every read from the device yields a 10-byte virtio_net_hdr then the frame;
 * every write must start with one (zeros = no offload).
 *
 * NAME gets gso_max_segs 1 so the stack segments before the veth (the kernel's
 * l2tpeth has no offloads either) and no GSO super-frames reach the reader;
 * checksum offload cannot be turned off without ethtool, so the reader
 * completes VIRTIO_NET_HDR_F_NEEDS_CSUM frames itself (vnet.ts). The macvtap
 * gets allmulticast, or macvlan's multicast filter would drop IPv6 ND.
 */
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { kernelError, L2tpError } from '../src/errors.js';
import { ip, showLinks, type IpLink } from './ip.js';

/** Largest MTU of a veth (and of l2tpeth: max_mtu 65535). */
export const MAX_MTU = 65535;
/** The peer's alias marks interfaces created by this backend (adoption after a restart). */
export const PEER_ALIAS_PREFIX = 'ul2tp-peer:';

export interface MacvtapInterface {
  /** The user's interface (e.g. l2tpeth0). */
  readonly name: string;
  /** Hidden veth end. */
  readonly peer: string;
  /** The macvtap on the peer. */
  readonly tap: string;
  /** Open character device (O_RDWR | O_NONBLOCK). */
  readonly fd: number;
  /** True when the interface existed before (adopted, not created). */
  readonly adopted: boolean;
}

const IFNAMSIZ = 16;

function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0] & 0xfe) | 0x02; // unicast, locally administered
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push(b[i].toString(16).padStart(2, '0'));
  return parts.join(':');
}

function checkName(name: string): void {
  if (name.length === 0 || name.length >= IFNAMSIZ || /[\s/:]/.test(name) || name === '.' || name === '..') {
    throw kernelError('EINVAL', `bad interface name "${name}"`);
  }
}

/** Expand a `%d` template (the kernel's dev_alloc_name): lowest free N. */
export async function resolveName(template: string): Promise<string> {
  const t = template === '' ? 'l2tpeth%d' : template;
  if (!t.includes('%d')) return t;
  const links = (await showLinks()) ?? [];
  const used = new Set(links.map((l) => l.ifname));
  for (let n = 0; n < 32768; n++) {
    const name = t.replace('%d', String(n));
    if (!used.has(name)) return name;
  }
  throw kernelError('ENFILE', 'no free interface name');
}

/** Is `link` (NAME) a veth whose peer carries our alias? Returns the peer's record. */
async function ourPeer(link: IpLink): Promise<IpLink | undefined> {
  if (link.linkinfo?.info_kind !== 'veth' || !link.link) return undefined;
  const peer = (await showLinks(link.link))?.[0];
  if (!peer || peer.ifalias !== PEER_ALIAS_PREFIX + link.ifname) return undefined;
  return peer;
}

/** major:minor of a macvtap's character device, from sysfs. */
function tapDevNumbers(tap: string): { ifindex: number; major: number; minor: number } {
  const ifindex = Number(fs.readFileSync(`/sys/class/net/${tap}/ifindex`, 'utf8').trim());
  const dev = fs.readFileSync(`/sys/class/net/${tap}/macvtap/tap${ifindex}/dev`, 'utf8').trim();
  const m = /^(\d+):(\d+)$/.exec(dev);
  if (!m) throw kernelError('ENODEV', `unexpected ${dev} in sysfs for ${tap}`);
  return { ifindex, major: Number(m[1]), minor: Number(m[2]) };
}

const rdevMajor = (rdev: number): number => Math.floor(rdev / 256) & 0xfff;
const rdevMinor = (rdev: number): number => (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00);

function mknod(path: string, major: number, minor: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('mknod', ['-m', '600', path, 'c', String(major), String(minor)], (err, _o, stderr) => {
      if (err) reject(kernelError('EPERM', `mknod ${path}: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}

/**
 * Open /dev/tap<ifindex> of `tap`. /dev is shared by all network namespaces
 * while ifindexes are per namespace, so an existing node is used only when
 * its major:minor matches; otherwise (absent: no udev, or taken by another
 * namespace's device) we mknod a private node, open it and unlink it.
 */
export async function openTapDevice(tap: string): Promise<number> {
  const { ifindex, major, minor } = tapDevNumbers(tap);
  const flags = fs.constants.O_RDWR | fs.constants.O_NONBLOCK;
  const std = `/dev/tap${ifindex}`;
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(std);
  } catch {
    st = undefined;
  }
  if (st && st.isCharacterDevice() && rdevMajor(st.rdev) === major && rdevMinor(st.rdev) === minor) {
    return fs.openSync(std, flags);
  }
  // Absent: create the standard node (no udev here). Someone else's: a private
  // node, opened then unlinked; /dev (devtmpfs) allows device nodes, a tmpfs
  // may be mounted nodev, so it is the last resort.
  const priv = path.join(os.tmpdir(), `.${tap}-${process.pid}`);
  const candidates = st ? [`/dev/.${tap}-${process.pid}`, priv] : [std, priv];
  let lastError: unknown = null;
  for (const node of candidates) {
    try {
      fs.rmSync(node, { force: true });
      await mknod(node, major, minor);
      try {
        return fs.openSync(node, flags);
      } finally {
        if (node !== std) fs.rmSync(node, { force: true });
      }
    } catch (e) {
      lastError = e;
    }
  }
  if (lastError instanceof L2tpError) throw lastError;
  throw kernelError('EACCES', `cannot open the device of ${tap}: ${(lastError as Error).message}`);
}

/**
 * Keep a hidden interface silent: no IPv6 on it (no link-local address, so no
 * DAD, router or MLD traffic that would come out of NAME, e.g. into a bridge).
 */
async function quiet(dev: string): Promise<void> {
  try {
    fs.writeFileSync(`/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`, '1');
  } catch {
    /* IPv6 disabled or absent: nothing to silence */
  }
  await ip(['link', 'set', 'dev', dev, 'addrgenmode', 'none']).catch(() => undefined);
}

async function ensureTap(peer: string, suffix: string, existing: IpLink[] | undefined): Promise<string> {
  const found = existing?.find((l) => l.linkinfo?.info_kind === 'macvtap' && l.link === peer);
  if (found) {
    await quiet(found.ifname);
    await ip(['link', 'set', 'dev', found.ifname, 'mtu', String(MAX_MTU), 'allmulticast', 'on', 'up']);
    return found.ifname;
  }
  const tap = `ul2tv${suffix}`;
  await ip(['link', 'add', 'link', peer, 'name', tap, 'mtu', String(MAX_MTU), 'type', 'macvtap', 'mode', 'passthru']);
  await quiet(tap);
  // allmulticast: macvlan filters multicast by its own lists otherwise (IPv6 ND would not pass)
  await ip(['link', 'set', 'dev', tap, 'allmulticast', 'on', 'up']);
  return tap;
}

/**
 * Create the interface `name` (DOWN, MTU `mtu`, random locally administered
 * MAC) or adopt it when it exists and was created by this backend. Throws
 * EEXIST when `name` exists and is not ours. Nothing is left behind on a throw
 * (except an adopted interface, which is left as found).
 */
export async function openSessionInterface(name: string, mtu: number): Promise<MacvtapInterface> {
  checkName(name);
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > MAX_MTU) throw kernelError('EINVAL', `MTU ${mtu} out of range 68..${MAX_MTU}`);
  const existing = (await showLinks(name))?.[0];
  if (existing) {
    const peer = await ourPeer(existing);
    if (!peer) throw kernelError('EEXIST');
    await quiet(peer.ifname);
    await ip(['link', 'set', 'dev', peer.ifname, 'mtu', String(MAX_MTU), 'up']);
    const suffix = peer.ifname.slice(5);
    const tap = await ensureTap(peer.ifname, suffix, await showLinks());
    const fd = await openTapDevice(tap);
    return { name, peer: peer.ifname, tap, fd, adopted: true };
  }
  // 8 hex digits: ul2tp + 8 = 13 characters, below IFNAMSIZ.
  let suffix = '';
  let created = false;
  for (let attempt = 0; attempt < 8 && !created; attempt++) {
    suffix = randomBytes(4).toString('hex');
    try {
      await ip([
        'link', 'add', name, 'mtu', String(mtu), 'address', randomMac(), 'gso_max_segs', '1',
        'type', 'veth', 'peer', 'name', `ul2tp${suffix}`, 'mtu', String(MAX_MTU),
      ]);
      created = true;
    } catch (e) {
      // EEXIST is either NAME (someone raced us) or our random peer name.
      if ((e as L2tpError).errno !== 'EEXIST' || (await showLinks(name)) !== undefined) throw e;
    }
  }
  if (!created) throw kernelError('EEXIST', 'could not pick a free hidden peer name');
  const peer = `ul2tp${suffix}`;
  try {
    await quiet(peer);
    await ip(['link', 'set', 'dev', peer, 'alias', PEER_ALIAS_PREFIX + name, 'up']);
    const tap = await ensureTap(peer, suffix, undefined);
    const fd = await openTapDevice(tap);
    return { name, peer, tap, fd, adopted: false };
  } catch (e) {
    await ip(['link', 'del', 'dev', name]).catch(() => undefined);
    throw e instanceof L2tpError ? e : kernelError('EIO', (e as Error).message);
  }
}

/** Delete the veth pair (which deletes the macvtap). The caller closes the device fd first. */
export async function removeSessionInterface(iface: MacvtapInterface): Promise<void> {
  await ip(['link', 'del', 'dev', iface.name]).catch(async (e: L2tpError) => {
    // the user may have deleted NAME; then the peer went with it. Try the peer by its name.
    if (e.errno !== 'ENODEV') throw e;
    await ip(['link', 'del', 'dev', iface.peer]).catch(() => undefined);
  });
}

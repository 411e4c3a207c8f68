/**
 * Runs the system's `ip` command (iproute2) for the native-free backend and
 * maps its failures to L2tpError. Control plane only.
 */
import { execFile } from 'node:child_process';
import { kernelError, type L2tpError } from '../src/errors.js';

/** strerror texts iproute2 prints, mapped back to errno names. */
const TEXT_ERRNO: ReadonlyArray<readonly [string, string]> = [
  ['File exists', 'EEXIST'],
  ['No such device', 'ENODEV'],
  ['Cannot find device', 'ENODEV'],
  ['does not exist', 'ENODEV'],
  ['Unknown device type', 'EOPNOTSUPP'],
  ['Operation not permitted', 'EPERM'],
  ['Permission denied', 'EACCES'],
  ['Invalid argument', 'EINVAL'],
  ['Numerical result out of range', 'EINVAL'],
  ['Operation not supported', 'EOPNOTSUPP'],
  ['Cannot allocate memory', 'ENOMEM'],
  ['Device or resource busy', 'EBUSY'],
  ['No space left on device', 'ENOSPC'],
];

/** Turn `ip`'s stderr into a KERNEL error with the matching errno (EINVAL when unknown). */
export function ipFailure(stderr: string, args: readonly string[]): L2tpError {
  const text = stderr.trim().split('\n').pop() ?? '';
  for (let i = 0; i < TEXT_ERRNO.length; i++) {
    if (text.includes(TEXT_ERRNO[i][0])) return kernelError(TEXT_ERRNO[i][1], `ip ${args.join(' ')}: ${text}`);
  }
  return kernelError('EINVAL', `ip ${args.join(' ')}: ${text || 'failed'}`);
}

/** Run `ip ARGS`; resolves with stdout, rejects with an L2tpError. */
export function ip(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args as string[], { encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'ENOENT') reject(kernelError('ENOENT', 'the `ip` command (iproute2) is not installed'));
        else reject(ipFailure(stderr || e.message, args));
      } else {
        resolve(stdout);
      }
    });
  });
}

/** Subset of `ip -j -d link show` output we read. */
export interface IpLink {
  ifindex: number;
  ifname: string;
  link?: string;
  mtu?: number;
  ifalias?: string;
  operstate?: string;
  flags?: string[];
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}

/** `ip -j -d link show [dev NAME]`; undefined when the named device does not exist. */
export async function showLinks(name?: string): Promise<IpLink[] | undefined> {
  const args = name ? ['-j', '-d', 'link', 'show', 'dev', name] : ['-j', '-d', 'link', 'show'];
  try {
    const out = await ip(args);
    return JSON.parse(out) as IpLink[];
  } catch (e) {
    if (name && (e as L2tpError).errno === 'ENODEV') return undefined;
    throw e;
  }
}

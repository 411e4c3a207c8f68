/**
 * Linux errno numbers ↔ names (asm-generic values, shared by x86_64 and aarch64), and
 * helpers turning a failed syscall into the project's typed error. Pure data: no koffi
 * import, usable anywhere. Hot-path code returns `-errno` numbers and compares against
 * the constants below; only cold paths (setup) throw.
 */
import { kernelError, type L2tpError } from '../../errors.js';

export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOSPC = 28;
export const EPIPE = 32;
export const ENAMETOOLONG = 36;
export const EBADFD = 77;
export const EMSGSIZE = 90;
export const EPROTONOSUPPORT = 93;
export const EOPNOTSUPP = 95;
export const EAFNOSUPPORT = 97;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENETDOWN = 100;
export const ENETUNREACH = 101;
export const ENOBUFS = 105;
export const ENOTCONN = 107;
export const ECONNREFUSED = 111;
export const EHOSTUNREACH = 113;

const NAMES: Readonly<Record<number, string>> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  3: 'ESRCH',
  [EINTR]: 'EINTR',
  [EIO]: 'EIO',
  6: 'ENXIO',
  7: 'E2BIG',
  [EBADF]: 'EBADF',
  [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM',
  [EACCES]: 'EACCES',
  [EFAULT]: 'EFAULT',
  [EBUSY]: 'EBUSY',
  [EEXIST]: 'EEXIST',
  [ENODEV]: 'ENODEV',
  20: 'ENOTDIR',
  [EINVAL]: 'EINVAL',
  [ENFILE]: 'ENFILE',
  [EMFILE]: 'EMFILE',
  25: 'ENOTTY',
  [ENOSPC]: 'ENOSPC',
  [EPIPE]: 'EPIPE',
  [ENAMETOOLONG]: 'ENAMETOOLONG',
  38: 'ENOSYS',
  [EBADFD]: 'EBADFD',
  88: 'ENOTSOCK',
  89: 'EDESTADDRREQ',
  [EMSGSIZE]: 'EMSGSIZE',
  92: 'ENOPROTOOPT',
  [EPROTONOSUPPORT]: 'EPROTONOSUPPORT',
  [EOPNOTSUPP]: 'EOPNOTSUPP',
  [EAFNOSUPPORT]: 'EAFNOSUPPORT',
  [EADDRINUSE]: 'EADDRINUSE',
  [EADDRNOTAVAIL]: 'EADDRNOTAVAIL',
  [ENETDOWN]: 'ENETDOWN',
  [ENETUNREACH]: 'ENETUNREACH',
  104: 'ECONNRESET',
  [ENOBUFS]: 'ENOBUFS',
  106: 'EISCONN',
  [ENOTCONN]: 'ENOTCONN',
  110: 'ETIMEDOUT',
  [ECONNREFUSED]: 'ECONNREFUSED',
  112: 'EHOSTDOWN',
  [EHOSTUNREACH]: 'EHOSTUNREACH',
};

/** 'EAGAIN' for 11; `E<n>` for numbers not in the table. Accepts negative (-errno) values. */
export function errnoName(n: number): string {
  const v = n < 0 ? -n : n;
  return NAMES[v] ?? `E${v}`;
}

/** Number for a name ('EEXIST' → 17), or -1 when unknown. */
export function errnoNumber(name: string): number {
  for (const k in NAMES) if (NAMES[k as unknown as number] === name) return Number(k);
  return -1;
}

/** Backpressure conditions on the hot path (QEMU / wireguard-go treat them alike). */
export function isBackpressure(negErrno: number): boolean {
  return negErrno === -EAGAIN || negErrno === -ENOBUFS;
}

/** The typed error for an errno (number, positive or negative), e.g. kernelError('EEXIST'). */
export function errnoError(n: number, detail?: string): L2tpError {
  return kernelError(errnoName(n), detail);
}

/** Throws `kernelError(name)` for errno `n` (positive or negative). Cold paths only. */
export function throwErrno(n: number, detail?: string): never {
  throw errnoError(n, detail);
}

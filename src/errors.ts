/**
 * Typed errors with a stable `code` (docs/ARCHITECTURE.md, Errors). Tests assert on `code`;
 * the CLI maps `code` (and `errno` for daemon errors) to iproute2's wording.
 */
export type L2tpErrorCode =
  | 'MISSING_ARG' // Error: argument "<arg>" is required
  | 'BAD_ARG' // Error: argument "<arg>" is wrong: <reason>
  | 'BAD_ADDR' // Error: any valid address is expected rather than "<arg>".
  | 'INCOMPLETE' // Command line is not complete. Try option "help"
  | 'UNKNOWN_KEYWORD' // Unknown command: <word> + usage
  | 'UNKNOWN_VERB' // Command "<word>" is unknown, try "ip l2tp help".
  | 'UNKNOWN_VALUE' // Unknown seq value "<v>" and friends (message is the full text)
  | 'USAGE' // usage text requested or implied
  | 'KERNEL' // a daemon-side error carrying an errno: RTNETLINK answers: <strerror>
  | 'DAEMON' // the daemon could not be reached or started
  | 'PROTOCOL'; // malformed control request/response

/** errno names we raise, with the strerror text iproute2 prints after "RTNETLINK answers: ". */
export const ERRNO_TEXT: Readonly<Record<string, string>> = {
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  ENOENT: 'No such file or directory',
  EINVAL: 'Invalid argument',
  EADDRINUSE: 'Address already in use',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EPERM: 'Operation not permitted',
  EACCES: 'Permission denied',
  ENOMEM: 'Cannot allocate memory',
  ENOSPC: 'No space left on device',
  EBUSY: 'Device or resource busy',
  EPROTONOSUPPORT: 'Protocol not supported',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EOPNOTSUPP: 'Operation not supported',
  ENETUNREACH: 'Network is unreachable',
  EIO: 'Input/output error',
};

export class L2tpError extends Error {
  constructor(
    readonly code: L2tpErrorCode,
    message: string,
    /** errno name ('EEXIST', 'ENODEV', ...) for KERNEL errors. */
    readonly errno?: string,
  ) {
    super(message);
    this.name = 'L2tpError';
  }
}

/** A daemon-side failure with an errno, printed as `RTNETLINK answers: <text>`. */
export function kernelError(errno: string, detail?: string): L2tpError {
  const text = ERRNO_TEXT[errno] ?? errno;
  return new L2tpError('KERNEL', detail ? `${text} (${detail})` : text, errno);
}

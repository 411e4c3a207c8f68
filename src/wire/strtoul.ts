/**
 * glibc's `strtoul(s, &end, 0)` (64-bit `unsigned long`), the number reader
 * behind iproute2's `get_u32`/`get_u16` (src/cli/grammar.ts) and the IPv4
 * parts of `get_addr` (src/control/address.ts).
 */

const ULONG_MAX = (1n << 64n) - 1n;

function isCSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function digitValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x5a) return c - 0x41 + 10;
  return 99;
}

export interface StrtoulResult {
  /** What strtoul returns: ULONG_MAX on overflow, negated modulo 2^64 after '-'. */
  value: bigint;
  /** Index of the first unconsumed character (`start` when nothing was converted). */
  end: number;
  /** errno == ERANGE. */
  overflow: boolean;
}

/**
 * glibc `strtoul(s + start, &end, 0)` on a 64-bit machine: leading C
 * whitespace, an optional sign, then `0x`/`0X` hex (only if a hex digit
 * follows), a leading `0` octal, or decimal.
 */
export function strtoul(s: string, start = 0): StrtoulResult {
  let i = start;
  while (i < s.length && isCSpace(s.charCodeAt(i))) i++;
  let negative = false;
  if (s[i] === '+' || s[i] === '-') {
    negative = s[i] === '-';
    i++;
  }
  let base = 10;
  if (s[i] === '0') {
    if ((s[i + 1] === 'x' || s[i + 1] === 'X') && digitValue(s.charCodeAt(i + 2)) < 16) {
      base = 16;
      i += 2;
    } else {
      base = 8;
    }
  }
  const first = i;
  let acc = 0n;
  let overflow = false;
  for (; i < s.length; i++) {
    const d = digitValue(s.charCodeAt(i));
    if (d >= base) break;
    if (!overflow) {
      acc = acc * BigInt(base) + BigInt(d);
      if (acc > ULONG_MAX) overflow = true;
    }
  }
  if (i === first) return { value: 0n, end: start, overflow: false };
  if (overflow) return { value: ULONG_MAX, end: i, overflow: true };
  const value = negative && acc !== 0n ? (1n << 64n) - acc : acc;
  return { value, end: i, overflow: false };
}


/**
 * IP addresses as text and bytes: the one address module of ul2tp.
 *
 * Two grammars, both from the C library, because that is what the tools we
 * mirror use:
 *
 * - `ptonIPv4`/`ptonIPv6`/`ntopIPv4`/`ntopIPv6`: glibc's `inet_pton` and
 *   `inet_ntop`. inet_pton is the wire format of the control protocol
 *   (strict dotted quad, no zone ids) and inet_ntop is how iproute2 prints
 *   addresses, so the daemon stores and shows addresses in that form.
 * - `getAddr`: iproute2's `get_addr(&a, arg, AF_UNSPEC)` for what a user
 *   types after `local`/`remote` (`10.1` = 10.1.0.0, hex and octal parts,
 *   `any`). Only the CLI grammar calls it; it hands inet_ntop text on.
 *
 * ipaddr.js was used here before and is no longer a dependency: its IPv4
 * grammar is inet_aton's (`10.1` = 10.0.0.1, `010.1.2.3` = 8.1.2.3), which
 * is neither of the above; it accepts zone ids (`fe80::1%eth0`) that neither
 * the kernel's L2TP attributes nor iproute2 take; and its text output is not
 * inet_ntop's (`::1.2.3.4` printed as `::ffff:102:304`). Both grammars are
 * small, fully specified and tested against glibc's answers
 * (test/unit/cli/protocol.test.ts, grammar.test.ts), so they live here.
 */
import { strtoul } from './strtoul.js';

/**
 * glibc `inet_pton(AF_INET, ...)`: exactly four dotted decimal parts 0..255,
 * no leading zeros, nothing else. Returns the 4 bytes or null.
 */
export function ptonIPv4(s: string, start = 0, end = s.length): number[] | null {
  const out = [0];
  let sawDigit = false;
  let octets = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      const cur = out[out.length - 1];
      if (sawDigit && cur === 0) return null; // leading zero
      const next = cur * 10 + (c - 0x30);
      if (next > 255) return null;
      out[out.length - 1] = next;
      if (!sawDigit) {
        if (++octets > 4) return null;
        sawDigit = true;
      }
    } else if (c === 0x2e && sawDigit) {
      if (octets === 4) return null;
      out.push(0);
      sawDigit = false;
    } else {
      return null;
    }
  }
  return octets < 4 ? null : out;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * glibc `inet_pton(AF_INET6, ...)`: up to eight groups of 1-4 hex digits, one
 * `::`, an optional dotted IPv4 tail. No zone ids, no brackets. Returns the 16
 * bytes or null.
 */
export function ptonIPv6(s: string): Uint8Array | null {
  const out = new Uint8Array(16);
  let tp = 0;
  let colonp = -1;
  let i = 0;
  const n = s.length;
  if (n === 0) return null;
  if (s.charCodeAt(0) === 0x3a) {
    if (n < 2 || s.charCodeAt(1) !== 0x3a) return null;
    i = 1;
  }
  let curtok = i;
  let digits = 0;
  let val = 0;
  let sawV4 = false;
  while (i < n) {
    const c = s.charCodeAt(i++);
    const d = hexValue(c);
    if (d >= 0) {
      if (digits === 4) return null;
      val = (val << 4) | d;
      digits++;
      continue;
    }
    if (c === 0x3a) {
      curtok = i;
      if (digits === 0) {
        if (colonp >= 0) return null;
        colonp = tp;
        continue;
      }
      if (i === n) return null; // trailing single ':'
      if (tp + 2 > 16) return null;
      out[tp++] = val >> 8;
      out[tp++] = val & 0xff;
      digits = 0;
      val = 0;
      continue;
    }
    if (c === 0x2e && tp + 4 <= 16) {
      const v4 = ptonIPv4(s, curtok, n);
      if (v4 === null) return null;
      for (const b of v4) out[tp++] = b;
      digits = 0;
      sawV4 = true;
      break;
    }
    return null;
  }
  if (!sawV4 && digits > 0) {
    if (tp + 2 > 16) return null;
    out[tp++] = val >> 8;
    out[tp++] = val & 0xff;
  }
  if (colonp >= 0) {
    if (tp === 16) return null; // '::' would stand for nothing
    const moved = tp - colonp;
    out.copyWithin(16 - moved, colonp, tp);
    out.fill(0, colonp, 16 - moved);
    tp = 16;
  }
  return tp === 16 ? out : null;
}

/** glibc `inet_ntop(AF_INET, ...)`. */
export function ntopIPv4(b: ArrayLike<number>, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/**
 * glibc `inet_ntop(AF_INET6, ...)`: lowercase, no leading zeros, the first
 * longest run of two or more zero groups as `::`, and `::a.b.c.d` /
 * `::ffff:a.b.c.d` for IPv4-compatible and IPv4-mapped addresses.
 */
export function ntopIPv6(b: ArrayLike<number>): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[2 * i] << 8) | b[2 * i + 1]);
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let i = 0; i <= 8; i++) {
    if (i < 8 && w[i] === 0) {
      if (curBase < 0) {
        curBase = i;
        curLen = 1;
      } else curLen++;
    } else if (curBase >= 0) {
      if (bestBase < 0 || curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (bestBase >= 0 && bestLen < 2) bestBase = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
      out += ntopIPv4(b, 12);
      break;
    }
    out += w[i].toString(16);
  }
  if (bestBase >= 0 && bestBase + bestLen === 8) out += ':';
  return out;
}

/** A parsed address: family 0 is `any`/`all`/`default` (iproute2 leaves the family unset). */
export interface Addr {
  family: 0 | 4 | 6;
  text: string; // inet_ntop form, '' for family 0
}

/**
 * iproute2's `get_addr(&a, arg, AF_UNSPEC)`: `default`, `any` and `all` parse
 * with no family; anything with ':' goes to inet_pton(AF_INET6); the rest is
 * IPv4 with up to four '.'-separated parts, each read by strtoul base 0 and at
 * most 255, missing parts zero (`10.1` = 10.1.0.0, `0x0a.1.2.3` = 10.1.2.3).
 * Returns null when iproute2 would print "any valid address is expected".
 */
export function getAddr(arg: string): Addr | null {
  if (arg === 'default' || arg === 'any' || arg === 'all') return { family: 0, text: '' };
  if (arg.includes(':')) {
    const b = ptonIPv6(arg);
    return b === null ? null : { family: 6, text: ntopIPv6(b) };
  }
  const bytes = [0, 0, 0, 0];
  let cp = 0;
  for (let i = 0; i < 4; i++) {
    const r = strtoul(arg, cp);
    if (r.value > 255n) return null;
    if (r.end === cp) return null; // no digits
    bytes[i] = Number(r.value);
    if (r.end === arg.length) break;
    if (i === 3 || arg[r.end] !== '.') return null;
    cp = r.end + 1;
  }
  return { family: 4, text: ntopIPv4(bytes) };
}

/** 4 or 6 when `s` is an address in inet_pton's text form, else 0. */
export function addressFamily(s: string): 0 | 4 | 6 {
  if (s.includes(':')) return ptonIPv6(s) === null ? 0 : 6;
  return ptonIPv4(s) === null ? 0 : 4;
}

/** An address in inet_pton form, as the daemon keeps it. */
export interface ParsedAddress {
  family: 4 | 6;
  /** inet_ntop text. */
  text: string;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

/**
 * inet_pton, then the daemon's normalisation: an IPv4-mapped IPv6 address
 * (`::ffff:a.b.c.d`) is the IPv4 address it maps, as the kernel treats it
 * for L2TP tunnels. Returns null for anything inet_pton refuses.
 */
export function parseAddress(s: string): ParsedAddress | null {
  if (!s.includes(':')) {
    const b = ptonIPv4(s);
    return b === null ? null : { family: 4, text: ntopIPv4(b), bytes: Uint8Array.from(b) };
  }
  const b = ptonIPv6(s);
  if (b === null) return null;
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (mapped) {
    const v4 = b.slice(12);
    return { family: 4, text: ntopIPv4(v4), bytes: v4 };
  }
  return { family: 6, text: ntopIPv6(b), bytes: b };
}

/** The 4 or 16 bytes of an address in inet_pton form (no mapped-address folding); throws on bad text. */
export function addressBytes(s: string): Buffer {
  const b = s.includes(':') ? ptonIPv6(s) : ptonIPv4(s);
  if (b === null) throw new TypeError(`not an IP address: ${JSON.stringify(s)}`);
  return Buffer.from(b);
}

/** inet_ntop of 4 or 16 bytes. */
export function formatAddress(b: Uint8Array): string {
  if (b.length === 4) return ntopIPv4(b);
  if (b.length === 16) return ntopIPv6(b);
  throw new TypeError(`an address has 4 or 16 bytes, not ${b.length}`);
}

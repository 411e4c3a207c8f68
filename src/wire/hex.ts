/**
 * HEXSTR <-> bytes, as iproute2's hex2mem reads cookies: two hex digits per
 * byte, left to right, no byte-order conversion (docs/protocol.md §1.4). Output is
 * always lowercase, as `ip l2tp show` prints cookies.
 *
 * Control plane, tests and debugging only: these functions allocate.
 */

/** True when `s` is an even-length string of hex digits (either case; '' is valid). */
export function isHex(s: string): boolean {
  return s.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(s);
}

/** Parse an even-length hex string into a new Buffer. Throws RangeError on bad input. */
export function hexToBytes(s: string): Buffer {
  if (!isHex(s)) throw new RangeError(`not an even-length hex string: "${s}"`);
  return Buffer.from(s, 'hex');
}

/** Lowercase hex of buf[off, off+len) (whole buffer by default). */
export function bytesToHex(buf: Uint8Array, off = 0, len = buf.length - off): string {
  let out = '';
  for (let i = 0; i < len; i++) {
    const b = buf[off + i];
    out += (b < 16 ? '0' : '') + b.toString(16);
  }
  return out;
}

/**
 * Parse an annotated hex dump (fixtures, docs/protocol.md §7 test vectors): per line,
 * text after '#' is a comment, a leading 4+ digit offset followed by two
 * spaces is skipped, '|' separators are ignored, the rest is hex byte pairs
 * separated by white space.
 */
export function hexDumpToBytes(text: string): Buffer {
  const bytes: number[] = [];
  for (const raw of text.split('\n')) {
    let line = raw;
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.replace(/^\s*[0-9a-fA-F]{4,8}(?:\s{2,}|:\s*)/, '').replace(/\|/g, ' ');
    for (const tok of line.split(/\s+/)) {
      if (tok === '') continue;
      if (!/^([0-9a-fA-F]{2})+$/.test(tok)) throw new RangeError(`bad hex token "${tok}" in line "${raw}"`);
      for (let i = 0; i < tok.length; i += 2) bytes.push(parseInt(tok.slice(i, i + 2), 16));
    }
  }
  return Buffer.from(bytes);
}

/** Classic 16-bytes-per-line dump with offsets, for test failure messages and debug traces. */
export function formatHexDump(buf: Uint8Array, off = 0, len = buf.length - off): string {
  const lines: string[] = [];
  for (let i = 0; i < len; i += 16) {
    const n = Math.min(16, len - i);
    const parts: string[] = [];
    for (let j = 0; j < n; j++) parts.push(bytesToHex(buf, off + i + j, 1));
    lines.push(i.toString(16).padStart(4, '0') + '  ' + parts.join(' '));
  }
  return lines.join('\n');
}

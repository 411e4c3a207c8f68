/**
 * Internet checksum (RFC 1071) helpers for the offload path.
 *
 * `csumAdd` returns the ones'-complement sum of big-endian 16-bit words folded to 16 bits
 * (not complemented): the aligned middle of the range is summed as native 32-bit words
 * (little-endian) through a Uint32Array view of the buffer's memory and byte-swapped at the
 * end (the ones'-complement sum is byte-order independent up to a swap), which is several
 * times faster than a byte loop. No allocation on the hot path (views are cached per
 * ArrayBuffer, a handful at most), no throwing.
 */

const CACHE = 4;
const cacheAb: Array<ArrayBufferLike | null> = [null, null, null, null];
const cacheU32: Uint32Array[] = [new Uint32Array(0), new Uint32Array(0), new Uint32Array(0), new Uint32Array(0)];
let cacheNext = 0;

function u32Of(ab: ArrayBufferLike): Uint32Array {
  for (let i = 0; i < CACHE; i++) if (cacheAb[i] === ab) return cacheU32[i];
  const i = cacheNext;
  cacheNext = (cacheNext + 1) % CACHE;
  cacheAb[i] = ab;
  cacheU32[i] = new Uint32Array(ab, 0, ab.byteLength >>> 2);
  return cacheU32[i];
}

/** Folds a non-negative sum (< 2^53) to 16 bits, ones'-complement style. */
export function fold(x: number): number {
  while (x > 0xffffffff) x = (x % 4294967296) + Math.floor(x / 4294967296);
  while (x > 0xffff) x = (x & 0xffff) + (x >>> 16);
  return x;
}

/**
 * Adds the ones'-complement sum of buf[off, off+len) (big-endian 16-bit words, an odd last
 * byte padded with zero) to `init` and returns it folded to 16 bits.
 */
export function csumAdd(buf: Uint8Array, off: number, len: number, init: number): number {
  let acc = init;
  let p = off;
  const end = off + len;
  if (len < 48) {
    for (; p + 1 < end; p += 2) acc += (buf[p] << 8) | buf[p + 1];
    if (p < end) acc += buf[p] << 8;
    return fold(acc);
  }
  // Lead bytes up to a 4-byte aligned address; `odd` = parity of the next byte's position.
  let odd = 0;
  const abs = buf.byteOffset + p;
  const lead = (4 - (abs & 3)) & 3;
  for (let i = 0; i < lead; i++) {
    acc += odd !== 0 ? buf[p] : buf[p] << 8;
    odd ^= 1;
    p++;
  }
  const words = (end - p) >>> 2;
  const u32 = u32Of(buf.buffer);
  let w = (buf.byteOffset + p) >>> 2;
  const we = w + words;
  let s0 = 0;
  let s1 = 0;
  const we4 = we - 3;
  for (; w < we4; w += 4) {
    s0 += u32[w] + u32[w + 1];
    s1 += u32[w + 2] + u32[w + 3];
  }
  for (; w < we; w++) s0 += u32[w];
  p += words << 2;
  const le = fold(s0 + s1); // little-endian 16-bit sum of the middle
  acc += odd !== 0 ? le : ((le >>> 8) | ((le & 0xff) << 8));
  for (; p < end; p++) {
    acc += odd !== 0 ? buf[p] : buf[p] << 8;
    odd ^= 1;
  }
  return fold(acc);
}

/** The final checksum field value for a folded sum: ~sum & 0xffff. */
export function finish(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** Pseudo-header sum (folded, not complemented), IPv4: addresses at ip+12..20. */
export function pseudo4(buf: Uint8Array, ipOff: number, proto: number, l4Len: number): number {
  return csumAdd(buf, ipOff + 12, 8, proto + l4Len);
}

/** Pseudo-header sum (folded, not complemented), IPv6: addresses at ip+8..40. */
export function pseudo6(buf: Uint8Array, ipOff: number, proto: number, l4Len: number): number {
  return csumAdd(buf, ipOff + 8, 32, proto + (l4Len >>> 16) + (l4Len & 0xffff));
}

/** Recomputes and stores the IPv4 header checksum (header of `ihl` bytes at ipOff). */
export function ipv4HeaderCsum(buf: Uint8Array, ipOff: number, ihl: number): void {
  buf[ipOff + 10] = 0;
  buf[ipOff + 11] = 0;
  const c = finish(csumAdd(buf, ipOff, ihl, 0));
  buf[ipOff + 10] = c >>> 8;
  buf[ipOff + 11] = c & 0xff;
}

/** True when the IPv4 header at ipOff (ihl bytes) has a valid checksum. */
export function ipv4HeaderOk(buf: Uint8Array, ipOff: number, ihl: number): boolean {
  return csumAdd(buf, ipOff, ihl, 0) === 0xffff;
}

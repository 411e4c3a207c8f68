/**
 * Internet checksum (RFC 1071) helpers for the offload path.
 *
 * `csumAdd` returns the ones'-complement sum of big-endian 16-bit words folded to 16 bits
 * (not complemented). Summing little-endian words instead gives the same sum byte-swapped
 * (the ones'-complement sum is byte-order independent up to a swap), so both ways below sum
 * native words and swap once at the end:
 *   - memory from `checksumMemory` (the tx offload slab, where every TSO segment's TCP
 *     checksum is computed): a WebAssembly SIMD loop (csum.wat), 16 bytes per load, ~10×
 *     the JS loop's speed;
 *   - any other buffer: the aligned middle as 32-bit words through a Uint32Array view.
 * No allocation on the hot path (views are cached per ArrayBuffer, a handful at most), no
 * throwing.
 */
import { CSUM_WASM_BASE64 } from './csum-wasm.js';

type Sum16 = (p: number, n: number) => number;
/** The part of the WebAssembly global used here (TypeScript's ES2022 lib does not declare it). */
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (d: { initial: number }) => { readonly buffer: ArrayBuffer };
  Instance: new (m: object, imports: object) => { readonly exports: Record<string, unknown> };
}
const WASM = (globalThis as { WebAssembly?: Wasm }).WebAssembly;
/** Largest n one sum16 call takes (its 32-bit lanes cannot overflow below this). */
const WASM_CHUNK = 262144;
/** Ranges shorter than this are summed in JS (a call costs more than it saves). */
const WASM_MIN = 64;
let wasmModule: object | null | undefined = WASM === undefined ? null : undefined;
const wasmSums = new WeakMap<ArrayBufferLike, Sum16>();
let lastAb: ArrayBufferLike | null = null;
let lastSum: Sum16 | null = null;

/**
 * An ArrayBuffer of at least `bytes` bytes whose checksums `csumAdd` computes with
 * WebAssembly SIMD: the memory of a module instance of this thread's (one per call, kept
 * as long as the buffer). Where WebAssembly SIMD is not available, a plain ArrayBuffer.
 * Cold path: call once per slab.
 */
export function checksumMemory(bytes: number): ArrayBuffer {
  if (wasmModule !== null) {
    try {
      const W = WASM!;
      wasmModule ??= new W.Module(Buffer.from(CSUM_WASM_BASE64, 'base64'));
      const mem = new W.Memory({ initial: Math.max(1, Math.ceil(bytes / 65536)) });
      const inst = new W.Instance(wasmModule, { env: { mem } });
      wasmSums.set(mem.buffer, inst.exports.sum16 as Sum16);
      return mem.buffer;
    } catch {
      wasmModule = null; // no WebAssembly SIMD here: the JS loop for every buffer
    }
  }
  return new ArrayBuffer(bytes);
}

/** True when csumAdd sums `buf` with WebAssembly SIMD (its memory came from checksumMemory). */
export function fastChecksums(buf: Uint8Array): boolean {
  return wasmSumOf(buf.buffer) !== null;
}

/** The SIMD sum for `ab` when it came from checksumMemory, else null. */
function wasmSumOf(ab: ArrayBufferLike): Sum16 | null {
  if (ab === lastAb) return lastSum;
  lastAb = ab;
  lastSum = wasmSums.get(ab) ?? null;
  return lastSum;
}

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
  if (len >= WASM_MIN) {
    const sum16 = wasmSumOf(buf.buffer);
    if (sum16 !== null) {
      let p0 = buf.byteOffset + off;
      let n = len & ~1;
      let le = 0;
      for (; n > WASM_CHUNK; n -= WASM_CHUNK, p0 += WASM_CHUNK) le += sum16(p0, WASM_CHUNK);
      le = fold(le + sum16(p0, n));
      acc += (le >>> 8) | ((le & 0xff) << 8);
      if ((len & 1) !== 0) acc += buf[end - 1] << 8;
      return fold(acc);
    }
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
